/**
 * A training run's configuration: every knob of `deno task sft|dpo|orpo`, with TRL's defaults and names
 * where TRL has them, validated with errors that name the flag. {@link TrainConfig} says what each setting
 * means; {@link SETTINGS} is the one place that gives its flag, its default and the values it accepts, from
 * which the defaults, the checks and the command line (cli.ts) are derived.
 *
 * @module
 */
import type { DpoLossType, ObjectiveKind } from "../kernels/objective.ts";
import type { SaveDType } from "../io/hf_model.ts";
import type { LinearName } from "../io/llama_architecture.ts";
import { DPO_LOSS_TYPES, OBJECTIVES, ORPO_NLL, type OrpoNll } from "./objectives.ts";
import { type Schedule, SCHEDULES } from "./schedule.ts";

/** Everything a run needs. Saved as `train_config.json` in the run folder. */
export interface TrainConfig {
  /** What the run optimizes: `sft`, `dpo` or `orpo`. */
  objective: ObjectiveKind;
  /** Base model: a Hugging Face folder or a Hub id. */
  model: string;
  /** Training data files (JSONL, JSON, CSV, TSV in TRL's field names). */
  data: string[];
  /** Held-out data files; otherwise `evalFraction` of the training rows. */
  evalData: string[];
  /** Share of training rows held out for evaluation when `evalData` is empty, in [0, 1) (default 0). */
  evalFraction: number;
  /** Run folder: metrics, checkpoints, the final model. */
  out: string;
  /** Jinja chat template for models without one. */
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
  /** Sequences (SFT) or pairs (DPO, ORPO) per micro-batch. */
  batchSize: number;
  /** Micro-batches per optimizer step (default 1). */
  gradAccum: number;
  /** Passes over the training data (default 1); `maxSteps` overrides it. */
  epochs: number;
  /** Stop after this many optimizer steps (overrides epochs when > 0). */
  maxSteps: number;
  /** Peak learning rate (default: TRL's, 2e-5 for SFT and 1e-6 for DPO and ORPO). */
  lr: number;
  /** Learning-rate schedule after warm-up (default `linear`). */
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
  /** Round padded lengths up to this multiple, so few GPU programs are built. */
  padMultiple: number;
  /**
   * Train LoRA adapters instead of the full model: rank, alpha, the linear layers adapted, and rsLoRA's
   * alpha/√r scaling.
   */
  lora?: { r: number; alpha: number; targets: LinearName[]; rslora: boolean };
  /** With LoRA: also write the merged full model. */
  merge: boolean;
  /** With LoRA: hold the frozen base's linear weights in f16. */
  f16Base: boolean;
  /**
   * Keep only each decoder layer's input for the backward pass and recompute the layer there (TRL's
   * `gradient_checkpointing`): less memory for a second forward's compute; gradients are unchanged.
   */
  gradientCheckpointing: boolean;
  /** Write a metrics line every N optimizer steps (default 1). */
  logEvery: number;
  /** Evaluate every N steps (default 0: only at the end, when there is eval data). */
  evalEvery: number;
  /** Write a checkpoint every N steps (default 0: only at the end). */
  saveEvery: number;
  /** Keep at most this many checkpoints (oldest removed); 0 keeps all. */
  saveTotalLimit: number;
  /** Weight dtype of the final model (default F32); checkpoints stay F32. */
  saveDtype: SaveDType;
  /** Continue from the newest checkpoint in `out` (an error when there is none). */
  resume: boolean;
  /**
   * Start afresh in an `out` that holds an earlier run's checkpoints or final model, deleting its checkpoints
   * (Hugging Face's `overwrite_output_dir`); without it (or `resume`) such a folder is refused.
   */
  overwriteOutputDir: boolean;
  /** Load a base model whose files hold tensors its config does not use (with a warning). */
  ignoreUnusedWeights: boolean;
}

/** What values a setting accepts: the error's "expected …" and the test. */
export interface SettingCheck<T> {
  expected: string;
  ok(value: T): boolean;
}

/**
 * How the command line reads a setting's flag: a number, a string, a repeatable string, a flag that sets
 * true (or, `negated`, false), or a file whose text is the value.
 */
export type SettingType = "number" | "string" | "strings" | "boolean" | "negated" | "file";

/** One setting: its flag, its default and what it accepts. */
export interface Setting<T> {
  /** The command-line flag, without `--`; errors name it. */
  flag: string;
  /** Other flags for the same setting; the main flag wins when both are given. */
  aliases?: readonly string[];
  type: SettingType;
  /** The value when none is given; none when absent (required, optional, or the objective's: `lr`). */
  default?: T;
  /** May be left undefined (its check applies only to a value). */
  optional?: boolean;
  /** Read by the command line itself, not by the generic flag reader (model, data, out, LoRA). */
  explicit?: boolean;
  check?: SettingCheck<T>;
}

const SAVE_DTYPES: readonly SaveDType[] = ["F32", "F16", "BF16"];

const positiveInt: SettingCheck<number> = {
  expected: "a positive integer",
  ok: (v) => Number.isInteger(v) && v > 0,
};
const countFromZero: SettingCheck<number> = {
  expected: "an integer ≥ 0",
  ok: (v) => Number.isInteger(v) && v >= 0,
};
const fraction: SettingCheck<number> = { expected: "a number in [0, 1)", ok: (v) => v >= 0 && v < 1 };
const nonNegative: SettingCheck<number> = { expected: "a number ≥ 0", ok: (v) => v >= 0 };
const positive: SettingCheck<number> = { expected: "a number > 0", ok: (v) => v > 0 };
function oneOf<T extends string>(values: readonly T[]): SettingCheck<T> {
  return { expected: values.join(" | "), ok: (v) => values.includes(v) };
}

/**
 * Every setting of a run but the objective: its flag, default and accepted values, in the order of
 * {@link TrainConfig} (the order the command line reads them and {@link validateConfig} checks them).
 * `lora` stands for the `--lora-*` flags, which the command line assembles.
 * @example
 * ```ts
 * SETTINGS.batchSize.flag; // "batch-size"
 * SETTINGS.batchSize.default; // 8
 * ```
 */
export const SETTINGS = {
  model: { flag: "model", type: "string", explicit: true },
  data: {
    flag: "data",
    type: "strings",
    explicit: true,
    check: { expected: "at least one training file", ok: (v: string[]) => v.length > 0 },
  },
  evalData: { flag: "eval-data", type: "strings", default: [] },
  evalFraction: { flag: "eval-fraction", type: "number", default: 0, check: fraction },
  out: {
    flag: "out",
    type: "string",
    explicit: true,
    check: { expected: "a run folder", ok: (v: string) => !!v },
  },
  chatTemplate: { flag: "chat-template", type: "file", optional: true },
  skipBadRows: { flag: "skip-bad-rows", type: "boolean", default: false },
  maxLength: { flag: "max-length", type: "number", default: 1024, check: positiveInt },
  maxPromptLength: { flag: "max-prompt-length", type: "number", optional: true, check: positiveInt },
  completionOnlyLoss: { flag: "no-completion-only-loss", type: "negated", default: true },
  assistantOnlyLoss: { flag: "assistant-only-loss", type: "boolean", default: false },
  legacyEncoding: { flag: "legacy-encoding", type: "boolean", default: false },
  batchSize: { flag: "batch-size", type: "number", default: 8, check: positiveInt },
  gradAccum: { flag: "grad-accum", type: "number", default: 1, check: positiveInt },
  epochs: { flag: "epochs", type: "number", default: 1, check: countFromZero },
  maxSteps: { flag: "max-steps", type: "number", default: 0, check: countFromZero },
  lr: {
    flag: "lr",
    type: "number",
    check: { expected: "a finite number ≥ 0", ok: (v: number) => v >= 0 && Number.isFinite(v) },
  },
  schedule: { flag: "schedule", type: "string", default: "linear", check: oneOf(SCHEDULES) },
  warmupSteps: { flag: "warmup-steps", type: "number", default: 0, check: countFromZero },
  warmupRatio: { flag: "warmup-ratio", type: "number", default: 0, check: fraction },
  weightDecay: { flag: "weight-decay", type: "number", default: 0, check: nonNegative },
  maxGradNorm: {
    flag: "max-grad-norm",
    type: "number",
    default: 1,
    check: { expected: "a number ≥ 0 (0 disables clipping)", ok: (v: number) => v >= 0 },
  },
  adamBeta1: { flag: "adam-beta1", type: "number", default: 0.9, check: fraction },
  adamBeta2: { flag: "adam-beta2", type: "number", default: 0.999, check: fraction },
  adamEps: { flag: "adam-eps", type: "number", default: 1e-8, check: positive },
  seed: { flag: "seed", type: "number", default: 42 },
  beta: {
    flag: "beta",
    aliases: ["lambda"],
    type: "number",
    default: 0.1,
    check: { expected: "a number > 0", ok: (v: number) => v > 0 && Number.isFinite(v) },
  },
  lossType: { flag: "loss-type", type: "string", default: "sigmoid", check: oneOf(DPO_LOSS_TYPES) },
  orpoNll: { flag: "orpo-nll", type: "string", default: "whole", check: oneOf(ORPO_NLL) },
  padMultiple: { flag: "pad-multiple", type: "number", default: 8, check: positiveInt },
  lora: { flag: "lora-r", type: "number", optional: true, explicit: true },
  merge: { flag: "merge", type: "boolean", default: false },
  f16Base: { flag: "f16-base", type: "boolean", default: false },
  gradientCheckpointing: { flag: "gradient-checkpointing", type: "boolean", default: false },
  logEvery: { flag: "log-every", type: "number", default: 1, check: positiveInt },
  evalEvery: { flag: "eval-every", type: "number", default: 0, check: countFromZero },
  saveEvery: { flag: "save-every", type: "number", default: 0, check: countFromZero },
  saveTotalLimit: { flag: "save-total-limit", type: "number", default: 0, check: countFromZero },
  saveDtype: { flag: "save-dtype", type: "string", default: "F32", check: oneOf(SAVE_DTYPES) },
  resume: { flag: "resume", type: "boolean", default: false },
  overwriteOutputDir: { flag: "overwrite-output-dir", type: "boolean", default: false },
  ignoreUnusedWeights: { flag: "ignore-unused-weights", type: "boolean", default: false },
} satisfies { readonly [K in Exclude<keyof TrainConfig, "objective">]-?: Setting<TrainConfig[K]> };

/**
 * A complete configuration from partial settings, with TRL-like defaults; given fields win.
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
    if (key === "lr") defaults.lr = OBJECTIVES[objective].defaultLr;
    // Copies, so no two configurations share a default list.
    else if (s.default !== undefined) defaults[key] = Array.isArray(s.default) ? [...s.default] : s.default;
  }
  return { ...defaults, ...p } as TrainConfig;
}

/**
 * Throws an error naming the first invalid setting (by its command-line flag).
 * @example
 * ```ts
 * validateConfig(withDefaults("sft", { model: "m", data: ["d.jsonl"], out: "o", batchSize: 0 }));
 * // throws: --batch-size: expected a positive integer, got 0
 * ```
 */
export function validateConfig(c: TrainConfig): void {
  const fail = (flag: string, expected: string, got: unknown) => {
    throw new Error(`--${flag}: expected ${expected}, got ${JSON.stringify(got)}`);
  };
  for (const [key, s] of Object.entries(SETTINGS) as [keyof TrainConfig, Setting<unknown>][]) {
    const v = c[key];
    if (s.check && !(s.optional && v === undefined) && !s.check.ok(v)) fail(s.flag, s.check.expected, v);
  }
  if (c.epochs === 0 && c.maxSteps === 0) fail("epochs", "> 0 unless --max-steps is set", c.epochs);
  if (c.resume && c.overwriteOutputDir) {
    fail("overwrite-output-dir", "not together with --resume (continue the run, or replace it)", true);
  }
  if (c.lora) {
    if (!positiveInt.ok(c.lora.r)) fail("lora-r", positiveInt.expected, c.lora.r);
    if (!positive.ok(c.lora.alpha)) fail("lora-alpha", positive.expected, c.lora.alpha);
  } else {
    if (c.merge) fail("merge", "--lora-r to be set (merging needs an adapter)", c.merge);
    if (c.f16Base) fail("f16-base", "--lora-r to be set (a fully trained base stays f32)", c.f16Base);
  }
}
