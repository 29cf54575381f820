/**
 * LoRA adapters in PEFT's layout: trainable low-rank A [r, in] and B [out, r] beside frozen linear layers,
 * `y = x·Wᵀ + (alpha/r)·(x·Aᵀ)·Bᵀ`. Saved as `adapter_config.json` + `adapter_model.safetensors` with PEFT's
 * tensor names, so `PeftModel.from_pretrained` loads them; merged into a full model with `W + scale·B·A`.
 *
 * @module
 */
import { f16ToF32 } from "../gpu/half.ts";
import type { Gpu } from "../gpu/runtime.ts";
import { readRowPieces, wholeTensor } from "../gpu/row_blocks.ts";
import { matmul } from "../kernels/matmul.ts";
import { LOAD_PIECE_ELEMENTS, paramPieces } from "../model/load.ts";
import { writeJsonAtomic } from "../io/atomic.ts";
import { SafetensorsFile, writeSafetensors } from "../io/safetensors.ts";
import type { LoraAdapter } from "../model/llama.ts";
import { uniformGenerator } from "../model/init.ts";
import {
  LINEAR_NAMES,
  type LinearName,
  linearName,
  linearShape,
  type LlamaDims,
  numel,
  type ParamSpec,
} from "../io/llama_architecture.ts";
import type { ParamSet } from "../model/params.ts";

/** What to adapt and how. */
export interface LoraSpec {
  /** Rank. */
  r: number;
  /** `lora_alpha`; the adapter's output is scaled by alpha/r (alpha/√r with rsLoRA). */
  alpha: number;
  /** Linear layers to adapt, by short name (q_proj, …, down_proj). */
  targets: LinearName[];
  /** Rank-stabilised scaling (PEFT's `use_rslora`). */
  rslora?: boolean;
}

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

/** The adapter's output scale. */
export function loraScale(spec: LoraSpec): number {
  return spec.rslora ? spec.alpha / Math.sqrt(spec.r) : spec.alpha / spec.r;
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
  if (!(Number.isInteger(spec.r) && spec.r > 0)) {
    throw new Error(`LoRA rank must be a positive integer, got ${spec.r}`);
  }
  const out: ParamSpec[] = [];
  for (let l = 0; l < dims.numLayers; l++) {
    for (const w of spec.targets) {
      const [outF, inF] = linearShape(dims, w);
      const n = loraNames(linearName(l, w));
      out.push({ name: n.a, shape: [spec.r, inF], decay: true }, {
        name: n.b,
        shape: [outF, spec.r],
        decay: true,
      });
    }
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
export function loraAdapters(params: ParamSet, spec: LoraSpec): (linear: string) => LoraAdapter | undefined {
  const scale = loraScale(spec);
  return (linear) => {
    const n = loraNames(linear);
    if (!params.values.has(n.a)) return undefined;
    const grad = (name: string) => (params.trainable ? wholeTensor(params.blocks(name, "grad")) : undefined);
    return {
      a: params.value(n.a),
      b: params.value(n.b),
      gradA: grad(n.a),
      gradB: grad(n.b),
      rank: spec.r,
      scale,
    };
  };
}

const PEFT_PREFIX = "base_model.model.";

/**
 * Writes an adapter folder in PEFT's layout (atomically per file).
 * @example
 * ```ts
 * await saveLoraAdapter("runs/sft-lora/adapter", weights, spec, "runs/tiny-base");
 * ```
 */
export async function saveLoraAdapter(
  dir: string,
  weights: Map<string, Float32Array>,
  spec: LoraSpec,
  baseModel: string,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const tensors: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
  for (const [name, data] of weights) {
    const m = name.match(/^(.*)\.lora_([AB])$/);
    if (!m) throw new Error(`"${name}" is not a LoRA tensor name`);
    const shape = m[2] === "A" ? [spec.r, data.length / spec.r] : [data.length / spec.r, spec.r];
    tensors[`${PEFT_PREFIX}${m[1]}.lora_${m[2]}.weight`] = { dtype: "F32", shape, data };
  }
  await writeSafetensors(`${dir}/adapter_model.safetensors`, tensors, { format: "pt" });
  await writeJsonAtomic(`${dir}/adapter_config.json`, {
    alpha_pattern: {},
    base_model_name_or_path: baseModel,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    lora_alpha: spec.alpha,
    lora_dropout: 0.0,
    modules_to_save: null,
    peft_type: "LORA",
    r: spec.r,
    rank_pattern: {},
    target_modules: [...spec.targets].sort(),
    task_type: "CAUSAL_LM",
    use_dora: false,
    use_rslora: Boolean(spec.rslora),
  }, { indent: 2 });
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
  const cfgPath = `${dir}/adapter_config.json`;
  const cfg = JSON.parse(await Deno.readTextFile(cfgPath)) as Record<string, unknown>;
  const fail = (field: string, expected: string) => {
    throw new Error(`${cfgPath}: ${field} ${expected}, got ${JSON.stringify(cfg[field])}`);
  };
  if (cfg.peft_type !== "LORA") fail("peft_type", 'must be "LORA"');
  if (typeof cfg.r !== "number") fail("r", "must be a number");
  if (typeof cfg.lora_alpha !== "number") fail("lora_alpha", "must be a number");
  if (cfg.use_dora) fail("use_dora", "is not supported");
  if (cfg.fan_in_fan_out) fail("fan_in_fan_out", "must be false for Llama-family models");
  if (cfg.bias && cfg.bias !== "none") fail("bias", 'must be "none"');
  const rawTargets = cfg.target_modules;
  const targets = typeof rawTargets === "string"
    ? parseLoraTargets(rawTargets)
    : Array.isArray(rawTargets)
    ? parseLoraTargets(rawTargets.join(","))
    : fail("target_modules", "must be a list of linear names");
  const spec: LoraSpec = {
    r: cfg.r as number,
    alpha: cfg.lora_alpha as number,
    targets,
    rslora: Boolean(cfg.use_rslora),
  };
  const file = await SafetensorsFile.open(`${dir}/adapter_model.safetensors`);
  const weights = new Map<string, Float32Array>();
  for (const name of file.names()) {
    const m = name.match(/^base_model\.model\.(.*)\.lora_([AB])(?:\.default)?\.weight$/);
    if (!m) throw new Error(`${dir}/adapter_model.safetensors: tensor "${name}" is not a LoRA A/B weight`);
    weights.set(`${m[1]}.lora_${m[2]}`, await file.readF32(name));
  }
  return {
    spec,
    weights,
    baseModel: typeof cfg.base_model_name_or_path === "string" ? cfg.base_model_name_or_path : undefined,
  };
}

/**
 * A full model's weights with the adapters folded in: W ← W + scale·B·A for every adapted linear.
 * @example
 * ```ts
 * const merged = mergeLora(baseWeights, adapterWeights, spec);
 * ```
 */
export function mergeLora(
  base: Map<string, Float32Array>,
  lora: Map<string, Float32Array>,
  spec: LoraSpec,
): Map<string, Float32Array> {
  const out = new Map(base);
  const scale = loraScale(spec);
  for (const [name, a] of lora) {
    if (!name.endsWith(".lora_A")) continue;
    const linear = name.slice(0, -".lora_A".length);
    const b = lora.get(`${linear}.lora_B`);
    const w = base.get(`${linear}.weight`);
    if (!b || !w) throw new Error(`cannot merge "${linear}": missing ${!b ? "lora_B" : "base weight"}`);
    const r = spec.r, inF = a.length / r, outF = b.length / r;
    if (outF * inF !== w.length) {
      throw new Error(`"${linear}": adapter [${outF}x${r}]·[${r}x${inF}] does not fit the weight`);
    }
    const merged = new Float32Array(w);
    for (let o = 0; o < outF; o++) {
      for (let i = 0; i < inF; i++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += b[o * r + k] * a[k * inF + i];
        merged[o * inF + i] += scale * s;
      }
    }
    out.set(`${linear}.weight`, merged);
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
 * await saveLlama(gpu, loaded, "runs/sft/merged", { tensors: mergedLoraPieces(gpu, loaded.params, adapter, spec) });
 * ```
 */
export function mergedLoraPieces(
  gpu: Gpu,
  base: ParamSet,
  lora: Map<string, Float32Array>,
  spec: LoraSpec,
): (name: string) => AsyncIterable<Float32Array> {
  const scale = loraScale(spec), r = spec.r;
  return async function* (name: string) {
    const linear = name.endsWith(".weight") ? name.slice(0, -".weight".length) : "";
    const a = lora.get(`${linear}.lora_A`), b = lora.get(`${linear}.lora_B`);
    if (!a || !b) {
      yield* paramPieces(gpu, base, name);
      return;
    }
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
