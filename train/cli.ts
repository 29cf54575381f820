/**
 * The command line shared by `deno task sft|dpo|orpo`: flags (TRL's names in kebab case, each read as
 * config.ts's SETTINGS define it), help text, and the embedded default run used when neither `--model` nor
 * `--data` is given.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import type { ObjectiveKind } from "../kernels/objective.ts";
import { BUNDLED_DATA, ensureTinyBase } from "../model/tiny.ts";
import { parseByteSize } from "../io/bytes.ts";
import { reportHint } from "./report_hint.ts";
import { type Setting, SETTINGS, type TrainConfig, validateConfig, withDefaults } from "./config.ts";
import { RUN_FILES } from "./checkpoint.ts";
import { dryRun, type DryRunOptions } from "./dry_run.ts";
import { DPO_LOSS_TYPES, OBJECTIVES } from "./objectives.ts";
import { SCHEDULES } from "./schedule.ts";
import { parseLoraTargets } from "./lora.ts";
import { train, type TrainResult } from "./trainer.ts";

/** Flags of the LoRA adapters, assembled into the `lora` setting (see {@link loraFromFlags}). */
const LORA_OPTIONS = {
  "lora-r": { type: "string" },
  "lora-alpha": { type: "string" },
  "lora-targets": { type: "string" },
  rslora: { type: "boolean" },
} as const;

/** Flags of a dry run: plan the memory instead of training (train/dry_run.ts); not training settings. */
const DRY_RUN_OPTIONS = {
  "dry-run": { type: "boolean" },
  "gpu-memory": { type: "string" },
  "max-binding": { type: "string" },
} as const;

/** Every flag: help, each setting's flag and aliases (config.ts's SETTINGS), and the LoRA flags. */
const OPTIONS: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {
  help: { type: "boolean", short: "h" },
  ...Object.fromEntries(
    (Object.values(SETTINGS) as Setting<unknown>[]).flatMap((s) =>
      [s.flag, ...(s.aliases ?? [])].map((flag) => [flag, parseArgsOption(s)])
    ),
  ),
  ...LORA_OPTIONS,
  ...DRY_RUN_OPTIONS,
};

function parseArgsOption(s: Setting<unknown>): { type: "string" | "boolean"; multiple?: boolean } {
  if (s.type === "boolean" || s.type === "negated") return { type: "boolean" };
  return s.type === "strings" ? { type: "string", multiple: true } : { type: "string" };
}

/** Help text of one objective's task. */
export function trainUsage(objective: ObjectiveKind): string {
  const { title, data: rows } = OBJECTIVES[objective];
  // Defaults and names come from their one definition (config.ts, objectives.ts, checkpoint.ts).
  const d = withDefaults(objective, { model: "", data: [], out: "" });
  const data = rows === "sft"
    ? "JSONL/JSON/CSV/TSV rows with `text`, `prompt`/`completion` or `messages`"
    : "JSONL/JSON/CSV/TSV rows with `prompt`/`chosen`/`rejected` (text or chat lists)";
  return `deno task ${objective} [flags]  — ${title} on WebGPU

With neither --model nor --data, trains the embedded default: a tiny Korean Llama (built on first use in
runs/tiny-base) on the bundled data in data/, saving to runs/${objective}-tiny/final. Other flags still apply.

data and model
  --model DIR|ORG/NAME     base model: a Hugging Face folder or a Hub id (downloaded into HF_HOME); a PEFT
                           adapter folder trains that adapter further (with --lora-r; its own r, alpha
                           and targets are kept)
  --data FILE              training data (repeatable): ${data}
  --eval-data FILE         held-out data (repeatable); otherwise --eval-fraction of --data
  --eval-fraction F        share of rows held out for evaluation (default ${d.evalFraction})
  --out DIR                run folder: ${RUN_FILES.metrics}, ${RUN_FILES.checkpoint}*/, ${RUN_FILES.final}/ (required with --model); a
                           folder holding an earlier run needs --resume or --overwrite-output-dir
  --chat-template FILE     Jinja chat template for models without one
  --skip-bad-rows          skip invalid rows (counted) instead of stopping at the first
  --max-length N           tokens per sequence (default ${d.maxLength}); longer ones are truncated
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
  --batch-size N           ${
    objective === "sft" ? "sequences" : "pairs"
  } per micro-batch (default ${d.batchSize})
  --grad-accum N           micro-batches per optimizer step (default ${d.gradAccum})
  --epochs N | --max-steps N
  --lr X                   peak learning rate (default ${d.lr.toExponential()})
  --schedule S             ${SCHEDULES.join(" | ")} (default ${d.schedule})
  --warmup-steps N | --warmup-ratio F
  --weight-decay X         AdamW decay of weights (not biases or norms; default ${d.weightDecay})
  --max-grad-norm X        clip the global gradient norm (default ${d.maxGradNorm}; 0 disables)
  --adam-beta1/--adam-beta2/--adam-eps, --seed N (default ${d.seed}), --pad-multiple N (default ${d.padMultiple})${
    objective === "dpo"
      ? `
  --beta X                 DPO β (default ${d.beta})
  --loss-type T            ${DPO_LOSS_TYPES.join(" | ")} (default ${d.lossType})`
      : objective === "orpo"
      ? `
  --beta X | --lambda X    ORPO λ, TRL's beta (default ${d.beta})
  --orpo-nll whole|completion  NLL over the whole chosen sequence (TRL, default) or its answer only`
      : ""
  }

LoRA
  --lora-r N --lora-alpha X --lora-targets all-linear|q_proj,v_proj,…  train adapters (PEFT layout)
  --rslora                 alpha/√r scaling
  --merge                  also write the merged full model to <out>/${RUN_FILES.merged}
  --f16-base               hold the frozen base's linear weights in f16

memory
  --gradient-checkpointing keep only each layer's input, recompute the layer in the backward pass
  --dry-run                read the model's config only (a folder, or config.json from the Hub), print the
                           GPU memory plan part by part against the adapter's limits, say whether it fits
                           (exit 1 if not), and train nothing
  --gpu-memory SIZE        with --dry-run: the adapter's memory, e.g. 80GB (WebGPU does not report it)
  --max-binding SIZE       with --dry-run: plan for another adapter's binding limit (e.g. 2GiB for an H100)

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
    data: [fileURLToPath(objective === "sft" ? BUNDLED_DATA.sft : BUNDLED_DATA.preference)],
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

/** A setting's value from its flag (or an alias), or undefined when none is given. */
function flagValue(values: Record<string, unknown>, s: Setting<unknown>): unknown {
  const flag = [s.flag, ...(s.aliases ?? [])].find((f) => values[f] !== undefined);
  if (flag === undefined) return undefined;
  switch (s.type) {
    case "number":
      return numberFlag(values, flag);
    case "negated":
      return values[flag] ? false : undefined;
    case "file":
      return values[flag] ? Deno.readTextFileSync(values[flag] as string) : undefined;
    default:
      return values[flag];
  }
}

/** The `lora` setting from `--lora-r` (which turns LoRA on), `--lora-alpha`, `--lora-targets`, `--rslora`. */
function loraFromFlags(values: Record<string, unknown>): TrainConfig["lora"] {
  const r = numberFlag(values, "lora-r");
  if (r === undefined) {
    if (values["lora-alpha"] !== undefined || values["lora-targets"] !== undefined) {
      throw new Error("--lora-alpha and --lora-targets need --lora-r");
    }
    return undefined;
  }
  return {
    r,
    alpha: numberFlag(values, "lora-alpha") ?? 2 * r,
    targets: parseLoraTargets((values["lora-targets"] as string | undefined) ?? "all-linear"),
    rslora: Boolean(values.rslora),
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
): { config: TrainConfig; embedded: boolean; dryRun?: DryRunOptions } | undefined {
  const parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  const { positionals } = parsed;
  const values = parsed.values as Record<string, unknown> & {
    help?: boolean;
    model?: string;
    data?: string[];
    out?: string;
    resume?: boolean;
    "dry-run"?: boolean;
    "gpu-memory"?: string;
    "max-binding"?: string;
  };
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
  for (const [key, setting] of Object.entries(SETTINGS) as [keyof TrainConfig, Setting<unknown>][]) {
    if (setting.explicit && key !== "lora") continue; // model, data and out: read above
    const v = key === "lora" ? loraFromFlags(values) : flagValue(values, setting);
    if (v !== undefined) (p as Record<string, unknown>)[key] = v;
  }
  // The embedded default run owns runs/<objective>-tiny: running it again replaces it, unless resuming.
  if (embedded && values.out === undefined && !values.resume) p.overwriteOutputDir = true;
  const bytes = (flag: "gpu-memory" | "max-binding") =>
    values[flag] === undefined ? undefined : parseByteSize(values[flag]!, `--${flag}`);
  if (!values["dry-run"] && (values["gpu-memory"] !== undefined || values["max-binding"] !== undefined)) {
    throw new Error("--gpu-memory and --max-binding go with --dry-run");
  }
  const dryRun = values["dry-run"]
    ? { memoryBytes: bytes("gpu-memory"), maxBindingBytes: bytes("max-binding"), tinyIfMissing: embedded }
    : undefined;
  const config = withDefaults(objective, p);
  validateConfig(config);
  return { config, embedded, ...(dryRun ? { dryRun } : {}) };
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
  if (parsed.dryRun) {
    try {
      const { lines, fits } = await dryRun(config, parsed.dryRun);
      console.log(lines.join("\n"));
      return fits ? 0 : 1;
    } catch (e) {
      console.error(`error: ${(e as Error).message}`);
      return 1;
    }
  }
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
