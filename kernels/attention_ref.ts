/**
 * CPU reference for causal grouped-query attention with key padding masks, written for clarity: the full
 * scores matrix of each (batch item, head), a plain softmax, and float64 arithmetic throughout.
 *
 * Same layout and masking rules as `attention.ts`: q and out `[B·Tq, heads·headDim]`, k and v
 * `[B·kvRows, kvHeads·headDim]`, keyMask `[B·kvRows]`, lse `[B·heads·Tq]`; key j is visible to query i of
 * item b iff `j < Tk`, `j ≤ qOffset + i` and `keyMask[b·kvRows + j] ≠ 0`. A row that sees no key gets a
 * zero output, lse = `EMPTY_ROW_LSE` (from `attention_codegen.ts`) and zero gradients.
 * @module
 */
import { EMPTY_ROW_LSE } from "./attention_codegen.ts";

/**
 * Sizes of one attention call (see `AttentionForwardArgs` in `attention.ts`).
 *
 * @example
 * ```ts
 * const shape: AttentionRefShape = {
 *   B: 2, Tq: 13, Tk: 13, kvRows: 13, qOffset: 0, heads: 4, kvHeads: 2, headDim: 16, scale: 0.25,
 * };
 * ```
 */
export interface AttentionRefShape {
  B: number;
  Tq: number;
  Tk: number;
  kvRows: number;
  qOffset: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  scale: number;
}

/** Where one (batch item, head) pair's data lives. */
interface HeadView {
  /** Element index of query row i's slice: `qAt(i) + d`. */
  qAt(i: number): number;
  /** Element index of key/value row j's slice. */
  kAt(j: number): number;
  /** Index into lse. */
  lseAt(i: number): number;
}

function headView(s: AttentionRefShape, b: number, h: number): HeadView {
  const g = Math.floor(h / (s.heads / s.kvHeads));
  return {
    qAt: (i) => (b * s.Tq + i) * s.heads * s.headDim + h * s.headDim,
    kAt: (j) => (b * s.kvRows + j) * s.kvHeads * s.headDim + g * s.headDim,
    lseAt: (i) => (b * s.heads + h) * s.Tq + i,
  };
}

function isVisible(s: AttentionRefShape, mask: ArrayLike<number>, b: number, i: number, j: number): boolean {
  return j < s.Tk && j <= s.qOffset + i && mask[b * s.kvRows + j] !== 0;
}

/**
 * Softmax probabilities `P[i][j]` of one (item, head) over keys `0…Tk−1` (0 for hidden keys), and each
 * row's log-sum-exp (EMPTY_ROW_LSE for a row that sees no key).
 */
function probabilities(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  mask: ArrayLike<number>,
  s: AttentionRefShape,
  b: number,
  view: HeadView,
): { P: Float64Array[]; lse: Float64Array } {
  const P: Float64Array[] = [];
  const lse = new Float64Array(s.Tq);
  for (let i = 0; i < s.Tq; i++) {
    const scores = new Float64Array(s.Tk).fill(-Infinity);
    for (let j = 0; j < s.Tk; j++) {
      if (!isVisible(s, mask, b, i, j)) continue;
      let dot = 0;
      for (let d = 0; d < s.headDim; d++) dot += q[view.qAt(i) + d] * k[view.kAt(j) + d];
      scores[j] = s.scale * dot;
    }
    const max = Math.max(...scores);
    const row = new Float64Array(s.Tk);
    if (max === -Infinity) {
      lse[i] = EMPTY_ROW_LSE;
    } else {
      let sum = 0;
      for (let j = 0; j < s.Tk; j++) sum += Math.exp(scores[j] - max);
      for (let j = 0; j < s.Tk; j++) row[j] = Math.exp(scores[j] - max) / sum;
      lse[i] = max + Math.log(sum);
    }
    P.push(row);
  }
  return { P, lse };
}

/**
 * Forward: `out` `[B·Tq, heads·headDim]` = softmax(scale · q·kᵀ, hidden keys removed) · v per head, and
 * `lse` `[B·heads·Tq]`.
 *
 * @example
 * ```ts
 * const { out, lse } = attentionForwardRef(q, k, v, keyMask, {
 *   B: 1, Tq: 3, Tk: 3, kvRows: 3, qOffset: 0, heads: 2, kvHeads: 1, headDim: 4, scale: 0.5,
 * });
 * ```
 */
export function attentionForwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  keyMask: ArrayLike<number>,
  s: AttentionRefShape,
): { out: Float64Array; lse: Float64Array } {
  const out = new Float64Array(s.B * s.Tq * s.heads * s.headDim);
  const lse = new Float64Array(s.B * s.heads * s.Tq);
  for (let b = 0; b < s.B; b++) {
    for (let h = 0; h < s.heads; h++) {
      const view = headView(s, b, h);
      const { P, lse: rowLse } = probabilities(q, k, keyMask, s, b, view);
      for (let i = 0; i < s.Tq; i++) {
        lse[view.lseAt(i)] = rowLse[i];
        for (let j = 0; j < s.Tk; j++) {
          if (P[i][j] === 0) continue;
          for (let d = 0; d < s.headDim; d++) out[view.qAt(i) + d] += P[i][j] * v[view.kAt(j) + d];
        }
      }
    }
  }
  return { out, lse };
}

/**
 * Backward: given `dout` (the loss gradient for `out`), returns dq `[B·Tq, heads·headDim]` and dk, dv
 * `[B·kvRows, kvHeads·headDim]` (summed over the query heads of each kv head's group). With
 * dP = dout·vᵀ and dS = P ∘ (dP − rowsum(P ∘ dP)): dq = scale·dS·k, dk = scale·dSᵀ·q, dv = Pᵀ·dout.
 *
 * @example
 * ```ts
 * const { dq, dk, dv } = attentionBackwardRef(q, k, v, keyMask, dout, shape);
 * ```
 */
export function attentionBackwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  keyMask: ArrayLike<number>,
  dout: ArrayLike<number>,
  s: AttentionRefShape,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const dq = new Float64Array(s.B * s.Tq * s.heads * s.headDim);
  const dk = new Float64Array(s.B * s.kvRows * s.kvHeads * s.headDim);
  const dv = new Float64Array(dk.length);
  for (let b = 0; b < s.B; b++) {
    for (let h = 0; h < s.heads; h++) {
      const view = headView(s, b, h);
      const { P } = probabilities(q, k, keyMask, s, b, view);
      for (let i = 0; i < s.Tq; i++) {
        const dP = new Float64Array(s.Tk);
        let rowDot = 0;
        for (let j = 0; j < s.Tk; j++) {
          for (let d = 0; d < s.headDim; d++) dP[j] += dout[view.qAt(i) + d] * v[view.kAt(j) + d];
          rowDot += P[i][j] * dP[j];
        }
        for (let j = 0; j < s.Tk; j++) {
          if (P[i][j] === 0) continue;
          const dS = P[i][j] * (dP[j] - rowDot);
          for (let d = 0; d < s.headDim; d++) {
            dq[view.qAt(i) + d] += s.scale * dS * k[view.kAt(j) + d];
            dk[view.kAt(j) + d] += s.scale * dS * q[view.qAt(i) + d];
            dv[view.kAt(j) + d] += P[i][j] * dout[view.qAt(i) + d];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}
