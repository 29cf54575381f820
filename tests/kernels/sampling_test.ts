import type { Gpu, Tensor } from "../../gpu/runtime.ts";
import { copy } from "../../kernels/elementwise.ts";
import {
  packSamplingParams,
  SAMPLE_PARAMS,
  sampleDispatch,
  samplingParams,
  type SamplingSettings,
  SEEN_IN_PROMPT,
  seenFromTokens,
  WGSL_SAMPLING_RNG,
} from "../../kernels/sampling.ts";
import {
  exponentialRef,
  keptSetRef,
  pcg4d,
  sampleRef,
  sampleStepRef,
  uniformRef,
} from "../../kernels/sampling_ref.ts";
import { assert, assertEquals, assertThrows } from "../asserts.ts";
import { GPU_TEST, randn, rng, testGpu, uniform } from "../helpers.ts";

interface SampleRun {
  out: Uint32Array;
  counter: Uint32Array;
  seen: Uint32Array;
  /** The logits after the kernel: processed scores, −inf where filtered. */
  scores: Float32Array;
}

/** One dispatch over `settings.length` rows of `logits`, from the given `seen` counts and counters. */
async function sampleOnce(
  logits: Float32Array,
  settings: readonly SamplingSettings[],
  seen?: Uint32Array,
  counter?: Uint32Array,
): Promise<SampleRun> {
  const gpu = await testGpu();
  const rows = settings.length, vocab = logits.length / rows;
  const t = {
    logits: gpu.upload(logits),
    params: gpu.upload(packSamplingParams(settings)),
    seen: gpu.upload(seen ?? new Uint32Array(rows * vocab)),
    counter: gpu.upload(counter ?? new Uint32Array(rows)),
    out: gpu.upload(new Uint32Array(rows).fill(0xdead)),
  };
  gpu.run(sampleDispatch(gpu, { ...t, rows, vocab }));
  const [out, c, s, scores] = await gpu.readMany([t.out, t.counter, t.seen, t.logits]);
  return {
    out: out as Uint32Array,
    counter: c as Uint32Array,
    seen: s as Uint32Array,
    scores: scores as Float32Array,
  };
}

/** Logits on a grid of `step`, so that many values tie. */
function quantized(n: number, seed: number, scale: number, step: number): Float32Array {
  return randn(n, seed, scale).map((v) => Math.round(v / step) * step);
}

Deno.test("sampling: greedy picks the argmax, the lowest index among ties", GPU_TEST, async () => {
  const vocab = 1000;
  const logits = uniform(4 * vocab, 1, 3);
  logits[5] = logits[700] = 9; // row 0: a tie at the top
  logits.fill(0.25, vocab, 2 * vocab); // row 1: everything ties
  logits[3 * vocab - 1] = 9; // row 2: the last index
  logits[3 * vocab + 10] = logits[3 * vocab + 11] = 9; // row 3: greedy through doSample: false
  const settings = [{ temperature: 0 }, { temperature: 0 }, { temperature: 0, topK: 5 }, {
    temperature: 0.7,
    doSample: false,
    topP: 0.1,
  }];
  const counter = Uint32Array.of(0, 41, 0xffffffff, 7);
  const got = await sampleOnce(logits, settings, undefined, counter);
  assertEquals([...got.out], [5, 0, 999, 10]);
  assertEquals([...got.counter], [1, 42, 0, 8], "counters advance by one (and wrap)");
  got.out.forEach((tok, r) => {
    assertEquals(got.seen[r * vocab + tok], 1, `row ${r}: the pick is recorded in seen`);
    const row = logits.subarray(r * vocab, (r + 1) * vocab);
    assertEquals(sampleRef(row, new Uint32Array(vocab), settings[r], counter[r]).token, tok, `row ${r} ref`);
  });
  assertEquals(got.seen.reduce((a, b) => a + b, 0), 4, "nothing else in seen changes");
  assertEquals(got.scores, logits, "greedy rows without penalties keep their logits");
});

Deno.test(
  "sampling: the repetition, frequency and presence penalties move the argmax",
  GPU_TEST,
  async () => {
    const vocab = 16, rows = 6;
    const logits = new Float32Array(rows * vocab);
    const seen = new Uint32Array(rows * vocab);
    const settings: SamplingSettings[] = [
      { temperature: 0, repetitionPenalty: 1.5 }, // 2 / 1.5 < 1.5: token 7 wins
      { temperature: 0, repetitionPenalty: 1.5 }, // -0.5 · 1.5 < -0.6: token 7 wins
      { temperature: 0, repetitionPenalty: 1 }, // no penalty: token 3 stays
      { temperature: 0, repetitionPenalty: 1.5 }, // only the runner-up was seen: token 3 stays
      { temperature: 0, frequencyPenalty: 0.3 }, // 2 - 2·0.3 < 1.5
      { temperature: 0, presencePenalty: 0.6 }, // 2 - 0.6 < 1.5
    ];
    for (let r = 0; r < rows; r++) {
      const base = r * vocab;
      if (r === 1) {
        logits.fill(-1, base, base + vocab);
        logits[base + 3] = -0.5;
        logits[base + 7] = -0.6;
      } else {
        logits[base + 3] = 2;
        logits[base + 7] = 1.5;
      }
      seen[base + (r === 3 ? 7 : 3)] = r === 4 ? 2 : 1;
    }
    const got = await sampleOnce(logits, settings, seen.slice());
    assertEquals([...got.out], [7, 7, 3, 3, 7, 7]);
    assertEquals(got.scores[3], Math.fround(2 / 1.5), "HF divides positive seen logits");
    assertEquals(got.scores[vocab + 3], Math.fround(-0.5 * 1.5), "HF multiplies negative seen logits");
    settings.forEach((s, r) => {
      const ref = sampleRef(logits.subarray(r * vocab, (r + 1) * vocab), seen.subarray(r * vocab), s, 0);
      assertEquals(got.out[r], ref.token, `row ${r} against the reference`);
    });
  },
);

Deno.test(
  "sampling: frequency and presence penalties count the output only; the repetition penalty the prompt too",
  GPU_TEST,
  async () => {
    // Awkward vocabulary; token 3 leads, token 7 is the runner-up. Rows differ in where token 3 was seen.
    const vocab = 301, rows = 6;
    const logits = new Float32Array(rows * vocab);
    const seen = new Uint32Array(rows * vocab);
    const settings: SamplingSettings[] = [
      { temperature: 0, frequencyPenalty: 2, presencePenalty: 2 }, // in the prompt only: no additive penalty
      { temperature: 0, frequencyPenalty: 0.3 }, // in the prompt and twice in the output: 2 − 0.6 < 1.5
      { temperature: 0, presencePenalty: 0.6 }, // once in the output: 2 − 0.6 < 1.5
      { temperature: 0, repetitionPenalty: 1.5 }, // in the prompt only: 2 / 1.5 < 1.5
      { temperature: 0, frequencyPenalty: -2 }, // negative penalties favour the runner-up seen in the output
      { temperature: 0, repetitionPenalty: 1.5, presencePenalty: 1 }, // prompt-only runner-up: 1.5/1.5
    ];
    const where: [number, number][] = [
      [3, SEEN_IN_PROMPT],
      [3, SEEN_IN_PROMPT + 2],
      [3, 1],
      [3, SEEN_IN_PROMPT],
      [7, 1],
      [7, SEEN_IN_PROMPT],
    ];
    for (let r = 0; r < rows; r++) {
      logits[r * vocab + 3] = 2;
      logits[r * vocab + 7] = 1.5;
      seen[r * vocab + where[r][0]] = where[r][1];
    }
    const got = await sampleOnce(logits, settings, seen.slice());
    assertEquals([...got.out], [3, 7, 7, 7, 7, 3]);
    assertEquals(got.scores[3], 2, "a prompt token gets no frequency or presence penalty");
    assertEquals(got.scores[vocab + 3], Math.fround(2 - 0.6), "frequency · output count");
    settings.forEach((s, r) => {
      const ref = sampleRef(logits.subarray(r * vocab, (r + 1) * vocab), seen.subarray(r * vocab), s, 0);
      assertEquals(got.out[r], ref.token, `row ${r} against the reference`);
      assertEquals(
        [...got.scores.subarray(r * vocab, (r + 1) * vocab)],
        [...ref.values],
        `row ${r}'s scores`,
      );
    });
  },
);

/** Compares the GPU's filtered scores with the reference's processed values and kept set, row by row. */
function checkKeptSets(
  what: string,
  logits: Float32Array,
  settings: readonly SamplingSettings[],
  got: SampleRun,
): number[] {
  const vocab = logits.length / settings.length;
  return settings.map((s, r) => {
    const row = logits.subarray(r * vocab, (r + 1) * vocab);
    const ref = sampleRef(row, new Uint32Array(vocab), s, 0);
    const { kept, borderline } = keptSetRef(ref.values, s, 1e-6);
    const scores = got.scores.subarray(r * vocab, (r + 1) * vocab);
    let keptCount = 0, unsure = 0;
    for (let i = 0; i < vocab; i++) {
      const gpuKept = scores[i] !== -Infinity;
      keptCount += gpuKept ? 1 : 0;
      if (gpuKept) assertEquals(scores[i], ref.values[i], `${what} row ${r} token ${i}: processed value`);
      if (borderline[i]) unsure++;
      else assertEquals(gpuKept, kept[i] === 1, `${what} row ${r} token ${i}: kept (${JSON.stringify(s)})`);
    }
    assert(unsure <= 2, `${what} row ${r}: ${unsure} borderline tokens; the data should avoid knife edges`);
    assert(scores[got.out[r]] !== -Infinity, `${what} row ${r}: sampled token ${got.out[r]} was filtered`);
    return keptCount;
  });
}

Deno.test(
  "sampling: top-k / top-p / min-p keep the reference's set (ties, vocab 1000)",
  GPU_TEST,
  async () => {
    const settings: SamplingSettings[] = [
      { topK: 50 },
      { temperature: 0.7, topP: 0.8 },
      { temperature: 1.3, topK: 100, topP: 0.6 },
      { minP: 0.05 },
      { topK: 40, topP: 0.95, minP: 0.01 },
      { temperature: 0.5, topP: 0 },
      { topK: 1000 },
      { topK: 1 },
    ];
    const vocab = 1000;
    const logits = quantized(settings.length * vocab, 3, 4, 0.25);
    const got = await sampleOnce(logits, settings);
    const counts = checkKeptSets("vocab 1000", logits, settings, got);
    assert(counts[0] > 50, `top-k 50 on tied values should keep the whole tie group, kept ${counts[0]}`);
    assertEquals(counts[6], vocab, "top-k ≥ vocab keeps everything");
    assert(counts[7] >= 1 && counts[5] >= 1, "at least one token survives");
  },
);

Deno.test("sampling: kept sets on peaked rows of 32,000 and 152,064 tokens", GPU_TEST, async () => {
  const peaked = (vocab: number, rows: number, seed: number) => {
    const x = uniform(rows * vocab, seed, 1);
    const r = rng(seed);
    for (let row = 0; row < rows; row++) {
      // A few dominant tokens, two of them tied, as a language model's next-token distribution.
      for (let j = 0; j < 12; j++) x[row * vocab + Math.floor(r() * vocab)] = 12 - j * 0.75;
      x[row * vocab + 17] = x[row * vocab + 18] = 9.5;
    }
    return x;
  };
  const mid: SamplingSettings[] = [
    { topP: 0.9 },
    { topK: 5, topP: 0.99, temperature: 0.8 },
    { topK: 7 },
    { temperature: 1.5, topP: 0.97, minP: 0.001 },
  ];
  const midLogits = peaked(32000, mid.length, 5);
  checkKeptSets("vocab 32000", midLogits, mid, await sampleOnce(midLogits, mid));
  const big: SamplingSettings[] = [{ temperature: 0.9, topK: 50, topP: 0.9, seed: 9 }];
  const bigLogits = peaked(152064, 1, 6);
  checkKeptSets("vocab 152064", bigLogits, big, await sampleOnce(bigLogits, big));
});

/** Runs `steps` dispatches in one submission, each on fresh logits, recording every step's picks. */
async function sampleSteps(
  gpu: Gpu,
  pristine: Float32Array,
  settings: readonly SamplingSettings[],
  prompts: readonly number[][],
  counter0: Uint32Array,
  steps: number,
): Promise<{ picks: Uint32Array; seen: Uint32Array; counter: Uint32Array }> {
  const rows = settings.length, vocab = pristine.length / (rows * steps);
  const src = gpu.upload(pristine);
  const logits = gpu.tensor(rows * vocab);
  const params = gpu.upload(packSamplingParams(settings));
  const seen = gpu.upload(new Uint32Array(rows * vocab).fill(5)); // stale counts the prompts must clear
  const counter = gpu.upload(counter0);
  const out = gpu.tensor(rows, "u32");
  const picks = gpu.tensor(rows * steps, "u32");
  const prompt = gpu.upload(Uint32Array.from(prompts.flat()));
  let offset = 0;
  const dispatches = prompts.flatMap((ids, row) => {
    const d = seenFromTokens(gpu, {
      seen,
      tokens: prompt,
      tokenOffset: offset,
      count: ids.length,
      row,
      vocab,
    });
    offset += ids.length;
    return d;
  });
  for (let s = 0; s < steps; s++) {
    dispatches.push(copy(gpu, { src, dst: logits, n: rows * vocab, srcOffset: s * rows * vocab }));
    dispatches.push(...sampleDispatch(gpu, { logits, params, seen, counter, out, rows, vocab }));
    dispatches.push(copy(gpu, { src: out, dst: picks, n: rows, dstOffset: s * rows }));
  }
  gpu.run(dispatches);
  const [p, sn, c] = (await gpu.readMany([picks, seen, counter])) as Uint32Array[];
  return { picks: p, seen: sn, counter: c };
}

Deno.test("sampling: a fixed seed reproduces the reference's tokens step after step", GPU_TEST, async () => {
  const gpu = await testGpu();
  const vocab = 777, steps = 40;
  const settings: SamplingSettings[] = [
    { temperature: 1, seed: 1 },
    { temperature: 0.7, topP: 0.9, seed: 0xdeadbeef },
    { temperature: 1.2, topK: 20, seed: 7, stream: 3 },
    { temperature: 0.9, topK: 50, topP: 0.95, repetitionPenalty: 1.3, seed: 7, stream: 4 },
    { temperature: 0, repetitionPenalty: 1.2 },
    { temperature: 1, minP: 0.02, frequencyPenalty: 0.4, presencePenalty: 0.3, seed: 11 },
    { temperature: 0.6, topP: 0.5, repetitionPenalty: 0.8, seed: 2 ** 32 - 1 },
    { temperature: 2, seed: 123 },
  ];
  const rows = settings.length;
  const pristine = randn(steps * rows * vocab, 8, 3);
  const r = rng(12);
  const prompts = settings.map((_, i) => Array.from({ length: 3 + i * 5 }, () => Math.floor(r() * vocab)));
  const counter0 = Uint32Array.of(0, 1, 7, 1000, 0xfffffffe, 3, 0, 99);
  const got = await sampleSteps(gpu, pristine, settings, prompts, counter0, steps);

  const seen = new Uint32Array(rows * vocab);
  prompts.forEach((ids, row) => ids.forEach((id) => seen[row * vocab + id] |= SEEN_IN_PROMPT));
  const counter = counter0.slice();
  const knifeEdges: string[] = [];
  for (let s = 0; s < steps; s++) {
    const block = pristine.subarray(s * rows * vocab, (s + 1) * rows * vocab);
    const picks = sampleStepRef(block, settings, seen, counter, vocab);
    picks.forEach((pick, row) => {
      const gpuToken = got.picks[s * rows + row];
      if (gpuToken === pick.token) return;
      // Only a tie within float rounding of two Gumbel keys may differ between the CPU and a GPU's log().
      assert(pick.margin < 1e-4, `step ${s} row ${row}: GPU ${gpuToken}, reference ${pick.token}`);
      knifeEdges.push(`${s}/${row}`);
      seen[row * vocab + pick.token]--;
      seen[row * vocab + gpuToken]++;
    });
  }
  assert(knifeEdges.length <= 2, `too many near-ties: ${knifeEdges}`);
  assertEquals(got.counter, counter, "counters");
  assertEquals(got.seen, seen, "seen: the prompt's marks plus every pick's count");
  const distinct = new Set(got.picks.filter((_, i) => i % rows === 0));
  assert(distinct.size > 20, `temperature 1 over 777 tokens should rarely repeat, got ${distinct.size}/40`);
});

/** χ² critical value at significance 0.001 (Wilson–Hilferty). */
function chiSquareCritical(df: number): number {
  const z = 3.0902;
  return df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
}

function chiSquare(observed: readonly number[], expected: readonly number[]): number {
  return observed.reduce((sum, o, i) => sum + (o - expected[i]) ** 2 / expected[i], 0);
}

Deno.test("sampling: draws follow the kept softmax (χ² over 4,000 draws per setting)", GPU_TEST, async () => {
  const vocab = 6, draws = 4000;
  const row = Float32Array.of(1.2, 0.9, 0.4, 0, -0.5, -1.5);
  // A: one sequence over 4,000 consecutive steps. B: 4,000 seeds at step 0.
  const a: SamplingSettings = { temperature: 1, topP: 0.9, seed: 2024 };
  const settings = [
    ...Array.from({ length: draws }, () => a),
    ...Array.from({ length: draws }, (_, i) => ({ temperature: 0.5, topK: 3, seed: i })),
  ];
  const logits = new Float32Array(settings.length * vocab);
  for (let r = 0; r < settings.length; r++) logits.set(row, r * vocab);
  const counter = Uint32Array.from({ length: settings.length }, (_, i) => (i < draws ? i : 0));
  const got = await sampleOnce(logits, settings, undefined, counter);

  for (const [name, first, s] of [["top-p 0.9", 0, a], ["top-k 3, T 0.5", draws, settings[draws]]] as const) {
    const values = Float64Array.from(row, (v) => v / (s.temperature ?? 1));
    const { kept } = keptSetRef(Float32Array.from(values), s);
    const weights = Array.from(values, (v, i) => (kept[i] ? Math.exp(v) : 0));
    const total = weights.reduce((x, y) => x + y, 0);
    const counts = new Array(vocab).fill(0);
    for (let d = 0; d < draws; d++) counts[got.out[first + d]]++;
    const keptIds = [...kept.keys()].filter((i) => kept[i]);
    assert(keptIds.length >= 3, `${name}: the test needs several kept tokens`);
    counts.forEach((c, i) => assert(kept[i] || c === 0, `${name}: filtered token ${i} drawn ${c} times`));
    const stat = chiSquare(keptIds.map((i) => counts[i]), keptIds.map((i) => (draws * weights[i]) / total));
    const bound = chiSquareCritical(keptIds.length - 1);
    assert(stat < bound, `${name}: χ² ${stat.toFixed(2)} ≥ ${bound.toFixed(2)}; counts ${counts}`);
  }

  // Consecutive steps of one seed are independent: χ² of the 2,000 (even, odd) pairs' contingency table.
  const ids = [0, 1, 2, 3];
  const table = ids.map(() => ids.map(() => 0));
  for (let d = 0; d + 1 < draws; d += 2) table[got.out[d]][got.out[d + 1]]++;
  const rowSum = table.map((r) => r.reduce((x, y) => x + y, 0));
  const colSum = ids.map((j) => table.reduce((x, r) => x + r[j], 0));
  const pairs = draws / 2;
  const stat = chiSquare(table.flat(), ids.flatMap((i) => ids.map((j) => (rowSum[i] * colSum[j]) / pairs)));
  assert(stat < chiSquareCritical(9), `consecutive draws look dependent: χ² ${stat.toFixed(2)}`);
});

Deno.test("sampling: pcg4d and the uniform are bit-exact in WGSL and TypeScript", GPU_TEST, async () => {
  const gpu = await testGpu();
  const n = 4096;
  const inputs = Uint32Array.from({ length: 4 * n }, (_, i) => (Math.imul(i, 2654435761) ^ (i >>> 3)) >>> 0);
  inputs.set([0, 0, 0, 0, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]);
  const code = `${WGSL_SAMPLING_RNG}
@group(0) @binding(0) var<storage, read> input: array<vec4u>;
@group(0) @binding(1) var<storage, read_write> words: array<vec4u>;
@group(0) @binding(2) var<storage, read_write> uniforms: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x >= arrayLength(&uniforms)) { return; }
  let w = pcg4d(input[g.x]);
  words[g.x] = w;
  uniforms[g.x] = uniform_open(w.x);
}`;
  const words = gpu.tensor(4 * n, "u32"), uniforms = gpu.tensor(n);
  gpu.run([gpu.dispatch(code, [gpu.upload(inputs), words, uniforms], [n / 64, 1, 1])]);
  const [w, u] = (await gpu.readMany([words, uniforms])) as [Uint32Array, Float32Array];
  for (let i = 0; i < n; i++) {
    const [a, b, c, d] = inputs.subarray(4 * i, 4 * i + 4);
    assertEquals([...w.subarray(4 * i, 4 * i + 4)], pcg4d(a, b, c, d), `pcg4d of input ${i}`);
    assertEquals(u[i], uniformRef(c, d, b, a), `uniform of input ${i}`);
  }
});

Deno.test(
  "sampling: the exponential variate keeps its relative precision up to u → 1",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    // Every cell near both ends, and a sweep between: the uniforms uniform_open can return.
    const cells = [
      ...Array.from({ length: 300 }, (_, k) => k),
      ...Array.from({ length: 300 }, (_, k) => 2 ** 23 - 1 - k),
      ...Array.from({ length: 2000 }, (_, k) => Math.floor((k + 0.5) * (2 ** 23 / 2000))),
    ];
    const us = Float32Array.from(cells, (k) => (k + 0.5) / 2 ** 23);
    const code = `${WGSL_SAMPLING_RNG}
@group(0) @binding(0) var<storage, read> u: array<f32>;
@group(0) @binding(1) var<storage, read_write> e: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < arrayLength(&e)) { e[g.x] = exponential(u[g.x]); }
}`;
    const e = gpu.tensor(us.length);
    gpu.run([gpu.dispatch(code, [gpu.upload(us), e], [Math.ceil(us.length / 64), 1, 1])]);
    const got = await gpu.read(e);
    us.forEach((u, i) => {
      const want = exponentialRef(u);
      const rel = Math.abs(got[i] - want) / want;
      assert(
        rel < 1e-6,
        `exponential(${u}) = ${got[i]}, expected ${want} (relative error ${rel.toExponential(2)})`,
      );
    });
  },
);

Deno.test("sampling: seenFromTokens marks a prompt in one row", GPU_TEST, async () => {
  const gpu = await testGpu();
  const vocab = 300, rows = 3;
  const seen = gpu.upload(new Uint32Array(rows * vocab).fill(7));
  const tokens = gpu.upload(Uint32Array.of(9, 9, 9, 9, 9, 4, 4, 299, 300, 0xffffffff, 17, 4));
  const args = { seen, tokens, tokenOffset: 5, count: 7, row: 1, vocab };
  gpu.run(seenFromTokens(gpu, args));
  const once = await gpu.read(seen);
  gpu.run(seenFromTokens(gpu, { ...args, clear: false }));
  const twice = await gpu.read(seen);
  const expected = new Uint32Array(rows * vocab).fill(7);
  expected.fill(0, vocab, 2 * vocab);
  expected[vocab + 4] = SEEN_IN_PROMPT;
  expected[vocab + 299] = SEEN_IN_PROMPT;
  expected[vocab + 17] = SEEN_IN_PROMPT;
  assertEquals(
    once,
    expected,
    "cleared row 1 holds the prompt's marks; ids ≥ vocab are skipped; rows 0, 2 untouched",
  );
  assertEquals(twice, expected, "clear: false marks again, counting nothing twice");
  gpu.run(seenFromTokens(gpu, { ...args, clear: false, count: 0 }));
  gpu.write(seen, Uint32Array.of(3), vocab + 4);
  gpu.run(seenFromTokens(gpu, { ...args, clear: false }));
  assertEquals(
    (await gpu.read(seen))[vocab + 4],
    SEEN_IN_PROMPT + 3,
    "an output count is kept beside the mark",
  );
  gpu.run(seenFromTokens(gpu, { ...args, count: 0 }));
  assert((await gpu.read(seen)).subarray(vocab, 2 * vocab).every((v) => v === 0), "count 0 only clears");
});

Deno.test("sampling: bad settings and tensors are refused, naming the field", GPU_TEST, async () => {
  const gpu = await testGpu();
  assertThrows(() => samplingParams({ topP: 1.5 }), RangeError, '"topP" must be in [0, 1], got 1.5');
  assertThrows(() => samplingParams({ temperature: -1 }), RangeError, '"temperature"');
  assertThrows(() => samplingParams({ topK: 2.5 }), RangeError, '"topK"');
  assertThrows(() => samplingParams({ repetitionPenalty: 0 }), RangeError, '"repetitionPenalty"');
  assertThrows(() => samplingParams({ seed: -3 }), RangeError, '"seed" must be an integer in [0, 2^32)');
  assertThrows(() => packSamplingParams([{}, { minP: NaN }]), RangeError, 'row 1: "minP"');
  const row = samplingParams({ seed: 0xdeadbeef, stream: 5, temperature: 0.5 });
  const bits = new Uint32Array(row.buffer);
  assertEquals([bits[SAMPLE_PARAMS.seed], bits[SAMPLE_PARAMS.stream], row[0]], [0xdeadbeef, 5, 0.5]);

  const rows = 2, vocab = 10;
  const t: Record<string, Tensor> = {
    logits: gpu.tensor(rows * vocab),
    params: gpu.tensor(rows * SAMPLE_PARAMS.stride),
    seen: gpu.tensor(rows * vocab, "u32"),
    counter: gpu.tensor(rows, "u32"),
    out: gpu.tensor(rows, "u32"),
  };
  const args = {
    logits: t.logits,
    params: t.params,
    seen: t.seen,
    counter: t.counter,
    out: t.out,
    rows,
    vocab,
  };
  assertThrows(() => sampleDispatch(gpu, { ...args, seen: gpu.tensor(vocab, "u32") }), RangeError, '"seen"');
  assertThrows(() => sampleDispatch(gpu, { ...args, params: t.counter }), TypeError, '"params"');
  assertThrows(() => sampleDispatch(gpu, { ...args, out: t.counter }), RangeError, '"counter" and "out"');
  assertThrows(() => sampleDispatch(gpu, { ...args, rows: 0 }), RangeError, '"rows"');
  assertThrows(
    () => seenFromTokens(gpu, { seen: t.seen, tokens: t.counter, count: 3, row: 0, vocab }),
    RangeError,
    '"tokens"',
  );
  assertThrows(
    () => seenFromTokens(gpu, { seen: t.seen, tokens: t.counter, count: 1, row: 2, vocab }),
    RangeError,
    '"seen"',
  );
});
