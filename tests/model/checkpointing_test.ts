import { Gpu } from "../../gpu/runtime.ts";
import { readRows, singleBlock, writeRows } from "../../gpu/row_blocks.ts";
import { type LoadedLlama, loadLlama, unloadLlama } from "../../model/load.ts";
import { ParamSet } from "../../model/params.ts";
import { openModelFolder } from "../../io/hf_model.ts";
import type { LlamaDims } from "../../io/llama_architecture.ts";
import { initLora, loraAdapters, loraParamSpecs, type LoraSpec } from "../../train/lora.ts";
import { writeBatch } from "../../model/inputs.ts";
import { assert, assertEquals } from "../asserts.ts";
import { assertClose, GPU_TEST, randn, rng, testGpu } from "../helpers.ts";
import { FIXTURE_PATH } from "../kernels/fixture_reader.ts";

const FIXTURE_MODEL = `${FIXTURE_PATH}/model`;
const B = 3, T = 21;

/** A batch of random ids (the last sequence padded after 15 tokens) and a random d(loss)/d(logp). */
function batch(vocab: number) {
  const r = rng(5);
  const ids = Array.from({ length: B * T }, () => Math.floor(r() * vocab));
  const attentionMask = ids.map((_, i) => (i >= 2 * T + 15 ? 0 : 1));
  return { batch: { B, T, ids, attentionMask }, dlogp: randn(B * T, 6) };
}

/** Forward and backward once; returns the log-probs, every parameter gradient and the bytes it allocated. */
async function gradients(
  gpu: Gpu,
  gradientCheckpointing: boolean,
  lora?: { spec: LoraSpec; params: ParamSet; dims: LlamaDims },
): Promise<{ logp: Float32Array; grads: Map<string, Float32Array>; bytes: number }> {
  const before = gpu.liveBytes;
  const loaded: LoadedLlama = await loadLlama(gpu, FIXTURE_MODEL, {
    trainable: !lora,
    maxTokens: B * T,
    maxPositions: T,
    gradientCheckpointing,
    lora: lora ? loraAdapters(lora.params, lora.spec, lora.dims) : undefined,
  });
  try {
    const io = loaded.model.allocStep();
    const { batch: b, dlogp } = batch(loaded.config.vocabSize);
    writeBatch(gpu, io, b);
    gpu.write(io.dlogp, dlogp);
    const set = lora ? lora.params : loaded.params;
    const names = set.specs.map((s) => s.name);
    // Gradients accumulate: start from zero (the LoRA set is shared by both runs).
    for (const n of names) {
      const g = set.blocks(n, "grad");
      writeRows(gpu, g, new Float32Array(g.rows * g.cols));
    }
    gpu.run([...loaded.model.forward(B, T, io), ...loaded.model.backward(B, T, io)]);
    const bytes = gpu.liveBytes - before;
    const [logp, ...grads] = await readRows(gpu, [
      singleBlock(io.logp, [B * T]),
      ...names.map((n) => set.blocks(n, "grad")),
    ]);
    return {
      logp: logp as Float32Array,
      grads: new Map(names.map((n, i) => [n, grads[i] as Float32Array])),
      bytes,
    };
  } finally {
    unloadLlama(loaded);
  }
}

Deno.test(
  "gradient checkpointing: recomputing each layer gives bit-identical log-probs and gradients, with less memory",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const kept = await gradients(gpu, false);
    const recomputed = await gradients(gpu, true);
    assertEquals(recomputed.logp, kept.logp, "log-probs");
    for (const [name, g] of kept.grads) {
      assert(g.some((v) => v !== 0), `${name}: the test needs a nonzero gradient`);
      assertEquals(recomputed.grads.get(name), g, name);
    }
    assert(
      recomputed.bytes < kept.bytes,
      `checkpointing allocated ${recomputed.bytes} bytes, keeping every activation ${kept.bytes}`,
    );
  },
);

Deno.test(
  "gradient checkpointing: LoRA adapters' gradients are bit-identical too",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const dims = (await openModelFolder(FIXTURE_MODEL)).config;
    const spec: LoraSpec = { r: 3, alpha: 6, targets: ["q_proj", "v_proj", "down_proj"] };
    const params = ParamSet.create(gpu, loraParamSpecs(dims, spec), { trainable: true, label: "lora" });
    // PEFT starts B at zero, which would leave A's gradient zero: give B values so both are tested.
    for (const [name, w] of initLora(dims, spec, 3)) {
      gpu.write(params.value(name), name.endsWith("lora_B") ? randn(w.length, w.length, 0.1) : w);
    }
    const kept = await gradients(gpu, false, { spec, params, dims });
    const recomputed = await gradients(gpu, true, { spec, params, dims });
    for (const [name, g] of kept.grads) {
      assert(g.some((v) => v !== 0), `${name}: the test needs a nonzero gradient`);
      assertEquals(recomputed.grads.get(name), g, name);
    }
    params.destroy();
  },
);

Deno.test(
  "gradient checkpointing with bindings forced small (weights in blocks, one sequence per group) matches",
  GPU_TEST,
  async () => {
    const reference = await gradients(await testGpu(), false);
    const gpu = await Gpu.create({ maxBindingBytes: 20000 });
    try {
      const split = await gradients(gpu, true);
      assertClose(split.logp, reference.logp, "log-probs", 1e-5);
      for (const [name, g] of reference.grads) assertClose(split.grads.get(name)!, g, name, 1e-6, 1e-4);
    } finally {
      gpu.destroy();
    }
  },
);
