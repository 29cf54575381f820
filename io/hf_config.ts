/**
 * `config.json` and `generation_config.json` of Hugging Face Llama-family folders (llama, mistral, qwen2),
 * read into a {@link ModelConfig} and a {@link GenerationConfig}: each field validated with an error that
 * names the file and the field, each architecture's defaults applied as transformers applies them.
 *
 * The raw JSON is kept, so a saved model carries every field this module does not interpret.
 *
 * @module
 */
import type { LlamaDims, RopeConfig, RopeScaling } from "./llama_architecture.ts";

/** The architectures this toolkit runs: same decoder, different defaults and biases. */
export type ModelType = "llama" | "mistral" | "qwen2";

const MODEL_TYPES: readonly ModelType[] = ["llama", "mistral", "qwen2"];

/**
 * A `config.json` normalized: the architecture ({@link LlamaDims}, `rope`) and what generation and saving
 * need, with the original JSON kept in `raw`.
 *
 * @example
 * ```ts
 * const cfg: ModelConfig = parseModelConfig(JSON.parse(await Deno.readTextFile("m/config.json")), "m/config.json");
 * cfg.numLayers; // num_hidden_layers
 * ```
 */
export interface ModelConfig extends LlamaDims {
  /** `model_type`: which architecture's defaults and biases apply. */
  modelType: ModelType;
  /** `max_position_embeddings`: the longest context the model was trained for. */
  maxPositionEmbeddings: number;
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

/** A JSON value as it reads in an error message. */
export function show(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

/** Whether a parsed JSON value is an object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
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
