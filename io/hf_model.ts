/**
 * Hugging Face model folders for the Llama family (llama, mistral, qwen2): `config.json` normalized into a
 * {@link ModelConfig}, weights from `model.safetensors` or a sharded index checked against the shapes the
 * config implies, and saving in the layout `save_pretrained` writes, atomically.
 *
 * The raw config JSON is kept, so a saved model carries every field this module does not interpret.
 *
 * @module
 */
import { isFile } from "./fs.ts";
import { join } from "node:path";
import { makeTempSiblingDir, replaceDirAtomic, sortKeysDeep, writeJsonAtomic } from "./atomic.ts";
import {
  DTYPE_SIZES,
  type ElementRange,
  type RawTensor,
  type SafetensorsDType,
  SafetensorsFile,
  type TensorToWrite,
  writeSafetensors,
} from "./safetensors.ts";

/** The architectures this toolkit runs: same decoder, different defaults and biases. */
export type ModelType = "llama" | "mistral" | "qwen2";

const MODEL_TYPES: readonly ModelType[] = ["llama", "mistral", "qwen2"];

/** RoPE frequency scaling as transformers applies it; absent for the default (unscaled) rotary embedding. */
export type RopeScaling =
  | { type: "linear"; factor: number }
  | {
    type: "llama3";
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalMaxPositionEmbeddings: number;
  };

/** Rotary embedding parameters. */
export interface RopeConfig {
  /** Dimensions rotated per head (the whole head for this family). */
  headDim: number;
  /** Base of the inverse frequencies, `rope_theta`. */
  theta: number;
  /** Frequency scaling from `rope_scaling`; absent for the plain rotary embedding. */
  scaling?: RopeScaling;
}

/** A `config.json` normalized to the fields the model needs, with the original JSON kept in `raw`. */
export interface ModelConfig {
  /** `model_type`: which architecture's defaults and biases apply. */
  modelType: ModelType;
  /** `hidden_size`: width of the residual stream. */
  hiddenSize: number;
  /** `intermediate_size`: width of the MLP's gate and up projections. */
  intermediateSize: number;
  /** `num_hidden_layers`: decoder layers. */
  numLayers: number;
  /** `num_attention_heads`: query heads. */
  numHeads: number;
  /** `num_key_value_heads`: key/value heads (fewer than query heads for GQA/MQA). */
  numKvHeads: number;
  /** `head_dim`, or `hidden_size / num_attention_heads` when absent. */
  headDim: number;
  /** `vocab_size`: rows of the embedding and of the LM head. */
  vocabSize: number;
  /** `rms_norm_eps`: epsilon of every RMSNorm. */
  rmsNormEps: number;
  /** `max_position_embeddings`: the longest context the model was trained for. */
  maxPositionEmbeddings: number;
  /** `tie_word_embeddings`: the LM head reuses the embedding matrix (no `lm_head.weight`). */
  tieWordEmbeddings: boolean;
  /** Biases on the q, k and v projections (qwen2 always; llama when `attention_bias`). */
  attentionBias: boolean;
  /** Bias on the output projection (llama's `attention_bias` covers it; qwen2 has none). */
  attentionOutputBias: boolean;
  /** Biases on gate, up and down projections (llama's `mlp_bias`). */
  mlpBias: boolean;
  /** `bos_token_id`, null when absent. */
  bosTokenId: number | null;
  /** End-of-sequence ids: `eos_token_id` may be one id or a list. */
  eosTokenIds: number[];
  /** `pad_token_id`, null when absent. */
  padTokenId: number | null;
  /** `dtype` (transformers ≥ 5) or `torch_dtype`, e.g. "bfloat16". */
  torchDtype: string | null;
  /** Attention window in tokens, or null for full attention; sequences longer than it are refused. */
  slidingWindow: number | null;
  /** Rotary embedding parameters. */
  rope: RopeConfig;
  /** The JSON as read: write this (updated) back when saving so unknown fields survive. */
  raw: Record<string, unknown>;
}

/**
 * Thrown for invalid configs and model folders; the message names the file, field or tensor.
 * @example
 * ```ts
 * try { await openModelFolder(dir); } catch (e) { if (e instanceof ModelFolderError) console.error(e.message); }
 * ```
 */
export class ModelFolderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModelFolderError";
  }
}

// ---------------------------------------------------------------------------------------------------------
// config.json

function show(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Typed access to a JSON object's fields with errors that name the file and the field. */
class Fields {
  constructor(readonly obj: Record<string, unknown>, readonly file: string, readonly prefix = "") {}

  fail(key: string, expected: string): never {
    throw new ModelFolderError(
      `${this.file}: ${this.prefix}${key} must be ${expected}, got ${show(this.obj[key])}`,
    );
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  positiveInt(key: string, fallback?: number): number {
    if (!this.has(key)) return fallback ?? this.fail(key, "a positive integer (it is required)");
    const v = this.obj[key];
    return typeof v === "number" && Number.isSafeInteger(v) && v > 0
      ? v
      : this.fail(key, "a positive integer");
  }

  positiveNumber(key: string, fallback?: number): number {
    if (!this.has(key)) return fallback ?? this.fail(key, "a positive number (it is required)");
    const v = this.obj[key];
    return typeof v === "number" && Number.isFinite(v) && v > 0 ? v : this.fail(key, "a positive number");
  }

  bool(key: string, fallback: boolean): boolean {
    if (!this.has(key)) return fallback;
    const v = this.obj[key];
    return typeof v === "boolean" ? v : this.fail(key, "true or false");
  }

  tokenId(key: string): number | null {
    if (!this.has(key)) return null;
    const v = this.obj[key];
    return typeof v === "number" && Number.isSafeInteger(v) && v >= 0
      ? v
      : this.fail(key, "a token id or null");
  }

  tokenIds(key: string): number[] {
    if (!this.has(key)) return [];
    const v = this.obj[key];
    const list = Array.isArray(v) ? v : [v];
    const ok = list.every((x) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0);
    return ok ? list as number[] : this.fail(key, "a token id, a list of token ids, or null");
  }

  string(key: string): string | null {
    if (!this.has(key)) return null;
    const v = this.obj[key];
    return typeof v === "string" ? v : this.fail(key, "a string");
  }
}

function parseModelType(f: Fields): ModelType {
  const t = f.obj.model_type;
  if (typeof t === "string" && (MODEL_TYPES as readonly string[]).includes(t)) return t as ModelType;
  return f.fail("model_type", `one of ${MODEL_TYPES.join(", ")}`);
}

function checkArchitecture(f: Fields): void {
  const archs = f.obj.architectures;
  if (archs === undefined || archs === null) return;
  if (!Array.isArray(archs) || !archs.some((a) => typeof a === "string" && a.endsWith("ForCausalLM"))) {
    f.fail(
      "architectures",
      "a list naming a *ForCausalLM class (this toolkit trains causal language models)",
    );
  }
}

function checkActivation(f: Fields): void {
  const act = f.obj.hidden_act ?? "silu";
  if (act !== "silu" && act !== "swish") f.fail("hidden_act", `"silu" (the SwiGLU MLP of the Llama family)`);
}

const DEFAULT_MAX_POSITIONS: Record<ModelType, number> = { llama: 2048, mistral: 131072, qwen2: 32768 };

/** The section holding RoPE settings: `rope_parameters` (transformers ≥ 5) or `rope_scaling` (older). */
function ropeSection(f: Fields): { section: Fields | null; key: string } {
  for (const key of ["rope_parameters", "rope_scaling"]) {
    const v = f.obj[key];
    if (v === undefined || v === null) continue;
    if (!isObject(v)) f.fail(key, "an object or null");
    return { section: new Fields(v, f.file, `${key}.`), key };
  }
  return { section: null, key: "" };
}

function parseRopeTheta(f: Fields, section: Fields | null): number {
  const top = f.has("rope_theta") ? f.positiveNumber("rope_theta") : undefined;
  const nested = section?.has("rope_theta") ? section.positiveNumber("rope_theta") : undefined;
  if (top !== undefined && nested !== undefined && top !== nested) {
    throw new ModelFolderError(
      `${f.file}: rope_theta (${top}) and ${
        section!.prefix
      }rope_theta (${nested}) disagree; keep one of them`,
    );
  }
  return nested ?? top ?? 10000;
}

function parseRopeScaling(section: Fields | null): RopeScaling | undefined {
  if (!section) return undefined;
  const typeKey = section.has("rope_type") ? "rope_type" : "type";
  const type = section.has(typeKey) ? section.obj[typeKey] : "default";
  if (type === "default") return undefined;
  if (type === "linear") return { type: "linear", factor: section.positiveNumber("factor") };
  if (type === "llama3") {
    const scaling: RopeScaling = {
      type: "llama3",
      factor: section.positiveNumber("factor"),
      lowFreqFactor: section.positiveNumber("low_freq_factor"),
      highFreqFactor: section.positiveNumber("high_freq_factor"),
      originalMaxPositionEmbeddings: section.positiveInt("original_max_position_embeddings"),
    };
    if (scaling.highFreqFactor <= scaling.lowFreqFactor) {
      section.fail("high_freq_factor", `greater than low_freq_factor (${scaling.lowFreqFactor})`);
    }
    return scaling;
  }
  return section.fail(typeKey, `"default", "linear" or "llama3" (other RoPE variants are not supported yet)`);
}

function parseRope(f: Fields, headDim: number): RopeConfig {
  const partial = f.obj.partial_rotary_factor;
  if (partial !== undefined && partial !== null && partial !== 1) {
    f.fail("partial_rotary_factor", "1 or absent");
  }
  const { section } = ropeSection(f);
  const theta = parseRopeTheta(f, section);
  const scaling = parseRopeScaling(section);
  return scaling ? { headDim, theta, scaling } : { headDim, theta };
}

function parseSlidingWindow(f: Fields, modelType: ModelType): number | null {
  if (modelType === "llama") return null;
  // Qwen2 configs carry a sliding_window that only applies when use_sliding_window is set.
  if (modelType === "qwen2" && !f.bool("use_sliding_window", false)) return null;
  // MistralConfig defaults to a 4096-token window when the key is absent; an explicit null means none.
  if (modelType === "mistral" && !("sliding_window" in f.obj)) return 4096;
  return f.has("sliding_window") ? f.positiveInt("sliding_window") : null;
}

interface Biases {
  attentionBias: boolean;
  attentionOutputBias: boolean;
  mlpBias: boolean;
}

function parseBiases(f: Fields, modelType: ModelType): Biases {
  if (modelType === "llama") {
    const attn = f.bool("attention_bias", false);
    return { attentionBias: attn, attentionOutputBias: attn, mlpBias: f.bool("mlp_bias", false) };
  }
  // Mistral and Qwen2 hard-code their biases; a config claiming otherwise describes weights they cannot load.
  for (const key of ["attention_bias", "mlp_bias"]) {
    if (f.bool(key, false)) f.fail(key, `false or absent for ${modelType}`);
  }
  return { attentionBias: modelType === "qwen2", attentionOutputBias: false, mlpBias: false };
}

function parseHeads(
  f: Fields,
  hiddenSize: number,
): { numHeads: number; numKvHeads: number; headDim: number } {
  const numHeads = f.positiveInt("num_attention_heads");
  const numKvHeads = f.positiveInt("num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelFolderError(
      `${f.file}: num_attention_heads (${numHeads}) must be divisible by num_key_value_heads (${numKvHeads})`,
    );
  }
  if (!f.has("head_dim") && hiddenSize % numHeads !== 0) {
    throw new ModelFolderError(
      `${f.file}: hidden_size (${hiddenSize}) must be divisible by num_attention_heads (${numHeads}) ` +
        `when head_dim is not given`,
    );
  }
  const headDim = f.positiveInt("head_dim", hiddenSize / numHeads);
  if (headDim % 2 !== 0) f.fail("head_dim", "even (RoPE rotates pairs)");
  return { numHeads, numKvHeads, headDim };
}

/**
 * Normalizes a parsed `config.json`. `file` names the source in error messages, e.g.
 * `config.json: num_attention_heads (12) must be divisible by num_key_value_heads (5)`.
 *
 * @example
 * ```ts
 * const cfg = parseModelConfig(JSON.parse(await Deno.readTextFile("m/config.json")), "m/config.json");
 * cfg.rope.theta; // 10000, from rope_theta or rope_parameters.rope_theta
 * ```
 */
export function parseModelConfig(json: unknown, file: string): ModelConfig {
  if (!isObject(json)) {
    throw new ModelFolderError(`${file}: expected a JSON object, got ${show(json).slice(0, 60)}`);
  }
  const f = new Fields(json, file);
  const modelType = parseModelType(f);
  checkArchitecture(f);
  checkActivation(f);
  const hiddenSize = f.positiveInt("hidden_size");
  const heads = parseHeads(f, hiddenSize);
  return {
    modelType,
    hiddenSize,
    intermediateSize: f.positiveInt("intermediate_size"),
    numLayers: f.positiveInt("num_hidden_layers"),
    ...heads,
    vocabSize: f.positiveInt("vocab_size"),
    rmsNormEps: f.positiveNumber("rms_norm_eps", 1e-6),
    maxPositionEmbeddings: f.positiveInt("max_position_embeddings", DEFAULT_MAX_POSITIONS[modelType]),
    tieWordEmbeddings: f.bool("tie_word_embeddings", false),
    ...parseBiases(f, modelType),
    bosTokenId: f.tokenId("bos_token_id"),
    eosTokenIds: f.tokenIds("eos_token_id"),
    padTokenId: f.tokenId("pad_token_id"),
    torchDtype: f.string("dtype") ?? f.string("torch_dtype"),
    slidingWindow: parseSlidingWindow(f, modelType),
    rope: parseRope(f, heads.headDim),
    raw: json,
  };
}

/**
 * Refuses sequence lengths the model's sliding window would truncate (this toolkit implements full
 * attention only, which equals sliding-window attention up to the window).
 *
 * @example
 * ```ts
 * assertWithinSlidingWindow(cfg, 2048); // throws for a mistral config with sliding_window 1024
 * ```
 */
export function assertWithinSlidingWindow(cfg: ModelConfig, sequenceLength: number): void {
  if (cfg.slidingWindow !== null && sequenceLength > cfg.slidingWindow) {
    throw new ModelFolderError(
      `sequence length ${sequenceLength} exceeds the model's sliding_window (${cfg.slidingWindow}); ` +
        `this toolkit computes full attention, so keep sequences within the window`,
    );
  }
}

/**
 * The parameters a config implies, with their shapes, in the order transformers' state dict lists them
 * (which is also the order shards are filled in). `lm_head.weight` is absent when the embeddings are tied.
 *
 * @example
 * ```ts
 * expectedParameterShapes(cfg).get("model.layers.0.self_attn.k_proj.weight"); // [numKvHeads * headDim, hiddenSize]
 * ```
 */
export function expectedParameterShapes(cfg: ModelConfig): Map<string, number[]> {
  const h = cfg.hiddenSize, q = cfg.numHeads * cfg.headDim, kv = cfg.numKvHeads * cfg.headDim;
  const inter = cfg.intermediateSize;
  const shapes = new Map<string, number[]>([["model.embed_tokens.weight", [cfg.vocabSize, h]]]);
  const linear = (name: string, out: number, inp: number, bias: boolean) => {
    shapes.set(`${name}.weight`, [out, inp]);
    if (bias) shapes.set(`${name}.bias`, [out]);
  };
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}`;
    linear(`${p}.self_attn.q_proj`, q, h, cfg.attentionBias);
    linear(`${p}.self_attn.k_proj`, kv, h, cfg.attentionBias);
    linear(`${p}.self_attn.v_proj`, kv, h, cfg.attentionBias);
    linear(`${p}.self_attn.o_proj`, h, q, cfg.attentionOutputBias);
    linear(`${p}.mlp.gate_proj`, inter, h, cfg.mlpBias);
    linear(`${p}.mlp.up_proj`, inter, h, cfg.mlpBias);
    linear(`${p}.mlp.down_proj`, h, inter, cfg.mlpBias);
    shapes.set(`${p}.input_layernorm.weight`, [h]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [h]);
  }
  shapes.set("model.norm.weight", [h]);
  if (!cfg.tieWordEmbeddings) shapes.set("lm_head.weight", [cfg.vocabSize, h]);
  return shapes;
}

// ---------------------------------------------------------------------------------------------------------
// generation_config.json

/** `generation_config.json`, with the fields generation uses normalized and the rest kept in `raw`. */
export interface GenerationConfig {
  /** `bos_token_id`, null when absent. */
  bosTokenId: number | null;
  /** `eos_token_id`, one id or a list, as a list (empty when absent). */
  eosTokenIds: number[];
  /** `pad_token_id`, null when absent. */
  padTokenId: number | null;
  /** `do_sample`: sample rather than decode greedily; null when absent. */
  doSample: boolean | null;
  /** `temperature`, ≥ 0; null when absent. */
  temperature: number | null;
  /** `top_p`, in (0, 1]; null when absent. */
  topP: number | null;
  /** `top_k`, an integer ≥ 0; null when absent. */
  topK: number | null;
  /** `max_new_tokens`; null when absent. */
  maxNewTokens: number | null;
  /** `repetition_penalty`, > 0; null when absent. */
  repetitionPenalty: number | null;
  /** The JSON as read, unknown fields included. */
  raw: Record<string, unknown>;
}

function optionalNumber(
  f: Fields,
  key: string,
  check: (v: number) => boolean,
  expected: string,
): number | null {
  if (!f.has(key)) return null;
  const v = f.obj[key];
  return typeof v === "number" && check(v) ? v : f.fail(key, expected);
}

/**
 * Normalizes a parsed `generation_config.json`.
 * @example
 * ```ts
 * parseGenerationConfig({ eos_token_id: [128001, 128009], temperature: 0.6 }, "generation_config.json").eosTokenIds;
 * ```
 */
export function parseGenerationConfig(json: unknown, file: string): GenerationConfig {
  if (!isObject(json)) {
    throw new ModelFolderError(`${file}: expected a JSON object, got ${show(json).slice(0, 60)}`);
  }
  const f = new Fields(json, file);
  const nonNegative = (v: number) => Number.isFinite(v) && v >= 0;
  const count = (v: number) => Number.isSafeInteger(v) && v >= 0;
  return {
    bosTokenId: f.tokenId("bos_token_id"),
    eosTokenIds: f.tokenIds("eos_token_id"),
    padTokenId: f.tokenId("pad_token_id"),
    doSample: f.has("do_sample") ? f.bool("do_sample", false) : null,
    temperature: optionalNumber(f, "temperature", nonNegative, "a number ≥ 0"),
    topP: optionalNumber(f, "top_p", (v) => v > 0 && v <= 1, "a number in (0, 1]"),
    topK: optionalNumber(f, "top_k", count, "an integer ≥ 0"),
    maxNewTokens: optionalNumber(f, "max_new_tokens", count, "an integer ≥ 0"),
    repetitionPenalty: optionalNumber(f, "repetition_penalty", (v) => v > 0, "a number > 0"),
    raw: json,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Reading a folder

/** Where one tensor lives. */
interface TensorLocation {
  file: SafetensorsFile;
  /** Name of the shard file inside the folder. */
  shard: string;
}

/** An opened model folder: config, validated parameter list, and lazy access to each tensor. */
export interface ModelFolder {
  /** The folder's path. */
  readonly dir: string;
  /** `config.json`, normalized and validated. */
  readonly config: ModelConfig;
  /** From `generation_config.json` when the folder has one. */
  readonly generationConfig: GenerationConfig | undefined;
  /** Parameter names in state-dict order (no `lm_head.weight` when tied). */
  readonly tensorNames: readonly string[];
  /** Each parameter's shape (as the config implies and the files confirm). */
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  /** Tensors in the files that are not parameters (e.g. `rotary_emb.inv_freq`); ignored but readable. */
  readonly extraTensors: readonly string[];
  /** The dtype a tensor is stored in. */
  dtypeOf(name: string): SafetensorsDType;
  /** The safetensors file (relative to `dir`) holding a tensor. */
  fileOf(name: string): string;
  /** A tensor as f32 (F16/BF16 widened exactly). */
  readF32(name: string, range?: ElementRange): Promise<Float32Array>;
  /** A tensor as f16 bits (F32/BF16 rounded to nearest even), for frozen f16 weights. */
  readF16Bits(name: string, range?: ElementRange): Promise<Uint16Array>;
  /** A tensor's bytes as stored. */
  readRaw(name: string, range?: ElementRange): Promise<RawTensor>;
}

/** File names save_pretrained writes for weights. */
export const SINGLE_WEIGHTS_FILE = "model.safetensors";
/** The index of a sharded checkpoint. */
export const WEIGHTS_INDEX_FILE = "model.safetensors.index.json";

async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new ModelFolderError(`${path}: file not found`);
    throw e;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ModelFolderError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

function parseWeightMap(json: unknown, path: string): Map<string, string> {
  const map = isObject(json) ? json.weight_map : undefined;
  if (!isObject(map)) {
    throw new ModelFolderError(`${path}: weight_map must be an object of tensor name → shard file`);
  }
  const out = new Map<string, string>();
  for (const [name, shard] of Object.entries(map)) {
    // A shard name must stay inside the folder: the index comes from the network as often as not.
    if (typeof shard !== "string" || shard === "" || shard.includes("..") || shard.startsWith("/")) {
      throw new ModelFolderError(
        `${path}: weight_map["${name}"] must be a file name in the folder, got ${show(shard)}`,
      );
    }
    out.set(name, shard);
  }
  return out;
}

async function openShards(
  dir: string,
  shards: Iterable<string>,
  indexPath: string,
): Promise<Map<string, SafetensorsFile>> {
  const out = new Map<string, SafetensorsFile>();
  for (const shard of new Set(shards)) {
    const path = join(dir, shard);
    if (!(await isFile(path))) {
      throw new ModelFolderError(`${indexPath} names shard ${shard}, but ${path} does not exist`);
    }
    out.set(shard, await SafetensorsFile.open(path));
  }
  return out;
}

async function locateTensors(dir: string): Promise<Map<string, TensorLocation>> {
  const locations = new Map<string, TensorLocation>();
  const single = join(dir, SINGLE_WEIGHTS_FILE);
  if (await isFile(single)) {
    const file = await SafetensorsFile.open(single);
    for (const name of file.names()) locations.set(name, { file, shard: SINGLE_WEIGHTS_FILE });
    return locations;
  }
  const indexPath = join(dir, WEIGHTS_INDEX_FILE);
  if (!(await isFile(indexPath))) {
    const hasBin = await isFile(join(dir, "pytorch_model.bin")) ||
      await isFile(join(dir, "pytorch_model.bin.index.json"));
    throw new ModelFolderError(
      `${dir}: no ${SINGLE_WEIGHTS_FILE} or ${WEIGHTS_INDEX_FILE}` +
        (hasBin ? " (it has PyTorch .bin weights: convert them to safetensors first)" : ""),
    );
  }
  const weightMap = parseWeightMap(await readJsonFile(indexPath), indexPath);
  const files = await openShards(dir, weightMap.values(), indexPath);
  for (const [name, shard] of weightMap) {
    const file = files.get(shard)!;
    if (!file.has(name)) {
      throw new ModelFolderError(
        `${file.path}: has no tensor "${name}", which ${WEIGHTS_INDEX_FILE} places there`,
      );
    }
    locations.set(name, { file, shard });
  }
  return locations;
}

const FLOAT_DTYPES: ReadonlySet<SafetensorsDType> = new Set(["F32", "F16", "BF16", "F64"]);

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function checkParameters(
  dir: string,
  expected: Map<string, number[]>,
  locations: Map<string, TensorLocation>,
): void {
  const missing = [...expected.keys()].filter((n) => !locations.has(n));
  if (missing.length > 0) {
    const first = missing[0];
    const more = missing.length > 1
      ? ` (and ${missing.length - 1} more: ${missing.slice(1, 4).join(", ")}…)`
      : "";
    throw new ModelFolderError(
      `${dir}: tensor "${first}" (expected shape [${expected.get(first)!.join(", ")}]) is missing from the ` +
        `safetensors files${more}`,
    );
  }
  for (const [name, shape] of expected) {
    const { file } = locations.get(name)!;
    const info = file.info(name);
    if (!sameShape(info.shape, shape)) {
      throw new ModelFolderError(
        `${file.path}: tensor "${name}" has shape [${info.shape.join(", ")}], but config.json implies ` +
          `[${shape.join(", ")}]`,
      );
    }
    if (!FLOAT_DTYPES.has(info.dtype)) {
      throw new ModelFolderError(
        `${file.path}: tensor "${name}" is ${info.dtype}; expected F32, F16, BF16 or F64`,
      );
    }
  }
}

/**
 * Opens a Hugging Face model folder: parses `config.json` (and `generation_config.json` if present), finds
 * the weights (`model.safetensors`, else the sharded index) and checks that every parameter the config
 * implies is there with the right shape. Only headers are read; tensors are read on demand.
 *
 * @example
 * ```ts
 * const m = await openModelFolder("models/llama-tiny");
 * const embed = await m.readF32("model.embed_tokens.weight");
 * ```
 */
export async function openModelFolder(dir: string): Promise<ModelFolder> {
  const configPath = join(dir, "config.json");
  const config = parseModelConfig(await readJsonFile(configPath), configPath);
  const genPath = join(dir, "generation_config.json");
  const generationConfig = await isFile(genPath)
    ? parseGenerationConfig(await readJsonFile(genPath), genPath)
    : undefined;
  const expected = expectedParameterShapes(config);
  const locations = await locateTensors(dir);
  checkParameters(dir, expected, locations);
  const locate = (name: string): TensorLocation => {
    const loc = locations.get(name);
    if (!loc) {
      throw new ModelFolderError(`${dir}: no tensor named "${name}" in this model's safetensors files`);
    }
    return loc;
  };
  return {
    dir,
    config,
    generationConfig,
    tensorNames: [...expected.keys()],
    shapes: expected,
    extraTensors: [...locations.keys()].filter((n) => !expected.has(n)),
    dtypeOf: (name) => locate(name).file.info(name).dtype,
    fileOf: (name) => locate(name).shard,
    readF32: (name, range) => locate(name).file.readF32(name, range),
    readF16Bits: (name, range) => locate(name).file.readF16Bits(name, range),
    readRaw: (name, range) => locate(name).file.readRaw(name, range),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Saving a folder

/** Files copied by `copyFrom`: tokenizer and generation settings that travel with a model. */
export const COMPANION_FILES: readonly string[] = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "generation_config.json",
  "chat_template.jinja",
  "chat_template.json",
  "tokenizer.model",
  "added_tokens.json",
  "vocab.json",
  "merges.txt",
];

/** The weight dtypes a model can be saved in. */
export type SaveDType = "F32" | "F16" | "BF16";

/** Options for {@link saveModelFolder}. */
export interface SaveModelOptions {
  /** The config JSON to write (usually `ModelConfig.raw`, updated); its dtype field is set to `dtype`. */
  config: Record<string, unknown>;
  /** Every parameter as f32, or a function producing one at a time (so a large model streams to disk). */
  tensors: ReadonlyMap<string, Float32Array> | ((name: string) => Float32Array | Promise<Float32Array>);
  /** Element type the weights are stored in. */
  dtype: SaveDType;
  /** Largest shard in bytes (default 5 GB as transformers); a larger model is split into shards. */
  maxShardBytes?: number;
  /** A folder to copy tokenizer files, chat template and generation config from ({@link COMPANION_FILES}). */
  copyFrom?: string;
  /** Written as `generation_config.json`, replacing one copied by `copyFrom`. */
  generationConfig?: Record<string, unknown>;
}

/** What {@link saveModelFolder} wrote. */
export interface SavedModel {
  /** Weight files, in shard order. */
  weightFiles: string[];
  /** Bytes of tensor data (the index's `metadata.total_size`). */
  totalSize: number;
  /** Companion files copied from `copyFrom`. */
  copied: string[];
}

const TORCH_DTYPE_NAMES: Record<SaveDType, string> = { F32: "float32", F16: "float16", BF16: "bfloat16" };

/** Default `max_shard_size` of transformers' save_pretrained: "5GB" in decimal units. */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

/**
 * Groups tensors into shards as huggingface_hub's `split_torch_state_dict_into_shards` does: fill in order,
 * start a new shard when the next tensor would overflow, and give an oversized tensor a shard of its own.
 * @example
 * ```ts
 * planShards(new Map([["a", 4], ["big", 20], ["b", 4], ["c", 3]]), 10); // [["big"], ["a", "b"], ["c"]]
 * ```
 */
export function planShards(sizes: ReadonlyMap<string, number>, maxShardBytes: number): string[][] {
  const shards: string[][] = [];
  let current: string[] = [];
  let currentBytes = 0;
  for (const [name, bytes] of sizes) {
    if (bytes > maxShardBytes) {
      shards.push([name]);
      continue;
    }
    if (currentBytes + bytes > maxShardBytes && current.length > 0) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(name);
    currentBytes += bytes;
  }
  if (current.length > 0) shards.push(current);
  return shards;
}

function shardFileName(i: number, n: number): string {
  return n === 1
    ? SINGLE_WEIGHTS_FILE
    : `model-${String(i + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`;
}

function configWithDtype(config: Record<string, unknown>, dtype: SaveDType): Record<string, unknown> {
  const out = { ...config };
  const name = TORCH_DTYPE_NAMES[dtype];
  const keys = ["dtype", "torch_dtype"].filter((k) => out[k] !== undefined);
  // transformers 4 reads torch_dtype and 5 reads both, so a config with neither gets the older key.
  for (const k of keys.length > 0 ? keys : ["torch_dtype"]) out[k] = name;
  return out;
}

function tensorSource(
  tensors: SaveModelOptions["tensors"],
  expected: Map<string, number[]>,
  cfg: ModelConfig,
): (name: string) => Promise<Float32Array> {
  if (typeof tensors === "function") return async (name) => await tensors(name);
  for (const name of tensors.keys()) {
    if (!expected.has(name) && !(name === "lm_head.weight" && cfg.tieWordEmbeddings)) {
      throw new ModelFolderError(
        `saveModelFolder: "${name}" is not a parameter of this ${cfg.modelType} config`,
      );
    }
  }
  for (const name of expected.keys()) {
    if (!tensors.has(name)) throw new ModelFolderError(`saveModelFolder: tensor "${name}" is missing`);
  }
  return (name) => Promise.resolve(tensors.get(name)!);
}

function checkedData(name: string, shape: number[], data: Float32Array): Float32Array {
  const numel = shape.reduce((a, b) => a * b, 1);
  if (!(data instanceof Float32Array) || data.length !== numel) {
    throw new ModelFolderError(
      `saveModelFolder: tensor "${name}" must be a Float32Array of ${numel} values (shape [${
        shape.join(", ")
      }]), ` +
        `got ${data instanceof Float32Array ? data.length + " values" : show(data).slice(0, 40)}`,
    );
  }
  return data;
}

async function writeShards(
  tmp: string,
  expected: Map<string, number[]>,
  read: (name: string) => Promise<Float32Array>,
  dtype: SaveDType,
  maxShardBytes: number,
): Promise<{ files: string[]; totalSize: number; weightMap: Record<string, string> }> {
  const sizes = new Map(
    [...expected].map(([n, s]) => [n, s.reduce((a, b) => a * b, 1) * DTYPE_SIZES[dtype]]),
  );
  const plan = planShards(sizes, maxShardBytes);
  const files: string[] = [];
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < plan.length; i++) {
    const file = shardFileName(i, plan.length);
    const tensors: Record<string, TensorToWrite> = {};
    for (const name of plan[i]) {
      const shape = expected.get(name)!;
      tensors[name] = { dtype, shape, data: async () => checkedData(name, shape, await read(name)) };
      weightMap[name] = file;
    }
    await writeSafetensors(join(tmp, file), tensors, { format: "pt" });
    files.push(file);
  }
  return { files, totalSize: [...sizes.values()].reduce((a, b) => a + b, 0), weightMap };
}

async function copyCompanions(from: string, to: string): Promise<string[]> {
  const copied: string[] = [];
  for (const name of COMPANION_FILES) {
    if (await isFile(join(from, name))) {
      await Deno.copyFile(join(from, name), join(to, name));
      copied.push(name);
    }
  }
  return copied;
}

/**
 * Saves a model folder as transformers' `save_pretrained` lays it out: `config.json` (keys sorted), weights
 * in one `model.safetensors` or in `model-0000i-of-0000n.safetensors` shards with
 * `model.safetensors.index.json`, plus companion files copied from `copyFrom`. Everything is written into
 * a temporary sibling folder and swapped in with {@link replaceDirAtomic}, so an interrupted save never
 * leaves a half-written model under `dir`. The config is validated and each tensor's size checked.
 *
 * @example
 * ```ts
 * await saveModelFolder("runs/a/final", {
 *   config: cfg.raw, tensors: params, dtype: "BF16", copyFrom: "models/base",
 * });
 * ```
 */
export async function saveModelFolder(dir: string, options: SaveModelOptions): Promise<SavedModel> {
  const config = configWithDtype(options.config, options.dtype);
  const cfg = parseModelConfig(config, "saveModelFolder config");
  if (!Object.hasOwn(TORCH_DTYPE_NAMES, options.dtype)) {
    throw new ModelFolderError(`saveModelFolder: dtype must be F32, F16 or BF16, got ${show(options.dtype)}`);
  }
  const maxShardBytes = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(maxShardBytes > 0)) throw new ModelFolderError(`saveModelFolder: maxShardBytes must be positive`);
  const expected = expectedParameterShapes(cfg);
  const read = tensorSource(options.tensors, expected, cfg);
  const tmp = await makeTempSiblingDir(dir);
  try {
    const { files, totalSize, weightMap } = await writeShards(
      tmp,
      expected,
      read,
      options.dtype,
      maxShardBytes,
    );
    if (files.length > 1) {
      const index = { metadata: { total_size: totalSize }, weight_map: sortKeysDeep(weightMap) };
      await writeJsonAtomic(join(tmp, WEIGHTS_INDEX_FILE), index, { sortKeys: true });
    }
    await writeJsonAtomic(join(tmp, "config.json"), config, { sortKeys: true });
    const copied = options.copyFrom ? await copyCompanions(options.copyFrom, tmp) : [];
    if (options.generationConfig) {
      await writeJsonAtomic(join(tmp, "generation_config.json"), options.generationConfig, {
        sortKeys: true,
      });
    }
    await replaceDirAtomic(tmp, dir);
    return { weightFiles: files, totalSize, copied };
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}
