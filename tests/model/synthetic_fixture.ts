/**
 * Synthetic oracle fixtures in exactly the layout of `tests/fixtures/llama-tiny-public` (a Hugging Face
 * `model/` folder, `expected.safetensors` with `sft.*`, `adamw.*`, `pref.*`, `dpo.*`, `orpo.*`, `gen.*`, and
 * `meta.json`), for model variants no PyTorch fixture covers yet: tied embeddings, other rope_theta and
 * config styles, GQA/MQA, Qwen2 biases, Llama 3 RoPE scaling, left padding. The expected values come from
 * the CPU reference (`model/reference.ts`), the objectives' references and AdamW's reference;
 * {@link oracleTensors} is the one function that computes them, and the reference test runs it on the
 * public fixture's inputs to show it reproduces transformers there.
 * @module
 */
import { join } from "node:path";
import { saveModelFolder } from "../../io/hf_model.ts";
import { type TensorToWrite, writeSafetensors } from "../../io/safetensors.ts";
import { adamwRef } from "../../kernels/adamw_ref.ts";
import { logOdds, objectiveRef } from "../../kernels/objective_ref.ts";
import { normalGenerator } from "../../model/init.ts";
import { type LlamaDims, llamaParamSpecs, numel, type RopeConfig } from "../../io/llama_architecture.ts";
import { referenceBackward, referenceForward, referenceGreedy } from "../../model/reference.ts";
import { lossAlignedMasks } from "../../train/batching.ts";
import { rng } from "../helpers.ts";

// ---------------------------------------------------------------------------------------------------------
// Computing the expected tensors

/**
 * A padded token batch as the fixture stores it ([B, T] each, I32).
 * @example
 * ```ts
 * const fb: FixtureBatch = {
 *   B: 1, T: 3, ids: Int32Array.of(5, 9, 0), attentionMask: Int32Array.of(1, 1, 0), labelMask: Int32Array.of(0, 1, 0),
 * };
 * ```
 */
export interface FixtureBatch {
  B: number;
  T: number;
  ids: Int32Array;
  attentionMask: Int32Array;
  /** 1 on target (completion) tokens. */
  labelMask: Int32Array;
}

/**
 * The inputs of every quantity a fixture holds; absent groups are left out of the fixture.
 * @example
 * ```ts
 * const inputs: OracleInputs = { dims, rope, weights, sft, adamw: { ...FIXTURE_ADAMW } };
 * ```
 */
export interface OracleInputs {
  dims: LlamaDims;
  rope: RopeConfig;
  weights: Map<string, Float32Array>;
  sft?: FixtureBatch;
  /** One AdamW step from the SFT gradients (needs `sft`). */
  adamw?: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number };
  pref?: {
    chosen: FixtureBatch;
    rejected: FixtureBatch;
    /** The reference model's summed completion log-probs per pair. */
    refChosenLogps: Float32Array;
    refRejectedLogps: Float32Array;
    beta: number;
    lambda: number;
  };
  gen?: { promptIds: number[]; newTokens: number };
}

type Tensors = Record<string, TensorToWrite>;

const f32 = (shape: number[], values: ArrayLike<number>): TensorToWrite => ({
  dtype: "F32",
  shape,
  data: Float32Array.from(values),
});
const i32 = (shape: number[], values: ArrayLike<number>): TensorToWrite => ({
  dtype: "I32",
  shape,
  data: Int32Array.from(values),
});

function sum(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i];
  return s;
}

/** Σ mask·logp and Σ mask per sequence of T rows. */
function sequenceSums(logp: ArrayLike<number>, mask: ArrayLike<number>, S: number, T: number) {
  return Array.from({ length: S }, (_, s) => {
    let total = 0, count = 0;
    for (let t = 0; t < T; t++) {
      total += mask[s * T + t] * logp[s * T + t];
      count += mask[s * T + t];
    }
    return { total, count };
  });
}

/** Forward, objective and backward of one batch with the reference model. */
function objectiveGrads(
  inputs: OracleInputs,
  batch: { B: number; T: number; ids: ArrayLike<number>; attentionMask: ArrayLike<number> },
  objective: (logp: Float32Array) => { loss: number; metrics: Record<string, number>; dlogp: Float64Array },
) {
  const fwd = referenceForward(inputs.dims, inputs.rope, inputs.weights, batch);
  const obj = objective(fwd.logp);
  return { fwd, obj, grads: referenceBackward(fwd.cache, obj.dlogp) };
}

function sftTensors(inputs: OracleInputs, s: FixtureBatch, out: Tensors): Map<string, Float32Array> {
  const { B, T } = s, dims = inputs.dims;
  const mask = shiftedMask(s.labelMask, s.attentionMask, B, T);
  const { fwd, obj, grads } = objectiveGrads(
    inputs,
    s,
    (logp) => objectiveRef("sft", { logp, mask, sequences: B, T, normTokens: sum(mask) }),
  );
  out["sft.input_ids"] = i32([B, T], s.ids);
  out["sft.attention_mask"] = i32([B, T], s.attentionMask);
  out["sft.label_mask"] = i32([B, T], s.labelMask);
  out["sft.logits"] = f32([B, T, dims.vocabSize], fwd.logits);
  const tokenLogps = new Float32Array(B * (T - 1));
  for (let b = 0; b < B; b++) tokenLogps.set(fwd.logp.subarray(b * T, b * T + T - 1), b * (T - 1));
  out["sft.token_logps"] = f32([B, T - 1], tokenLogps);
  out["sft.loss"] = f32([1], [obj.loss]);
  for (const [name, g] of grads) out[`sft.grad.${name}`] = f32(shapeOf(dims, name), g);
  return grads;
}

function adamwTensors(inputs: OracleInputs, grads: Map<string, Float32Array>, out: Tensors): void {
  const a = inputs.adamw!;
  for (const [name, w] of inputs.weights) {
    const g = grads.get(name)!;
    const zeros = new Float32Array(w.length);
    const next = adamwRef(w, g, zeros, zeros, { step: 1, ...a });
    out[`adamw.param.${name}`] = f32(shapeOf(inputs.dims, name), next.param);
  }
}

/** Row-wise concatenation: chosen rows first, then rejected (as TRL lays pairs out). */
function concatRows(a: ArrayLike<number>, b: ArrayLike<number>): number[] {
  return [...Array.from(a), ...Array.from(b)];
}

function prefTensors(inputs: OracleInputs, out: Tensors): void {
  const p = inputs.pref!, { B, T } = p.chosen, dims = inputs.dims;
  const batch = {
    B: 2 * B,
    T,
    ids: concatRows(p.chosen.ids, p.rejected.ids),
    attentionMask: concatRows(p.chosen.attentionMask, p.rejected.attentionMask),
  };
  const mask = shiftedMask(
    concatRows(p.chosen.labelMask, p.rejected.labelMask),
    batch.attentionMask,
    2 * B,
    T,
  );
  const refLogp = concatRows(p.refChosenLogps, p.refRejectedLogps);
  for (const [side, fb] of [["chosen", p.chosen], ["rejected", p.rejected]] as const) {
    out[`pref.${side}_ids`] = i32([B, T], fb.ids);
    out[`pref.${side}_attention_mask`] = i32([B, T], fb.attentionMask);
    out[`pref.${side}_label_mask`] = i32([B, T], fb.labelMask);
  }
  out["pref.ref_chosen_logps"] = f32([B], p.refChosenLogps);
  out["pref.ref_rejected_logps"] = f32([B], p.refRejectedLogps);

  const dpo = objectiveGrads(
    inputs,
    batch,
    (logp) => objectiveRef("dpo", { logp, mask, refLogp, sequences: 2 * B, T, beta: p.beta, normPairs: B }),
  );
  const sums = sequenceSums(dpo.fwd.logp, mask, 2 * B, T).map((s) => s.total);
  out["dpo.beta"] = f32([1], [p.beta]);
  out["dpo.loss"] = f32([1], [dpo.obj.loss]);
  out["dpo.chosen_logps"] = f32([B], sums.slice(0, B));
  out["dpo.rejected_logps"] = f32([B], sums.slice(B));
  out["dpo.rewards_chosen"] = f32([B], sums.slice(0, B).map((s, i) => p.beta * (s - refLogp[i])));
  out["dpo.rewards_rejected"] = f32([B], sums.slice(B).map((s, i) => p.beta * (s - refLogp[B + i])));
  for (const [name, g] of dpo.grads) out[`dpo.grad.${name}`] = f32(shapeOf(dims, name), g);

  // Completion-only NLL, as the public fixture's meta.json states.
  const normNllTokens = sum(mask.subarray(0, B * T));
  const orpo = objectiveGrads(inputs, batch, (logp) =>
    objectiveRef("orpo", {
      logp,
      mask,
      nllMask: mask,
      sequences: 2 * B,
      T,
      lambda: p.lambda,
      normPairs: B,
      normNllTokens,
    }));
  const avg = sequenceSums(orpo.fwd.logp, mask, 2 * B, T).map((s) => s.total / s.count);
  out["orpo.lambda"] = f32([1], [p.lambda]);
  out["orpo.loss"] = f32([1], [orpo.obj.loss]);
  out["orpo.nll"] = f32([1], [orpo.obj.metrics["nll_loss"]]);
  out["orpo.chosen_avg_logps"] = f32([B], avg.slice(0, B));
  out["orpo.rejected_avg_logps"] = f32([B], avg.slice(B));
  out["orpo.log_odds_ratio"] = f32([B], avg.slice(0, B).map((a, i) => logOdds(a) - logOdds(avg[B + i])));
  for (const [name, g] of orpo.grads) out[`orpo.grad.${name}`] = f32(shapeOf(dims, name), g);
}

function genTensors(inputs: OracleInputs, out: Tensors): void {
  const { promptIds, newTokens } = inputs.gen!;
  const tokens = referenceGreedy(inputs.dims, inputs.rope, inputs.weights, promptIds, newTokens);
  const L = tokens.length;
  const { logits } = referenceForward(inputs.dims, inputs.rope, inputs.weights, {
    B: 1,
    T: L,
    ids: tokens,
    attentionMask: tokens.map(() => 1),
  });
  out["gen.prompt_ids"] = i32([1, promptIds.length], promptIds);
  out["gen.output_ids"] = i32([1, L], tokens);
  out["gen.logits"] = f32([1, L, inputs.dims.vocabSize], logits);
}

/** The loss mask aligned with log-prob rows (row t scores token t+1, when it is a label and real). */
function shiftedMask(
  labels: ArrayLike<number>,
  attention: ArrayLike<number>,
  B: number,
  T: number,
): Float32Array {
  const ids = new Int32Array(B * T); // the targets are not needed here
  const { lossMask } = lossAlignedMasks(ids, Uint32Array.from(attention), Uint32Array.from(labels), B, T);
  return Float32Array.from(lossMask);
}

function shapeOf(dims: LlamaDims, name: string): number[] {
  const spec = llamaParamSpecs(dims).find((s) => s.name === name);
  if (!spec) throw new Error(`synthetic fixture: "${name}" is not a parameter of this model`);
  return spec.shape;
}

/**
 * Every tensor of `expected.safetensors` for these inputs, named as in the public fixture: the inputs are
 * echoed (`sft.input_ids`, `pref.*`, `gen.prompt_ids`) and the rest computed by the CPU reference.
 * Gradient names follow `model.named_parameters()`, so a tied model has no `lm_head.weight` entry.
 *
 * @example
 * ```ts
 * const tensors = oracleTensors({ dims, rope, weights, sft });
 * await writeSafetensors("expected.safetensors", tensors);
 * ```
 */
export function oracleTensors(inputs: OracleInputs): Tensors {
  const out: Tensors = {};
  if (inputs.sft) {
    const grads = sftTensors(inputs, inputs.sft, out);
    if (inputs.adamw) adamwTensors(inputs, grads, out);
  }
  if (inputs.pref) prefTensors(inputs, out);
  if (inputs.gen) genTensors(inputs, out);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Variants

/**
 * Which side of a row its pad tokens go.
 * @example
 * ```ts
 * const side: PadSide = "left"; // [pad, pad, prompt…, completion…]
 * ```
 */
export type PadSide = "right" | "left";

/**
 * A synthetic fixture's model and batches. `configStyle` picks how config.json states RoPE:
 * `transformers5` writes `rope_parameters: {rope_theta, rope_type, …}`, `transformers4` a top-level
 * `rope_theta` and `rope_scaling` (null or the llama3 block).
 *
 * @example
 * ```ts
 * const v: SyntheticVariant = { ...TIED_GQA, name: "mine", seed: 7 };
 * ```
 */
export interface SyntheticVariant {
  name: string;
  family: "llama" | "qwen2";
  configStyle: "transformers4" | "transformers5";
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** Written as `head_dim` when given; otherwise hidden_size / num_attention_heads. */
  headDim?: number;
  vocabSize: number;
  tieWordEmbeddings: boolean;
  /** llama's `attention_bias` (q, k, v and o); qwen2 always has q/k/v biases. */
  attentionBias?: boolean;
  /** llama's `mlp_bias`. */
  mlpBias?: boolean;
  ropeTheta: number;
  /** Llama 3 RoPE scaling. */
  llama3?: {
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalMaxPositionEmbeddings: number;
  };
  maxPositionEmbeddings: number;
  /** SFT batch: B = pads.length rows of T tokens, `promptLen` prompt tokens, right padded. */
  sft: { T: number; promptLen: number; pads: number[] };
  /** Preference batch: B = chosenPads.length pairs sharing each prompt. */
  pref: { T: number; promptLen: number; chosenPads: number[]; rejectedPads: number[]; side: PadSide };
  gen: { promptLen: number; newTokens: number };
  seed: number;
}

const PAD_ID = 0;
const FIRST_ORDINARY_ID = 3; // 0 pad, 1 bos, 2 eos

/**
 * config.json as transformers' `save_pretrained` writes it for this variant's family and version.
 * @example
 * ```ts
 * variantConfig(QWEN2_MQA).model_type; // "qwen2"
 * ```
 */
export function variantConfig(v: SyntheticVariant): Record<string, unknown> {
  const common: Record<string, unknown> = {
    attention_dropout: 0.0,
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: "silu",
    hidden_size: v.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: v.intermediateSize,
    max_position_embeddings: v.maxPositionEmbeddings,
    num_attention_heads: v.numHeads,
    num_hidden_layers: v.numLayers,
    num_key_value_heads: v.numKvHeads,
    tie_word_embeddings: v.tieWordEmbeddings,
    use_cache: true,
    vocab_size: v.vocabSize,
  };
  if (v.headDim !== undefined) common.head_dim = v.headDim;
  const family = v.family === "llama"
    ? {
      architectures: ["LlamaForCausalLM"],
      model_type: "llama",
      attention_bias: v.attentionBias ?? false,
      mlp_bias: v.mlpBias ?? false,
      pad_token_id: PAD_ID,
      pretraining_tp: 1,
      rms_norm_eps: 1e-5,
    }
    : {
      architectures: ["Qwen2ForCausalLM"],
      model_type: "qwen2",
      max_window_layers: v.numLayers,
      rms_norm_eps: 1e-6,
      sliding_window: v.maxPositionEmbeddings,
      use_sliding_window: false,
    };
  return { ...common, ...family, ...ropeFields(v), ...versionFields(v) };
}

function ropeFields(v: SyntheticVariant): Record<string, unknown> {
  const l3 = v.llama3
    ? {
      factor: v.llama3.factor,
      high_freq_factor: v.llama3.highFreqFactor,
      low_freq_factor: v.llama3.lowFreqFactor,
      original_max_position_embeddings: v.llama3.originalMaxPositionEmbeddings,
      rope_type: "llama3",
    }
    : undefined;
  if (v.configStyle === "transformers5") {
    return { rope_parameters: { rope_theta: v.ropeTheta, rope_type: "default", ...l3 } };
  }
  return { rope_theta: v.ropeTheta, rope_scaling: l3 ?? null };
}

function versionFields(v: SyntheticVariant): Record<string, unknown> {
  return v.configStyle === "transformers5"
    ? { dtype: "float32", transformers_version: "5.17.0" }
    : { torch_dtype: "float32", transformers_version: "4.46.3" };
}

/**
 * The architecture numbers of a variant, as `parseModelConfig(variantConfig(v))` holds them.
 * @example
 * ```ts
 * variantDims(QWEN2_MQA).attentionBias; // true
 * ```
 */
export function variantDims(v: SyntheticVariant): LlamaDims {
  const llamaBias = v.family === "llama" && Boolean(v.attentionBias);
  return {
    hiddenSize: v.hiddenSize,
    intermediateSize: v.intermediateSize,
    numLayers: v.numLayers,
    numHeads: v.numHeads,
    numKvHeads: v.numKvHeads,
    headDim: v.headDim ?? v.hiddenSize / v.numHeads,
    vocabSize: v.vocabSize,
    rmsNormEps: v.family === "llama" ? 1e-5 : 1e-6,
    tieWordEmbeddings: v.tieWordEmbeddings,
    attentionBias: v.family === "qwen2" || llamaBias,
    attentionOutputBias: llamaBias,
    mlpBias: v.family === "llama" && Boolean(v.mlpBias),
  };
}

/**
 * The RoPE spec of a variant.
 * @example
 * ```ts
 * variantRope(LLAMA3_SCALED).scaling?.type; // "llama3"
 * ```
 */
export function variantRope(v: SyntheticVariant): RopeConfig {
  const dims = variantDims(v);
  if (!v.llama3) return { headDim: dims.headDim, theta: v.ropeTheta };
  return { headDim: dims.headDim, theta: v.ropeTheta, scaling: { type: "llama3", ...v.llama3 } };
}

/**
 * Random weights that make a lively model: embeddings N(0, 1), linear weights N(0, 1/in) so activations stay
 * O(1), the lm_head scaled for logits of spread ~2 (so softmaxes are far from flat and greedy choices are not
 * near-ties), norm weights around 1 and biases around 0 (so their gradients are not degenerate).
 * @example
 * ```ts
 * const weights = syntheticWeights(variantDims(TIED_GQA), 11);
 * ```
 */
export function syntheticWeights(dims: LlamaDims, seed: number): Map<string, Float32Array> {
  const normal = normalGenerator(seed);
  const out = new Map<string, Float32Array>();
  for (const spec of llamaParamSpecs(dims)) {
    const data = new Float32Array(numel(spec.shape));
    const [mean, std] = spec.name.endsWith("norm.weight")
      ? [1, 0.2]
      : spec.name.endsWith(".bias")
      ? [0, 0.2]
      : spec.name === "model.embed_tokens.weight"
      ? [0, 1]
      : spec.name === "lm_head.weight"
      ? [0, 2 / Math.sqrt(spec.shape[1])]
      : [0, 1 / Math.sqrt(spec.shape[1])];
    for (let i = 0; i < data.length; i++) data[i] = mean + std * normal();
    out.set(spec.name, data);
  }
  return out;
}

/** Rows of `T` tokens: `pads[b]` pad tokens on `side`, then a prompt (shared per row index) and a completion. */
function paddedRows(
  next: () => number,
  vocab: number,
  T: number,
  pads: number[],
  side: PadSide,
  prompts: number[][],
): FixtureBatch {
  const B = pads.length;
  const ids = new Int32Array(B * T), attentionMask = new Int32Array(B * T), labelMask = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const real = T - pads[b];
    if (real <= prompts[b].length) {
      throw new RangeError(`synthetic batch: row ${b} has ${real} real tokens, not more than its prompt`);
    }
    const start = side === "left" ? pads[b] : 0;
    for (let i = 0; i < real; i++) {
      const r = b * T + start + i;
      ids[r] = i < prompts[b].length
        ? prompts[b][i]
        : FIRST_ORDINARY_ID + Math.floor(next() * (vocab - FIRST_ORDINARY_ID));
      attentionMask[r] = 1;
      labelMask[r] = i < prompts[b].length ? 0 : 1;
    }
  }
  return { B, T, ids, attentionMask, labelMask };
}

function randomIds(next: () => number, vocab: number, n: number): number[] {
  return Array.from(
    { length: n },
    () => FIRST_ORDINARY_ID + Math.floor(next() * (vocab - FIRST_ORDINARY_ID)),
  );
}

/** Summed completion log-probs of each row under `weights` (the DPO reference model's numbers). */
function completionLogps(
  dims: LlamaDims,
  rope: RopeConfig,
  weights: Map<string, Float32Array>,
  fb: FixtureBatch,
): Float32Array {
  const { logp } = referenceForward(dims, rope, weights, fb);
  const mask = shiftedMask(fb.labelMask, fb.attentionMask, fb.B, fb.T);
  return Float32Array.from(sequenceSums(logp, mask, fb.B, fb.T).map((s) => s.total));
}

/**
 * torch.optim.AdamW settings of every fixture (the public fixture's).
 * @example
 * ```ts
 * adamwRef(w, g, m, v, { step: 1, ...FIXTURE_ADAMW });
 * ```
 */
export const FIXTURE_ADAMW = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 } as const;

/** The public fixture's convention texts, with what this reference adds about positions and padding. */
function conventions(v: SyntheticVariant): Record<string, string> {
  return {
    token_logps: "log p(ids[t+1] | ids[<=t]) for t in 0..T-2, shape [B,T-1]",
    label_mask: "1 where a token is a training target (completion), 0 for prompt and padding",
    positions:
      "0..T-1 in every row (no position_ids, as transformers' forward defaults), also left-padded rows",
    padding: `sft rows right-padded; preference rows ${v.pref.side}-padded; padding keys are never attended`,
    "sft.loss": "mean NLL over all label tokens of the batch",
    dpo:
      "sigmoid DPO, logps = SUM over completion tokens, loss mean over pairs; reference logps from a second random model",
    orpo:
      "nll over chosen completion tokens (mean per token over batch) - lambda * mean logsigmoid(log_odds), odds from per-token AVERAGE logps",
    adamw: `torch.optim.AdamW lr=${FIXTURE_ADAMW.lr} betas=(${FIXTURE_ADAMW.beta1},${FIXTURE_ADAMW.beta2}) ` +
      `eps=${FIXTURE_ADAMW.eps} weight_decay=${FIXTURE_ADAMW.weightDecay}, one step from the saved weights using sft grads`,
    weights:
      "random: embeddings N(0,1), linear N(0,1/in), lm_head N(0,4/hidden), norms 1+N(0,0.04), biases N(0,0.04)",
  };
}

/**
 * What {@link writeSyntheticFixture} wrote, for tests that want to look further.
 * @example
 * ```ts
 * const fx: SyntheticFixture = await writeSyntheticFixture(dir, TIED_GQA);
 * referenceForward(fx.dims, fx.rope, fx.weights, fx.inputs.sft!);
 * ```
 */
export interface SyntheticFixture {
  dir: string;
  dims: LlamaDims;
  rope: RopeConfig;
  weights: Map<string, Float32Array>;
  inputs: OracleInputs;
}

/**
 * The inputs of every fixture quantity for a variant: weights, batches, reference log-probs, prompt.
 * @example
 * ```ts
 * const tensors = oracleTensors(variantInputs(TIED_GQA));
 * ```
 */
export function variantInputs(v: SyntheticVariant): OracleInputs {
  const dims = variantDims(v), rope = variantRope(v), V = dims.vocabSize;
  const weights = syntheticWeights(dims, v.seed);
  const next = rng(v.seed + 1);
  const sftPrompts = v.sft.pads.map(() => randomIds(next, V, v.sft.promptLen));
  const sft = paddedRows(next, V, v.sft.T, v.sft.pads, "right", sftPrompts);
  const prefPrompts = v.pref.chosenPads.map(() => randomIds(next, V, v.pref.promptLen));
  const chosen = paddedRows(next, V, v.pref.T, v.pref.chosenPads, v.pref.side, prefPrompts);
  const rejected = paddedRows(next, V, v.pref.T, v.pref.rejectedPads, v.pref.side, prefPrompts);
  const refWeights = syntheticWeights(dims, v.seed + 2);
  return {
    dims,
    rope,
    weights,
    sft,
    adamw: { ...FIXTURE_ADAMW },
    pref: {
      chosen,
      rejected,
      refChosenLogps: completionLogps(dims, rope, refWeights, chosen),
      refRejectedLogps: completionLogps(dims, rope, refWeights, rejected),
      beta: 0.1,
      lambda: 0.1,
    },
    gen: { promptIds: randomIds(next, V, v.gen.promptLen), newTokens: v.gen.newTokens },
  };
}

/**
 * Writes a fixture for `variant` into `dir` in the public layout: `model/` (config.json as transformers
 * writes it for the family, model.safetensors in F32, generation_config.json), `expected.safetensors` and
 * `meta.json`.
 *
 * @example
 * ```ts
 * await writeSyntheticFixture("/tmp/fx-tied", TIED_GQA);
 * const lines = await runParity(gpu, "/tmp/fx-tied");
 * ```
 */
export async function writeSyntheticFixture(
  dir: string,
  variant: SyntheticVariant,
): Promise<SyntheticFixture> {
  const inputs = variantInputs(variant);
  await Deno.mkdir(dir, { recursive: true });
  await saveModelFolder(join(dir, "model"), {
    config: variantConfig(variant),
    tensors: inputs.weights,
    dtype: "F32",
    generationConfig: {
      _from_model_config: true,
      bos_token_id: 1,
      eos_token_id: 2,
      ...(variant.family === "llama" ? { pad_token_id: PAD_ID } : {}),
      transformers_version: variant.configStyle === "transformers5" ? "5.17.0" : "4.46.3",
    },
  });
  await writeSafetensors(join(dir, "expected.safetensors"), oracleTensors(inputs));
  const meta = {
    name: variant.name,
    source: "kotransfer CPU reference (model/reference.ts), fp32 storage with f64 sums",
    B: variant.sft.pads.length,
    T: variant.sft.T,
    prompt_len: variant.sft.promptLen,
    pad: variant.sft.pads,
    conventions: conventions(variant),
  };
  await Deno.writeTextFile(join(dir, "meta.json"), JSON.stringify(meta, null, 1) + "\n");
  return { dir, dims: inputs.dims, rope: inputs.rope, weights: inputs.weights, inputs };
}

/**
 * (a) Tied embeddings, a transformers-4 config with top-level rope_theta 500000, GQA 6:2, an explicit
 * head_dim of 8 (heads·head_dim ≠ hidden), odd T = 13.
 * @example `await writeSyntheticFixture(dir, TIED_GQA);`
 */
export const TIED_GQA: SyntheticVariant = {
  name: "llama-tied-gqa-theta500k",
  family: "llama",
  configStyle: "transformers4",
  hiddenSize: 40,
  intermediateSize: 72,
  numLayers: 2,
  numHeads: 6,
  numKvHeads: 2,
  headDim: 8,
  vocabSize: 103,
  tieWordEmbeddings: true,
  ropeTheta: 500000,
  maxPositionEmbeddings: 64,
  sft: { T: 13, promptLen: 3, pads: [0, 4, 1] },
  pref: { T: 13, promptLen: 4, chosenPads: [0, 3], rejectedPads: [2, 0], side: "right" },
  gen: { promptLen: 5, newTokens: 6 },
  seed: 11,
};

/**
 * (b) Qwen2: q/k/v biases (no o_proj bias), MQA (one kv head), rope_theta 1e6, rms_norm_eps 1e-6.
 * @example `await writeSyntheticFixture(dir, QWEN2_MQA);`
 */
export const QWEN2_MQA: SyntheticVariant = {
  name: "qwen2-mqa-bias",
  family: "qwen2",
  configStyle: "transformers4",
  hiddenSize: 32,
  intermediateSize: 56,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 1,
  vocabSize: 97,
  tieWordEmbeddings: false,
  ropeTheta: 1000000,
  maxPositionEmbeddings: 128,
  sft: { T: 17, promptLen: 4, pads: [2, 0] },
  pref: { T: 15, promptLen: 5, chosenPads: [0, 4], rejectedPads: [3, 1], side: "right" },
  gen: { promptLen: 4, newTokens: 7 },
  seed: 23,
};

/**
 * (c) Llama 3 RoPE scaling with a small original context (32): head_dim 16 at theta 10000 puts one pair
 * below the high-frequency wavelength (kept), one in the blended band and six above the low-frequency
 * wavelength (divided by the factor); T = 40 runs past the original context.
 * @example `await writeSyntheticFixture(dir, LLAMA3_SCALED);`
 */
export const LLAMA3_SCALED: SyntheticVariant = {
  name: "llama3-rope-scaling",
  family: "llama",
  configStyle: "transformers4",
  hiddenSize: 48,
  intermediateSize: 64,
  numLayers: 2,
  numHeads: 3,
  numKvHeads: 1,
  headDim: 16,
  vocabSize: 89,
  tieWordEmbeddings: false,
  ropeTheta: 10000,
  llama3: { factor: 4, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 32 },
  maxPositionEmbeddings: 128,
  sft: { T: 40, promptLen: 6, pads: [0, 9] },
  pref: { T: 38, promptLen: 6, chosenPads: [0, 5], rejectedPads: [7, 0], side: "right" },
  gen: { promptLen: 30, newTokens: 8 },
  seed: 37,
};

/**
 * (d) Left-padded preference rows on a llama with every bias (attention_bias: q, k, v and o; mlp_bias),
 * a transformers-5 config (rope_parameters).
 * @example `await writeSyntheticFixture(dir, LEFT_PADDED_BIASES);`
 */
export const LEFT_PADDED_BIASES: SyntheticVariant = {
  name: "llama-left-padded-all-biases",
  family: "llama",
  configStyle: "transformers5",
  attentionBias: true,
  mlpBias: true,
  hiddenSize: 36,
  intermediateSize: 60,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 10,
  vocabSize: 113,
  tieWordEmbeddings: false,
  ropeTheta: 10000,
  maxPositionEmbeddings: 64,
  sft: { T: 14, promptLen: 3, pads: [0, 5] },
  pref: { T: 16, promptLen: 4, chosenPads: [5, 0, 2], rejectedPads: [0, 6, 3], side: "left" },
  gen: { promptLen: 6, newTokens: 5 },
  seed: 53,
};
