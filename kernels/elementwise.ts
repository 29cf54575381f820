/**
 * Elementwise kernels: residual adds, scaling, fills, offset copies (rows into a KV cache), column-block
 * copies between matrices of different widths, row gathers, Qwen2's q/k/v bias and its gradient, and the
 * f32 → f16 cast for frozen weights. One thread per element (per pair
 * for the cast), launched with `grid()` so any count a binding can hold fits one dispatch.
 * Reference: `elementwise_ref.ts`.
 * @module
 */
import {
  type Dispatch,
  type DType,
  f32,
  type Gpu,
  grid,
  type Tensor,
  WGSL_FLAT_INDEX,
} from "../gpu/runtime.ts";
import { FLAT_WG, flatGroups, flatKernel } from "./flat.ts";
import { bindingOverlap, checkCount, checkDisjoint, checkTensor } from "./tensor_checks.ts";

const N_UNIFORM = /* wgsl */ `struct P { n: u32, accumulate: u32 }`;

// Three add variants because WebGPU forbids binding a buffer range twice when one binding is writable:
// when `out` is also an operand it is bound once, read and written.
const ADD = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${N_UNIFORM}
@group(0) @binding(3) var<uniform> p: P;`,
  "p.n",
  /* wgsl */ `let v = a[i] + b[i];
  if (p.accumulate != 0u) { out[i] += v; } else { out[i] = v; }`,
);

const ADD_INTO_OPERAND = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> other: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${N_UNIFORM}
@group(0) @binding(2) var<uniform> p: P;`,
  "p.n",
  /* wgsl */ `let o = out[i];
  let v = o + other[i];
  if (p.accumulate != 0u) { out[i] = o + v; } else { out[i] = v; }`,
);

const ADD_SELF = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
${N_UNIFORM}
@group(0) @binding(1) var<uniform> p: P;`,
  "p.n",
  /* wgsl */ `let o = out[i];
  if (p.accumulate != 0u) { out[i] = o + (o + o); } else { out[i] = o + o; }`,
);

/** Arguments of {@link add}. */
export interface AddArgs {
  a: Tensor;
  b: Tensor;
  /** f32 [n]; may be `a` or `b` itself (same start), but may not partly overlap either. */
  out: Tensor;
  n: number;
  /** Add `a + b` to `out` instead of overwriting it. */
  accumulate?: boolean;
}

/**
 * `out = a + b` (or `out += a + b` with `accumulate`) over `n` f32 elements.
 *
 * @example
 * ```ts
 * gpu.run([add(gpu, { a: residual, b: attnOut, out: residual, n: rows * dim })]); // residual += attnOut
 * ```
 */
export function add(gpu: Gpu, args: AddArgs): Dispatch {
  const { a, b, out, n } = args;
  checkCount("add", "n", n);
  checkTensor("add", "a", a, "f32", n, "n");
  checkTensor("add", "b", b, "f32", n, "n");
  checkTensor("add", "out", out, "f32", n, "n");
  const withA = bindingOverlap(a, out), withB = bindingOverlap(b, out);
  if (withA === "partial" || withB === "partial") {
    const operand = withA === "partial" ? "a" : "b";
    throw new RangeError(`add: "out" partly overlaps "${operand}"; pass the same tensor or a disjoint one`);
  }
  const uniform = [n, args.accumulate ? 1 : 0];
  if (withA === "same" && withB === "same") {
    return gpu.dispatch(ADD_SELF, [out], flatGroups(n), uniform, "add.self");
  }
  if (withA === "same") {
    return gpu.dispatch(ADD_INTO_OPERAND, [b, out], flatGroups(n), uniform, "add.inplace");
  }
  if (withB === "same") {
    return gpu.dispatch(ADD_INTO_OPERAND, [a, out], flatGroups(n), uniform, "add.inplace");
  }
  return gpu.dispatch(ADD, [a, b, out], flatGroups(n), uniform, "add");
}

const SCALE = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
struct P { n: u32, alpha: f32 }
@group(0) @binding(2) var<uniform> p: P;`,
  "p.n",
  "out[i] = p.alpha * x[i];",
);

const SCALE_IN_PLACE = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
struct P { n: u32, alpha: f32 }
@group(0) @binding(1) var<uniform> p: P;`,
  "p.n",
  "out[i] = p.alpha * out[i];",
);

/** Arguments of {@link scale}. */
export interface ScaleArgs {
  x: Tensor;
  /** f32 [n]; may be `x` itself. */
  out: Tensor;
  n: number;
  alpha: number;
}

/**
 * `out = alpha · x` over `n` f32 elements.
 *
 * @example
 * ```ts
 * gpu.run([scale(gpu, { x: grad, out: grad, n: grad.length, alpha: 0.5 })]);
 * ```
 */
export function scale(gpu: Gpu, args: ScaleArgs): Dispatch {
  const { x, out, n } = args;
  checkCount("scale", "n", n);
  checkTensor("scale", "x", x, "f32", n, "n");
  checkTensor("scale", "out", out, "f32", n, "n");
  const overlap = bindingOverlap(x, out);
  if (overlap === "partial") {
    throw new RangeError(`scale: "out" partly overlaps "x"; pass x itself or a disjoint tensor`);
  }
  const uniform = [n, f32(args.alpha)];
  return overlap === "same"
    ? gpu.dispatch(SCALE_IN_PLACE, [out], flatGroups(n), uniform, "scale.inplace")
    : gpu.dispatch(SCALE, [x, out], flatGroups(n), uniform, "scale");
}

// Fills and copies move raw 32-bit words, so one kernel serves f32, u32 and i32 tensors.
const FILL = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> x: array<u32>;
struct P { n: u32, bits: u32 }
@group(0) @binding(1) var<uniform> p: P;`,
  "p.n",
  "x[i] = p.bits;",
);

/** Arguments of {@link fill}. */
export interface FillArgs {
  /** f32, u32 or i32 tensor; its first `n` elements are set. */
  x: Tensor;
  n: number;
  /** The value, in `x`'s dtype (an integer in range for u32 and i32). */
  value: number;
}

/**
 * Sets the first `n` elements of `x` to `value`.
 *
 * @example
 * ```ts
 * gpu.run([fill(gpu, { x: grads, n: grads.length, value: 0 })]);
 * ```
 */
export function fill(gpu: Gpu, args: FillArgs): Dispatch {
  const { x, n, value } = args;
  checkCount("fill", "n", n);
  checkTensor("fill", "x", x, ["f32", "u32", "i32"], n, "n");
  return gpu.dispatch(FILL, [x], flatGroups(n), [n, wordBits(x.dtype, value)], "fill");
}

/** The 32-bit pattern of `value` stored as `dtype`. */
function wordBits(dtype: DType, value: number): number {
  const word = new DataView(new ArrayBuffer(4));
  if (dtype === "f32") word.setFloat32(0, value, true);
  else if (dtype === "u32") {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new RangeError(`fill: "value" ${value} is not a u32 for a u32 tensor`);
    }
    word.setUint32(0, value, true);
  } else {
    if (!Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 31) {
      throw new RangeError(`fill: "value" ${value} is not an i32 for an i32 tensor`);
    }
    word.setInt32(0, value, true);
  }
  return word.getUint32(0, true);
}

const COPY = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
struct P { n: u32, src_offset: u32, dst_offset: u32 }
@group(0) @binding(2) var<uniform> p: P;`,
  "p.n",
  "dst[p.dst_offset + i] = src[p.src_offset + i];",
);

/** Arguments of {@link copy}. */
export interface CopyArgs {
  /** f32, u32 or i32. */
  src: Tensor;
  /** Same dtype as `src`; must not overlap it. */
  dst: Tensor;
  n: number;
  /** First element read from `src` (default 0); any element, unlike the 256-byte aligned `slice()`. */
  srcOffset?: number;
  /** First element written in `dst` (default 0), e.g. `position · kvDim` in a KV cache. */
  dstOffset?: number;
}

/**
 * `dst[dstOffset + i] = src[srcOffset + i]` for `i < n`.
 *
 * @example
 * ```ts
 * // Append 3 new rows of keys at position 17 of a cache laid out [maxPos, kvDim].
 * gpu.run([copy(gpu, { src: k, dst: cacheK, n: 3 * kvDim, dstOffset: 17 * kvDim })]);
 * ```
 */
export function copy(gpu: Gpu, args: CopyArgs): Dispatch {
  const { src, dst, n } = args;
  const srcOffset = args.srcOffset ?? 0, dstOffset = args.dstOffset ?? 0;
  checkCount("copy", "n", n);
  checkCount("copy", "srcOffset", srcOffset);
  checkCount("copy", "dstOffset", dstOffset);
  checkTensor("copy", "src", src, ["f32", "u32", "i32"], srcOffset + n, "srcOffset + n");
  checkTensor("copy", "dst", dst, src.dtype, dstOffset + n, "dstOffset + n");
  checkDisjoint("copy", "src", src, "dst", dst);
  return gpu.dispatch(COPY, [src, dst], flatGroups(n), [n, srcOffset, dstOffset], "copy");
}

const ADD_BIAS = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> bias: array<f32>;
struct P { n: u32, cols: u32 }
@group(0) @binding(2) var<uniform> p: P;`,
  "p.n",
  "x[i] += bias[i % p.cols];",
);

/** Arguments of {@link addBias}. */
export interface AddBiasArgs {
  /** f32 [rows, cols], updated in place. */
  x: Tensor;
  /** f32 [cols]. */
  bias: Tensor;
  rows: number;
  cols: number;
}

/**
 * Adds `bias` to every row of `x` in place (a linear layer's bias, as Qwen2's q/k/v projections have).
 *
 * @example
 * ```ts
 * gpu.run([addBias(gpu, { x: q, bias: qBias, rows: tokens, cols: heads * headDim })]);
 * ```
 */
export function addBias(gpu: Gpu, args: AddBiasArgs): Dispatch {
  const { x, bias, rows, cols } = args;
  checkCount("addBias", "rows", rows);
  checkCount("addBias", "cols", cols, 1);
  checkTensor("addBias", "x", x, "f32", rows * cols, "rows·cols");
  checkTensor("addBias", "bias", bias, "f32", cols, "cols");
  checkDisjoint("addBias", "x", x, "bias", bias);
  return gpu.dispatch(ADD_BIAS, [x, bias], flatGroups(rows * cols), [rows * cols, cols], "bias.add");
}

// Column sums: a workgroup owns BIAS_COLS adjacent columns (coalesced row reads) and splits the rows among
// BIAS_LANES lanes, then adds the lanes' partial sums in a fixed order, so results are deterministic.
const BIAS_COLS = 32;
const BIAS_LANES = FLAT_WG / BIAS_COLS;

const BIAS_BACKWARD = /* wgsl */ `
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> dbias: array<f32>;
struct P { rows: u32, cols: u32 }
@group(0) @binding(2) var<uniform> p: P;
var<workgroup> partial: array<f32, ${FLAT_WG}>;
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${BIAS_COLS}, ${BIAS_LANES})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u) {
  let col = flat_group(wid, nwg) * ${BIAS_COLS}u + lid.x;
  var acc = 0.0;
  if (col < p.cols) {
    for (var r = lid.y; r < p.rows; r += ${BIAS_LANES}u) { acc += dy[r * p.cols + col]; }
  }
  partial[lid.y * ${BIAS_COLS}u + lid.x] = acc;
  workgroupBarrier();
  if (lid.y == 0u && col < p.cols) {
    var sum = 0.0;
    for (var lane = 0u; lane < ${BIAS_LANES}u; lane++) { sum += partial[lane * ${BIAS_COLS}u + lid.x]; }
    dbias[col] += sum;
  }
}`;

/** Arguments of {@link biasBackward}. */
export interface BiasBackwardArgs {
  /** f32 [rows, cols]: the gradient of the biased output. */
  dy: Tensor;
  /** f32 [cols]: always added to (a parameter gradient). */
  dbias: Tensor;
  rows: number;
  cols: number;
}

/**
 * `dbias += Σ_rows dy`, the gradient of {@link addBias} with respect to the bias.
 *
 * @example
 * ```ts
 * gpu.run([biasBackward(gpu, { dy: dq, dbias: qBiasGrad, rows: tokens, cols: heads * headDim })]);
 * ```
 */
export function biasBackward(gpu: Gpu, args: BiasBackwardArgs): Dispatch {
  const { dy, dbias, rows, cols } = args;
  checkCount("biasBackward", "rows", rows);
  checkCount("biasBackward", "cols", cols, 1);
  checkTensor("biasBackward", "dy", dy, "f32", rows * cols, "rows·cols");
  checkTensor("biasBackward", "dbias", dbias, "f32", cols, "cols");
  checkDisjoint("biasBackward", "dy", dy, "dbias", dbias);
  return gpu.dispatch(BIAS_BACKWARD, [dy, dbias], grid(cols, BIAS_COLS), [rows, cols], "bias.bwd");
}

// Pairs of f16 are written as one u32 so no two threads share a 4-byte word (WGSL has no 2-byte stores
// without shader-f16, and some backends emulate them with read-modify-write). Values beyond f16's range are
// clamped to ±65504 because WGSL leaves pack2x16float's result indeterminate there.
const CAST_F32_F16 = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
struct P { n: u32, pairs: u32 }
@group(0) @binding(2) var<uniform> p: P;
const F16_MAX = 65504.0;`,
  "p.pairs",
  /* wgsl */ `let lo = clamp(src[2u * i], -F16_MAX, F16_MAX);
  if (2u * i + 1u < p.n) {
    dst[i] = pack2x16float(vec2f(lo, clamp(src[2u * i + 1u], -F16_MAX, F16_MAX)));
  } else {
    // The last element of an odd count: keep the neighbouring half, which may belong to the caller.
    dst[i] = (dst[i] & 0xffff0000u) | (pack2x16float(vec2f(lo, 0.0)) & 0xffffu);
  }`,
);

/** Arguments of {@link castF32ToF16}. */
export interface CastArgs {
  /** f32 [n]. */
  src: Tensor;
  /** f16 [n]; elements from `n` on are left as they were. */
  dst: Tensor;
  n: number;
}

/**
 * Rounds `n` f32 values to f16 (to nearest even on lavapipe, as tested; WGSL lets an implementation pick
 * either neighbour), clamping beyond ±65504. Uses only core WGSL (`pack2x16float`), so it runs with or
 * without `shader-f16`; kernels that read the result as `f16` need `gpu.hasF16`.
 *
 * @example
 * ```ts
 * const w16 = gpu.tensor(w.length, "f16");
 * gpu.run([castF32ToF16(gpu, { src: w, dst: w16, n: w.length })]);
 * ```
 */
export function castF32ToF16(gpu: Gpu, args: CastArgs): Dispatch {
  const { src, dst, n } = args;
  checkCount("castF32ToF16", "n", n);
  checkTensor("castF32ToF16", "src", src, "f32", n, "n");
  checkTensor("castF32ToF16", "dst", dst, "f16", n, "n");
  checkDisjoint("castF32ToF16", "src", src, "dst", dst);
  const pairs = Math.ceil(n / 2);
  return gpu.dispatch(CAST_F32_F16, [src, dst], flatGroups(pairs), [n, pairs], "cast.f32.f16");
}

const GATHER_ROWS = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> index: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
struct P { rows: u32, width: u32, src_rows: u32, src_row0: u32, index_offset: u32, keep_outside: u32 }
@group(0) @binding(3) var<uniform> p: P;`,
  "p.rows * p.width",
  /* wgsl */ `
  let row = i / p.width;
  let source = index[p.index_offset + row] - p.src_row0;
  if (source < p.src_rows) {
    dst[i] = src[source * p.width + i % p.width];
  } else if (p.keep_outside == 0u) {
    dst[i] = 0.0;
  }`,
);

/** Arguments of {@link gatherRows}. */
export interface GatherRowsArgs {
  /** [srcRows, width]: rows `srcRow0 .. srcRow0 + srcRows − 1` of the row space `index` refers to. */
  src: Tensor;
  /** u32: which source row each output row copies, read from element `indexOffset` on. */
  index: Tensor;
  /** [rows, width]. */
  dst: Tensor;
  rows: number;
  width: number;
  srcRows: number;
  /** The row of the index space `src` starts at (default 0). */
  srcRow0?: number;
  /** First element of `index` read (default 0), for a chunk of a longer index. */
  indexOffset?: number;
  /**
   * Rows whose index falls outside `src`: zero-filled (default), or left as they are (`"keep"`), so
   * several calls over the blocks of a row space fill one output.
   */
  outside?: "zero" | "keep";
}

/**
 * dst[i] = src[index[i]] row by row: compacts the rows a later, expensive step needs (e.g. the positions
 * whose next-token log-probs are scored, before the vocabulary projection).
 *
 * @example
 * ```ts
 * gpu.run([gatherRows(gpu, { src: hidden, index, dst: picked, rows: 3, width: 64, srcRows: 48 })]);
 * // hidden rows held in two blocks of 24: each call copies the rows its block holds
 * gpu.run([0, 24].map((srcRow0, k) =>
 *   gatherRows(gpu, { src: blocks[k], index, dst: picked, rows: 3, width: 64, srcRows: 24, srcRow0, outside: "keep" })
 * ));
 * ```
 */
export function gatherRows(gpu: Gpu, args: GatherRowsArgs): Dispatch {
  const srcRow0 = args.srcRow0 ?? 0, indexOffset = args.indexOffset ?? 0;
  checkCount("gatherRows", "rows", args.rows, 1);
  checkCount("gatherRows", "width", args.width, 1);
  checkCount("gatherRows", "srcRows", args.srcRows, 1);
  checkCount("gatherRows", "srcRow0", srcRow0);
  checkCount("gatherRows", "indexOffset", indexOffset);
  checkTensor("gatherRows", "src", args.src, "f32", args.srcRows * args.width, "srcRows·width");
  checkTensor("gatherRows", "index", args.index, "u32", indexOffset + args.rows, "indexOffset + rows");
  checkTensor("gatherRows", "dst", args.dst, "f32", args.rows * args.width, "rows·width");
  return gpu.dispatch(
    GATHER_ROWS,
    [args.src, args.index, args.dst],
    flatGroups(args.rows * args.width),
    [args.rows, args.width, args.srcRows, srcRow0, indexOffset, args.outside === "keep" ? 1 : 0],
    "gather.rows",
  );
}

const COPY_COLUMNS = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
struct P { rows: u32, cols: u32, src_stride: u32, src_column: u32, dst_stride: u32, dst_column: u32 }
@group(0) @binding(2) var<uniform> p: P;`,
  "p.rows * p.cols",
  /* wgsl */ `
  let r = i / p.cols;
  let c = i - r * p.cols;
  dst[r * p.dst_stride + p.dst_column + c] = src[r * p.src_stride + p.src_column + c];`,
);

/** Arguments of {@link copyColumns}. */
export interface CopyColumnsArgs {
  /** f32, row-major with `srcStride` elements per row. */
  src: Tensor;
  /** f32, row-major with `dstStride` elements per row; must not overlap `src`. */
  dst: Tensor;
  rows: number;
  /** Columns copied from each row. */
  cols: number;
  srcStride: number;
  /** First column read from each row of `src` (default 0). */
  srcColumn?: number;
  dstStride: number;
  /** First column written in each row of `dst` (default 0). */
  dstColumn?: number;
}

/**
 * Copies a block of columns between row-major matrices of different widths:
 * `dst[r, dstColumn + c] = src[r, srcColumn + c]`. A linear layer whose weight is split into row blocks
 * computes each block's output columns on their own and places them with this.
 *
 * @example
 * ```ts
 * // y[:, 512:768] = part[:, 0:256] for 64 rows
 * gpu.run([copyColumns(gpu, { src: part, dst: y, rows: 64, cols: 256, srcStride: 256, dstStride: 2048, dstColumn: 512 })]);
 * ```
 */
export function copyColumns(gpu: Gpu, args: CopyColumnsArgs): Dispatch {
  const K = "copyColumns";
  const srcColumn = args.srcColumn ?? 0, dstColumn = args.dstColumn ?? 0;
  checkCount(K, "rows", args.rows, 1);
  checkCount(K, "cols", args.cols, 1);
  for (const [field, v] of [["srcColumn", srcColumn], ["dstColumn", dstColumn]] as const) {
    checkCount(K, field, v);
  }
  if (srcColumn + args.cols > args.srcStride || dstColumn + args.cols > args.dstStride) {
    throw new RangeError(
      `${K}: columns [${srcColumn}, +${args.cols}) of rows of ${args.srcStride} → [${dstColumn}, +${args.cols}) ` +
        `of rows of ${args.dstStride} run past a row`,
    );
  }
  const need = (stride: number, col: number) => (args.rows - 1) * stride + col + args.cols;
  checkTensor(
    K,
    "src",
    args.src,
    "f32",
    need(args.srcStride, srcColumn),
    "(rows − 1)·srcStride + srcColumn + cols",
  );
  checkTensor(
    K,
    "dst",
    args.dst,
    "f32",
    need(args.dstStride, dstColumn),
    "(rows − 1)·dstStride + dstColumn + cols",
  );
  checkDisjoint(K, "src", args.src, "dst", args.dst);
  return gpu.dispatch(
    COPY_COLUMNS,
    [args.src, args.dst],
    flatGroups(args.rows * args.cols),
    [args.rows, args.cols, args.srcStride, srcColumn, args.dstStride, dstColumn],
    "copy.columns",
  );
}
