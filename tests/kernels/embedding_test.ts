import { f16ToF32, f32ToF16 } from "../../gpu/half.ts";
import { slice } from "../../gpu/runtime.ts";
import type { RowBlocks } from "../../gpu/row_blocks.ts";
import { embeddingBackward, embeddingForward } from "../../kernels/embedding.ts";
import { embeddingBackwardRef, embeddingForwardRef } from "../../kernels/embedding_ref.ts";
import { assertEquals, assertThrows } from "../asserts.ts";
import { assertClose, GPU_TEST, randn, rng, testGpu } from "../helpers.ts";

/** `rows` ids in [0, vocab) in no order, the first one repeated last, then some ids the table does not hold. */
function mixedIds(rows: number, vocab: number, seed: number, outside: readonly number[]): Uint32Array {
  const r = rng(seed);
  const ids = Uint32Array.from({ length: rows }, () => Math.floor(r() * vocab));
  if (rows > 2) ids[rows - 1] = ids[0];
  outside.forEach((id, k) => {
    if (k * 3 + 1 < rows) ids[k * 3 + 1] = id;
  });
  return ids;
}

// [rows, dim, vocab]: a single row, awkward dims, many rows sharing few ids (lost updates would show here).
const CASES = [[1, 5, 3], [7, 33, 11], [13, 301, 4], [64, 33, 3]];

for (const [rows, dim, vocab] of CASES) {
  Deno.test(
    `embedding: forward and backward match the reference at rows=${rows} dim=${dim} vocab=${vocab}`,
    GPU_TEST,
    async () => {
      const gpu = await testGpu();
      const ids = mixedIds(rows, vocab, rows, rows > 1 ? [vocab, 0xffffffff, vocab + 5] : []);
      const table = randn(vocab * dim, 1), dout = randn(rows * dim, 2);
      const prior = new Float32Array(rows * dim).fill(-9), priorGrad = randn(vocab * dim, 3);
      const tIds = gpu.upload(ids), out = gpu.upload(prior), dtable = gpu.upload(priorGrad);
      gpu.run([
        embeddingForward(gpu, { ids: tIds, table: gpu.upload(table), out, rows, dim }),
        ...embeddingBackward(gpu, { ids: tIds, dout: gpu.upload(dout), dtable, rows, dim }),
      ]);
      const [gOut, gGrad] = (await gpu.readMany([out, dtable])) as Float32Array[];
      assertEquals(
        [...gOut],
        [...embeddingForwardRef(ids, table, dim, prior)],
        "out (rows with bad ids keep -9)",
      );
      const expected = embeddingBackwardRef(ids, dout, vocab, dim).map((g, i) => g + priorGrad[i]);
      assertClose(gGrad, expected, "dtable (accumulated)");
    },
  );
}

Deno.test(
  "embedding: a table split into shards with firstId gives the same result as one table",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const rows = 9, dim = 64, vocab = 10, split = 4; // dim 64: a shard of whole rows stays 256-byte aligned
    const ids = Uint32Array.from([7, 0, 3, 4, 9, 4, 12, 3, 5]);
    const table = randn(vocab * dim, 4), dout = randn(rows * dim, 5);
    const tTable = gpu.upload(table), tIds = gpu.upload(ids), tDout = gpu.upload(dout);
    const out = gpu.upload(new Float32Array(rows * dim).fill(-9)), grad = gpu.tensor(vocab * dim);
    const shards = [{ firstId: 0, rowsIn: split }, { firstId: split, rowsIn: vocab - split }];
    for (const { firstId, rowsIn } of shards) {
      const part = slice(tTable, firstId * dim, rowsIn * dim),
        gradPart = slice(grad, firstId * dim, rowsIn * dim);
      gpu.run([
        embeddingForward(gpu, { ids: tIds, table: part, out, rows, dim, firstId }),
        ...embeddingBackward(gpu, { ids: tIds, dout: tDout, dtable: gradPart, rows, dim, firstId }),
      ]);
    }
    const [gOut, gGrad] = (await gpu.readMany([out, grad])) as Float32Array[];
    assertEquals([...gOut], [...embeddingForwardRef(ids, table, dim, new Float32Array(rows * dim).fill(-9))]);
    assertClose(gGrad, embeddingBackwardRef(ids, dout, vocab, dim), "dtable from two shards");
  },
);

Deno.test("embedding: rejects a table that is not whole rows and non-u32 ids", GPU_TEST, async () => {
  const gpu = await testGpu();
  const ids = gpu.upload(new Uint32Array([0, 1])), out = gpu.tensor(10);
  assertThrows(
    () => embeddingForward(gpu, { ids, table: gpu.tensor(12), out, rows: 2, dim: 5 }),
    RangeError,
    "not a whole number of rows of dim = 5",
  );
  assertThrows(
    () => embeddingForward(gpu, { ids: gpu.tensor(2), table: gpu.tensor(15), out, rows: 2, dim: 5 }),
    TypeError,
    `"ids" (tensor "tensor") is f32; expected u32`,
  );
  assertThrows(
    () => embeddingBackward(gpu, { ids, dout: gpu.tensor(9), dtable: gpu.tensor(15), rows: 2, dim: 5 }),
    RangeError,
    `"dout" (tensor "tensor") holds 9 elements; it needs at least rows·dim = 10`,
  );
});

Deno.test("embedding: an f16 table (odd length) reads exactly the rounded values", GPU_TEST, async () => {
  const gpu = await testGpu();
  const vocab = 11, dim = 5, rows = 9; // 55 halves: the last u32 word holds one
  const table = randn(vocab * dim, 3, 4);
  const bits = f32ToF16(table);
  const ids = mixedIds(rows, vocab, 5, [vocab, 0xffffffff]);
  const out = gpu.upload(new Float32Array(rows * dim).fill(7));
  gpu.run([embeddingForward(gpu, { ids: gpu.upload(ids), table: gpu.upload(bits), out, rows, dim })]);
  const want = embeddingForwardRef(ids, f16ToF32(bits), dim, new Float32Array(rows * dim).fill(7));
  assertEquals(await gpu.read(out), want);
});

Deno.test(
  "embedding: a gradient held in row blocks of awkward sizes sums each id's rows into its block",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const rows = 23, dim = 33, sizes = [5, 5, 3]; // 13 table rows in three blocks
    const vocab = sizes.reduce((a, b) => a + b, 0);
    // Repeated ids in every block, ids on block edges, and ids past the table (skipped).
    const ids = Uint32Array.from({ length: rows }, (_, r) => [4, 5, 9, 10, 12, 0, 13, 4, 0xfffffffe][r % 9]);
    const table = randn(vocab * dim, 6), dout = randn(rows * dim, 7), prior = randn(vocab * dim, 8);
    let row0 = 0;
    const blocks = sizes.map((n) => {
      const block = {
        row0,
        rows: n,
        tensor: gpu.upload(prior.slice(row0 * dim, (row0 + n) * dim), `grad[${row0}]`),
        table: gpu.upload(table.slice(row0 * dim, (row0 + n) * dim)),
      };
      row0 += n;
      return block;
    });
    const dtable: RowBlocks = {
      rows: vocab,
      cols: dim,
      dtype: "f32",
      shape: [vocab, dim],
      label: "grad",
      blocks,
    };
    const tIds = gpu.upload(ids), out = gpu.upload(new Float32Array(rows * dim).fill(-9));
    gpu.run([
      ...blocks.map((b) =>
        embeddingForward(gpu, { ids: tIds, table: b.table, out, rows, dim, firstId: b.row0 })
      ),
      ...embeddingBackward(gpu, { ids: tIds, dout: gpu.upload(dout), dtable, rows, dim }),
    ]);
    const got = await gpu.readMany([out, ...blocks.map((b) => b.tensor)]) as Float32Array[];
    assertEquals([...got[0]], [
      ...embeddingForwardRef(ids, table, dim, new Float32Array(rows * dim).fill(-9)),
    ]);
    const whole = new Float32Array(vocab * dim);
    blocks.forEach((b, i) => whole.set(got[i + 1], b.row0 * dim));
    const expected = embeddingBackwardRef(ids, dout, vocab, dim).map((g, i) => g + prior[i]);
    assertClose(whole, expected, "dtable in three blocks (accumulated)");
  },
);
