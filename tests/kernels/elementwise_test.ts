import { slice } from "../../gpu/runtime.ts";
import {
  add,
  addBias,
  biasBackward,
  castF32ToF16,
  copy,
  copyColumns,
  fill,
  gatherRows,
  scale,
} from "../../kernels/elementwise.ts";
import {
  addBiasRef,
  addRef,
  biasBackwardRef,
  castF32ToF16Ref,
  copyColumnsRef,
  copyRef,
  gatherRowsRef,
  scaleRef,
} from "../../kernels/elementwise_ref.ts";
import { assertEquals, assertThrows } from "../asserts.ts";
import { assertClose, GPU_TEST, randn, testGpu } from "../helpers.ts";

for (const n of [1, 5, 301]) {
  Deno.test(
    `elementwise: add (plain, accumulate, in place on a, on b, on both) at n=${n}`,
    GPU_TEST,
    async () => {
      const gpu = await testGpu();
      const a = randn(n, 1), b = randn(n, 2), prior = randn(n, 3);
      const ta = gpu.upload(a), tb = gpu.upload(b), plain = gpu.tensor(n), acc = gpu.upload(prior);
      const onA = gpu.upload(a), onB = gpu.upload(b), onBoth = gpu.upload(a), onBothAcc = gpu.upload(a);
      gpu.run([
        add(gpu, { a: ta, b: tb, out: plain, n }),
        add(gpu, { a: ta, b: tb, out: acc, n, accumulate: true }),
        add(gpu, { a: onA, b: tb, out: onA, n }),
        add(gpu, { a: ta, b: onB, out: onB, n }),
        add(gpu, { a: onBoth, b: onBoth, out: onBoth, n }),
        add(gpu, { a: onBothAcc, b: onBothAcc, out: onBothAcc, n, accumulate: true }),
      ]);
      const [gPlain, gAcc, gA, gB, gBoth, gBothAcc] = await gpu.readMany([
        plain,
        acc,
        onA,
        onB,
        onBoth,
        onBothAcc,
      ]);
      assertClose(gPlain as Float32Array, addRef(a, b), "a + b");
      assertClose(gAcc as Float32Array, addRef(a, b, prior), "out += a + b");
      assertClose(gA as Float32Array, addRef(a, b), "a = a + b");
      assertClose(gB as Float32Array, addRef(a, b), "b = a + b");
      assertClose(gBoth as Float32Array, addRef(a, a), "a = a + a");
      assertClose(gBothAcc as Float32Array, addRef(a, a, a), "a += a + a");
    },
  );
}

Deno.test("elementwise: add only touches the first n elements", GPU_TEST, async () => {
  const gpu = await testGpu();
  const out = gpu.upload(new Float32Array(9).fill(-7));
  gpu.run([
    add(gpu, {
      a: gpu.upload(new Float32Array(9).fill(1)),
      b: gpu.upload(new Float32Array(9).fill(2)),
      out,
      n: 5,
    }),
  ]);
  assertEquals([...await gpu.read(out)], [3, 3, 3, 3, 3, -7, -7, -7, -7]);
});

Deno.test("elementwise: add and scale reject bad sizes and partial overlap", GPU_TEST, async () => {
  const gpu = await testGpu();
  const big = gpu.tensor(256), small = gpu.tensor(4);
  assertThrows(
    () => add(gpu, { a: small, b: big, out: big, n: 5 }),
    RangeError,
    "holds 4 elements; it needs at least n = 5",
  );
  assertThrows(() => add(gpu, { a: big, b: big, out: big, n: 1.5 }), RangeError, `"n" must be an integer`);
  assertThrows(() => add(gpu, { a: gpu.tensor(4, "u32"), b: small, out: small, n: 4 }), TypeError, "is u32");
  const shifted = slice(big, 64, 128);
  assertThrows(() => add(gpu, { a: big, b: big, out: shifted, n: 100 }), RangeError, "partly overlaps");
  assertThrows(() => scale(gpu, { x: big, out: shifted, n: 100, alpha: 2 }), RangeError, "partly overlaps");
});

for (const n of [1, 33, 301]) {
  Deno.test(`elementwise: scale (copying and in place) at n=${n}`, GPU_TEST, async () => {
    const gpu = await testGpu();
    const x = randn(n, 4, 3);
    const tx = gpu.upload(x), out = gpu.tensor(n), inPlace = gpu.upload(x);
    gpu.run([
      scale(gpu, { x: tx, out, n, alpha: -0.3 }),
      scale(gpu, { x: inPlace, out: inPlace, n, alpha: 1.7 }),
    ]);
    const [gOut, gIn] = await gpu.readMany([out, inPlace]);
    assertClose(gOut as Float32Array, scaleRef(x, -0.3), "out = -0.3·x");
    assertClose(gIn as Float32Array, scaleRef(x, 1.7), "x = 1.7·x");
  });
}

Deno.test(
  "elementwise: fill writes f32, u32 and i32 values into the first n elements",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const f = gpu.upload(new Float32Array(7).fill(9)), u = gpu.tensor(5, "u32"), s = gpu.tensor(33, "i32");
    gpu.run([
      fill(gpu, { x: f, n: 6, value: -2.5 }),
      fill(gpu, { x: u, n: 5, value: 0xffffffff }),
      fill(gpu, { x: s, n: 33, value: -3 }),
    ]);
    const [gf, gu, gs] = await gpu.readMany([f, u, s]);
    assertEquals([...gf as Float32Array], [-2.5, -2.5, -2.5, -2.5, -2.5, -2.5, 9]);
    assertEquals([...gu as Uint32Array], new Array(5).fill(0xffffffff));
    assertEquals([...gs as Int32Array], new Array(33).fill(-3));
    assertThrows(() => fill(gpu, { x: u, n: 5, value: -1 }), RangeError, "not a u32");
    assertThrows(() => fill(gpu, { x: s, n: 5, value: 0.5 }), RangeError, "not an i32");
  },
);

Deno.test("elementwise: copy moves elements between arbitrary (unaligned) offsets", GPU_TEST, async () => {
  const gpu = await testGpu();
  const src = randn(301, 5), dst = randn(97, 6);
  const ids = Uint32Array.from({ length: 40 }, (_, i) => i * 7 + 1), idsDst = new Uint32Array(50).fill(5);
  const tDst = gpu.upload(dst), tIds = gpu.tensor(50, "u32");
  gpu.write(tIds, idsDst);
  gpu.run([
    copy(gpu, { src: gpu.upload(src), dst: tDst, n: 33, srcOffset: 263, dstOffset: 61 }),
    copy(gpu, { src: gpu.upload(ids), dst: tIds, n: 39, srcOffset: 1, dstOffset: 3 }),
  ]);
  const [gDst, gIds] = await gpu.readMany([tDst, tIds]);
  assertEquals([...gDst as Float32Array], [...copyRef(src, dst, 33, 263, 61)]);
  assertEquals([...gIds as Uint32Array], [...copyRef(ids, idsDst, 39, 1, 3)]);
});

Deno.test("elementwise: copy rejects overflow, dtype mismatch and overlap", GPU_TEST, async () => {
  const gpu = await testGpu();
  const a = gpu.tensor(300), b = gpu.tensor(40, "f32", "cache");
  assertThrows(
    () => copy(gpu, { src: a, dst: b, n: 33, dstOffset: 8 }),
    RangeError,
    `"dst" (tensor "cache") holds 40`,
  );
  assertThrows(() => copy(gpu, { src: a, dst: b, n: 33, srcOffset: 290 }), RangeError, "srcOffset + n = 323");
  assertThrows(() => copy(gpu, { src: a, dst: gpu.tensor(40, "u32"), n: 3 }), TypeError, "expected f32");
  assertThrows(() => copy(gpu, { src: a, dst: slice(a, 64, 64), n: 3 }), RangeError, "share bytes");
  assertThrows(
    () => copy(gpu, { src: gpu.tensor(4, "f16"), dst: gpu.tensor(4, "f16"), n: 3 }),
    TypeError,
    "is f16",
  );
});

for (const [rows, cols] of [[1, 5], [7, 33], [37, 301]]) {
  Deno.test(`elementwise: addBias and biasBackward at ${rows}x${cols}`, GPU_TEST, async () => {
    const gpu = await testGpu();
    const x = randn(rows * cols, 7),
      bias = randn(cols, 8),
      dy = randn(rows * cols, 9),
      prior = randn(cols, 10);
    const tx = gpu.upload(x), dbias = gpu.upload(prior);
    gpu.run([
      addBias(gpu, { x: tx, bias: gpu.upload(bias), rows, cols }),
      biasBackward(gpu, { dy: gpu.upload(dy), dbias, rows, cols }),
    ]);
    const [gx, gdb] = await gpu.readMany([tx, dbias]);
    assertClose(gx as Float32Array, addBiasRef(x, bias, rows, cols), "x + bias");
    assertClose(gdb as Float32Array, addRef(biasBackwardRef(dy, rows, cols), prior), "dbias (accumulated)");
  });
}

Deno.test(
  "elementwise: castF32ToF16 rounds to nearest even, clamps, and keeps the half after an odd n",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const specials = [0, -0, 1, 2049, 2051, 65504, 65519, 7e4, -1e6, 1e-6, -3.0517578125e-5, 0.1, 1 / 3];
    const n = 301;
    const x = randn(n, 11, 40);
    x.set(specials);
    const dst = gpu.tensor(n + 1, "f16");
    gpu.write(dst, new Uint16Array(n + 1).fill(0xabcd));
    gpu.run([castF32ToF16(gpu, { src: gpu.upload(x), dst, n })]);
    const got = await gpu.read(dst);
    assertEquals([...got.subarray(0, n)], [...castF32ToF16Ref(x)]);
    assertEquals(got[n], 0xabcd, "the element after n is untouched");
    assertThrows(
      () => castF32ToF16(gpu, { src: gpu.upload(x), dst: gpu.tensor(n), n }),
      TypeError,
      "expected f16",
    );
  },
);

Deno.test("elementwise: kernels cover counts beyond 65,535 workgroups (2-D launch)", GPU_TEST, async () => {
  const gpu = await testGpu();
  const n = 65535 * 256 + 300;
  const big = gpu.tensor(n, "f32", "big");
  const tail = gpu.tensor(600);
  gpu.run([
    fill(gpu, { x: big, n, value: 1.5 }),
    scale(gpu, { x: big, out: big, n, alpha: 2 }),
    copy(gpu, { src: big, dst: tail, n: 600, srcOffset: n - 600 }),
  ]);
  assertEquals([...await gpu.read(tail)], new Array(600).fill(3));
  big.buffer.destroy();
});

Deno.test(
  "elementwise: gatherRows picks rows in any order, repeats them, and zero-fills out-of-range ones",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const width = 33, srcRows = 7;
    const src = randn(srcRows * width, 11);
    const index = new Uint32Array([6, 0, 3, 3, 9, 1]);
    const dst = gpu.upload(new Float32Array(index.length * width).fill(NaN));
    gpu.run([
      gatherRows(gpu, {
        src: gpu.upload(src),
        index: gpu.upload(index),
        dst,
        rows: index.length,
        width,
        srcRows,
      }),
    ]);
    assertEquals(await gpu.read(dst), gatherRowsRef(src, index, width, srcRows));
  },
);

Deno.test(
  "elementwise: gatherRows over two blocks of the row space fills one output, each row from its block",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const width = 5, first = 7, second = 6;
    const a = randn(first * width, 1), b = randn(second * width, 2);
    // A chunk of a longer index: 3 leading entries are skipped.
    const index = new Uint32Array([0, 0, 0, 12, 0, 7, 6, 13, 8]);
    const rows = index.length - 3;
    const dst = gpu.upload(new Float32Array(rows * width).fill(-1));
    const tIndex = gpu.upload(index);
    const common = { index: tIndex, dst, rows, width, indexOffset: 3, outside: "keep" as const };
    gpu.run([
      gatherRows(gpu, { ...common, src: gpu.upload(a), srcRows: first }),
      gatherRows(gpu, { ...common, src: gpu.upload(b), srcRows: second, srcRow0: first }),
    ]);
    const chunk = index.subarray(3);
    let expected = gatherRowsRef(a, chunk, width, first, 0, new Float32Array(rows * width).fill(-1));
    expected = gatherRowsRef(b, chunk, width, second, first, expected);
    const got = await gpu.read(dst);
    assertEquals(got, expected);
    // Index 13 is past both blocks: the row keeps what was there.
    assertEquals([...got.subarray(4 * width, 5 * width)], new Array(width).fill(-1));
  },
);

Deno.test(
  "elementwise: copyColumns moves a column block between matrices of other widths",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    for (
      const [rows, cols, srcStride, srcColumn, dstStride, dstColumn] of [[7, 13, 13, 0, 50, 29], [
        5,
        3,
        17,
        11,
        3,
        0,
      ], [1, 1, 1, 0, 9, 8]]
    ) {
      const src = randn(rows * srcStride, rows + cols);
      const dst = randn(rows * dstStride, 3);
      const tDst = gpu.upload(dst);
      gpu.run([
        copyColumns(gpu, {
          src: gpu.upload(src),
          dst: tDst,
          rows,
          cols,
          srcStride,
          srcColumn,
          dstStride,
          dstColumn,
        }),
      ]);
      assertEquals(
        await gpu.read(tDst),
        copyColumnsRef(src, dst, rows, cols, srcStride, srcColumn, dstStride, dstColumn),
        `${rows}x${cols} from column ${srcColumn} of ${srcStride} to column ${dstColumn} of ${dstStride}`,
      );
    }
    const a = gpu.tensor(40), b = gpu.tensor(40);
    assertThrows(
      () =>
        copyColumns(gpu, { src: a, dst: b, rows: 4, cols: 6, srcStride: 10, srcColumn: 5, dstStride: 10 }),
      RangeError,
      "run past a row",
    );
    assertThrows(
      () => copyColumns(gpu, { src: a, dst: b, rows: 5, cols: 6, srcStride: 10, dstStride: 10 }),
      RangeError,
      '"src"',
    );
  },
);
