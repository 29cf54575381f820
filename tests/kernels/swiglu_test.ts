import { swigluBackward, swigluForward } from "../../kernels/swiglu.ts";
import { swigluBackwardRef, swigluForwardRef } from "../../kernels/swiglu_ref.ts";
import { assert, assertThrows } from "../asserts.ts";
import { assertClose, GPU_TEST, randn, testGpu } from "../helpers.ts";

// Gates far into both tails: a naive σ(x) = 1/(1+exp(-x)) overflows exp at x < -88, and 1 − σ(x) computed
// by subtraction loses every digit for x > 17.
const TAILS = [-100, -30, -17, -1e-3, 0, 1e-3, 17, 30, 100];

/** Asserts each element within `rtol` of its expected value relative to that value itself. */
function assertElementwiseRelative(
  actual: Float32Array,
  expected: Float32Array,
  what: string,
  rtol = 1e-4,
): void {
  for (let i = 0; i < expected.length; i++) {
    const tol = rtol * Math.abs(expected[i]) + 1e-30; // 1e-30: lets a GPU flush denormals to zero
    assert(
      Math.abs(actual[i] - expected[i]) <= tol,
      `${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`,
    );
  }
}

for (const n of [1, 33, 301]) {
  Deno.test(`swiglu: forward and backward match the reference at n=${n}`, GPU_TEST, async () => {
    const gpu = await testGpu();
    const gate = randn(n, 1, 6), up = randn(n, 2, 2), dout = randn(n, 3);
    if (n >= TAILS.length) gate.set(TAILS);
    const ref = swigluForwardRef(gate, up);
    const refB = swigluBackwardRef(dout, gate, up);
    const tg = gpu.upload(gate), tu = gpu.upload(up), out = gpu.tensor(n);
    const dgate = gpu.upload(new Float32Array(n).fill(9)), dup = gpu.upload(new Float32Array(n).fill(9)); // overwritten
    gpu.run([
      swigluForward(gpu, { gate: tg, up: tu, out, n }),
      swigluBackward(gpu, { dout: gpu.upload(dout), gate: tg, up: tu, dgate, dup, n }),
    ]);
    const [gOut, gdg, gdu] = (await gpu.readMany([out, dgate, dup])) as Float32Array[];
    assertClose(gOut, ref, "out");
    assertClose(gdg, refB.dgate, "dgate");
    assertClose(gdu, refB.dup, "dup");
    if (n >= TAILS.length) {
      const tails = (a: Float32Array) => a.subarray(0, TAILS.length);
      assertElementwiseRelative(tails(gOut), tails(ref), "out (tails)");
      assertElementwiseRelative(tails(gdg), tails(refB.dgate), "dgate (tails)");
      assertElementwiseRelative(tails(gdu), tails(refB.dup), "dup (tails)");
    }
  });
}

Deno.test("swiglu: rejects short tensors and an output aliasing an input", GPU_TEST, async () => {
  const gpu = await testGpu();
  const a = gpu.tensor(8), b = gpu.tensor(8);
  assertThrows(() => swigluForward(gpu, { gate: a, up: b, out: gpu.tensor(7), n: 8 }), RangeError, `"out"`);
  assertThrows(() => swigluForward(gpu, { gate: a, up: b, out: a, n: 8 }), RangeError, "share bytes");
  assertThrows(
    () => swigluBackward(gpu, { dout: a, gate: b, up: b, dgate: a, dup: gpu.tensor(8), n: 8 }),
    RangeError,
    `"dgate" and "dout" share bytes`,
  );
});
