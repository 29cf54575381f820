import {
  LOGPROBS_STAT_FIELDS,
  logprobsBackward,
  logprobsBlockStats,
  logprobsForward,
  logprobsMerge,
  NO_TARGET,
} from "../../kernels/logprobs.ts";
import {
  logprobsBackwardRef,
  logprobsBlockStatsRef,
  logprobsForwardRef,
} from "../../kernels/logprobs_ref.ts";
import { assert, assertEquals, assertThrows } from "../asserts.ts";
import { assertClose, GPU_TEST, randn, rng, testGpu, uniform } from "../helpers.ts";
import { FIXTURE_DIR, fixtureTensor, readFixture } from "./fixture_reader.ts";

const SENTINEL = 12345;

/** Random targets in [0, vocab) with every `noTargetEvery`-th row set to NO_TARGET. */
function randomTargets(rows: number, vocab: number, seed: number, noTargetEvery: number): Uint32Array {
  const r = rng(seed);
  return Uint32Array.from(
    { length: rows },
    (_, i) => i % noTargetEvery === 2 ? NO_TARGET : Math.floor(r() * vocab),
  );
}

/**
 * Runs forward then backward on one chunk placed at `rowOffset` inside full-length tensors of `total` rows,
 * and checks every output against the reference (and that rows outside the chunk are left alone).
 */
async function checkChunk(
  logits: Float32Array,
  chunkTargets: Uint32Array,
  vocab: number,
  rowOffset: number,
  what: string,
  atol = 1e-5,
): Promise<void> {
  const gpu = await testGpu();
  const rows = chunkTargets.length;
  const total = rowOffset + rows + 2;
  const targets = new Uint32Array(total).fill(0);
  targets.set(chunkTargets, rowOffset);
  const dlogp = randn(total, 99, 2);
  const tLogits = gpu.upload(logits);
  const tTargets = gpu.upload(targets);
  const lse = gpu.upload(new Float32Array(total).fill(SENTINEL));
  const logp = gpu.upload(new Float32Array(total).fill(SENTINEL));
  const tDlogp = gpu.upload(dlogp);
  const shape = { rows, vocab, rowOffset };
  // The greedy variant writes its own copies, which must agree bit for bit with the plain kernel's.
  const lse2 = gpu.upload(new Float32Array(total).fill(SENTINEL));
  const logp2 = gpu.upload(new Float32Array(total).fill(SENTINEL));
  const greedy = gpu.upload(new Uint32Array(total).fill(SENTINEL));
  gpu.run([
    logprobsForward(gpu, { logits: tLogits, targets: tTargets, lse, logp, ...shape }),
    logprobsForward(gpu, { logits: tLogits, targets: tTargets, lse: lse2, logp: logp2, greedy, ...shape }),
  ]);
  const [gLse, gLogp, gLse2, gLogp2, gGreedy] = (await gpu.readMany([lse, logp, lse2, logp2, greedy])) as [
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Uint32Array,
  ];
  assertEquals([gLse2, gLogp2], [gLse, gLogp], `${what}: the greedy variant's lse and logp`);
  gpu.run([logprobsBackward(gpu, { logits: tLogits, targets: tTargets, lse, dlogp: tDlogp, ...shape })]);
  const gGrad = await gpu.read(tLogits);

  const ref = logprobsForwardRef(logits, chunkTargets, rows, vocab);
  const chunkDlogp = dlogp.subarray(rowOffset, rowOffset + rows);
  const refGrad = logprobsBackwardRef(logits, chunkTargets, chunkDlogp, rows, vocab);
  assertClose(gLse.subarray(rowOffset, rowOffset + rows), ref.lse, `${what}: lse`, atol);
  assertClose(gLogp.subarray(rowOffset, rowOffset + rows), ref.logp, `${what}: logp`, atol);
  assertClose(gGrad, refGrad, `${what}: dlogits`, atol);
  assertEquals([...gGreedy.subarray(rowOffset, rowOffset + rows)], [...ref.greedy], `${what}: greedy`);
  for (let r = 0; r < total; r++) {
    if (r >= rowOffset && r < rowOffset + rows) continue;
    assertEquals(
      [gLse[r], gLogp[r], gGreedy[r]],
      [SENTINEL, SENTINEL, SENTINEL],
      `${what}: row ${r} outside the chunk was written`,
    );
  }
  chunkTargets.forEach((t, r) => {
    if (t !== NO_TARGET) return;
    assertEquals(gLogp[rowOffset + r], 0, `${what}: NO_TARGET row ${r} logp`);
    assert(
      gGrad.subarray(r * vocab, (r + 1) * vocab).every((v) => v === 0),
      `${what}: NO_TARGET row ${r} grad`,
    );
  });
}

/** Each row's first maximal index, as `torch.argmax` returns it. */
function argmaxRows(logits: Float32Array, rows: number, vocab: number): number[] {
  return Array.from({ length: rows }, (_, r) => {
    const row = logits.subarray(r * vocab, (r + 1) * vocab);
    return row.indexOf(row.reduce((m, v) => Math.max(m, v), -Infinity));
  });
}

Deno.test(
  "logprobs: greedy flags the argmax target, the first index among tied maxima",
  GPU_TEST,
  async () => {
    const rows = 13, vocab = 517, rowOffset = 5;
    const logits = uniform(rows * vocab, 21, 4);
    const argmax = argmaxRows(logits, rows, vocab);
    const targets = argmax.map((a, r) => {
      const base = r * vocab;
      switch (r % 5) {
        case 0:
          return a; // the argmax: greedy
        case 1: // two equal maxima, the later one is the target: torch.argmax picks the earlier, not greedy
          logits[base + 300] = logits[base + 400] = 9;
          return 400;
        case 2: // the same tie with the earlier one as target: greedy
          logits[base + 300] = logits[base + 400] = 9;
          return 300;
        case 3:
          return NO_TARGET;
        default:
          return (a + 1) % vocab; // anything else: not greedy
      }
    });
    const chunkTargets = Uint32Array.from(targets);
    const expected = targets.map((_, r) => (r % 5 === 0 || r % 5 === 2 ? 1 : 0));
    assertEquals([...logprobsForwardRef(logits, chunkTargets, rows, vocab).greedy], expected, "reference");
    await checkChunk(logits, chunkTargets, vocab, rowOffset, "greedy ties");
  },
);

for (const [rows, vocab, rowOffset] of [[13, 517, 5], [1, 1000, 3], [13, 1000, 0], [1, 517, 0]]) {
  Deno.test(
    `logprobs: ${rows} rows × vocab ${vocab} at rowOffset ${rowOffset} match the reference`,
    GPU_TEST,
    async () => {
      const logits = randn(rows * vocab, rows + vocab, 4);
      await checkChunk(logits, randomTargets(rows, vocab, vocab, 4), vocab, rowOffset, `${rows}x${vocab}`);
    },
  );
}

Deno.test("logprobs: stable for huge, very negative, tiny and spiked logits", GPU_TEST, async () => {
  const vocab = 1000;
  const noise = randn(vocab, 7, 2);
  const rowsOf: ((j: number) => number)[] = [
    (j) => 200 + noise[j], // exp() alone would overflow f32
    (j) => -1000 + noise[j], // exp() alone would underflow to a zero sum
    (j) => 1e-30 * noise[j], // a uniform softmax: logp = −log(vocab)
    (j) => (j === 17 ? 80 : -80), // one token takes all the mass
    (j) => (j === 17 ? 80 : -80),
  ];
  const logits = new Float32Array(rowsOf.length * vocab);
  rowsOf.forEach((f, r) => {
    for (let j = 0; j < vocab; j++) logits[r * vocab + j] = f(j);
  });
  const targets = new Uint32Array([3, 999, 500, 17, 18]);
  await checkChunk(logits, targets, vocab, 2, "extreme logits", 1e-4);
});

Deno.test("logprobs: a full Llama-3 vocabulary (128,256) row", GPU_TEST, async () => {
  const vocab = 128256;
  const logits = randn(2 * vocab, 5, 8);
  const [argmax] = argmaxRows(logits, 1, vocab);
  await checkChunk(logits, new Uint32Array([argmax, 0]), vocab, 1, "vocab 128256", 1e-4);
});

Deno.test("logprobs: reproduces the fixture's token log-probs chunk by chunk", GPU_TEST, async () => {
  const gpu = await testGpu();
  const fx = await readFixture(new URL("expected.safetensors", FIXTURE_DIR));
  const logits = fixtureTensor(fx, "sft.logits").data as Float32Array;
  const ids = fixtureTensor(fx, "sft.input_ids").data;
  const expected = fixtureTensor(fx, "sft.token_logps").data;
  const [B, T, vocab] = fixtureTensor(fx, "sft.logits").shape;
  const targets = new Uint32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) targets[b * T + t] = t + 1 < T ? ids[b * T + t + 1] : NO_TARGET;
  }
  const tTargets = gpu.upload(targets), lse = gpu.tensor(B * T), logp = gpu.tensor(B * T);
  const split = 20; // two chunks, the second one starting mid-sequence
  gpu.run([
    logprobsForward(gpu, {
      logits: gpu.upload(logits.slice(0, split * vocab)),
      targets: tTargets,
      lse,
      logp,
      rows: split,
      vocab,
      rowOffset: 0,
    }),
    logprobsForward(gpu, {
      logits: gpu.upload(logits.slice(split * vocab)),
      targets: tTargets,
      lse,
      logp,
      rows: B * T - split,
      vocab,
      rowOffset: split,
    }),
  ]);
  const got = await gpu.read(logp);
  const gotPredicted = new Float32Array(B * (T - 1));
  for (let b = 0; b < B; b++) {
    gotPredicted.set(got.subarray(b * T, b * T + T - 1), b * (T - 1));
    assertEquals(got[b * T + T - 1], 0, `last position of sequence ${b}`);
  }
  assertClose(gotPredicted, expected, "fixture token_logps", 2e-5);
});

Deno.test("logprobs reference: its gradient matches finite differences of Σ dlogp·logp", () => {
  const rows = 3, vocab = 7, h = 1e-6;
  const logits = Float64Array.from(randn(rows * vocab, 11, 3));
  const targets = new Uint32Array([4, NO_TARGET, 0]);
  const dlogp = [0.7, -1.3, -2.1];
  const objective = (x: Float64Array) =>
    logprobsForwardRef(x, targets, rows, vocab).logp.reduce((s, v, r) => s + dlogp[r] * v, 0);
  const analytic = logprobsBackwardRef(logits, targets, dlogp, rows, vocab);
  const numeric = logits.map((_, i) => {
    const up = logits.slice(), down = logits.slice();
    up[i] += h;
    down[i] -= h;
    return (objective(up) - objective(down)) / (2 * h);
  });
  assertClose(analytic, numeric, "dlogits vs finite differences", 1e-7);
});

Deno.test("logprobs: an out-of-range target poisons its row with NaN", GPU_TEST, async () => {
  const gpu = await testGpu();
  const vocab = 33;
  const logits = gpu.upload(randn(2 * vocab, 3));
  const targets = gpu.upload(new Uint32Array([vocab, 1])), lse = gpu.tensor(2), logp = gpu.tensor(2);
  const dlogp = gpu.upload(new Float32Array([1, 1]));
  const shape = { rows: 2, vocab, rowOffset: 0 };
  gpu.run([
    logprobsForward(gpu, { logits, targets, lse, logp, ...shape }),
    logprobsBackward(gpu, { logits, targets, lse, dlogp, ...shape }),
  ]);
  const greedy = gpu.tensor(2, "u32");
  gpu.run([
    logprobsForward(gpu, { logits, targets, lse: gpu.tensor(2), logp: gpu.tensor(2), greedy, ...shape }),
  ]);
  assertEquals((await gpu.read(greedy))[0], 0, "an out-of-range target is never greedy");
  const [gLogp, gGrad] = (await gpu.readMany([logp, logits])) as Float32Array[];
  assert(Number.isNaN(gLogp[0]) && Number.isFinite(gLogp[1]), `logp ${gLogp}`);
  assert(gGrad.subarray(0, vocab).every(Number.isNaN), "grad of the bad row");
  assert(gGrad.subarray(vocab).every(Number.isFinite), "grad of the good row");
});

Deno.test(
  "logprobs: tensors too short or of the wrong type are refused with their names",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const logits = gpu.tensor(10 * 8),
      targets = gpu.tensor(10, "u32"),
      lse = gpu.tensor(10),
      logp = gpu.tensor(10);
    const shape = { rows: 10, vocab: 8, rowOffset: 0 };
    assertThrows(
      () => logprobsForward(gpu, { logits, targets, lse, logp, ...shape, rowOffset: 1 }),
      RangeError,
      "targets",
    );
    assertThrows(
      () => logprobsForward(gpu, { logits, targets, lse, logp, ...shape, vocab: 9 }),
      RangeError,
      "logits",
    );
    assertThrows(
      () => logprobsBackward(gpu, { logits, targets: lse, lse, dlogp: logp, ...shape }),
      TypeError,
      "targets",
    );
    assertThrows(
      () => logprobsForward(gpu, { logits, targets, lse, logp, greedy: gpu.tensor(10), ...shape }),
      TypeError,
      "greedy",
    );
    assertThrows(
      () => logprobsForward(gpu, { logits, targets, lse, logp, greedy: gpu.tensor(9, "u32"), ...shape }),
      RangeError,
      "greedy",
    );
    assertThrows(
      () => logprobsForward(gpu, { logits, targets, lse, logp, greedy: targets, ...shape }),
      RangeError,
      '"greedy" and "targets"',
    );
  },
);

/** Columns [c0, c0 + cols) of a [rows, vocab] array, as one block's own [rows, cols] array. */
function columns(x: Float32Array, rows: number, vocab: number, c0: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) out.set(x.subarray(r * vocab + c0, r * vocab + c0 + cols), r * cols);
  return out;
}

for (const [rows, vocab, blockColumns, rowOffset] of [[13, 517, 130, 5], [3, 1000, 999, 2], [5, 300, 7, 0]]) {
  Deno.test(
    `logprobs: ${rows} rows × vocab ${vocab} in blocks of ${blockColumns} columns give the whole row's results`,
    GPU_TEST,
    async () => {
      const gpu = await testGpu();
      const logits = randn(rows * vocab, rows * vocab, 4);
      const blocks = Math.ceil(vocab / blockColumns);
      // A tie across two blocks (the earlier one wins), targets in the first, last and middle blocks.
      logits[vocab + 1] = logits[vocab + vocab - 1] = 50;
      const chunkTargets = randomTargets(rows, vocab, vocab + 1, 4);
      chunkTargets[0] = vocab - 1;
      chunkTargets[1] = 1;
      const total = rowOffset + rows + 1;
      const targets = new Uint32Array(total);
      targets.set(chunkTargets, rowOffset);
      const dlogp = randn(total, 5, 2);
      const tTargets = gpu.upload(targets), tDlogp = gpu.upload(dlogp);
      const stats = gpu.tensor(rows * blocks * LOGPROBS_STAT_FIELDS, "f32", "stats");
      const lse = gpu.upload(new Float32Array(total).fill(SENTINEL));
      const logp = gpu.upload(new Float32Array(total).fill(SENTINEL));
      const greedy = gpu.upload(new Uint32Array(total).fill(SENTINEL));
      const parts = Array.from({ length: blocks }, (_, b) => {
        const c0 = b * blockColumns, cols = Math.min(blockColumns, vocab - c0);
        return { c0, cols, host: columns(logits, rows, vocab, c0, cols) };
      });
      const tensors = parts.map((p) => gpu.upload(p.host));
      gpu.run([
        ...parts.map((p, b) =>
          logprobsBlockStats(gpu, {
            logits: tensors[b],
            targets: tTargets,
            stats,
            rows,
            cols: p.cols,
            rowOffset,
            firstColumn: p.c0,
            block: b,
            blocks,
          })
        ),
        logprobsMerge(gpu, {
          stats,
          targets: tTargets,
          lse,
          logp,
          greedy,
          rows,
          rowOffset,
          blocks,
          blockColumns,
          vocabSize: vocab,
        }),
      ]);
      const gStats = await gpu.read(stats);
      parts.forEach((p, b) => {
        const ref = logprobsBlockStatsRef(p.host, chunkTargets, rows, p.cols, p.c0);
        const field = (f: number) =>
          Array.from({ length: rows }, (_, r) => gStats[(r * blocks + b) * LOGPROBS_STAT_FIELDS + f]);
        assertClose(field(0), ref.max, `block ${b} max`);
        assertClose(field(1), ref.sum, `block ${b} sum`, 1e-4);
        assertClose(field(2), ref.target, `block ${b} target logit`);
        const argmax = field(3).map((v) => new Uint32Array(new Float32Array([v]).buffer)[0]);
        assertEquals(argmax, [...ref.argmax], `block ${b} argmax`);
      });
      const ref = logprobsForwardRef(logits, chunkTargets, rows, vocab);
      const [gLse, gLogp, gGreedy] = (await gpu.readMany([lse, logp, greedy])) as [
        Float32Array,
        Float32Array,
        Uint32Array,
      ];
      assertClose(gLse.subarray(rowOffset, rowOffset + rows), ref.lse, "merged lse");
      assertClose(gLogp.subarray(rowOffset, rowOffset + rows), ref.logp, "merged logp");
      assertEquals([...gGreedy.subarray(rowOffset, rowOffset + rows)], [...ref.greedy], "merged greedy");
      assertEquals([gLse[0], gLogp[total - 1]], [rowOffset ? SENTINEL : gLse[0], SENTINEL], "rows outside");
      // Backward block by block, each from the whole row's lse.
      gpu.run(parts.map((p, b) =>
        logprobsBackward(gpu, {
          logits: tensors[b],
          targets: tTargets,
          lse,
          dlogp: tDlogp,
          rows,
          vocab: p.cols,
          rowOffset,
          firstColumn: p.c0,
          vocabSize: vocab,
        })
      ));
      const refGrad = Float32Array.from(
        logprobsBackwardRef(logits, chunkTargets, dlogp.subarray(rowOffset, rowOffset + rows), rows, vocab),
      );
      const grads = await gpu.readMany(tensors);
      parts.forEach((p, b) =>
        assertClose(
          grads[b] as Float32Array,
          columns(refGrad, rows, vocab, p.c0, p.cols),
          `block ${b} dlogits`,
        )
      );
    },
  );
}

Deno.test("logprobs: block arguments that do not cover the vocabulary are refused", GPU_TEST, async () => {
  const gpu = await testGpu();
  const t = gpu.tensor(64, "u32"), f = gpu.tensor(4 * 3 * LOGPROBS_STAT_FIELDS);
  const base = { stats: f, targets: t, lse: gpu.tensor(4), logp: gpu.tensor(4), rows: 4, rowOffset: 0 };
  assertThrows(
    () => logprobsMerge(gpu, { ...base, blocks: 3, blockColumns: 10, vocabSize: 31 }),
    RangeError,
    "do not cover",
  );
  assertThrows(
    () =>
      logprobsBackward(gpu, {
        logits: gpu.tensor(40),
        targets: t,
        lse: gpu.tensor(4),
        dlogp: gpu.tensor(4),
        rows: 4,
        vocab: 10,
        rowOffset: 0,
        firstColumn: 25,
        vocabSize: 30,
      }),
    RangeError,
    "run past",
  );
});
