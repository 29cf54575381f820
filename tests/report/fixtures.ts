/**
 * Inputs for the report tests: two real training runs (copied from `deno task orpo|dpo --max-steps 8
 * --eval-fraction 0.2 --eval-every 3` into `fixtures/`), KoBEST results built by `buildLmEvalResults` from
 * the published polyglot-ko-1.3b numbers and made-up fine-tunes, and win-rate judgments, a summary and its
 * table as `deno task winrate` writes them. Names carry HTML and Korean to check escaping.
 * @module
 */
import {
  buildLmEvalResults,
  type LmEvalResults,
  type RunConfig,
  type TaskScore,
} from "../../eval/kobest/results.ts";
import type { JudgmentRecord, Outcome } from "../../eval/winrate/judgments.ts";
import { summarizePair, type WinRateSummary } from "../../eval/winrate/summary.ts";

/** The committed run folders. */
export const FIXTURE_RUNS = {
  orpo: new URL("./fixtures/orpo-tiny", import.meta.url).pathname,
  dpo: new URL("./fixtures/dpo-tiny", import.meta.url).pathname,
};

/** A model name that breaks HTML if it is not escaped, in Korean. */
export const NASTY_MODEL = `<script>alert("모델")</script> & 한국어 'ORPO'`;

/** A run folder name with markup in it. */
export const NASTY_RUN = `런 <b> &amp; "1"`;

function runConfig(model: string, modelArgs = ""): RunConfig {
  return {
    model,
    model_args: modelArgs,
    batch_size: 16,
    limit: null,
    bootstrap_iters: 100000,
    fewshot_seed: 1234,
    split: "test",
    add_special_tokens: "default",
  };
}

function score(task: TaskScore["task"], n: number, acc: number, f1: number, accNorm?: number): TaskScore {
  return {
    task,
    n,
    acc,
    accStderr: Math.sqrt((acc * (1 - acc)) / (n - 1)),
    f1,
    ...(accNorm === undefined ? {} : { accNorm, accNormStderr: 0.022 }),
  };
}

/**
 * Three results objects: polyglot-ko-1.3b at 0 shots (its published numbers) and 5 shots, and a fine-tune
 * named {@link NASTY_MODEL} at 0 shots without HellaSwag.
 */
export function kobestResults(): LmEvalResults[] {
  const hf = (name: string) => runConfig("hf", `pretrained=${name},dtype=float16`);
  return [
    buildLmEvalResults({
      scores: [
        score("boolq", 1404, 0.498, 0.355),
        score("copa", 1000, 0.712, 0.711),
        score("hellaswag", 500, 0.406, 0.401, 0.532),
        score("sentineg", 397, 0.693, 0.683),
        score("wic", 1260, 0.487, 0.327),
      ],
      shots: 0,
      config: hf("EleutherAI/polyglot-ko-1.3b"),
      date: 1767225600,
    }),
    buildLmEvalResults({
      scores: [
        score("boolq", 1404, 0.521, 0.448),
        score("copa", 1000, 0.724, 0.723),
        score("hellaswag", 500, 0.412, 0.405, 0.538),
        score("sentineg", 397, 0.801, 0.795),
        score("wic", 1260, 0.494, 0.402),
      ],
      shots: 5,
      config: hf("EleutherAI/polyglot-ko-1.3b"),
      date: 1767225600,
    }),
    buildLmEvalResults({
      scores: [
        score("boolq", 1404, 0.554, 0.501),
        score("copa", 1000, 0.731, 0.73),
        score("sentineg", 397, 0.705, 0.694),
        score("wic", 1260, 0.502, 0.451),
      ],
      shots: 0,
      config: runConfig(NASTY_MODEL),
      date: 1767225600,
    }),
  ];
}

function judgment(id: string, a: string, b: string, judge: string, outcome: Outcome): JudgmentRecord {
  const verdicts = {
    win: ["A", "B"],
    loss: ["B", "A"],
    tie: ["C", "C"],
    error: [null, "A"],
    pending: ["A", null],
  } as const;
  return {
    id,
    model_a: a,
    model_b: b,
    judge,
    fingerprint: `${id}-${a}-${b}`,
    verdicts: [...verdicts[outcome]],
    outcome,
    judge_raw: ["판정: [[A]]", "판정: [[B]]"],
    attempts: [1, 1],
    errors: outcome === "error" ? ["game 1: no [[A]], [[B]] or [[C]] in the reply after 3 attempt(s)"] : [],
    judged_at: "2026-11-01T00:00:00.000Z",
  };
}

function judgments(a: string, b: string, judge: string, outcomes: string): JudgmentRecord[] {
  const names: Record<string, Outcome> = { w: "win", t: "tie", l: "loss", e: "error" };
  return [...outcomes].map((o, i) => judgment(`user_oriented_task_${i}`, a, b, judge, names[o]));
}

/** A results JSONL judged by "gpt-4o-mini": one pair, 7 wins, 2 ties, 3 losses, 1 error. */
export function judgmentLines(): JudgmentRecord[] {
  return judgments("orpo", "base", "gpt-4o-mini", "wwwtwlwwltewl");
}

/** A summary judged by "gpt-4o", as runWinRate writes it: two pairs, one with {@link NASTY_MODEL}. */
export function winRateSummary(): WinRateSummary {
  const pairs = [
    summarizePair("orpo", "base", judgments("orpo", "base", "gpt-4o", "wwwwwwwwwttttlllllll"), 0),
    summarizePair(NASTY_MODEL, "base", judgments(NASTY_MODEL, "base", "gpt-4o", "wwwwwtttttlllllllllle"), 2),
  ];
  return {
    judge: "gpt-4o",
    judge_prompt: "ko-pairwise-v1",
    prompts: "data/prompts/ko_user_oriented_instructions.jsonl",
    results: "runs/winrate/judgments.jsonl",
    pairs,
    no_verdict: pairs.reduce((n, p) => n + p.errors, 0),
  };
}

/** Paths of every kind of input, written into `dir`. */
export interface FixtureInputs {
  runs: string[];
  kobest: string;
  summary: string;
  judgments: string;
}

/**
 * Copies the runs (the ORPO one under {@link NASTY_RUN}) and writes the KoBEST, summary and JSONL inputs.
 */
export async function writeFixtureInputs(dir: string): Promise<FixtureInputs> {
  const runs = [`${dir}/${NASTY_RUN}`, `${dir}/dpo-tiny`];
  for (const [from, to] of [[FIXTURE_RUNS.orpo, runs[0]], [FIXTURE_RUNS.dpo, runs[1]]]) {
    await Deno.mkdir(to, { recursive: true });
    for (const file of ["metrics.jsonl", "train_config.json"]) {
      await Deno.copyFile(`${from}/${file}`, `${to}/${file}`);
    }
  }
  const inputs = {
    runs,
    kobest: `${dir}/kobest_results.json`,
    summary: `${dir}/judgments.summary.json`,
    judgments: `${dir}/judgments.jsonl`,
  };
  await Deno.writeTextFile(inputs.kobest, JSON.stringify(kobestResults(), null, 2));
  await Deno.writeTextFile(inputs.summary, JSON.stringify(winRateSummary(), null, 2) + "\n");
  await Deno.writeTextFile(inputs.judgments, judgmentLines().map((r) => JSON.stringify(r) + "\n").join(""));
  return inputs;
}

/**
 * The training records of a fixture's metrics.jsonl, read here independently of the report's reader.
 */
export async function fixtureMetrics(run: keyof typeof FIXTURE_RUNS): Promise<Record<string, number>[]> {
  const text = await Deno.readTextFile(`${FIXTURE_RUNS[run]}/metrics.jsonl`);
  return text.trim().split("\n").map((l) => JSON.parse(l));
}
