import { join } from "node:path";
import { parseModelConfig } from "../../io/hf_config.ts";
import { SafetensorsFile, type TensorToWrite, writeSafetensors } from "../../io/safetensors.ts";
import { type LlamaDims, llamaParamSpecs } from "../../io/llama_architecture.ts";
import { referenceForward } from "../../model/reference.ts";
import { type ParityLine, runParity } from "../../train/parity.ts";
import { assert, assertEquals } from "../asserts.ts";
import { GPU_TEST, maxAbsDiff, testGpu } from "../helpers.ts";
import {
  LEFT_PADDED_BIASES,
  LLAMA3_SCALED,
  QWEN2_MQA,
  type SyntheticFixture,
  type SyntheticVariant,
  TIED_GQA,
  variantConfig,
  variantDims,
  variantRope,
  writeSyntheticFixture,
} from "../model/synthetic_fixture.ts";

Deno.test("synthetic fixtures: each config.json parses back to the dims and RoPE the oracle used", () => {
  for (const v of [TIED_GQA, QWEN2_MQA, LLAMA3_SCALED, LEFT_PADDED_BIASES]) {
    const config = parseModelConfig(variantConfig(v), `${v.name}/config.json`);
    for (const [field, want] of Object.entries(variantDims(v))) {
      assertEquals(config[field as keyof LlamaDims], want, `${v.name}: ${field}`);
    }
    assertEquals(config.rope, variantRope(v), `${v.name}: RoPE`);
  }
});

/** Every group of the public fixture: parity must check each one on every variant. */
const GROUPS = [
  "sft.logits",
  "sft.token_logps",
  "sft.loss",
  "sft.grad.",
  "adamw.param.",
  "dpo.loss",
  "dpo.chosen_logps",
  "dpo.rewards_rejected",
  "dpo.grad.",
  "orpo.loss",
  "orpo.nll",
  "orpo.log_odds_ratio",
  "orpo.grad.",
  "gen.output_ids",
  "gen.logits",
];

/** Writes the variant's fixture into a fresh temporary folder, runs `body`, and removes the folder. */
async function withFixture(
  variant: SyntheticVariant,
  body: (fx: SyntheticFixture) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: `kotransfer-${variant.name}-` });
  try {
    await body(await writeSyntheticFixture(dir, variant));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function describeFailures(lines: ParityLine[]): string {
  return lines.filter((l) => !l.ok).map((l) => `${l.name} ${l.error.toExponential(2)} > ${l.tolerance}`).join(
    ", ",
  );
}

/** Parity passes every line, and checks every parameter in the four gradient/parameter groups. */
async function assertParityPasses(fx: SyntheticFixture): Promise<ParityLine[]> {
  const lines = await runParity(await testGpu(), fx.dir);
  for (const group of GROUPS) {
    assert(lines.some((l) => l.name.startsWith(group)), `no parity line for ${group}`);
  }
  const params = llamaParamSpecs(fx.dims).length;
  // 4 per-parameter groups, then 15 scalars and vectors (as the public fixture's 99 = 4·21 + 15).
  assertEquals(lines.length, 4 * params + 15, "quantities checked");
  assert(lines.every((l) => l.ok), `out of tolerance: ${describeFailures(lines)}`);
  return lines;
}

async function configOf(fx: SyntheticFixture): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(join(fx.dir, "model", "config.json")));
}

Deno.test(
  "parity (synthetic): tied embeddings, top-level rope_theta 500000, GQA 6:2, head_dim 8, T = 13",
  GPU_TEST,
  () =>
    withFixture(TIED_GQA, async (fx) => {
      const config = await configOf(fx);
      assertEquals([config.rope_theta, config.tie_word_embeddings, config.head_dim], [500000, true, 8]);
      assert(!("rope_parameters" in config), "a transformers-4 config states rope_theta at the top level");
      const lines = await assertParityPasses(fx);
      // HF's named_parameters() lists a tied lm_head once, under the embedding.
      assert(!lines.some((l) => l.name.includes("lm_head")), "a tied model has no lm_head quantity");
      assert(lines.some((l) => l.name === "sft.grad.model.embed_tokens.weight"));
    }),
);

Deno.test(
  "parity (synthetic): qwen2 with q/k/v biases and one kv head (MQA)",
  GPU_TEST,
  () =>
    withFixture(QWEN2_MQA, async (fx) => {
      const config = await configOf(fx);
      assertEquals([config.model_type, config.num_key_value_heads], ["qwen2", 1]);
      const lines = await assertParityPasses(fx);
      for (const bias of ["q_proj", "k_proj", "v_proj"]) {
        assert(
          lines.some((l) => l.name === `sft.grad.model.layers.1.self_attn.${bias}.bias`),
          `${bias} bias`,
        );
      }
      assert(!lines.some((l) => l.name.includes("o_proj.bias")), "qwen2 has no o_proj bias");
    }),
);

Deno.test(
  "parity (synthetic): llama3 RoPE scaling, positions past original_max_position_embeddings",
  GPU_TEST,
  () =>
    withFixture(LLAMA3_SCALED, async (fx) => {
      const config = await configOf(fx);
      assertEquals((config.rope_scaling as Record<string, unknown>).rope_type, "llama3");
      const sft = fx.inputs.sft!;
      assert(
        sft.T > LLAMA3_SCALED.llama3!.originalMaxPositionEmbeddings,
        "the batch runs past the original context",
      );
      // The scaling must matter: without it the logits move far beyond parity's 1e-4 tolerance.
      const unscaled = { headDim: fx.rope.headDim, theta: fx.rope.theta };
      const scaled = referenceForward(fx.dims, fx.rope, fx.weights, sft).logits;
      const plain = referenceForward(fx.dims, unscaled, fx.weights, sft).logits;
      assert(maxAbsDiff(scaled, plain) > 1e-2, `scaling changes logits by only ${maxAbsDiff(scaled, plain)}`);
      await assertParityPasses(fx);
    }),
);

Deno.test(
  "parity (synthetic): left-padded preference rows on a llama with every bias",
  GPU_TEST,
  () =>
    withFixture(LEFT_PADDED_BIASES, async (fx) => {
      const { chosen, rejected } = fx.inputs.pref!;
      const T = chosen.T;
      const leftPadded = (m: Int32Array, b: number) => m[b * T] === 0 && m[b * T + T - 1] === 1;
      assert(
        leftPadded(chosen.attentionMask, 0) && leftPadded(rejected.attentionMask, 1),
        "rows are left-padded",
      );
      const lines = await assertParityPasses(fx);
      for (const bias of ["self_attn.o_proj.bias", "mlp.gate_proj.bias", "mlp.down_proj.bias"]) {
        assert(lines.some((l) => l.name === `dpo.grad.model.layers.0.${bias}`), bias);
      }
    }),
);

/** Copies a fixture folder, rewriting expected.safetensors with `name` scaled by `factor`. */
async function corruptedCopy(from: string, to: string, name: string, factor: number): Promise<void> {
  await Deno.mkdir(join(to, "model"), { recursive: true });
  for await (const entry of Deno.readDir(join(from, "model"))) {
    await Deno.copyFile(join(from, "model", entry.name), join(to, "model", entry.name));
  }
  await Deno.copyFile(join(from, "meta.json"), join(to, "meta.json"));
  const file = await SafetensorsFile.open(join(from, "expected.safetensors"));
  const tensors: Record<string, TensorToWrite> = {};
  for (const n of file.names()) {
    const { dtype, shape } = file.info(n);
    if (dtype === "I32") tensors[n] = { dtype, shape, data: await file.readI32(n) };
    else {
      const data = await file.readF32(n);
      tensors[n] = { dtype: "F32", shape, data: n === name ? data.map((v) => v * factor) : data };
    }
  }
  await writeSafetensors(join(to, "expected.safetensors"), tensors);
}

Deno.test(
  "parity (synthetic): a gradient off by 1% is the one quantity reported",
  GPU_TEST,
  () =>
    withFixture(TIED_GQA, async (fx) => {
      const target = "sft.grad.model.layers.1.mlp.up_proj.weight";
      const dir = await Deno.makeTempDir({ prefix: "kotransfer-corrupted-" });
      try {
        await corruptedCopy(fx.dir, dir, target, 1.01);
        const lines = await runParity(await testGpu(), dir);
        const failed = lines.filter((l) => !l.ok);
        assertEquals(failed.map((l) => l.name), [target], "failed quantities");
        // A 1% scaling is a relative error of 1/101 against the corrupted tensor's larger scale.
        assert(Math.abs(failed[0].error - 0.01 / 1.01) < 1e-3, `error ${failed[0].error}`);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }),
);
