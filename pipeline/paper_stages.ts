/**
 * The stages of the paper's pipeline, as {@link Stage}s with explicit outputs under the run folder:
 *
 * | stage            | reads                    | writes                                             |
 * | ---------------- | ------------------------ | -------------------------------------------------- |
 * | `base`           | --model                  | nothing (builds runs/tiny-base for the tiny preset) |
 * | `data`           | KoBEST train splits      | `data/sft.jsonl`, `data/preference.jsonl`          |
 * | `sft`, `orpo`    | base, data               | `sft/`, `orpo/` (run folders, the model at the root) |
 * | `dpo` (--dpo)    | sft, data                | `dpo/`                                             |
 * | `kobest-<m>`     | model m                  | `kobest/<m>.json` (lm-eval results, 0 and 5 shots) |
 * | `table2`         | every kobest-*           | `kobest/table2.md`                                 |
 * | `answers-<m>`    | model m                  | `winrate/answers/<m>.jsonl`                        |
 * | `winrate`        | answers-*                | `winrate/judgments.jsonl`, `summary.json`, `table1.md` |
 * | `report`         | runs, kobest, winrate    | `report.html`                                      |
 *
 * @module
 */
import { kobestDataDir, runKobest } from "../eval/kobest/run.ts";
import { KOBEST_TASKS } from "../eval/kobest/data.ts";
import { kobestMarkdownTable, type LmEvalResults, type TableEntry } from "../eval/kobest/results.ts";
import { writeKobestTrainingData } from "../eval/kobest/training.ts";
import { readAnswers } from "../eval/winrate/answers.ts";
import { readQuestions } from "../eval/winrate/inputs.ts";
import { RULE_JUDGE_MODEL, RuleJudgeClient } from "../eval/winrate/rule_judge.ts";
import { runWinRate } from "../eval/winrate/run.ts";
import { Gpu } from "../gpu/runtime.ts";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import { resolveModelPath } from "../io/hub.ts";
import { ensureTinyBase } from "../model/tiny.ts";
import { writeReport } from "../report/write.ts";
import { listCheckpoints } from "../train/checkpoint.ts";
import { withDefaults } from "../train/config.ts";
import { train, type TrainLogger } from "../train/trainer.ts";
import { answerWithModel } from "./answers.ts";
import { fileMissing, modelFolderMissing, modelFolderStamp, removeAll } from "./files.ts";
import type { JudgeSettings, Objective, ReproduceSettings } from "./settings.ts";
import type { Json, Stage, StageContext } from "./stages.ts";

/** The models of the study, as tables name them. */
export type ModelLabel = "PT" | "SFT" | "ORPO" | "DPO";

/** What the pipeline did in this process (all zero when every stage was skipped). */
export interface PipelineWork {
  /** Optimizer steps taken by the training stages that ran. */
  trainingSteps: number;
  /** Models scored on KoBEST. */
  kobestModels: number;
  /** Answers generated for the win-rate prompts. */
  answersGenerated: number;
  /** Calls made to the judge. */
  judgeCalls: number;
}

/** Inputs of the stage factories: settings plus what was resolved before the stages were built. */
export interface StageEnv {
  settings: ReproduceSettings;
  /** Digests of the input files and folders (fingerprint material). */
  digests: {
    kobest: string;
    prompts: string;
    sftData?: string[];
    prefData?: string[];
    chatTemplate?: string;
  };
  /** The chat template file's text, when given. */
  chatTemplateText?: string;
  /** A GPU shared by every stage (tests); otherwise each GPU stage creates and destroys its own. */
  gpu?: Gpu;
  log: (line: string) => void;
  work: PipelineWork;
}

/**
 * The stage that produces each model.
 * @example
 * ```ts
 * MODEL_STAGE.SFT; // "sft"
 * ```
 */
export const MODEL_STAGE: Record<ModelLabel, string> = { PT: "base", SFT: "sft", ORPO: "orpo", DPO: "dpo" };

const lower = (label: ModelLabel) => label.toLowerCase();

/**
 * Where each output lives under the run folder.
 * @example
 * ```ts
 * outputPaths("runs/x").kobest("SFT"); // "runs/x/kobest/sft.json"
 * ```
 */
export function outputPaths(out: string) {
  return {
    manifest: `${out}/pipeline.json`,
    data: `${out}/data`,
    sftData: `${out}/data/sft.jsonl`,
    prefData: `${out}/data/preference.jsonl`,
    run: (o: Objective) => `${out}/${o}`,
    kobest: (m: ModelLabel) => `${out}/kobest/${lower(m)}.json`,
    table2: `${out}/kobest/table2.md`,
    answers: (m: ModelLabel) => `${out}/winrate/answers/${lower(m)}.jsonl`,
    judgments: `${out}/winrate/judgments.jsonl`,
    summary: `${out}/winrate/summary.json`,
    judgmentsTable: `${out}/winrate/judgments.md`,
    table1: `${out}/winrate/table1.md`,
    report: `${out}/report.html`,
  };
}

async function withGpu<T>(shared: Gpu | undefined, fn: (gpu: Gpu) => Promise<T>): Promise<T> {
  if (shared) return await fn(shared);
  // A device per stage: destroying it frees everything the stage loaded (train() keeps its model).
  const gpu = await Gpu.create();
  try {
    return await fn(gpu);
  } finally {
    gpu.destroy();
  }
}

function resultField(ctx: StageContext, stage: string, field: string): string {
  const r = ctx.resultOf(stage);
  const v = r && typeof r === "object" && !Array.isArray(r) ? r[field] : undefined;
  if (typeof v !== "string") throw new Error(`pipeline: stage "${stage}" recorded no ${field}`);
  return v;
}

/**
 * The model folder a stage produced (the base model's folder for `base`).
 * @example
 * ```ts
 * modelDirOf(ctx, "ORPO"); // "runs/x/orpo" once the orpo stage has completed (LoRA: "runs/x/orpo/merged")
 * ```
 */
export function modelDirOf(ctx: StageContext, label: ModelLabel): string {
  return resultField(ctx, MODEL_STAGE[label], "dir");
}

/**
 * `base`: resolves the base model (downloading a Hub id, building the tiny base), and stamps it.
 * @example
 * ```ts
 * baseStage(env).settings; // { model: "runs/tiny-base", build_tiny_base: true }
 * ```
 */
export function baseStage(env: StageEnv): Stage {
  const s = env.settings;
  return {
    name: "base",
    deps: [],
    settings: { model: s.model, build_tiny_base: s.buildTinyBase },
    outputs: [],
    async missing(ctx) {
      const dir = resultField(ctx, "base", "dir");
      const gone = await modelFolderMissing(dir).catch(() => `${dir} is missing`);
      if (gone) return gone;
      return (await modelFolderStamp(dir)) === resultField(ctx, "base", "stamp")
        ? undefined
        : `the base model in ${dir} changed since it was used`;
    },
    clean: () => Promise.resolve(),
    async run() {
      if (s.buildTinyBase && await ensureTinyBase(s.model)) {
        env.log(`[base] built the tiny base model in ${s.model}`);
      }
      const dir = await resolveModelPath(s.model);
      const gone = await modelFolderMissing(dir);
      if (gone) throw new Error(`--model ${s.model}: not a model folder (${gone})`);
      return { dir, stamp: await modelFolderStamp(dir) };
    },
  };
}

/**
 * `data`: the KoBEST-derived SFT and preference sets.
 * @example
 * ```ts
 * dataStage(env).outputs; // ["runs/x/data/sft.jsonl", "runs/x/data/preference.jsonl"]
 * ```
 */
export function dataStage(env: StageEnv): Stage {
  const s = env.settings, paths = outputPaths(s.out);
  return {
    name: "data",
    deps: [],
    settings: { kobest: env.digests.kobest, train_docs: s.trainDocs ?? null, split: "train" },
    outputs: [paths.sftData, paths.prefData],
    async missing() {
      return await fileMissing(paths.sftData) ?? await fileMissing(paths.prefData);
    },
    clean: () => removeAll([paths.data]),
    async run() {
      const dataDir = await kobestDataDir(s.kobestDir, KOBEST_TASKS, ["train"]);
      const counts = await writeKobestTrainingData({
        dataDir,
        outDir: paths.data,
        tasks: KOBEST_TASKS,
        split: "train",
        limit: s.trainDocs,
      });
      env.log(`[data] ${Object.entries(counts).map(([t, n]) => `${t} ${n}`).join(", ")} documents`);
      return { counts: counts as Json };
    },
  };
}

/**
 * A training stage: `sft` and `orpo` from the base model, `dpo` from the SFT model.
 * @example
 * ```ts
 * trainingStage(env, "dpo").deps; // ["sft", "data"]
 * ```
 */
export function trainingStage(env: StageEnv, objective: Objective): Stage {
  const s = env.settings, paths = outputPaths(s.out);
  const from: ModelLabel = objective === "dpo" ? "SFT" : "PT";
  const given = objective === "sft" ? s.sftData : s.prefData;
  const digests = objective === "sft" ? env.digests.sftData : env.digests.prefData;
  const hyper = { ...s.train[objective], ...(s.train[objective].lora ? { merge: true } : {}) };
  const runDir = paths.run(objective);
  return {
    name: objective,
    deps: [MODEL_STAGE[from], ...(given ? [] : ["data"])],
    settings: {
      hyper: hyper as Json,
      data: given ? (digests ?? []) : "kobest-derived",
      chat_template: env.digests.chatTemplate ?? null,
    },
    outputs: [runDir],
    async missing(ctx) {
      return await modelFolderMissing(resultField(ctx, objective, "dir")).catch(() =>
        `${runDir} is incomplete`
      );
    },
    clean: () => removeAll([runDir]),
    async run(ctx) {
      // The stage owns its run folder: it continues a run a kill interrupted, or starts it afresh.
      const resume = (await listCheckpoints(runDir)).length > 0;
      const config = withDefaults(objective, {
        ...hyper,
        model: modelDirOf(ctx, from),
        data: given ?? [objective === "sft" ? paths.sftData : paths.prefData],
        out: runDir,
        resume,
        overwriteOutputDir: !resume,
        chatTemplate: env.chatTemplateText,
      });
      const log: TrainLogger = { info: env.log, progress: env.log };
      const result = await withGpu(env.gpu, (gpu) => train(config, { gpu, log }));
      env.work.trainingSteps += result.stepsTaken;
      return { dir: result.mergedDir ?? result.finalDir, run_dir: runDir, steps: result.steps };
    },
  };
}

function kobestSettings(env: StageEnv): Json {
  const s = env.settings;
  return {
    kobest: env.digests.kobest,
    limit: s.kobestLimit ?? null,
    shots: s.shots,
    batch_size: s.kobestBatchSize,
    max_length: s.kobestMaxLength ?? null,
    split: "test",
  };
}

/** Undefined when `path` holds lm-eval results for every shot setting, else why not. */
async function kobestResultsMissing(path: string, shots: readonly number[]): Promise<string | undefined> {
  const gone = await fileMissing(path);
  if (gone) return gone;
  try {
    const value = JSON.parse(await Deno.readTextFile(path)) as LmEvalResults[];
    const found = Array.isArray(value) ? value.map((r) => Object.values(r["n-shot"] ?? {})[0]) : [];
    return shots.every((k) => found.includes(k))
      ? undefined
      : `${path} lacks some of the shot settings ${shots}`;
  } catch {
    return `${path} is not valid lm-eval results JSON`;
  }
}

/**
 * `kobest-<m>`: one model on KoBEST at every shot setting, written as lm-eval results named after it.
 * @example
 * ```ts
 * kobestStage(env, "PT").name; // "kobest-pt"
 * ```
 */
export function kobestStage(env: StageEnv, label: ModelLabel): Stage {
  const s = env.settings, path = outputPaths(s.out).kobest(label);
  return {
    name: `kobest-${lower(label)}`,
    deps: [MODEL_STAGE[label]],
    settings: kobestSettings(env),
    outputs: [path],
    missing: () => kobestResultsMissing(path, s.shots),
    clean: () => removeAll([path]),
    async run(ctx) {
      const dir = modelDirOf(ctx, label);
      const { results } = await withGpu(env.gpu, (gpu) =>
        runKobest({
          models: [dir],
          shots: s.shots,
          limit: s.kobestLimit,
          dataDir: s.kobestDir,
          batchSize: s.kobestBatchSize,
          maxLength: s.kobestMaxLength,
          gpu,
          log: env.log,
        }));
      env.work.kobestModels++;
      // model_name is how lm-eval (and report/inputs.ts) name a model: the label, not the folder.
      await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
      await writeJsonAtomic(path, results.map((e) => ({ ...e.results, model_name: label })), { indent: 2 });
      return { models: label };
    },
  };
}

/**
 * The Markdown of Table 2 from the KoBEST results files, in the order of `labels`.
 * @example
 * ```ts
 * await table2Markdown("runs/x", ["PT", "SFT", "ORPO"], settings); // "# Table 2 — KoBEST, …"
 * ```
 */
export async function table2Markdown(out: string, labels: readonly ModelLabel[], s: ReproduceSettings) {
  const entries: TableEntry[] = [];
  for (const label of labels) {
    const all = JSON.parse(await Deno.readTextFile(outputPaths(out).kobest(label))) as LmEvalResults[];
    for (const results of all) entries.push({ model: label, results });
  }
  const scope = s.kobestLimit ? `the first ${s.kobestLimit} test documents of each task` : "the test split";
  return [
    `# Table 2 — KoBEST, macro-F1 (accuracy), ${s.shots.join(" and ")} shots`,
    "",
    `Scored as lm-evaluation-harness scores it, on ${scope}; few-shot examples from the train split ` +
    `(seed 1234). Data: ${s.kobestDir ?? "skt/kobest_v1 from the Hugging Face Hub"}.`,
    "",
    kobestMarkdownTable(entries),
    "",
  ].join("\n");
}

/**
 * `table2`: the KoBEST table of every model.
 * @example
 * ```ts
 * table2Stage(env, ["PT", "SFT", "ORPO"]).deps; // ["kobest-pt", "kobest-sft", "kobest-orpo"]
 * ```
 */
export function table2Stage(env: StageEnv, labels: readonly ModelLabel[]): Stage {
  const s = env.settings, path = outputPaths(s.out).table2;
  return {
    name: "table2",
    deps: labels.map((m) => `kobest-${lower(m)}`),
    settings: { models: [...labels] },
    outputs: [path],
    missing: () => fileMissing(path),
    clean: () => removeAll([path]),
    async run() {
      await writeFileAtomic(path, await table2Markdown(s.out, labels, s));
      return { path };
    },
  };
}

/** Undefined when `path` answers each of the first `limit` prompts, else how many it lacks. */
async function answersMissing(path: string, promptsPath: string, limit: number): Promise<string | undefined> {
  const gone = await fileMissing(path);
  if (gone) return gone;
  // A cut last line counts as missing here; the stage's run removes it, and says so.
  const kept = await readAnswers(path, () => {});
  const lacking = (await readQuestions(promptsPath, limit)).filter((q) => !kept.has(q.id)).length;
  return lacking === 0 ? undefined : `${path} lacks ${lacking} answer(s)`;
}

/**
 * `answers-<m>`: the model's answers to the first N Korean prompts.
 * @example
 * ```ts
 * answersStage(env, "SFT").outputs; // ["runs/x/winrate/answers/sft.jsonl"]
 * ```
 */
export function answersStage(env: StageEnv, label: ModelLabel): Stage {
  const s = env.settings, path = outputPaths(s.out).answers(label);
  return {
    name: `answers-${lower(label)}`,
    deps: [MODEL_STAGE[label]],
    settings: {
      prompts: env.digests.prompts,
      limit: s.promptsLimit,
      max_new_tokens: s.answerMaxTokens,
      context: s.answerContext,
      chat_template: env.digests.chatTemplate ?? null,
      decoding: "greedy",
    },
    outputs: [path],
    missing: () => answersMissing(path, s.prompts, s.promptsLimit),
    clean: () => removeAll([path]),
    async run(ctx) {
      const dir = modelDirOf(ctx, label);
      const report = await withGpu(env.gpu, (gpu) =>
        answerWithModel({
          modelDir: dir,
          label,
          promptsPath: s.prompts,
          limit: s.promptsLimit,
          outPath: path,
          maxNewTokens: s.answerMaxTokens,
          contextTokens: s.answerContext,
          chatTemplate: env.chatTemplateText,
          gpu,
          log: env.log,
        }));
      env.work.answersGenerated += report.generated;
      if (report.truncated > 0) {
        env.log(`[answers] ${label}: ${report.truncated} prompt(s) shortened to fit --answer-context`);
      }
      return { ...report };
    },
  };
}

/**
 * Why Table 1 is not produced, or undefined when a judge is set.
 * @example
 * ```ts
 * winRateDisabled({ kind: "rule" }); // undefined
 * winRateDisabled({ kind: "none" }); // "Table 1 needs a judge …"
 * ```
 */
export function winRateDisabled(judge: JudgeSettings): string | undefined {
  if (judge.kind !== "none") return undefined;
  return "Table 1 needs a judge and this preset has none: rerun with --judge-url URL --judge-model NAME " +
    "(any OpenAI-compatible endpoint; --judge-key-env VAR names the variable holding its API key). The " +
    "answers are in winrate/answers/ and are reused";
}

function judgeNote(judge: JudgeSettings, name: string): string {
  return judge.kind === "rule"
    ? `Judge: ${name}, a rule-based heuristic (eval/winrate/rule_judge.ts: share of Hangul among letters, minus a ` +
      "repetition penalty, with a tie band), not a language model. It shows the pipeline works; it says " +
      "nothing about answer quality."
    : `Judge: ${name} at ${
      judge.kind === "llm" ? judge.url : "?"
    }, with the Korean MT-Bench pairwise prompt ` +
      "(eval/winrate/judge_prompt.ts).";
}

/**
 * `winrate`: Table 1, the paper's pairwise comparisons judged in both orders.
 * @example
 * ```ts
 * winRateStage(env, [["SFT", "PT"], ["SFT", "ORPO"]]).deps; // ["answers-sft", "answers-pt", "answers-orpo"]
 * ```
 */
export function winRateStage(env: StageEnv, pairs: readonly [ModelLabel, ModelLabel][]): Stage {
  const s = env.settings, paths = outputPaths(s.out);
  const labels = [...new Set(pairs.flat())];
  const judge = s.judge;
  return {
    name: "winrate",
    deps: labels.map((m) => `answers-${lower(m)}`),
    disabled: winRateDisabled(judge),
    settings: {
      judge: judge.kind === "llm"
        ? { kind: "llm", url: judge.url, model: judge.model }
        : { kind: judge.kind },
      prompts: env.digests.prompts,
      limit: s.promptsLimit,
      pairs: pairs.map(([a, b]) => `${a} vs ${b}`),
    },
    outputs: [paths.judgments, paths.summary, paths.judgmentsTable, paths.table1],
    async missing() {
      return await fileMissing(paths.summary) ?? await fileMissing(paths.table1);
    },
    // Judgments stay: runWinRate reuses only those whose judge, question and answers are unchanged.
    clean: () => removeAll([paths.summary, paths.judgmentsTable, paths.table1]),
    async run() {
      const report = await runWinRate({
        promptsPath: s.prompts,
        limit: s.promptsLimit,
        pairs: pairs.map(([a, b]) => ({
          a: { name: a, source: { kind: "file", path: paths.answers(a) } },
          b: { name: b, source: { kind: "file", path: paths.answers(b) } },
        })),
        judge: judge.kind === "rule"
          ? { client: new RuleJudgeClient(), model: RULE_JUDGE_MODEL }
          : llmJudge(judge),
        resultsPath: paths.judgments,
        summaryPath: paths.summary,
        tablePath: paths.judgmentsTable,
        answersDir: `${s.out}/winrate/answers`,
        log: (l) => env.log(`[winrate] ${l}`),
      });
      env.work.judgeCalls += report.judgeCalls;
      const title = `# Table 1 — pairwise win rates on ${s.promptsLimit} Korean prompts`;
      await writeFileAtomic(
        paths.table1,
        `${title}\n\n${judgeNote(judge, report.summary.judge)}\n\n${report.table}\n`,
      );
      return { judge: report.summary.judge, judge_calls: report.judgeCalls };
    },
  };
}

/** The LLM judge's endpoint, with its API key read from the variable --judge-key-env names. */
function llmJudge(judge: JudgeSettings): { url: string; model: string; apiKey?: string } {
  if (judge.kind !== "llm") throw new Error(`pipeline: no LLM judge is set (judge kind "${judge.kind}")`);
  if (!judge.keyEnv) return { url: judge.url, model: judge.model };
  const apiKey = Deno.env.get(judge.keyEnv);
  if (apiKey === undefined) throw new Error(`--judge-key-env ${judge.keyEnv}: the variable is not set`);
  return { url: judge.url, model: judge.model, apiKey };
}

/**
 * `report`: one HTML page of the training curves, Table 2's scores and Table 1's win rates.
 * @example
 * ```ts
 * reportStage(env, ["sft", "orpo"], ["PT", "SFT", "ORPO"], true).outputs; // ["runs/x/report.html"]
 * ```
 */
export function reportStage(
  env: StageEnv,
  objectives: readonly Objective[],
  labels: readonly ModelLabel[],
  withWinRates: boolean,
): Stage {
  const s = env.settings, paths = outputPaths(s.out);
  const title = `kotransfer reproduction — preset ${s.preset}, base ${s.model}`;
  return {
    name: "report",
    deps: [...objectives, ...labels.map((m) => `kobest-${lower(m)}`), ...(withWinRates ? ["winrate"] : [])],
    settings: { title },
    outputs: [paths.report],
    missing: () => fileMissing(paths.report),
    clean: () => removeAll([paths.report]),
    async run() {
      const inputs = [
        ...objectives.map((o) => paths.run(o)),
        ...labels.map((m) => paths.kobest(m)),
        ...(withWinRates ? [paths.summary] : []),
      ];
      await writeReport({ inputs, out: paths.report, title });
      return { path: paths.report };
    },
  };
}
