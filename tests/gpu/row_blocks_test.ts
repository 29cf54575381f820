import { Gpu } from "../../gpu/runtime.ts";
import {
  readRowPieces,
  readRows,
  type RowBlocks,
  rowBlockSizes,
  RowTooWideError,
  singleBlock,
  wholeTensor,
  writeRows,
} from "../../gpu/row_blocks.ts";
import { ParamSet } from "../../model/params.ts";
import { assert, assertEquals, assertThrows } from "../asserts.ts";
import { GPU_TEST, randn, testGpu } from "../helpers.ts";

Deno.test("row blocks: sizes are balanced, each within the limit, and a row wider than it is refused", () => {
  assertEquals(rowBlockSizes(10, 100, 450, "w"), [4, 4, 2]);
  assertEquals(rowBlockSizes(3, 100, 1000, "w"), [3]);
  assertEquals(rowBlockSizes(128256, 2048 * 4, 128 * 2 ** 20, "embed"), new Array(8).fill(16032));
  const sizes = rowBlockSizes(1001, 7, 64, "w");
  assertEquals(sizes.reduce((a, b) => a + b, 0), 1001);
  assert(sizes.every((n) => n * 7 <= 64), `${sizes}`);
  assertThrows(() => rowBlockSizes(4, 1 << 20, 4096, "wide"), RowTooWideError, '"wide"');
});

Deno.test(
  "row blocks: a parameter set splits what exceeds a binding, the same rows in values, grads and moments",
  GPU_TEST,
  async () => {
    const gpu = await Gpu.create({ maxBindingBytes: 4096 });
    try {
      const set = ParamSet.create(gpu, [
        { name: "big", shape: [37, 29], decay: true }, // 4292 bytes in f32: two blocks
        { name: "small", shape: [5, 3], decay: true },
        { name: "norm", shape: [29], decay: false },
      ], { trainable: true });
      const big = set.blocks("big");
      assertEquals(big.blocks.map((b) => [b.row0, b.rows]), [[0, 19], [19, 18]]);
      for (const part of ["grad", "m", "v"] as const) {
        assertEquals(set.blocks("big", part).blocks.map((b) => b.rows), [19, 18], part);
      }
      assertThrows(() => set.value("big"), RangeError, "split into 2 row blocks");
      assertEquals(set.blocks("small").blocks.length, 1);
      // Writes across the block boundary land in both blocks; reads give the rows back in order.
      const values = randn(37 * 29, 1);
      writeRows(gpu, big, values.subarray(0, 10 * 29));
      writeRows(gpu, big, values.subarray(10 * 29), 10);
      const [back] = await readRows(gpu, [big]);
      assertEquals(back, values);
      // Every arena chunk fits the forced binding, so AdamW's chunk-by-chunk dispatches are valid.
      for (const g of set.groups) for (const c of g.values.chunks) assert(c.used <= 4096, `${c.used}`);
      set.destroy();
    } finally {
      gpu.destroy();
    }
  },
);

Deno.test(
  "row blocks: f16 rows of odd width read back in pieces of whole rows, in order",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const cols = 5;
    const bits = Uint16Array.from({ length: 9 * cols }, (_, i) => 0x3c00 + i);
    const blocks: RowBlocks = {
      rows: 9,
      cols,
      dtype: "f16",
      shape: [9, cols],
      label: "odd",
      blocks: [
        { row0: 0, rows: 4, tensor: gpu.upload(bits.slice(0, 4 * cols)) },
        { row0: 4, rows: 5, tensor: gpu.upload(bits.slice(4 * cols)) },
      ],
    };
    const got: number[] = [];
    const starts: number[] = [];
    for await (const { row0, data } of readRowPieces(gpu, blocks, 11)) {
      starts.push(row0);
      assertEquals(data.length % cols, 0);
      got.push(...data);
    }
    // Two rows per piece (an even element count keeps each copy 4-byte aligned), never across blocks.
    assertEquals(starts, [0, 2, 4, 6, 8]);
    assertEquals(got, [...bits]);
    assertEquals(wholeTensor(singleBlock(blocks.blocks[0].tensor, [4, cols])).length, 4 * cols);
  },
);
