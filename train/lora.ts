/**
 * LoRA adapters for training, in PEFT's layout: trainable low-rank A [r, in] and B [out, r] beside frozen
 * linear layers, `y = x·Wᵀ + scale·(x·Aᵀ)·Bᵀ` with scale alpha/r (alpha/√r with rsLoRA). Which linears carry
 * an adapter, and at which rank and alpha, is `adaptedLinears` of io/peft_adapter.ts (PEFT's matching rules,
 * `rank_pattern` and `alpha_pattern` included); the folder format is there too. This file gives the trainer
 * the adapter's parameters, their initialisation, the model hook, saving and merging.
 *
 * @module
 */
import { f16ToF32 } from "../gpu/half.ts";
import type { Gpu } from "../gpu/runtime.ts";
import { readRowPieces, wholeTensor } from "../gpu/row_blocks.ts";
import { matmul } from "../kernels/matmul.ts";
import { LOAD_PIECE_ELEMENTS, paramPieces } from "../model/load.ts";
import { resolve } from "node:path";
import { copyCompanionFiles, TOKENIZER_FILES } from "../io/hf_model.ts";
import { adaptedLinears, type LoraSpec, readPeftAdapter, writePeftAdapter } from "../io/peft_adapter.ts";
import type { LoraAdapter } from "../model/llama.ts";
import { uniformGenerator } from "../model/init.ts";
import {
  LINEAR_NAMES,
  type LinearName,
  type LlamaDims,
  numel,
  type ParamSpec,
} from "../io/llama_architecture.ts";
import type { ParamSet } from "../model/params.ts";

export type { LoraSpec } from "../io/peft_adapter.ts";

/** Target lists people pass: `all-linear` or comma-separated short names. */
export function parseLoraTargets(text: string): LinearName[] {
  if (text === "all-linear" || text === "all") return [...LINEAR_NAMES];
  const names = text.split(",").map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!(LINEAR_NAMES as readonly string[]).includes(n)) {
      throw new Error(
        `LoRA target "${n}" is not a linear layer; expected all-linear or some of ${LINEAR_NAMES.join(", ")}`,
      );
    }
  }
  if (names.length === 0) throw new Error("LoRA targets are empty");
  return names as LinearName[];
}

/** Internal parameter names of the adapter of `linear` (e.g. `model.layers.0.self_attn.q_proj.lora_A`). */
export function loraNames(linear: string): { a: string; b: string } {
  return { a: `${linear}.lora_A`, b: `${linear}.lora_B` };
}

/**
 * Parameter specs of every adapter (all decayed, as the Trainer decays `lora_A.weight`/`lora_B.weight`).
 * @example
 * ```ts
 * loraParamSpecs(dims, { r: 8, alpha: 16, targets: ["q_proj", "v_proj"] }).length; // 4 per layer
 * ```
 */
export function loraParamSpecs(dims: LlamaDims, spec: LoraSpec): ParamSpec[] {
  const out: ParamSpec[] = [];
  for (const l of adaptedLinears(dims, spec)) {
    const n = loraNames(l.name);
    out.push({ name: n.a, shape: [l.rank, l.shape[1]], decay: true }, {
      name: n.b,
      shape: [l.shape[0], l.rank],
      decay: true,
    });
  }
  return out;
}

/**
 * PEFT's initialisation: A from kaiming_uniform(a=√5), i.e. U(−1/√in, 1/√in); B zero, so training starts
 * from the base model exactly.
 */
export function initLora(dims: LlamaDims, spec: LoraSpec, seed: number): Map<string, Float32Array> {
  const uniform = uniformGenerator(seed);
  const out = new Map<string, Float32Array>();
  for (const p of loraParamSpecs(dims, spec)) {
    const data = new Float32Array(numel(p.shape));
    if (p.name.endsWith(".lora_A")) {
      const bound = 1 / Math.sqrt(p.shape[1]);
      for (let i = 0; i < data.length; i++) data[i] = (uniform() * 2 - 1) * bound;
    }
    out.set(p.name, data);
  }
  return out;
}

/** The model's LoRA hook over a trainable adapter parameter set. */
export function loraAdapters(
  params: ParamSet,
  spec: LoraSpec,
  dims: LlamaDims,
): (linear: string) => LoraAdapter | undefined {
  const layout = new Map(adaptedLinears(dims, spec).map((l) => [l.name, l]));
  const grad = (name: string) => (params.trainable ? wholeTensor(params.blocks(name, "grad")) : undefined);
  return (linear) => {
    const l = layout.get(linear);
    if (!l) return undefined;
    const n = loraNames(linear);
    return {
      a: params.value(n.a),
      b: params.value(n.b),
      gradA: grad(n.a),
      gradB: grad(n.b),
      rank: l.rank,
      scale: l.scale,
    };
  };
}

/**
 * How a saved adapter names its base model: a local folder by its absolute path (so the adapter loads from
 * any working directory), a Hub id as given.
 *
 * @example
 * ```ts
 * await baseModelReference("runs/tiny-base"); // "/home/me/project/runs/tiny-base"
 * await baseModelReference("Qwen/Qwen2.5-0.5B"); // "Qwen/Qwen2.5-0.5B"
 * ```
 */
export async function baseModelReference(pathOrRepoId: string): Promise<string> {
  try {
    if ((await Deno.stat(pathOrRepoId)).isDirectory) return resolve(pathOrRepoId);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return pathOrRepoId;
}

/** Options of {@link saveLoraAdapter}. */
export interface SaveLoraOptions {
  /** The base model's architecture numbers (they give each adapter tensor its shape). */
  dims: LlamaDims;
  /** A folder whose tokenizer files are copied beside the adapter, as TRL saves the tokenizer with it. */
  tokenizerFrom?: string;
}

/**
 * Writes an adapter folder in PEFT's layout (atomically per file): `adapter_model.safetensors`,
 * `adapter_config.json` with `base_model_name_or_path` as {@link baseModelReference} gives it, and the
 * tokenizer files of `tokenizerFrom`.
 * @example
 * ```ts
 * await saveLoraAdapter("runs/sft-lora/final", weights, spec, "runs/tiny-base", { dims, tokenizerFrom: "runs/tiny-base" });
 * ```
 */
export async function saveLoraAdapter(
  dir: string,
  weights: Map<string, Float32Array>,
  spec: LoraSpec,
  baseModel: string,
  options: SaveLoraOptions,
): Promise<void> {
  await writePeftAdapter(dir, weights, spec, options.dims, await baseModelReference(baseModel));
  if (options.tokenizerFrom) await copyCompanionFiles(options.tokenizerFrom, dir, TOKENIZER_FILES);
}

/**
 * Reads a PEFT LoRA adapter folder; errors name the file and field for anything this toolkit cannot apply.
 * @example
 * ```ts
 * const { spec, weights } = await loadLoraAdapter("runs/sft-lora/adapter");
 * ```
 */
export async function loadLoraAdapter(
  dir: string,
): Promise<{ spec: LoraSpec; weights: Map<string, Float32Array>; baseModel?: string }> {
  const { spec, weights, baseModel } = await readPeftAdapter(dir);
  return { spec, weights, baseModel };
}

/**
 * A full model's weights with the adapters folded in: W ← W + scale·B·A for every adapted linear, each with
 * its own rank and scale.
 * @example
 * ```ts
 * const merged = mergeLora(baseWeights, adapterWeights, spec, dims);
 * ```
 */
export function mergeLora(
  base: Map<string, Float32Array>,
  lora: Map<string, Float32Array>,
  spec: LoraSpec,
  dims: LlamaDims,
): Map<string, Float32Array> {
  const out = new Map(base);
  for (const l of adaptedLinears(dims, spec)) {
    const n = loraNames(l.name);
    const a = lora.get(n.a), b = lora.get(n.b), w = base.get(`${l.name}.weight`);
    if (!a || !b || !w) {
      throw new Error(`cannot merge "${l.name}": missing ${!a ? "lora_A" : !b ? "lora_B" : "base weight"}`);
    }
    const r = l.rank, [outF, inF] = l.shape;
    if (a.length !== r * inF || b.length !== outF * r || w.length !== outF * inF) {
      throw new Error(`"${l.name}": adapter [${outF}x${r}]·[${r}x${inF}] does not fit the weight`);
    }
    const merged = new Float32Array(w);
    for (let o = 0; o < outF; o++) {
      for (let i = 0; i < inF; i++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += b[o * r + k] * a[k * inF + i];
        merged[o * inF + i] += l.scale * s;
      }
    }
    out.set(`${l.name}.weight`, merged);
  }
  return out;
}

/**
 * The merged model's tensors for `saveLlama`'s `tensors`, as f32 pieces of whole rows: W + scale·B·A for
 * every adapted linear layer, the base weights as they are otherwise. The base streams from the GPU piece
 * by piece and each piece's B·A is a matmul on the GPU, so neither a whole base model nor a whole tensor is
 * ever on the host. {@link mergeLora} is the same merge on host arrays.
 * @example
 * ```ts
 * await saveLlama(gpu, loaded, "runs/sft/merged", { tensors: mergedLoraPieces(gpu, loaded.params, adapter, spec, dims) });
 * ```
 */
export function mergedLoraPieces(
  gpu: Gpu,
  base: ParamSet,
  lora: Map<string, Float32Array>,
  spec: LoraSpec,
  dims: LlamaDims,
): (name: string) => AsyncIterable<Float32Array> {
  const layout = new Map(adaptedLinears(dims, spec).map((l) => [`${l.name}.weight`, l]));
  return async function* (name: string) {
    const l = layout.get(name);
    const linear = l?.name ?? "";
    const n = loraNames(linear);
    const a = lora.get(n.a), b = lora.get(n.b);
    if (!l || !a || !b) {
      if (l) throw new Error(`cannot merge "${linear}": missing ${!a ? "lora_A" : "lora_B"}`);
      yield* paramPieces(gpu, base, name);
      return;
    }
    const { rank: r, scale } = l;
    const w = base.blocks(name);
    const inF = w.cols;
    if (a.length !== r * inF || b.length !== w.rows * r) {
      throw new Error(
        `"${linear}": adapter [${b.length / r}x${r}]·[${r}x${a.length / r}] does not fit the weight`,
      );
    }
    const tA = gpu.upload(a, `${linear}.lora_A`);
    // A piece's B·A is an f32 [rows, in] tensor: pieces stay within one binding as f32.
    const piece = Math.min(LOAD_PIECE_ELEMENTS, Math.floor(gpu.maxBinding / 4));
    try {
      for await (const { row0, data } of readRowPieces(gpu, w, piece)) {
        const rows = data.length / inF;
        const tB = gpu.upload(b.subarray(row0 * r, (row0 + rows) * r), `${linear}.lora_B`);
        const delta = gpu.tensor(rows * inF, "f32", "lora.merge.delta");
        gpu.run([matmul(gpu, { a: tB, b: tA, c: delta, M: rows, N: inF, K: r, alpha: scale })]);
        const d = await gpu.read(delta);
        tB.buffer.destroy();
        delta.buffer.destroy();
        const merged = data instanceof Float32Array ? data : f16ToF32(data as Uint16Array);
        for (let i = 0; i < merged.length; i++) merged[i] += d[i];
        yield merged;
      }
    } finally {
      tA.buffer.destroy();
    }
  };
}
