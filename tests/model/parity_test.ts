import type { Gpu } from "../../gpu/runtime.ts";
import { runParity } from "../../train/parity.ts";
import { assert } from "../asserts.ts";
import { GPU_TEST, testGpu } from "../helpers.ts";
import { FIXTURE_PATH } from "../kernels/fixture_reader.ts";

Deno.test(
  "parity: the WGSL model matches the transformers oracle on the public fixture",
  GPU_TEST,
  async () => {
    const gpu: Gpu = await testGpu();
    const lines = await runParity(gpu, FIXTURE_PATH);
    const failed = lines.filter((l) => !l.ok);
    // Every group the fixture holds is checked: SFT, AdamW, DPO, ORPO, generation.
    for (
      const group of [
        "sft.logits",
        "sft.loss",
        "sft.grad.",
        "adamw.param.",
        "dpo.loss",
        "dpo.grad.",
        "orpo.loss",
        "orpo.grad.",
        "gen.output_ids",
        "gen.logits",
      ]
    ) {
      assert(lines.some((l) => l.name.startsWith(group)), `no parity line for ${group}`);
    }
    assert(lines.length >= 99, `only ${lines.length} quantities checked`);
    assert(failed.length === 0, `out of tolerance: ${failed.map((l) => `${l.name} ${l.error}`).join(", ")}`);
  },
);
