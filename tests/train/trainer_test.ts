import { readRows } from "../../gpu/row_blocks.ts";
import { resolve } from "node:path";
import type { Gpu } from "../../gpu/runtime.ts";
import { loadDataset, type PreferenceRow, type SftRow } from "../../io/datasets.ts";
import type { ObjectiveKind } from "../../kernels/objective.ts";
import { loadLlama, readParams } from "../../model/load.ts";
import { referenceForward } from "../../model/reference.ts";
import { BUNDLED_DATA } from "../../model/tiny.ts";
import { loadTokenizer } from "../../text/tokenizer.ts";
import { collatePreference, collateSft } from "../../train/batching.ts";
import { withDefaults } from "../../train/config.ts";
import { buildPreferenceExamples, buildSftExamples } from "../../train/examples.ts";
import { microBatch } from "../../train/objectives.ts";
import { StepRunner } from "../../train/runner.ts";
import { AdamW } from "../../train/optimizer.ts";
import { train } from "../../train/trainer.ts";
import { assert, assertEquals, assertRejects } from "../asserts.ts";
import { assertClose, f16Capability, GPU_TEST, testGpu, testNeeding } from "../helpers.ts";
import { writeMicroModel } from "../model/micro_model.ts";

const F16 = await f16Capability();

const quiet = { info: () => {}, progress: () => {} };
let micro: Promise<string> | undefined;
function microModel(): Promise<string> {
  micro ??= (async () => writeMicroModel(`${await Deno.makeTempDir({ prefix: "micro-" })}/model`))();
  return micro;
}

/** Gradients and metrics of one optimizer step over the given micro-batches. */
async function stepOnce(gpu: Gpu, objective: ObjectiveKind, groups: number[][]) {
  const dir = await microModel();
  const tok = await loadTokenizer(dir);
  const pref = objective !== "sft";
  const rows = (await loadDataset(pref ? BUNDLED_DATA.preference.pathname : BUNDLED_DATA.sft.pathname)).rows
    .slice(0, 4);
  const loaded = await loadLlama(gpu, dir, { trainable: true, maxTokens: 4 * 2 * 96, maxPositions: 96 });
  const opt = new AdamW(gpu, [loaded.params], { maxGradNorm: 1 });
  const settings = { objective, beta: 0.1, lossType: "sigmoid" as const, orpoNll: "whole" as const };
  const runner = new StepRunner(gpu, loaded.model, opt, settings, 8);
  const opts = { padId: 0, padMultiple: 96 };
  const ref = new Float32Array([-40, -45, -38, -50, -41, -44, -39, -47]);
  const mbs = groups.map((g) => {
    if (!pref) {
      const ex = buildSftExamples(rows as SftRow[], tok, { maxLength: 96 }).examples;
      return microBatch(collateSft(g.map((i) => ex[i]), g, opts), settings);
    }
    const ex = buildPreferenceExamples(rows as PreferenceRow[], tok, { maxLength: 96 }).examples;
    return microBatch(collatePreference(g.map((i) => ex[i]), g, opts), settings, ref);
  });
  const { values } = await runner.step(mbs, 1e-3, 1);
  const grads = await readRows(gpu, loaded.params.specs.map((s) => loaded.params.blocks(s.name, "grad")));
  return { values, grads: grads as Float32Array[] };
}

for (const objective of ["sft", "dpo", "orpo"] as const) {
  Deno.test(
    `trainer: ${objective} with 2 accumulated half batches equals 1 full batch`,
    GPU_TEST,
    async () => {
      const gpu = await testGpu();
      const full = await stepOnce(gpu, objective, [[0, 1, 2, 3]]);
      const halves = await stepOnce(gpu, objective, [[0, 1], [2, 3]]);
      for (const [k, v] of Object.entries(full.values)) {
        assertClose([halves.values[k]], [v], `metric ${k}`, 1e-5, 1e-4);
      }
      full.grads.forEach((g, i) => assertClose(halves.grads[i], g, `gradient ${i}`, 1e-7, 1e-4));
      assert(
        full.grads.some((g) => g.some((x) => x !== 0)),
        "gradients are all zero",
      );
    },
  );
}

Deno.test(
  "trainer: SFT's mean_token_accuracy is the share of loss tokens whose argmax is the target (CPU reference)",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const dir = await microModel();
    const tok = await loadTokenizer(dir);
    const rows = (await loadDataset(BUNDLED_DATA.sft.pathname)).rows.slice(0, 4) as SftRow[];
    const loaded = await loadLlama(gpu, dir, { trainable: true, maxTokens: 4 * 96, maxPositions: 96 });
    const weights = await readParams(gpu, loaded.params);
    const opt = new AdamW(gpu, [loaded.params], { maxGradNorm: 1 });
    const settings = { objective: "sft" as const, beta: 0.1 };
    const runner = new StepRunner(gpu, loaded.model, opt, settings, 4);
    const examples = buildSftExamples(rows, tok, { maxLength: 96 }).examples;
    const batch = collateSft(examples, [0, 1, 2, 3], { padId: 0, padMultiple: 96 });
    const { values } = await runner.step([microBatch(batch, settings)], 0, 1);
    const { logits } = referenceForward(loaded.config, loaded.config.rope, weights, batch);
    const V = loaded.config.vocabSize;
    let correct = 0, total = 0;
    for (let r = 0; r < batch.B * batch.T; r++) {
      if (!batch.lossMask[r]) continue;
      const row = logits.subarray(r * V, (r + 1) * V);
      let best = 0;
      for (let v = 1; v < V; v++) if (row[v] > row[best]) best = v;
      total++;
      if (best === batch.targets[r]) correct++;
    }
    assert(total > 0 && correct > 0, `${correct} of ${total} tokens right: the check would prove little`);
    assertClose([values.mean_token_accuracy], [correct / total], "mean_token_accuracy", 1e-6, 0);
  },
);

async function trainMicro(out: string, over: Record<string, unknown> = {}, stopAfter?: number) {
  const cfg = withDefaults("orpo", {
    model: await microModel(),
    data: [BUNDLED_DATA.preference.pathname],
    out,
    maxLength: 64,
    batchSize: 4,
    gradAccum: 2,
    maxSteps: 6,
    lr: 1e-2,
    warmupSteps: 2,
    schedule: "cosine",
    weightDecay: 0.01,
    evalFraction: 0.05,
    evalEvery: 3,
    // Log entries average two steps each, so the stop after step 3 falls inside one.
    logEvery: 2,
    ...over,
  });
  return await train(cfg, { gpu: await testGpu(), log: quiet, stopAfter });
}

Deno.test(
  "trainer: kill and resume gives bit-for-bit the weights of an uninterrupted run",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const root = await Deno.makeTempDir({ prefix: "resume-" });
    const whole = await trainMicro(`${root}/whole`);
    assert(whole.lastLoss! < whole.firstLoss!, `loss did not fall: ${whole.firstLoss} → ${whole.lastLoss}`);
    const stopped = await trainMicro(`${root}/split`, {}, 3);
    assertEquals(stopped.steps, 3);
    const resumed = await trainMicro(`${root}/split`, { resume: true });
    assertEquals(resumed.steps, 6);
    const a = await loadLlama(gpu, whole.finalDir, { trainable: false, maxTokens: 8 });
    const b = await loadLlama(gpu, resumed.finalDir, { trainable: false, maxTokens: 8 });
    const wa = await readParams(gpu, a.params), wb = await readParams(gpu, b.params);
    for (const [name, v] of wa) assertEquals(wb.get(name), v, name);
    // The metrics log of the resumed run holds each step once, identical to the uninterrupted run's.
    const lines = async (dir: string) =>
      (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim().split("\n").map((l) => JSON.parse(l)).filter((
        r,
      ) => r.loss !== undefined).map(({ step, loss, grad_norm }) => ({ step, loss, grad_norm }));
    assertEquals(await lines(`${root}/split`), await lines(`${root}/whole`));
    // A finished run resumes to nothing left to do.
    const again = await trainMicro(`${root}/split`, { resume: true });
    assertEquals(again.steps, 6);
    await Deno.remove(root, { recursive: true });
  },
);

Deno.test("trainer: save → load gives the same logits (F32 exactly, BF16 closely)", GPU_TEST, async () => {
  const gpu = await testGpu();
  const root = await Deno.makeTempDir({ prefix: "save-" });
  const run = await trainMicro(`${root}/run`, { maxSteps: 2, evalFraction: 0 });
  const { runParityLogits } = await import("./logits_helper.ts");
  const base = await runParityLogits(gpu, await microModel());
  const trained = await runParityLogits(gpu, run.finalDir);
  assert(trained.some((x, i) => x !== base[i]), "training changed nothing");
  // Reload the trained folder, save it as BF16, reload: logits agree to bf16 precision.
  const loaded = await loadLlama(gpu, run.finalDir, { trainable: false, maxTokens: 64 });
  const { saveLlama } = await import("../../model/load.ts");
  await saveLlama(gpu, loaded, `${root}/f32`, { dtype: "F32" });
  await saveLlama(gpu, loaded, `${root}/bf16`, { dtype: "BF16" });
  assertEquals(await runParityLogits(gpu, `${root}/f32`), trained);
  assertClose(await runParityLogits(gpu, `${root}/bf16`), trained, "bf16 logits", 5e-2, 2e-2);
  await Deno.remove(root, { recursive: true });
});

Deno.test(
  "trainer: LoRA adapters save in PEFT layout, load back, and merge to the same logits",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const root = await Deno.makeTempDir({ prefix: "lora-" });
    const run = await trainMicro(`${root}/run`, {
      maxSteps: 3,
      evalFraction: 0,
      lora: { r: 4, alpha: 8, targets: ["q_proj", "v_proj", "down_proj"], rslora: false },
      merge: true,
    });
    const config = JSON.parse(await Deno.readTextFile(`${run.finalDir}/adapter_config.json`));
    assertEquals([config.peft_type, config.r, config.lora_alpha, config.task_type], [
      "LORA",
      4,
      8,
      "CAUSAL_LM",
    ]);
    const { SafetensorsFile } = await import("../../io/safetensors.ts");
    const names = [...(await SafetensorsFile.open(`${run.finalDir}/adapter_model.safetensors`)).names()];
    assert(names.includes("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"), names.join(", "));
    const { runParityLogits } = await import("./logits_helper.ts");
    const adapted = await runParityLogits(gpu, await microModel(), run.finalDir);
    const merged = await runParityLogits(gpu, run.mergedDir!);
    const base = await runParityLogits(gpu, await microModel());
    assertClose(merged, adapted, "merged vs adapter logits", 1e-4, 1e-4);
    assert(adapted.some((x, i) => Math.abs(x - base[i]) > 1e-4), "the adapter changed nothing");
    await Deno.remove(root, { recursive: true });
  },
);

Deno.test(
  "trainer: an adapter names its base by absolute path with the tokenizer beside it; --model ADAPTER trains it further",
  GPU_TEST,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "lora-again-" });
    const lora = { r: 4, alpha: 8, targets: ["q_proj", "v_proj"] as ("q_proj" | "v_proj")[], rslora: false };
    const first = await trainMicro(`${root}/first`, { maxSteps: 3, evalFraction: 0, lora });
    const config = JSON.parse(await Deno.readTextFile(`${first.finalDir}/adapter_config.json`));
    assertEquals(config.base_model_name_or_path, resolve(await microModel()));
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
      assert((await Deno.stat(`${first.finalDir}/${f}`)).isFile, `${f} beside the adapter`);
    }
    // Training the adapter folder starts from its weights (the first batch's loss differs from a fresh
    // adapter's, which starts exactly at the base model) and keeps its own rank, over the same base.
    const again = await trainMicro(`${root}/again`, {
      model: first.finalDir,
      maxSteps: 2,
      evalFraction: 0,
      lora: { ...lora, r: 16 },
    });
    const fresh = await trainMicro(`${root}/fresh`, { maxSteps: 2, evalFraction: 0, lora });
    assertEquals(fresh.firstLoss, first.firstLoss);
    assert(again.firstLoss !== first.firstLoss, "the adapter's weights were not the starting point");
    const againConfig = JSON.parse(await Deno.readTextFile(`${again.finalDir}/adapter_config.json`));
    assertEquals([againConfig.r, againConfig.base_model_name_or_path], [4, config.base_model_name_or_path]);
    // Full training of an adapter folder is refused, saying what to do.
    const err = await assertRejects(() =>
      trainMicro(`${root}/full`, { model: first.finalDir, maxSteps: 1, evalFraction: 0 })
    );
    assert(String((err as Error).message).includes("is a PEFT adapter"), (err as Error).message);
    await Deno.remove(root, { recursive: true });
  },
);

Deno.test("trainer: DPO computes reference log-probs once and caches them", GPU_TEST, async () => {
  const root = await Deno.makeTempDir({ prefix: "dpo-" });
  const cfg = withDefaults("dpo", {
    model: await microModel(),
    data: [BUNDLED_DATA.preference.pathname],
    out: `${root}/run`,
    maxLength: 64,
    batchSize: 4,
    maxSteps: 2,
    lr: 1e-3,
    logEvery: 1,
  });
  const messages: string[] = [];
  const log = { info: (m: string) => messages.push(m), progress: () => {} };
  const run = await train(cfg, { gpu: await testGpu(), log });
  assert(messages.some((m) => m.includes("reference log-probs of 200 pairs")), messages.join("\n"));
  const cached = JSON.parse(await Deno.readTextFile(`${root}/run/reference_logps.json`));
  assertEquals(cached.train.length, 400);
  assert(Number.isFinite(run.lastLoss), "DPO loss is not finite");
  // The first step's loss is log 2: the policy starts equal to the reference.
  const first = JSON.parse((await Deno.readTextFile(run.metricsFile)).split("\n")[0]);
  assertClose([first.loss], [Math.LN2], "first DPO loss", 1e-5, 0);
  await Deno.remove(root, { recursive: true });
});

Deno.test("trainer: SFT data for a preference objective is refused naming the file", GPU_TEST, async () => {
  const root = await Deno.makeTempDir({ prefix: "bad-" });
  const cfg = withDefaults("orpo", {
    model: await microModel(),
    data: [BUNDLED_DATA.sft.pathname],
    out: root,
  });
  const gpu = await testGpu();
  await assertRejects(() => train(cfg, { gpu, log: quiet }), Error, "ko_sft_tiny.jsonl");
  await Deno.remove(root, { recursive: true });
});

Deno.test(
  "trainer: a run killed with SIGKILL mid-training resumes to the same weights",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const root = await Deno.makeTempDir({ prefix: "kill-" });
    const model = await microModel();
    const flags = (out: string) => [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-net",
      new URL("../../tasks/orpo.ts", import.meta.url).pathname,
      "--model",
      model,
      "--data",
      BUNDLED_DATA.preference.pathname,
      "--out",
      out,
      "--max-length",
      "64",
      "--batch-size",
      "4",
      "--max-steps",
      "8",
      "--lr",
      "1e-2",
      "--save-every",
      "2",
    ];
    const whole = await trainMicro(`${root}/whole`, {
      maxSteps: 8,
      gradAccum: 1,
      evalFraction: 0,
      warmupSteps: 0,
      schedule: "linear",
      weightDecay: 0,
      lr: 1e-2,
      saveEvery: 2,
    });
    const child = new Deno.Command(Deno.execPath(), {
      args: flags(`${root}/killed`),
      stdout: "null",
      stderr: "null",
    }).spawn();
    // Kill it as soon as its second checkpoint exists (mid-run, possibly mid-write of the next one).
    for (let i = 0; i < 600; i++) {
      const done = await Deno.stat(`${root}/killed/checkpoint-4/trainer_state.json`).then(
        () => true,
        () => false,
      );
      if (done) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill("SIGKILL");
    await child.status;
    const resumed = new Deno.Command(Deno.execPath(), {
      args: [...flags(`${root}/killed`), "--resume"],
      stdout: "null",
      stderr: "piped",
    });
    const out = await resumed.output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    assert(new TextDecoder().decode(out.stderr).includes("resuming from"), "the second run did not resume");
    const a = await readParams(
      gpu,
      (await loadLlama(gpu, whole.finalDir, { trainable: false, maxTokens: 8 })).params,
    );
    const b = await readParams(
      gpu,
      (await loadLlama(gpu, `${root}/killed`, { trainable: false, maxTokens: 8 })).params,
    );
    for (const [name, v] of a) assertEquals(b.get(name), v, name);
    await Deno.remove(root, { recursive: true });
  },
);

testNeeding(
  F16,
  "trainer: LoRA over an f16 frozen base trains and matches the f32 base closely",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const root = await Deno.makeTempDir({ prefix: "lora-f16-" });
    const dir = await microModel();
    // The f16 base alone: every linear weight held as f16, logits within f16 rounding of the f32 model's.
    const f16 = await loadLlama(gpu, dir, { trainable: false, maxTokens: 64, frozenF16: true });
    assertEquals(f16.params.value("model.layers.0.self_attn.q_proj.weight").dtype, "f16");
    assertEquals(f16.params.value("model.embed_tokens.weight").dtype, "f16");
    assertEquals(f16.params.value("model.norm.weight").dtype, "f32");
    const { runParityLogits } = await import("./logits_helper.ts");
    const base32 = await runParityLogits(gpu, dir);
    const lora = { r: 4, alpha: 8, targets: ["q_proj", "v_proj"] as ("q_proj" | "v_proj")[], rslora: false };
    const runs = [];
    for (const f16Base of [false, true]) {
      runs.push(await trainMicro(`${root}/${f16Base}`, { maxSteps: 3, evalFraction: 0, lora, f16Base }));
    }
    const [a, b] = await Promise.all(runs.map((r) => runParityLogits(gpu, dir, r.finalDir)));
    assertClose(b, a, "adapters trained over f16 and f32 bases", 2e-2, 2e-2);
    assert(a.some((x, i) => Math.abs(x - base32[i]) > 1e-4), "the adapter changed nothing");
    assertClose([runs[1].lastLoss!], [runs[0].lastLoss!], "last loss", 1e-2, 1e-2);
    await Deno.remove(root, { recursive: true });
  },
);
