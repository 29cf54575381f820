/**
 * Rotary position embedding, Hugging Face Llama's "rotate_half" form, applied in place to
 * x [rows, heads·headDim]: in every head, pair (i, i + headDim/2) is rotated by the angle of
 * `positions[row]` for frequency i. cos and sin come from tables [maxPositions, headDim/2] built on the CPU
 * (`model/rope.ts`): WGSL only promises cos/sin to 2⁻¹¹ on [−π, π], while angles reach thousands of
 * radians. Positions come from the caller, so left padding and generation with a KV cache work unchanged.
 *
 * The backward pass is the inverse rotation (the transpose of a rotation), applied in place to the
 * gradient; both passes share one shader with the sign of sin as a uniform. One thread per pair.
 * Reference: `rope_ref.ts`.
 * @module
 */
import { type Dispatch, f32, type Gpu, type Tensor } from "../gpu/runtime.ts";
import { flatGroups, flatKernel } from "./flat.ts";
import { checkCount, checkDisjoint, checkTensor } from "./tensor_checks.ts";

// Positions past the table are clamped to its last row so a bad position can never read out of bounds.
const ROTATE = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> positions: array<u32>;
@group(0) @binding(2) var<storage, read> cos_table: array<f32>;
@group(0) @binding(3) var<storage, read> sin_table: array<f32>;
struct P { pairs: u32, heads: u32, half: u32, max_pos: u32, sin_sign: f32 }
@group(0) @binding(4) var<uniform> p: P;`,
  "p.pairs",
  /* wgsl */ `let k = i % p.half;
  let row_head = i / p.half;
  let row = row_head / p.heads;
  let t = min(positions[row], p.max_pos - 1u) * p.half + k;
  let c = cos_table[t];
  let s = p.sin_sign * sin_table[t];
  let lo = row_head * 2u * p.half + k;
  let a = x[lo];
  let b = x[lo + p.half];
  x[lo] = a * c - b * s;
  x[lo + p.half] = b * c + a * s;`,
);

/** What both passes take besides the tensor they rotate. */
export interface RopeTablesArgs {
  /** u32 [rows]: the position of each row's token. */
  positions: Tensor;
  /** f32 [maxPositions, headDim/2]. */
  cos: Tensor;
  /** f32 [maxPositions, headDim/2]. */
  sin: Tensor;
  rows: number;
  heads: number;
  headDim: number;
}

/** Arguments of {@link ropeForward}. */
export interface RopeForwardArgs extends RopeTablesArgs {
  /** f32 [rows, heads·headDim] (queries or keys), rotated in place. */
  x: Tensor;
}

/** Arguments of {@link ropeBackward}. */
export interface RopeBackwardArgs extends RopeTablesArgs {
  /** f32 [rows, heads·headDim]: the gradient of the rotated tensor, turned into that of the input in place. */
  dx: Tensor;
}

/**
 * Rotates `x` in place: `x_i ← x_i·cos − x_{i+h/2}·sin`, `x_{i+h/2} ← x_{i+h/2}·cos + x_i·sin`.
 *
 * @example
 * ```ts
 * const { cos, sin } = ropeTables({ headDim: 64, theta: 500000 }, 4096);
 * const tables = { positions, cos: gpu.upload(cos), sin: gpu.upload(sin), rows: tokens, headDim: 64 };
 * gpu.run([ropeForward(gpu, { ...tables, x: q, heads: 32 }), ropeForward(gpu, { ...tables, x: k, heads: 8 })]);
 * ```
 */
export function ropeForward(gpu: Gpu, args: RopeForwardArgs): Dispatch {
  return rotate(gpu, "ropeForward", "x", args.x, args, 1);
}

/**
 * Rotates the gradient `dx` in place by the opposite angle: `d_i ← d_i·cos + d_{i+h/2}·sin`,
 * `d_{i+h/2} ← d_{i+h/2}·cos − d_i·sin`.
 *
 * @example
 * ```ts
 * gpu.run([ropeBackward(gpu, { positions, cos, sin, dx: dq, rows: tokens, heads: 32, headDim: 64 })]);
 * ```
 */
export function ropeBackward(gpu: Gpu, args: RopeBackwardArgs): Dispatch {
  return rotate(gpu, "ropeBackward", "dx", args.dx, args, -1);
}

function rotate(
  gpu: Gpu,
  kernel: string,
  field: string,
  x: Tensor,
  a: RopeTablesArgs,
  sinSign: 1 | -1,
): Dispatch {
  const { positions, cos, sin, rows, heads, headDim } = a;
  checkCount(kernel, "rows", rows);
  checkCount(kernel, "heads", heads, 1);
  checkCount(kernel, "headDim", headDim, 2);
  if (headDim % 2 !== 0) throw new RangeError(`${kernel}: "headDim" must be even, got ${headDim}`);
  const half = headDim / 2;
  checkTensor(kernel, field, x, "f32", rows * heads * headDim, "rows·heads·headDim");
  checkTensor(kernel, "positions", positions, "u32", rows, "rows");
  checkTensor(kernel, "cos", cos, "f32", half, "headDim/2");
  if (cos.length % half !== 0 || sin.length !== cos.length) {
    throw new RangeError(
      `${kernel}: "cos" and "sin" must both be [maxPositions, headDim/2 = ${half}]; got ${cos.length} and ` +
        `${sin.length} elements`,
    );
  }
  checkTensor(kernel, "sin", sin, "f32", half, "headDim/2");
  for (const [name, t] of [["positions", positions], ["cos", cos], ["sin", sin]] as const) {
    checkDisjoint(kernel, field, x, name, t);
  }
  const pairs = rows * heads * half;
  return gpu.dispatch(
    ROTATE,
    [x, positions, cos, sin],
    flatGroups(pairs),
    [pairs, heads, half, cos.length / half, f32(sinSign)],
    sinSign > 0 ? "rope.fwd" : "rope.bwd",
  );
}
