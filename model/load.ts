/**
 * From a Hugging Face folder (or weights in memory) to a {@link Llama} on the GPU, and back to a folder.
 *
 * @module
 */
import { f16ToF32 } from "../gpu/half.ts";
import type { Gpu } from "../gpu/runtime.ts";
import { readRowPieces, readRows, type RowBlocks, writeRows } from "../gpu/row_blocks.ts";
import { assertWithinSlidingWindow, type ModelConfig } from "../io/hf_config.ts";
import { type ModelFolder, openModelFolder, type SaveDType, saveModelFolder } from "../io/hf_model.ts";
import {
  LINEAR_NAMES,
  linearName,
  type LlamaDims,
  llamaParamSpecs,
  type ParamSpec,
} from "../io/llama_architecture.ts";
import { Llama, type LoraAdapter, type WeightSource } from "./llama.ts";
import {
  checkFiniteWeights,
  checkUnusedWeights,
  countNonFinite,
  nonFiniteWeightsError,
} from "./load_checks.ts";
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
  /** Keep only each layer's input and recompute the layer in the backward pass (see `LlamaOptions`). */
  gradientCheckpointing?: boolean;
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

/** Elements read, converted and uploaded at once: 4 Mi (16 MiB as f32), whatever the tensor's size. */
export const LOAD_PIECE_ELEMENTS = 1 << 22;

/** Bytes of queued uploads after which loading waits for the GPU, so staging memory is reused. */
const FLUSH_BYTES = 64 * 2 ** 20;

/**
 * Uploads tensors from a model folder piece by piece: each piece of at most {@link LOAD_PIECE_ELEMENTS}
 * whole rows is read from its shard, converted (BF16 → f16 bits or f32) and written, and the queue is
 * drained every {@link FLUSH_BYTES}, because WebGPU keeps a staging copy of every write until it runs.
 * Host memory thus stays at a few pieces however large the checkpoint.
 */
class PieceUploader {
  readonly #gpu: Gpu;
  #queued = 0;
  constructor(gpu: Gpu) {
    this.#gpu = gpu;
  }

  /** Reads `name` from `folder` into `t` (f16 bits for an f16 tensor, else f32). */
  async fromFolder(folder: ModelFolder, name: string, t: RowBlocks): Promise<void> {
    const rowsPerPiece = Math.max(1, Math.floor(LOAD_PIECE_ELEMENTS / t.cols));
    const nonFinite = { count: 0, first: -1 };
    for (let row0 = 0; row0 < t.rows; row0 += rowsPerPiece) {
      const range = { start: row0 * t.cols, count: Math.min(rowsPerPiece, t.rows - row0) * t.cols };
      const data = t.dtype === "f16"
        ? await folder.readF16Bits(name, range)
        : await folder.readF32(name, range);
      const found = countNonFinite(data);
      if (found.count > 0 && nonFinite.first < 0) nonFinite.first = range.start + found.first;
      nonFinite.count += found.count;
      writeRows(this.#gpu, t, data, row0);
      this.#queued += data.byteLength;
      if (this.#queued >= FLUSH_BYTES) await this.flush();
    }
    if (nonFinite.count > 0) {
      throw nonFiniteWeightsError(name, `${folder.dir}/${folder.fileOf(name)}`, nonFinite);
    }
  }

  /** Submits the queued writes and waits for them. */
  async flush(): Promise<void> {
    this.#gpu.run([]);
    await this.#gpu.sync();
    this.#queued = 0;
  }
}

/**
 * Uploads every parameter of `params` from a model folder, tensor by tensor and piece by piece: a BF16
 * checkpoint becomes f16 bits or f32 a few million elements at a time, never a whole f32 copy on the host.
 * @example
 * ```ts
 * await uploadParams(gpu, await openModelFolder("models/llama"), params);
 * ```
 */
export async function uploadParams(gpu: Gpu, folder: ModelFolder, params: ParamSet): Promise<void> {
  const upload = new PieceUploader(gpu);
  for (const spec of params.specs) await upload.fromFolder(folder, spec.name, params.blocks(spec.name));
  await upload.flush();
}

/** A {@link WeightSource} over a parameter set (and optional LoRA adapters). */
export function weightSource(
  params: ParamSet,
  lora?: (linear: string) => LoraAdapter | undefined,
): WeightSource {
  return {
    value: (name) => params.blocks(name),
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
  if (folder) {
    await uploadParams(gpu, folder, params);
  } else {
    const weights = (source as { weights: Map<string, Float32Array> }).weights;
    for (const spec of specs) {
      const t = params.blocks(spec.name);
      const w = weights.get(spec.name);
      if (!w) throw new Error(`weights lack "${spec.name}"`);
      if (w.length !== t.rows * t.cols) {
        throw new Error(`"${spec.name}" has ${w.length} values, expected ${t.rows * t.cols}`);
      }
      if (t.dtype === "f16") throw new Error("frozen f16 weights load from a folder only");
      checkFiniteWeights(spec.name, w, "the weights given");
      writeRows(gpu, t, w);
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
    gradientCheckpointing: opts.gradientCheckpointing,
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
 * One line saying how the model's tensors were laid out against the binding limit: the parameters split
 * into row blocks (if any), the rows of one activation block, and the logits chunk.
 * @example
 * ```ts
 * console.log(describeLayout(loaded));
 * // "row blocks: model.embed_tokens.weight ×9, lm_head.weight ×9; activations in blocks of 4096 rows; logits 523 rows at a time"
 * ```
 */
export function describeLayout(loaded: { params: ParamSet; model: Llama }): string {
  const split = loaded.params.specs
    .map((s) => ({ name: s.name, blocks: loaded.params.blocks(s.name).blocks.length }))
    .filter((s) => s.blocks > 1);
  const shown = split.slice(0, 4).map((s) => `${s.name} ×${s.blocks}`).join(", ");
  const more = split.length > 4 ? ` and ${split.length - 4} more` : "";
  const m = loaded.model;
  return `${split.length ? `row blocks: ${shown}${more}` : "every parameter in one binding"}; ` +
    `activations in blocks of ${m.blockRows} rows; logits ${m.logitsRows} rows at a time`;
}

/**
 * Releases a loaded model's GPU memory (weights and workspace); the model is unusable afterwards.
 * @example
 * ```ts
 * const loaded = await loadLlama(gpu, "runs/sft", { trainable: false, maxTokens: 512 });
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
  const data = await readRows(gpu, names.map((n) => params.blocks(n)));
  const out = new Map<string, Float32Array>();
  names.forEach((n, i) => {
    const d = data[i];
    out.set(n, d instanceof Float32Array ? d : f16ToF32(d as Uint16Array));
  });
  return out;
}

/**
 * One parameter's values as f32 pieces of whole rows, read from the GPU piece by piece (f16-held values
 * widened), so saving streams whatever the tensor's size.
 * @example
 * ```ts
 * for await (const piece of paramPieces(gpu, loaded.params, "lm_head.weight")) console.log(piece.length);
 * ```
 */
export async function* paramPieces(gpu: Gpu, params: ParamSet, name: string): AsyncGenerator<Float32Array> {
  for await (const { data } of readRowPieces(gpu, params.blocks(name), LOAD_PIECE_ELEMENTS)) {
    yield data instanceof Float32Array ? data : f16ToF32(data as Uint16Array);
  }
}

/**
 * Saves the model's current weights as a Hugging Face folder (config + safetensors + the source folder's
 * tokenizer and generation files), atomically. Weights stream from the GPU tensor by tensor, piece by
 * piece: neither the model nor any one tensor is ever whole on the host.
 *
 * `opts.dtype` is the stored weight type (default F32); `opts.copyFrom` the folder whose tokenizer and
 * generation files are copied (default: the folder the model was loaded from); `opts.weights` saves these
 * values instead of reading the GPU's back, and `opts.tensors` takes each tensor's pieces from a function
 * (a LoRA merge, say).
 * @example
 * ```ts
 * await saveLlama(gpu, loaded, "runs/sft", { dtype: "BF16" });
 * ```
 */
export async function saveLlama(
  gpu: Gpu,
  loaded: LoadedLlama,
  dir: string,
  opts: {
    dtype?: SaveDType;
    copyFrom?: string;
    weights?: Map<string, Float32Array>;
    tensors?: (name: string) => AsyncIterable<Float32Array>;
  } = {},
): Promise<void> {
  await saveModelFolder(dir, {
    config: loaded.config.raw,
    tensors: opts.weights ?? opts.tensors ?? ((name) => paramPieces(gpu, loaded.params, name)),
    dtype: opts.dtype ?? "F32",
    copyFrom: opts.copyFrom ?? loaded.dir,
  });
}
