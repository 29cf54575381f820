import { assert, assertEquals } from "./asserts.ts";
import { randn, uniform } from "./helpers.ts";

function moments(x: Float32Array): { mean: number; std: number; maxAbs: number } {
  let sum = 0, sq = 0, maxAbs = 0;
  for (const v of x) {
    sum += v;
    sq += v * v;
    maxAbs = Math.max(maxAbs, Math.abs(v));
  }
  const mean = sum / x.length;
  return { mean, std: Math.sqrt(sq / x.length - mean * mean), maxAbs };
}

Deno.test("helpers: randn is normal (mean 0, std scale, tails past 3 std) and seeded", () => {
  const x = randn(100_000, 7, 2);
  const m = moments(x);
  assert(Math.abs(m.mean) < 0.02, `mean ${m.mean}`);
  assert(Math.abs(m.std - 2) < 0.02, `std ${m.std}`);
  assert(m.maxAbs > 6, `a normal sample of 100,000 reaches past 3 std; max |x| ${m.maxAbs}`);
  const within1 = x.filter((v) => Math.abs(v) < 2).length / x.length;
  assert(Math.abs(within1 - 0.6827) < 0.01, `share within one std ${within1}`);
  assertEquals(randn(5, 7, 2), x.slice(0, 5), "the same seed gives the same values");
});

Deno.test("helpers: uniform stays in [-scale, scale) with the uniform's std", () => {
  const m = moments(uniform(100_000, 7, 2));
  assert(m.maxAbs <= 2, `max |x| ${m.maxAbs}`);
  assert(Math.abs(m.std - 2 / Math.sqrt(3)) < 0.02, `std ${m.std}`);
});
