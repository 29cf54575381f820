import { adamw, ADAMW_HYPER, ADAMW_HYPER_LENGTH, adamwHyper } from "../../kernels/adamw.ts";
import { adamwRef, type AdamwRefConfig } from "../../kernels/adamw_ref.ts";
import { gradNormSquared } from "../../kernels/gradnorm.ts";
import { gradNormSquaredRef } from "../../kernels/gradnorm_ref.ts";
import { assertAlmostEquals, assertEquals, assertThrows } from "../asserts.ts";
import { assertClose, GPU_TEST, randn, testGpu } from "../helpers.ts";
import { FIXTURE_DIR, type FixtureTensor, readFixture } from "./fixture_reader.ts";

const BETAS = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };

/** A warm-up then decay schedule, so every step uses a different learning rate. */
function lrAt(step: number): number {
  return 1e-2 * Math.min(step / 3, 1) * (1 - 0.05 * step);
}

interface Run {
  n: number;
  steps: number;
  weightDecay: number;
  /** Clip to this global norm, computed on the GPU by gradNormSquared over the chunk. */
  maxGradNorm?: number;
}

/** Runs `steps` AdamW updates on the GPU and in the reference with fresh gradients each step. */
async function compareSteps(r: Run, what: string): Promise<void> {
  const gpu = await testGpu();
  let ref: ReturnType<typeof adamwRef> = {
    param: Float64Array.from(randn(r.n, 1)),
    m: new Float64Array(r.n),
    v: new Float64Array(r.n),
  };
  const param = gpu.upload(Float32Array.from(ref.param));
  const m = gpu.tensor(r.n), v = gpu.tensor(r.n), hyper = gpu.tensor(ADAMW_HYPER_LENGTH);
  const grad = gpu.tensor(r.n), normSq = gpu.tensor(1);
  const clip = r.maxGradNorm === undefined ? {} : { gradNormSq: normSq, maxGradNorm: r.maxGradNorm };
  const step = [
    ...(r.maxGradNorm === undefined ? [] : gradNormSquared(gpu, { grads: [grad], out: normSq })),
    adamw(gpu, { param, grad, m, v, n: r.n, hyper, weightDecay: r.weightDecay, ...clip }),
  ];
  for (let t = 1; t <= r.steps; t++) {
    // Gradients of varying size, so clipping is active on some steps only.
    const g = randn(r.n, 10 + t, t % 2 === 0 ? 0.01 : 1);
    gpu.write(grad, g);
    gpu.write(hyper, adamwHyper(t, lrAt(t), BETAS.beta1, BETAS.beta2, BETAS.eps));
    gpu.run(step);
    const config: AdamwRefConfig = { step: t, lr: lrAt(t), ...BETAS, weightDecay: r.weightDecay };
    if (r.maxGradNorm !== undefined) {
      Object.assign(config, { maxGradNorm: r.maxGradNorm, gradNormSq: gradNormSquaredRef([g]) });
    }
    ref = adamwRef(ref.param, g, ref.m, ref.v, config);
  }
  const [gp, gm, gv] = (await gpu.readMany([param, m, v])) as Float32Array[];
  assertClose(gp, ref.param, `${what}: param`, 1e-6, 1e-5);
  assertClose(gm, ref.m, `${what}: m`, 1e-7, 1e-5);
  assertClose(gv, ref.v, `${what}: v`, 1e-10, 1e-5);
}

Deno.test(
  "adamw: five steps with bias correction and weight decay match the reference",
  GPU_TEST,
  async () => {
    await compareSteps({ n: 1031, steps: 5, weightDecay: 0.01 }, "no clipping");
  },
);

Deno.test(
  "adamw: clipping by a global norm computed on the GPU matches clip_grad_norm_",
  GPU_TEST,
  async () => {
    // ‖g‖ ≈ 18 on odd steps (clipped to 1) and ≈ 0.18 on even ones (left alone).
    await compareSteps({ n: 1031, steps: 4, weightDecay: 0, maxGradNorm: 1 }, "clipping");
  },
);

Deno.test(
  "adamw: one step over the fixture's parameters reproduces torch.optim.AdamW",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const weights = await readFixture(new URL("model/model.safetensors", FIXTURE_DIR));
    const expected = await readFixture(new URL("expected.safetensors", FIXTURE_DIR));
    // All parameters in one flat chunk, as the trainer's arena holds them.
    const names = [...weights.keys()].sort();
    const flat = (get: (name: string) => FixtureTensor | undefined, prefix: string) => {
      const parts = names.map((name) => {
        const t = get(prefix + name);
        if (!t) throw new Error(`fixture tensor "${prefix + name}" is missing`);
        return t.data as Float32Array;
      });
      const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    };
    const p0 = flat((k) => weights.get(k), "");
    const grads = flat((k) => expected.get(k), "sft.grad.");
    const after = flat((k) => expected.get(k), "adamw.param.");
    const n = p0.length;
    const param = gpu.upload(p0), m = gpu.tensor(n), v = gpu.tensor(n);
    const hyper = gpu.upload(adamwHyper(1, 1e-2, 0.9, 0.999, 1e-8));
    gpu.run([adamw(gpu, { param, grad: gpu.upload(grads), m, v, n, hyper, weightDecay: 0.01 })]);
    assertClose(await gpu.read(param), after, "fixture adamw.param", 1e-6, 1e-6);
    const ref = adamwRef(p0, grads, new Float64Array(n), new Float64Array(n), {
      step: 1,
      lr: 1e-2,
      ...BETAS,
      weightDecay: 0.01,
    });
    assertClose(ref.param, after, "reference vs fixture", 1e-6, 1e-6);
  },
);

Deno.test("adamw: hyper layout and argument checks", GPU_TEST, async () => {
  const h = adamwHyper(3, 1e-3, 0.9, 0.999, 1e-8);
  assertAlmostEquals(h[ADAMW_HYPER.biasCorrection1], 1 - 0.9 ** 3, 1e-7);
  assertAlmostEquals(h[ADAMW_HYPER.biasCorrection2], 1 - 0.999 ** 3, 1e-9);
  assertAlmostEquals(h[ADAMW_HYPER.lr], 1e-3, 1e-10);
  assertEquals(
    h[ADAMW_HYPER.oneMinusBeta2],
    Math.fround(1 - 0.999),
    "1 − β2 formed in float64, then rounded",
  );
  assertAlmostEquals(h[ADAMW_HYPER.stepSize], 1e-3 / (1 - 0.9 ** 3), 1e-9);
  assertAlmostEquals(h[ADAMW_HYPER.biasCorrection2Sqrt], Math.sqrt(1 - 0.999 ** 3), 1e-8);
  assertThrows(() => adamwHyper(0, 1e-3, 0.9, 0.999, 1e-8), RangeError, "step");
  assertThrows(() => adamwHyper(1, 1e-3, 1, 0.999, 1e-8), RangeError, "beta1");
  const gpu = await testGpu();
  const hyper = gpu.tensor(ADAMW_HYPER_LENGTH);
  const base = {
    param: gpu.tensor(8),
    grad: gpu.tensor(8),
    m: gpu.tensor(8),
    v: gpu.tensor(8),
    hyper,
    weightDecay: 0,
  };
  assertThrows(() => adamw(gpu, { ...base, n: 9 }), RangeError, "param");
  assertThrows(() => adamw(gpu, { ...base, n: 8, maxGradNorm: 1 }), TypeError, "gradNormSq");
  assertThrows(() => adamw(gpu, { ...base, n: 8, hyper: gpu.tensor(4) }), RangeError, "hyper");
  assertThrows(() => adamw(gpu, { ...base, n: 8, v: base.m }), RangeError, "share bytes");
});
