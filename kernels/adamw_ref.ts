/**
 * CPU reference for `adamw.ts` in float64, following `torch.optim.AdamW`'s single-tensor update line by line,
 * with `torch.nn.utils.clip_grad_norm_`'s scaling in front.
 * @module
 */

/** One AdamW step's settings; `step` counts from 1. */
export interface AdamwRefConfig {
  /** Optimizer step, 1 for the first update. */
  step: number;
  /** Learning rate of this step. */
  lr: number;
  /** Decay of the first moment. */
  beta1: number;
  /** Decay of the second moment. */
  beta2: number;
  /** Added to the bias-corrected root of the second moment. */
  eps: number;
  /** Decoupled weight decay. */
  weightDecay: number;
  /** When given, gradients are scaled by min(1, maxGradNorm / (‖g‖ + 1e-6)) with ‖g‖ = sqrt(gradNormSq). */
  maxGradNorm?: number;
  /** Σ g² over all parameters (the global squared norm). */
  gradNormSq?: number;
}

/**
 * Returns the updated parameters and moments (inputs are left untouched).
 * @example
 * ```ts
 * const next = adamwRef([1], [0.5], [0], [0], { step: 1, lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
 * // next.param[0] ≈ 0.9 (the first step moves by lr·sign(g))
 * ```
 */
export function adamwRef(
  param: ArrayLike<number>,
  grad: ArrayLike<number>,
  m: ArrayLike<number>,
  v: ArrayLike<number>,
  c: AdamwRefConfig,
): { param: Float64Array; m: Float64Array; v: Float64Array } {
  const clip = c.maxGradNorm === undefined || c.gradNormSq === undefined
    ? 1
    : Math.min(1, c.maxGradNorm / (Math.sqrt(c.gradNormSq) + 1e-6));
  const stepSize = c.lr / (1 - c.beta1 ** c.step);
  const biasCorrection2Sqrt = Math.sqrt(1 - c.beta2 ** c.step);
  const out = {
    param: new Float64Array(param.length),
    m: new Float64Array(param.length),
    v: new Float64Array(param.length),
  };
  for (let i = 0; i < param.length; i++) {
    const g = grad[i] * clip;
    const decayed = param[i] * (1 - c.lr * c.weightDecay);
    out.m[i] = c.beta1 * m[i] + (1 - c.beta1) * g;
    out.v[i] = c.beta2 * v[i] + (1 - c.beta2) * g * g;
    const denom = Math.sqrt(out.v[i]) / biasCorrection2Sqrt + c.eps;
    out.param[i] = decayed - stepSize * out.m[i] / denom;
  }
  return out;
}
