/**
 * CPU reference for the matmul family, written for clarity: `C = alpha · op(A) · op(B) (+ C)` with
 * row-major storage, each dot product summed in f64. (f16 conversions for building f16
 * weights live in gpu/half.ts.)
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
