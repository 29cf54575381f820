/**
 * The 7B and 8B LoRA presets: their settings, and the memory plans docs/reproduce.md and the presets'
 * `needs` quote, recomputed from the models' own config.json so the figures cannot drift from the planner.
 */
import { formatBytes } from "../../io/bytes.ts";
import { LINEAR_NAMES } from "../../io/llama_architecture.ts";
import { runReproduceTask } from "../../pipeline/cli.ts";
import { PRESETS, presetSettings, stageTrainConfig } from "../../pipeline/settings.ts";
import { readModelConfig, trainingPlan } from "../../train/dry_run.ts";
import { assert, assertEquals } from "../asserts.ts";

const CONFIGS = new URL("../fixtures/model-configs/", import.meta.url).pathname;
const DOCS = new URL("../../docs/reproduce.md", import.meta.url).pathname;
const H100 = { maxBinding: 2 ** 31, maxBuffer: 2 ** 31 };

for (
  const [preset, folder, model] of [
    ["llama-2-7b-lora", "llama-2-7b-hf", "meta-llama/Llama-2-7b-hf"],
    ["llama-3.1-8b-lora", "llama-3.1-8b", "meta-llama/Llama-3.1-8B"],
  ] as const
) {
  Deno.test(`presets: ${preset} trains LoRA over an f16 base, and its planned figures are the planner's`, async () => {
    const s = presetSettings(preset, "runs/x");
    assertEquals(s.model, model);
    for (const objective of ["sft", "orpo", "dpo"] as const) {
      const t = s.train[objective];
      assertEquals([t.lora?.r, t.lora?.targets, t.f16Base, t.gradientCheckpointing, t.merge], [
        16,
        [...LINEAR_NAMES],
        true,
        true,
        true,
      ]);
    }
    const config = await readModelConfig(`${CONFIGS}${folder}`);
    const docs = await Deno.readTextFile(DOCS);
    for (const [objective, stage] of [["sft", "SFT"], ["orpo", "ORPO, DPO"]] as const) {
      const plan = trainingPlan(stageTrainConfig(s, objective, ["-"]), config, H100);
      assert(plan.problems.length === 0, plan.problems.join("; "));
      const part = (name: string) => formatBytes(plan.parts.find((p) => p.name === name)!.bytes);
      const row = docs.split("\n").find((l) => l.startsWith(`| \`${preset}\``) && l.includes(`| ${stage} `));
      assert(row, `docs/reproduce.md has no row for ${preset} ${stage}`);
      const trained = plan.parts.filter((p) =>
        ["LoRA adapters", "gradients", "AdamW moments"].includes(p.name)
      )
        .reduce((a, p) => a + p.bytes, 0);
      for (
        const figure of [
          part("weights"),
          formatBytes(trained),
          `${part("activations")} (${formatBytes(plan.activations.kept)})`,
          part("logits"),
          part("backward workspace"),
          formatBytes(plan.totalBytes),
        ]
      ) {
        assert(row.includes(figure), `${preset} ${stage}: ${figure} not in ${row}`);
      }
      assert(
        PRESETS[preset].needs.includes(formatBytes(plan.totalBytes)),
        `${preset} needs: ${objective} total`,
      );
    }
  });
}

Deno.test("reproduce --dry-run plans every training stage from the config alone and runs nothing", async () => {
  const out = await Deno.makeTempDir({ prefix: "repro-dry-" });
  const lines: string[] = [];
  const log = console.log;
  console.log = (text: string) => lines.push(text);
  try {
    const code = await runReproduceTask([
      "--preset",
      "llama-3.1-8b-lora",
      "--model",
      `${CONFIGS}llama-3.1-8b`,
      "--out",
      out,
      "--dpo",
      "--dry-run",
      "--max-binding",
      "2GiB",
      "--gpu-memory",
      "80GiB",
    ]);
    const text = lines.join("\n");
    assertEquals(code, 0, text);
    for (
      const stage of ["[sft] dry run", "[orpo] dry run", "[dpo] dry run", "fits: 19.89 GiB of 80.00 GiB"]
    ) {
      assert(text.includes(stage), `no "${stage}" in:\n${text}`);
    }
    assert(text.includes("[evaluation] KoBEST and the answers load each model in f32: 29.92 GiB"), text);
    lines.length = 0;
    // The tiny preset plans from the tiny model's config before the base model exists.
    assertEquals(
      await runReproduceTask(["--out", out, "--dry-run", "--gpu-memory", "1GiB"]),
      0,
      lines.join("\n"),
    );
    assertEquals([...Deno.readDirSync(out)].length, 0, "a dry run writes nothing");
  } finally {
    console.log = log;
    await Deno.remove(out, { recursive: true });
  }
});
