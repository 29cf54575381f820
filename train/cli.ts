/**
 * The command line shared by `deno task sft|dpo|orpo`: flags (TRL's names in kebab case), help text, and the
 * embedded default run used when neither `--model` nor `--data` is given.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { DpoLossType, ObjectiveKind } from "../kernels/objective.ts";
import { BUNDLED_DATA, ensureTinyBase } from "../model/tiny.ts";
import { reportHint } from "../report/hint.ts";
import { type TrainConfig, validateConfig, withDefaults } from "./config.ts";
import { parseLoraTargets } from "./lora.ts";
import type { Schedule } from "./schedule.ts";
import { train, type TrainResult } from "./trainer.ts";

const OPTIONS = {
  help: { type: "boolean", short: "h" },
  model: { type: "string" },
  data: { type: "string", multiple: true },
  "eval-data": { type: "string", multiple: true },
  "eval-fraction": { type: "string" },
  out: { type: "string" },
  "chat-template": { type: "string" },
  "skip-bad-rows": { type: "boolean" },
  "max-length": { type: "string" },
  "max-prompt-length": { type: "string" },
  "no-completion-only-loss": { type: "boolean" },
  "assistant-only-loss": { type: "boolean" },
  "batch-size": { type: "string" },
  "grad-accum": { type: "string" },
  epochs: { type: "string" },
  "max-steps": { type: "string" },
  lr: { type: "string" },
  schedule: { type: "string" },
  "warmup-steps": { type: "string" },
  "warmup-ratio": { type: "string" },
  "weight-decay": { type: "string" },
  "max-grad-norm": { type: "string" },
  "adam-beta1": { type: "string" },
  "adam-beta2": { type: "string" },
  "adam-eps": { type: "string" },
  seed: { type: "string" },
  beta: { type: "string" },
  lambda: { type: "string" },
  "loss-type": { type: "string" },
  "orpo-nll": { type: "string" },
  "pad-multiple": { type: "string" },
  "lora-r": { type: "string" },
  "lora-alpha": { type: "string" },
  "lora-targets": { type: "string" },
  rslora: { type: "boolean" },
  "legacy-encoding": { type: "boolean" },
  merge: { type: "boolean" },
  "f16-base": { type: "boolean" },
  "log-every": { type: "string" },
  "eval-every": { type: "string" },
  "save-every": { type: "string" },
  "save-total-limit": { type: "string" },
  "save-dtype": { type: "string" },
  resume: { type: "boolean" },
  "overwrite-output-dir": { type: "boolean" },
  "ignore-unused-weights": { type: "boolean" },
} as const;

/** Help text of one objective's task. */
export function trainUsage(objective: ObjectiveKind): string {
  const what = {
    sft: "supervised fine-tuning",
    dpo: "Direct Preference Optimization",
    orpo: "Odds Ratio Preference Optimization",
  }[objective];
  const data = objective === "sft"
    ? "JSONL/JSON/CSV/TSV rows with `text`, `prompt`/`completion` or `messages`"
    : "JSONL/JSON/CSV/TSV rows with `prompt`/`chosen`/`rejected` (text or chat lists)";
  return `deno task ${objective} [flags]  — ${what} on WebGPU

With neither --model nor --data, trains the embedded default: a tiny Korean Llama (built on first use in
runs/tiny-base) on the bundled data in data/, saving to runs/${objective}-tiny/final. Other flags still apply.

data and model
  --model DIR|ORG/NAME     base model: a Hugging Face folder or a Hub id (downloaded into HF_HOME); a PEFT
                           adapter folder trains that adapter further (with --lora-r; its own r, alpha
                           and targets are kept)
  --data FILE              training data (repeatable): ${data}
  --eval-data FILE         held-out data (repeatable); otherwise --eval-fraction of --data
  --eval-fraction F        share of rows held out for evaluation (default 0)
  --out DIR                run folder: metrics.jsonl, checkpoint-*/, final/ (required with --model); a
                           folder holding an earlier run needs --resume or --overwrite-output-dir
  --chat-template FILE     Jinja chat template for models without one
  --skip-bad-rows          skip invalid rows (counted) instead of stopping at the first
  --max-length N           tokens per sequence (default 1024); longer ones are truncated
  --max-prompt-length N    prompt tokens kept (the end of the prompt)
  --legacy-encoding        tokenize as this toolkit did before following current TRL (EOS as an id,
                           BOS added to chats without one, pairs' prompt and completions apart)${
    objective === "sft"
      ? `
  --no-completion-only-loss  prompt-completion rows: loss on the prompt too
  --assistant-only-loss    chat rows: loss on assistant turns only`
      : ""
  }

optimisation
  --batch-size N           ${objective === "sft" ? "sequences" : "pairs"} per micro-batch (default 8)
  --grad-accum N           micro-batches per optimizer step (default 1)
  --epochs N | --max-steps N
  --lr X                   peak learning rate (default ${
    { sft: "2e-5", dpo: "1e-6", orpo: "1e-6" }[objective]
  })
  --schedule S             linear | cosine | constant | constant_with_warmup (default linear)
  --warmup-steps N | --warmup-ratio F
  --weight-decay X         AdamW decay of weights (not biases or norms; default 0)
  --max-grad-norm X        clip the global gradient norm (default 1; 0 disables)
  --adam-beta1/--adam-beta2/--adam-eps, --seed N (default 42), --pad-multiple N (default 8)${
    objective === "dpo"
      ? `
  --beta X                 DPO β (default 0.1)
  --loss-type T            sigmoid | ipo | hinge (default sigmoid)`
      : objective === "orpo"
      ? `
  --beta X | --lambda X    ORPO λ, TRL's beta (default 0.1)
  --orpo-nll whole|completion  NLL over the whole chosen sequence (TRL, default) or its answer only`
      : ""
  }

LoRA
  --lora-r N --lora-alpha X --lora-targets all-linear|q_proj,v_proj,…  train adapters (PEFT layout)
  --rslora                 alpha/√r scaling
  --merge                  also write the merged full model to <out>/merged
  --f16-base               hold the frozen base's linear weights in f16

logging and checkpoints
  --log-every N, --eval-every N, --save-every N, --save-total-limit N
  --save-dtype F32|BF16|F16  dtype of the final model (checkpoints stay F32)
  --resume                 continue from the newest checkpoint in --out, exactly (an error if there is none)
  --overwrite-output-dir   start afresh in an --out holding an earlier run, deleting its checkpoints
  --ignore-unused-weights  train a base whose files hold tensors its config.json does not use (a warning)
`;
}

/**
 * The number a string flag holds, or undefined when the flag is absent; anything else is an error naming it.
 * @example
 * ```ts
 * numberFlag({ lr: "3e-4" }, "lr"); // 0.0003
 * ```
 */
export function numberFlag(values: Record<string, unknown>, flag: string): number | undefined {
  const v = values[flag];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== "string" || v.trim() === "" || !Number.isFinite(n)) {
    throw new Error(`--${flag}: expected a number, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** Settings of the embedded default run of each objective (small model, bundled data, a few minutes). */
export function embeddedDefault(
  objective: ObjectiveKind,
): Partial<TrainConfig> & { model: string; data: string[]; out: string } {
  return {
    model: "runs/tiny-base",
    data: [objective === "sft" ? BUNDLED_DATA.sft.pathname : BUNDLED_DATA.preference.pathname],
    out: `runs/${objective}-tiny`,
    evalFraction: 0.1,
    maxLength: 128,
    batchSize: 8,
    epochs: 3,
    lr: objective === "dpo" ? 5e-4 : 3e-3,
    schedule: "cosine",
    warmupRatio: 0.05,
    weightDecay: 0.01,
    evalEvery: 10,
    saveEvery: 20,
    saveTotalLimit: 2,
  };
}

/**
 * Parses a task's arguments into a run configuration; `undefined` means help was printed.
 * @example
 * ```ts
 * const cfg = parseTrainArgs("orpo", ["--model", "m", "--data", "d.jsonl", "--out", "runs/x"]);
 * ```
 */
export function parseTrainArgs(
  objective: ObjectiveKind,
  args: string[],
): { config: TrainConfig; embedded: boolean } | undefined {
  const { values, positionals } = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  if (values.help) return undefined;
  if (positionals.length) {
    throw new Error(`unexpected argument ${JSON.stringify(positionals[0])}; flags start with --`);
  }
  const embedded = values.model === undefined && values.data === undefined;
  if (!embedded && (values.model === undefined || values.data === undefined || values.out === undefined)) {
    throw new Error(
      "--model, --data and --out go together (or give none of them for the embedded default run)",
    );
  }
  const base = embedded
    ? embeddedDefault(objective)
    : { model: values.model!, data: values.data!, out: values.out! };
  const p: Partial<TrainConfig> & { model: string; data: string[]; out: string } = { ...base };
  if (values.out) p.out = values.out;
  const set = <K extends keyof TrainConfig>(key: K, v: TrainConfig[K] | undefined) => {
    if (v !== undefined) p[key] = v;
  };
  set("evalData", values["eval-data"]);
  set("evalFraction", numberFlag(values, "eval-fraction"));
  if (values["chat-template"]) p.chatTemplate = Deno.readTextFileSync(values["chat-template"]);
  set("skipBadRows", values["skip-bad-rows"]);
  set("maxLength", numberFlag(values, "max-length"));
  set("maxPromptLength", numberFlag(values, "max-prompt-length"));
  if (values["no-completion-only-loss"]) p.completionOnlyLoss = false;
  set("assistantOnlyLoss", values["assistant-only-loss"]);
  set("legacyEncoding", values["legacy-encoding"]);
  set("batchSize", numberFlag(values, "batch-size"));
  set("gradAccum", numberFlag(values, "grad-accum"));
  set("epochs", numberFlag(values, "epochs"));
  set("maxSteps", numberFlag(values, "max-steps"));
  set("lr", numberFlag(values, "lr"));
  set("schedule", values.schedule as Schedule | undefined);
  set("warmupSteps", numberFlag(values, "warmup-steps"));
  set("warmupRatio", numberFlag(values, "warmup-ratio"));
  set("weightDecay", numberFlag(values, "weight-decay"));
  set("maxGradNorm", numberFlag(values, "max-grad-norm"));
  set("adamBeta1", numberFlag(values, "adam-beta1"));
  set("adamBeta2", numberFlag(values, "adam-beta2"));
  set("adamEps", numberFlag(values, "adam-eps"));
  set("seed", numberFlag(values, "seed"));
  set("beta", numberFlag(values, "beta") ?? numberFlag(values, "lambda"));
  set("lossType", values["loss-type"] as DpoLossType | undefined);
  set("orpoNll", values["orpo-nll"] as "whole" | "completion" | undefined);
  set("padMultiple", numberFlag(values, "pad-multiple"));
  const r = numberFlag(values, "lora-r");
  if (r !== undefined) {
    p.lora = {
      r,
      alpha: numberFlag(values, "lora-alpha") ?? 2 * r,
      targets: parseLoraTargets(values["lora-targets"] ?? "all-linear"),
      rslora: Boolean(values.rslora),
    };
  } else if (values["lora-alpha"] !== undefined || values["lora-targets"] !== undefined) {
    throw new Error("--lora-alpha and --lora-targets need --lora-r");
  }
  set("merge", values.merge);
  set("f16Base", values["f16-base"]);
  set("logEvery", numberFlag(values, "log-every"));
  set("evalEvery", numberFlag(values, "eval-every"));
  set("saveEvery", numberFlag(values, "save-every"));
  set("saveTotalLimit", numberFlag(values, "save-total-limit"));
  set("saveDtype", values["save-dtype"] as TrainConfig["saveDtype"] | undefined);
  set("resume", values.resume);
  set("overwriteOutputDir", values["overwrite-output-dir"]);
  // The embedded default run owns runs/<objective>-tiny: running it again replaces it, unless resuming.
  if (embedded && values.out === undefined && !values.resume) p.overwriteOutputDir = true;
  set("ignoreUnusedWeights", values["ignore-unused-weights"]);
  const config = withDefaults(objective, p);
  validateConfig(config);
  return { config, embedded };
}

/**
 * The whole of `tasks/sft.ts`, `tasks/dpo.ts` and `tasks/orpo.ts`: parse, build the tiny base when the
 * embedded default runs, train, report. Returns the process exit code.
 */
export async function runTrainingTask(objective: ObjectiveKind, args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseTrainArgs(objective, args);
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n\n${trainUsage(objective)}`);
    return 2;
  }
  if (!parsed) {
    console.log(trainUsage(objective));
    return 0;
  }
  const { config, embedded } = parsed;
  if (embedded && await ensureTinyBase(config.model)) {
    console.error(`[${objective}] built the tiny base model in ${config.model}`);
  }
  let result: TrainResult;
  try {
    result = await train(config);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return 1;
  }
  const change = result.firstLoss !== undefined && result.lastLoss !== undefined
    ? ` (loss ${result.firstLoss.toFixed(4)} → ${result.lastLoss.toFixed(4)})`
    : "";
  console.log(`${objective}: ${result.steps}/${result.totalSteps} steps${change}`);
  console.log(`model: ${result.finalDir}${result.mergedDir ? `\nmerged: ${result.mergedDir}` : ""}`);
  console.log(`metrics: ${result.metricsFile}`);
  console.log(reportHint(config.out));
  return 0;
}
