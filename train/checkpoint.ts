/**
 * The run folder and its checkpoints, as Hugging Face's Trainer lays them out: every name a run writes
 * ({@link RUN_FILES}), the final model (a Hugging Face folder, or a PEFT adapter) at the folder's root,
 * `<out>/checkpoint-<step>/` holding the model, `optimizer.safetensors` (AdamW moments), `trainer_state.json`
 * (the Trainer's state with its `log_history`, and the toolkit's resume fields) and `training_args.json`,
 * and the rules of a run folder (refused when it holds an earlier run, locked while training, cleaned of what
 * a killed save left). Each checkpoint is built in a temporary folder and swapped in whole, so a kill never
 * leaves a half-written checkpoint, and `--resume_from_checkpoint` continues from the newest complete one.
 *
 * @module
 */
import type { Gpu } from "../gpu/runtime.ts";
import {
  makeTempSiblingDir,
  recoverReplacedDir,
  removeStaleTemps,
  replaceDirAtomic,
  writeJsonAtomic,
} from "../io/atomic.ts";
import { pathExists } from "../io/fs.ts";
import { COMPANION_FILES, type SaveDType } from "../io/hf_model.ts";
import { SafetensorsFile, writeSafetensors } from "../io/safetensors.ts";
import { basename } from "node:path";
import { type TrainConfig, trainingArgs } from "./config.ts";
import type { PreparedData } from "./data.ts";
import type { AdamW, AdamWMoments } from "./optimizer.ts";
import { saveMerged, saveTrainable, type Trainable } from "./trainable.ts";

/**
 * Every name a run writes in its folder (besides the final model's files at its root, see
 * {@link MODEL_FILE}).
 * @example
 * ```ts
 * const metricsFile = `${cfg.out}/${RUN_FILES.metrics}`;
 * ```
 */
export const RUN_FILES = {
  /** Prefix of the checkpoint folders, `checkpoint-<step>` ({@link checkpointDir}). */
  checkpoint: "checkpoint-",
  /** The run's settings by TRL's names (config.ts's trainingArgs), at the root and in each checkpoint. */
  args: "training_args.json",
  /** The log, one JSON line per log_history entry as it is written (the report reads it while training). */
  metrics: "metrics.jsonl",
  /** DPO's reference log-probs, cached. */
  reference: "reference_logps.json",
  /** With LoRA and `merge`: the merged full model (the adapter is at the root). */
  merged: "merged",
  /** Held by the training process (see {@link lockRunFolder}). */
  lock: ".lock",
  /** Hugging Face's TrainerState, in each checkpoint and at the root when the run ends. */
  state: "trainer_state.json",
  /** In a checkpoint: AdamW's moments. */
  optimizer: "optimizer.safetensors",
} as const;

/**
 * What runs of the toolkit before TRL's layout wrote instead: `final/` (the model), `train_config.json`
 * (camelCase settings) and zero-padded `checkpoint-000020/` folders.
 */
const OLD_LAYOUT = { final: "final", config: "train_config.json", paddedCheckpoint: /^checkpoint-0\d+$/ };

/**
 * Names of a model's files, as the final model leaves them at the run folder's root: a Hugging Face folder
 * (config.json, weights, tokenizer and generation files) or a PEFT adapter.
 * @example
 * ```ts
 * MODEL_FILE.test("adapter_model.safetensors"); // true
 * ```
 */
export const MODEL_FILE: RegExp = new RegExp(
  `^(${
    [
      "config.json",
      "model.safetensors.index.json",
      "adapter_config.json",
      "adapter_model.safetensors",
      ...COMPANION_FILES,
    ]
      .map((n) => n.replaceAll(".", "\\.")).join("|")
  }|model(-\\d+-of-\\d+)?\\.safetensors)$`,
);

/** A complete checkpoint of a run. */
export interface Checkpoint {
  dir: string;
  step: number;
}

/**
 * One entry of `log_history`, as the Hugging Face Trainer writes them: a training log (`loss`, `grad_norm`,
 * `learning_rate`, the objective's metrics as TRL names them, `epoch`, `step`), an evaluation (`eval_loss`,
 * `eval_<metric>`, `eval_runtime`, …) or the final summary (`train_runtime`, `train_loss`, …). The same
 * objects are the lines of `metrics.jsonl`.
 */
export type LogEntry = Record<string, number>;

/** The toolkit's own resume fields, kept in `trainer_state.json` beside the Trainer's. */
export interface ResumeState {
  /** Where the data iterator continues: epoch and batch index within it. */
  data_position: { epoch: number; batch: number };
  /** Training time so far, seconds, earlier processes included. */
  elapsed_s: number;
  /** Fingerprint of the settings that must not change across a resume (data, objective, batch shape). */
  fingerprint: string;
  /** Sums of each metric over the steps since the last log entry (the next entry averages them). */
  pending: { steps: number; sums: Record<string, number>; tokens: number; seconds: number };
  /** Sum of every step's loss so far (the summary's `train_loss` is its mean). */
  loss_sum: number;
}

/**
 * What `trainer_state.json` holds: Hugging Face's `TrainerState` fields (written with sorted keys, as
 * `TrainerState.save_to_json` does) and, under `kotransfer`, what an exact resume needs besides.
 */
export interface TrainerState {
  best_global_step: number | null;
  best_metric: number | null;
  best_model_checkpoint: string | null;
  /** Fractional epoch reached. */
  epoch: number;
  eval_steps: number;
  /** Optimizer steps taken. */
  global_step: number;
  is_hyper_param_search: boolean;
  is_local_process_zero: boolean;
  is_world_process_zero: boolean;
  log_history: LogEntry[];
  logging_steps: number;
  max_steps: number;
  /** Real (non-padding) tokens trained on so far. */
  num_input_tokens_seen: number;
  num_train_epochs: number;
  save_steps: number;
  stateful_callbacks: Record<string, unknown>;
  /** Floating-point operations so far, estimated as the Trainer does: 6 × tokens × non-embedding parameters. */
  total_flos: number;
  train_batch_size: number;
  trial_name: string | null;
  trial_params: Record<string, unknown> | null;
  kotransfer: ResumeState;
}

/** The schedule numbers a run's state records. */
export interface StateSchedule {
  maxSteps: number;
  numTrainEpochs: number;
  loggingSteps: number;
  evalSteps: number;
  saveSteps: number;
  trainBatchSize: number;
}

/** The state of a run that has taken no step yet. */
export function freshTrainerState(schedule: StateSchedule, fingerprint: string): TrainerState {
  return {
    best_global_step: null,
    best_metric: null,
    best_model_checkpoint: null,
    epoch: 0,
    eval_steps: schedule.evalSteps,
    global_step: 0,
    is_hyper_param_search: false,
    is_local_process_zero: true,
    is_world_process_zero: true,
    log_history: [],
    logging_steps: schedule.loggingSteps,
    max_steps: schedule.maxSteps,
    num_input_tokens_seen: 0,
    num_train_epochs: schedule.numTrainEpochs,
    save_steps: schedule.saveSteps,
    stateful_callbacks: {},
    total_flos: 0,
    train_batch_size: schedule.trainBatchSize,
    trial_name: null,
    trial_params: null,
    kotransfer: {
      data_position: { epoch: 0, batch: 0 },
      elapsed_s: 0,
      fingerprint,
      pending: { steps: 0, sums: {}, tokens: 0, seconds: 0 },
      loss_sum: 0,
    },
  };
}

/**
 * A digest of the settings a resumed run must share with the run that wrote the checkpoint: the objective,
 * the model, the batch shape and seed, LoRA, and the training examples' sizes.
 * @example
 * ```ts
 * const fingerprint = await runFingerprint(cfg, data); // 24 hex digits
 * ```
 */
export async function runFingerprint(cfg: TrainConfig, data: PreparedData): Promise<string> {
  const sizes = data.kind === "sft"
    ? data.train.map((e) => e.ids.length)
    : data.train.map((e) => e.promptIds.length + e.chosenIds.length + e.rejectedIds.length);
  const key = JSON.stringify({
    objective: cfg.objective,
    model: cfg.model,
    batch: [cfg.batchSize, cfg.gradAccum, cfg.seed, cfg.maxLength, cfg.padMultiple],
    lora: cfg.lora ?? null,
    examples: data.train.length,
    sizes,
  });
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
  return [...new Uint8Array(digest)].slice(0, 12).map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Folder of the checkpoint at `step`: `checkpoint-<step>`, not zero-padded, as the Trainer names it.
 * @example
 * ```ts
 * checkpointDir("runs/orpo", 20); // "runs/orpo/checkpoint-20"
 * ```
 */
export function checkpointDir(out: string, step: number): string {
  return `${out}/${RUN_FILES.checkpoint}${step}`;
}

/** A checkpoint folder's name, or that of its complete copy kept during a swap (`.previous`). */
const CHECKPOINT_NAME = new RegExp(`^(${RUN_FILES.checkpoint}(\\d+))(\\.previous)?$`);

/** Complete checkpoints of a run, oldest first (by step, as the Trainer sorts them). */
export async function listCheckpoints(out: string): Promise<Checkpoint[]> {
  const found: Checkpoint[] = [];
  try {
    for await (const e of Deno.readDir(out)) {
      const m = e.name.match(CHECKPOINT_NAME);
      if (!m || !e.isDirectory) continue;
      const dir = `${out}/${m[1]}`;
      if (m[3]) await recoverReplacedDir(dir); // a kill during a swap: restore the complete copy
      try {
        await Deno.stat(`${dir}/${RUN_FILES.state}`);
        found.push({ dir, step: Number(m[2]) });
      } catch { /* incomplete: ignored */ }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const unique = new Map(found.map((c) => [c.dir, c]));
  return [...unique.values()].sort((a, b) => a.step - b.step);
}

/**
 * Writes the checkpoint of `state.global_step` atomically: the model (f32, so a resumed run continues
 * exactly), the optimizer's moments as `m.<name>` / `v.<name>` in `optimizer.safetensors`,
 * `trainer_state.json` and `training_args.json`. Then removes the oldest checkpoints beyond `keep` (all kept
 * when undefined).
 * @example
 * ```ts
 * await saveCheckpoint(gpu, "runs/orpo", trainable, opt, state, cfg);
 * ```
 */
export async function saveCheckpoint(
  gpu: Gpu,
  out: string,
  trainable: Trainable,
  opt: AdamW,
  state: TrainerState,
  cfg: TrainConfig,
): Promise<void> {
  const moments = await opt.readMoments();
  const dir = checkpointDir(out, state.global_step);
  const tmp = await makeTempSiblingDir(dir);
  try {
    await saveModelInto(gpu, trainable, tmp, "F32");
    await writeSafetensors(`${tmp}/${RUN_FILES.optimizer}`, momentTensors(moments));
    await writeTrainerState(tmp, state);
    await writeJsonAtomic(`${tmp}/${RUN_FILES.args}`, trainingArgs(cfg), { indent: 2 });
    await replaceDirAtomic(tmp, dir);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
  await pruneCheckpoints(out, cfg.saveTotalLimit);
}

/**
 * Writes `trainer_state.json` into `dir` as the Trainer does (sorted keys, indent 2), atomically.
 * @example
 * ```ts
 * await writeTrainerState("runs/orpo", state);
 * ```
 */
export async function writeTrainerState(dir: string, state: TrainerState): Promise<void> {
  await writeJsonAtomic(`${dir}/${RUN_FILES.state}`, state, { indent: 2, sortKeys: true });
}

/**
 * Saves what was trained into the (temporary) folder `dir`, whose other files it leaves alone: the model's
 * own save replaces a whole folder, so it is built in `dir/model` (its temporaries stay inside `dir`) and
 * its files moved up. Returns their names.
 */
async function saveModelInto(
  gpu: Gpu,
  trainable: Trainable,
  dir: string,
  dtype: SaveDType,
): Promise<string[]> {
  await saveTrainable(gpu, trainable, `${dir}/model`, dtype);
  const names = [...Deno.readDirSync(`${dir}/model`)].map((e) => e.name);
  for (const name of names) await Deno.rename(`${dir}/model/${name}`, `${dir}/${name}`);
  await Deno.remove(`${dir}/model`);
  return names;
}

function momentTensors(moments: AdamWMoments) {
  const tensors: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
  for (const [kind, map] of [["m", moments.m], ["v", moments.v]] as const) {
    for (const [name, data] of map) tensors[`${kind}.${name}`] = { dtype: "F32", shape: [data.length], data };
  }
  return tensors;
}

/**
 * Continues from a checkpoint: reads its `trainer_state.json`, refuses it when the run's fingerprint
 * differs, and writes its moments into the optimizer. (The model's weights are loaded from `dir` with the
 * model, see trainable.ts.) Returns the state to continue from.
 * @example
 * ```ts
 * const state = await resumeCheckpoint("runs/orpo/checkpoint-20", opt, fingerprint);
 * ```
 */
export async function resumeCheckpoint(dir: string, opt: AdamW, fingerprint: string): Promise<TrainerState> {
  const saved = await loadCheckpointState(dir);
  if (saved.state.kotransfer.fingerprint !== fingerprint) {
    throw new Error(
      `${dir} was written by a run with other data or settings; use another --output_dir, or drop ` +
        "--resume_from_checkpoint",
    );
  }
  opt.writeMoments(saved, `${dir}/${RUN_FILES.optimizer}`);
  return saved.state;
}

/** Reads `trainer_state.json` and the AdamW moments of a checkpoint. */
async function loadCheckpointState(dir: string): Promise<{ state: TrainerState } & AdamWMoments> {
  const path = `${dir}/${RUN_FILES.state}`;
  let state: TrainerState;
  try {
    state = JSON.parse(await Deno.readTextFile(path)) as TrainerState;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`--resume_from_checkpoint: ${dir} is not a checkpoint (it has no ${RUN_FILES.state})`);
    }
    if (!(e instanceof SyntaxError)) throw e;
    throw new Error(
      `${path}: not valid JSON (${e.message}); the checkpoint is damaged: remove ${dir} to resume from ` +
        "the checkpoint before it",
    );
  }
  const old = state as unknown as Record<string, unknown>;
  if (old.kotransfer === undefined && old.data_position !== undefined) {
    throw new Error(
      `${dir} was written by an earlier version of the toolkit (before TRL's layout: checkpoint-000020/, final/, ` +
        "train_config.json), which this version cannot resume; pass --overwrite_output_dir to start afresh",
    );
  }
  if (old.kotransfer === undefined) {
    throw new Error(
      `${path}: not written by this toolkit (no "kotransfer" resume fields: data position, fingerprint); a ` +
        "Hugging Face Trainer checkpoint cannot be resumed here",
    );
  }
  for (const key of ["global_step", "epoch", "log_history"] as const) {
    if (state[key] === undefined) throw new Error(`${path}: field "${key}" is missing`);
  }
  for (const key of ["data_position", "fingerprint", "pending"] as const) {
    if (state.kotransfer[key] === undefined) throw new Error(`${path}: field "kotransfer.${key}" is missing`);
  }
  const file = await SafetensorsFile.open(`${dir}/${RUN_FILES.optimizer}`);
  const m = new Map<string, Float32Array>(), v = new Map<string, Float32Array>();
  for (const name of file.names()) {
    const target = name.startsWith("m.") ? m : name.startsWith("v.") ? v : undefined;
    if (!target) throw new Error(`${dir}/${RUN_FILES.optimizer}: unexpected tensor "${name}"`);
    target.set(name.slice(2), await file.readF32(name));
  }
  return { state, m, v };
}

/** The model files at a run folder's root (a saved final model), by name. */
async function rootModelFiles(out: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(out)) if (e.isFile && MODEL_FILE.test(e.name)) names.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return names.sort();
}

/** What an earlier run left in a run folder: its complete checkpoints, its saved models and old-layout files. */
export async function earlierRun(
  out: string,
): Promise<{ checkpoints: Checkpoint[]; models: string[]; oldLayout: string[] }> {
  const models: string[] = [];
  const root = await rootModelFiles(out);
  if (root.includes("config.json") || root.includes("adapter_config.json")) {
    models.push(`${out}/ (the model)`);
  }
  await recoverReplacedDir(`${out}/${RUN_FILES.merged}`);
  if (await pathExists(`${out}/${RUN_FILES.merged}`)) models.push(`${out}/${RUN_FILES.merged}`);
  const checkpoints = await listCheckpoints(out);
  const oldLayout = [
    ...[OLD_LAYOUT.final, OLD_LAYOUT.config].map((n) => `${out}/${n}`),
    ...checkpoints.filter((c) => OLD_LAYOUT.paddedCheckpoint.test(basename(c.dir))).map((c) => c.dir),
  ];
  const present = [];
  for (const path of oldLayout) if (await pathExists(path)) present.push(path);
  return { checkpoints, models, oldLayout: present };
}

/** Names (before `.tmp-…`) of what a run writes into its folder through a temporary sibling. */
const RUN_TEMPS = new RegExp(
  `^(${RUN_FILES.checkpoint}\\d+|model|${
    [
      RUN_FILES.merged,
      RUN_FILES.metrics,
      RUN_FILES.args,
      RUN_FILES.state,
      RUN_FILES.reference,
      OLD_LAYOUT.final,
    ]
      .map((n) => n.replaceAll(".", "\\.")).join("|")
  })$`,
);

/**
 * Refuses a run folder that would lose or mix up work: a fresh run where an earlier run left checkpoints or
 * a model (unless `overwriteOutputDir`), resuming a run with no checkpoint or one in the layout before TRL's.
 * Returns the complete checkpoints.
 * @example
 * ```ts
 * const checkpoints = await checkRunFolder(cfg); // throws naming --resume_from_checkpoint / --overwrite_output_dir
 * ```
 */
export async function checkRunFolder(
  cfg: Pick<TrainConfig, "out" | "resume" | "overwriteOutputDir">,
): Promise<Checkpoint[]> {
  const { checkpoints, models, oldLayout } = await earlierRun(cfg.out);
  if (cfg.resume === true && oldLayout.length > 0) {
    throw new Error(
      `--resume_from_checkpoint: ${cfg.out} holds a run in the layout before TRL's (${
        oldLayout.join(", ")
      }): ` +
        "this version cannot resume it; pass --overwrite_output_dir instead of --resume_from_checkpoint to " +
        "start afresh there (its checkpoints and model are deleted), or choose another --output_dir",
    );
  }
  if (cfg.resume === true && checkpoints.length === 0) {
    throw new Error(
      `--resume_from_checkpoint: ${cfg.out} holds no checkpoint to resume from` +
        (models.length > 0 ? ` (only ${models.join(", ")})` : "") +
        "; drop it to start a fresh run",
    );
  }
  const found = [
    ...checkpoints.map((c) => c.dir),
    ...models,
    ...oldLayout.filter((p) => !p.includes("checkpoint-")),
  ];
  if (cfg.resume === false && !cfg.overwriteOutputDir && found.length > 0) {
    throw new Error(
      `${cfg.out} holds an earlier run (${found.slice(0, 3).join(", ")}${found.length > 3 ? ", …" : ""}): ` +
        "pass --resume_from_checkpoint to continue it from its newest checkpoint, or --overwrite_output_dir to " +
        "replace it (its checkpoints and model are deleted), or choose another --output_dir",
    );
  }
  return checkpoints;
}

/**
 * The checkpoint a run starts from: the newest of `checkpoints` when resuming, the folder named when
 * resuming from a path; otherwise none, and what an earlier run left is deleted first (`overwriteOutputDir`:
 * its checkpoints would be mistaken for this run's, its model files mixed with this run's). Returns it and how
 * many checkpoints were deleted.
 * @example
 * ```ts
 * const { from } = await startingCheckpoint(cfg, await checkRunFolder(cfg));
 * ```
 */
export async function startingCheckpoint(
  cfg: Pick<TrainConfig, "resume" | "out">,
  checkpoints: readonly Checkpoint[],
): Promise<{ from?: Checkpoint; deleted: number }> {
  if (typeof cfg.resume === "string") {
    const dir = cfg.resume.replace(/\/+$/, "");
    const step = Number(basename(dir).match(CHECKPOINT_NAME)?.[2] ?? NaN);
    return { from: { dir, step }, deleted: 0 };
  }
  if (cfg.resume) return { from: checkpoints[checkpoints.length - 1], deleted: 0 };
  for (const c of checkpoints) await Deno.remove(c.dir, { recursive: true });
  for (const name of await rootModelFiles(cfg.out)) await Deno.remove(`${cfg.out}/${name}`);
  for (const path of [RUN_FILES.merged, OLD_LAYOUT.final, OLD_LAYOUT.config, RUN_FILES.state]) {
    await Deno.remove(`${cfg.out}/${path}`, { recursive: true }).catch(() => {});
  }
  return { deleted: checkpoints.length };
}

/**
 * Writes the run's settings by TRL's names, with the model folder they resolved to, as `training_args.json`.
 * @example
 * ```ts
 * await writeTrainingArgs(cfg, "/home/me/.cache/huggingface/hub/models--org--name/snapshots/abc");
 * ```
 */
export async function writeTrainingArgs(cfg: TrainConfig, modelPath: string): Promise<void> {
  await writeJsonAtomic(`${cfg.out}/${RUN_FILES.args}`, { ...trainingArgs(cfg), model_path: modelPath }, {
    indent: 2,
  });
}

/**
 * Saves the trained model at the root of `out` (weights in `dtype`), as `trainer.save_model(output_dir)`
 * does, and, with LoRA and `merge`, the merged full model as `<out>/merged`. The files are written into a
 * temporary folder and moved up, weights first and `config.json` (`adapter_config.json`) last, so a root
 * holding the config holds the whole model; files of an earlier model this one does not write are removed
 * first. Returns the folders written.
 * @example
 * ```ts
 * const { finalDir, mergedDir } = await saveFinal(gpu, "runs/orpo", trainable, { dtype: "BF16", merge: false });
 * ```
 */
export async function saveFinal(
  gpu: Gpu,
  out: string,
  trainable: Trainable,
  opts: { dtype: TrainConfig["saveDtype"]; merge: boolean },
): Promise<{ finalDir: string; mergedDir?: string }> {
  const tmp = await makeTempSiblingDir(`${out}/model`);
  try {
    const names = await saveModelInto(gpu, trainable, tmp, opts.dtype);
    for (const name of await rootModelFiles(out)) {
      if (!names.includes(name)) await Deno.remove(`${out}/${name}`);
    }
    const isConfig = (n: string) => n === "config.json" || n === "adapter_config.json" ? 1 : 0;
    for (const name of names.sort((a, b) => isConfig(a) - isConfig(b))) {
      await Deno.rename(`${tmp}/${name}`, `${out}/${name}`);
    }
    await Deno.remove(tmp);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
  if (!trainable.lora || !opts.merge) return { finalDir: out };
  const mergedDir = `${out}/${RUN_FILES.merged}`;
  await saveMerged(gpu, trainable, mergedDir, opts.dtype);
  return { finalDir: out, mergedDir };
}

/** A held run-folder lock; {@link RunLock.release} is idempotent. */
export interface RunLock {
  release(): void;
}

/**
 * Locks a run folder for one training process (`<out>/.lock`, released when the process ends, even by a
 * kill), so two runs never write into one folder and what an earlier process left half-written is known to
 * be stale.
 *
 * @example
 * ```ts
 * const lock = await lockRunFolder("runs/orpo");
 * try { … } finally { lock.release(); }
 * ```
 */
export async function lockRunFolder(out: string): Promise<RunLock> {
  await Deno.mkdir(out, { recursive: true });
  const file = await Deno.open(`${out}/${RUN_FILES.lock}`, { write: true, create: true });
  if (!(await file.tryLock(true))) {
    file.close();
    throw new Error(
      `${out} is in use by another training process (it holds ${out}/.lock); wait for it to end, or choose ` +
        "another --output_dir",
    );
  }
  let held = true;
  return {
    release: () => {
      if (held) file.close();
      held = false;
    },
  };
}

/**
 * Removes the temporary folders and files that a killed save left in a run folder (a half-written
 * `.checkpoint-20.tmp-…` holds a whole model and its optimizer state, `.model.tmp-…` a final model), and a
 * stale `.previous` copy of a folder whose replacement completed. Call it holding the folder's
 * {@link lockRunFolder} lock. Returns the removed paths and their size in bytes.
 *
 * @example
 * ```ts
 * const { removed, bytes } = await removeStaleRunTemps("runs/orpo");
 * ```
 */
export async function removeStaleRunTemps(out: string): Promise<{ removed: string[]; bytes: number }> {
  const stale = await removeStaleTemps(out, RUN_TEMPS);
  for (const name of [RUN_FILES.merged]) {
    const previous = `${out}/${name}.previous`;
    if (await pathExists(`${out}/${name}`) && await pathExists(previous)) {
      await Deno.remove(previous, { recursive: true });
      stale.removed.push(previous);
    }
  }
  return stale;
}

/** Removes the oldest checkpoints so at most `keep` remain (all kept when undefined). */
async function pruneCheckpoints(out: string, keep: number | undefined): Promise<void> {
  if (keep === undefined || keep <= 0) return;
  const all = await listCheckpoints(out);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) await Deno.remove(c.dir, { recursive: true });
}
