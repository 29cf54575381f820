#!/usr/bin/env -S deno run --no-prompt --allow-net --allow-read --allow-write --allow-env=OPENAI_API_KEY,KOTRANSFER_*
/**
 * `deno task winrate --prompts FILE --pair a=A.jsonl,b=B.jsonl --judge-url URL --judge-model M`:
 * pairwise win rates with an LLM judge (see `eval/winrate/run.ts`). Prints the Markdown table.
 * @module
 */
import { parseArgs } from "node:util";
import { type ModelSpec, type PairSpec, parsePairSpec } from "../eval/winrate/inputs.ts";
import { runWinRate, type WinRateConfig } from "../eval/winrate/run.ts";
import { deniedPermissionLine, runTask } from "../io/cli.ts";
import type { VerdictRule } from "../eval/winrate/judge_prompt.ts";

const HELP = `Compare models pairwise with an LLM judge (FastChat MT-Bench pairwise conventions).

Usage: deno task winrate --prompts FILE --judge-url URL --judge-model NAME --pair A=SRC,B=SRC [options]

A SRC is an answers JSONL ({id, answer} | {id, output} | {question_id, choices:[{turns}]}) or the
http(s) base URL of an OpenAI-compatible endpoint (e.g. deno task serve) that generates the answers.

Options:
  --prompts FILE           questions JSONL (instruction + instances[0].input, question, prompt or turns)
  --pair A=SRC,B=SRC       a model pair, rates from A's side (repeatable)
  --model-a-url URL        shorthand for one pair of served models, with --model-b-url
  --model-b-url URL
  --model-a NAME           names for those two (default: the id each endpoint's /models lists first)
  --model-b NAME
  --answer-key-env NAME    env variable holding the API key for answer endpoints (default: none)
  --answer-max-tokens N    max_tokens for generated answers (default 1024, FastChat's --max-new-token)
  --answer-temperature X   temperature for generated answers (default: FastChat's per question category,
                           0.7 for questions without one of its categories)
  --judge-url URL          judge base URL, e.g. https://api.openai.com/v1                    (required)
  --judge-model NAME       judge model                                                          (required)
  --judge-key-env NAME     env variable holding the judge's API key (default OPENAI_API_KEY; unset: no key)
  --judge-max-tokens N     max_tokens for each judgment (default 2048)
  --verdict-retries N      re-ask a judge whose reply has no [[A]]/[[B]]/[[C]] this often (default 2)
  --verdict-rule R         fastchat: [[A]] anywhere, then [[B]], then [[C]], as FastChat reads verdicts
                           (default); last: the last marker in the reply
  --retries N              HTTP retries on 429/5xx/network errors, with backoff (default 5)
  --parallel N             requests in flight at once (default 4)
  --limit N                use only the first N questions
  --out FILE               results JSONL, appended and resumed (default runs/winrate/judgments.jsonl)
  --summary FILE           JSON summary (default: --out with .summary.json)
  --table FILE             Markdown table (default: --out with .md)
  --answers-dir DIR        cache of generated answers (default: answers/ next to --out)
  -h, --help               show this help

Exit status: 0 when every pair has a verdict; 1 when some have none (no verdict after --verdict-retries, or
the judge failed; the summary counts them as no_verdict and a rerun judges them again); 2 on bad input.

The task may read OPENAI_API_KEY and KOTRANSFER_* variables; for a key in another variable, run
tasks/winrate.ts with --allow-env=NAME added to its deno run flags.
`;

/** Parsed flags, as `parseArgs` gives them. */
export type Flags = Record<string, string | string[] | boolean | undefined>;

/** `--name N` as an integer ≥ `min`, or undefined when not given (shared with `tasks/arena.ts`). */
export function integerFlag(values: Flags, name: string, min: number): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new Error(`--${name} must be an integer ≥ ${min}, got ${raw}`);
  }
  return n;
}

function verdictRuleFlag(raw: string | undefined): VerdictRule | undefined {
  if (raw === undefined || raw === "fastchat" || raw === "last") return raw;
  throw new Error(`--verdict-rule must be fastchat or last, got ${raw}`);
}

/** `--name X` as a number in [`min`, `max`], or undefined when not given. */
export function numberFlag(values: Flags, name: string, min: number, max: number): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new Error(`--${name} must be in [${min}, ${max}], got ${raw}`);
  }
  return n;
}

/** `--name VALUE` as given, or undefined. */
export function stringFlag(values: Flags, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

/** `--name VALUE`, which must be given. */
export function required(values: Flags, name: string): string {
  const v = stringFlag(values, name);
  if (!v) throw new Error(`--${name} is required (see --help)`);
  return v;
}

/** The key in env variable `name`; an explicitly named variable must be set, the default may be absent. */
export function keyFrom(
  env: (name: string) => string | undefined,
  name: string | undefined,
  fallback?: string,
) {
  const varName = name ?? fallback;
  if (varName === undefined) return undefined;
  const key = env(varName);
  if (!key && name !== undefined) throw new Error(`the environment variable ${name} is unset or empty`);
  return key || undefined;
}

function servedPair(values: Flags): PairSpec[] {
  const urlA = stringFlag(values, "model-a-url"), urlB = stringFlag(values, "model-b-url");
  if (!urlA && !urlB) return [];
  if (!urlA || !urlB) throw new Error("--model-a-url and --model-b-url go together");
  const spec = (url: string, name?: string): ModelSpec => ({ name, source: { kind: "url", url } });
  return [{ a: spec(urlA, stringFlag(values, "model-a")), b: spec(urlB, stringFlag(values, "model-b")) }];
}

/**
 * Turns command-line arguments into a run configuration, or `"help"`.
 *
 * @example
 * ```ts
 * const config = winRateConfigFromArgs(
 *   ["--prompts", "p.jsonl", "--pair", "x=x.jsonl,y=y.jsonl", "--judge-url", "http://127.0.0.1:8081/v1",
 *    "--judge-model", "judge"],
 *   (name) => Deno.env.get(name),
 * );
 * ```
 */
export function winRateConfigFromArgs(
  args: string[],
  env: (name: string) => string | undefined,
): WinRateConfig | "help" {
  const { values } = parseArgs({
    args,
    options: {
      prompts: { type: "string" },
      pair: { type: "string", multiple: true },
      "model-a-url": { type: "string" },
      "model-b-url": { type: "string" },
      "model-a": { type: "string" },
      "model-b": { type: "string" },
      "answer-key-env": { type: "string" },
      "answer-max-tokens": { type: "string" },
      "answer-temperature": { type: "string" },
      "judge-url": { type: "string" },
      "judge-model": { type: "string" },
      "judge-key-env": { type: "string" },
      "judge-max-tokens": { type: "string" },
      "verdict-retries": { type: "string" },
      "verdict-rule": { type: "string" },
      retries: { type: "string" },
      parallel: { type: "string" },
      limit: { type: "string" },
      out: { type: "string", default: "runs/winrate/judgments.jsonl" },
      summary: { type: "string" },
      table: { type: "string" },
      "answers-dir": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return "help";
  const pairs = [...(values.pair ?? []).map(parsePairSpec), ...servedPair(values)];
  if (pairs.length === 0) throw new Error("give at least one --pair (or --model-a-url with --model-b-url)");
  return {
    promptsPath: required(values, "prompts"),
    limit: integerFlag(values, "limit", 1),
    pairs,
    judge: {
      url: required(values, "judge-url"),
      model: required(values, "judge-model"),
      apiKey: keyFrom(env, values["judge-key-env"], "OPENAI_API_KEY"),
      maxTokens: integerFlag(values, "judge-max-tokens", 1),
    },
    verdictRetries: integerFlag(values, "verdict-retries", 0),
    verdictRule: verdictRuleFlag(values["verdict-rule"] as string | undefined),
    resultsPath: values.out,
    summaryPath: values.summary,
    tablePath: values.table,
    answersDir: values["answers-dir"],
    answers: {
      apiKey: keyFrom(env, values["answer-key-env"]),
      maxTokens: integerFlag(values, "answer-max-tokens", 1),
      temperature: numberFlag(values, "answer-temperature", 0, 2),
    },
    parallel: integerFlag(values, "parallel", 1),
    http: { retries: integerFlag(values, "retries", 0) },
    log: (line) => console.error(line),
  };
}

async function main(): Promise<number> {
  try {
    const config = winRateConfigFromArgs(Deno.args, (name) => Deno.env.get(name));
    if (config === "help") {
      console.log(HELP);
    } else {
      const report = await runWinRate(config);
      console.log(report.table);
      console.error(`${report.judgeCalls} judge call(s), ${report.answerCalls} answer call(s) this run`);
      // Judgments without a verdict are retried by the next run; until then the rates are incomplete.
      if (report.noVerdict > 0) return 1;
    }
    return 0;
  } catch (e) {
    console.error(deniedPermissionLine("winrate", e) ?? `winrate: ${e instanceof Error ? e.message : e}`);
    return 2;
  }
}

if (import.meta.main) Deno.exit(await runTask("winrate", main));
