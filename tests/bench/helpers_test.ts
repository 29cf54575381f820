import { assert, assertAlmostEquals, assertEquals, assertRejects, assertThrows } from "../asserts.ts";
import { mean, median } from "../../bench/measure.ts";
import { createRandomLlama, loraSpecFor } from "../../bench/random_model.ts";
import type { BenchReport } from "../../bench/report.ts";
import { countParams, SHAPE_SETTINGS, shapeFromFlags } from "../../bench/shapes.ts";
import { parseSettings } from "../../io/settings.ts";
import { parseTorchReference, sameModel } from "../../bench/torch_reference.ts";
import { collectRatios } from "../../bench/merge_results.ts";
import { f16ToF32 } from "../../gpu/half.ts";
import { f16Capability, GPU_TEST, testGpu, testNeeding } from "../helpers.ts";

const F16 = await f16Capability();

Deno.test("bench shapes: presets have the published parameter counts", () => {
  // TinyLlama-1.1B and Llama-2-7B as their model cards and `model.num_parameters()` give them.
  assertEquals(countParams(shapeFromFlags({ preset: "tinyllama" }).config), 1_100_048_384);
  assertEquals(countParams(shapeFromFlags({ preset: "llama7b" }).config), 6_738_415_616);
  const tiny = shapeFromFlags({});
  assertEquals([tiny.preset, tiny.name, tiny.config.hiddenSize, tiny.config.numLayers], [
    "tiny",
    "tiny",
    128,
    4,
  ]);
});

Deno.test("bench shapes: flags override one field and rename the shape; bad values name the flag", () => {
  const s = shapeFromFlags(
    parseSettings(SHAPE_SETTINGS, ["--preset", "tinyllama", "--layers", "2", "--positions", "4096"]).values,
  );
  assertEquals([s.name, s.config.numLayers, s.config.maxPositionEmbeddings, s.config.hiddenSize], [
    "tinyllama+",
    2,
    4096,
    2048,
  ]);
  const shape = (...args: string[]) => shapeFromFlags(parseSettings(SHAPE_SETTINGS, args).values);
  assertThrows(
    () => shape("--preset", "gpt5"),
    Error,
    '--preset: expected tiny | tinyllama | llama7b, got "gpt5"',
  );
  assertThrows(() => shape("--hidden", "12.5"), Error, '--hidden: expected an integer ≥ 1, got "12.5"');
  assertThrows(() => shape("--heads", "4", "--kv-heads", "3"), Error, "num_key_value_heads");
  assertThrows(() => shapeFromFlags({ layers: 0 }), Error, "--layers: expected an integer ≥ 1, got 0");
});

const LOG = `torch 2.5.1 NVIDIA H100 80GB HBM3
some warning from transformers
RESULT torch matmul n=4096 dtype=torch.float32 tf32=False ms=2.674 TFLOPs=51.40
RESULT torch train tinyllama-1.1b mode=fp32 params=1100M bs=4 seq=1024 step_ms=692.2 tok_s=5917 mem_GB=42.3
FAIL amp RuntimeError('CUDA out of memory')
`;

Deno.test("torch reference: result lines parse; a broken field names the line and the field", () => {
  const ref = parseTorchReference(LOG, "torch.txt");
  assertEquals(ref.header, "torch 2.5.1 NVIDIA H100 80GB HBM3");
  assertEquals(ref.matmul, [{ n: 4096, dtype: "torch.float32", tf32: false, ms: 2.674, tflops: 51.4 }]);
  assertEquals(ref.train, [{
    name: "tinyllama-1.1b",
    mode: "fp32",
    paramsM: 1100,
    bs: 4,
    seq: 1024,
    stepMs: 692.2,
    tokS: 5917,
    memGB: 42.3,
  }]);
  assertEquals(ref.failures, ["FAIL amp RuntimeError('CUDA out of memory')"]);
  const broken = LOG.replace("tok_s=5917", "tok_s=fast");
  assertThrows(
    () => parseTorchReference(broken, "torch.txt"),
    Error,
    "torch.txt:4: field tok_s should be a number",
  );
  const noParams = LOG.replace("params=1100M", "params=1100");
  assertThrows(
    () => parseTorchReference(noParams, "t"),
    Error,
    "t:4: field params should be a number ending in M",
  );
});

Deno.test("torch reference: a result matches our model by its rounded parameter count", () => {
  assert(sameModel(1100, 1_100_048_384));
  assert(!sameModel(1100, 6_738_415_616));
  // LoRA r=16 on every linear layer adds 12.6 M parameters to TinyLlama: torch's LoRA line counts them.
  const lora = countParams(shapeFromFlags({ preset: "tinyllama" }).config) + 12_615_680;
  assert(sameModel(1113, lora));
  assert(!sameModel(1100, lora + 5_000_000));
});

Deno.test("bench statistics: mean and median; nothing measured is an error", () => {
  assertEquals(mean([1, 2, 6]), 3);
  assertEquals(median([5, 1, 3]), 3);
  assertEquals(median([4, 1, 3, 2]), 2.5);
  assertThrows(() => mean([]), RangeError, "no measurements");
});

Deno.test("merged results: run ratios are namespaced; matmul is compared with SGEMM at its own size", () => {
  const report = { ratios: { batchingGain: 3 } } as unknown as BenchReport;
  const torch = parseTorchReference(LOG, "t");
  const matmul = {
    describe: "NVIDIA H100",
    rows: [
      { M: 4096, N: 4096, K: 4096, trans: "NT", bDtype: "f32", kernel: "k", gflops: 25700 },
      { M: 4096, N: 2048, K: 2048, trans: "NT", bDtype: "f32", kernel: "k", gflops: 20000 },
      { M: 2048, N: 2048, K: 2048, trans: "NT", bDtype: "f32", kernel: "k", gflops: 20000 },
    ],
  };
  const ratios = collectRatios({ eval: report }, matmul, torch);
  assertEquals(Object.keys(ratios), ["eval.batchingGain", "matmul.4096x4096x4096.NT.vsCublasSgemm"]);
  assertAlmostEquals(ratios["matmul.4096x4096x4096.NT.vsCublasSgemm"], 0.5, 1e-12);
});

testNeeding(
  F16,
  "random model: initialised as transformers does, counted in the GPU's memory",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const before = gpu.liveBytes;
    const config = shapeFromFlags({}).config;
    const m = await createRandomLlama(gpu, config, {
      trainable: false,
      maxTokens: 64,
      maxPositions: 64,
      lora: loraSpecFor(4),
      f16Base: true,
    });
    const p = m.loaded.params;
    const [norm, embed, q] = await gpu.readMany([
      p.value("model.norm.weight"),
      p.value("model.embed_tokens.weight"),
      p.value("model.layers.3.self_attn.q_proj.weight"),
    ]);
    assert((norm as Float32Array).every((x) => x === 1), "norm weights are ones");
    assertEquals(p.value("model.embed_tokens.weight").dtype, "f16");
    assertEquals(p.value("model.layers.3.self_attn.q_proj.weight").dtype, "f16");
    for (
      const [name, values] of [["embed", f16ToF32(embed as Uint16Array)], [
        "q_proj",
        f16ToF32(q as Uint16Array),
      ]] as const
    ) {
      const std = Math.sqrt(values.reduce((s, x) => s + x * x, 0) / values.length);
      assertAlmostEquals(std, 0.02, 0.001, `${name} std`);
      assert(values.slice(0, 1000).some((x, i) => x !== values[i + 1]), `${name} is not constant`);
    }
    assertEquals(m.trainableParameters, 4 * 4 * (2 * 128 + 2 * (128 + 64) + 2 * 128 + 3 * (128 + 352)));
    assertEquals(m.parameters, countParams(config) + m.trainableParameters);
    assert(gpu.liveBytes - before > 2 * countParams(config), "the weights are counted");
    m.destroy();
    assertEquals(gpu.liveBytes, before, "destroy releases every buffer the model made");
    await assertRejects(
      () => createRandomLlama(gpu, config, { trainable: true, maxTokens: 64, maxPositions: 4096 }),
      RangeError,
      "4096 positions exceed the shape's max_position_embeddings (2048)",
    );
  },
);
