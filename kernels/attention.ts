/**
 * Causal grouped-query attention with key padding masks, forward and backward, flash-attention style:
 * the forward pass keeps a running max and sum per query row over tiles of keys (no T×T scores in memory)
 * and saves each row's log-sum-exp; the backward pass recomputes the probabilities from it
 * (flash-attention 2: a pass for D = Σ dout·out, then dq looping over keys and dk/dv looping over
 * queries, so no float atomics are needed). The WGSL comes from `attention_codegen.ts`.
 *
 * Layout: q and out are `[B·Tq, heads·headDim]`, k and v `[B·kvRows, kvHeads·headDim]` (rows of one batch
 * item contiguous, RoPE already applied), keyMask `u32 [B·kvRows]` (0 = padding), lse `[B·heads·Tq]`
 * indexed `(b·heads + h)·Tq + i`. Query head h reads kv head `floor(h / (heads / kvHeads))`.
 * Key j is visible to query i of item b iff `j < Tk`, `j ≤ qOffset + i` and `keyMask[b·kvRows + j] ≠ 0`.
 * A row that sees no key outputs zeros and stores `lse = ATTENTION_EMPTY_ROW_LSE`.
 *
 * Reference: `attention_ref.ts`.
 * @module
 */
import { type Dispatch, f32, type Gpu, grid, type Tensor } from "../gpu/runtime.ts";
import {
  type AttentionKernel,
  type AttentionTiles,
  chooseTiles,
  dkdvSource,
  dqSource,
  EMPTY_ROW_LSE,
  forwardSource,
  MAX_HEAD_DIM,
  STATS_THREADS,
  statsSource,
} from "./attention_codegen.ts";
import { checkCount, checkDisjoint, checkTensor } from "./tensor_checks.ts";

/**
 * The log-sum-exp stored for a query row that sees no key: a finite stand-in for +∞, so that
 * `exp(score − lse)` is exactly 0 and such a row (whose output is zeros) gets zero gradients.
 *
 * @example
 * ```ts
 * const sawNothing = (await gpu.read(lse)).map((x) => x === ATTENTION_EMPTY_ROW_LSE ? 1 : 0);
 * ```
 */
export const ATTENTION_EMPTY_ROW_LSE: number = EMPTY_ROW_LSE;

/**
 * Query counts up to this use the decode kernel under `variant: "auto"`: one workgroup per (batch item,
 * head, query) whose threads split the keys, instead of tiles of up to 16 query rows.
 *
 * @example
 * ```ts
 * const decoding = Tq <= ATTENTION_DECODE_MAX_QUERIES;
 * ```
 */
export const ATTENTION_DECODE_MAX_QUERIES = 4;

/**
 * Which forward kernel runs: `prefill` stages tiles of up to 16 query rows and 32 keys in workgroup memory
 * (training, prompts); `decode` gives each (batch item, head, query) its own workgroup whose threads split
 * the keys (a few queries against a long KV cache); `auto` picks `decode` for
 * `Tq ≤ ATTENTION_DECODE_MAX_QUERIES`.
 *
 * @example
 * ```ts
 * attentionForward(gpu, { ...args, variant: "decode" });
 * ```
 */
export type AttentionVariant = "auto" | "prefill" | "decode";

/**
 * Arguments of {@link attentionForward}.
 *
 * @example
 * ```ts
 * const args: AttentionForwardArgs = {
 *   q, k, v, out, lse, keyMask, B: 1, Tq: 1, Tk: 40, kvRows: 512, qOffset: 39,
 *   heads: 32, kvHeads: 8, headDim: 128, scale: 1 / Math.sqrt(128),
 * };
 * ```
 */
export interface AttentionForwardArgs {
  /** Queries `[B·Tq, heads·headDim]`. */
  q: Tensor;
  /** Keys `[B·kvRows, kvHeads·headDim]`. */
  k: Tensor;
  /** Values `[B·kvRows, kvHeads·headDim]`. */
  v: Tensor;
  /** Output `[B·Tq, heads·headDim]` (overwritten). */
  out: Tensor;
  /** Log-sum-exp of each row's scaled scores `[B·heads·Tq]`, saved for the backward pass. */
  lse: Tensor;
  /** `u32 [B·kvRows]`: 0 marks a padding key. */
  keyMask: Tensor;
  B: number;
  /** Query rows per batch item. */
  Tq: number;
  /** Keys in use per batch item. */
  Tk: number;
  /** Rows per batch item in k, v and keyMask (≥ Tk: a KV cache has room for more). */
  kvRows: number;
  /** Key index of query 0: query i sees keys j ≤ qOffset + i. 0 in training, Tk − Tq when decoding. */
  qOffset: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Multiplies q·k before the softmax, usually 1/√headDim. */
  scale: number;
  /** Forward kernel to use (default `auto`). */
  variant?: AttentionVariant;
}

/**
 * Records the attention forward pass: `out`, and `lse` for {@link attentionBackward}.
 *
 * @example
 * ```ts
 * gpu.run([attentionForward(gpu, {
 *   q, k, v, out, lse, keyMask, B: 2, Tq: 13, Tk: 13, kvRows: 13, qOffset: 0,
 *   heads: 4, kvHeads: 2, headDim: 16, scale: 1 / Math.sqrt(16),
 * })]);
 * ```
 */
export function attentionForward(gpu: Gpu, a: AttentionForwardArgs): Dispatch {
  const fn = "attentionForward";
  checkShape(fn, a);
  checkCount(fn, "Tq", a.Tq, 1);
  checkCount(fn, "Tk", a.Tk, 1);
  checkCount(fn, "kvRows", a.kvRows, 1);
  checkCount(fn, "qOffset", a.qOffset, 0);
  if (a.kvRows < a.Tk) {
    throw new RangeError(`${fn}: "kvRows" (${a.kvRows}) must be at least "Tk" (${a.Tk})`);
  }
  const qSize = `B·Tq·heads·headDim = ${a.B}·${a.Tq}·${a.heads}·${a.headDim}`;
  const kvSize = `B·kvRows·kvHeads·headDim = ${a.B}·${a.kvRows}·${a.kvHeads}·${a.headDim}`;
  checkTensor(fn, "q", a.q, "f32", a.B * a.Tq * a.heads * a.headDim, qSize);
  checkTensor(fn, "k", a.k, "f32", a.B * a.kvRows * a.kvHeads * a.headDim, kvSize);
  checkTensor(fn, "v", a.v, "f32", a.B * a.kvRows * a.kvHeads * a.headDim, kvSize);
  checkTensor(fn, "out", a.out, "f32", a.B * a.Tq * a.heads * a.headDim, qSize);
  checkTensor(fn, "lse", a.lse, "f32", a.B * a.heads * a.Tq, `B·heads·Tq = ${a.B}·${a.heads}·${a.Tq}`);
  checkTensor(fn, "keyMask", a.keyMask, "u32", a.B * a.kvRows, `B·kvRows = ${a.B}·${a.kvRows}`);
  for (const input of ["q", "k", "v", "keyMask"] as const) {
    checkDisjoint(fn, input, a[input], "out", a.out);
    checkDisjoint(fn, input, a[input], "lse", a.lse);
  }
  checkDisjoint(fn, "out", a.out, "lse", a.lse);

  const kernel = forwardKernel(a.variant ?? "auto", a.Tq, fn);
  const tiles = tilesFor(gpu, kernel, a.headDim);
  const group = a.heads / a.kvHeads;
  return gpu.dispatch(
    forwardSource(tiles),
    [a.q, a.k, a.v, a.keyMask, a.out, a.lse],
    [Math.ceil((a.Tq * group) / tiles.rows), a.B * a.kvHeads, 1],
    [a.Tq, a.Tk, a.kvRows, a.qOffset, a.heads, a.kvHeads, group, f32(a.scale)],
    `attention.${kernel}`,
  );
}

/**
 * Arguments of {@link attentionBackward}: the training shape, Tq = Tk = kvRows = T and qOffset = 0.
 *
 * @example
 * ```ts
 * const args: AttentionBackwardArgs = {
 *   q, k, v, out, lse, dout, keyMask, dq, dk, dv, B: 4, T: 1024, heads: 32, kvHeads: 4, headDim: 64,
 *   scale: 1 / Math.sqrt(64),
 * };
 * ```
 */
export interface AttentionBackwardArgs {
  /** Queries `[B·T, heads·headDim]`, as given to the forward pass. */
  q: Tensor;
  /** Keys `[B·T, kvHeads·headDim]`. */
  k: Tensor;
  /** Values `[B·T, kvHeads·headDim]`. */
  v: Tensor;
  /** The forward pass's output `[B·T, heads·headDim]`. */
  out: Tensor;
  /** The forward pass's log-sum-exp `[B·heads·T]`. */
  lse: Tensor;
  /** Gradient of the loss with respect to `out`, `[B·T, heads·headDim]`. */
  dout: Tensor;
  /** `u32 [B·T]`: 0 marks a padding key. */
  keyMask: Tensor;
  /** Gradient for q `[B·T, heads·headDim]` (overwritten). */
  dq: Tensor;
  /** Gradient for k `[B·T, kvHeads·headDim]`, summed over the query heads of each group (overwritten). */
  dk: Tensor;
  /** Gradient for v `[B·T, kvHeads·headDim]`, summed over the query heads of each group (overwritten). */
  dv: Tensor;
  /**
   * Scratch `f32 [2·B·heads·T]` for each row's (lse, D). When absent, one buffer per device is shared by
   * every backward recorded on it (passes run in submission order, so layers can take turns).
   */
  stats?: Tensor;
  B: number;
  T: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  scale: number;
}

/**
 * Records the attention backward pass: the (lse, D) pass, then dq, then dk and dv.
 *
 * @example
 * ```ts
 * gpu.run(attentionBackward(gpu, {
 *   q, k, v, out, lse, dout, keyMask, dq, dk, dv, B: 2, T: 13, heads: 4, kvHeads: 2, headDim: 16,
 *   scale: 1 / Math.sqrt(16),
 * }));
 * ```
 */
export function attentionBackward(gpu: Gpu, a: AttentionBackwardArgs): Dispatch[] {
  const fn = "attentionBackward";
  checkShape(fn, a);
  checkCount(fn, "T", a.T, 1);
  const rows = a.B * a.heads * a.T;
  const qSize = `B·T·heads·headDim = ${a.B}·${a.T}·${a.heads}·${a.headDim}`;
  const kvSize = `B·T·kvHeads·headDim = ${a.B}·${a.T}·${a.kvHeads}·${a.headDim}`;
  for (const name of ["q", "out", "dout", "dq"] as const) {
    checkTensor(fn, name, a[name], "f32", rows * a.headDim, qSize);
  }
  for (const name of ["k", "v", "dk", "dv"] as const) {
    checkTensor(fn, name, a[name], "f32", a.B * a.T * a.kvHeads * a.headDim, kvSize);
  }
  checkTensor(fn, "lse", a.lse, "f32", rows, `B·heads·T = ${a.B}·${a.heads}·${a.T}`);
  checkTensor(fn, "keyMask", a.keyMask, "u32", a.B * a.T, `B·T = ${a.B}·${a.T}`);
  const stats = a.stats ?? sharedStats(gpu, 2 * rows);
  checkTensor(fn, "stats", stats, "f32", 2 * rows, `2·B·heads·T = 2·${a.B}·${a.heads}·${a.T}`);
  const inputs = ["q", "k", "v", "out", "lse", "dout", "keyMask"] as const;
  const outputs = [["dq", a.dq], ["dk", a.dk], ["dv", a.dv], ["stats", stats]] as const;
  for (const [outName, output] of outputs) {
    for (const input of inputs) checkDisjoint(fn, input, a[input], outName, output);
  }
  outputs.forEach(([nameA, tA], i) => {
    for (const [nameB, tB] of outputs.slice(i + 1)) checkDisjoint(fn, nameA, tA, nameB, tB);
  });

  const group = a.heads / a.kvHeads;
  const dqTiles = tilesFor(gpu, "dq", a.headDim);
  const dkdvTiles = tilesFor(gpu, "dkdv", a.headDim);
  const uniforms = [a.T, a.heads, a.kvHeads, group, f32(a.scale)];
  const shared = [a.q, a.k, a.v, a.dout, stats, a.keyMask];
  return [
    gpu.dispatch(
      statsSource(a.headDim),
      [a.out, a.dout, a.lse, stats],
      grid(rows, STATS_THREADS),
      [rows, a.T, a.heads],
      "attention.bwd.stats",
    ),
    gpu.dispatch(
      dqSource(dqTiles),
      [...shared, a.dq],
      [Math.ceil((a.T * group) / dqTiles.rows), a.B * a.kvHeads, 1],
      uniforms,
      "attention.bwd.dq",
    ),
    gpu.dispatch(
      dkdvSource(dkdvTiles),
      [...shared, a.dk, a.dv],
      [Math.ceil(a.T / dkdvTiles.keys), a.B * a.kvHeads, 1],
      uniforms,
      "attention.bwd.dkdv",
    ),
  ];
}

/**
 * The tile shape `gpu` uses for `kernel` at `headDim`: the largest whose workgroup memory fits the device.
 *
 * @example
 * ```ts
 * attentionTiles(gpu, "forward", 128); // { rows: 16, keys: 16, threads: 128, ... } on a 32 KiB device
 * ```
 */
export function attentionTiles(gpu: Gpu, kernel: AttentionKernel, headDim: number): AttentionTiles {
  return tilesFor(gpu, kernel, headDim);
}

function tilesFor(gpu: Gpu, kernel: AttentionKernel, headDim: number): AttentionTiles {
  return chooseTiles(kernel, headDim, gpu.limits.maxComputeWorkgroupStorageSize);
}

function forwardKernel(variant: AttentionVariant, Tq: number, fn: string): "forward" | "decode" {
  switch (variant) {
    case "auto":
      return Tq <= ATTENTION_DECODE_MAX_QUERIES ? "decode" : "forward";
    case "prefill":
      return "forward";
    case "decode":
      return "decode";
    default:
      throw new TypeError(`${fn}: "variant" must be "auto", "prefill" or "decode", got ${String(variant)}`);
  }
}

/** Checks the sizes both passes share: batch, heads, head size and scale. */
function checkShape(
  fn: string,
  a: { B: number; heads: number; kvHeads: number; headDim: number; scale: number },
): void {
  checkCount(fn, "B", a.B, 1);
  checkCount(fn, "heads", a.heads, 1);
  checkCount(fn, "kvHeads", a.kvHeads, 1);
  checkCount(fn, "headDim", a.headDim, 1);
  if (a.heads % a.kvHeads !== 0) {
    throw new RangeError(`${fn}: "heads" (${a.heads}) must be a multiple of "kvHeads" (${a.kvHeads})`);
  }
  if (a.headDim > MAX_HEAD_DIM) {
    throw new RangeError(`${fn}: "headDim" must be at most ${MAX_HEAD_DIM}, got ${a.headDim}`);
  }
  if (!Number.isFinite(a.scale)) {
    throw new RangeError(`${fn}: "scale" must be a finite number, got ${a.scale}`);
  }
}

/** One stats scratch per device, grown when a larger backward is recorded. */
const statsScratch = new WeakMap<Gpu, Tensor>();

function sharedStats(gpu: Gpu, length: number): Tensor {
  let t = statsScratch.get(gpu);
  if (!t || t.length < length) {
    // Dispatches recorded earlier keep the smaller buffer they were bound to; it stays valid for them.
    t = gpu.tensor(length, "f32", "attention.stats");
    statsScratch.set(gpu, t);
  }
  return t;
}
