import {
  ATTENTION_EMPTY_ROW_LSE,
  attentionBackward,
  attentionForward,
  attentionTiles,
  type AttentionVariant,
} from "../../kernels/attention.ts";
import {
  chooseTiles,
  EMPTY_ROW_LSE,
  forwardSource,
  MAX_HEAD_DIM,
  sharedBytes,
} from "../../kernels/attention_codegen.ts";
import {
  attentionBackwardRef,
  attentionForwardRef,
  type AttentionRefShape,
} from "../../kernels/attention_ref.ts";
import type { Gpu, Tensor } from "../../gpu/runtime.ts";
import { assert, assertEquals, assertThrows } from "../asserts.ts";
import { assertClose, GPU_TEST, randn, testGpu } from "../helpers.ts";

/** Inputs of one attention call. */
interface Case {
  shape: AttentionRefShape;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  mask: Uint32Array;
  dout: Float32Array;
}

/** Random inputs; `hidden(b, j)` marks padding keys; `qScale` > 1 makes the softmax peaky. */
function makeCase(
  shape: Omit<AttentionRefShape, "scale">,
  seed: number,
  hidden: (b: number, j: number) => boolean = () => false,
  qScale = 1,
): Case {
  const { B, Tq, kvRows, heads, kvHeads, headDim } = shape;
  const mask = new Uint32Array(B * kvRows);
  for (let b = 0; b < B; b++) for (let j = 0; j < kvRows; j++) mask[b * kvRows + j] = hidden(b, j) ? 0 : 1;
  return {
    shape: { ...shape, scale: 1 / Math.sqrt(headDim) },
    q: randn(B * Tq * heads * headDim, seed, qScale),
    k: randn(B * kvRows * kvHeads * headDim, seed + 1),
    v: randn(B * kvRows * kvHeads * headDim, seed + 2),
    mask,
    dout: randn(B * Tq * heads * headDim, seed + 3),
  };
}

/** A training-shaped case: Tq = Tk = kvRows = T, qOffset = 0. */
function trainingCase(
  B: number,
  T: number,
  heads: number,
  kvHeads: number,
  headDim: number,
  seed: number,
  hidden?: (b: number, j: number) => boolean,
  qScale?: number,
): Case {
  return makeCase({ B, Tq: T, Tk: T, kvRows: T, qOffset: 0, heads, kvHeads, headDim }, seed, hidden, qScale);
}

/** Garbage to prove that outputs are overwritten, not accumulated into. */
function filled(gpu: Gpu, n: number, label: string): Tensor {
  return gpu.upload(new Float32Array(n).fill(7.5), label);
}

async function runForward(gpu: Gpu, c: Case, variant: AttentionVariant) {
  const s = c.shape;
  const inputs = { q: gpu.upload(c.q), k: gpu.upload(c.k), v: gpu.upload(c.v), keyMask: gpu.upload(c.mask) };
  const out = filled(gpu, c.q.length, "out");
  const lse = filled(gpu, s.B * s.heads * s.Tq, "lse");
  gpu.run([attentionForward(gpu, { ...s, ...inputs, out, lse, variant })]);
  const [gotOut, gotLse] = await gpu.readMany([out, lse]);
  return { out: gotOut as Float32Array, lse: gotLse as Float32Array };
}

/** Forward (prefill kernel) and backward on the GPU, with the dispatches replayed `runs` times. */
async function runTraining(gpu: Gpu, c: Case, runs = 1) {
  const s = c.shape;
  const q = gpu.upload(c.q), k = gpu.upload(c.k), v = gpu.upload(c.v), keyMask = gpu.upload(c.mask);
  const dout = gpu.upload(c.dout);
  const out = filled(gpu, c.q.length, "out");
  const lse = filled(gpu, s.B * s.heads * s.Tq, "lse");
  const dq = filled(gpu, c.q.length, "dq");
  const dk = filled(gpu, c.k.length, "dk");
  const dv = filled(gpu, c.v.length, "dv");
  const sizes = { B: s.B, heads: s.heads, kvHeads: s.kvHeads, headDim: s.headDim, scale: s.scale };
  const step = [
    attentionForward(gpu, {
      ...sizes,
      q,
      k,
      v,
      out,
      lse,
      keyMask,
      Tq: s.Tq,
      Tk: s.Tk,
      kvRows: s.kvRows,
      qOffset: 0,
    }),
    ...attentionBackward(gpu, { ...sizes, q, k, v, out, lse, dout, keyMask, dq, dk, dv, T: s.Tq }),
  ];
  for (let r = 0; r < runs; r++) gpu.run(step);
  const got = await gpu.readMany([out, lse, dq, dk, dv]);
  const [gOut, gLse, gDq, gDk, gDv] = got as Float32Array[];
  return { out: gOut, lse: gLse, dq: gDq, dk: gDk, dv: gDv };
}

/** lse matches where the row saw a key; rows that saw none hold exactly the documented stand-in. */
function assertLse(got: Float32Array, expected: Float64Array, what: string): void {
  const seen: number[] = [], seenRef: number[] = [];
  expected.forEach((x, n) => {
    if (x === EMPTY_ROW_LSE) {
      assertEquals(
        got[n],
        Math.fround(ATTENTION_EMPTY_ROW_LSE),
        `${what}: lse[${n}] of a row that sees no key`,
      );
    } else {
      seen.push(got[n]);
      seenRef.push(x);
    }
  });
  assertClose(seen, seenRef, `${what}: lse`);
}

function assertForward(got: { out: Float32Array; lse: Float32Array }, c: Case, what: string): void {
  const ref = attentionForwardRef(c.q, c.k, c.v, c.mask, c.shape);
  assertClose(got.out, ref.out, `${what}: out`);
  assertLse(got.lse, ref.lse, what);
}

/** Runs forward and backward on the GPU, checks them against the reference and returns what the GPU gave. */
async function checkTraining(c: Case, what: string): Promise<Awaited<ReturnType<typeof runTraining>>> {
  const gpu = await testGpu();
  const got = await runTraining(gpu, c);
  assertForward(got, c, what);
  const ref = attentionBackwardRef(c.q, c.k, c.v, c.mask, c.dout, c.shape);
  assertClose(got.dq, ref.dq, `${what}: dq`, 2e-5, 2e-4);
  assertClose(got.dk, ref.dk, `${what}: dk`, 2e-5, 2e-4);
  assertClose(got.dv, ref.dv, `${what}: dv`, 2e-5, 2e-4);
  return got;
}

// --- the reference itself, against finite differences -----------------------------------------------

/** Central-difference gradient of L = Σ out · dout with respect to every element of `x`. */
function numericalGradient(c: Case, which: "q" | "k" | "v"): Float64Array {
  const x = Float64Array.from(c[which]);
  const loss = () => {
    const inputs = { q: c.q as ArrayLike<number>, k: c.k as ArrayLike<number>, v: c.v as ArrayLike<number> };
    inputs[which] = x;
    const { out } = attentionForwardRef(inputs.q, inputs.k, inputs.v, c.mask, c.shape);
    return out.reduce((sum, o, n) => sum + o * c.dout[n], 0);
  };
  const grad = new Float64Array(x.length);
  const h = 1e-5;
  for (let n = 0; n < x.length; n++) {
    const x0 = x[n];
    x[n] = x0 + h;
    const up = loss();
    x[n] = x0 - h;
    const down = loss();
    x[n] = x0;
    grad[n] = (up - down) / (2 * h);
  }
  return grad;
}

Deno.test("attention reference: gradients match finite differences (GQA, padding, decode offset)", () => {
  const cases: [string, Case][] = [
    // Item 1's key 0 is padding, so its query 0 sees nothing and must get zero gradients.
    ["training", trainingCase(2, 4, 2, 1, 3, 11, (b, j) => b === 1 && j === 0, 2)],
    [
      "decode",
      makeCase(
        { B: 1, Tq: 2, Tk: 4, kvRows: 6, qOffset: 2, heads: 2, kvHeads: 2, headDim: 3 },
        21,
        (_b, j) => j === 1,
        2,
      ),
    ],
  ];
  for (const [name, c] of cases) {
    const ref = attentionBackwardRef(c.q, c.k, c.v, c.mask, c.dout, c.shape);
    for (const [which, analytic] of [["q", ref.dq], ["k", ref.dk], ["v", ref.dv]] as const) {
      assertClose(analytic, numericalGradient(c, which), `${name}: d${which}`, 1e-7, 1e-6);
    }
    assert(ref.dk.some((x) => x !== 0) && ref.dq.some((x) => x !== 0), `${name}: gradients are not all zero`);
  }
});

Deno.test("attention reference: hidden keys and keys past Tk have no effect; empty rows are zero", () => {
  const c = makeCase({ B: 1, Tq: 3, Tk: 4, kvRows: 5, qOffset: 1, heads: 1, kvHeads: 1, headDim: 2 }, 5);
  const base = attentionForwardRef(c.q, c.k, c.v, c.mask, c.shape);
  // Row 4 lies past Tk and key 3 is causally hidden from query 0: changing them must not change query 0.
  const v2 = Float32Array.from(c.v);
  v2.fill(100, 3 * 2);
  const moved = attentionForwardRef(c.q, c.k, v2, c.mask, c.shape);
  assertClose(moved.out.slice(0, 2), base.out.slice(0, 2), "query 0 ignores hidden keys", 0, 0);
  const none = attentionForwardRef(c.q, c.k, c.v, new Uint32Array(5), c.shape);
  assertEquals([...none.out], new Array(6).fill(0), "out of rows that see no key");
  assertEquals([...none.lse], [EMPTY_ROW_LSE, EMPTY_ROW_LSE, EMPTY_ROW_LSE], "lse of rows that see no key");
});

// --- GPU against the reference -------------------------------------------------------------------------

Deno.test(
  "attention: GQA B=2 T=13 heads=4 kvHeads=2 headDim=16, forward and backward",
  GPU_TEST,
  async () => {
    await checkTraining(trainingCase(2, 13, 4, 2, 16, 1), "GQA");
  },
);

Deno.test("attention: MQA heads=6 kvHeads=1 headDim=6, forward and backward", GPU_TEST, async () => {
  await checkTraining(trainingCase(2, 13, 6, 1, 6, 2), "MQA");
});

Deno.test("attention: headDim=128 T=5, forward and backward", GPU_TEST, async () => {
  await checkTraining(trainingCase(2, 5, 4, 2, 128, 3), "headDim 128");
});

Deno.test("attention: headDim=256 (the largest), forward and backward", GPU_TEST, async () => {
  await checkTraining(trainingCase(1, 6, 2, 1, MAX_HEAD_DIM, 4), "headDim 256");
});

Deno.test("attention: right padding (item 1's last 4 keys masked)", GPU_TEST, async () => {
  await checkTraining(trainingCase(2, 13, 4, 2, 16, 5, (b, j) => b === 1 && j >= 9), "right padding");
});

Deno.test(
  "attention: left padding gives rows that see no key zero output and zero gradients",
  GPU_TEST,
  async () => {
    const c = trainingCase(2, 13, 4, 2, 16, 6, (b, j) => b === 1 && j < 3);
    const got = await checkTraining(c, "left padding");
    const width = 4 * 16;
    for (let i = 0; i < 3; i++) {
      const row = (13 + i) * width; // item 1, query i
      assert(got.out.slice(row, row + width).every((x) => x === 0), `out of item 1 query ${i} is zero`);
      assert(got.dq.slice(row, row + width).every((x) => x === 0), `dq of item 1 query ${i} is zero`);
      for (let h = 0; h < 4; h++) {
        assertEquals(
          got.lse[(4 + h) * 13 + i],
          Math.fround(ATTENTION_EMPTY_ROW_LSE),
          `lse of head ${h} query ${i}`,
        );
      }
    }
    for (let j = 0; j < 3; j++) {
      const row = (13 + j) * 2 * 16;
      assert(got.dk.slice(row, row + 32).every((x) => x === 0), `dk of padding key ${j} is zero`);
      assert(got.dv.slice(row, row + 32).every((x) => x === 0), `dv of padding key ${j} is zero`);
    }
  },
);

Deno.test("attention: many tiles (T=77, peaky softmax) and replayed dispatches", GPU_TEST, async () => {
  const gpu = await testGpu();
  const fwd = attentionTiles(gpu, "forward", 16), dq = attentionTiles(gpu, "dq", 16);
  const dkdv = attentionTiles(gpu, "dkdv", 16);
  // The case must span several key tiles and several query tiles of every kernel to test the online softmax.
  assert(77 > 2 * fwd.keys && 77 * 2 > 2 * fwd.rows && 77 > 2 * dq.keys && 77 > 2 * dkdv.keys, "sizes");
  const c = trainingCase(1, 77, 4, 2, 16, 7, (_b, j) => j >= 70 || j === 40, 3);
  const got = await runTraining(gpu, c, 2);
  assertForward(got, c, "T=77");
  const ref = attentionBackwardRef(c.q, c.k, c.v, c.mask, c.dout, c.shape);
  assertClose(got.dq, ref.dq, "T=77: dq", 2e-5, 2e-4);
  assertClose(got.dk, ref.dk, "T=77: dk", 2e-5, 2e-4);
  assertClose(got.dv, ref.dv, "T=77: dv", 2e-5, 2e-4);
});

Deno.test(
  "attention: headDim=20 (output vec4s not a multiple of the threads), both forward kernels",
  GPU_TEST,
  async () => {
    const c = trainingCase(2, 13, 6, 2, 20, 8, (b, j) => b === 0 && j < 2);
    await checkTraining(c, "headDim 20");
    assertForward(await runForward(await testGpu(), c, "decode"), c, "decode kernel, T=13");
  },
);

for (const variant of ["auto", "prefill", "decode"] as const) {
  Deno.test(
    `attention: decode shapes (Tq=1 and 3, qOffset = Tk − Tq, kvRows > Tk), ${variant}`,
    GPU_TEST,
    async () => {
      const gpu = await testGpu();
      // Tq = 1: a long cache spanning several key tiles; rows past Tk hold stale data marked as real keys.
      assert(600 > 2 * attentionTiles(gpu, "decode", 16).keys, "the cache spans several decode tiles");
      const one = makeCase(
        { B: 2, Tq: 1, Tk: 600, kvRows: 610, qOffset: 599, heads: 4, kvHeads: 2, headDim: 16 },
        9,
        (b, j) => b === 1 && j < 3,
        3,
      );
      assertForward(await runForward(gpu, one, variant), one, `Tq=1 (${variant})`);
      const three = makeCase(
        { B: 2, Tq: 3, Tk: 20, kvRows: 24, qOffset: 17, heads: 6, kvHeads: 1, headDim: 6 },
        10,
        (b, j) => b === 0 && j >= 12 && j < 15,
      );
      assertForward(await runForward(gpu, three, variant), three, `Tq=3 (${variant})`);
    },
  );
}

Deno.test("attention: bad arguments are rejected with the field named", GPU_TEST, async () => {
  const gpu = await testGpu();
  const c = trainingCase(1, 4, 4, 2, 8, 12);
  const t = (x: Float32Array | Uint32Array) => gpu.upload(x);
  const args = {
    q: t(c.q),
    k: t(c.k),
    v: t(c.v),
    keyMask: t(c.mask),
    out: gpu.tensor(c.q.length),
    lse: gpu.tensor(16),
    B: 1,
    Tq: 4,
    Tk: 4,
    kvRows: 4,
    qOffset: 0,
    heads: 4,
    kvHeads: 2,
    headDim: 8,
    scale: 0.3,
  };
  attentionForward(gpu, args); // the valid call records fine
  assertThrows(
    () => attentionForward(gpu, { ...args, kvHeads: 3 }),
    RangeError,
    `"heads" (4) must be a multiple`,
  );
  assertThrows(
    () => attentionForward(gpu, { ...args, headDim: 257 }),
    RangeError,
    `"headDim" must be at most 256`,
  );
  assertThrows(() => attentionForward(gpu, { ...args, kvRows: 8 }), RangeError, `"k"`);
  assertThrows(
    () => attentionForward(gpu, { ...args, Tk: 5 }),
    RangeError,
    `"kvRows" (4) must be at least "Tk"`,
  );
  assertThrows(() => attentionForward(gpu, { ...args, keyMask: t(c.q) }), TypeError, `"keyMask"`);
  assertThrows(
    () => attentionForward(gpu, { ...args, variant: "fast" as AttentionVariant }),
    TypeError,
    `"variant"`,
  );
  assertThrows(() => attentionForward(gpu, { ...args, out: args.q }), RangeError, `"q" and "out"`);
  const bwd = {
    ...args,
    dout: t(c.dout),
    dq: gpu.tensor(c.q.length),
    dk: gpu.tensor(4),
    dv: gpu.tensor(c.v.length),
    T: 4,
  };
  assertThrows(() => attentionBackward(gpu, bwd), RangeError, `"dk"`);
});

Deno.test("attention tiles: every kernel fits 32 KiB of workgroup memory up to headDim 256", () => {
  for (const kernel of ["forward", "decode", "dq", "dkdv"] as const) {
    for (const headDim of [1, 6, 64, 128, 200, 256]) {
      const tiles = chooseTiles(kernel, headDim, 32768);
      assert(sharedBytes(tiles) <= 32768, `${kernel} at headDim ${headDim}`);
      // A split accumulation gives each thread exactly one output slot: the generated code relies on it.
      const owned = (kernel === "dkdv" ? tiles.keys : tiles.rows) * Math.ceil(headDim / 4);
      assert(tiles.split === 1 || owned * tiles.split <= tiles.threads, `${kernel} at ${headDim}: split`);
    }
  }
  assertThrows(() => chooseTiles("forward", 256, 4096), RangeError, "headDim 256");
  // Accumulators are named registers: no private array may appear in the generated code.
  const code = forwardSource(chooseTiles("forward", 128, 32768));
  assert(!/var\s+\w+\s*:\s*array/.test(code.replace(/var<workgroup>[^;]*;/g, "")), "no private arrays");
});
