/**
 * CPU reference for `objective.ts`, in float64 and written for reading: the loss, TRL's metrics (SFT's
 * `mean_token_accuracy` from the forward's argmax matches) and
 * d(loss)/d(logp) per token for SFT, DPO (sigmoid, IPO, hinge) and ORPO, over one micro-batch.
 * @module
 */
import { type DpoLossType, MAX_MEAN_LOGP, OBJECTIVE_METRICS, type ObjectiveKind } from "./objective.ts";

/** Inputs of {@link objectiveRef}; rows are `s·T + t`, preference batches are chosen then rejected. */
export interface ObjectiveRefArgs {
  /** Per-token log-probs `[sequences·T]`. */
  logp: ArrayLike<number>;
  /** 1 where the row's predicted token is a target `[sequences·T]`. */
  mask: ArrayLike<number>;
  /** ORPO: mask of the NLL term (its chosen half is used). */
  nllMask?: ArrayLike<number>;
  /** DPO: the reference model's summed completion log-probs per sequence. */
  refLogp?: ArrayLike<number>;
  /** SFT: 1 where the row's target is its logits' argmax `[sequences·T]` (for `mean_token_accuracy`). */
  greedy?: ArrayLike<number>;
  /** Sequences in the micro-batch (preference kinds: chosen `0..P−1`, rejected `P..2P−1`). */
  sequences: number;
  /** Rows per sequence. */
  T: number;
  /** DPO variant; default `sigmoid`. */
  lossType?: DpoLossType;
  /** DPO: β. */
  beta?: number;
  /** ORPO: λ. */
  lambda?: number;
  /** SFT: target tokens in the whole batch. */
  normTokens?: number;
  /** DPO, ORPO: real pairs in the whole batch. */
  normPairs?: number;
  /** ORPO: NLL-mask tokens of the chosen sequences in the whole batch. */
  normNllTokens?: number;
}

/** What {@link objectiveRef} returns: the loss, the metrics by name, and d(loss)/d(logp) per row. */
export interface ObjectiveRefResult {
  /** This micro-batch's share of the batch loss. */
  loss: number;
  /** Metrics by the names of `OBJECTIVE_METRICS[kind]`, each this micro-batch's share. */
  metrics: Record<string, number>;
  /** d(loss)/d(logp) per row. */
  dlogp: Float64Array;
}

/**
 * The objective of one micro-batch, every sum divided by the global normalisers given.
 * @example
 * ```ts
 * const r = objectiveRef("sft", { logp: [-1, -2], mask: [1, 1], sequences: 1, T: 2, normTokens: 2 });
 * // r.loss = 1.5, r.dlogp = [-0.5, -0.5]
 * ```
 */
export function objectiveRef(kind: ObjectiveKind, a: ObjectiveRefArgs): ObjectiveRefResult {
  if (kind === "sft") return sftRef(a);
  if (kind === "dpo") return dpoRef(a);
  if (kind === "orpo") return orpoRef(a);
  throw new RangeError(`objective kind "${kind}" is unknown; expected one of sft, dpo, orpo`);
}

/**
 * `log(1 + eˣ)` without overflow.
 * @example
 * ```ts
 * softplus(1000); // 1000
 * ```
 */
export function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/**
 * `1 / (1 + e⁻ˣ)`.
 * @example
 * ```ts
 * sigmoid(0); // 0.5
 * ```
 */
export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/**
 * ORPO's log odds of a mean log-prob `a < 0`: `a − log(1 − eᵃ)`, with log(1 − eᵃ) in its stable forms.
 * @example
 * ```ts
 * logOdds(Math.log(0.5)); // 0: even odds
 * ```
 */
export function logOdds(a: number): number {
  const log1mExp = a < -Math.LN2 ? Math.log1p(-Math.exp(a)) : Math.log(-Math.expm1(a));
  return a - log1mExp;
}

function need(kind: string, name: string, v: number | undefined): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw new RangeError(`objectiveRef(${kind}): ${name} must be a finite number > 0, got ${v}`);
  }
  return v;
}

/** Σ mask·logp and Σ mask over sequence `s`. */
function sequenceSum(logp: ArrayLike<number>, mask: ArrayLike<number>, s: number, T: number) {
  let sum = 0, count = 0;
  for (let t = 0; t < T; t++) {
    sum += mask[s * T + t] * logp[s * T + t];
    count += mask[s * T + t];
  }
  return { sum, count };
}

function addToRows(dlogp: Float64Array, mask: ArrayLike<number>, s: number, T: number, coef: number): void {
  for (let t = 0; t < T; t++) dlogp[s * T + t] += coef * mask[s * T + t];
}

function named(kind: ObjectiveKind, values: number[]): Record<string, number> {
  return Object.fromEntries(OBJECTIVE_METRICS[kind].map((name, i) => [name, values[i]]));
}

function sftRef(a: ObjectiveRefArgs): ObjectiveRefResult {
  const norm = need("sft", "normTokens", a.normTokens);
  const dlogp = new Float64Array(a.sequences * a.T);
  let loss = 0, correct = 0;
  for (let s = 0; s < a.sequences; s++) {
    loss -= sequenceSum(a.logp, a.mask, s, a.T).sum / norm;
    addToRows(dlogp, a.mask, s, a.T, -1 / norm);
    // TRL's mean_token_accuracy: predictions (argmax) equal to the labels, over the labelled tokens.
    for (let t = 0; t < a.T; t++) correct += a.mask[s * a.T + t] * (a.greedy?.[s * a.T + t] ? 1 : 0);
  }
  return { loss, metrics: named("sft", [loss, correct / norm]), dlogp };
}

/** Chosen sequence `p`, rejected `p + P`; `null` for a padding pair (an empty mask on either side). */
function pairSums(a: ObjectiveRefArgs, p: number) {
  const P = a.sequences / 2;
  const chosen = sequenceSum(a.logp, a.mask, p, a.T);
  const rejected = sequenceSum(a.logp, a.mask, p + P, a.T);
  return chosen.count === 0 || rejected.count === 0 ? null : { chosen, rejected, c: p, r: p + P };
}

function dpoRef(a: ObjectiveRefArgs): ObjectiveRefResult {
  const beta = need("dpo", "beta", a.beta);
  const normPairs = need("dpo", "normPairs", a.normPairs);
  if (!a.refLogp) throw new TypeError("objectiveRef(dpo): refLogp is required");
  const lossType = a.lossType ?? "sigmoid";
  const dlogp = new Float64Array(a.sequences * a.T);
  const m = new Array(OBJECTIVE_METRICS.dpo.length).fill(0);
  for (let p = 0; p < a.sequences / 2; p++) {
    const pair = pairSums(a, p);
    if (!pair) continue;
    // IPO compares length-averaged log-probs; sigmoid and hinge compare sums.
    const wc = lossType === "ipo" ? 1 / pair.chosen.count : 1;
    const wr = lossType === "ipo" ? 1 / pair.rejected.count : 1;
    const policyChosen = pair.chosen.sum * wc, policyRejected = pair.rejected.sum * wr;
    const chosenRatio = policyChosen - a.refLogp[pair.c] * wc;
    const rejectedRatio = policyRejected - a.refLogp[pair.r] * wr;
    const delta = chosenRatio - rejectedRatio;
    const { loss, dDelta } = dpoPairLoss(lossType, beta, delta);
    addToRows(dlogp, a.mask, pair.c, a.T, (dDelta * wc) / normPairs);
    addToRows(dlogp, a.mask, pair.r, a.T, (-dDelta * wr) / normPairs);
    const rc = beta * chosenRatio, rr = beta * rejectedRatio;
    [loss, rc, rr, rc - rr, rc > rr ? 1 : 0, policyChosen, policyRejected].forEach((v, i) => {
      m[i] += v / normPairs;
    });
  }
  return { loss: m[0], metrics: named("dpo", m), dlogp };
}

/** One pair's DPO loss and its derivative with respect to Δ. */
function dpoPairLoss(lossType: DpoLossType, beta: number, delta: number): { loss: number; dDelta: number } {
  switch (lossType) {
    case "sigmoid":
      return { loss: softplus(-beta * delta), dDelta: -beta * sigmoid(-beta * delta) };
    case "hinge": {
      const h = 1 - beta * delta;
      return { loss: Math.max(h, 0), dDelta: h > 0 ? -beta : 0 };
    }
    case "ipo": {
      const e = delta - 1 / (2 * beta);
      return { loss: e * e, dDelta: 2 * e };
    }
    default:
      throw new RangeError(
        `objectiveRef(dpo): lossType "${lossType}" is unknown; expected sigmoid, ipo, hinge`,
      );
  }
}

function orpoRef(a: ObjectiveRefArgs): ObjectiveRefResult {
  const lambda = need("orpo", "lambda", a.lambda);
  const normPairs = need("orpo", "normPairs", a.normPairs);
  const normNll = need("orpo", "normNllTokens", a.normNllTokens);
  if (!a.nllMask) throw new TypeError("objectiveRef(orpo): nllMask is required");
  const dlogp = new Float64Array(a.sequences * a.T);
  const m = new Array(OBJECTIVE_METRICS.orpo.length).fill(0);
  for (let p = 0; p < a.sequences / 2; p++) {
    const pair = pairSums(a, p);
    if (!pair) continue;
    const ac = Math.min(pair.chosen.sum / pair.chosen.count, MAX_MEAN_LOGP);
    const ar = Math.min(pair.rejected.sum / pair.rejected.count, MAX_MEAN_LOGP);
    const z = logOdds(ac) - logOdds(ar);
    const ratio = -softplus(-z); // log σ(z)
    const nll = -sequenceSum(a.logp, a.nllMask, pair.c, a.T).sum / normNll;
    // d/dz of −λ·logσ(z)/normPairs, then d(log odds)/da = 1/(1 − eᵃ), then da/dlogp = mask/len.
    const dz = (-lambda * sigmoid(-z)) / normPairs;
    addToRows(dlogp, a.mask, pair.c, a.T, (dz / -Math.expm1(ac)) / pair.chosen.count);
    addToRows(dlogp, a.mask, pair.r, a.T, (-dz / -Math.expm1(ar)) / pair.rejected.count);
    addToRows(dlogp, a.nllMask, pair.c, a.T, -1 / normNll);
    const values = [
      nll - (lambda * ratio) / normPairs,
      nll,
      ratio / normPairs,
      z / normPairs,
      (lambda * ac) / normPairs,
      (lambda * ar) / normPairs,
      (lambda * (ac - ar)) / normPairs,
      (ac > ar ? 1 : 0) / normPairs,
      ac / normPairs,
      ar / normPairs,
    ];
    values.forEach((v, i) => m[i] += v);
  }
  return { loss: m[0], metrics: named("orpo", m), dlogp };
}
