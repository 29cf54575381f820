/**
 * What benchmark scripts measure with: wall-clock timing, means and medians, readable sizes
 * and counts, and the matmul tuning file.
 *
 * @module
 */
import { loadMatmulTuning } from "../kernels/matmul.ts";
import { formatBytes } from "../io/bytes.ts";

export { formatBytes };

/**
 * Milliseconds `fn` takes, wall clock, awaited.
 * @example
 * ```ts
 * const ms = await wallMs(() => runner.step(mbs, 1e-5, 1));
 * ```
 */
export async function wallMs(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/**
 * Arithmetic mean (throws for an empty list: a benchmark that measured nothing must not print a figure).
 * @example
 * ```ts
 * mean([2, 4]); // 3
 * ```
 */
export function mean(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError("mean of no measurements");
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/**
 * Median (the middle of the sorted values; the mean of the two middle ones for an even count).
 * @example
 * ```ts
 * median([5, 1, 3]); // 3
 * ```
 */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError("median of no measurements");
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * A count with a metric suffix for printing.
 * @example
 * ```ts
 * formatCount(1_100_048_384); // "1.10 B"
 * ```
 */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/**
 * Loads matmul tuning results (from `bench:matmul --autotune --tuning FILE`) when the file exists; returns
 * a line to print.
 * @example
 * ```ts
 * if (values.tuning) console.log(await loadTuningIfPresent(values.tuning));
 * ```
 */
export async function loadTuningIfPresent(path: string): Promise<string> {
  try {
    return `tuning: ${await loadMatmulTuning(path)} results from ${path}`;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return `tuning: ${path} does not exist; default kernels`;
    throw e;
  }
}
