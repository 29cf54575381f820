import { Gpu } from "../../gpu/runtime.ts";
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

Deno.test(
  "parity: with bindings forced to 20,000 bytes (weights in row blocks, passes in groups) the model still matches",
  GPU_TEST,
  async () => {
    // 20,000 bytes splits the embedding and LM head (128 KiB each) into 7 row blocks, each MLP weight into
    // 3, the logits into vocabulary blocks of 74, and every pass into groups of one 24-token sequence.
    const gpu = await Gpu.create({ maxBindingBytes: 20000 });
    try {
      const layout: string[] = [];
      const lines = await runParity(gpu, FIXTURE_PATH, { log: (l) => layout.push(l) });
      assert(/model\.embed_tokens\.weight ×7/.test(layout[0]), layout[0]);
      assert(/mlp\.gate_proj\.weight ×3/.test(layout[0]), layout[0]);
      assert(/activations in blocks of 28 rows/.test(layout[0]), layout[0]);
      const failed = lines.filter((l) => !l.ok);
      assert(lines.length >= 99, `only ${lines.length} quantities checked`);
      assert(
        failed.length === 0,
        `out of tolerance: ${failed.map((l) => `${l.name} ${l.error}`).join(", ")}`,
      );
    } finally {
      gpu.destroy();
    }
  },
);

Deno.test("parity task: --max-binding forces the split layout and still passes", async () => {
  const task = new URL("../../tasks/parity.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", task, "--max-binding", "20000", FIXTURE_PATH],
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert(out.code === 0, text.slice(-2000));
  assert(/binding max 19\.5 KiB, forced below/.test(text), text.slice(0, 300));
  assert(/layout: row blocks: model\.embed_tokens\.weight ×7/.test(text), text.slice(0, 500));
  assert(/parity: 99\/99 within tolerance/.test(text), text.slice(-300));
});
