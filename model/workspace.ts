/**
 * The model's workspace layout, defined once for the model (`llama.ts`) and the memory planner
 * (`memory_plan.ts`): every activation buffer is `[rows, width]`, and this file says each one's width, how
 * many rows one activation block holds, how a pass of B sequences splits into groups of whole sequences
 * (one block each), and how many rows of logits are computed at once.
 *
 * A pass whose activations fit one binding is one group: the usual case. When `[B·T, width]` would exceed a
 * binding, the pass runs group after group, each over whole sequences (attention never looks across
 * sequences, and every other layer works row by row), with gradients accumulating across groups.
 *
 * @module
 */
import type { LlamaDims } from "../io/llama_architecture.ts";

/**
 * Width of each activation one decoder layer keeps for the backward pass (per row).
 * @example
 * ```ts
 * layerWidths(dims).gate; // intermediate_size
 * ```
 */
export function layerWidths(d: LlamaDims) {
  const D = d.hiddenSize, I = d.intermediateSize, Q = d.numHeads * d.headDim, KV = d.numKvHeads * d.headDim;
  return {
    /** Residual stream entering the layer. */
    x: D,
    /** input_layernorm(x) and its 1/rms per row. */
    xn1: D,
    rstd1: 1,
    /** q and k after RoPE, v as projected. */
    q: Q,
    k: KV,
    v: KV,
    /** Attention output (input of o_proj) and its log-sum-exp per row and head. */
    attn: Q,
    lse: d.numHeads,
    /** x + o_proj(attn). */
    mid: D,
    /** post_attention_layernorm(mid) and its 1/rms per row. */
    xn2: D,
    rstd2: 1,
    /** gate_proj(xn2), up_proj(xn2) and silu(gate)·up (input of down_proj). */
    gate: I,
    up: I,
    act: I,
  };
}

/** Names of a decoder layer's saved activations. */
export type LayerActName = keyof ReturnType<typeof layerWidths>;

/**
 * Width of each gradient buffer the backward pass reuses layer after layer (per row).
 * @example
 * ```ts
 * gradWidths(dims).dres; // hidden_size
 * ```
 */
export function gradWidths(d: LlamaDims) {
  const D = d.hiddenSize, I = d.intermediateSize, Q = d.numHeads * d.headDim, KV = d.numKvHeads * d.headDim;
  return {
    /** d(residual stream) between blocks. */
    dres: D,
    /** d(a norm's output). */
    dxn: D,
    /** d(attention output), then d(q), d(k), d(v) after attention's backward. */
    dattn: Q,
    dq: Q,
    dk: KV,
    dv: KV,
    /** d(silu(gate)·up), then d(gate), d(up). */
    dact: I,
    dgate: I,
    dup: I,
  };
}

/**
 * Width of the buffers after the last layer (per row): the last residual (input of the final norm), its
 * 1/rms per row, and the final norm's output.
 * @example
 * ```ts
 * finalWidths(dims).normed; // hidden_size
 * ```
 */
export function finalWidths(d: LlamaDims) {
  return { resid: d.hiddenSize, rstd: 1, normed: d.hiddenSize };
}

/** Per-row u32 inputs each group of a split pass copies out of the step's buffers. */
export const GROUP_INPUTS = ["ids", "positions", "keyMask"] as const;

/**
 * The widest row of any activation or gradient buffer, in f32 elements (`maxRank`: the largest LoRA rank,
 * whose x·Aᵀ rows are activations too).
 * @example
 * ```ts
 * widestRow(dims, 16); // intermediate_size for a Llama
 * ```
 */
export function widestRow(d: LlamaDims, maxRank = 0): number {
  const widths = [
    ...Object.values(layerWidths(d)),
    ...Object.values(gradWidths(d)),
    ...Object.values(finalWidths(d)),
  ];
  return Math.max(maxRank, ...widths);
}

/**
 * Rows of one activation block: all `maxTokens` when they fit one binding, else as many as do.
 * @example
 * ```ts
 * activationBlockRows(dims, 4096, 128 * 2 ** 20); // 4096 unless a row of the widest buffer × 4096 > 128 MiB
 * ```
 */
export function activationBlockRows(
  d: LlamaDims,
  maxTokens: number,
  maxBinding: number,
  maxRank = 0,
): number {
  return Math.min(maxTokens, Math.floor(maxBinding / (4 * widestRow(d, maxRank))));
}

/**
 * One group of a pass: sequences `[s0, s0 + B)`, rows `[r0, r0 + N)` of the whole pass, held in activation
 * block `index`.
 * @example
 * ```ts
 * const g: RowGroup = { index: 1, s0: 4, B: 4, r0: 2048, N: 2048 };
 * ```
 */
export interface RowGroup {
  /** Which activation block (and group slot) holds the group. */
  index: number;
  /** First sequence of the group. */
  s0: number;
  /** Sequences in the group. */
  B: number;
  /** First row of the group in the whole pass (s0 · T). */
  r0: number;
  /** Rows of the group (B · T). */
  N: number;
}

/**
 * The groups of whole sequences a pass of B sequences of T tokens runs in, each at most `blockRows` rows.
 * Throws when one sequence alone needs more rows than a block holds.
 * @example
 * ```ts
 * rowGroups(4, 512, 1024).length; // 2: two sequences per group
 * ```
 */
export function rowGroups(B: number, T: number, blockRows: number): RowGroup[] {
  const perGroup = Math.floor(blockRows / T);
  if (perGroup < 1) {
    throw new RangeError(
      `one sequence of ${T} tokens needs more activation rows than one binding holds (${blockRows}); ` +
        `use shorter sequences or an adapter with larger bindings`,
    );
  }
  const groups: RowGroup[] = [];
  for (let s0 = 0; s0 < B; s0 += perGroup) {
    const n = Math.min(perGroup, B - s0);
    groups.push({ index: groups.length, s0, B: n, r0: s0 * T, N: n * T });
  }
  return groups;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** f32 statistics kept per row and vocabulary block when the projection is split (`LOGPROBS_STAT_FIELDS`). */
const STAT_FLOATS = 4;

/**
 * Rows of logits computed at once: as many as fit one binding (at most 256 MiB) and the workspace, in
 * multiples of 64 (or, when 64 rows do not fit, of the rows whose offset in a `[*, hidden]` f32 buffer stays
 * 256-byte aligned). `vocabColumns`
 * is the widest vocabulary block; with `vocabBlocks` > 1 each row also keeps per-block statistics.
 * @example
 * ```ts
 * chooseLogitsRows(2 ** 31, 128256, 4096, 8192); // 512: 523 rows of 128256 floats fit 256 MiB
 * ```
 */
export function chooseLogitsRows(
  maxBinding: number,
  vocabColumns: number,
  hidden: number,
  maxTokens: number,
  asked?: number,
  vocabBlocks = 1,
): number {
  const step = 64 / gcd(hidden, 64);
  const rowBytes = 4 * Math.max(vocabColumns, vocabBlocks > 1 ? vocabBlocks * STAT_FLOATS : 0);
  const fit = Math.floor(Math.min(maxBinding, 256 * 2 ** 20) / rowBytes);
  if (fit < step) {
    throw new RangeError(
      `${step} rows of ${vocabColumns} logits exceed one binding (${maxBinding} bytes)`,
    );
  }
  // Whole 64-row tiles where they fit (the matmul's tiles), else the alignment step.
  const unit = fit >= 64 ? 64 : step;
  const want = Math.min(asked ?? fit, fit, Math.ceil(maxTokens / unit) * unit);
  return Math.max(unit, Math.floor(want / unit) * unit);
}

/**
 * The row ranges `[r0, r0 + R)` that cover `n` rows in chunks of at most `size`.
 * @example
 * ```ts
 * rowChunks(5, 2); // [{ r0: 0, R: 2 }, { r0: 2, R: 2 }, { r0: 4, R: 1 }]
 * ```
 */
export function rowChunks(n: number, size: number): { r0: number; R: number }[] {
  const out: { r0: number; R: number }[] = [];
  for (let r0 = 0; r0 < n; r0 += size) out.push({ r0, R: Math.min(size, n - r0) });
  return out;
}
