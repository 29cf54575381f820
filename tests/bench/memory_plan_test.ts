/**
 * The memory plan `--dry-run` prints (model/memory_plan.ts) against the peak bench:train measures, at
 * several shapes: full fine-tuning, LoRA over an f16 base, gradient checkpointing, and bindings forced
 * small enough that weights split into row blocks and passes into groups. Each within 10 %.
 */
import { Gpu } from "../../gpu/runtime.ts";
import { benchPlan, measureTrainSteps, PLAN_TOLERANCE } from "../../bench/train_step.ts";
import { shapeFromFlags } from "../../bench/shapes.ts";
import { planMemory } from "../../model/memory_plan.ts";
import { assert, assertEquals } from "../asserts.ts";
import { GPU_TEST, testGpu } from "../helpers.ts";

const CASES = [
  { name: "tiny, full fine-tuning", flags: {}, batch: 2, seq: 64 },
  { name: "tiny, LoRA r=8 over an f16 base", flags: {}, batch: 2, seq: 128, lora: 8, f16Base: true },
  { name: "tiny, full, gradient checkpointing", flags: {}, batch: 3, seq: 96, gradientCheckpointing: true },
  {
    name: "wider, LoRA r=16, f16 base, checkpointing",
    flags: { hidden: 256, mlp: 688, layers: 2, vocab: 5000 },
    batch: 2,
    seq: 64,
    lora: 16,
    f16Base: true,
    gradientCheckpointing: true,
  },
];

for (const c of CASES) {
  Deno.test(
    `memory plan: within ${PLAN_TOLERANCE * 100} % of the measured peak (${c.name})`,
    GPU_TEST,
    async () => {
      const gpu = await testGpu();
      const config = shapeFromFlags({ preset: "tiny", ...c.flags }).config;
      const o = { steps: 1, warmup: 0, f16Base: false, ...c };
      const plan = benchPlan(config, o, gpu);
      const measured = await measureTrainSteps(gpu, config, o);
      const ratio = plan.totalBytes / measured.peakBytes;
      assert(
        Math.abs(ratio - 1) <= PLAN_TOLERANCE,
        `plan ${plan.totalBytes} vs peak ${measured.peakBytes}: ${ratio}`,
      );
      assert(plan.problems.length === 0, plan.problems.join("; "));
    },
  );
}

Deno.test(
  "memory plan: within 10 % with bindings forced to 40 KiB (weights in row blocks, one group per sequence)",
  GPU_TEST,
  async () => {
    const gpu = await Gpu.create({ maxBindingBytes: 40 * 1024 });
    try {
      const config = shapeFromFlags({ preset: "tiny" }).config;
      const o = { batch: 3, seq: 24, steps: 1, warmup: 0, f16Base: false };
      const plan = benchPlan(config, o, gpu);
      assertEquals(plan.layout.groups, 3);
      assert(
        plan.largestTensor.blocks > 1,
        `${plan.largestTensor.name} in ${plan.largestTensor.blocks} blocks`,
      );
      assert(plan.largestBinding <= 40 * 1024, `largest binding ${plan.largestBinding}`);
      const measured = await measureTrainSteps(gpu, config, o);
      const ratio = plan.totalBytes / measured.peakBytes;
      assert(
        Math.abs(ratio - 1) <= PLAN_TOLERANCE,
        `plan ${plan.totalBytes} vs peak ${measured.peakBytes}: ${ratio}`,
      );
    } finally {
      gpu.destroy();
    }
  },
);

Deno.test("memory plan: checkpointing keeps less, and limits it cannot meet are named", () => {
  const config = shapeFromFlags({ preset: "tinyllama" }).config;
  const base = { sequences: 4, seqLength: 1024, maxBinding: 2 ** 31 };
  const kept = planMemory(config, base), ckpt = planMemory(config, { ...base, gradientCheckpointing: true });
  assertEquals(kept.activations, ckpt.activations);
  assert(ckpt.totalBytes < kept.totalBytes, "checkpointing lowers the total");
  assert(kept.activations.checkpointed < kept.activations.kept / 5, JSON.stringify(kept.activations));
  // 4 KiB bindings: a row of the 2048-wide embedding in f32 (8 KiB) cannot fit anywhere.
  const tooSmall = planMemory(config, { ...base, maxBinding: 4096 });
  assert(
    tooSmall.problems.some((p) => p.includes("model.embed_tokens.weight")),
    tooSmall.problems.join("; "),
  );
});
