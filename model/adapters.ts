/**
 * Frozen PEFT LoRA adapters on the GPU, as the model's `lora` hook: one adapter applied to every row (an
 * adapter folder loaded as a model), or several stacked along the rank with each row choosing its own
 * (`serve --lora NAME=DIR`, as vLLM's `--lora-modules`; see kernels/lora_select.ts). Adapters stay unmerged,
 * as PEFT runs them: `y = x·Wᵀ + scale·(x·Aᵀ)·Bᵀ`.
 *
 * @module
 */
import type { Gpu, Tensor } from "../gpu/runtime.ts";
import type { AdaptedLinear } from "../io/peft_adapter.ts";
import type { LoraAdapter } from "./llama.ts";
import { type LoadedLlama, loadLlama, type LoadOptions, unloadLlama } from "./load.ts";

/** An adapter as the GPU needs it: which linears it adapts (rank, scale) and its A/B weights. */
export interface AdapterWeights {
  /** The linears it adapts, from `checkAdapterFits` (io/peft_adapter.ts). */
  layout: readonly AdaptedLinear[];
  /** `<module>.lora_A` [rank, in] and `<module>.lora_B` [out, rank]. */
  weights: ReadonlyMap<string, Float32Array>;
}

/** Adapters uploaded for a model: its `lora` hook, and the per-row adapter choice when several are stacked. */
export interface GpuAdapters {
  /** The hook to pass as `LoadOptions.lora`. */
  hook: (linear: string) => LoraAdapter | undefined;
  /**
   * u32 [maxRows]: each row's adapter, 1 for the first of the list given, 0 for none (the base model); only
   * when the adapters were stacked. Write it before each pass; rows beyond the pass are not read.
   */
  rowAdapter?: Tensor;
  /** Frees the adapters' buffers (after the model that uses them). */
  destroy(): void;
}

/**
 * Uploads adapters. One adapter without `stacked` is applied to every row; with `stacked` (or several
 * adapters) each row applies the adapter {@link GpuAdapters.rowAdapter} names, or none.
 *
 * @example
 * ```ts
 * const adapters = uploadAdapters(gpu, [{ layout, weights }], { maxRows: 4096 });
 * const loaded = await loadLlama(gpu, baseDir, { trainable: false, maxTokens: 4096, lora: adapters.hook });
 * ```
 */
export function uploadAdapters(
  gpu: Gpu,
  adapters: readonly AdapterWeights[],
  opts: { maxRows: number; stacked?: boolean },
): GpuAdapters {
  const owned: Tensor[] = [];
  const upload = (data: Float32Array | Uint32Array, label: string) => {
    const t = gpu.upload(data, label);
    owned.push(t);
    return t;
  };
  const hooks = new Map<string, LoraAdapter>();
  const destroy = () => owned.forEach((t) => t.buffer.destroy());
  if (adapters.length === 1 && !opts.stacked) {
    for (const l of adapters[0].layout) {
      hooks.set(l.name, {
        a: upload(weightOf(adapters[0], `${l.name}.lora_A`), `${l.name}.lora_A`),
        b: upload(weightOf(adapters[0], `${l.name}.lora_B`), `${l.name}.lora_B`),
        rank: l.rank,
        scale: l.scale,
      });
    }
    return { hook: (linear) => hooks.get(linear), destroy };
  }
  const rowAdapter = upload(new Uint32Array(opts.maxRows), "lora.rowAdapter");
  const names = new Set(adapters.flatMap((a) => a.layout.map((l) => l.name)));
  for (const name of names) {
    const parts = adapters.flatMap((a, i) => {
      const l = a.layout.find((x) => x.name === name);
      return l ? [{ adapter: a, index: i + 1, l }] : [];
    });
    const [outF, inF] = parts[0].l.shape;
    const rank = parts.reduce((s, p) => s + p.l.rank, 0);
    const a = new Float32Array(rank * inF), b = new Float32Array(outF * rank);
    const columns = new Uint32Array(rank), scales = new Float32Array(rank);
    let at = 0;
    for (const p of parts) {
      const r = p.l.rank;
      a.set(weightOf(p.adapter, `${name}.lora_A`), at * inF);
      const pb = weightOf(p.adapter, `${name}.lora_B`);
      for (let o = 0; o < outF; o++) b.set(pb.subarray(o * r, (o + 1) * r), o * rank + at);
      columns.fill(p.index, at, at + r);
      scales.fill(p.l.scale, at, at + r);
      at += r;
    }
    hooks.set(name, {
      a: upload(a, `${name}.lora_A*`),
      b: upload(b, `${name}.lora_B*`),
      rank,
      scale: 1,
      select: {
        rows: rowAdapter,
        columns: upload(columns, `${name}.lora.columns`),
        scales: upload(scales, `${name}.lora.scales`),
      },
    });
  }
  return { hook: (linear) => hooks.get(linear), rowAdapter, destroy };
}

function weightOf(a: AdapterWeights, key: string): Float32Array {
  const w = a.weights.get(key);
  if (!w) throw new Error(`adapter weights lack "${key}"`);
  return w;
}

/** A model loaded with adapters, and how to free both. */
export interface AdaptedLlama {
  /** The base model, with the adapters' hook. */
  loaded: LoadedLlama;
  /** The adapters' hook and row choice; absent without adapters. */
  adapters?: GpuAdapters;
  /** Frees the model and the adapters. */
  release(): void;
}

/**
 * Loads `modelDir` with `adapters` applied (none: the plain model): one adapter to every row, or several
 * stacked (see {@link uploadAdapters}). The model's workspace, and the stacked row choice, hold
 * `opts.maxTokens` rows.
 *
 * @example
 * ```ts
 * const src = await resolveModelSource("runs/sft-lora/final");
 * const { loaded, release } = await loadLlamaWithAdapters(gpu, src.modelDir, src.adapter ? [src.adapter] : [], {
 *   trainable: false, maxTokens: 2048,
 * });
 * ```
 */
export async function loadLlamaWithAdapters(
  gpu: Gpu,
  modelDir: string,
  adapters: readonly AdapterWeights[],
  opts: Omit<LoadOptions, "lora" | "trainable"> & { stacked?: boolean },
): Promise<AdaptedLlama> {
  const { stacked, ...load } = opts;
  const up = adapters.length > 0 || stacked
    ? uploadAdapters(gpu, adapters, { maxRows: opts.maxTokens, stacked })
    : undefined;
  try {
    const loaded = await loadLlama(gpu, modelDir, { ...load, trainable: false, lora: up?.hook });
    return {
      loaded,
      adapters: up,
      release: () => {
        unloadLlama(loaded);
        up?.destroy();
      },
    };
  } catch (e) {
    up?.destroy();
    throw e;
  }
}
