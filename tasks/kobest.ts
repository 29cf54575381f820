#!/usr/bin/env -S deno run --no-prompt --allow-read --allow-write --allow-env=DENO_WEBGPU_BACKEND,HF_*,HUGGING*,XDG_CACHE_HOME,HOME,USERPROFILE,OPENAI_API_KEY,KOTRANSFER_* --allow-net
/**
 * `deno task kobest --model DIR [--model DIR …]`: KoBEST scored exactly as lm-evaluation-harness scores it,
 * printed as the paper's Table 2 (macro-F1, accuracy) and written as lm-eval results JSON. With
 * `--base-url URL` the models are served ones, scored through the endpoint as lm-eval's `local-completions`
 * does. The work is in eval/kobest/run.ts.
 * @module
 */
import { parseArgs } from "node:util";
import { KOBEST_SPLITS, KOBEST_TASKS, type KobestSplit, type KobestTask } from "../eval/kobest/data.ts";
import { runKobest } from "../eval/kobest/run.ts";
import { runTask } from "../io/cli.ts";

const USAGE = `deno task kobest --model DIR|ORG/NAME [flags]
deno task kobest --base-url URL --model NAME [--tokenizer DIR|ORG/NAME] [flags]

Scores models on KoBEST (BoolQ, COPA, HellaSwag, SentiNeg, WiC) as lm-evaluation-harness does and prints
one table row per model × shot setting (macro-F1, accuracy in parentheses, size-weighted average).

  --model DIR              a Hugging Face model folder, Hub id or PEFT adapter folder (repeatable: several
                           models, one table); with --base-url, the served model's name
  --base-url URL           score through an OpenAI-compatible server (vLLM, deno task serve) with
                           lm-eval's local-completions protocol: token-id prompts, echo, logprobs 1,
                           max_tokens 1, temperature 0, seed 1234
  --tokenizer DIR          with --base-url: the tokenizer (folder or Hub id; default: the --model name)
  --api-key-env NAME       with --base-url: send the key in env variable NAME as a Bearer token (the
                           shebang allows OPENAI_API_KEY and KOTRANSFER_*; add --allow-env=NAME for others)
  --concurrency N          with --base-url: requests in flight at once (default 4)
  --retries N              with --base-url: retries of a failed request, with backoff (default 5)
  --tasks LIST             comma-separated subset of ${KOBEST_TASKS.join(",")}, in lm-eval's names too
                           (kobest_boolq, …; kobest for all five) (default all)
  --shots LIST             shot settings, e.g. 0,5 (default 0)
  --split S                ${KOBEST_SPLITS.join(" | ")} (default test)
  --limit N                first N documents per task (a fraction in (0,1) means that share)
  --data-dir DIR           KoBEST in the v1.0 TSV layout or the Hub's jsonl layout; without it the files are
                           downloaded from the Hugging Face Hub (skt/kobest_v1) into HF_HOME
  --out FILE.json          lm-eval results (one object, or an array of one per model × shots)
  --dump-requests FILE     one JSON line per scored request (context, continuation, log-likelihood)
  --batch-size N           sequences per forward pass; prompts per request with --base-url (default 16)
  --max-length N           longest input in tokens (default: the model's max_position_embeddings, as
                           lm-eval's HF model); with --base-url, lm-eval's API max_length, prompt plus the
                           generated token (default: the server's max_model_len, else the tokenizer
                           folder's max_position_embeddings, else 2048)
  --seed N                 few-shot sampling seed (default 1234)
  --ignore-unused-weights  score a model whose files hold tensors its config.json does not use (a warning)
  -h, --help               show this help

Every model, the data and the output paths are checked before the first model is scored; --out and
--dump-requests are rewritten after each model, so a failure later in the run keeps what was scored.
`;

/** `--tasks`: our names or lm-eval's (`kobest_boolq`, …), and `kobest` for the group. */
function parseKobestTasks(list: string, fail: (msg: string) => never): KobestTask[] {
  const out: KobestTask[] = [];
  for (const raw of list.split(",").map((t) => t.trim())) {
    const names = raw === "kobest" ? [...KOBEST_TASKS] : [raw.replace(/^kobest_/, "") as KobestTask];
    for (const t of names) {
      if (!KOBEST_TASKS.includes(t)) {
        fail(
          `--tasks: unknown task "${raw}" (expected kobest or some of ${
            KOBEST_TASKS.join(", ")
          }, with or without kobest_)`,
        );
      }
      if (!out.includes(t)) out.push(t);
    }
  }
  return out;
}

async function main(): Promise<void> {
  let values;
  try {
    values = parseArgs({
      args: Deno.args,
      options: {
        help: { type: "boolean", short: "h" },
        model: { type: "string", multiple: true },
        tasks: { type: "string" },
        shots: { type: "string" },
        split: { type: "string" },
        limit: { type: "string" },
        "data-dir": { type: "string" },
        out: { type: "string" },
        "dump-requests": { type: "string" },
        "batch-size": { type: "string" },
        "max-length": { type: "string" },
        seed: { type: "string" },
        "ignore-unused-weights": { type: "boolean" },
        "base-url": { type: "string" },
        tokenizer: { type: "string" },
        "api-key-env": { type: "string" },
        concurrency: { type: "string" },
        retries: { type: "string" },
      },
    }).values;
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const fail = (msg: string): never => {
    console.error(`error: ${msg}\n\n${USAGE}`);
    Deno.exit(2);
  };
  const int = (flag: string, v: string | undefined, min = 0) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) {
      fail(`--${flag}: expected a number ≥ ${min}, got ${JSON.stringify(v)}`);
    }
    return n;
  };
  if (!values.model?.length) fail("--model is required");
  const tasks = values.tasks === undefined ? undefined : parseKobestTasks(values.tasks, fail);
  const remoteOnly = ["tokenizer", "api-key-env", "concurrency", "retries"] as const;
  for (const flag of remoteOnly) {
    if (values[flag] !== undefined && !values["base-url"]) fail(`--${flag} needs --base-url`);
  }
  const keyEnv = values["api-key-env"];
  const apiKey = keyEnv === undefined ? undefined : Deno.env.get(keyEnv);
  if (keyEnv !== undefined && !apiKey) {
    fail(`--api-key-env ${keyEnv}: the environment variable is unset or empty`);
  }
  const shots = values.shots?.split(",").map((s) => int("shots", s.trim())!);
  if (values.split && !KOBEST_SPLITS.includes(values.split as KobestSplit)) {
    fail(`--split: unknown split "${values.split}"`);
  }
  try {
    const { table } = await runKobest({
      models: values.model!,
      tasks,
      shots,
      split: values.split as KobestSplit | undefined,
      limit: int("limit", values.limit),
      dataDir: values["data-dir"],
      out: values.out,
      dumpRequests: values["dump-requests"],
      batchSize: int("batch-size", values["batch-size"], 1),
      maxLength: int("max-length", values["max-length"], 2),
      seed: int("seed", values.seed),
      ignoreUnusedWeights: values["ignore-unused-weights"],
      remote: values["base-url"]
        ? {
          baseUrl: values["base-url"],
          tokenizer: values.tokenizer,
          apiKey,
          concurrency: int("concurrency", values.concurrency, 1),
          retries: int("retries", values.retries, 0),
        }
        : undefined,
    });
    console.log(table);
    if (values.out) console.log(`results: ${values.out}`);
    if (values["dump-requests"]) console.log(`requests: ${values["dump-requests"]}`);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}

if (import.meta.main) await runTask("kobest", main);
