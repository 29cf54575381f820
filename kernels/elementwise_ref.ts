/**
 * CPU references for the elementwise kernels, computed in f32 like the kernels (each result rounded with
 * `Math.fround`).
 * @module
 */

/**
 * `a + b`, or `out + (a + b)` when `out` is given (the kernel's `accumulate`).
 *
 * @example
 * ```ts
 * addRef(new Float32Array([1, 2]), new Float32Array([3, 4])); // Float32Array [4, 6]
 * ```
 */
export function addRef(a: Float32Array, b: Float32Array, out?: Float32Array): Float32Array {
  return a.map((v, i) => {
    const sum = Math.fround(v + b[i]);
    return out ? out[i] + sum : sum;
  });
}

/**
 * `alpha · x` with `alpha` rounded to f32 as the uniform holds it.
 *
 * @example
 * ```ts
 * scaleRef(new Float32Array([1, -2]), 0.5); // Float32Array [0.5, -1]
 * ```
 */
export function scaleRef(x: Float32Array, alpha: number): Float32Array {
  const a = Math.fround(alpha);
  return x.map((v) => v * a);
}

/**
 * A copy of `dst` with `n` elements of `src` from `srcOffset` written at `dstOffset`.
 *
 * @example
 * ```ts
 * copyRef(new Float32Array([1, 2, 3]), new Float32Array(4), 2, 1, 0); // Float32Array [2, 3, 0, 0]
 * ```
 */
export function copyRef<T extends Float32Array | Uint32Array | Int32Array>(
  src: T,
  dst: T,
  n: number,
  srcOffset = 0,
  dstOffset = 0,
): T {
  const out = dst.slice() as T;
  out.set(src.subarray(srcOffset, srcOffset + n), dstOffset);
  return out;
}

/**
 * `x` [rows, cols] with `bias` [cols] added to every row.
 *
 * @example
 * ```ts
 * addBiasRef(new Float32Array([1, 2, 3, 4]), new Float32Array([10, 20]), 2, 2); // [11, 22, 13, 24]
 * ```
 */
export function addBiasRef(x: Float32Array, bias: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[r * cols + c] = x[r * cols + c] + bias[c];
  }
  return out;
}

/**
 * Column sums of `dy` [rows, cols]: the bias gradient (before it is added to the existing gradient).
 *
 * @example
 * ```ts
 * biasBackwardRef(new Float32Array([1, 2, 3, 4]), 2, 2); // Float32Array [4, 6]
 * ```
 */
export function biasBackwardRef(dy: Float32Array, rows: number, cols: number): Float32Array {
  const sums = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) sums[c] += dy[r * cols + c];
  }
  return Float32Array.from(sums);
}

/**
 * The f16 bit patterns of `x`, rounded to nearest even and clamped to ±65504 as the kernel does.
 *
 * @example
 * ```ts
 * castF32ToF16Ref(new Float32Array([1, 1e6])); // Uint16Array [0x3c00, 0x7bff]
 * ```
 */
export function castF32ToF16Ref(x: Float32Array): Uint16Array {
  const F16_MAX = 65504;
  const halves = Float16Array.from(x, (v) => Math.min(F16_MAX, Math.max(-F16_MAX, v)));
  return new Uint16Array(halves.buffer);
}

/**
 * dst row i = src row index[i] (a zero row for an index outside `src`). With `srcRow0`, `src` holds rows
 * `srcRow0..srcRow0 + srcRows − 1`; with `into`, rows whose index is outside keep `into`'s values.
 *
 * @example
 * ```ts
 * gatherRowsRef(new Float32Array([1, 2, 3]), new Uint32Array([2, 0]), 1, 3); // Float32Array [3, 1]
 * ```
 */
export function gatherRowsRef(
  src: Float32Array,
  index: Uint32Array,
  width: number,
  srcRows: number,
  srcRow0 = 0,
  into?: Float32Array,
): Float32Array {
  const out = into ? into.slice() : new Float32Array(index.length * width);
  index.forEach((from, i) => {
    const local = from - srcRow0;
    if (local >= 0 && local < srcRows) out.set(src.subarray(local * width, (local + 1) * width), i * width);
    else if (!into) out.fill(0, i * width, (i + 1) * width);
  });
  return out;
}

/**
 * A copy of `dst` with `cols` columns of each of `rows` rows of `src` (from `srcColumn`) written at
 * `dstColumn`, rows being `srcStride` and `dstStride` elements apart.
 *
 * @example
 * ```ts
 * copyColumnsRef(new Float32Array([1, 2, 3, 4]), new Float32Array(6), 2, 1, 2, 1, 3, 2); // [0, 0, 2, 0, 0, 4]
 * ```
 */
export function copyColumnsRef(
  src: Float32Array,
  dst: Float32Array,
  rows: number,
  cols: number,
  srcStride: number,
  srcColumn: number,
  dstStride: number,
  dstColumn: number,
): Float32Array {
  const out = dst.slice();
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[r * dstStride + dstColumn + c] = src[r * srcStride + srcColumn + c];
  }
  return out;
}
