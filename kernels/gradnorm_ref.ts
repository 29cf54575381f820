/**
 * CPU reference for `gradnorm.ts`: the sum of squares of every element of every chunk, in float64.
 * @module
 */

/**
 * Σ g² over all chunks.
 * @example
 * ```ts
 * gradNormSquaredRef([[3], [4, 0]]); // 25
 * ```
 */
export function gradNormSquaredRef(chunks: readonly ArrayLike<number>[]): number {
  let sum = 0;
  for (const chunk of chunks) {
    for (let i = 0; i < chunk.length; i++) sum += chunk[i] * chunk[i];
  }
  return sum;
}
