/**
 * RMSNorm forward and backward (LlamaRMSNorm). One workgroup per row reduces mean(x²) in workgroup memory;
 * the weight gradient is a column sum over rows, one thread per column.
 * Reference: `rmsnorm_ref.ts`.
 * @module
 */
import { type Dispatch, f32, type Gpu, grid, type Tensor, WGSL_FLAT_INDEX } from "../gpu/runtime.ts";

const WG = 128;

const FORWARD = /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> rstd: array<f32>;
struct P { rows: u32, dim: u32, eps: f32 }
@group(0) @binding(4) var<uniform> p: P;
var<workgroup> partial: array<f32, ${WG}>;
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let row = flat_group(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.dim;
  var ss = 0.0;
  for (var i = li; i < p.dim; i += ${WG}u) { let v = x[base + i]; ss += v * v; }
  partial[li] = ss;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { partial[li] += partial[li + s]; }
    workgroupBarrier();
  }
  let r = 1.0 / sqrt(partial[0] / f32(p.dim) + p.eps);
  if (li == 0u) { rstd[row] = r; }
  for (var i = li; i < p.dim; i += ${WG}u) { y[base + i] = x[base + i] * r * w[i]; }
}`;

const BACKWARD_X = /* wgsl */ `
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
struct P { rows: u32, dim: u32, accumulate: u32 }
@group(0) @binding(5) var<uniform> p: P;
var<workgroup> partial: array<f32, ${WG}>;
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let row = flat_group(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.dim;
  let r = rstd[row];
  var dot = 0.0;
  for (var i = li; i < p.dim; i += ${WG}u) { dot += dy[base + i] * w[i] * x[base + i] * r; }
  partial[li] = dot;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { partial[li] += partial[li + s]; }
    workgroupBarrier();
  }
  let mean = partial[0] / f32(p.dim);
  for (var i = li; i < p.dim; i += ${WG}u) {
    let g = r * (dy[base + i] * w[i] - x[base + i] * r * mean);
    if (p.accumulate != 0u) { dx[base + i] += g; } else { dx[base + i] = g; }
  }
}`;

const BACKWARD_W = /* wgsl */ `
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> rstd: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;
struct P { rows: u32, dim: u32 }
@group(0) @binding(4) var<uniform> p: P;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let col = g.x;
  if (col >= p.dim) { return; }
  var acc = 0.0;
  for (var r = 0u; r < p.rows; r++) { acc += dy[r * p.dim + col] * x[r * p.dim + col] * rstd[r]; }
  dw[col] += acc;
}`;

/** Arguments of {@link rmsnormForward}. */
export interface RmsnormForwardArgs {
  x: Tensor;
  weight: Tensor;
  /** Output [rows, dim]; may not alias `x`. */
  y: Tensor;
  /** Saved 1/rms per row [rows], for the backward pass. */
  rstd: Tensor;
  rows: number;
  dim: number;
  eps: number;
}

/**
 * `y = x * rstd * weight` row by row.
 * @example
 * ```ts
 * gpu.run([rmsnormForward(gpu, { x, weight, y, rstd, rows: 3, dim: 64, eps: 1e-5 })]);
 * ```
 */
export function rmsnormForward(gpu: Gpu, a: RmsnormForwardArgs): Dispatch {
  return gpu.dispatch(
    FORWARD,
    [a.x, a.weight, a.y, a.rstd],
    grid(a.rows, 1),
    [a.rows, a.dim, f32(a.eps)],
    "rmsnorm.fwd",
  );
}

/** Arguments of {@link rmsnormBackward}. */
export interface RmsnormBackwardArgs {
  dy: Tensor;
  x: Tensor;
  weight: Tensor;
  rstd: Tensor;
  /** Input gradient [rows, dim]: overwritten, or added to when `accumulate` (a residual stream). */
  dx: Tensor;
  /** Weight gradient [dim]: always added to (parameter gradients accumulate across micro-batches). */
  dweight: Tensor;
  rows: number;
  dim: number;
  accumulate?: boolean;
}

/**
 * Gradients of RMSNorm with respect to its input and weight.
 * @example
 * ```ts
 * gpu.run(rmsnormBackward(gpu, { dy, x, weight, rstd, dx, dweight, rows: 3, dim: 64 }));
 * ```
 */
export function rmsnormBackward(gpu: Gpu, a: RmsnormBackwardArgs): Dispatch[] {
  return [
    gpu.dispatch(
      BACKWARD_X,
      [a.dy, a.x, a.weight, a.rstd, a.dx],
      grid(a.rows, 1),
      [a.rows, a.dim, a.accumulate ? 1 : 0],
      "rmsnorm.bwd.x",
    ),
    gpu.dispatch(
      BACKWARD_W,
      [a.dy, a.x, a.rstd, a.dweight],
      [Math.ceil(a.dim / 64), 1, 1],
      [a.rows, a.dim],
      "rmsnorm.bwd.w",
    ),
  ];
}
