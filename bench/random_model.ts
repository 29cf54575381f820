/**
 * A Llama with random weights built straight on the GPU, for benchmarks: no download, no multi-gigabyte
 * arrays in JavaScript.
 *
 * @module
 */
import type { Gpu, Tensor } from "../gpu/runtime.ts";
import type { ModelConfig } from "../io/hf_config.ts";
import { f32ToF16 } from "../gpu/half.ts";
import { normalGenerator } from "../model/init.ts";
import { Llama } from "../model/llama.ts";
import { LINEAR_NAMES, type LlamaDims, llamaParamSpecs } from "../io/llama_architecture.ts";
import { type LoadedLlama, paramDtype, weightSource } from "../model/load.ts";
import { ParamSet } from "../model/params.ts";
import { ropeTables } from "../model/rope.ts";
import { initLora, loraAdapters, loraParamSpecs, type LoraSpec } from "../train/lora.ts";

/**
 * How {@link createRandomLlama} builds the model.
 * @example
 * ```ts
 * const opts: RandomLlamaOptions = { trainable: false, maxTokens: 1024, maxPositions: 1024, lora: loraSpecFor(16) };
 * ```
 */
export interface RandomLlamaOptions {
  /** Full fine-tuning: gradients and AdamW moments for every parameter. */
  trainable: boolean;
  /** Most rows (batch × length) one pass processes. */
  maxTokens: number;
  /** RoPE table length (at most the config's max_position_embeddings). */
  maxPositions: number;
  /** Trainable LoRA adapters beside a frozen base (excludes `trainable`). */
  lora?: LoraSpec;
  /** Hold the frozen base's matrices in f16 (needs `shader-f16`; with `lora` or for inference). */
  f16Base?: boolean;
  /** Keep only each layer's input for the backward pass and recompute the layer there. */
  gradientCheckpointing?: boolean;
  seed?: number;
}

/**
 * A model with random weights and what a benchmark needs to train or free it.
 * @example
 * ```ts
 * const m: RandomLlama = await createRandomLlama(gpu, config, { trainable: true, maxTokens: 256, maxPositions: 256 });
 * const opt = new AdamW(gpu, m.trainableSets);
 * ```
 */
export interface RandomLlama {
  loaded: LoadedLlama;
  /** Parameter sets the optimizer updates (the base when fully trainable, else the adapters; none for inference). */
  trainableSets: ParamSet[];
  /** Parameters of the model, adapters included. */
  parameters: number;
  /** Parameters the optimizer updates. */
  trainableParameters: number;
  /** Releases every GPU buffer of the model. */
  destroy(): void;
}

/** Distinct values repeated through every weight: not a power of two, so rows of a matrix do not line up. */
const PATTERN_LENGTH = (1 << 20) - 2;

/**
 * Builds a Llama of `config`'s shape with weights drawn as transformers initialises them (N(0, 0.02²), norm
 * weights 1). A few million random values are uploaded once and copied through every tensor on the GPU, so
 * a 7B model is ready in seconds; the values repeat, which changes nothing a timing measures.
 * @example
 * ```ts
 * const m = await createRandomLlama(gpu, shapeFromFlags({ preset: "tiny" }).config, {
 *   trainable: true, maxTokens: 512, maxPositions: 128,
 * });
 * m.destroy();
 * ```
 */
export async function createRandomLlama(
  gpu: Gpu,
  config: ModelConfig,
  opts: RandomLlamaOptions,
): Promise<RandomLlama> {
  if (opts.trainable && opts.lora) {
    throw new Error("a model is either fully trainable or trains LoRA adapters");
  }
  if (opts.f16Base && opts.trainable) throw new Error("--f16-base holds a frozen base: use it with LoRA");
  if (opts.f16Base && !gpu.hasF16) throw new Error(`--f16-base: ${gpu.report.description} has no shader-f16`);
  if (opts.maxPositions > config.maxPositionEmbeddings) {
    throw new RangeError(
      `${opts.maxPositions} positions exceed the shape's max_position_embeddings ` +
        `(${config.maxPositionEmbeddings}); raise it with --positions`,
    );
  }
  const seed = opts.seed ?? 0;
  const base = ParamSet.create(gpu, llamaParamSpecs(config), {
    trainable: opts.trainable,
    label: "params",
    dtypeOf: (s) => paramDtype(s, Boolean(opts.f16Base)),
  });
  await fillRandom(gpu, base, seed);
  const adapters = opts.lora ? createLora(gpu, config, opts.lora, seed + 1) : undefined;
  const tables = ropeTables(config.rope, opts.maxPositions);
  const rope = {
    cos: gpu.upload(tables.cos, "rope.cos"),
    sin: gpu.upload(tables.sin, "rope.sin"),
    maxPositions: opts.maxPositions,
  };
  const lora = adapters && opts.lora ? loraAdapters(adapters, opts.lora, config) : undefined;
  const model = new Llama(gpu, config, weightSource(base, lora), rope, {
    maxTokens: opts.maxTokens,
    trainable: opts.trainable || Boolean(opts.lora),
    gradientCheckpointing: opts.gradientCheckpointing,
  });
  const trainableSets = opts.trainable ? [base] : adapters ? [adapters] : [];
  return {
    loaded: { config, params: base, model },
    trainableSets,
    parameters: base.size + (adapters?.size ?? 0),
    trainableParameters: trainableSets.reduce((s, p) => s + p.size, 0),
    destroy() {
      model.destroy();
      base.destroy();
      adapters?.destroy();
    },
  };
}

function createLora(gpu: Gpu, dims: LlamaDims, spec: LoraSpec, seed: number): ParamSet {
  const set = ParamSet.create(gpu, loraParamSpecs(dims, spec), { trainable: true, label: "lora" });
  for (const [name, data] of initLora(dims, spec, seed)) gpu.write(set.value(name), data);
  return set;
}

/** Fills every value tensor of `set`: norm weights with 1, the rest by repeating one random pattern. */
async function fillRandom(gpu: Gpu, set: ParamSet, seed: number): Promise<void> {
  const normal = normalGenerator(seed);
  // The pattern is a tensor too: on an adapter with small bindings it is shorter.
  const length = Math.min(PATTERN_LENGTH, Math.floor(gpu.maxBinding / 4) - 2);
  const pattern = Float32Array.from({ length }, () => normal() * 0.02);
  const sources = { f32: gpu.upload(pattern, "fill.f32"), f16: gpu.upload(f32ToF16(pattern), "fill.f16") };
  const patternBytes = { f32: length * 4, f16: length * 2 };
  gpu.run([], (encoder) => {
    for (const spec of set.specs) {
      for (const { tensor: t } of set.blocks(spec.name).blocks) {
        if (spec.name.endsWith("norm.weight")) {
          gpu.write(t, new Float32Array(t.length).fill(1));
          continue;
        }
        const kind = t.dtype === "f16" ? "f16" : "f32";
        copyRepeated(encoder, sources[kind], patternBytes[kind], t);
      }
    }
  });
  await gpu.sync();
  for (const s of Object.values(sources)) s.buffer.destroy();
}

/** Copies `src` (`srcBytes` long) end to end into `dst` until it is full. */
function copyRepeated(encoder: GPUCommandEncoder, src: Tensor, srcBytes: number, dst: Tensor): void {
  const bytes = dst.length * (dst.dtype === "f16" ? 2 : 4);
  for (let at = 0; at < bytes; at += srcBytes) {
    // Copies move whole 4-byte words; an odd f16 tail spills into the tensor's 256-byte alignment padding.
    const n = Math.ceil(Math.min(srcBytes, bytes - at) / 4) * 4;
    encoder.copyBufferToBuffer(src.buffer, 0, dst.buffer, dst.offset + at, n);
  }
}

/**
 * The LoRA setting of torch_reference.py: rank `r`, alpha 2r, every linear layer.
 * @example
 * ```ts
 * loraSpecFor(16); // { r: 16, alpha: 32, targets: ["q_proj", …, "down_proj"] }
 * ```
 */
export function loraSpecFor(r: number): LoraSpec {
  return { r, alpha: 2 * r, targets: [...LINEAR_NAMES] };
}
