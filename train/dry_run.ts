/**
 * `--dry-run` of the training tasks and of `deno task reproduce`: reads a model's config only (a folder, or
 * just `config.json` of a Hub repo), plans the run's GPU memory part by part (`model/memory_plan.ts`)
 * against the adapter's limits, says whether it fits, and trains nothing.
 *
 * @module
 */
import { Gpu } from "../gpu/runtime.ts";
import { formatBytes } from "../io/bytes.ts";
import { isFile } from "../io/fs.ts";
import { type ModelConfig, parseModelConfig } from "../io/hf_config.ts";
import { resolveModelPath } from "../io/hub.ts";
import { formatPlan, type MemoryPlan, planMemory } from "../model/memory_plan.ts";
import { tinyConfig } from "../model/tiny.ts";
import type { TrainConfig } from "./config.ts";
import { loraParamSpecs } from "./lora.ts";

/** Options of {@link dryRun}. */
export interface DryRunOptions {
  /** The adapter's memory in bytes (`--gpu-memory`); WebGPU does not report it, so unknown otherwise. */
  memoryBytes?: number;
  /**
   * Plan for another adapter whose bindings hold at most this many bytes (`--max-binding`; 2 GiB for an
   * H100 under Deno), instead of this machine's.
   */
  maxBindingBytes?: number;
  /** Use the toolkit's tiny model's config when `model` is a folder that does not exist yet. */
  tinyIfMissing?: boolean;
  /** The device whose limits count (default: a new one). */
  gpu?: Gpu;
}

/**
 * A model's config from a folder, or from a Hub repo's `config.json` alone (no weights are downloaded).
 * @example
 * ```ts
 * const config = await readModelConfig("meta-llama/Llama-3.1-8B");
 * ```
 */
export async function readModelConfig(
  model: string,
  opts: { tinyIfMissing?: boolean } = {},
): Promise<ModelConfig> {
  if (opts.tinyIfMissing && !(await isFile(`${model}/config.json`))) {
    return parseModelConfig(tinyConfig(), "the tiny model's config");
  }
  const dir = await resolveModelPath(model, { files: ["config.json"] });
  const path = `${dir}/config.json`;
  return parseModelConfig(JSON.parse(await Deno.readTextFile(path)), path);
}

/**
 * The memory plan of a training run: its micro-batch (a preference pair is two rows) at its longest padded
 * length, full fine-tuning or LoRA, f16 base and checkpointing as configured.
 * @example
 * ```ts
 * const plan = trainingPlan(withDefaults("sft", { model, data, out }), config, { maxBinding: 2 ** 31 });
 * ```
 */
export function trainingPlan(
  cfg: TrainConfig,
  dims: ModelConfig,
  limits: { maxBinding: number; maxBuffer?: number },
): MemoryPlan {
  const seqLength = Math.ceil(cfg.maxLength / cfg.padMultiple) * cfg.padMultiple;
  return planMemory(dims, {
    sequences: cfg.batchSize * (cfg.objective === "sft" ? 1 : 2),
    seqLength,
    lora: cfg.lora ? { rank: cfg.lora.r, specs: loraParamSpecs(dims, cfg.lora) } : undefined,
    f16Base: cfg.f16Base,
    gradientCheckpointing: cfg.gradientCheckpointing,
    ...limits,
  });
}

/**
 * Plans `cfg`'s run on this machine's adapter and returns the lines to print and whether it fits.
 * @example
 * ```ts
 * const { lines, fits } = await dryRun(config, { memoryBytes: 80e9 });
 * console.log(lines.join("\n"));
 * ```
 */
export async function dryRun(
  cfg: TrainConfig,
  opts: DryRunOptions = {},
): Promise<{ plan: MemoryPlan; fits: boolean; lines: string[] }> {
  const dims = await readModelConfig(cfg.model, opts);
  const gpu = opts.gpu ?? await Gpu.create();
  try {
    // Planning is arithmetic: another adapter's binding limit may be larger than this one's.
    const other = opts.maxBindingBytes !== undefined;
    const limits = other
      ? { maxBinding: opts.maxBindingBytes!, maxBuffer: opts.maxBindingBytes! }
      : { maxBinding: gpu.maxBinding, maxBuffer: gpu.maxBuffer };
    const plan = trainingPlan(cfg, dims, limits);
    const memoryBytes = opts.memoryBytes;
    const rows = cfg.batchSize * (cfg.objective === "sft" ? 1 : 2);
    const seq = Math.ceil(cfg.maxLength / cfg.padMultiple) * cfg.padMultiple;
    const how = cfg.lora
      ? `LoRA r=${cfg.lora.r} on ${cfg.lora.targets.length} linear layers${
        cfg.f16Base ? " over an f16 base" : ""
      }`
      : "full fine-tuning";
    const lines = [
      `[${cfg.objective}] dry run: ${cfg.model} (hidden ${dims.hiddenSize}, ${dims.numLayers} layers, ` +
      `vocab ${dims.vocabSize}); ${how}; ${rows} × ${seq} tokens per micro-batch` +
      `${cfg.gradientCheckpointing ? ", gradient checkpointing" : ""}`,
      other
        ? `[${cfg.objective}] planned for an adapter with bindings of ${formatBytes(limits.maxBinding)} ` +
          `(--max-binding), not this machine's ${gpu.describe()}`
        : `[${cfg.objective}] adapter: ${gpu.describe()}`,
      ...formatPlan(plan, { maxBinding: limits.maxBinding, memoryBytes }),
    ];
    const fits = plan.problems.length === 0 && (memoryBytes === undefined || plan.totalBytes <= memoryBytes);
    return { plan, fits, lines };
  } finally {
    if (!opts.gpu) gpu.destroy();
  }
}
