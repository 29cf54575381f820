/**
 * A training run's configuration: every knob of `deno task sft|dpo|orpo`, with TRL's names and defaults
 * where TRL has them, validated with errors that name the flag. {@link TrainConfig} says what each setting
 * means; {@link SETTINGS} is the one place that gives its flag (TRL's snake_case name), aliases, default,
 * range and help, from which the defaults, the checks, the command line, its `--help`, `--config` files and
 * `training_args.json` are all derived (io/settings.ts does the generic part).
 *
 * @module
 */
import type { DpoLossType, ObjectiveKind } from "../kernels/objective.ts";
import type { SaveDType } from "../io/hf_model.ts";
import { LINEAR_NAMES, type LinearName } from "../io/llama_architecture.ts";
import {
  checkValue,
  formatSettingValue,
  type Setting,
  type SettingsTable,
  validateSettings,
} from "../io/settings.ts";
import { DPO_LOSS_TYPES, OBJECTIVES, ORPO_NLL, type OrpoNll } from "./objectives.ts";
import { type Schedule, SCHEDULES } from "./schedule.ts";

/** When the trainer evaluates: never, every `eval_steps`, or at the end of each epoch (HF's `eval_strategy`). */
export type EvalStrategy = "no" | "steps" | "epoch";

/** Everything a run needs. Saved, by TRL's names, as `training_args.json` in the run folder. */
export interface TrainConfig {
  /** What the run optimizes: `sft`, `dpo` or `orpo`. */
  objective: ObjectiveKind;
  /** Base model: a Hugging Face folder or a Hub id (`--model_name_or_path`). */
  model: string;
  /** Training data (`--dataset_name`): files (JSONL, JSON, CSV, TSV, Parquet in TRL's field names) or Hub dataset ids. */
  data: string[];
  /** A Hub dataset's configuration (`datasets`' `name=`), when it has several. */
  datasetConfig?: string;
  /** The split of a Hub dataset trained on (default `train`). */
  datasetTrainSplit: string;
  /** The split of a Hub dataset evaluated on when evaluation is on (default `test`). */
  datasetTestSplit: string;
  /** Held-out data files; otherwise `evalFraction` of the training rows, or the Hub dataset's test split. */
  evalData: string[];
  /** Share of training rows held out for evaluation when `evalData` is empty, in [0, 1) (default 0). */
  evalFraction: number;
  /** Run folder (`--output_dir`): the final model at its root, checkpoints, logs. */
  out: string;
  /** Jinja chat template (the text) for models without one. */
  chatTemplate?: string;
  /** Skip invalid data rows (counted) instead of stopping at the first. */
  skipBadRows: boolean;
  /** Tokens per sequence (default 1024); longer sequences are truncated. */
  maxLength: number;
  /** Prompt tokens kept, from the end of the prompt; unlimited when absent. */
  maxPromptLength?: number;
  /** Prompt-completion SFT rows: loss on the completion only (TRL's `completion_only_loss`). */
  completionOnlyLoss: boolean;
  /** Chat SFT rows: loss on assistant turns only (TRL's `assistant_only_loss`). */
  assistantOnlyLoss: boolean;
  /** Tokenize rows with this toolkit's earlier encoding instead of current TRL's (train/examples.ts). */
  legacyEncoding: boolean;
  /** Sequences (SFT) or pairs (DPO, ORPO) per micro-batch (`per_device_train_batch_size`, default 8). */
  batchSize: number;
  /** Micro-batches per optimizer step (`gradient_accumulation_steps`, default 1). */
  gradAccum: number;
  /** Passes over the training data (`num_train_epochs`, default 3; may be fractional); `maxSteps` overrides it. */
  epochs: number;
  /** Stop after this many optimizer steps (overrides epochs when > 0; default -1). */
  maxSteps: number;
  /** Peak learning rate (default: TRL's, 2e-5 for SFT and 1e-6 for DPO and ORPO). */
  lr: number;
  /** Learning-rate schedule after warm-up (`lr_scheduler_type`, default `linear`). */
  schedule: Schedule;
  /** Warm-up steps; when 0, `warmupRatio` of the total steps. */
  warmupSteps: number;
  /** Share of the total steps spent warming up, in [0, 1), rounded up (default 0). */
  warmupRatio: number;
  /** AdamW decoupled weight decay of weights, not of biases or norms (default 0). */
  weightDecay: number;
  /** Clip the global gradient norm to this (default 1; 0 disables clipping). */
  maxGradNorm: number;
  /** AdamW β₁ (default 0.9). */
  adamBeta1: number;
  /** AdamW β₂ (default 0.999). */
  adamBeta2: number;
  /** AdamW ε (default 1e-8). */
  adamEps: number;
  /** Seed of data shuffling and LoRA initialization (default 42). */
  seed: number;
  /** DPO's β, ORPO's λ (TRL calls both `beta`). */
  beta: number;
  /** DPO's loss: `sigmoid` (default), `ipo` or `hinge`. */
  lossType: DpoLossType;
  /** ORPO's NLL: over the whole chosen sequence (TRL) or its completion only. */
  orpoNll: OrpoNll;
  /** Round padded lengths up to this multiple, so few GPU programs are built (`pad_to_multiple_of`). */
  padMultiple: number;
  /**
   * Train LoRA adapters instead of the full model (`--use_peft`): rank, alpha, the linear layers adapted,
   * and rsLoRA's alpha/√r scaling.
   */
  lora?: { r: number; alpha: number; targets: LinearName[]; rslora: boolean };
  /** With LoRA: also write the merged full model (to `<out>/merged`). */
  merge: boolean;
  /** With LoRA: hold the frozen base's linear weights in f16. */
  f16Base: boolean;
  /**
   * Keep only each decoder layer's input for the backward pass and recompute the layer there (TRL's
   * `gradient_checkpointing`, on by default as in TRL): less memory for a second forward's compute;
   * gradients are unchanged.
   */
  gradientCheckpointing: boolean;
  /** Log every N optimizer steps (`logging_steps`, default 10; below 1, a ratio of the total steps). */
  logEvery: number;
  /** When to evaluate (`eval_strategy`): `no` unless evaluation data is given, then `steps`. */
  evalStrategy: EvalStrategy;
  /** Evaluate every N steps with `steps` (`eval_steps`; default `logEvery`; below 1, a ratio). */
  evalEvery?: number;
  /** Write a checkpoint every N steps (`save_steps`, default 500; below 1, a ratio), and at the end. */
  saveEvery: number;
  /** Keep at most this many checkpoints (oldest removed); all when absent. */
  saveTotalLimit?: number;
  /** Weight dtype of the final model (default F32); checkpoints stay F32. */
  saveDtype: SaveDType;
  /**
   * Continue a run (`--resume_from_checkpoint [PATH]`): `true` from the newest checkpoint in `out` (an error
   * when there is none), a path from that checkpoint folder; `false` starts afresh.
   */
  resume: boolean | string;
  /**
   * Start afresh in an `out` that holds an earlier run's checkpoints or model, deleting them (Hugging Face's
   * `overwrite_output_dir`); without it (or `resume`) such a folder is refused.
   */
  overwriteOutputDir: boolean;
  /** Load a base model whose files hold tensors its config does not use (with a warning). */
  ignoreUnusedWeights: boolean;
}

/** A training setting: a table entry, and the objectives it applies to (all when absent). */
export type TrainSetting<T> = Setting<T> & { objectives?: readonly ObjectiveKind[] };

const positiveInt = { kind: "int", range: { min: 1 } } as const;
const countFromZero = { kind: "int", range: { min: 0 } } as const;
const fraction = { kind: "float", range: { min: 0, max: 1, maxExclusive: true } } as const;
const nonNegative = { kind: "float", range: { min: 0 } } as const;
const everySteps = {
  kind: "float",
  metavar: "N",
  check: {
    expected: "an integer ≥ 1, or a ratio of the total steps in (0, 1)",
    ok: (v: number) => (Number.isInteger(v) && v >= 1) || (v > 0 && v < 1),
  },
} as const;
const SAVE_DTYPES: readonly SaveDType[] = ["F32", "F16", "BF16"];
const EVAL_STRATEGIES: readonly EvalStrategy[] = ["no", "steps", "epoch"];

const DATA = "data and model";
const OPTIMISATION = "optimisation";
const OBJECTIVE = "objective";
const LORA = "LoRA (PEFT)";
const MEMORY = "memory";
const LOGGING = "logging, evaluation and checkpoints";

/**
 * Groups of the training tasks' `--help`, in order.
 * @example
 * ```ts
 * TRAIN_GROUPS[0]; // "data and model"
 * ```
 */
export const TRAIN_GROUPS: readonly string[] = [DATA, OPTIMISATION, OBJECTIVE, LORA, MEMORY, LOGGING];

/**
 * Every setting of a run but the objective and `lora` (see {@link LORA_SETTINGS}): its flag as TRL names it,
 * aliases (the toolkit's earlier flags), default, range and help, in the order of {@link TrainConfig}. A
 * setting whose default TRL does not share says why in its help.
 * @example
 * ```ts
 * SETTINGS.batchSize.name; // "per_device_train_batch_size"
 * SETTINGS.batchSize.default; // 8
 * ```
 */
export const SETTINGS = {
  model: {
    name: "model_name_or_path",
    aliases: ["model"],
    kind: "string",
    metavar: "DIR|ORG/NAME",
    group: DATA,
    help: "base model: a Hugging Face folder or a Hub id (org/name[@revision], downloaded into HF_HOME); a " +
      "PEFT adapter folder trains that adapter further (with --use_peft; its own r, alpha and targets are kept)",
  },
  data: {
    name: "dataset_name",
    aliases: ["data"],
    kind: "list",
    metavar: "FILE|ORG/NAME",
    group: DATA,
    help: "training data: JSONL/JSON/CSV/TSV/Parquet files in TRL's field names, or a Hub dataset id (its " +
      "jsonl/json/parquet files, split as `datasets` splits them); several may be given",
    check: { expected: "at least one file or Hub dataset", ok: (v: string[]) => v.length > 0 },
  },
  datasetConfig: {
    name: "dataset_config",
    kind: "string",
    metavar: "NAME",
    group: DATA,
    help: "a Hub dataset's configuration (subset), as `datasets.load_dataset(name=…)`",
  },
  datasetTrainSplit: {
    name: "dataset_train_split",
    kind: "string",
    metavar: "SPLIT",
    default: "train",
    group: DATA,
    help: "the split of a Hub dataset trained on",
  },
  datasetTestSplit: {
    name: "dataset_test_split",
    kind: "string",
    metavar: "SPLIT",
    default: "test",
    group: DATA,
    help: "the split of a Hub dataset evaluated on when --eval_strategy is not no",
  },
  evalData: {
    name: "eval_data",
    kind: "list",
    metavar: "FILE",
    default: [],
    group: DATA,
    help: "held-out data files (otherwise --eval_fraction of the training rows); turns evaluation on",
  },
  evalFraction: {
    name: "eval_fraction",
    ...fraction,
    metavar: "F",
    default: 0,
    group: DATA,
    help: "share of the training rows held out for evaluation; above 0 turns evaluation on",
  },
  out: {
    name: "output_dir",
    aliases: ["out"],
    kind: "string",
    metavar: "DIR",
    group: DATA,
    help: "run folder: the final model (or PEFT adapter) at its root, checkpoint-N/, trainer_state.json, " +
      "training_args.json, metrics.jsonl; a folder holding an earlier run needs --resume_from_checkpoint or " +
      "--overwrite_output_dir",
    check: { expected: "a run folder", ok: (v: string) => !!v },
  },
  chatTemplate: {
    name: "chat_template_path",
    aliases: ["chat_template"],
    kind: "string",
    metavar: "FILE",
    group: DATA,
    help: "Jinja chat template file for models without one",
    parse: (path: string, where: string) => {
      try {
        return Deno.readTextFileSync(path);
      } catch (e) {
        throw new Error(`${where}: cannot read ${path} (${(e as Error).message})`);
      }
    },
  },
  skipBadRows: {
    name: "skip_bad_rows",
    kind: "bool",
    default: false,
    group: DATA,
    help: "skip invalid rows (counted) instead of stopping at the first",
  },
  maxLength: {
    name: "max_length",
    ...positiveInt,
    default: 1024,
    group: DATA,
    help: "tokens per sequence; longer ones are truncated",
  },
  maxPromptLength: {
    name: "max_prompt_length",
    ...positiveInt,
    group: DATA,
    help: "prompt tokens kept, from the end of the prompt (default: no limit)",
  },
  completionOnlyLoss: {
    name: "completion_only_loss",
    kind: "bool",
    default: true,
    objectives: ["sft"],
    group: DATA,
    help:
      "prompt-completion rows: loss on the completion only (--no_completion_only_loss: on the prompt too)",
  },
  assistantOnlyLoss: {
    name: "assistant_only_loss",
    kind: "bool",
    default: false,
    objectives: ["sft"],
    group: DATA,
    help: "chat rows: loss on assistant turns only",
  },
  legacyEncoding: {
    name: "legacy_encoding",
    kind: "bool",
    default: false,
    group: DATA,
    help: "tokenize as this toolkit did before following current TRL (EOS as an id, BOS added to chats " +
      "without one, a pair's prompt and completions encoded apart)",
  },
  batchSize: {
    name: "per_device_train_batch_size",
    aliases: ["batch_size"],
    ...positiveInt,
    default: 8,
    group: OPTIMISATION,
    help: "sequences (SFT) or pairs (DPO, ORPO) per micro-batch",
  },
  gradAccum: {
    name: "gradient_accumulation_steps",
    aliases: ["grad_accum"],
    ...positiveInt,
    default: 1,
    group: OPTIMISATION,
    help: "micro-batches per optimizer step",
  },
  epochs: {
    name: "num_train_epochs",
    aliases: ["epochs"],
    kind: "float",
    range: { min: 0, minExclusive: true },
    default: 3,
    group: OPTIMISATION,
    help: "passes over the training data (may be fractional)",
  },
  maxSteps: {
    name: "max_steps",
    kind: "int",
    range: { min: -1 },
    default: -1,
    group: OPTIMISATION,
    help: "optimizer steps to take; above 0 it overrides --num_train_epochs",
  },
  lr: {
    name: "learning_rate",
    aliases: ["lr"],
    kind: "float",
    metavar: "X",
    check: { expected: "a finite number ≥ 0", ok: (v: number) => v >= 0 && Number.isFinite(v) },
    group: OPTIMISATION,
    help: "peak learning rate",
  },
  schedule: {
    name: "lr_scheduler_type",
    aliases: ["schedule"],
    kind: "string",
    choices: SCHEDULES,
    default: "linear",
    group: OPTIMISATION,
    help: "learning-rate schedule after warm-up",
  },
  warmupSteps: {
    name: "warmup_steps",
    ...countFromZero,
    default: 0,
    group: OPTIMISATION,
    help: "warm-up steps (when 0, --warmup_ratio of the total)",
  },
  warmupRatio: {
    name: "warmup_ratio",
    ...fraction,
    metavar: "F",
    default: 0,
    group: OPTIMISATION,
    help: "share of the total steps spent warming up, rounded up",
  },
  weightDecay: {
    name: "weight_decay",
    ...nonNegative,
    default: 0,
    group: OPTIMISATION,
    help: "AdamW's decoupled decay of weights (not of biases or norms)",
  },
  maxGradNorm: {
    name: "max_grad_norm",
    ...nonNegative,
    default: 1,
    group: OPTIMISATION,
    help: "clip the global gradient norm to this; 0 disables clipping",
  },
  adamBeta1: { name: "adam_beta1", ...fraction, default: 0.9, group: OPTIMISATION, help: "AdamW's β₁" },
  adamBeta2: { name: "adam_beta2", ...fraction, default: 0.999, group: OPTIMISATION, help: "AdamW's β₂" },
  adamEps: {
    name: "adam_epsilon",
    aliases: ["adam_eps"],
    kind: "float",
    range: { min: 0, minExclusive: true },
    default: 1e-8,
    group: OPTIMISATION,
    help: "AdamW's ε",
  },
  seed: {
    name: "seed",
    kind: "int",
    default: 42,
    group: OPTIMISATION,
    help: "seed of data shuffling and LoRA init",
  },
  beta: {
    name: "beta",
    aliases: ["lambda"],
    kind: "float",
    metavar: "X",
    check: { expected: "a number > 0", ok: (v: number) => v > 0 && Number.isFinite(v) },
    default: 0.1,
    objectives: ["dpo", "orpo"],
    group: OBJECTIVE,
    help: "DPO's β, ORPO's λ (TRL calls both beta)",
  },
  lossType: {
    name: "loss_type",
    kind: "string",
    choices: DPO_LOSS_TYPES,
    default: "sigmoid",
    objectives: ["dpo"],
    group: OBJECTIVE,
    help: "DPO's loss",
  },
  orpoNll: {
    name: "orpo_nll",
    kind: "string",
    choices: ORPO_NLL,
    default: "whole",
    objectives: ["orpo"],
    group: OBJECTIVE,
    help: "ORPO's NLL over the whole chosen sequence (as TRL) or its completion only",
  },
  padMultiple: {
    name: "pad_to_multiple_of",
    aliases: ["pad_multiple"],
    ...positiveInt,
    default: 8,
    group: MEMORY,
    help: "round padded lengths up to a multiple of N (TRL pads to the longest row: a multiple means few " +
      "GPU programs are built)",
  },
  lora: {
    name: "use_peft",
    kind: "bool",
    default: false,
    group: LORA,
    help: "train LoRA adapters over the frozen base (saved in PEFT's layout) instead of every weight",
  },
  merge: {
    name: "merge",
    kind: "bool",
    default: false,
    group: LORA,
    help: "with --use_peft: also write the merged full model to <output_dir>/merged",
  },
  f16Base: {
    name: "f16_base",
    kind: "bool",
    default: false,
    group: LORA,
    help: "with --use_peft: hold the frozen base's linear weights in f16",
  },
  gradientCheckpointing: {
    name: "gradient_checkpointing",
    kind: "bool",
    default: true,
    group: MEMORY,
    help:
      "keep only each layer's input and recompute the layer in the backward pass (less memory, one more " +
      "forward; same gradients); --no_gradient_checkpointing keeps every activation",
  },
  logEvery: {
    name: "logging_steps",
    aliases: ["log_every"],
    ...everySteps,
    default: 10,
    group: LOGGING,
    help: "log (metrics.jsonl, trainer_state.json, stderr) every N steps, the values averaged over them",
  },
  evalStrategy: {
    name: "eval_strategy",
    kind: "string",
    choices: EVAL_STRATEGIES,
    default: "no",
    defaultHelp: "no, or steps when --eval_data or --eval_fraction is given",
    group: LOGGING,
    help: "when to evaluate (and always at the last step when on)",
  },
  evalEvery: {
    name: "eval_steps",
    aliases: ["eval_every"],
    ...everySteps,
    defaultHelp: "--logging_steps",
    group: LOGGING,
    help: "with --eval_strategy steps: evaluate every N steps",
  },
  saveEvery: {
    name: "save_steps",
    aliases: ["save_every"],
    ...everySteps,
    default: 500,
    group: LOGGING,
    help: "write checkpoint-N/ every N steps (and at the last step)",
  },
  saveTotalLimit: {
    name: "save_total_limit",
    ...positiveInt,
    defaultHelp: "keep all",
    group: LOGGING,
    help: "keep at most N checkpoints, removing the oldest",
  },
  saveDtype: {
    name: "save_dtype",
    kind: "string",
    choices: SAVE_DTYPES,
    default: "F32",
    group: LOGGING,
    help: "weight dtype of the final model (checkpoints stay F32)",
  },
  resume: {
    name: "resume_from_checkpoint",
    aliases: ["resume"],
    kind: "optional-string",
    metavar: "PATH",
    default: false,
    defaultHelp: "start afresh",
    group: LOGGING,
    help: "continue exactly from the newest checkpoint in --output_dir, or from the checkpoint folder PATH",
  },
  overwriteOutputDir: {
    name: "overwrite_output_dir",
    kind: "bool",
    default: false,
    group: LOGGING,
    help: "start afresh in an --output_dir holding an earlier run, deleting its checkpoints and model",
  },
  ignoreUnusedWeights: {
    name: "ignore_unused_weights",
    kind: "bool",
    default: false,
    group: DATA,
    help: "train a base whose files hold tensors its config.json does not use (a warning)",
  },
} satisfies {
  readonly [K in Exclude<keyof TrainConfig, "objective">]-?: TrainSetting<
    K extends "lora" ? boolean : K extends "resume" ? boolean | string | true : TrainConfig[K]
  >;
};

/** What PEFT adapts in a Llama when TRL passes no `lora_target_modules`. */
const PEFT_LLAMA_TARGETS: readonly LinearName[] = ["q_proj", "v_proj"];

/**
 * The LoRA settings, assembled into {@link TrainConfig.lora} when `--use_peft` is given: TRL's ModelConfig
 * names and defaults (r 16, alpha 32; target modules as PEFT picks them for Llama). `lora_dropout` must be 0:
 * the toolkit has no dropout on the adapters' path (TRL's default is 0.05).
 * @example
 * ```ts
 * LORA_SETTINGS.r.default; // 16
 * ```
 */
export const LORA_SETTINGS = {
  r: { name: "lora_r", ...positiveInt, default: 16, group: LORA, help: "LoRA rank" },
  alpha: {
    name: "lora_alpha",
    kind: "float",
    range: { min: 0, minExclusive: true },
    default: 32,
    group: LORA,
    help: "LoRA alpha: the adapters' output is scaled by alpha/r",
  },
  dropout: {
    name: "lora_dropout",
    kind: "float",
    default: 0,
    group: LORA,
    check: {
      expected: "0 (no dropout on the LoRA path is implemented; TRL's default is 0.05)",
      ok: (v) => v === 0,
    },
    help: "dropout on the adapters' input",
  },
  targets: {
    name: "lora_target_modules",
    aliases: ["lora_targets"],
    kind: "list",
    metavar: "NAME",
    default: [...PEFT_LLAMA_TARGETS],
    defaultHelp: "q_proj v_proj, what PEFT adapts in a Llama when TRL passes none",
    group: LORA,
    help: `linear layers to adapt: all-linear, or names among ${
      LINEAR_NAMES.join(", ")
    } (space- or comma-separated)`,
  },
  rslora: {
    name: "use_rslora",
    aliases: ["rslora"],
    kind: "bool",
    default: false,
    group: LORA,
    help: "rank-stabilised scaling alpha/√r",
  },
} satisfies SettingsTable;

/**
 * The settings a task of `objective` accepts: those of {@link SETTINGS} that apply to it (DPO's loss type
 * only for DPO, …), with the objective's default learning rate, then {@link LORA_SETTINGS}.
 * @example
 * ```ts
 * trainSettings("orpo").lr.default; // 1e-6, TRL's ORPOConfig
 * ```
 */
export function trainSettings(objective: ObjectiveKind) {
  const out: Record<string, TrainSetting<unknown>> = {};
  for (const [key, s] of Object.entries(SETTINGS) as [string, TrainSetting<unknown>][]) {
    if (s.objectives && !s.objectives.includes(objective)) continue;
    out[key] = key === "lr"
      ? {
        ...s,
        default: OBJECTIVES[objective].defaultLr,
        defaultHelp: `${
          formatSettingValue(OBJECTIVES[objective].defaultLr)
        }, TRL's for ${objective.toUpperCase()}`,
      }
      : s;
  }
  return out as unknown as typeof SETTINGS;
}

/**
 * A complete configuration from partial settings, with TRL's defaults; given fields win. Evaluation is on
 * (`evalStrategy` `steps`) when `evalData` or `evalFraction` is given and no strategy is.
 * @example
 * ```ts
 * const cfg = withDefaults("orpo", {
 *   model: "runs/tiny-base",
 *   data: ["data/ko_pref_tiny.jsonl"],
 *   out: "runs/orpo",
 * });
 * cfg.lr; // 1e-6, TRL's ORPO default
 * ```
 */
export function withDefaults(
  objective: ObjectiveKind,
  p: Partial<TrainConfig> & { model: string; data: string[]; out: string },
): TrainConfig {
  const defaults: Record<string, unknown> = { objective };
  for (const [key, s] of Object.entries(SETTINGS) as [string, Setting<unknown>][]) {
    if (key === "lora") continue; // off unless given
    if (key === "lr") defaults.lr = OBJECTIVES[objective].defaultLr;
    // Copies, so no two configurations share a default list.
    else if (s.default !== undefined) defaults[key] = Array.isArray(s.default) ? [...s.default] : s.default;
  }
  const cfg = { ...defaults, ...p } as TrainConfig;
  if (p.evalStrategy === undefined && ((p.evalData?.length ?? 0) > 0 || (p.evalFraction ?? 0) > 0)) {
    cfg.evalStrategy = "steps";
  }
  return cfg;
}

/**
 * Throws an error naming the first invalid setting (by its flag).
 * @example
 * ```ts
 * validateConfig(withDefaults("sft", { model: "m", data: ["d.jsonl"], out: "o", batchSize: 0 }));
 * // throws: --per_device_train_batch_size: expected an integer ≥ 1, got 0
 * ```
 */
export function validateConfig(c: TrainConfig): void {
  const fail = (flag: string, expected: string, got: unknown) => {
    throw new Error(`--${flag}: expected ${expected}, got ${JSON.stringify(got)}`);
  };
  const { lora: _, ...plain } = SETTINGS;
  validateSettings(plain, c as unknown as Record<string, never>);
  for (const key of ["model", "data", "out", "lr"] as const) {
    if (c[key] === undefined) fail(SETTINGS[key].name, "a value", undefined);
  }
  if (c.resume !== false && c.overwriteOutputDir) {
    fail(
      "overwrite_output_dir",
      "not together with --resume_from_checkpoint (continue the run, or replace it)",
      true,
    );
  }
  if (c.lora) {
    checkValue(LORA_SETTINGS.r, c.lora.r, "--lora_r");
    checkValue(LORA_SETTINGS.alpha, c.lora.alpha, "--lora_alpha");
    if (c.lora.targets.length === 0) fail("lora_target_modules", "at least one linear layer", c.lora.targets);
  } else {
    if (c.merge) fail("merge", "--use_peft to be set (merging needs an adapter)", c.merge);
    if (c.f16Base) fail("f16_base", "--use_peft to be set (a fully trained base stays f32)", c.f16Base);
  }
}

/**
 * The run's settings by TRL's names, as `training_args.json` holds them (the counterpart of the Trainer's
 * `training_args.bin`): every setting that applies to the objective, LoRA's as `use_peft`, `lora_r`, ….
 * @example
 * ```ts
 * trainingArgs(cfg).learning_rate; // cfg.lr
 * ```
 */
export function trainingArgs(c: TrainConfig): Record<string, unknown> {
  const table = trainSettings(c.objective) as unknown as Record<string, Setting<unknown>>;
  const out: Record<string, unknown> = { objective: c.objective };
  for (const [key, s] of Object.entries(table)) {
    if (key === "lora") continue;
    const v = (c as unknown as Record<string, unknown>)[key];
    // Unset is TRL's None (null); not resuming is `resume_from_checkpoint: null` there too.
    out[s.name] = v === undefined || (key === "resume" && v === false) ? null : v;
  }
  out.use_peft = c.lora !== undefined;
  out[LORA_SETTINGS.r.name] = c.lora?.r ?? LORA_SETTINGS.r.default;
  out[LORA_SETTINGS.alpha.name] = c.lora?.alpha ?? LORA_SETTINGS.alpha.default;
  out[LORA_SETTINGS.dropout.name] = 0;
  out[LORA_SETTINGS.targets.name] = c.lora?.targets ?? LORA_SETTINGS.targets.default;
  out[LORA_SETTINGS.rslora.name] = c.lora?.rslora ?? false;
  return out;
}
