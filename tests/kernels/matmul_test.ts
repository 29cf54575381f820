import {
  autotuneMatmul,
  clearMatmulTuning,
  defaultMatmulConfig,
  loadMatmulTuning,
  matmul,
  MATMUL_CONFIGS,
  type MatmulArgs,
  type MatmulConfig,
  matmulConfigFor,
  matmulLaunch,
  matmulNaive,
  matmulShapeClass,
  saveMatmulTuning,
} from "../../kernels/matmul.ts";
import { matmulConfigProblem, matmulTile, matmulWgsl } from "../../kernels/matmul_codegen.ts";
import { f16BitsToF32, f16ToF32, f32ToF16, f32ToF16Bits } from "../../gpu/half.ts";
import { matmulRef } from "../../kernels/matmul_ref.ts";
import { type Gpu, MAX_GROUPS_PER_DIM, slice } from "../../gpu/runtime.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes, assertThrows } from "../asserts.ts";
import { assertClose, f16Capability, GPU_TEST, randn, testGpu, testNeeding } from "../helpers.ts";

const F16 = await f16Capability();

/** One product to check: sizes, layouts, options. */
interface Case {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  accumulate?: boolean;
  alpha?: number;
  bF16?: boolean;
  config?: MatmulConfig;
  naive?: boolean;
}

const TRANSPOSES = [[false, false], [false, true], [true, false], [true, true]] as const;

function caseName(c: Case): string {
  const t = `${c.transA ? "T" : "N"}${c.transB ? "T" : "N"}`;
  const kernel = c.naive ? "naive" : c.config?.name ?? "default";
  return `${kernel} ${t} ${c.M}x${c.N}x${c.K}${c.accumulate ? " +=" : ""}${c.bF16 ? " f16" : ""}`;
}

/**
 * Runs all cases in one submission and one readback (each awaited map costs ~11 ms), then compares each
 * against the f64 reference. C starts as NaN unless accumulating, so an unwritten element cannot pass.
 */
async function checkCases(gpu: Gpu, cases: readonly Case[]): Promise<void> {
  const outputs = cases.map((c, i) => {
    const a = randn(c.M * c.K, 10 + i);
    let b = randn(c.K * c.N, 20 + i);
    const c0 = c.accumulate ? randn(c.M * c.N, 30 + i) : new Float32Array(c.M * c.N).fill(NaN);
    const b16 = c.bF16 ? f32ToF16(b) : undefined;
    if (b16) b = f16ToF32(b16); // the reference sees exactly the rounded weights the kernel reads
    const args: MatmulArgs = {
      a: gpu.upload(a, "a"),
      b: b16 ? gpu.upload(b16, "b16") : gpu.upload(b, "b"),
      c: gpu.upload(c0, "c"),
      ...c,
    };
    const expected = matmulRef({ a, b, c: c0, ...c });
    return { dispatch: c.naive ? matmulNaive(gpu, args) : matmul(gpu, args), c: args.c, expected };
  });
  gpu.run(outputs.map((o) => o.dispatch));
  const got = await gpu.readMany(outputs.map((o) => o.c));
  cases.forEach((c, i) => {
    // f32 accumulation over K terms of size <= 1: errors stay far below 1e-5 of the largest output.
    assertClose(got[i] as Float32Array, outputs[i].expected, caseName(c), 1e-5, 1e-5);
  });
}

const AWKWARD: readonly [number, number, number][] = [
  [37, 53, 29],
  [1, 70, 33], // one-token decoding
  [65, 1, 17], // N = 1
  [130, 70, 257], // several tiles, K % 4 = 1
  [9, 12, 1], // K = 1
  [36, 52, 28], // multiples of 4: vec4 loads on every axis
];

Deno.test("matmul: every transpose at awkward sizes matches the reference", GPU_TEST, async () => {
  const gpu = await testGpu();
  const cases: Case[] = [];
  for (const [transA, transB] of TRANSPOSES) {
    for (const [M, N, K] of AWKWARD) cases.push({ M, N, K, transA, transB });
  }
  await checkCases(gpu, cases);
});

Deno.test("matmul: every candidate config in every transpose, accumulating, scaled", GPU_TEST, async () => {
  const gpu = await testGpu();
  const cases: Case[] = [];
  for (const config of MATMUL_CONFIGS) {
    for (const [transA, transB] of TRANSPOSES) {
      // Two row and column tiles of the largest config, ragged K tiles (37 = 4·8 + 5 = 2·16 + 5).
      cases.push({ M: 130, N: 141, K: 37, transA, transB, config, accumulate: true, alpha: -0.75 });
      // Aligned sizes switch the register kernels to vec4 loads; a ragged K tail remains.
      if (!config.tileK) cases.push({ M: 68, N: 132, K: 38, transA, transB, config, alpha: 2 });
    }
  }
  await checkCases(gpu, cases);
});

Deno.test("matmul: accumulate adds to C, otherwise C (even NaN) is overwritten", GPU_TEST, async () => {
  const gpu = await testGpu();
  const a = gpu.upload(new Float32Array([1, 2, 3, 4]), "a"); // [2, 2]
  const b = gpu.upload(new Float32Array([1, 0, 0, 1]), "b"); // identity
  const c1 = gpu.upload(new Float32Array([NaN, NaN, NaN, NaN]), "c1");
  const c2 = gpu.upload(new Float32Array([10, 20, 30, 40]), "c2");
  gpu.run([
    matmul(gpu, { a, b, c: c1, M: 2, N: 2, K: 2, alpha: 3 }),
    matmul(gpu, { a, b, c: c2, M: 2, N: 2, K: 2, accumulate: true, alpha: 0.5 }),
  ]);
  const [r1, r2] = await gpu.readMany([c1, c2]);
  assertEquals([...r1 as Float32Array], [3, 6, 9, 12]);
  assertEquals([...r2 as Float32Array], [10.5, 21, 31.5, 42]);
});

testNeeding(F16, "matmul: f16 B (frozen weights) in every transpose", GPU_TEST, async () => {
  const gpu = await testGpu();
  const tiled = MATMUL_CONFIGS.find((c) => c.tileK)!;
  const cases: Case[] = [];
  for (const [transA, transB] of TRANSPOSES) {
    cases.push({ M: 37, N: 53, K: 29, transA, transB, bF16: true, accumulate: true });
    cases.push({ M: 1, N: 64, K: 32, transA, transB, bF16: true }); // vec4<f16> loads
    cases.push({ M: 40, N: 24, K: 20, transA, transB, bF16: true, config: tiled });
  }
  await checkCases(gpu, cases);
});

Deno.test("matmul: the naive baseline matches the reference", GPU_TEST, async () => {
  const gpu = await testGpu();
  const cases: Case[] = TRANSPOSES.map(([transA, transB]) => ({
    M: 19,
    N: 33,
    K: 21,
    transA,
    transB,
    naive: true,
    accumulate: transA,
    alpha: 1.5,
  }));
  await checkCases(gpu, cases);
});

Deno.test("matmul: more than 65,535 tiles fold into a 2-D launch", GPU_TEST, async () => {
  const gpu = await testGpu();
  const config = MATMUL_CONFIGS.find((c) => c.name === "reg1x4")!;
  const M = 70_001;
  assert(matmulLaunch(config, M, 3).workgroups[1] > 1, "expected a folded launch");
  await checkCases(gpu, [{ M, N: 3, K: 2, config }]);
});

Deno.test("matmul: launches for the largest model shapes stay within 65,535 per dimension", () => {
  for (const config of MATMUL_CONFIGS) {
    for (const [M, N] of [[16384, 128256], [1, 128256], [16384, 1], [1 << 20, 4096]]) {
      const { workgroups, tilesN } = matmulLaunch(config, M, N);
      assert(
        workgroups.every((n) => n >= 1 && n <= MAX_GROUPS_PER_DIM),
        `${config.name} ${M}x${N}: ${workgroups}`,
      );
      const { rows, cols } = matmulTile(config);
      assertEquals(tilesN, Math.ceil(N / cols));
      const tiles = Math.ceil(M / rows) * tilesN;
      assert(workgroups[0] * workgroups[1] >= tiles, `${config.name} ${M}x${N}: too few workgroups`);
    }
  }
});

Deno.test("matmul: generated code keeps accumulators in named registers", () => {
  for (const config of MATMUL_CONFIGS) {
    for (const [transA, transB] of TRANSPOSES) {
      for (const vec of [false, true]) {
        const variant = {
          transA,
          transB,
          bF16: false,
          vecA: vec && !config.tileK,
          vecB: vec && !config.tileK,
        };
        if (variant.vecA && transA && config.rowsPerThread % 4 !== 0) continue; // not generated, by design
        const code = matmulWgsl(config, variant);
        // Private or function-scope arrays would be indexed dynamically; only workgroup tiles are arrays.
        const arrays = code.match(/var(<(private|function)>)?\s+\w+\s*:\s*array/g) ?? [];
        assertEquals(arrays, [], `${config.name}: private arrays`);
        const accumulators = code.match(/var acc\d+_\d+ = vec4<f32>\(0\.0\);/g) ?? [];
        assertEquals(accumulators.length, config.rowsPerThread * config.vec4ColsPerThread, config.name);
        assertEquals(code.includes("enable f16"), false, `${config.name}: f16 enabled without f16 B`);
        const f16 = matmulWgsl(config, { ...variant, bF16: true });
        assert(f16.startsWith("enable f16;"), `${config.name}: f16 B needs the f16 extension`);
      }
    }
  }
});

Deno.test("matmul: bad arguments and configs get clear errors", GPU_TEST, async () => {
  const gpu = await testGpu();
  const a = gpu.tensor(6, "f32", "x"), b = gpu.tensor(6, "f32", "w"), c = gpu.tensor(4, "f32", "y");
  assertThrows(() => matmul(gpu, { a, b, c, M: 2, N: 2, K: 4 }), RangeError, 'a [M, K] ("x") has 6 elements');
  assertThrows(() => matmul(gpu, { a, b, c, M: 2, N: 2.5, K: 3 }), RangeError, "N = 2.5");
  assertThrows(() => matmul(gpu, { a, b, c, M: 0, N: 2, K: 3 }), RangeError, "M = 0");
  const ids = gpu.tensor(6, "u32", "ids");
  assertThrows(() => matmul(gpu, { a: ids, b, c, M: 2, N: 2, K: 3 }), TypeError, "is u32; expected f32");
  const big = gpu.tensor(1024, "f32", "arena");
  assertThrows(
    () => matmul(gpu, { a: slice(big, 0, 6), b, c: slice(big, 256, 4), M: 2, N: 2, K: 3 }),
    RangeError,
    "c shares a GPU buffer with a",
  );
  const huge: MatmulConfig = { name: "huge", rowsPerThread: 4, vec4ColsPerThread: 1, workgroup: [64, 64] };
  assertThrows(
    () => matmul(gpu, { a, b, c, M: 2, N: 2, K: 3, config: huge }),
    RangeError,
    '"huge": 4096 threads',
  );
  assertEquals(
    matmulConfigProblem({ name: "odd", rowsPerThread: 6, vec4ColsPerThread: 1, workgroup: [8, 8] }),
    "rowsPerThread 6: expected 1, 2, 3 or a multiple of 4",
  );
  assertStringIncludes(
    matmulConfigProblem({
      name: "t",
      rowsPerThread: 8,
      vec4ColsPerThread: 2,
      workgroup: [16, 16],
      tileK: 3,
    })!,
    "does not split evenly",
  );
  await gpu.sync(); // nothing above reached the device
});

Deno.test("matmul: defaults follow the adapter and the number of rows", GPU_TEST, async () => {
  const gpu = await testGpu();
  clearMatmulTuning();
  assertEquals(defaultMatmulConfig(gpu, { M: 1, N: 2048, K: 2048, transB: true }).name, "reg1x4");
  assertEquals(defaultMatmulConfig(gpu, { M: 8, N: 2048, K: 2048 }).name, "reg8x4");
  const big = defaultMatmulConfig(gpu, { M: 4096, N: 4096, K: 4096 });
  assertEquals(big.tileK === undefined, gpu.report.isFallback, `${big.name} on ${gpu.report.description}`);
  assertEquals(matmulShapeClass({ M: 4096, N: 2048, K: 512, transB: true }), "NT:gt1024.gt1024.le1024");
  assertEquals(matmulShapeClass({ M: 1, N: 8, K: 100, transA: true, bF16: true }), "TN-f16:le2.le8.le128");
});

Deno.test(
  "matmul: autotune picks a candidate, matmul uses it, and the cache round-trips",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    clearMatmulTuning();
    const candidates = MATMUL_CONFIGS.filter((c) => c.name === "reg4x4" || c.name === "tile64x64k8");
    const shape = { M: 96, N: 80, K: 64, transB: true };
    const dir = await Deno.makeTempDir();
    try {
      const file = `${dir}/tune.json`;
      const [first] = await autotuneMatmul(gpu, [shape], { candidates, reps: 1, cacheFile: file });
      assertEquals(first.cached, false);
      assertEquals(first.timings.map((t) => t.config), ["reg4x4", "tile64x64k8"]);
      assert(first.timings.every((t) => t.gflops > 0), "timings must be positive");
      assertEquals(first.gflops, Math.max(...first.timings.map((t) => t.gflops)));
      assertEquals(matmulConfigFor(gpu, shape).name, first.config.name);

      const [again] = await autotuneMatmul(gpu, [{ ...shape, M: 100 }], { candidates });
      assertEquals(again.cached, true, "a shape of the same class reuses the result");

      clearMatmulTuning();
      assertEquals(matmulConfigFor(gpu, shape).name, defaultMatmulConfig(gpu, shape).name);
      assertEquals(await loadMatmulTuning(file), 1);
      assertEquals(matmulConfigFor(gpu, shape), first.config);

      await saveMatmulTuning(`${dir}/copy.json`);
      assertEquals(
        JSON.parse(await Deno.readTextFile(`${dir}/copy.json`)),
        JSON.parse(await Deno.readTextFile(file)),
      );
    } finally {
      clearMatmulTuning();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("matmul: bad tuning files name the file and the field", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const write = (name: string, text: string) =>
      Deno.writeTextFile(`${dir}/${name}`, text).then(() => `${dir}/${name}`);
    await assertRejects(
      async () => loadMatmulTuning(await write("a.json", "{oops")),
      SyntaxError,
      "a.json: not JSON",
    );
    await assertRejects(
      async () => loadMatmulTuning(await write("b.json", '{"version": 2, "adapters": {}}')),
      TypeError,
      'b.json: expected {"version": 1',
    );
    const badConfig = {
      version: 1,
      adapters: { gpu0: { "NN:le8.le8.le8": { gflops: 1, config: { name: "x", rowsPerThread: 5 } } } },
    };
    await assertRejects(
      async () => loadMatmulTuning(await write("c.json", JSON.stringify(badConfig))),
      TypeError,
      'c.json: adapters["gpu0"]["NN:le8.le8.le8"].config: expected {name',
    );
  } finally {
    clearMatmulTuning();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("matmul reference: a hand-computed product and its transposes", () => {
  const a = [1, 2, 3, 4, 5, 6]; // [2, 3]
  const b = [7, 8, 9, 10, 11, 12]; // [3, 2]
  assertEquals([...matmulRef({ a, b, M: 2, N: 2, K: 3 })], [58, 64, 139, 154]);
  const aT = [1, 4, 2, 5, 3, 6]; // the same A stored [3, 2]
  const bT = [7, 9, 11, 8, 10, 12]; // the same B stored [2, 3]
  assertEquals([...matmulRef({ a: aT, b: bT, M: 2, N: 2, K: 3, transA: true, transB: true })], [
    58,
    64,
    139,
    154,
  ]);
  const c = [1, 1, 1, 1];
  assertEquals([...matmulRef({ a, b, c, M: 2, N: 2, K: 3, alpha: 0.5, accumulate: true })], [
    30,
    33,
    70.5,
    78,
  ]);
});

Deno.test("matmul reference: f16 conversion is exact on every half value and rounds to nearest even", () => {
  for (let h = 0; h < 0x10000; h++) {
    const x = f16BitsToF32(h);
    if (Number.isNaN(x)) continue;
    if (f32ToF16Bits(x) !== h) throw new Error(`f16 0x${h.toString(16)} (${x}) did not round-trip`);
  }
  assertEquals(f32ToF16Bits(1.5), 0x3e00);
  assertEquals(f32ToF16Bits(65520), 0x7c00); // halfway past the largest half rounds up to infinity
  assertEquals(f32ToF16Bits(1 + 2 ** -11), 0x3c00); // tie, even mantissa stays
  assertEquals(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie, odd mantissa rounds up
  assertEquals(f32ToF16Bits(2 ** -25), 0); // half of the smallest subnormal: tie to even (zero)
  assertEquals(f32ToF16Bits(1.5 * 2 ** -24), 2); // subnormal tie rounds to even
  assertEquals(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN))), true);
});
