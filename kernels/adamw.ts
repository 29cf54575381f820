/**
 * AdamW over one flat chunk of parameters, exactly as `torch.optim.AdamW` (single-tensor path) updates them,
 * with optional global-norm gradient clipping as `torch.nn.utils.clip_grad_norm_` applies it:
 *
 * ```text
 * g ← g · min(1, maxGradNorm / (sqrt(gradNormSq) + 1e-6))      (when clipping)
 * p ← p · (1 − lr·wd)
 * m ← lerp(m, g, 1 − β1)                                      (= β1·m + (1 − β1)·g)
 * v ← β2·v + (1 − β2)·g²
 * p ← p − lr/(1 − β1ᵗ) · m / (sqrt(v)/sqrt(1 − β2ᵗ) + eps)
 * ```
 *
 * The step's values (learning rate, betas, eps, bias corrections) live in a small f32 storage tensor the
 * trainer rewrites with {@link adamwHyper} each step, so the recorded dispatch is replayed unchanged.
 * Gradients are read, not modified. Reference: `adamw_ref.ts`.
 * @module
 */
import { type Dispatch, f32, type Gpu, grid, type Tensor, WGSL_FLAT_INDEX } from "../gpu/runtime.ts";
import { checkCount, checkDisjoint, checkTensor } from "./tensor_checks.ts";

/**
 * Slots of the f32 `hyper` tensor for step `t ≥ 1`. Torch forms the scalars `1 − β`, `lr / (1 − β1ᵗ)` and
 * `sqrt(1 − β2ᵗ)` in float64 before they meet the float32 tensors; so does {@link adamwHyper}, because
 * `1 − β2` formed in float32 from β2 = 0.999 is off by 1.3e-5 relative, which shows in `v`.
 * The bias corrections `1 − β1ᵗ`, `1 − β2ᵗ` themselves are kept for logging.
 * @example
 * ```ts
 * const lr = adamwHyper(step, schedule(step), 0.9, 0.999, 1e-8)[ADAMW_HYPER.lr];
 * ```
 */
export const ADAMW_HYPER = {
  lr: 0,
  beta1: 1,
  beta2: 2,
  eps: 3,
  biasCorrection1: 4,
  biasCorrection2: 5,
  oneMinusBeta1: 6,
  oneMinusBeta2: 7,
  stepSize: 8,
  biasCorrection2Sqrt: 9,
} as const;

/**
 * Number of f32 elements of the `hyper` tensor.
 * @example
 * ```ts
 * const hyper = gpu.tensor(ADAMW_HYPER_LENGTH, "f32", "adamw.hyper");
 * ```
 */
export const ADAMW_HYPER_LENGTH = 10;

/**
 * The `hyper` contents for optimizer step `step` (1 for the first update, as torch counts).
 * @example
 * ```ts
 * gpu.write(hyper, adamwHyper(step, schedule(step), 0.9, 0.999, 1e-8));
 * ```
 */
export function adamwHyper(
  step: number,
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
): Float32Array {
  if (!Number.isInteger(step) || step < 1) {
    throw new RangeError(`adamwHyper: step must be an integer ≥ 1, got ${step}`);
  }
  if (!Number.isFinite(lr) || lr < 0) {
    throw new RangeError(`adamwHyper: lr must be finite and ≥ 0, got ${lr}`);
  }
  for (const [name, b] of [["beta1", beta1], ["beta2", beta2]] as const) {
    if (!(b >= 0 && b < 1)) throw new RangeError(`adamwHyper: ${name} must be in [0, 1), got ${b}`);
  }
  if (!(eps > 0 && Number.isFinite(eps))) {
    throw new RangeError(`adamwHyper: eps must be finite and > 0, got ${eps}`);
  }
  const out = new Float32Array(ADAMW_HYPER_LENGTH);
  out[ADAMW_HYPER.lr] = lr;
  out[ADAMW_HYPER.beta1] = beta1;
  out[ADAMW_HYPER.beta2] = beta2;
  out[ADAMW_HYPER.eps] = eps;
  out[ADAMW_HYPER.biasCorrection1] = 1 - beta1 ** step;
  out[ADAMW_HYPER.biasCorrection2] = 1 - beta2 ** step;
  out[ADAMW_HYPER.oneMinusBeta1] = 1 - beta1;
  out[ADAMW_HYPER.oneMinusBeta2] = 1 - beta2;
  out[ADAMW_HYPER.stepSize] = lr / (1 - beta1 ** step);
  out[ADAMW_HYPER.biasCorrection2Sqrt] = Math.sqrt(1 - beta2 ** step);
  return out;
}

const WG = 256;

function shader(clip: boolean): string {
  let b = 0;
  return /* wgsl */ `
@group(0) @binding(${b++}) var<storage, read_write> param: array<f32>;
@group(0) @binding(${b++}) var<storage, read> grad: array<f32>;
@group(0) @binding(${b++}) var<storage, read_write> m: array<f32>;
@group(0) @binding(${b++}) var<storage, read_write> v: array<f32>;
@group(0) @binding(${b++}) var<storage, read> hyper: array<f32>;
${clip ? `@group(0) @binding(${b++}) var<storage, read> grad_norm_sq: array<f32>;` : ""}
struct P { n: u32, weight_decay: f32, max_grad_norm: f32 }
@group(0) @binding(${b++}) var<uniform> p: P;
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let i = flat_group(wid, nwg) * ${WG}u + li;
  if (i >= p.n) { return; }
  let lr = hyper[${ADAMW_HYPER.lr}];
  let beta2 = hyper[${ADAMW_HYPER.beta2}];
  let eps = hyper[${ADAMW_HYPER.eps}];
  let one_minus_beta1 = hyper[${ADAMW_HYPER.oneMinusBeta1}];
  let one_minus_beta2 = hyper[${ADAMW_HYPER.oneMinusBeta2}];
  let step_size = hyper[${ADAMW_HYPER.stepSize}];
  let bc2_sqrt = hyper[${ADAMW_HYPER.biasCorrection2Sqrt}];
  var g = grad[i];
  ${clip ? "g *= min(1.0, p.max_grad_norm / (sqrt(grad_norm_sq[0]) + 1e-6));" : ""}
  let decayed = param[i] * (1.0 - lr * p.weight_decay);
  let m_old = m[i];
  // torch's lerp_ form for weights below 0.5, so rounding follows torch.
  let m_new = m_old + one_minus_beta1 * (g - m_old);
  let v_new = v[i] * beta2 + one_minus_beta2 * g * g;
  m[i] = m_new;
  v[i] = v_new;
  let denom = sqrt(v_new) / bc2_sqrt + eps;
  param[i] = decayed - step_size * (m_new / denom);
}`;
}

/** Arguments of {@link adamw}. */
export interface AdamwArgs {
  /** Parameters, f32, updated in place. */
  param: Tensor;
  /** Gradients, f32; only read. */
  grad: Tensor;
  /** First moment, f32, zero before the first step; updated in place. */
  m: Tensor;
  /** Second moment, f32, zero before the first step; updated in place. */
  v: Tensor;
  /** Number of elements to update (a prefix of each tensor). */
  n: number;
  /** f32 `[ADAMW_HYPER_LENGTH]`, written with {@link adamwHyper} every step. */
  hyper: Tensor;
  /** Decoupled weight decay of this chunk (0 for none). */
  weightDecay: number;
  /** f32 `[1]`: the global sum of squared gradients (see `gradNormSquared`); clipping needs both. */
  gradNormSq?: Tensor;
  /** Clip gradients to this global L2 norm (`max_grad_norm`); clipping needs `gradNormSq` too. */
  maxGradNorm?: number;
}

/**
 * One AdamW update of a flat chunk, optionally clipping gradients to a global norm first.
 * @example
 * ```ts
 * gpu.write(hyper, adamwHyper(1, 1e-4, 0.9, 0.999, 1e-8));
 * gpu.run([...gradNormSquared(gpu, { grads, out: normSq }),
 *   ...chunks.map((c) => adamw(gpu, { ...c, hyper, weightDecay: 0.01, gradNormSq: normSq, maxGradNorm: 1 }))]);
 * ```
 */
export function adamw(gpu: Gpu, a: AdamwArgs): Dispatch {
  checkArgs(a);
  const clip = a.gradNormSq !== undefined;
  return gpu.dispatch(
    shader(clip),
    [a.param, a.grad, a.m, a.v, a.hyper, ...(clip ? [a.gradNormSq as Tensor] : [])],
    grid(a.n, WG),
    [a.n, f32(a.weightDecay), f32(a.maxGradNorm ?? 0)],
    clip ? "adamw.clip" : "adamw",
  );
}

function checkArgs(a: AdamwArgs): void {
  const kernel = "adamw";
  checkCount(kernel, "n", a.n, 1);
  if (!Number.isFinite(a.weightDecay) || a.weightDecay < 0) {
    throw new RangeError(`${kernel}: "weightDecay" must be finite and >= 0, got ${a.weightDecay}`);
  }
  if ((a.gradNormSq === undefined) !== (a.maxGradNorm === undefined)) {
    throw new TypeError(`${kernel}: "gradNormSq" and "maxGradNorm" go together (clipping needs both)`);
  }
  if (a.maxGradNorm !== undefined && !(a.maxGradNorm > 0 && Number.isFinite(a.maxGradNorm))) {
    throw new RangeError(`${kernel}: "maxGradNorm" must be finite and > 0, got ${a.maxGradNorm}`);
  }
  const tensors: [string, Tensor | undefined, number, string][] = [
    ["param", a.param, a.n, "n"],
    ["grad", a.grad, a.n, "n"],
    ["m", a.m, a.n, "n"],
    ["v", a.v, a.n, "n"],
    ["hyper", a.hyper, ADAMW_HYPER_LENGTH, "ADAMW_HYPER_LENGTH"],
    ["gradNormSq", a.gradNormSq, 1, "1"],
  ];
  const given = tensors.filter((e): e is [string, Tensor, number, string] => e[1] !== undefined);
  for (const [field, t, count, how] of given) checkTensor(kernel, field, t, "f32", count, how);
  const written: [string, Tensor][] = [["param", a.param], ["m", a.m], ["v", a.v]];
  for (const [wField, w] of written) {
    for (const [field, t] of given) if (field !== wField) checkDisjoint(kernel, wField, w, field, t);
  }
}
