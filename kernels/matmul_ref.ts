/**
 * CPU reference for the matmul family, written for clarity: `C = alpha · op(A) · op(B) (+ C)` with
 * row-major storage, each dot product summed in f64. Also converts between f32 and f16 bits, so tests can
 * build f16 weights and compute the reference from exactly the values the kernel sees.
 * @module
 */

/**
 * Arguments of {@link matmulRef}: the same names and layouts as the GPU kernel's.
 * @example
 * ```ts
 * const args: MatmulRefArgs = { a: x, b: w, M: 3, N: 4, K: 5, transB: true };
 * ```
 */
export interface MatmulRefArgs {
  /** [M, K], or [K, M] when `transA`. */
  a: ArrayLike<number>;
  /** [K, N], or [N, K] when `transB`. */
  b: ArrayLike<number>;
  /** [M, N]: the old C, read only when `accumulate`. */
  c?: ArrayLike<number>;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  accumulate?: boolean;
  alpha?: number;
}

/**
 * Returns a new `Float32Array` C [M, N].
 * @example
 * ```ts
 * matmulRef({ a: [1, 2], b: [3, 4], M: 1, N: 1, K: 2 }); // Float32Array [11]
 * ```
 */
export function matmulRef(args: MatmulRefArgs): Float32Array {
  const { a, b, M, N, K } = args;
  const alpha = args.alpha ?? 1;
  if (args.accumulate && (!args.c || args.c.length < M * N)) {
    throw new RangeError(`matmulRef: accumulate needs c with at least M*N = ${M * N} elements`);
  }
  const aAt = args.transA ? (m: number, k: number) => a[k * M + m] : (m: number, k: number) => a[m * K + k];
  const bAt = args.transB ? (k: number, n: number) => b[n * K + k] : (k: number, n: number) => b[k * N + n];
  const out = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let sum = 0;
      for (let k = 0; k < K; k++) sum += aAt(m, k) * bAt(k, n);
      out[m * N + n] = alpha * sum + (args.accumulate ? args.c![m * N + n] : 0);
    }
  }
  return out;
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/**
 * IEEE half-precision bits of `x`, rounded to nearest even (overflow gives ±Infinity).
 * @example
 * ```ts
 * f32ToF16Bits(1.5); // 0x3e00
 * ```
 */
export function f32ToF16Bits(x: number): number {
  F32[0] = x;
  const bits = U32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    // Subnormal half: shift the implicit-one mantissa right and round to nearest even.
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rest > half || (rest === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to Infinity).
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/**
 * The number that half-precision `bits` encode.
 * @example
 * ```ts
 * f16BitsToF32(0x3e00); // 1.5
 * ```
 */
export function f16BitsToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * Converts a whole array to f16 bits (for `gpu.upload`, which uploads a `Uint16Array` as f16).
 * @example
 * ```ts
 * toF16(new Float32Array([1, -2])); // Uint16Array [0x3c00, 0xc000]
 * ```
 */
export function toF16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32ToF16Bits(values[i]);
  return out;
}

/**
 * Converts f16 bits back to f32 values.
 * @example
 * ```ts
 * fromF16(new Uint16Array([0x3c00])); // Float32Array [1]
 * ```
 */
export function fromF16(bits: ArrayLike<number>): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16BitsToF32(bits[i]);
  return out;
}
