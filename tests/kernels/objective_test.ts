import {
  type DpoLossType,
  OBJECTIVE_METRICS,
  objectiveDispatches,
  objectiveHyper,
  type ObjectiveHyperValues,
  type ObjectiveKind,
} from "../../kernels/objective.ts";
import { objectiveRef, type ObjectiveRefArgs, type ObjectiveRefResult } from "../../kernels/objective_ref.ts";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "../asserts.ts";
import { assertClose, GPU_TEST, rng, testGpu } from "../helpers.ts";
import { FIXTURE_DIR, fixtureTensor, readFixture } from "./fixture_reader.ts";

/** A micro-batch as the trainer lays it out: rows s·T + t, masks aligned with logp rows. */
interface Batch {
  logp: Float32Array;
  mask: Float32Array;
  /** Completion only (as the fixture does). */
  completionNll: Float32Array;
  /** Prompt and completion of each sequence (as TRL does). */
  wholeNll: Float32Array;
  refLogp: Float32Array;
  /** SFT: 1 where the row's target is the argmax (random here). */
  greedy: Uint32Array;
  sequences: number;
  T: number;
}

/**
 * Random log-probs in [−8, 0) and prompt/completion/padding masks. Sequences in `empty` have no targets
 * (padding pairs, or an SFT row with nothing to learn).
 */
function randomBatch(sequences: number, T: number, seed: number, empty: number[] = []): Batch {
  const r = rng(seed);
  const rows = sequences * T;
  const b: Batch = {
    logp: Float32Array.from({ length: rows }, () => -8 * r() - 1e-3),
    mask: new Float32Array(rows),
    completionNll: new Float32Array(rows),
    wholeNll: new Float32Array(rows),
    refLogp: Float32Array.from({ length: sequences }, () => -60 * r() - 10),
    greedy: Uint32Array.from({ length: rows }, () => (r() < 0.4 ? 1 : 0)),
    sequences,
    T,
  };
  for (let s = 0; s < sequences; s++) {
    if (empty.includes(s)) continue;
    const prompt = 2 + Math.floor(r() * 5);
    const completion = 1 + Math.floor(r() * (T - prompt - 1));
    // Row t predicts token t + 1: the first completion token is predicted at row prompt − 1.
    for (let t = prompt - 1; t < prompt - 1 + completion; t++) {
      b.mask[s * T + t] = 1;
      b.completionNll[s * T + t] = 1;
    }
    for (let t = 0; t < prompt - 1 + completion; t++) b.wholeNll[s * T + t] = 1;
  }
  return b;
}

interface Case {
  kind: ObjectiveKind;
  lossType?: DpoLossType;
  nll?: "completion" | "whole";
}

const CASES: Case[] = [
  { kind: "sft" },
  { kind: "dpo", lossType: "sigmoid" },
  { kind: "dpo", lossType: "ipo" },
  { kind: "dpo", lossType: "hinge" },
  { kind: "orpo", nll: "completion" },
  { kind: "orpo", nll: "whole" },
];

function caseName(c: Case): string {
  return [c.kind, c.lossType, c.nll && `${c.nll} nll`].filter(Boolean).join(" ");
}

function nllMaskOf(c: Case, b: Batch): Float32Array {
  return c.nll === "whole" ? b.wholeNll : b.completionNll;
}

function sumRows(mask: Float32Array, T: number, sequences: number[]): number {
  return sequences.reduce((acc, s) => acc + mask.subarray(s * T, (s + 1) * T).reduce((x, y) => x + y, 0), 0);
}

/** Global normalisers of a whole batch: target tokens, real pairs, chosen NLL tokens of real pairs. */
function normalisers(c: Case, b: Batch) {
  const P = b.sequences / 2;
  const real = Array.from({ length: P }, (_, p) => p).filter((p) =>
    sumRows(b.mask, b.T, [p]) > 0 && sumRows(b.mask, b.T, [p + P]) > 0
  );
  return {
    normTokens: sumRows(b.mask, b.T, Array.from({ length: b.sequences }, (_, s) => s)),
    normPairs: real.length,
    normNllTokens: sumRows(nllMaskOf(c, b), b.T, real),
  };
}

/** β = 0.1 for DPO sigmoid/hinge, 0.5 for IPO (a target margin of 1), λ = 0.25 for ORPO. */
function hyperValues(c: Case, b: Batch, norms = normalisers(c, b)) {
  return { ...norms, beta: c.lossType === "ipo" ? 0.5 : 0.1, lambda: 0.25 };
}

function refArgs(c: Case, b: Batch, norms = normalisers(c, b)): ObjectiveRefArgs {
  return { ...b, ...hyperValues(c, b, norms), nllMask: nllMaskOf(c, b), lossType: c.lossType };
}

/** Runs the kernels on `b` with metrics starting at `metricsStart`; returns metrics and dlogp. */
async function runKernel(
  c: Case,
  b: Batch,
  values: ObjectiveHyperValues,
  metricsStart: Float32Array,
) {
  const gpu = await testGpu();
  const hyper = gpu.upload(objectiveHyper(c.kind, values));
  const metrics = gpu.upload(metricsStart);
  const mask = gpu.upload(b.mask);
  const dlogp = gpu.upload(new Float32Array(b.sequences * b.T).fill(7)); // must be overwritten
  gpu.run(objectiveDispatches(gpu, {
    kind: c.kind,
    lossType: c.lossType,
    logp: gpu.upload(b.logp),
    mask,
    // The same tensor may serve as both masks (completion-only NLL): two read-only bindings may alias.
    nllMask: c.kind === "orpo"
      ? (nllMaskOf(c, b) === b.mask ? mask : gpu.upload(nllMaskOf(c, b)))
      : undefined,
    refLogp: c.kind === "dpo" ? gpu.upload(b.refLogp) : undefined,
    greedy: c.kind === "sft" ? gpu.upload(b.greedy) : undefined,
    hyper,
    metrics,
    dlogp,
    sequences: b.sequences,
    T: b.T,
  }));
  const [m, d] = (await gpu.readMany([metrics, dlogp])) as Float32Array[];
  return { metrics: m, dlogp: d };
}

function metricArray(c: Case, r: ObjectiveRefResult): number[] {
  return OBJECTIVE_METRICS[c.kind].map((name) => r.metrics[name]);
}

for (const c of CASES) {
  Deno.test(
    `objective ${caseName(c)}: kernel matches the reference, with a padding pair`,
    GPU_TEST,
    async () => {
      // 4 pairs (or 8 SFT rows) of 37 tokens; sequence 6 is empty: the rejected side of pair 2 (pair 2 is
      // padding) or an SFT row with no targets.
      const b = randomBatch(8, 37, c.kind.length + (c.lossType?.length ?? 0), [6]);
      if (c.kind === "dpo") {
        // β·Δ = 1.5 and 0.5 (β = 0.1): one pair on each side of the hinge's kink.
        setMargin(b, 0, 15);
        setMargin(b, 1, 5);
      }
      const ref = objectiveRef(c.kind, refArgs(c, b));
      const start = Float32Array.from(OBJECTIVE_METRICS[c.kind], (_, i) => 0.5 * i - 1);
      const got = await runKernel(c, b, hyperValues(c, b), start);
      assertClose(
        got.metrics,
        metricArray(c, ref).map((v, i) => v + start[i]),
        `${caseName(c)} metrics (added)`,
      );
      assertClose(got.dlogp, ref.dlogp, `${caseName(c)} dlogp`, 1e-7);
      if (c.kind !== "sft") {
        const P = b.sequences / 2;
        for (const s of [2, 2 + P]) {
          for (const d of [ref.dlogp, got.dlogp]) {
            assert(d.subarray(s * b.T, (s + 1) * b.T).every((v) => v === 0), `padding sequence ${s} grad`);
          }
        }
      }
    },
  );

  Deno.test(`objective ${caseName(c)}: reference gradient matches finite differences of its loss`, () => {
    const b = randomBatch(6, 11, 40 + c.kind.length, [4]);
    const args = refArgs(c, b);
    const logp = Float64Array.from(b.logp);
    const analytic = objectiveRef(c.kind, { ...args, logp }).dlogp;
    const h = 1e-6;
    const numeric = logp.map((_, i) => {
      const up = logp.slice(), down = logp.slice();
      up[i] += h;
      down[i] -= h;
      return (objectiveRef(c.kind, { ...args, logp: up }).loss -
        objectiveRef(c.kind, { ...args, logp: down }).loss) /
        (2 * h);
    });
    assert(analytic.some((v) => v !== 0), "the gradient is not all zero");
    assertClose(analytic, numeric, `${caseName(c)} dlogp vs finite differences`, 1e-8, 1e-6);
  });

  Deno.test(
    `objective ${caseName(c)}: two micro-batches with global normalisers add up to the batch`,
    GPU_TEST,
    async () => {
      const b = randomBatch(10, 23, 77, [8]); // 5 pairs, pair 3 padding (or 10 SFT rows)
      const norms = normalisers(c, b);
      const whole = await runKernel(
        c,
        b,
        hyperValues(c, b, norms),
        new Float32Array(OBJECTIVE_METRICS[c.kind].length),
      );
      // Split the pairs (or rows) 0..2 | 3..4 and re-lay each part out as the trainer would.
      const groups = c.kind === "sft" ? [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9]] : [[0, 1, 2], [3, 4]];
      let metrics: Float32Array = new Float32Array(OBJECTIVE_METRICS[c.kind].length);
      const dlogp = new Float32Array(b.sequences * b.T);
      for (const g of groups) {
        const order = c.kind === "sft" ? g : [...g, ...g.map((p) => p + b.sequences / 2)];
        const part = selectSequences(b, order);
        const got = await runKernel(c, part, hyperValues(c, part, norms), metrics);
        metrics = got.metrics;
        order.forEach((s, i) => dlogp.set(got.dlogp.subarray(i * b.T, (i + 1) * b.T), s * b.T));
      }
      assertClose(metrics, whole.metrics, `${caseName(c)} accumulated metrics`);
      assertClose(dlogp, whole.dlogp, `${caseName(c)} dlogp`, 1e-8);
      const ref = objectiveRef(c.kind, refArgs(c, b));
      assertAlmostEquals(metrics[0], ref.loss, 1e-5 * Math.max(1, Math.abs(ref.loss)), "accumulated loss");
    },
  );
}

/** Moves the reference log-prob of pair `p`'s chosen sequence so that Δ (on sums) equals `delta`. */
function setMargin(b: Batch, p: number, delta: number): void {
  const P = b.sequences / 2;
  const sum = (s: number) =>
    b.logp.subarray(s * b.T, (s + 1) * b.T).reduce((x, v, t) => x + v * b.mask[s * b.T + t], 0);
  b.refLogp[p] = sum(p) - (sum(p + P) - b.refLogp[p + P]) - delta;
}

function selectSequences(b: Batch, order: number[]): Batch {
  const pick = (a: Float32Array) => {
    const out = new Float32Array(order.length * b.T);
    order.forEach((s, i) => out.set(a.subarray(s * b.T, (s + 1) * b.T), i * b.T));
    return out;
  };
  return {
    logp: pick(b.logp),
    mask: pick(b.mask),
    completionNll: pick(b.completionNll),
    wholeNll: pick(b.wholeNll),
    refLogp: Float32Array.from(order, (s) => b.refLogp[s]),
    greedy: Uint32Array.from(pick(Float32Array.from(b.greedy))),
    sequences: order.length,
    T: b.T,
  };
}

Deno.test("objective orpo: stable for mean log-probs near 0 and very negative", GPU_TEST, async () => {
  const c: Case = { kind: "orpo", nll: "completion" };
  const b = randomBatch(4, 9, 5);
  // Pair 0: chosen mean −1e-4 (where 1 − eᵃ loses digits naively) vs rejected −40 (eᵃ underflows).
  // Pair 1: chosen mean exactly 0 (odds capped) vs rejected −0.5.
  const setMean = (s: number, value: number) => {
    for (let t = 0; t < b.T; t++) b.logp[s * b.T + t] = value;
  };
  setMean(0, -1e-4);
  setMean(2, -40);
  setMean(1, 0);
  setMean(3, -0.5);
  const ref = objectiveRef("orpo", refArgs(c, b));
  const got = await runKernel(c, b, hyperValues(c, b), new Float32Array(10));
  assert(got.metrics.every(Number.isFinite) && got.dlogp.every(Number.isFinite), "finite results");
  assertClose(got.metrics, metricArray(c, ref), "extreme orpo metrics", 1e-4, 1e-4);
  assertClose(got.dlogp, ref.dlogp, "extreme orpo dlogp", 1e-6, 1e-4);
});

Deno.test(
  "objective: a tied pair is not counted as accurate (TRL compares with a strict >)",
  GPU_TEST,
  async () => {
    for (const c of [{ kind: "dpo", lossType: "sigmoid" }, { kind: "orpo", nll: "completion" }] as Case[]) {
      const b = randomBatch(2, 13, 3);
      // The rejected sequence is a copy of the chosen one, reference log-prob included.
      b.logp.copyWithin(b.T, 0, b.T);
      b.mask.copyWithin(b.T, 0, b.T);
      b.refLogp[1] = b.refLogp[0];
      const names = OBJECTIVE_METRICS[c.kind];
      const got = await runKernel(c, b, hyperValues(c, b), new Float32Array(names.length));
      const ref = objectiveRef(c.kind, refArgs(c, b));
      const accuracy = names.indexOf("rewards/accuracies");
      assertEquals([got.metrics[accuracy], ref.metrics["rewards/accuracies"]], [0, 0], caseName(c));
    }
  },
);

/**
 * Per-token log-probs that sum to given per-sequence totals over each sequence's label mask (the fixture
 * stores only the totals), with the fixture's convention that row t predicts token t + 1.
 */
function spreadOverMask(totals: number[], labelMask: ArrayLike<number>, T: number) {
  const rows = totals.length * T;
  const mask = new Float32Array(rows), logp = new Float32Array(rows);
  totals.forEach((total, s) => {
    let n = 0;
    for (let t = 0; t + 1 < T; t++) n += labelMask[s * T + t + 1];
    for (let t = 0; t + 1 < T; t++) {
      mask[s * T + t] = labelMask[s * T + t + 1];
      logp[s * T + t] = mask[s * T + t] * total / n;
    }
  });
  return { mask, logp };
}

Deno.test(
  "objective reference and kernel reproduce the fixture's SFT, DPO and ORPO values",
  GPU_TEST,
  async () => {
    const fx = await readFixture(new URL("expected.safetensors", FIXTURE_DIR));
    const get = (name: string) => Array.from(fixtureTensor(fx, name).data);
    const T = fixtureTensor(fx, "pref.chosen_label_mask").shape[1];
    const labels = [...get("pref.chosen_label_mask"), ...get("pref.rejected_label_mask")];

    // SFT from the real per-token log-probs [B, T−1].
    const tokenLogps = get("sft.token_logps"), sftLabels = get("sft.label_mask");
    const sft = spreadOverMask([0, 0], sftLabels, T);
    for (let b = 0; b < 2; b++) sft.logp.set(tokenLogps.slice(b * (T - 1), (b + 1) * (T - 1)), b * T);
    sft.logp.forEach((v, i) => sft.logp[i] = sft.mask[i] ? v : 0);
    const normTokens = sft.mask.reduce((x, y) => x + y, 0);
    const sftRef = objectiveRef("sft", { ...sft, sequences: 2, T, normTokens });
    assertAlmostEquals(sftRef.loss, get("sft.loss")[0], 1e-5, "sft loss");

    // DPO, one pair at a time so every per-pair reward is checked.
    const beta = get("dpo.beta")[0];
    for (let p = 0; p < 2; p++) {
      const pair = [p, p + 2];
      const totals = [get("dpo.chosen_logps")[p], get("dpo.rejected_logps")[p]];
      const { mask, logp } = spreadOverMask(totals, pair.flatMap((s) => labels.slice(s * T, (s + 1) * T)), T);
      const refLogp = [get("pref.ref_chosen_logps")[p], get("pref.ref_rejected_logps")[p]];
      const r = objectiveRef("dpo", { logp, mask, refLogp, sequences: 2, T, beta, normPairs: 1 });
      assertAlmostEquals(r.metrics["rewards/chosen"], get("dpo.rewards_chosen")[p], 1e-5, `pair ${p} chosen`);
      assertAlmostEquals(
        r.metrics["rewards/rejected"],
        get("dpo.rewards_rejected")[p],
        1e-5,
        `pair ${p} rejected`,
      );
    }
    const dpoBatch = spreadOverMask([...get("dpo.chosen_logps"), ...get("dpo.rejected_logps")], labels, T);
    const refLogp = [...get("pref.ref_chosen_logps"), ...get("pref.ref_rejected_logps")];
    const dpo = objectiveRef("dpo", { ...dpoBatch, refLogp, sequences: 4, T, beta, normPairs: 2 });
    assertAlmostEquals(dpo.loss, get("dpo.loss")[0], 1e-5, "dpo loss");

    // ORPO from the per-sequence average log-probs, NLL over chosen completion tokens.
    const lambda = get("orpo.lambda")[0];
    const counts = [0, 1, 2, 3].map((s) => labels.slice(s * T + 1, (s + 1) * T).reduce((x, y) => x + y, 0));
    const orpoTotals = [...get("orpo.chosen_avg_logps"), ...get("orpo.rejected_avg_logps")].map((a, s) =>
      a * counts[s]
    );
    const orpoBatch = spreadOverMask(orpoTotals, labels, T);
    const orpoArgs = {
      ...orpoBatch,
      nllMask: orpoBatch.mask,
      sequences: 4,
      T,
      lambda,
      normPairs: 2,
      normNllTokens: counts[0] + counts[1],
    };
    const orpo = objectiveRef("orpo", orpoArgs);
    const fixtureOdds = get("orpo.log_odds_ratio"); // per pair: log odds(chosen) − log odds(rejected)
    assertAlmostEquals(orpo.metrics.nll_loss, get("orpo.nll")[0], 1e-5, "orpo nll");
    assertAlmostEquals(orpo.loss, get("orpo.loss")[0], 1e-5, "orpo loss");
    assertAlmostEquals(orpo.metrics.log_odds_chosen, (fixtureOdds[0] + fixtureOdds[1]) / 2, 1e-5, "log odds");

    // The kernels on the same inputs.
    const gpuDpo = await runKernel(
      { kind: "dpo", lossType: "sigmoid" },
      {
        ...dpoBatch,
        completionNll: dpoBatch.mask,
        wholeNll: dpoBatch.mask,
        refLogp: Float32Array.from(refLogp),
        greedy: new Uint32Array(4 * T),
        sequences: 4,
        T,
      },
      { normPairs: 2, beta },
      new Float32Array(7),
    );
    assertAlmostEquals(gpuDpo.metrics[0], get("dpo.loss")[0], 2e-5, "kernel dpo loss");
    const gpuOrpo = await runKernel(
      { kind: "orpo", nll: "completion" },
      {
        ...orpoBatch,
        completionNll: orpoBatch.mask,
        wholeNll: orpoBatch.mask,
        refLogp: new Float32Array(4),
        greedy: new Uint32Array(4 * T),
        sequences: 4,
        T,
      },
      { normPairs: 2, normNllTokens: orpoArgs.normNllTokens, lambda },
      new Float32Array(10),
    );
    assertAlmostEquals(gpuOrpo.metrics[0], get("orpo.loss")[0], 2e-5, "kernel orpo loss");
    assertAlmostEquals(gpuOrpo.metrics[1], get("orpo.nll")[0], 2e-5, "kernel orpo nll");
  },
);

Deno.test("objective: bad arguments are refused with the field named", GPU_TEST, async () => {
  const gpu = await testGpu();
  const t = (n: number) => gpu.tensor(n);
  const base = { logp: t(30), mask: t(30), hyper: t(4), metrics: t(10), dlogp: t(30), T: 10 };
  assertThrows(
    () => objectiveDispatches(gpu, { ...base, kind: "dpo", sequences: 3, refLogp: t(3) }),
    RangeError,
    "even",
  );
  assertThrows(() => objectiveDispatches(gpu, { ...base, kind: "dpo", sequences: 2 }), TypeError, "refLogp");
  assertThrows(() => objectiveDispatches(gpu, { ...base, kind: "orpo", sequences: 2 }), TypeError, "nllMask");
  assertThrows(
    () => objectiveDispatches(gpu, { ...base, kind: "sft", sequences: 3, lossType: "ipo" }),
    RangeError,
    "lossType",
  );
  assertThrows(() => objectiveDispatches(gpu, { ...base, kind: "sft", sequences: 4 }), RangeError, "logp");
  assertThrows(() => objectiveDispatches(gpu, { ...base, kind: "sft", sequences: 3 }), TypeError, "greedy");
  assertThrows(
    () => objectiveDispatches(gpu, { ...base, kind: "sft", sequences: 3, greedy: t(30) }),
    TypeError,
    "greedy",
  );
  assertThrows(
    () => objectiveDispatches(gpu, { ...base, kind: "sft", sequences: 3, mask: gpu.tensor(30, "u32") }),
    TypeError,
    "mask",
  );
  assertThrows(() => objectiveHyper("dpo", { normPairs: 4 }), RangeError, "beta");
  assertThrows(
    () => objectiveHyper("orpo", { normPairs: 4, lambda: 0.1, normNllTokens: 0 }),
    RangeError,
    "normNll",
  );
  assertThrows(() => objectiveHyper("kto" as ObjectiveKind, {}), RangeError, "kto");
});
