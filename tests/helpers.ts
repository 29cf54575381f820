/**
 * Shared test helpers: one GPU per test file, seeded random data, and tolerance checks with readable
 * failure messages.
 * @module
 */
import { Gpu } from "../gpu/runtime.ts";
import { seededRandom } from "../io/datasets.ts";
import { normalGenerator } from "../model/init.ts";

let shared: Promise<Gpu> | undefined;

/** The test process's GPU (the CPU adapter in CI), created once. */
export function testGpu(): Promise<Gpu> {
  shared ??= Gpu.create();
  return shared;
}

/** Deno.test options for tests that hold a GPU device across tests. */
export const GPU_TEST = { sanitizeResources: false, sanitizeOps: false } as const;

/** A small seeded generator (mulberry32, the toolkit's own) so test data is the same on every run. */
export const rng: (seed: number) => () => number = seededRandom;

/**
 * `n` values uniform in [-scale, scale): for tests whose data must stay below a value they plant (a maximum,
 * a peak) where a normal draw's tail could reach it.
 */
export function uniform(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

/**
 * `n` values drawn from a normal distribution with mean 0 and standard deviation `scale`, as `torch.randn`
 * gives (the model initialiser's seeded Box–Muller generator, so a seed gives the same values on every run).
 */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const normal = normalGenerator(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = normal() * scale;
  return out;
}

/** Largest absolute difference between two arrays of the same length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** Asserts |actual - expected| <= atol + rtol * max|expected|, naming the worst element. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  atol = 1e-5,
  rtol = 1e-4,
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  }
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  const tol = atol + rtol * scale;
  let worst = -1;
  let worstD = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= worstD)) {
      worstD = Number.isNaN(d) ? Infinity : d;
      worst = i;
    }
  }
  if (worstD > tol) {
    throw new Error(
      `${what}: max error ${worstD.toExponential(3)} > tol ${tol.toExponential(3)} at [${worst}] ` +
        `(got ${actual[worst]}, expected ${expected[worst]})`,
    );
  }
}

/**
 * `p`, or a rejection naming `what` when it has not settled within `ms`, so that a hang fails its test
 * instead of stalling the suite.
 */
export function settlesWithin<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
