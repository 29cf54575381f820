/**
 * CPU reference for `lora_select.ts`: keep each row's own adapter columns of x·Aᵀ, scaled; zero the rest.
 * @module
 */

/**
 * `out[r, c] = colAdapter[c] === rowAdapter[r] ? xa[r, c] · colScale[c] : 0`, in f32 as the kernel computes.
 * @example
 * ```ts
 * loraSelectRef([1, 2, 3, 4], [1, 2], [1, 2], [0.5, 2], 2, 2); // [0.5, 0, 0, 8]
 * ```
 */
export function loraSelectRef(
  xa: ArrayLike<number>,
  rowAdapter: ArrayLike<number>,
  colAdapter: ArrayLike<number>,
  colScale: ArrayLike<number>,
  rows: number,
  rank: number,
): Float32Array {
  const out = new Float32Array(rows * rank);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < rank; c++) {
      out[r * rank + c] = colAdapter[c] === rowAdapter[r]
        ? Math.fround(Math.fround(xa[r * rank + c]) * Math.fround(colScale[c]))
        : 0;
    }
  }
  return out;
}
