/**
 * CPU reference for `topk.ts`: sort each row by value (larger first, then lower index), keep k, subtract the
 * row's log-sum-exp (float64).
 * @module
 */

/**
 * Each row's k best ids and their log-probabilities, best first; `ids` and `logp` are `[rows · k]`.
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
  const ids = new Uint32Array(rows * k), logp = new Float64Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const row = Array.from({ length: vocab }, (_, i) => logits[r * vocab + i]);
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
    const order = row.map((_, i) => i).sort((a, b) => row[b] - row[a] || a - b);
    for (let j = 0; j < k; j++) {
      ids[r * k + j] = order[j];
      logp[r * k + j] = row[order[j]] - lse;
    }
  }
  return { ids, logp };
}
