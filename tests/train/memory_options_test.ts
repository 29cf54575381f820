/**
 * The training tasks' memory options: `--gradient-checkpointing` trains to the same weights, and
 * `--dry-run` plans without training (config only), counting a preference pair as two rows.
 */
import { loadLlama, readParams } from "../../model/load.ts";
import { BUNDLED_DATA } from "../../model/tiny.ts";
import { parseTrainArgs, runTrainingTask } from "../../train/cli.ts";
import { withDefaults } from "../../train/config.ts";
import { readModelConfig, trainingPlan } from "../../train/dry_run.ts";
import { train } from "../../train/trainer.ts";
import { assert, assertEquals, assertThrows } from "../asserts.ts";
import { GPU_TEST, testGpu } from "../helpers.ts";
import { writeMicroModel } from "../model/micro_model.ts";

const quiet = { info: () => {}, progress: () => {} };
let micro: Promise<string> | undefined;
function microModel(): Promise<string> {
  micro ??= (async () => writeMicroModel(`${await Deno.makeTempDir({ prefix: "micro-" })}/model`))();
  return micro;
}

Deno.test(
  "trainer: --gradient-checkpointing trains to bit-identical weights and metrics",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const root = await Deno.makeTempDir({ prefix: "ckpt-train-" });
    const run = async (gradientCheckpointing: boolean) => {
      const out = `${root}/${gradientCheckpointing ? "ckpt" : "kept"}`;
      const cfg = withDefaults("orpo", {
        model: await microModel(),
        data: [BUNDLED_DATA.preference.pathname],
        out,
        maxLength: 64,
        batchSize: 4,
        maxSteps: 3,
        lr: 1e-2,
        gradientCheckpointing,
      });
      const result = await train(cfg, { gpu, log: quiet });
      const loaded = await loadLlama(gpu, result.finalDir, { trainable: false, maxTokens: 8 });
      const metrics = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim().split("\n")
        .map((l) => JSON.parse(l)).map(({ step, loss, grad_norm }) => ({ step, loss, grad_norm }));
      return { weights: await readParams(gpu, loaded.params), metrics };
    };
    const kept = await run(false), ckpt = await run(true);
    assertEquals(ckpt.metrics, kept.metrics);
    for (const [name, w] of kept.weights) assertEquals(ckpt.weights.get(name), w, name);
    const saved = JSON.parse(await Deno.readTextFile(`${root}/ckpt/training_args.json`));
    assertEquals(saved.gradient_checkpointing, true);
    await Deno.remove(root, { recursive: true });
  },
);

Deno.test("cli: --dry-run, --gpu-memory and --gradient-checkpointing parse; memory flags need --dry-run", () => {
  const base = ["--model", "m", "--data", "d.jsonl", "--out", "o"];
  const parsed = parseTrainArgs("sft", [
    ...base,
    "--dry-run",
    "--gpu-memory",
    "80GB",
    "--gradient-checkpointing",
  ])!;
  assertEquals(parsed.dryRun?.memoryBytes, 80e9);
  assertEquals(parsed.config.gradientCheckpointing, true);
  assertEquals(parseTrainArgs("sft", base)!.dryRun, undefined);
  assertThrows(() => parseTrainArgs("sft", [...base, "--gpu-memory", "8GB"]), Error, "go with --dry_run");
  assertThrows(
    () => parseTrainArgs("sft", [...base, "--dry-run", "--gpu-memory", "lots"]),
    Error,
    "--gpu-memory",
  );
});

Deno.test("dry run: a preference pair is two rows; checkpointing and LoRA shrink the plan", async () => {
  const dims = await readModelConfig(await microModel());
  const limits = { maxBinding: 2 ** 27 };
  const common = {
    model: "m",
    data: ["d"],
    out: "o",
    batchSize: 4,
    maxLength: 60,
    padMultiple: 8,
    gradientCheckpointing: false,
  };
  const sft = trainingPlan(withDefaults("sft", common), dims, limits);
  const dpo = trainingPlan(withDefaults("dpo", common), dims, limits);
  // 60 tokens pad to 64; the DPO micro-batch holds 4 pairs, 8 rows: twice SFT's activations.
  assertEquals(sft.layout.blockRows, 4 * 64);
  assertEquals(dpo.layout.blockRows, 8 * 64);
  const part = (p: typeof sft, name: string) => p.parts.find((x) => x.name === name)!.bytes;
  assert(part(dpo, "activations") > 1.9 * part(sft, "activations"), "pairs count twice");
  const ckpt = trainingPlan(withDefaults("sft", { ...common, gradientCheckpointing: true }), dims, limits);
  assert(part(ckpt, "activations") < part(sft, "activations"), "checkpointing keeps less");
  const lora = trainingPlan(
    withDefaults("sft", { ...common, lora: { r: 4, alpha: 8, targets: ["q_proj"], rslora: false } }),
    dims,
    limits,
  );
  assert(part(lora, "gradients") < part(sft, "gradients") / 10, "LoRA trains the adapters only");
});

Deno.test(
  "cli: --dry-run prints the plan from the config alone and exits 1 when it does not fit",
  GPU_TEST,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "dry-run-" });
    // A folder with nothing but config.json: a dry run never reads weights or a tokenizer.
    const config = JSON.parse(await Deno.readTextFile(`${await microModel()}/config.json`));
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
    const lines: string[] = [];
    const log = console.log;
    console.log = (line: string) => lines.push(line);
    try {
      const args = ["--model", dir, "--data", "none.jsonl", "--out", `${dir}/out`, "--dry-run"];
      assertEquals(await runTrainingTask("orpo", [...args, "--gpu-memory", "1GB"]), 0);
      const text = lines.join("\n");
      for (
        const part of ["weights", "gradients", "AdamW moments", "activations", "largest tensor", "fits: "]
      ) {
        assert(text.includes(part), `no "${part}" in:\n${text}`);
      }
      lines.length = 0;
      assertEquals(await runTrainingTask("orpo", [...args, "--gpu-memory", "100KB"]), 1);
      assert(lines.join("\n").includes("does not fit"), lines.join("\n"));
      assertEquals(
        [...Deno.readDirSync(dir)].map((e) => e.name),
        ["config.json"],
        "nothing was trained or written",
      );
    } finally {
      console.log = log;
      await Deno.remove(dir, { recursive: true });
    }
  },
);
