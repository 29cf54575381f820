/**
 * CPU reference for `logprobs.ts`, in float64: log-softmax of each logits row picked at the target id, and
 * the gradient of a per-row weighted log-probability with respect to the logits.
 * @module
 */
import { NO_TARGET } from "./logprobs.ts";

/**
 * Forward: `lse[r] = log Σ_j exp(logits[r, j])` and `logp[r] = logits[r, target[r]] − lse[r]`
 * (0 where the target is {@link NO_TARGET}); `greedy[r] = 1` when the target is the first maximal index of
 * the row (`torch.argmax`, as lm-eval's `is_greedy` uses it), else 0. `targets` holds just this chunk's rows.
 * @example
 * ```ts
 * const { lse, logp, greedy } = logprobsForwardRef(new Float32Array([0, 0]), new Uint32Array([1]), 1, 2);
 * // lse[0] = ln 2, logp[0] = −ln 2, greedy[0] = 0 (the tie goes to index 0)
 * ```
 */
export function logprobsForwardRef(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  rows: number,
  vocab: number,
): { lse: Float64Array; logp: Float64Array; greedy: Uint8Array } {
  const lse = new Float64Array(rows);
  const logp = new Float64Array(rows);
  const greedy = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * vocab;
    let argmax = 0;
    for (let j = 1; j < vocab; j++) if (logits[base + j] > logits[base + argmax]) argmax = j;
    const max = logits[base + argmax];
    let sum = 0;
    for (let j = 0; j < vocab; j++) sum += Math.exp(logits[base + j] - max);
    lse[r] = max + Math.log(sum);
    const t = targets[r];
    logp[r] = t === NO_TARGET ? 0 : logits[base + t] - lse[r];
    greedy[r] = t === argmax ? 1 : 0;
  }
  return { lse, logp, greedy };
}

/**
 * Backward: `dlogits[r, j] = dlogp[r] · (1[j = target[r]] − softmax(logits[r])[j])`, zero rows for
 * {@link NO_TARGET}. `targets` and `dlogp` hold just this chunk's rows.
 * @example
 * ```ts
 * const d = logprobsBackwardRef(new Float32Array([0, 0]), new Uint32Array([1]), new Float32Array([1]), 1, 2);
 * // d = [−0.5, 0.5]
 * ```
 */
export function logprobsBackwardRef(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  dlogp: ArrayLike<number>,
  rows: number,
  vocab: number,
): Float64Array {
  const { lse } = logprobsForwardRef(logits, targets, rows, vocab);
  const out = new Float64Array(rows * vocab);
  for (let r = 0; r < rows; r++) {
    const t = targets[r];
    if (t === NO_TARGET) continue;
    for (let j = 0; j < vocab; j++) {
      const prob = Math.exp(logits[r * vocab + j] - lse[r]);
      out[r * vocab + j] = dlogp[r] * ((j === t ? 1 : 0) - prob);
    }
  }
  return out;
}

/**
 * One vocabulary block's statistics (what `logprobsBlockStats` writes): per row the maximum, the sum of
 * `exp(logit − maximum)`, the target's logit when the target lies in `[firstColumn, firstColumn + cols)`
 * (else 0) and the first argmax as a vocabulary id. Merging the blocks' rows as in `logprobsMerge` gives
 * {@link logprobsForwardRef} of the whole row.
 * @example
 * ```ts
 * const s = logprobsBlockStatsRef(new Float32Array([0, 1]), new Uint32Array([3]), 1, 2, 2);
 * // s.max[0] = 1, s.argmax[0] = 3, s.target[0] = 1
 * ```
 */
export function logprobsBlockStatsRef(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  rows: number,
  cols: number,
  firstColumn: number,
): { max: Float64Array; sum: Float64Array; target: Float64Array; argmax: Uint32Array } {
  const max = new Float64Array(rows), sum = new Float64Array(rows), target = new Float64Array(rows);
  const argmax = new Uint32Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let best = 0;
    for (let j = 1; j < cols; j++) if (logits[base + j] > logits[base + best]) best = j;
    max[r] = logits[base + best];
    for (let j = 0; j < cols; j++) sum[r] += Math.exp(logits[base + j] - max[r]);
    argmax[r] = firstColumn + best;
    const t = targets[r] - firstColumn;
    target[r] = t >= 0 && t < cols ? logits[base + t] : 0;
  }
  return { max, sum, target, argmax };
}
