import { loraSelect } from "../../kernels/lora_select.ts";
import { loraSelectRef } from "../../kernels/lora_select_ref.ts";
import { assertEquals, assertThrows } from "../asserts.ts";
import { GPU_TEST, randn, testGpu } from "../helpers.ts";

// Awkward sizes: ranks that are no power of two, row counts off the 256-thread workgroup, adapters of
// different ranks stacked, and rows with no adapter (0) or an adapter no column carries.
for (const [rows, ranks] of [[1, [3]], [7, [5, 11]], [301, [16, 8, 3]]] as [number, number[]][]) {
  Deno.test(`lora select: matches the reference at rows=${rows}, ranks=${ranks}`, GPU_TEST, async () => {
    const gpu = await testGpu();
    const rank = ranks.reduce((a, b) => a + b, 0);
    const colAdapter = new Uint32Array(ranks.flatMap((r, i) => Array(r).fill(i + 1)));
    const colScale = new Float32Array(ranks.flatMap((r, i) => Array(r).fill((i + 1) * 0.75 / r)));
    const rowAdapter = Uint32Array.from({ length: rows }, (_, r) => r % (ranks.length + 2));
    const xa = randn(rows * rank, rows);
    const t = gpu.upload(xa);
    gpu.run([
      loraSelect(gpu, {
        xa: t,
        rowAdapter: gpu.upload(rowAdapter),
        colAdapter: gpu.upload(colAdapter),
        colScale: gpu.upload(colScale),
        rows,
        rank,
      }),
    ]);
    assertEquals(await gpu.readF32(t), loraSelectRef(xa, rowAdapter, colAdapter, colScale, rows, rank));
  });
}

Deno.test("lora select: short tensors and aliasing are refused, naming the field", GPU_TEST, async () => {
  const gpu = await testGpu();
  const args = {
    xa: gpu.tensor(12),
    rowAdapter: gpu.tensor(3, "u32"),
    colAdapter: gpu.tensor(4, "u32"),
    colScale: gpu.tensor(4),
    rows: 3,
    rank: 4,
  };
  assertThrows(() => loraSelect(gpu, { ...args, xa: gpu.tensor(11) }), RangeError, `"xa"`);
  assertThrows(
    () => loraSelect(gpu, { ...args, rowAdapter: gpu.tensor(2, "u32") }),
    RangeError,
    `"rowAdapter"`,
  );
  assertThrows(() => loraSelect(gpu, { ...args, colScale: gpu.tensor(4, "u32") }), TypeError, `"colScale"`);
  assertThrows(() => loraSelect(gpu, { ...args, colScale: args.xa }), RangeError, "share bytes");
});
