/**
 * What a run trains: the whole model, or LoRA adapters over a frozen base. Loaded from the base model's
 * folder or from a checkpoint, saved as a Hugging Face folder or a PEFT adapter folder (and, for LoRA, as
 * the merged full model). Where those folders go is the run folder's business (checkpoint.ts).
 *
 * @module
 */
import type { Gpu } from "../gpu/runtime.ts";
import type { SaveDType } from "../io/hf_model.ts";
import type { ModelSource } from "../io/model_source.ts";
import { type LoadedLlama, loadLlama, readParams, saveLlama } from "../model/load.ts";
import { ParamSet } from "../model/params.ts";
import type { TrainConfig } from "./config.ts";
import {
  initLora,
  loadLoraAdapter,
  loraAdapters,
  loraParamSpecs,
  type LoraSpec,
  mergedLoraPieces,
  saveLoraAdapter,
} from "./lora.ts";

/** A loaded model and the parameters the optimizer updates. */
export interface Trainable {
  loaded: LoadedLlama;
  /** Parameter sets the optimizer updates (the model's, or the LoRA adapters'). */
  sets: ParamSet[];
  lora?: { spec: LoraSpec; params: ParamSet };
  /** The base model's folder: its tokenizer and generation files go with every saved model. */
  baseDir: string;
  /** Where the tokenizer files are (an adapter folder's own, or the base model's): saved with an adapter. */
  tokenizerDir: string;
  /** The base model as the user named it (a PEFT adapter's `base_model_name_or_path`). */
  baseModel: string;
}

/** Sizes of the model's workspace and the loader's checks. */
export interface TrainableOptions {
  /** Tokens of the largest micro-batch. */
  maxTokens: number;
  /** Longest sequence (the RoPE table). */
  maxPositions: number;
  /** Receives the loader's warnings. */
  warn: (message: string) => void;
  /** Receives what the run does that the flags alone do not say (an adapter trained further). */
  info: (message: string) => void;
}

/**
 * The adapter a LoRA run trains: a new one as `cfg.lora` describes it, or, when `--model` names a PEFT adapter
 * folder, that adapter (its own rank, alpha and targets), trained further over its base model. Full
 * training of an adapter folder is refused: merge it first, or train the base.
 */
function trainedAdapter(
  cfg: TrainConfig,
  source: ModelSource,
  info: (message: string) => void,
): { spec: LoraSpec; init?: Map<string, Float32Array>; baseModel: string } | undefined {
  const adapter = source.adapter;
  if (!adapter) return cfg.lora ? { spec: cfg.lora, baseModel: cfg.model } : undefined;
  if (!cfg.lora) {
    throw new Error(
      `--model_name_or_path ${cfg.model} is a PEFT adapter over ${adapter.baseModel}: train it further with --use_peft (the ` +
        `adapter's own rank, alpha and targets are used), or train the base model in full with --model_name_or_path ` +
        adapter.baseModel,
    );
  }
  info(
    `training the adapter ${cfg.model} further over ${adapter.baseModel} (its own r=${adapter.spec.r}, ` +
      `lora_alpha=${adapter.spec.alpha}, target_modules ${JSON.stringify(adapter.spec.targets)}; ` +
      "--lora_r, --lora_alpha and --lora_target_modules do not apply)",
  );
  return { spec: adapter.spec, init: adapter.weights, baseModel: adapter.baseModel };
}

/**
 * Loads the model (from the checkpoint `from` when resuming full training) and its trainable parameters:
 * every weight, or LoRA adapters (from `from`, or freshly initialised) over the frozen base.
 * @example
 * ```ts
 * const source = await resolveModelSource("runs/tiny-base");
 * const t = await loadTrainable(gpu, cfg, source, undefined, {
 *   maxTokens: 1024,
 *   maxPositions: 128,
 *   warn: console.error,
 *   info: console.error,
 * });
 * ```
 */
export async function loadTrainable(
  gpu: Gpu,
  cfg: TrainConfig,
  source: ModelSource,
  from: string | undefined,
  opts: TrainableOptions,
): Promise<Trainable> {
  const load = {
    maxTokens: opts.maxTokens,
    maxPositions: opts.maxPositions,
    ignoreUnusedWeights: cfg.ignoreUnusedWeights,
    warn: opts.warn,
    gradientCheckpointing: cfg.gradientCheckpointing,
  };
  const baseDir = source.modelDir;
  const lora = trainedAdapter(cfg, source, opts.info);
  const base = { baseDir, tokenizerDir: source.tokenizerDir, baseModel: lora?.baseModel ?? cfg.model };
  if (!lora) {
    const loaded = await loadLlama(gpu, from ?? baseDir, { trainable: true, ...load });
    loaded.dir = baseDir; // tokenizer and generation files come from the base model's folder
    return { loaded, sets: [loaded.params], ...base };
  }
  const { spec } = lora;
  const dims = source.config;
  const params = ParamSet.create(gpu, loraParamSpecs(dims, spec), { trainable: true, label: "lora" });
  const init = from ? (await loadLoraAdapter(from)).weights : lora.init ?? initLora(dims, spec, cfg.seed);
  for (const p of params.specs) {
    const w = init.get(p.name);
    if (!w) throw new Error(`${from ?? "LoRA init"}: adapter lacks "${p.name}"`);
    gpu.write(params.value(p.name), w);
  }
  const loaded = await loadLlama(gpu, baseDir, {
    trainable: false,
    frozenF16: cfg.f16Base,
    lora: loraAdapters(params, spec, dims),
    ...load,
  });
  return { loaded, sets: [params], lora: { spec, params }, ...base };
}

/**
 * Saves what was trained into `dir`: the whole model as a Hugging Face folder with weights in `dtype`, or
 * the LoRA adapters as a PEFT adapter folder (always f32).
 * @example
 * ```ts
 * await saveTrainable(gpu, trainable, "runs/orpo", "BF16");
 * ```
 */
export async function saveTrainable(
  gpu: Gpu,
  t: Trainable,
  dir: string,
  dtype: SaveDType,
): Promise<void> {
  if (t.lora) {
    await saveLoraAdapter(dir, await readParams(gpu, t.lora.params), t.lora.spec, t.baseModel, {
      dims: t.loaded.config,
      tokenizerFrom: t.tokenizerDir,
    });
  } else {
    await saveLlama(gpu, t.loaded, dir, { dtype, copyFrom: t.baseDir });
  }
}

/**
 * Saves the base with the LoRA adapters merged into its weights, as a Hugging Face folder.
 * @example
 * ```ts
 * await saveMerged(gpu, trainable, "runs/orpo-lora/merged", "F32");
 * ```
 */
export async function saveMerged(
  gpu: Gpu,
  t: Trainable,
  dir: string,
  dtype: SaveDType,
): Promise<void> {
  if (!t.lora) throw new Error("saveMerged: the run trains no LoRA adapters");
  const adapter = await readParams(gpu, t.lora.params);
  await saveLlama(gpu, t.loaded, dir, {
    dtype,
    copyFrom: t.baseDir,
    tensors: mergedLoraPieces(gpu, t.loaded.params, adapter, t.lora.spec, t.loaded.config),
  });
}
