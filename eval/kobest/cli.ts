/**
 * The command line of `deno task kobest`: its settings table (one definition of each flag's name, aliases,
 * range, default and help; lm-evaluation-harness's names where it has them: `--tasks`, `--num_fewshot`,
 * `--limit`, `--batch_size`, `--max_length`, `--base_url`, `--num_concurrent`), the generated help, and the
 * task itself: parse, score with {@link runKobest}, print.
 *
 * @module
 */
import { deniedPermissionLine } from "../../io/cli.ts";
import { HTTP_RETRIES } from "../../io/openai_client.ts";
import {
  checkRequired,
  HTTP_URL,
  parseSettings,
  secretFromEnv,
  settingsHelp,
  type SettingsTable,
  withTableDefaults,
} from "../../io/settings.ts";
import { KOBEST_SPLITS, KOBEST_TASKS, type KobestSplit, parseKobestTasks } from "./data.ts";
import { KOBEST_BATCH_SIZE } from "./evaluate.ts";
import { DEFAULT_FEWSHOT_SEED } from "./fewshot.ts";
import { REMOTE_CONCURRENCY, runKobest, type RunKobestOptions } from "./run.ts";

/**
 * Shot settings as `--shots` takes them: comma-separated integers ≥ 0 (`0,5`). Errors name `where`.
 * @example
 * ```ts
 * parseShots("0,5", "--shots"); // [0, 5]
 * ```
 */
export function parseShots(text: string, where: string): number[] {
  return text.split(",").map((part) => {
    const n = Number(part.trim());
    if (part.trim() === "" || !Number.isSafeInteger(n) || n < 0) {
      throw new Error(
        `${where}: expected comma-separated integers ≥ 0 such as 0,5, got ${JSON.stringify(text)}`,
      );
    }
    return n;
  });
}

const REMOTE = "through a server (with --base_url)";

/**
 * Every flag of `deno task kobest`, by key.
 * @example
 * ```ts
 * KOBEST_SETTINGS.shots.aliases; // ["num_fewshot"]
 * ```
 */
export const KOBEST_SETTINGS = {
  models: {
    name: "model",
    kind: "list",
    metavar: "DIR",
    required: true,
    help: "a Hugging Face model folder, Hub id or PEFT adapter folder (repeatable: several models, one " +
      "table); with --base_url, the served model's name",
  },
  tasks: {
    name: "tasks",
    kind: "string",
    metavar: "LIST",
    parse: parseKobestTasks,
    defaultHelp: "all five",
    help: `comma-separated subset of ${KOBEST_TASKS.join(",")}, in lm-eval's names too (kobest_boolq, …; ` +
      "kobest for all five)",
  },
  shots: {
    name: "shots",
    aliases: ["num_fewshot"],
    kind: "string",
    metavar: "LIST",
    parse: parseShots,
    default: [0],
    help: "shot settings, comma-separated integers ≥ 0 such as 0,5 (one table row each)",
  },
  split: { name: "split", kind: "string", choices: KOBEST_SPLITS, default: "test", help: "the split scored" },
  limit: {
    name: "limit",
    kind: "float",
    metavar: "N",
    check: {
      expected: "an integer ≥ 1, or a fraction in (0, 1)",
      ok: (v: number) => v > 0 && (v < 1 || Number.isInteger(v)),
    },
    help: "first N documents per task, or that share of them (lm-eval's --limit)",
  },
  dataDir: {
    name: "data_dir",
    kind: "string",
    metavar: "DIR",
    help: "KoBEST in the v1.0 TSV layout or the Hub's jsonl layout; without it the files are downloaded " +
      "from the Hugging Face Hub (skt/kobest_v1) into HF_HOME",
  },
  out: {
    name: "out",
    kind: "string",
    metavar: "FILE.json",
    help: "lm-eval results (one object, or an array of one per model × shots)",
  },
  dumpRequests: {
    name: "dump_requests",
    kind: "string",
    metavar: "FILE",
    help: "one JSON line per scored request (context, continuation, log-likelihood)",
  },
  batchSize: {
    name: "batch_size",
    kind: "int",
    range: { min: 1 },
    default: KOBEST_BATCH_SIZE,
    help: "sequences per forward pass; prompts per request with --base_url",
  },
  maxLength: {
    name: "max_length",
    kind: "int",
    range: { min: 2 },
    defaultHelp: "the model's max_position_embeddings, as lm-eval's HF model",
    help: "longest input in tokens; through a server, lm-eval's API max_length (prompt plus the generated " +
      "token, at least 3; by default the server's max_model_len, else the tokenizer's max_position_embeddings, " +
      "else 2048)",
  },
  seed: {
    name: "seed",
    kind: "int",
    range: { min: 0 },
    default: DEFAULT_FEWSHOT_SEED,
    help: "few-shot sampling seed",
  },
  ignoreUnusedWeights: {
    name: "ignore_unused_weights",
    kind: "bool",
    default: false,
    help: "score a model whose files hold tensors its config.json does not use (a warning)",
  },
  baseUrl: {
    name: "base_url",
    kind: "string",
    metavar: "URL",
    group: REMOTE,
    check: HTTP_URL,
    help: "score through an OpenAI-compatible server (vLLM, deno task serve) with lm-eval's " +
      "local-completions protocol: token-id prompts, echo, logprobs 1, max_tokens 1, temperature 0, seed 1234",
  },
  tokenizer: {
    name: "tokenizer",
    kind: "string",
    metavar: "DIR",
    group: REMOTE,
    defaultHelp: "the --model name",
    help: "the tokenizer (folder or Hub id)",
  },
  apiKeyEnv: {
    name: "api_key_env",
    kind: "string",
    metavar: "NAME",
    group: REMOTE,
    help: "send the key in environment variable NAME as a Bearer token (the task may read OPENAI_API_KEY " +
      "and KOTRANSFER_*; for another NAME add --allow-env=NAME to its deno run flags)",
  },
  concurrency: {
    name: "concurrency",
    aliases: ["num_concurrent"],
    kind: "int",
    range: { min: 1 },
    group: REMOTE,
    defaultHelp: String(REMOTE_CONCURRENCY),
    help: "requests in flight at once",
  },
  retries: {
    name: "retries",
    kind: "int",
    range: { min: 0 },
    group: REMOTE,
    defaultHelp: String(HTTP_RETRIES),
    help: "retries of a failed request (429, 5xx, network errors), with backoff",
  },
} satisfies SettingsTable;

/** The settings that only mean something through a server. */
const REMOTE_ONLY = ["tokenizer", "apiKeyEnv", "concurrency", "retries"] as const;

/**
 * The help text of `deno task kobest`.
 * @example
 * ```ts
 * console.log(kobestUsage());
 * ```
 */
export function kobestUsage(): string {
  return settingsHelp(KOBEST_SETTINGS, {
    usage: `Usage: deno task kobest --model DIR|ORG/NAME [--model …] [flags]
       deno task kobest --base_url URL --model NAME [--tokenizer DIR|ORG/NAME] [flags]`,
    intro: "Scores models on KoBEST (BoolQ, COPA, HellaSwag, SentiNeg, WiC) as lm-evaluation-harness does " +
      "and prints one table row per model × shot setting (macro-F1, accuracy in parentheses, size-weighted " +
      "average).",
    groups: ["options", REMOTE],
    footer:
      `Every model, the data and the output paths are checked before the first model is scored; --out and
--dump_requests are rewritten after each model, so a failure later in the run keeps what was scored.`,
  });
}

/**
 * Turns command-line arguments into {@link runKobest}'s options, or `"help"`. Errors name the flag.
 * @example
 * ```ts
 * kobestOptionsFromArgs(["--model", "runs/orpo-tiny", "--num_fewshot", "5"]);
 * // { models: ["runs/orpo-tiny"], shots: [5], split: "test", batchSize: 16, seed: 1234, … }
 * ```
 */
export function kobestOptionsFromArgs(
  args: string[],
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): RunKobestOptions | "help" {
  const parsed = parseSettings(KOBEST_SETTINGS, args);
  if (parsed.help) return "help";
  const values = withTableDefaults(KOBEST_SETTINGS, parsed.values);
  checkRequired(KOBEST_SETTINGS, values);
  if (values.baseUrl === undefined) {
    const given = REMOTE_ONLY.find((key) => values[key] !== undefined);
    if (given) throw new Error(`${parsed.sources[given]} needs --base_url`);
  }
  return {
    models: values.models!,
    tasks: values.tasks,
    shots: values.shots,
    split: values.split as KobestSplit,
    limit: values.limit,
    dataDir: values.dataDir,
    out: values.out,
    dumpRequests: values.dumpRequests,
    batchSize: values.batchSize,
    maxLength: values.maxLength,
    seed: values.seed,
    ignoreUnusedWeights: values.ignoreUnusedWeights,
    remote: values.baseUrl === undefined ? undefined : {
      baseUrl: values.baseUrl,
      tokenizer: values.tokenizer,
      apiKey: secretFromEnv(parsed.sources.apiKeyEnv ?? "--api_key_env", values.apiKeyEnv, { env }),
      concurrency: values.concurrency,
      retries: values.retries,
    },
  };
}

/**
 * The whole of `tasks/kobest.ts`: parse, score, print the table. Returns the exit status: 0, 1 when scoring
 * failed, 2 on a bad command line.
 * @example
 * ```ts
 * Deno.exit(await runKobestTask(["--model", "runs/orpo-tiny", "--shots", "0,5"]));
 * ```
 */
export async function runKobestTask(args: string[]): Promise<number> {
  let options;
  try {
    options = kobestOptionsFromArgs(args);
  } catch (e) {
    console.error(deniedPermissionLine("kobest", e) ?? `error: ${(e as Error).message}`);
    return 2;
  }
  if (options === "help") {
    console.log(kobestUsage());
    return 0;
  }
  try {
    const { table } = await runKobest(options);
    console.log(table);
    if (options.out) console.log(`results: ${options.out}`);
    if (options.dumpRequests) console.log(`requests: ${options.dumpRequests}`);
    return 0;
  } catch (e) {
    console.error(deniedPermissionLine("kobest", e) ?? `error: ${(e as Error).message}`);
    return 1;
  }
}
