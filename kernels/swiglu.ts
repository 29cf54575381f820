/**
 * SwiGLU, the gate of Llama's MLP: `out = silu(gate) · up` with `silu(x) = x · σ(x)`, and its backward.
 * One thread per element. σ is computed from `exp(-|x|)` only, so nothing overflows for large |x| and
 * σ(x) and 1 − σ(x) both keep full relative precision.
 * Reference: `swiglu_ref.ts`.
 * @module
 */
import type { Dispatch, Gpu, Tensor } from "../gpu/runtime.ts";
import { flatGroups, flatKernel } from "./flat.ts";
import { checkCount, checkDisjoint, checkTensor } from "./tensor_checks.ts";

// (σ(x), 1 − σ(x)). With e = exp(-|x|) ∈ (0, 1]: for x ≥ 0, σ = 1/(1+e) and 1 − σ = e/(1+e); for x < 0 the
// two swap. Neither branch subtracts nearly equal numbers.
const WGSL_SIGMOID = /* wgsl */ `
fn sigmoid_pair(x: f32) -> vec2f {
  let e = exp(-abs(x));
  let big = 1.0 / (1.0 + e);
  let small = e * big;
  return select(vec2f(small, big), vec2f(big, small), x >= 0.0);
}`;

const FORWARD = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> gate: array<f32>;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
struct P { n: u32 }
@group(0) @binding(3) var<uniform> p: P;
${WGSL_SIGMOID}`,
  "p.n",
  /* wgsl */ `let g = gate[i];
  out[i] = g * sigmoid_pair(g).x * up[i];`,
);

// d silu(g)/dg = σ(g) · (1 + g · (1 − σ(g))).
const BACKWARD = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> dgate: array<f32>;
@group(0) @binding(4) var<storage, read_write> dup: array<f32>;
struct P { n: u32 }
@group(0) @binding(5) var<uniform> p: P;
${WGSL_SIGMOID}`,
  "p.n",
  /* wgsl */ `let g = gate[i];
  let s = sigmoid_pair(g);
  let d = dout[i];
  dup[i] = d * g * s.x;
  dgate[i] = d * up[i] * s.x * (1.0 + g * s.y);`,
);

/** Arguments of {@link swigluForward}. */
export interface SwigluForwardArgs {
  /** f32 [n]: the gate projection's output. */
  gate: Tensor;
  /** f32 [n]: the up projection's output. */
  up: Tensor;
  /** f32 [n]; must not overlap `gate` or `up`. */
  out: Tensor;
  n: number;
}

/**
 * `out = silu(gate) · up` over `n` elements.
 *
 * @example
 * ```ts
 * gpu.run([swigluForward(gpu, { gate, up, out: act, n: tokens * intermediate })]);
 * ```
 */
export function swigluForward(gpu: Gpu, args: SwigluForwardArgs): Dispatch {
  const { gate, up, out, n } = args;
  const K = "swigluForward";
  checkCount(K, "n", n);
  for (const [field, t] of [["gate", gate], ["up", up], ["out", out]] as const) {
    checkTensor(K, field, t, "f32", n, "n");
  }
  checkDisjoint(K, "out", out, "gate", gate);
  checkDisjoint(K, "out", out, "up", up);
  return gpu.dispatch(FORWARD, [gate, up, out], flatGroups(n), [n], "swiglu.fwd");
}

/** Arguments of {@link swigluBackward}. */
export interface SwigluBackwardArgs {
  /** f32 [n]: the gradient of `out`. */
  dout: Tensor;
  gate: Tensor;
  up: Tensor;
  /** f32 [n], overwritten. */
  dgate: Tensor;
  /** f32 [n], overwritten. */
  dup: Tensor;
  n: number;
}

/**
 * Gradients of {@link swigluForward}: `dup = dout · silu(gate)`, `dgate = dout · up · silu'(gate)`.
 *
 * @example
 * ```ts
 * gpu.run([swigluBackward(gpu, { dout: dact, gate, up, dgate, dup, n: tokens * intermediate })]);
 * ```
 */
export function swigluBackward(gpu: Gpu, args: SwigluBackwardArgs): Dispatch {
  const { dout, gate, up, dgate, dup, n } = args;
  const K = "swigluBackward";
  checkCount(K, "n", n);
  const all = [["dout", dout], ["gate", gate], ["up", up], ["dgate", dgate], ["dup", dup]] as const;
  for (const [field, t] of all) checkTensor(K, field, t, "f32", n, "n");
  for (const [field, t] of all.filter(([f]) => f !== "dgate")) checkDisjoint(K, "dgate", dgate, field, t);
  for (const [field, t] of all.filter(([f]) => f !== "dup")) checkDisjoint(K, "dup", dup, field, t);
  return gpu.dispatch(BACKWARD, [dout, gate, up, dgate, dup], flatGroups(n), [n], "swiglu.bwd");
}
