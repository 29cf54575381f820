/**
 * A CPU reference of the whole Llama-family model, composed from the kernels' CPU references and written
 * top to bottom for reading (nanoGPT style), with the GPU model's conventions:
 *
 * ```
 * embed → [rmsnorm → q,k,v (+bias, +LoRA) → rope → causal GQA attention → o_proj → +residual
 *          → rmsnorm → gate,up → silu(gate)·up → down_proj → +residual] × L → rmsnorm → lm_head → log-probs
 * ```
 *
 * Weights use Hugging Face's names and `[out, in]` layout; keys are hidden by the attention mask and by
 * causality, so right and left padding both work; tied embeddings send the lm_head gradient to the
 * embedding table. Activations are stored in f32 between steps (as transformers' fp32 model stores them) and
 * dot products are summed in f64. It is the oracle for model families that have no PyTorch fixture yet, and
 * is checked against the public transformers fixture and against finite differences of its own loss.
 *
 * @module
 */
import {
  attentionBackwardRef,
  attentionForwardRef,
  type AttentionRefShape,
} from "../kernels/attention_ref.ts";
import { addBiasRef, addRef, biasBackwardRef } from "../kernels/elementwise_ref.ts";
import { embeddingBackwardRef, embeddingForwardRef } from "../kernels/embedding_ref.ts";
import { NO_TARGET } from "../kernels/logprobs.ts";
import { logprobsBackwardRef, logprobsForwardRef } from "../kernels/logprobs_ref.ts";
import { matmulRef } from "../kernels/matmul_ref.ts";
import { rmsnormBackwardRef, rmsnormForwardRef } from "../kernels/rmsnorm_ref.ts";
import { ropeBackwardRef, ropeForwardRef, type RopeRefTables } from "../kernels/rope_ref.ts";
import { swigluBackwardRef, swigluForwardRef } from "../kernels/swiglu_ref.ts";
import {
  hasBias,
  layerNormName,
  LINEAR_NAMES,
  type LinearName,
  linearName,
  linearShape,
  type LlamaDims,
  llamaParamSpecs,
  lmHeadName,
  numel,
  type RopeConfig,
} from "../io/llama_architecture.ts";
import { ropeTables } from "./rope.ts";

/**
 * B sequences of T tokens, batch-major, as the GPU model takes them.
 *
 * @example
 * ```ts
 * const batch: ReferenceBatch = { B: 1, T: 3, ids: [5, 9, 2], attentionMask: [1, 1, 1] };
 * ```
 */
export interface ReferenceBatch {
  /** Sequences. */
  B: number;
  /** Tokens per sequence, padding included. */
  T: number;
  /** Token ids [B·T]. */
  ids: ArrayLike<number>;
  /** 1 for real tokens, 0 for padding (padding keys are never attended to). */
  attentionMask: ArrayLike<number>;
  /** RoPE position of each token; default `t` in every row (transformers' default without position_ids). */
  positions?: ArrayLike<number>;
}

/**
 * LoRA adapters: `y += scale · (x·Aᵀ)·Bᵀ` for every linear `L` with tensors `L.lora_A` [r, in] and
 * `L.lora_B` [out, r] in `weights` (L as `model.layers.0.self_attn.q_proj`); the rank is read from A.
 *
 * @example
 * ```ts
 * const lora: ReferenceLora = {
 *   scale: 2,
 *   weights: new Map([["model.layers.0.self_attn.q_proj.lora_A", a], ["model.layers.0.self_attn.q_proj.lora_B", b]]),
 * };
 * ```
 */
export interface ReferenceLora {
  scale: number;
  weights: ReadonlyMap<string, Float32Array>;
}

/** One LoRA adapter resolved for a linear layer. */
interface Adapter {
  a: Float32Array;
  b: Float32Array;
  rank: number;
  scale: number;
}

/** What one decoder layer keeps for the backward pass. */
interface LayerCache {
  /** Residual stream entering the layer [N, D]. */
  x: Float32Array;
  xn1: Float32Array;
  rstd1: Float32Array;
  /** q and k after RoPE, v as projected. */
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  attn: Float32Array;
  /** x + attention output. */
  mid: Float32Array;
  xn2: Float32Array;
  rstd2: Float32Array;
  gate: Float32Array;
  up: Float32Array;
  act: Float32Array;
  /** x·Aᵀ of each linear with a LoRA adapter. */
  loraXa: Map<LinearName, Float32Array>;
}

/**
 * Everything {@link referenceBackward} needs from a forward pass. Treat it as opaque.
 *
 * @example
 * ```ts
 * const { cache } = referenceForward(dims, rope, weights, batch);
 * const grads = referenceBackward(cache, dlogp);
 * ```
 */
export interface ReferenceCache {
  readonly dims: LlamaDims;
  /** Weights and adapters, as the forward pass used them. */
  readonly model: ModelView;
  readonly B: number;
  readonly T: number;
  /** Token ids [N], next-token targets [N] (NO_TARGET at t = T−1) and key mask [N]. */
  readonly ids: Uint32Array;
  readonly targets: Uint32Array;
  readonly keyMask: Uint32Array;
  /** Positions and cos/sin tables (`heads` is set per use: q or k). */
  readonly rope: RopeRefTables;
  /** Each decoder layer's saved activations. */
  readonly layers: readonly LayerCache[];
  /** Input of the final norm, its rstd and output [N, D]. */
  readonly resid: Float32Array;
  readonly rstdFinal: Float32Array;
  readonly normed: Float32Array;
  /** [N, V]. */
  readonly logits: Float32Array;
}

/**
 * What {@link referenceForward} returns.
 *
 * @example
 * ```ts
 * const out: ReferenceForward = referenceForward(dims, rope, weights, batch);
 * out.logp[0]; // log p(ids[1] | ids[0])
 * ```
 */
export interface ReferenceForward {
  /** [B·T·V]. */
  logits: Float32Array;
  /** [B·T]: row b·T+t holds log p(ids[b, t+1] | ids[b, ≤t]); 0 at t = T−1. */
  logp: Float32Array;
  cache: ReferenceCache;
}

/** The model's weights and adapters, looked up with errors that name what is missing. */
interface ModelView {
  dims: LlamaDims;
  param(name: string): Float32Array;
  adapter(linear: string): Adapter | undefined;
  lmHeadName: string;
}

// ---------------------------------------------------------------------------------------------------------
// Inputs

function checkWeights(dims: LlamaDims, weights: ReadonlyMap<string, Float32Array>): void {
  for (const spec of llamaParamSpecs(dims)) {
    const w = weights.get(spec.name);
    if (!w) {
      throw new Error(`reference model: weights lack "${spec.name}" (shape [${spec.shape.join(", ")}])`);
    }
    if (w.length !== numel(spec.shape)) {
      throw new RangeError(
        `reference model: "${spec.name}" has ${w.length} values, expected shape [${spec.shape.join(", ")}]`,
      );
    }
  }
}

/** Resolves every LoRA adapter, checking that A and B come in pairs with consistent shapes. */
function resolveAdapters(dims: LlamaDims, lora: ReferenceLora | undefined): Map<string, Adapter> {
  const out = new Map<string, Adapter>();
  if (!lora) return out;
  if (!Number.isFinite(lora.scale)) {
    throw new RangeError(`reference LoRA: scale must be finite, got ${lora.scale}`);
  }
  const known = new Set<string>();
  for (let l = 0; l < dims.numLayers; l++) {
    for (const which of LINEAR_NAMES) {
      const name = linearName(l, which);
      known.add(`${name}.lora_A`).add(`${name}.lora_B`);
      const a = lora.weights.get(`${name}.lora_A`), b = lora.weights.get(`${name}.lora_B`);
      if (!a && !b) continue;
      if (!a || !b) {
        throw new Error(`reference LoRA: "${name}" has ${a ? "lora_A" : "lora_B"} but not the other`);
      }
      const [outF, inF] = linearShape(dims, which);
      const rank = a.length / inF;
      if (!Number.isInteger(rank) || rank < 1 || b.length !== outF * rank) {
        throw new RangeError(
          `reference LoRA: "${name}" needs lora_A [r, ${inF}] and lora_B [${outF}, r], ` +
            `got ${a.length} and ${b.length} values`,
        );
      }
      out.set(name, { a, b, rank, scale: lora.scale });
    }
  }
  const stray = [...lora.weights.keys()].filter((k) => !known.has(k));
  if (stray.length) throw new Error(`reference LoRA: no linear layer for "${stray.join('", "')}"`);
  return out;
}

function modelView(
  dims: LlamaDims,
  weights: ReadonlyMap<string, Float32Array>,
  lora: ReferenceLora | undefined,
): ModelView {
  checkWeights(dims, weights);
  const adapters = resolveAdapters(dims, lora);
  return {
    dims,
    param: (name) => weights.get(name)!,
    adapter: (linear) => adapters.get(linear),
    lmHeadName: lmHeadName(dims),
  };
}

/** ids, targets (the next token, none at t = T−1), key mask and positions, checked. */
function batchArrays(dims: LlamaDims, b: ReferenceBatch) {
  const N = b.B * b.T;
  if (!(Number.isInteger(b.B) && b.B > 0 && Number.isInteger(b.T) && b.T > 0)) {
    throw new RangeError(`reference batch: B and T must be positive integers, got ${b.B}×${b.T}`);
  }
  const fields: [string, ArrayLike<number> | undefined][] = [
    ["ids", b.ids],
    ["attentionMask", b.attentionMask],
    ["positions", b.positions],
  ];
  for (const [field, values] of fields) {
    if (values && values.length !== N) {
      throw new RangeError(`reference batch: ${field} has ${values.length} values, expected B·T = ${N}`);
    }
  }
  const ids = new Uint32Array(N), targets = new Uint32Array(N).fill(NO_TARGET);
  const keyMask = new Uint32Array(N), positions = new Uint32Array(N);
  for (let r = 0; r < N; r++) {
    const t = r % b.T;
    if (!(Number.isInteger(b.ids[r]) && b.ids[r] >= 0 && b.ids[r] < dims.vocabSize)) {
      throw new RangeError(
        `reference batch: ids[${r}] = ${b.ids[r]} is not a token id in [0, ${dims.vocabSize})`,
      );
    }
    const pos = b.positions ? b.positions[r] : t;
    if (!(Number.isInteger(pos) && pos >= 0)) {
      throw new RangeError(`reference batch: positions[${r}] = ${pos} is not a non-negative integer`);
    }
    ids[r] = b.ids[r];
    keyMask[r] = b.attentionMask[r] ? 1 : 0;
    positions[r] = pos;
    if (t + 1 < b.T) targets[r] = b.ids[r + 1];
  }
  return { ids, targets, keyMask, positions };
}

function ropeRefTables(dims: LlamaDims, rope: RopeConfig, positions: Uint32Array): RopeRefTables {
  if (rope.headDim !== dims.headDim) {
    throw new RangeError(
      `reference model: RoPE headDim ${rope.headDim} differs from the model's ${dims.headDim}`,
    );
  }
  const { cos, sin } = ropeTables(rope, Math.max(...positions) + 1);
  return { positions, cos, sin, rows: positions.length, heads: 0, headDim: dims.headDim };
}

function attentionShape(dims: LlamaDims, B: number, T: number): AttentionRefShape {
  return {
    B,
    Tq: T,
    Tk: T,
    kvRows: T,
    qOffset: 0,
    heads: dims.numHeads,
    kvHeads: dims.numKvHeads,
    headDim: dims.headDim,
    scale: 1 / Math.sqrt(dims.headDim),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Forward

/** y = x·Wᵀ (+ bias) (+ scale·(x·Aᵀ)·Bᵀ); returns y and x·Aᵀ when there is an adapter. */
function linearForward(
  m: ModelView,
  layer: number,
  which: LinearName,
  x: Float32Array,
  N: number,
): { y: Float32Array; xa?: Float32Array } {
  const name = linearName(layer, which);
  const [outF, inF] = linearShape(m.dims, which);
  let y = matmulRef({ a: x, b: m.param(`${name}.weight`), M: N, N: outF, K: inF, transB: true });
  if (hasBias(m.dims, which)) y = addBiasRef(y, m.param(`${name}.bias`), N, outF);
  const ad = m.adapter(name);
  if (!ad) return { y };
  const xa = matmulRef({ a: x, b: ad.a, M: N, N: ad.rank, K: inF, transB: true });
  y = matmulRef({
    a: xa,
    b: ad.b,
    c: y,
    M: N,
    N: outF,
    K: ad.rank,
    transB: true,
    accumulate: true,
    alpha: ad.scale,
  });
  return { y, xa };
}

function decoderLayerForward(
  m: ModelView,
  l: number,
  x: Float32Array,
  rope: RopeRefTables,
  keyMask: Uint32Array,
  B: number,
  T: number,
): { next: Float32Array; cache: LayerCache } {
  const d = m.dims, N = B * T, D = d.hiddenSize;
  const loraXa = new Map<LinearName, Float32Array>();
  const linear = (which: LinearName, input: Float32Array) => {
    const { y, xa } = linearForward(m, l, which, input, N);
    if (xa) loraXa.set(which, xa);
    return y;
  };
  // Attention block.
  const n1 = rmsnormForwardRef(x, m.param(layerNormName(l, "input_layernorm")), N, D, d.rmsNormEps);
  const q = ropeForwardRef(linear("q_proj", n1.y), { ...rope, heads: d.numHeads });
  const k = ropeForwardRef(linear("k_proj", n1.y), { ...rope, heads: d.numKvHeads });
  const v = linear("v_proj", n1.y);
  const attn = Float32Array.from(attentionForwardRef(q, k, v, keyMask, attentionShape(d, B, T)).out);
  const mid = addRef(x, linear("o_proj", attn));
  // MLP block.
  const n2 = rmsnormForwardRef(
    mid,
    m.param(layerNormName(l, "post_attention_layernorm")),
    N,
    D,
    d.rmsNormEps,
  );
  const gate = linear("gate_proj", n2.y);
  const up = linear("up_proj", n2.y);
  const act = swigluForwardRef(gate, up);
  const next = addRef(mid, linear("down_proj", act));
  return {
    next,
    cache: {
      x,
      xn1: n1.y,
      rstd1: n1.rstd,
      q,
      k,
      v,
      attn,
      mid,
      xn2: n2.y,
      rstd2: n2.rstd,
      gate,
      up,
      act,
      loraXa,
    },
  };
}

/**
 * The forward pass of B sequences: logits of every row, per-token log-probs of the next token, and the
 * activations {@link referenceBackward} needs.
 *
 * @example
 * ```ts
 * const { logits, logp } = referenceForward(dims, { headDim: dims.headDim, theta: 10000 }, weights, {
 *   B: 1, T: 4, ids: [1, 7, 7, 2], attentionMask: [1, 1, 1, 1],
 * });
 * ```
 */
export function referenceForward(
  dims: LlamaDims,
  rope: RopeConfig,
  weights: ReadonlyMap<string, Float32Array>,
  batch: ReferenceBatch,
  lora?: ReferenceLora,
): ReferenceForward {
  const m = modelView(dims, weights, lora);
  const { B, T } = batch, N = B * T, D = dims.hiddenSize, V = dims.vocabSize;
  const { ids, targets, keyMask, positions } = batchArrays(dims, batch);
  const tables = ropeRefTables(dims, rope, positions);
  let x = embeddingForwardRef(ids, m.param("model.embed_tokens.weight"), D, new Float32Array(N * D));
  const layers: LayerCache[] = [];
  for (let l = 0; l < dims.numLayers; l++) {
    const { next, cache } = decoderLayerForward(m, l, x, tables, keyMask, B, T);
    layers.push(cache);
    x = next;
  }
  const final = rmsnormForwardRef(x, m.param("model.norm.weight"), N, D, dims.rmsNormEps);
  const logits = matmulRef({ a: final.y, b: m.param(m.lmHeadName), M: N, N: V, K: D, transB: true });
  const logp = Float32Array.from(logprobsForwardRef(logits, targets, N, V).logp);
  const cache: ReferenceCache = {
    dims,
    model: m,
    B,
    T,
    ids,
    targets,
    keyMask,
    rope: tables,
    layers,
    resid: x,
    rstdFinal: final.rstd,
    normed: final.y,
    logits,
  };
  return { logits, logp, cache };
}

// ---------------------------------------------------------------------------------------------------------
// Backward

/** Gradients by name, summed where a tensor receives several contributions (tied embeddings). */
class GradSink {
  readonly grads = new Map<string, Float32Array>();
  add(name: string, g: ArrayLike<number>): void {
    const prev = this.grads.get(name);
    if (!prev) this.grads.set(name, Float32Array.from(g));
    else for (let i = 0; i < prev.length; i++) prev[i] += g[i];
  }
}

/** From dy of a linear layer: adds dW, dbias, dA, dB to the sink and returns dx. */
function linearBackward(
  m: ModelView,
  sink: GradSink,
  layer: number,
  which: LinearName,
  dy: Float32Array,
  x: Float32Array,
  xa: Float32Array | undefined,
  N: number,
): Float32Array {
  const name = linearName(layer, which);
  const [outF, inF] = linearShape(m.dims, which);
  const W = m.param(`${name}.weight`);
  let dx = matmulRef({ a: dy, b: W, M: N, N: inF, K: outF });
  sink.add(`${name}.weight`, matmulRef({ a: dy, b: x, M: outF, N: inF, K: N, transA: true }));
  if (hasBias(m.dims, which)) sink.add(`${name}.bias`, biasBackwardRef(dy, N, outF));
  const ad = m.adapter(name);
  if (ad && xa) {
    // dy·B is the gradient of x·Aᵀ (before the scale); it feeds dx and dA.
    const dyB = matmulRef({ a: dy, b: ad.b, M: N, N: ad.rank, K: outF });
    dx = matmulRef({ a: dyB, b: ad.a, c: dx, M: N, N: inF, K: ad.rank, accumulate: true, alpha: ad.scale });
    sink.add(
      `${name}.lora_B`,
      matmulRef({ a: dy, b: xa, M: outF, N: ad.rank, K: N, transA: true, alpha: ad.scale }),
    );
    sink.add(
      `${name}.lora_A`,
      matmulRef({ a: dyB, b: x, M: ad.rank, N: inF, K: N, transA: true, alpha: ad.scale }),
    );
  }
  return dx;
}

/** Backward through one decoder layer: `dnext` is d(loss)/d(layer output); returns d(layer input). */
function decoderLayerBackward(
  cache: ReferenceCache,
  sink: GradSink,
  l: number,
  dnext: Float32Array,
): Float32Array {
  const m = cache.model, d = cache.dims, a = cache.layers[l];
  const N = cache.B * cache.T, D = d.hiddenSize;
  const back = (which: LinearName, dy: Float32Array, input: Float32Array) =>
    linearBackward(m, sink, l, which, dy, input, a.loraXa.get(which), N);
  // MLP block: next = mid + down(swiglu(gate(xn2), up(xn2))).
  const dact = back("down_proj", dnext, a.act);
  const { dgate, dup } = swigluBackwardRef(dact, a.gate, a.up);
  const dxn2 = addRef(back("gate_proj", dgate, a.xn2), back("up_proj", dup, a.xn2));
  const post = layerNormName(l, "post_attention_layernorm");
  const n2 = rmsnormBackwardRef(dxn2, a.mid, m.param(post), a.rstd2, N, D);
  sink.add(post, n2.dw);
  const dmid = addRef(dnext, n2.dx);
  // Attention block: mid = x + o_proj(attention(rope(q(xn1)), rope(k(xn1)), v(xn1))).
  const dattn = back("o_proj", dmid, a.attn);
  const shape = attentionShape(d, cache.B, cache.T);
  const g = attentionBackwardRef(a.q, a.k, a.v, cache.keyMask, dattn, shape);
  const dq = ropeBackwardRef(Float32Array.from(g.dq), { ...cache.rope, heads: d.numHeads });
  const dk = ropeBackwardRef(Float32Array.from(g.dk), { ...cache.rope, heads: d.numKvHeads });
  const dxn1 = addRef(
    addRef(back("q_proj", dq, a.xn1), back("k_proj", dk, a.xn1)),
    back("v_proj", Float32Array.from(g.dv), a.xn1),
  );
  const input = layerNormName(l, "input_layernorm");
  const n1 = rmsnormBackwardRef(dxn1, a.x, m.param(input), a.rstd1, N, D);
  sink.add(input, n1.dw);
  return addRef(dmid, n1.dx);
}

/**
 * Gradients of `Σ_r dlogp[r] · logp[r]` for every parameter (Hugging Face names; with tied embeddings the
 * lm_head's share is added to `model.embed_tokens.weight`) and, when the forward pass had LoRA adapters,
 * `<linear>.lora_A` and `<linear>.lora_B`.
 *
 * @example
 * ```ts
 * const { cache } = referenceForward(dims, rope, weights, batch);
 * const dlogp = new Float32Array(batch.B * batch.T).fill(-1 / 10); // mean NLL over 10 target tokens
 * const grads = referenceBackward(cache, dlogp);
 * grads.get("model.norm.weight");
 * ```
 */
export function referenceBackward(
  cache: ReferenceCache,
  dlogp: ArrayLike<number>,
): Map<string, Float32Array> {
  const m = cache.model, d = cache.dims;
  const N = cache.B * cache.T, D = d.hiddenSize, V = d.vocabSize;
  if (dlogp.length !== N) {
    throw new RangeError(`referenceBackward: dlogp has ${dlogp.length} rows, expected B·T = ${N}`);
  }
  const sink = new GradSink();
  // Vocabulary projection and final norm.
  const dlogits = Float32Array.from(logprobsBackwardRef(cache.logits, cache.targets, dlogp, N, V));
  const dnormed = matmulRef({ a: dlogits, b: m.param(m.lmHeadName), M: N, N: D, K: V });
  sink.add(m.lmHeadName, matmulRef({ a: dlogits, b: cache.normed, M: V, N: D, K: N, transA: true }));
  const fin = rmsnormBackwardRef(dnormed, cache.resid, m.param("model.norm.weight"), cache.rstdFinal, N, D);
  sink.add("model.norm.weight", fin.dw);
  // Decoder layers, last first.
  let dres = fin.dx;
  for (let l = d.numLayers - 1; l >= 0; l--) dres = decoderLayerBackward(cache, sink, l, dres);
  sink.add("model.embed_tokens.weight", embeddingBackwardRef(cache.ids, dres, V, D));
  return orderedGrads(cache, sink);
}

/** Every parameter's gradient in state-dict order, then the adapters' (zeros where nothing flowed). */
function orderedGrads(cache: ReferenceCache, sink: GradSink): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const spec of llamaParamSpecs(cache.dims)) {
    out.set(spec.name, sink.grads.get(spec.name) ?? new Float32Array(numel(spec.shape)));
  }
  for (const [name, g] of sink.grads) if (!out.has(name)) out.set(name, g);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Generation

/**
 * Greedy decoding by re-running the whole sequence for each new token (the first maximum wins ties, as
 * torch's argmax); returns the prompt followed by the new tokens.
 *
 * @example
 * ```ts
 * const tokens = referenceGreedy(dims, rope, weights, [1, 337, 188], 8); // 11 ids
 * ```
 */
export function referenceGreedy(
  dims: LlamaDims,
  rope: RopeConfig,
  weights: ReadonlyMap<string, Float32Array>,
  promptIds: readonly number[],
  newTokens: number,
): number[] {
  if (promptIds.length === 0) {
    throw new RangeError("referenceGreedy: the prompt must hold at least one token");
  }
  if (!(Number.isInteger(newTokens) && newTokens >= 0)) {
    throw new RangeError(`referenceGreedy: newTokens must be a non-negative integer, got ${newTokens}`);
  }
  const V = dims.vocabSize;
  const seq = [...promptIds];
  for (let i = 0; i < newTokens; i++) {
    const T = seq.length;
    const { logits } = referenceForward(dims, rope, weights, {
      B: 1,
      T,
      ids: seq,
      attentionMask: seq.map(() => 1),
    });
    seq.push(argmax(logits.subarray((T - 1) * V, T * V)));
  }
  return seq;
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let v = 1; v < row.length; v++) if (row[v] > row[best]) best = v;
  return best;
}
