import { join, resolve } from "node:path";
import type { LlamaDims } from "../../io/llama_architecture.ts";
import { resolveModelSource } from "../../io/model_source.ts";
import {
  adaptedLinears,
  adapterConfigJson,
  AdapterError,
  checkAdapterFits,
  parseAdapterConfig,
  readPeftAdapter,
  writePeftAdapter,
} from "../../io/peft_adapter.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes, assertThrows } from "../asserts.ts";
import { randn } from "../helpers.ts";
import { writeMicroModel } from "../model/micro_model.ts";
import { baseModelReference, loraParamSpecs, saveLoraAdapter } from "../../train/lora.ts";

const DIMS: LlamaDims = {
  hiddenSize: 32,
  intermediateSize: 48,
  numLayers: 3,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 16,
  vocabSize: 384,
  rmsNormEps: 1e-5,
  tieWordEmbeddings: false,
  attentionBias: false,
  attentionOutputBias: false,
  mlpBias: false,
};

const names = (spec: Parameters<typeof adaptedLinears>[1]) =>
  adaptedLinears(DIMS, spec).map((l) => `${l.name}:${l.rank}:${l.scale}`);

Deno.test("peft adapter: target_modules, layers_to_transform, rank_pattern and alpha_pattern as PEFT applies them", () => {
  // A list matches names and suffixes; layers_to_transform keeps listed layers only.
  assertEquals(names({ r: 4, alpha: 8, targets: ["q_proj", "mlp.down_proj"], layersToTransform: [0, 2] }), [
    "model.layers.0.self_attn.q_proj:4:2",
    "model.layers.0.mlp.down_proj:4:2",
    "model.layers.2.self_attn.q_proj:4:2",
    "model.layers.2.mlp.down_proj:4:2",
  ]);
  assertEquals(
    names({ r: 4, alpha: 8, targets: ["v_proj"], layersToTransform: 1, layersPattern: "layers" }),
    ["model.layers.1.self_attn.v_proj:4:2"],
  );
  // A string is a regular expression over whole names (layers_to_transform does not apply, as in PEFT).
  assertEquals(
    names({ r: 2, alpha: 2, targets: String.raw`.*\.1\.self_attn\.(k|o)_proj`, layersToTransform: [0] }),
    ["model.layers.1.self_attn.k_proj:2:1", "model.layers.1.self_attn.o_proj:2:1"],
  );
  // The first pattern key matching the end of a name wins; rsLoRA scales by alpha/√r per module.
  assertEquals(
    names({
      r: 4,
      alpha: 8,
      targets: ["q_proj", "up_proj"],
      layersToTransform: [1],
      rankPattern: { "layers.1.self_attn.q_proj": 16, "q_proj": 2 },
      alphaPattern: { "^model.layers.1.mlp.up_proj": 32 },
      rslora: true,
    }),
    ["model.layers.1.self_attn.q_proj:16:2", "model.layers.1.mlp.up_proj:4:16"],
  );
  assertEquals(
    names({ r: 4, alpha: 4, targets: ["gate_proj"], excludeModules: ["layers.0.mlp.gate_proj"] }),
    [
      "model.layers.1.mlp.gate_proj:4:1",
      "model.layers.2.mlp.gate_proj:4:1",
    ],
  );
  // Non-linear modules are refused by name; so is a spec matching nothing.
  assertThrows(
    () => adaptedLinears(DIMS, { r: 4, alpha: 8, targets: ["lm_head"] }),
    AdapterError,
    `"lm_head"`,
  );
  assertThrows(
    () => adaptedLinears(DIMS, { r: 4, alpha: 8, targets: "model.embed_tokens" }),
    AdapterError,
    "embed_tokens",
  );
  assertThrows(
    () => adaptedLinears(DIMS, { r: 4, alpha: 8, targets: ["c_attn"] }),
    AdapterError,
    "matches no linear",
  );
  assertThrows(
    () => adaptedLinears(DIMS, { r: 4, alpha: 8, targets: "(?P<x>q)" }),
    AdapterError,
    "target_modules",
  );
});

Deno.test("peft adapter: fields that cannot be applied are refused, naming the field", () => {
  const base = { peft_type: "LORA", r: 8, lora_alpha: 16, target_modules: ["q_proj"] };
  const refused: [Record<string, unknown>, string][] = [
    [{ use_dora: true }, "use_dora"],
    [{ modules_to_save: ["lm_head"] }, "modules_to_save"],
    [{ lora_bias: true }, "lora_bias"],
    [{ bias: "all" }, "bias"],
    [{ fan_in_fan_out: true }, "fan_in_fan_out"],
    [{ layer_replication: [[0, 2]] }, "layer_replication"],
    [{ trainable_token_indices: [5] }, "trainable_token_indices"],
    [{ peft_type: "IA3" }, "peft_type"],
    [{ r: 0 }, "r"],
    [{ rank_pattern: { q_proj: "8" } }, "rank_pattern"],
    [{ layers_to_transform: "0" }, "layers_to_transform"],
  ];
  for (const [extra, field] of refused) {
    const e = assertThrows(
      () => parseAdapterConfig({ ...base, ...extra }, "a/adapter_config.json"),
      AdapterError,
    );
    assertStringIncludes(e.message, `a/adapter_config.json: ${field}`, JSON.stringify(extra));
  }
  // Harmless values of those fields load.
  const ok = parseAdapterConfig(
    {
      ...base,
      use_dora: false,
      modules_to_save: null,
      bias: "none",
      rank_pattern: {},
      base_model_name_or_path: "org/base",
    },
    "a",
  );
  assertEquals([ok.spec.rankPattern, ok.baseModel], [undefined, "org/base"]);
  assertEquals(parseAdapterConfig({ ...base, target_modules: "all-linear" }, "a").spec.targets.length, 7);
});

Deno.test("peft adapter: written and read back with patterns; shapes checked against the base", async () => {
  const dir = await Deno.makeTempDir({ prefix: "peft-adapter-" });
  try {
    const spec = {
      r: 4,
      alpha: 8,
      targets: ["q_proj", "down_proj"],
      rankPattern: { "layers.2.mlp.down_proj": 6 },
      alphaPattern: { q_proj: 3 },
      layersToTransform: [0, 2],
    };
    const weights = new Map(
      loraParamSpecs(DIMS, spec).map((p, i) => [p.name, randn(p.shape[0] * p.shape[1], i)]),
    );
    await writePeftAdapter(dir, weights, spec, DIMS, "/abs/base");
    const back = await readPeftAdapter(dir);
    assertEquals(back.baseModel, "/abs/base");
    assertEquals(back.spec.rankPattern, spec.rankPattern);
    assertEquals(back.spec.layersToTransform, [0, 2]);
    assertEquals(back.shapes.get("model.layers.2.mlp.down_proj.lora_B"), [32, 6]);
    assertEquals(checkAdapterFits(back, DIMS).map((l) => l.rank), [4, 4, 4, 6]);
    const json = JSON.parse(await Deno.readTextFile(join(dir, "adapter_config.json")));
    assertEquals(json, { ...adapterConfigJson(spec, "/abs/base"), layers_to_transform: [0, 2] });
    // A base of another shape, and an adapter missing a tensor, are named.
    assertThrows(
      () => checkAdapterFits(back, { ...DIMS, hiddenSize: 64 }),
      AdapterError,
      "has shape [4, 32]",
    );
    back.shapes.delete("model.layers.0.self_attn.q_proj.lora_A");
    assertThrows(
      () => checkAdapterFits(back, DIMS),
      AdapterError,
      `"model.layers.0.self_attn.q_proj.lora_A.weight" is missing`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("peft adapter: a saved adapter names its base by absolute path and carries the tokenizer; it resolves from any folder", async () => {
  const root = await Deno.makeTempDir({ prefix: "peft-source-" });
  const cwd = Deno.cwd();
  try {
    const base = await writeMicroModel(`${root}/base`);
    Deno.chdir(root);
    assertEquals(await baseModelReference("base"), resolve(root, "base"));
    assertEquals(await baseModelReference("Qwen/Qwen2.5-0.5B"), "Qwen/Qwen2.5-0.5B");
    const spec = { r: 2, alpha: 4, targets: ["v_proj"] };
    const dims = { ...DIMS, numLayers: 2 };
    const weights = new Map(
      loraParamSpecs(dims, spec).map((p) => [p.name, new Float32Array(p.shape[0] * p.shape[1])]),
    );
    await saveLoraAdapter(`${root}/adapter`, weights, spec, "base", { dims, tokenizerFrom: base });
    Deno.chdir(cwd);
    const cfg = JSON.parse(await Deno.readTextFile(`${root}/adapter/adapter_config.json`));
    assertEquals(cfg.base_model_name_or_path, resolve(root, "base"));
    assert((await Deno.stat(`${root}/adapter/tokenizer.json`)).isFile, "tokenizer.json beside the adapter");
    const source = await resolveModelSource(`${root}/adapter`);
    assertEquals([source.modelDir, source.tokenizerDir], [resolve(root, "base"), `${root}/adapter`]);
    assertEquals(source.adapter?.layout.map((l) => l.name), [
      "model.layers.0.self_attn.v_proj",
      "model.layers.1.self_attn.v_proj",
    ]);
    // A base that does not resolve is named with the field it came from.
    cfg.base_model_name_or_path = `${root}/gone`;
    await Deno.writeTextFile(`${root}/adapter/adapter_config.json`, JSON.stringify(cfg));
    const e = await assertRejects(() => resolveModelSource(`${root}/adapter`), AdapterError);
    assertStringIncludes(e.message, "adapter_config.json: base_model_name_or_path");
  } finally {
    Deno.chdir(cwd);
    await Deno.remove(root, { recursive: true });
  }
});
