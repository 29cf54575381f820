import {
  assertWithinSlidingWindow,
  type ModelConfig,
  ModelFolderError,
  parseGenerationConfig,
  parseModelConfig,
} from "../../io/hf_config.ts";
import type { RopeConfig } from "../../io/llama_architecture.ts";
import { expectedParameterShapes, openModelFolder, planShards, saveModelFolder } from "../../io/hf_model.ts";
import { bf16ToF32, f32ToBf16, f32ToF16, SafetensorsFile, writeSafetensors } from "../../io/safetensors.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../asserts.ts";
import { randn } from "../helpers.ts";
import { FIXTURE_PATH } from "../kernels/fixture_reader.ts";

const FIXTURE = `${FIXTURE_PATH}/model`;

const root = Deno.makeTempDirSync({ prefix: "hf-model-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

function tempDir(): Promise<string> {
  return Deno.makeTempDir({ dir: root });
}

/** A tiny llama config in the pre-transformers-5 style (top-level rope_theta), with overrides. */
function tinyConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 40,
    rms_norm_eps: 1e-5,
    max_position_embeddings: 64,
    rope_theta: 500000,
    bos_token_id: 1,
    eos_token_id: [2, 3],
    torch_dtype: "float32",
    tie_word_embeddings: false,
    ...overrides,
  };
}

function randomParams(cfg: ModelConfig, seed = 1): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  let s = seed;
  for (const [name, shape] of expectedParameterShapes(cfg)) {
    out.set(
      name,
      randn(shape.reduce((a, b) => a * b), s++),
    );
  }
  return out;
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Writes a model folder by hand: a config and one safetensors file holding exactly `tensors`. */
async function handMadeFolder(
  config: Record<string, unknown>,
  tensors: Record<string, number[]>,
): Promise<string> {
  const dir = await tempDir();
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
  const spec = Object.fromEntries(
    Object.entries(tensors).map((
      [n, shape],
    ) => [n, { dtype: "F32" as const, shape, data: new Float32Array(size(shape)) }]),
  );
  await writeSafetensors(`${dir}/model.safetensors`, spec, { format: "pt" });
  return dir;
}

Deno.test("hf_model: the public fixture's config and every tensor shape", async () => {
  const m = await openModelFolder(FIXTURE);
  const c = m.config;
  assertEquals(
    [
      c.modelType,
      c.hiddenSize,
      c.intermediateSize,
      c.numLayers,
      c.numHeads,
      c.numKvHeads,
      c.headDim,
      c.vocabSize,
    ],
    ["llama", 64, 176, 2, 4, 2, 16, 512],
  );
  assertEquals(c.rope, { headDim: 16, theta: 10000 }, "rope_parameters (transformers 5 form), default type");
  assertEquals([c.rmsNormEps, c.maxPositionEmbeddings, c.tieWordEmbeddings], [1e-5, 128, false]);
  assertEquals([c.bosTokenId, c.eosTokenIds, c.padTokenId, c.torchDtype], [1, [2], 0, "float32"]);
  assertEquals([c.attentionBias, c.mlpBias, c.slidingWindow], [false, false, null]);
  assertEquals(m.generationConfig?.eosTokenIds, [2]);
  assertEquals(parseGenerationConfig({ eos_token_id: [7, 8], temperature: 0.6 }, "g").temperature, 0.6);
  assertThrows(
    () => parseGenerationConfig({ top_p: 1.5 }, "generation_config.json"),
    ModelFolderError,
    "generation_config.json: top_p must be a number in (0, 1], got 1.5",
  );
  assertEquals(m.tensorNames.length, 2 * 9 + 3);
  assertEquals(m.extraTensors, []);
  const st = await SafetensorsFile.open(`${FIXTURE}/model.safetensors`);
  for (const name of m.tensorNames) {
    assertEquals(st.info(name).shape, m.shapes.get(name), name);
    assertEquals(m.fileOf(name), "model.safetensors");
  }
  assertEquals(m.shapes.get("model.layers.1.self_attn.k_proj.weight"), [32, 64]);
  assertEquals(m.shapes.get("model.layers.0.mlp.down_proj.weight"), [64, 176]);
  assertEquals(await m.readF32("model.norm.weight"), await st.readF32("model.norm.weight"));
  assertEquals(m.dtypeOf("lm_head.weight"), "F32");
});

Deno.test("hf_model: both rope forms, linear and llama3 scaling, and their errors", () => {
  const llama31 = parseModelConfig(
    tinyConfig({
      rope_scaling: {
        factor: 8.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 8192,
        rope_type: "llama3",
      },
    }),
    "config.json",
  );
  const expected: RopeConfig = {
    headDim: 4,
    theta: 500000,
    scaling: {
      type: "llama3",
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    },
  };
  assertEquals(llama31.rope, expected);
  const v5 = parseModelConfig(
    tinyConfig({
      rope_theta: undefined,
      rope_parameters: {
        rope_type: "llama3",
        rope_theta: 500000,
        factor: 8.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 8192,
      },
    }),
    "config.json",
  );
  assertEquals(v5.rope, expected, "transformers 5 keeps the same values under rope_parameters");
  const linear = parseModelConfig(tinyConfig({ rope_scaling: { type: "linear", factor: 2 } }), "c.json");
  assertEquals(linear.rope.scaling, { type: "linear", factor: 2 });
  assertEquals(parseModelConfig(tinyConfig({ rope_theta: undefined }), "c.json").rope.theta, 10000);
  assertEquals(parseModelConfig(tinyConfig({ rope_scaling: null }), "c.json").rope.scaling, undefined);
  assertThrows(
    () => parseModelConfig(tinyConfig({ rope_scaling: { rope_type: "yarn", factor: 4 } }), "config.json"),
    ModelFolderError,
    'config.json: rope_scaling.rope_type must be "default", "linear" or "llama3"',
  );
  assertThrows(
    () =>
      parseModelConfig(
        tinyConfig({ rope_parameters: { rope_type: "default", rope_theta: 1e4 } }),
        "config.json",
      ),
    ModelFolderError,
    "rope_theta (500000) and rope_parameters.rope_theta (10000) disagree",
  );
  assertThrows(
    () => parseModelConfig(tinyConfig({ rope_scaling: { rope_type: "linear" } }), "config.json"),
    ModelFolderError,
    "config.json: rope_scaling.factor must be a positive number (it is required), got undefined",
  );
});

Deno.test("hf_model: config fields are validated with the file and field named", () => {
  assertThrows(
    () =>
      parseModelConfig(
        tinyConfig({ num_attention_heads: 12, num_key_value_heads: 5, head_dim: 8 }),
        "config.json",
      ),
    ModelFolderError,
    "config.json: num_attention_heads (12) must be divisible by num_key_value_heads (5)",
  );
  assertThrows(
    () => parseModelConfig(tinyConfig({ hidden_size: "16" }), "m/config.json"),
    ModelFolderError,
    'm/config.json: hidden_size must be a positive integer, got "16"',
  );
  assertThrows(
    () => parseModelConfig(tinyConfig({ vocab_size: undefined }), "config.json"),
    ModelFolderError,
    "config.json: vocab_size must be a positive integer (it is required)",
  );
  assertThrows(
    () => parseModelConfig(tinyConfig({ model_type: "gpt2" }), "config.json"),
    ModelFolderError,
    'config.json: model_type must be one of llama, mistral, qwen2, got "gpt2"',
  );
  assertThrows(
    () => parseModelConfig(tinyConfig({ architectures: ["LlamaForSequenceClassification"] }), "config.json"),
    ModelFolderError,
    "config.json: architectures must be a list naming a *ForCausalLM class",
  );
  assertThrows(
    () => parseModelConfig(tinyConfig({ eos_token_id: [2, "x"] }), "config.json"),
    ModelFolderError,
    "config.json: eos_token_id must be a token id, a list of token ids, or null",
  );
  assertThrows(
    () => parseModelConfig([], "config.json"),
    ModelFolderError,
    "config.json: expected a JSON object",
  );
  const gqa = parseModelConfig(
    tinyConfig({ num_key_value_heads: undefined, head_dim: 8, eos_token_id: 2 }),
    "c",
  );
  assertEquals([gqa.numKvHeads, gqa.headDim, gqa.eosTokenIds, gqa.raw.model_type], [4, 8, [2], "llama"]);
});

Deno.test("hf_model: GQA, tied embeddings, llama attention_bias and qwen2's q/k/v biases", () => {
  const gqa = expectedParameterShapes(parseModelConfig(tinyConfig(), "c"));
  assertEquals(gqa.get("model.layers.1.self_attn.q_proj.weight"), [16, 16]);
  assertEquals(gqa.get("model.layers.1.self_attn.k_proj.weight"), [8, 16]);
  assertEquals(gqa.get("model.layers.1.self_attn.v_proj.weight"), [8, 16]);
  assertEquals(gqa.get("model.layers.1.self_attn.o_proj.weight"), [16, 16]);
  assertEquals(gqa.get("lm_head.weight"), [40, 16]);
  assertEquals(gqa.size, 2 * 9 + 3);
  assertEquals([...gqa.keys()].slice(0, 3), [
    "model.embed_tokens.weight",
    "model.layers.0.self_attn.q_proj.weight",
    "model.layers.0.self_attn.k_proj.weight",
  ]);

  const tied = expectedParameterShapes(parseModelConfig(tinyConfig({ tie_word_embeddings: true }), "c"));
  assert(!tied.has("lm_head.weight"), "no lm_head when tied");

  const llamaBias = expectedParameterShapes(
    parseModelConfig(tinyConfig({ attention_bias: true, mlp_bias: true }), "c"),
  );
  assertEquals(
    llamaBias.get("model.layers.0.self_attn.o_proj.bias"),
    [16],
    "llama's attention_bias covers o_proj",
  );
  assertEquals(llamaBias.get("model.layers.0.mlp.down_proj.bias"), [16]);

  const qwenCfg = parseModelConfig(
    tinyConfig({
      model_type: "qwen2",
      architectures: ["Qwen2ForCausalLM"],
      tie_word_embeddings: true,
      rope_theta: 1000000,
      sliding_window: 32768,
      use_sliding_window: false,
    }),
    "c",
  );
  assertEquals([qwenCfg.attentionBias, qwenCfg.attentionOutputBias, qwenCfg.tieWordEmbeddings], [
    true,
    false,
    true,
  ]);
  assertEquals(qwenCfg.slidingWindow, null, "qwen2 ignores sliding_window unless use_sliding_window");
  const qwen = expectedParameterShapes(qwenCfg);
  assertEquals(qwen.get("model.layers.0.self_attn.q_proj.bias"), [16]);
  assertEquals(qwen.get("model.layers.0.self_attn.k_proj.bias"), [8]);
  assertEquals(qwen.get("model.layers.0.self_attn.v_proj.bias"), [8]);
  assert(!qwen.has("model.layers.0.self_attn.o_proj.bias"), "qwen2 has no o_proj bias");

  const mistral = (extra: Record<string, unknown>) =>
    parseModelConfig(
      tinyConfig({ model_type: "mistral", architectures: ["MistralForCausalLM"], ...extra }),
      "c",
    );
  assertEquals(mistral({}).slidingWindow, 4096, "MistralConfig's default window");
  assertEquals(mistral({ sliding_window: null }).slidingWindow, null);
  assertEquals(mistral({ sliding_window: 1024 }).slidingWindow, 1024);
  assertThrows(
    () => mistral({ attention_bias: true }),
    ModelFolderError,
    "attention_bias must be false or absent",
  );
  assertWithinSlidingWindow(mistral({ sliding_window: 1024 }), 1024);
  assertThrows(
    () => assertWithinSlidingWindow(mistral({ sliding_window: 1024 }), 1025),
    ModelFolderError,
    "sequence length 1025 exceeds the model's sliding_window (1024)",
  );
});

Deno.test("hf_model: a single-file save opens again with the same values and unknown fields kept", async () => {
  const raw = tinyConfig({
    custom_field: { keep: [1, 2] },
    rope_scaling: { rope_type: "linear", factor: 2 },
  });
  const cfg = parseModelConfig(raw, "c");
  const params = randomParams(cfg);
  const dir = `${await tempDir()}/saved`;
  const src = await tempDir();
  await Deno.writeTextFile(`${src}/tokenizer.json`, '{"model":{}}');
  await Deno.writeTextFile(`${src}/chat_template.jinja`, "{{ messages }}");
  const saved = await saveModelFolder(dir, { config: raw, tensors: params, dtype: "F32", copyFrom: src });
  assertEquals(saved.weightFiles, ["model.safetensors"]);
  assertEquals(saved.copied, ["tokenizer.json", "chat_template.jinja"]);
  const files = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assertEquals(files, ["chat_template.jinja", "config.json", "model.safetensors", "tokenizer.json"]);

  const text = await Deno.readTextFile(`${dir}/config.json`);
  const written = JSON.parse(text);
  assertEquals(
    Object.keys(written),
    Object.keys(written).sort(),
    "keys sorted as save_pretrained writes them",
  );
  assertEquals(written.custom_field, { keep: [1, 2] });
  assertEquals(written.torch_dtype, "float32");
  assert(text.endsWith("}\n"));

  const m = await openModelFolder(dir);
  assertEquals(m.config.rope.scaling, { type: "linear", factor: 2 });
  for (const [name, data] of params) assertEquals(await m.readF32(name), data, name);
  const st = await SafetensorsFile.open(`${dir}/model.safetensors`);
  assertEquals(st.metadata, { format: "pt" });
});

Deno.test("hf_model: sharded BF16 save matches transformers' layout and reads back", async () => {
  const raw = tinyConfig({ dtype: "float32", torch_dtype: undefined });
  const cfg = parseModelConfig(raw, "c");
  const params = randomParams(cfg, 50);
  const dir = `${await tempDir()}/sharded`;
  const maxShardBytes = 1500; // embed/lm_head (1280 B in bf16) fill most of a shard each
  const saved = await saveModelFolder(dir, {
    config: raw,
    tensors: (n) => params.get(n)!,
    dtype: "BF16",
    maxShardBytes,
  });
  const n = saved.weightFiles.length;
  assert(n > 2, `expected several shards, got ${n}`);
  assertEquals(saved.weightFiles[0], `model-00001-of-${String(n).padStart(5, "0")}.safetensors`);
  const index = JSON.parse(await Deno.readTextFile(`${dir}/model.safetensors.index.json`));
  const expectedTotal = [...expectedParameterShapes(cfg).values()].reduce((a, s) => a + size(s) * 2, 0);
  assertEquals(index.metadata, { total_size: expectedTotal });
  assertEquals(saved.totalSize, expectedTotal);
  assertEquals(Object.keys(index.weight_map), Object.keys(index.weight_map).sort());
  assertEquals(new Set(Object.values(index.weight_map)), new Set(saved.weightFiles));
  for (const f of saved.weightFiles) {
    const st = await SafetensorsFile.open(`${dir}/${f}`);
    const bytes = st.names().reduce((a, t) => a + st.info(t).byteLength, 0);
    assert(bytes <= maxShardBytes, `${f} holds ${bytes} bytes`);
  }
  assertEquals(JSON.parse(await Deno.readTextFile(`${dir}/config.json`)).dtype, "bfloat16");
  assert(!(await exists(`${dir}/model.safetensors`)), "no single file next to shards");

  const m = await openModelFolder(dir);
  assertEquals(m.dtypeOf("model.norm.weight"), "BF16");
  for (const [name, data] of params) {
    assertEquals(await m.readF32(name), bf16ToF32(f32ToBf16(data)), name);
    assertEquals(m.fileOf(name), index.weight_map[name]);
  }
});

Deno.test("hf_model: shards are planned as huggingface_hub plans them", () => {
  const sizes = new Map([["a", 4], ["b", 4], ["big", 20], ["c", 3], ["d", 6]]);
  assertEquals(planShards(sizes, 10), [["big"], ["a", "b"], ["c", "d"]]);
  assertEquals(planShards(sizes, 100), [["a", "b", "big", "c", "d"]]);
});

Deno.test("hf_model: tied embeddings save without lm_head; extra tensors are tolerated", async () => {
  const raw = tinyConfig({ tie_word_embeddings: true });
  const cfg = parseModelConfig(raw, "c");
  const params = randomParams(cfg);
  params.set("lm_head.weight", params.get("model.embed_tokens.weight")!);
  const dir = `${await tempDir()}/tied`;
  await saveModelFolder(dir, { config: raw, tensors: params, dtype: "F16" });
  const st = await SafetensorsFile.open(`${dir}/model.safetensors`);
  assert(!st.has("lm_head.weight"), "tied lm_head is not written");
  const m = await openModelFolder(dir);
  assertEquals(m.tensorNames.includes("lm_head.weight"), false);
  assertEquals(
    await m.readF16Bits("model.embed_tokens.weight"),
    f32ToF16(params.get("model.embed_tokens.weight")!),
  );

  // An older checkpoint with rotary buffers, and a tied one that stores lm_head anyway.
  const shapes = Object.fromEntries(expectedParameterShapes(cfg));
  const extra = await handMadeFolder(raw, {
    ...shapes,
    "model.layers.0.self_attn.rotary_emb.inv_freq": [2],
    "lm_head.weight": [40, 16],
  });
  const opened = await openModelFolder(extra);
  assertEquals([...opened.extraTensors].sort(), [
    "lm_head.weight",
    "model.layers.0.self_attn.rotary_emb.inv_freq",
  ]);
});

Deno.test("hf_model: missing and mis-shaped tensors are named with the file and both shapes", async () => {
  const raw = tinyConfig();
  const shapes = Object.fromEntries(expectedParameterShapes(parseModelConfig(raw, "c")));
  const { ["model.layers.1.mlp.up_proj.weight"]: _dropped, ...withoutUp } = shapes;
  const missing = await handMadeFolder(raw, withoutUp);
  await assertRejects(
    () => openModelFolder(missing),
    ModelFolderError,
    `${missing}: tensor "model.layers.1.mlp.up_proj.weight" (expected shape [24, 16]) is missing`,
  );
  const { ["lm_head.weight"]: _lm, ...noHead } = shapes;
  const headless = await handMadeFolder(raw, noHead);
  await assertRejects(() => openModelFolder(headless), ModelFolderError, 'tensor "lm_head.weight"');

  const wrong = await handMadeFolder(raw, { ...shapes, "model.layers.0.self_attn.k_proj.weight": [16, 16] });
  await assertRejects(
    () => openModelFolder(wrong),
    ModelFolderError,
    `${wrong}/model.safetensors: tensor "model.layers.0.self_attn.k_proj.weight" has shape [16, 16], but ` +
      `config.json implies [8, 16]`,
  );
});

Deno.test("hf_model: broken sharded indexes and folders without weights", async () => {
  const raw = tinyConfig();
  const cfg = parseModelConfig(raw, "c");
  const dir = `${await tempDir()}/m`;
  await saveModelFolder(dir, { config: raw, tensors: randomParams(cfg), dtype: "F32", maxShardBytes: 3000 });
  const indexPath = `${dir}/model.safetensors.index.json`;
  const index = JSON.parse(await Deno.readTextFile(indexPath));
  const shard2 = index.weight_map["model.norm.weight"];

  index.weight_map["model.norm.weight"] = "model-00009-of-00009.safetensors";
  await Deno.writeTextFile(indexPath, JSON.stringify(index));
  await assertRejects(
    () => openModelFolder(dir),
    ModelFolderError,
    `${indexPath} names shard model-00009-of-00009.safetensors, but`,
  );
  const otherShard = index.weight_map["model.embed_tokens.weight"];
  index.weight_map["model.norm.weight"] = otherShard === shard2
    ? index.weight_map["lm_head.weight"]
    : otherShard;
  await Deno.writeTextFile(indexPath, JSON.stringify(index));
  await assertRejects(
    () => openModelFolder(dir),
    ModelFolderError,
    `has no tensor "model.norm.weight", which model.safetensors.index.json places there`,
  );
  index.weight_map["model.norm.weight"] = "../escape.safetensors";
  await Deno.writeTextFile(indexPath, JSON.stringify(index));
  await assertRejects(
    () => openModelFolder(dir),
    ModelFolderError,
    'weight_map["model.norm.weight"] must be a file name',
  );

  const bare = await tempDir();
  await Deno.writeTextFile(`${bare}/config.json`, JSON.stringify(raw));
  await Deno.writeFile(`${bare}/pytorch_model.bin`, new Uint8Array(4));
  await assertRejects(() => openModelFolder(bare), ModelFolderError, "convert them to safetensors first");
  await Deno.writeTextFile(`${bare}/config.json`, "{ not json");
  await assertRejects(() => openModelFolder(bare), ModelFolderError, `${bare}/config.json: not valid JSON`);
  await assertRejects(() => openModelFolder(`${bare}/none`), ModelFolderError, "config.json: file not found");
});

Deno.test("hf_model: saving replaces a folder whole, and a failed save leaves the old one intact", async () => {
  const raw = tinyConfig({ attention_bias: true });
  const cfg = parseModelConfig(raw, "c");
  const parent = await tempDir();
  const dir = `${parent}/ckpt`;
  await saveModelFolder(dir, {
    config: raw,
    tensors: randomParams(cfg, 1),
    dtype: "F32",
    maxShardBytes: 4000,
  });
  const second = randomParams(cfg, 99);
  await saveModelFolder(dir, { config: raw, tensors: second, dtype: "F32" });
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["config.json", "model.safetensors"]);
  assertEquals(
    await (await openModelFolder(dir)).readF32("model.layers.1.self_attn.o_proj.bias"),
    second.get("model.layers.1.self_attn.o_proj.bias"),
  );

  let calls = 0;
  const failing = (name: string) => {
    if (++calls === 5) throw new Error("disk full (simulated)");
    return second.get(name)!;
  };
  await assertRejects(
    () => saveModelFolder(dir, { config: raw, tensors: failing, dtype: "F32" }),
    Error,
    "disk full",
  );
  assertEquals([...Deno.readDirSync(parent)].map((e) => e.name), ["ckpt"], "no temporary folder left behind");
  assertEquals(
    await (await openModelFolder(dir)).readF32("model.norm.weight"),
    second.get("model.norm.weight"),
  );

  const short = new Map(second);
  short.set("model.norm.weight", new Float32Array(3));
  await assertRejects(
    () => saveModelFolder(dir, { config: raw, tensors: short, dtype: "F32" }),
    ModelFolderError,
    'tensor "model.norm.weight" must be a Float32Array of 16 values',
  );
  short.set("model.layers.7.foo", new Float32Array(1));
  await assertRejects(
    () => saveModelFolder(dir, { config: raw, tensors: short, dtype: "F32" }),
    ModelFolderError,
    '"model.layers.7.foo" is not a parameter',
  );
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
