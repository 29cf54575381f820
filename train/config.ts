/**
 * A training run's configuration: every knob of `deno task sft|dpo|orpo`, with TRL's defaults and names
 * where TRL has them, validated with errors that name the flag.
 *
 * @module
 */
import type { DpoLossType, ObjectiveKind } from "../kernels/objective.ts";
import type { LinearName } from "../io/llama_architecture.ts";
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
  legacyEncoding?: boolean;
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
  orpoNll: "whole" | "completion";
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
  /** Write a metrics line every N optimizer steps (default 1). */
  logEvery: number;
  /** Evaluate every N steps (default 0: only at the end, when there is eval data). */
  evalEvery: number;
  /** Write a checkpoint every N steps (default 0: only at the end). */
  saveEvery: number;
  /** Keep at most this many checkpoints (oldest removed); 0 keeps all. */
  saveTotalLimit: number;
  /** Weight dtype of the final model (default F32); checkpoints stay F32. */
  saveDtype: "F32" | "F16" | "BF16";
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

/** Learning rates TRL's configs default to. */
const DEFAULT_LR: Record<ObjectiveKind, number> = { sft: 2e-5, dpo: 1e-6, orpo: 1e-6 };

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
  return {
    objective,
    evalData: [],
    evalFraction: 0,
    skipBadRows: false,
    maxLength: 1024,
    completionOnlyLoss: true,
    assistantOnlyLoss: false,
    batchSize: 8,
    gradAccum: 1,
    epochs: 1,
    maxSteps: 0,
    lr: DEFAULT_LR[objective],
    schedule: "linear",
    warmupSteps: 0,
    warmupRatio: 0,
    weightDecay: 0,
    maxGradNorm: 1,
    adamBeta1: 0.9,
    adamBeta2: 0.999,
    adamEps: 1e-8,
    seed: 42,
    beta: 0.1,
    lossType: "sigmoid",
    orpoNll: "whole",
    padMultiple: 8,
    merge: false,
    f16Base: false,
    logEvery: 1,
    evalEvery: 0,
    saveEvery: 0,
    saveTotalLimit: 0,
    saveDtype: "F32",
    resume: false,
    overwriteOutputDir: false,
    ignoreUnusedWeights: false,
    ...p,
  };
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
  const positiveInt = (flag: string, v: number) =>
    (Number.isInteger(v) && v > 0) || fail(flag, "a positive integer", v);
  const nonNegInt = (flag: string, v: number) =>
    (Number.isInteger(v) && v >= 0) || fail(flag, "an integer ≥ 0", v);
  if (c.data.length === 0) fail("data", "at least one training file", c.data);
  if (!c.out) fail("out", "a run folder", c.out);
  positiveInt("max-length", c.maxLength);
  if (c.maxPromptLength !== undefined) positiveInt("max-prompt-length", c.maxPromptLength);
  positiveInt("batch-size", c.batchSize);
  positiveInt("grad-accum", c.gradAccum);
  nonNegInt("epochs", c.epochs);
  nonNegInt("max-steps", c.maxSteps);
  if (c.epochs === 0 && c.maxSteps === 0) fail("epochs", "> 0 unless --max-steps is set", c.epochs);
  if (!(c.lr >= 0 && Number.isFinite(c.lr))) fail("lr", "a finite number ≥ 0", c.lr);
  if (!SCHEDULES.includes(c.schedule)) fail("schedule", SCHEDULES.join(" | "), c.schedule);
  nonNegInt("warmup-steps", c.warmupSteps);
  if (!(c.warmupRatio >= 0 && c.warmupRatio < 1)) fail("warmup-ratio", "a number in [0, 1)", c.warmupRatio);
  if (!(c.evalFraction >= 0 && c.evalFraction < 1)) {
    fail("eval-fraction", "a number in [0, 1)", c.evalFraction);
  }
  if (!(c.weightDecay >= 0)) fail("weight-decay", "a number ≥ 0", c.weightDecay);
  if (!(c.maxGradNorm >= 0)) fail("max-grad-norm", "a number ≥ 0 (0 disables clipping)", c.maxGradNorm);
  if (!(c.adamBeta1 >= 0 && c.adamBeta1 < 1)) fail("adam-beta1", "a number in [0, 1)", c.adamBeta1);
  if (!(c.adamBeta2 >= 0 && c.adamBeta2 < 1)) fail("adam-beta2", "a number in [0, 1)", c.adamBeta2);
  if (!(c.adamEps > 0)) fail("adam-eps", "a number > 0", c.adamEps);
  if (!(c.beta > 0 && Number.isFinite(c.beta))) fail("beta", "a number > 0", c.beta);
  if (!["sigmoid", "ipo", "hinge"].includes(c.lossType)) {
    fail("loss-type", "sigmoid | ipo | hinge", c.lossType);
  }
  if (!["whole", "completion"].includes(c.orpoNll)) fail("orpo-nll", "whole | completion", c.orpoNll);
  positiveInt("pad-multiple", c.padMultiple);
  positiveInt("log-every", c.logEvery);
  nonNegInt("eval-every", c.evalEvery);
  nonNegInt("save-every", c.saveEvery);
  nonNegInt("save-total-limit", c.saveTotalLimit);
  if (!["F32", "F16", "BF16"].includes(c.saveDtype)) fail("save-dtype", "F32 | F16 | BF16", c.saveDtype);
  if (c.resume && c.overwriteOutputDir) {
    fail("overwrite-output-dir", "not together with --resume (continue the run, or replace it)", true);
  }
  if (c.lora) {
    positiveInt("lora-r", c.lora.r);
    if (!(c.lora.alpha > 0)) fail("lora-alpha", "a number > 0", c.lora.alpha);
  } else {
    if (c.merge) fail("merge", "--lora-r to be set (merging needs an adapter)", c.merge);
    if (c.f16Base) fail("f16-base", "--lora-r to be set (a fully trained base stays f32)", c.f16Base);
  }
}
