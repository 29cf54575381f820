/**
 * The command lines of the pairwise comparisons: the settings `deno task winrate` and `deno task arena`
 * share (questions, pairs, how answers are generated; one definition each, in
 * {@link COMPARISON_SETTINGS}), the win-rate task's own (the judge, the outputs), its generated help, and
 * its flags turned into a {@link WinRateConfig}.
 *
 * @module
 */
import { HTTP_RETRIES } from "../../io/openai_client.ts";
import {
  checkRequired,
  HTTP_URL,
  parseSettings,
  secretFromEnv,
  settingsHelp,
  type SettingsTable,
  type SettingValues,
  withTableDefaults,
} from "../../io/settings.ts";
import { type ModelSpec, type PairSpec, parsePairSpec } from "./inputs.ts";
import { VERDICT_RULES, type VerdictRule } from "./judge_prompt.ts";
import {
  FASTCHAT_DEFAULT_TEMPERATURE,
  FASTCHAT_MAX_NEW_TOKENS,
  JUDGE_MAX_TOKENS,
  PARALLEL_REQUESTS,
  VERDICT_RETRIES,
  type WinRateConfig,
} from "./run.ts";

/** The help's heading of the answer settings. */
export const ANSWERS_GROUP = "answers generated from endpoints (a SRC that is a URL)";

/** What a pair's SRC is, for the help texts of both tasks. */
export const PAIR_SOURCES =
  "A SRC is an answers JSONL ({id, answer} | {id, output} | {question_id, choices:[{turns}]}) " +
  "or the http(s) base URL of an OpenAI-compatible endpoint (e.g. deno task serve) that generates the answers.";

/**
 * The settings `deno task winrate` and `deno task arena` share: the questions, the pairs, and how answers
 * are generated for a pair's endpoint (FastChat's defaults).
 * @example
 * ```ts
 * COMPARISON_SETTINGS.answerMaxTokens.default; // 1024, FastChat's --max-new-token
 * ```
 */
export const COMPARISON_SETTINGS = {
  prompts: {
    name: "prompts",
    kind: "string",
    metavar: "FILE",
    required: true,
    help: "questions JSONL (instruction + instances[0].input, question, prompt or turns)",
  },
  pairs: {
    name: "pair",
    kind: "list",
    metavar: "A=SRC,B=SRC",
    parse: parsePairSpec,
    help: "a model pair, rates from A's side (repeatable)",
  },
  limit: { name: "limit", kind: "int", range: { min: 1 }, help: "use only the first N questions" },
  answersDir: {
    name: "answers_dir",
    kind: "string",
    metavar: "DIR",
    group: ANSWERS_GROUP,
    help: "cache of generated answers",
  },
  answerKeyEnv: {
    name: "answer_key_env",
    kind: "string",
    metavar: "NAME",
    group: ANSWERS_GROUP,
    defaultHelp: "none",
    help: "environment variable holding the API key for answer endpoints",
  },
  answerMaxTokens: {
    name: "answer_max_tokens",
    kind: "int",
    range: { min: 1 },
    default: FASTCHAT_MAX_NEW_TOKENS,
    group: ANSWERS_GROUP,
    help: "max_tokens for generated answers (FastChat's --max-new-token)",
  },
  answerTemperature: {
    name: "answer_temperature",
    kind: "float",
    metavar: "X",
    range: { min: 0, max: 2 },
    defaultHelp: `FastChat's per question category, ${FASTCHAT_DEFAULT_TEMPERATURE} for questions without ` +
      "one of its categories",
    group: ANSWERS_GROUP,
    help: "temperature for generated answers",
  },
  retries: {
    name: "retries",
    kind: "int",
    range: { min: 0 },
    default: HTTP_RETRIES,
    help: "HTTP retries on 429/5xx/network errors, with backoff",
  },
} satisfies SettingsTable;

/**
 * How answers are generated for a pair's endpoint, from {@link COMPARISON_SETTINGS}' values; a key variable
 * named but unset is an error naming the flag.
 * @example
 * ```ts
 * answersFrom({ answerMaxTokens: 512 }, {}, (name) => Deno.env.get(name)); // { apiKey: undefined, maxTokens: 512, temperature: undefined }
 * ```
 */
export function answersFrom(
  values: SettingValues<typeof COMPARISON_SETTINGS>,
  sources: { answerKeyEnv?: string },
  env: (name: string) => string | undefined,
): NonNullable<WinRateConfig["answers"]> {
  return {
    apiKey: secretFromEnv(sources.answerKeyEnv ?? "--answer_key_env", values.answerKeyEnv, { env }),
    maxTokens: values.answerMaxTokens,
    temperature: values.answerTemperature,
  };
}

const JUDGE = "the judge";
const OUTPUTS = "outputs";

/**
 * Every flag of `deno task winrate`, by key.
 * @example
 * ```ts
 * WINRATE_SETTINGS.judgeUrl.name; // "judge_url"
 * ```
 */
export const WINRATE_SETTINGS = {
  ...COMPARISON_SETTINGS,
  modelAUrl: {
    name: "model_a_url",
    kind: "string",
    metavar: "URL",
    check: HTTP_URL,
    help: "shorthand for one pair of served models, with --model_b_url",
  },
  modelBUrl: { name: "model_b_url", kind: "string", metavar: "URL", check: HTTP_URL, help: "the other one" },
  modelA: {
    name: "model_a",
    kind: "string",
    metavar: "NAME",
    defaultHelp: "the id the endpoint's /models lists first",
    help: "a name for --model_a_url's model",
  },
  modelB: {
    name: "model_b",
    kind: "string",
    metavar: "NAME",
    defaultHelp: "the id the endpoint's /models lists first",
    help: "a name for --model_b_url's model",
  },
  parallel: {
    name: "parallel",
    kind: "int",
    range: { min: 1 },
    default: PARALLEL_REQUESTS,
    help: "requests in flight at once, judge and answer calls alike",
  },
  answersDir: { ...COMPARISON_SETTINGS.answersDir, defaultHelp: "answers/ next to --out" },
  judgeUrl: {
    name: "judge_url",
    kind: "string",
    metavar: "URL",
    required: true,
    check: HTTP_URL,
    group: JUDGE,
    help: "the judge's base URL, e.g. https://api.openai.com/v1",
  },
  judgeModel: {
    name: "judge_model",
    kind: "string",
    metavar: "NAME",
    required: true,
    group: JUDGE,
    help: "its model",
  },
  judgeKeyEnv: {
    name: "judge_key_env",
    kind: "string",
    metavar: "NAME",
    defaultHelp: "OPENAI_API_KEY; unset: no key",
    group: JUDGE,
    help: "environment variable holding the judge's API key",
  },
  judgeMaxTokens: {
    name: "judge_max_tokens",
    kind: "int",
    range: { min: 1 },
    default: JUDGE_MAX_TOKENS,
    group: JUDGE,
    help: "max_tokens for each judgment",
  },
  verdictRetries: {
    name: "verdict_retries",
    kind: "int",
    range: { min: 0 },
    default: VERDICT_RETRIES,
    group: JUDGE,
    help: "re-ask a judge whose reply has no [[A]]/[[B]]/[[C]] this often",
  },
  verdictRule: {
    name: "verdict_rule",
    kind: "string",
    choices: VERDICT_RULES,
    default: "fastchat",
    group: JUDGE,
    help: "how a verdict is read from the reply: fastchat, [[A]] anywhere, then [[B]], then [[C]], as " +
      "FastChat reads verdicts; last, the last marker",
  },
  out: {
    name: "out",
    kind: "string",
    metavar: "FILE",
    default: "runs/winrate/judgments.jsonl",
    group: OUTPUTS,
    help: "results JSONL, appended and resumed",
  },
  summary: {
    name: "summary",
    kind: "string",
    metavar: "FILE",
    defaultHelp: "--out with .summary.json",
    group: OUTPUTS,
    help: "JSON summary",
  },
  table: {
    name: "table",
    kind: "string",
    metavar: "FILE",
    defaultHelp: "--out with .md",
    group: OUTPUTS,
    help: "Markdown table",
  },
} satisfies SettingsTable;

/**
 * The help text of `deno task winrate`.
 * @example
 * ```ts
 * console.log(winRateUsage());
 * ```
 */
export function winRateUsage(): string {
  return settingsHelp(WINRATE_SETTINGS, {
    usage:
      "Usage: deno task winrate --prompts FILE --judge_url URL --judge_model NAME --pair A=SRC,B=SRC [flags]",
    intro: `Compares models pairwise with an LLM judge (FastChat MT-Bench pairwise conventions).

${PAIR_SOURCES}`,
    groups: ["options", JUDGE, OUTPUTS, ANSWERS_GROUP],
    footer:
      `Exit status: 0 when every pair has a verdict; 1 when some have none (no verdict after --verdict_retries,
or the judge failed; the summary counts them as no_verdict and a rerun judges them again); 2 on bad input.

The task may read OPENAI_API_KEY and KOTRANSFER_* variables; for a key in another variable, run
tasks/winrate.ts with --allow-env=NAME added to its deno run flags.`,
  });
}

function servedPair(values: SettingValues<typeof WINRATE_SETTINGS>): PairSpec[] {
  const urlA = values.modelAUrl, urlB = values.modelBUrl;
  if (urlA === undefined && urlB === undefined) return [];
  if (urlA === undefined || urlB === undefined) {
    throw new Error("--model_a_url and --model_b_url go together");
  }
  const spec = (url: string, name?: string): ModelSpec => ({ name, source: { kind: "url", url } });
  return [{ a: spec(urlA, values.modelA), b: spec(urlB, values.modelB) }];
}

/**
 * Turns command-line arguments into a run configuration, or `"help"`. Errors name the flag.
 *
 * @example
 * ```ts
 * const config = winRateConfigFromArgs(
 *   ["--prompts", "p.jsonl", "--pair", "x=x.jsonl,y=y.jsonl", "--judge_url", "http://127.0.0.1:8081/v1",
 *    "--judge_model", "judge"],
 *   (name) => Deno.env.get(name),
 * );
 * ```
 */
export function winRateConfigFromArgs(
  args: string[],
  env: (name: string) => string | undefined,
): WinRateConfig | "help" {
  const parsed = parseSettings(WINRATE_SETTINGS, args);
  if (parsed.help) return "help";
  const values = withTableDefaults(WINRATE_SETTINGS, parsed.values);
  const pairs = [...(values.pairs ?? []), ...servedPair(values)];
  if (pairs.length === 0) throw new Error("give at least one --pair (or --model_a_url with --model_b_url)");
  checkRequired(WINRATE_SETTINGS, values);
  return {
    promptsPath: values.prompts!,
    limit: values.limit,
    pairs,
    judge: {
      url: values.judgeUrl!,
      model: values.judgeModel!,
      apiKey: secretFromEnv(parsed.sources.judgeKeyEnv ?? "--judge_key_env", values.judgeKeyEnv, {
        env,
        fallback: "OPENAI_API_KEY",
      }),
      maxTokens: values.judgeMaxTokens,
    },
    verdictRetries: values.verdictRetries,
    verdictRule: values.verdictRule as VerdictRule,
    resultsPath: values.out!,
    summaryPath: values.summary,
    tablePath: values.table,
    answersDir: values.answersDir,
    answers: answersFrom(values, parsed.sources, env),
    parallel: values.parallel,
    http: { retries: values.retries },
    log: (line) => console.error(line),
  };
}
