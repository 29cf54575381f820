/**
 * From a Hugging Face folder (or weights in memory) to a {@link Llama} on the GPU, and back to a folder.
 *
 * @module
 */
import { f16ToF32 } from "../gpu/half.ts";
import type { Gpu, Tensor } from "../gpu/runtime.ts";
import { assertWithinSlidingWindow, type ModelConfig } from "../io/hf_config.ts";
import { openModelFolder, type SaveDType, saveModelFolder } from "../io/hf_model.ts";
import {
  LINEAR_NAMES,
  linearName,
  type LlamaDims,
  llamaParamSpecs,
  type ParamSpec,
} from "../io/llama_architecture.ts";
import { Llama, type LoraAdapter, type WeightSource } from "./llama.ts";
import { checkFiniteWeights, checkUnusedWeights } from "./load_checks.ts";
import { ParamSet } from "./params.ts";
import { ropeTables } from "./rope.ts";

/** Options of {@link loadLlama}. */
export interface LoadOptions {
  /** Allocate gradients and AdamW moments for every parameter (full fine-tuning). */
  trainable: boolean;
  /** Most rows (batch × length) one pass processes. */
  maxTokens: number;
  /** Longest position RoPE tables cover (default: min(max_position_embeddings, 4096)). */
  maxPositions?: number;
  /** Rows per vocabulary-projection chunk. */
  logitsRows?: number;
  /** Hold frozen matrices (linear weights, embeddings) as f16 (needs `shader-f16`; only when not `trainable`). */
  frozenF16?: boolean;
  /** LoRA adapters by linear name (`model.layers.0.self_attn.q_proj`). */
  lora?: (linear: string) => LoraAdapter | undefined;
  /**
   * Load a folder whose files hold tensors the config does not use (with a warning); by default that is an
   * error, since they would be dropped silently.
   */
  ignoreUnusedWeights?: boolean;
  /** Receives loading warnings (default: stderr). */
  warn?: (message: string) => void;
}

/** A model on the GPU with its parameters and where it came from. */
export interface LoadedLlama {
  /** The model's `config.json`, normalized. */
  config: ModelConfig;
  /** The parameters on the GPU (with gradients and moments when trainable). */
  params: ParamSet;
  /** The model bound to `params`, ready to run. */
  model: Llama;
  /** The folder it was loaded from, if any (tokenizer files are copied from there on save). */
  dir?: string;
}

/**
 * The dtype a parameter is held in on the GPU: with a frozen f16 base, matrices (linear weights and the
 * embedding table) are f16; norm weights and biases stay f32 (they are small and their kernels read f32).
 * @example
 * ```ts
 * paramDtype({ name: "model.norm.weight", shape: [2048], decay: false }, true); // "f32"
 * ```
 */
export function paramDtype(spec: ParamSpec, frozenF16: boolean): "f32" | "f16" {
  return frozenF16 && spec.shape.length === 2 ? "f16" : "f32";
}

/** A {@link WeightSource} over a parameter set (and optional LoRA adapters). */
export function weightSource(
  params: ParamSet,
  lora?: (linear: string) => LoraAdapter | undefined,
): WeightSource {
  return {
    value: (name) => params.value(name),
    grad: (name) => (params.trainable ? params.grads.get(name) : undefined),
    lora,
  };
}

/**
 * Loads a model onto the GPU from a folder, or from a config and weights already in memory.
 * @example
 * ```ts
 * const { model } = await loadLlama(gpu, "runs/tiny-base", { trainable: false, maxTokens: 512 });
 * ```
 */
export async function loadLlama(
  gpu: Gpu,
  source: string | { config: ModelConfig; weights: Map<string, Float32Array> },
  opts: LoadOptions,
): Promise<LoadedLlama> {
  const folder = typeof source === "string" ? await openModelFolder(source) : undefined;
  if (folder) await checkUnusedWeights(folder, { ignore: opts.ignoreUnusedWeights, warn: opts.warn });
  const config = folder ? folder.config : (source as { config: ModelConfig }).config;
  const specs = llamaParamSpecs(config);
  const f16 = Boolean(opts.frozenF16) && !opts.trainable;
  if (f16 && !gpu.hasF16) {
    throw new Error(`frozen f16 weights need shader-f16, which ${gpu.report.description} lacks`);
  }
  const params = ParamSet.create(gpu, specs, {
    trainable: opts.trainable,
    label: "params",
    dtypeOf: (s) => paramDtype(s, f16),
  });
  for (const spec of specs) {
    const t = params.value(spec.name);
    if (folder) {
      const w = t.dtype === "f16" ? await folder.readF16Bits(spec.name) : await folder.readF32(spec.name);
      checkFiniteWeights(spec.name, w, `${folder.dir}/${folder.fileOf(spec.name)}`);
      gpu.write(t, w);
    } else {
      const w = (source as { weights: Map<string, Float32Array> }).weights.get(spec.name);
      if (!w) throw new Error(`weights lack "${spec.name}"`);
      if (w.length !== t.length) {
        throw new Error(`"${spec.name}" has ${w.length} values, expected ${t.length}`);
      }
      if (t.dtype === "f16") throw new Error("frozen f16 weights load from a folder only");
      checkFiniteWeights(spec.name, w, "the weights given");
      gpu.write(t, w);
    }
  }
  const maxPositions = opts.maxPositions ?? Math.min(config.maxPositionEmbeddings, 4096);
  // Attention here is full causal attention: a model with a shorter sliding window would differ.
  assertWithinSlidingWindow(config, maxPositions);
  const tables = ropeTables(config.rope, maxPositions);
  const rope = {
    cos: gpu.upload(tables.cos, "rope.cos"),
    sin: gpu.upload(tables.sin, "rope.sin"),
    maxPositions,
  };
  const model = new Llama(gpu, config, weightSource(params, opts.lora), rope, {
    maxTokens: opts.maxTokens,
    // Trainable adapters need every layer's activations kept for their backward pass; frozen ones do not.
    trainable: opts.trainable || hasTrainableLora(config, opts.lora),
    logitsRows: opts.logitsRows,
  });
  return { config, params, model, dir: typeof source === "string" ? source : undefined };
}

/** Whether any linear of the model has an adapter with gradients (LoRA training). */
function hasTrainableLora(dims: LlamaDims, lora: LoadOptions["lora"]): boolean {
  if (!lora) return false;
  for (let l = 0; l < dims.numLayers; l++) {
    for (const w of LINEAR_NAMES) {
      const a = lora(linearName(l, w));
      if (a?.gradA || a?.gradB) return true;
    }
  }
  return false;
}

/**
 * Releases a loaded model's GPU memory (weights and workspace); the model is unusable afterwards.
 * @example
 * ```ts
 * const loaded = await loadLlama(gpu, "runs/sft/final", { trainable: false, maxTokens: 512 });
 * // … score or generate …
 * unloadLlama(loaded);
 * ```
 */
export function unloadLlama(loaded: LoadedLlama): void {
  loaded.model.destroy();
  loaded.params.destroy();
}

/**
 * Reads every parameter back from the GPU as f32 (f16-held values widened), keyed by Hugging Face name.
 * @example
 * ```ts
 * const weights = await readParams(gpu, loaded.params);
 * weights.get("model.norm.weight"); // Float32Array
 * ```
 */
export async function readParams(gpu: Gpu, params: ParamSet): Promise<Map<string, Float32Array>> {
  const names = params.specs.map((s) => s.name);
  const tensors: Tensor[] = names.map((n) => params.value(n));
  const data = await gpu.readMany(tensors);
  const out = new Map<string, Float32Array>();
  names.forEach((n, i) => {
    const d = data[i];
    out.set(n, d instanceof Float32Array ? d : f16ToF32(d as Uint16Array));
  });
  return out;
}

/**
 * Saves the model's current weights as a Hugging Face folder (config + safetensors + the source folder's
 * tokenizer and generation files), atomically.
 *
 * `opts.dtype` is the stored weight type (default F32); `opts.copyFrom` the folder whose tokenizer and
 * generation files are copied (default: the folder the model was loaded from); `opts.weights` saves these
 * values instead of reading the GPU's back.
 * @example
 * ```ts
 * await saveLlama(gpu, loaded, "runs/sft/final", { dtype: "BF16" });
 * ```
 */
export async function saveLlama(
  gpu: Gpu,
  loaded: LoadedLlama,
  dir: string,
  opts: { dtype?: SaveDType; copyFrom?: string; weights?: Map<string, Float32Array> } = {},
): Promise<void> {
  const weights = opts.weights ?? await readParams(gpu, loaded.params);
  await saveModelFolder(dir, {
    config: loaded.config.raw,
    tensors: weights,
    dtype: opts.dtype ?? "F32",
    copyFrom: opts.copyFrom ?? loaded.dir,
  });
}
