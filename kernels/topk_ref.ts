/**
 * CPU reference for `topk.ts`: sort each row by value (larger first, then lower id), drop NaN, keep k (padding
 * with `TOPK_NONE` when fewer remain), subtract the row's log-sum-exp (float64). The split-vocabulary passes
 * are the same selection over one block's columns (ids offset by its first column, raw values) and over the
 * blocks' candidates (ids as stored).
 * @module
 */

/** `TOPK_NONE` of `topk.ts`: the id written where a row has fewer than k values that are not NaN. */
const NONE = 0xffffffff;

/** The k best of (value, id) pairs, best first: larger value, then lower id; NaN never; NONE pads. */
function best(
  values: readonly number[],
  ids: readonly number[],
  k: number,
): { ids: number[]; values: number[] } {
  const order = values.map((_, i) => i).filter((i) => !Number.isNaN(values[i]) && ids[i] !== NONE)
    .sort((a, b) => (values[a] === values[b] ? ids[a] - ids[b] : values[b] - values[a]));
  const picked = order.slice(0, k);
  const pad = k - picked.length;
  return {
    ids: [...picked.map((i) => ids[i]), ...Array(pad).fill(NONE)],
    values: [...picked.map((i) => values[i]), ...Array(pad).fill(NaN)],
  };
}

/** Row r of a row-major `[rows, width]` array, as numbers. */
function rowOf(a: ArrayLike<number>, r: number, width: number): number[] {
  return Array.from({ length: width }, (_, i) => a[r * width + i]);
}

/**
 * Each row's log-sum-exp (float64; NaN when the row holds a NaN).
 * @example
 * ```ts
 * logSumExpRef(new Float32Array([0, 0]), 1, 2)[0]; // ln 2
 * ```
 */
export function logSumExpRef(logits: ArrayLike<number>, rows: number, vocab: number): Float64Array {
  return Float64Array.from({ length: rows }, (_, r) => {
    const row = rowOf(logits, r, vocab);
    const max = Math.max(...row);
    return max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
  });
}

/**
 * Each row's k best ids and their log-probabilities, best first; `ids` and `logp` are `[rows · k]`
 * (`logp` NaN where the id is `TOPK_NONE`).
 * @example
 * ```ts
 * topLogprobsRef(new Float32Array([0, 2, 2, 1]), 1, 4, 2).ids; // [1, 2]: the tie goes lowest index first
 * ```
 */
export function topLogprobsRef(
  logits: ArrayLike<number>,
  rows: number,
  vocab: number,
  k: number,
): { ids: Uint32Array; logp: Float64Array } {
  const lse = logSumExpRef(logits, rows, vocab);
  const columns = Array.from({ length: vocab }, (_, i) => i);
  const ids = new Uint32Array(rows * k), logp = new Float64Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const top = best(rowOf(logits, r, vocab), columns, k);
    ids.set(top.ids, r * k);
    logp.set(top.values.map((v) => v - lse[r]), r * k);
  }
  return { ids, logp };
}

/**
 * What `topLogprobsBlock` writes for one vocabulary block: per row its min(k, cols) best raw logits and their
 * vocabulary ids (`firstColumn` + column), best first, `[rows · min(k, cols)]` each.
 * @example
 * ```ts
 * topLogprobsBlockRef(new Float32Array([3, 5]), 1, 2, 74, 5).ids; // [75, 74]
 * ```
 */
export function topLogprobsBlockRef(
  logits: ArrayLike<number>,
  rows: number,
  cols: number,
  firstColumn: number,
  k: number,
): { ids: Uint32Array; values: Float32Array } {
  const kept = Math.min(k, cols);
  const columns = Array.from({ length: cols }, (_, i) => firstColumn + i);
  const ids = new Uint32Array(rows * kept), values = new Float32Array(rows * kept);
  for (let r = 0; r < rows; r++) {
    const top = best(rowOf(logits, r, cols), columns, kept);
    ids.set(top.ids, r * kept);
    values.set(top.values, r * kept);
  }
  return { ids, values };
}

/**
 * What `topLogprobsMerge` writes: the k best of each row's `width` candidates (value, id) with value − lse,
 * `[rows · k]` each.
 * @example
 * ```ts
 * topLogprobsMergeRef([1, 4, 4], [80, 9, 3], 1, 3, [5], 2).ids; // [3, 9]
 * ```
 */
export function topLogprobsMergeRef(
  values: ArrayLike<number>,
  ids: ArrayLike<number>,
  rows: number,
  width: number,
  lse: ArrayLike<number>,
  k: number,
): { ids: Uint32Array; logp: Float64Array } {
  const outIds = new Uint32Array(rows * k), logp = new Float64Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const top = best(rowOf(values, r, width), rowOf(ids, r, width), k);
    outIds.set(top.ids, r * k);
    logp.set(top.values.map((v) => v - lse[r]), r * k);
  }
  return { ids: outIds, logp };
}
