import { gradNormSquared } from "../../kernels/gradnorm.ts";
import { gradNormSquaredRef } from "../../kernels/gradnorm_ref.ts";
import { assertAlmostEquals, assertEquals, assertThrows } from "../asserts.ts";
import { GPU_TEST, randn, testGpu } from "../helpers.ts";

Deno.test(
  "gradnorm: four chunks of odd lengths sum to the reference, the same bits every run",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    // 1 element, less than a workgroup, and enough for many partial workgroups (and a chunk of ones whose
    // exact answer is known).
    const chunks = [randn(1, 1, 3), randn(1001, 2), randn(300_007, 3, 0.01), new Float32Array(4099).fill(1)];
    const out = gpu.upload(new Float32Array([123])); // overwritten, not added to
    const dispatches = gradNormSquared(gpu, { grads: chunks.map((c) => gpu.upload(c)), out });
    gpu.run(dispatches);
    const first = (await gpu.read(out))[0];
    const expected = gradNormSquaredRef(chunks);
    assertAlmostEquals(first, expected, 1e-5 * expected, "sum of squares");
    gpu.run(dispatches);
    gpu.run(dispatches);
    assertEquals((await gpu.read(out))[0], first, "replayed result");

    gpu.run(gradNormSquared(gpu, { grads: [gpu.upload(chunks[3])], out }));
    assertEquals((await gpu.read(out))[0], 4099, "a chunk of ones");
  },
);

Deno.test("gradnorm: bad arguments are refused with the chunk named", GPU_TEST, async () => {
  const gpu = await testGpu();
  const out = gpu.tensor(1);
  assertThrows(() => gradNormSquared(gpu, { grads: [], out }), RangeError, "empty");
  assertThrows(
    () => gradNormSquared(gpu, { grads: [gpu.tensor(3), gpu.tensor(3, "u32", "ids")], out }),
    TypeError,
    "grads[1]",
  );
});
