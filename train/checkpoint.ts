/**
 * The run folder and its checkpoints, as Hugging Face's Trainer lays them out: every name a run writes
 * ({@link RUN_FILES}), `<out>/checkpoint-<step>/` holding the model (a full Hugging Face folder, or a PEFT
 * adapter), `optimizer.safetensors` (AdamW moments) and `trainer_state.json` (step, data position), the
 * final model, and the rules of a run folder (refused when it holds an earlier run, locked while training,
 * cleaned of what a killed save left). Each checkpoint is built in a temporary folder and swapped in whole,
 * so a kill never leaves a half-written checkpoint, and `--resume` continues from the newest complete one.
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
import { SafetensorsFile, writeSafetensors } from "../io/safetensors.ts";
import type { TrainConfig } from "./config.ts";
import type { PreparedData } from "./data.ts";
import type { AdamW, AdamWMoments } from "./optimizer.ts";
import { saveMerged, saveTrainable, type Trainable } from "./trainable.ts";

/**
 * Every name a run writes in its folder.
 * @example
 * ```ts
 * const metricsFile = `${cfg.out}/${RUN_FILES.metrics}`;
 * ```
 */
export const RUN_FILES = {
  /** Prefix of the checkpoint folders, `checkpoint-<step>` ({@link checkpointDir}). */
  checkpoint: "checkpoint-",
  /** The run's settings (TrainConfig plus the resolved model path). */
  config: "train_config.json",
  /** One JSON line per logged step and per evaluation. */
  metrics: "metrics.jsonl",
  /** DPO's reference log-probs, cached. */
  reference: "reference_logps.json",
  /** The trained model (a Hugging Face folder, or a PEFT adapter with LoRA). */
  final: "final",
  /** With LoRA and `merge`: the merged full model. */
  merged: "merged",
  /** Held by the training process (see {@link lockRunFolder}). */
  lock: ".lock",
  /** In a checkpoint: step, data position, fingerprint. */
  state: "trainer_state.json",
  /** In a checkpoint: AdamW's moments. */
  optimizer: "optimizer.safetensors",
} as const;

/** A complete checkpoint of a run. */
export interface Checkpoint {
  dir: string;
  step: number;
}

/** What `trainer_state.json` holds. */
export interface TrainerState {
  /** Optimizer steps taken. */
  global_step: number;
  /** Fractional epoch reached. */
  epoch: number;
  /** Where the data iterator continues: epoch and batch index within it. */
  data_position: { epoch: number; batch: number };
  max_steps: number;
  /** Real tokens trained on so far. */
  tokens_seen: number;
  /** Training time so far, seconds. */
  elapsed_s: number;
  /** Fingerprint of the settings that must not change across a resume (data, objective, batch shape). */
  fingerprint: string;
}

/** The state of a run that has taken no step yet. */
export function freshTrainerState(maxSteps: number, fingerprint: string): TrainerState {
  return {
    global_step: 0,
    epoch: 0,
    data_position: { epoch: 0, batch: 0 },
    max_steps: maxSteps,
    tokens_seen: 0,
    elapsed_s: 0,
    fingerprint,
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

/** Folder name of the checkpoint at `step` (zero-padded so names sort by step). */
export function checkpointDir(out: string, step: number): string {
  return `${out}/${RUN_FILES.checkpoint}${String(step).padStart(6, "0")}`;
}

/** A checkpoint folder's name, or that of its complete copy kept during a swap (`.previous`). */
const CHECKPOINT_NAME = new RegExp(`^${RUN_FILES.checkpoint}(\\d+)(\\.previous)?$`);

/** Complete checkpoints of a run, oldest first. */
export async function listCheckpoints(out: string): Promise<Checkpoint[]> {
  const found: Checkpoint[] = [];
  try {
    for await (const e of Deno.readDir(out)) {
      const m = e.name.match(CHECKPOINT_NAME);
      if (!m || !e.isDirectory) continue;
      const dir = `${out}/${RUN_FILES.checkpoint}${m[1]}`;
      if (m[2]) await recoverReplacedDir(dir); // a kill during a swap: restore the complete copy
      try {
        await Deno.stat(`${dir}/${RUN_FILES.state}`);
        found.push({ dir, step: Number(m[1]) });
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
 * exactly), the optimizer's moments as `m.<name>` / `v.<name>` in `optimizer.safetensors`, and
 * `trainer_state.json`. Then removes the oldest checkpoints beyond `keep` (0 keeps all).
 * @example
 * ```ts
 * await saveCheckpoint(gpu, "runs/orpo", trainable, opt, state, cfg.saveTotalLimit);
 * ```
 */
export async function saveCheckpoint(
  gpu: Gpu,
  out: string,
  trainable: Trainable,
  opt: AdamW,
  state: TrainerState,
  keep: number,
): Promise<void> {
  const moments = await opt.readMoments();
  const dir = checkpointDir(out, state.global_step);
  const tmp = await makeTempSiblingDir(dir);
  try {
    // The model's own save writes a whole folder; it is built inside and its files moved up.
    await saveTrainable(gpu, trainable, `${tmp}/model-tmp`, "F32");
    for await (const e of Deno.readDir(`${tmp}/model-tmp`)) {
      await Deno.rename(`${tmp}/model-tmp/${e.name}`, `${tmp}/${e.name}`);
    }
    await Deno.remove(`${tmp}/model-tmp`);
    await writeSafetensors(`${tmp}/${RUN_FILES.optimizer}`, momentTensors(moments));
    await writeJsonAtomic(`${tmp}/${RUN_FILES.state}`, state, { indent: 2 });
    await replaceDirAtomic(tmp, dir);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
  await pruneCheckpoints(out, keep);
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
 * const state = await resumeCheckpoint("runs/orpo/checkpoint-000020", opt, fingerprint);
 * ```
 */
export async function resumeCheckpoint(dir: string, opt: AdamW, fingerprint: string): Promise<TrainerState> {
  const saved = await loadCheckpointState(dir);
  if (saved.state.fingerprint !== fingerprint) {
    throw new Error(
      `${dir} was written by a run with other data or settings; use another --out, or drop --resume`,
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
    if (!(e instanceof SyntaxError)) throw e;
    throw new Error(
      `${path}: not valid JSON (${e.message}); the checkpoint is damaged: remove ${dir} to resume from ` +
        "the checkpoint before it",
    );
  }
  for (const key of ["global_step", "epoch", "data_position", "fingerprint"] as const) {
    if (state[key] === undefined) throw new Error(`${path}: field "${key}" is missing`);
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

/** What an earlier run left in a run folder: its complete checkpoints and its saved models. */
export async function earlierRun(
  out: string,
): Promise<{ checkpoints: Checkpoint[]; models: string[] }> {
  const models: string[] = [];
  for (const name of RUN_MODELS) {
    await recoverReplacedDir(`${out}/${name}`);
    if (await pathExists(`${out}/${name}`)) models.push(`${out}/${name}`);
  }
  return { checkpoints: await listCheckpoints(out), models };
}

/** The model folders a run saves beside its checkpoints. */
const RUN_MODELS = [RUN_FILES.final, RUN_FILES.merged];

/** Names (before `.tmp-…`) of what a run writes into its folder through a temporary sibling. */
const RUN_TEMPS = new RegExp(
  `^(${RUN_FILES.checkpoint}\\d+|${
    [RUN_FILES.final, RUN_FILES.merged, RUN_FILES.metrics, RUN_FILES.config, RUN_FILES.reference]
      .map((n) => n.replaceAll(".", "\\.")).join("|")
  })$`,
);

/**
 * Refuses a run folder that would lose or mix up work: a fresh run where an earlier run left checkpoints or
 * a model (unless `overwriteOutputDir`), and `resume` with no checkpoint. Returns the complete checkpoints.
 * @example
 * ```ts
 * const checkpoints = await checkRunFolder(cfg); // throws naming --resume / --overwrite-output-dir
 * ```
 */
export async function checkRunFolder(
  cfg: Pick<TrainConfig, "out" | "resume" | "overwriteOutputDir">,
): Promise<Checkpoint[]> {
  const { checkpoints, models } = await earlierRun(cfg.out);
  if (cfg.resume && checkpoints.length === 0) {
    throw new Error(
      `--resume: ${cfg.out} holds no checkpoint to resume from` +
        (models.length > 0 ? ` (only ${models.join(", ")})` : "") +
        "; drop --resume to start a fresh run",
    );
  }
  if (!cfg.resume && !cfg.overwriteOutputDir && checkpoints.length + models.length > 0) {
    const found = [...checkpoints.map((c) => c.dir), ...models];
    throw new Error(
      `${cfg.out} holds an earlier run (${found.slice(0, 3).join(", ")}${found.length > 3 ? ", …" : ""}): ` +
        "pass --resume to continue it from its newest checkpoint, or --overwrite-output-dir to replace it " +
        "(its checkpoints are deleted), or choose another --out",
    );
  }
  return checkpoints;
}

/**
 * The checkpoint a run starts from: the newest of `checkpoints` when resuming; otherwise none, and the
 * checkpoints an earlier run left are deleted first (`overwriteOutputDir`: they would be mistaken for this
 * run's). Returns it and how many checkpoints were deleted.
 * @example
 * ```ts
 * const { from } = await startingCheckpoint(cfg, await checkRunFolder(cfg));
 * ```
 */
export async function startingCheckpoint(
  cfg: Pick<TrainConfig, "resume">,
  checkpoints: readonly Checkpoint[],
): Promise<{ from?: Checkpoint; deleted: number }> {
  if (cfg.resume) return { from: checkpoints[checkpoints.length - 1], deleted: 0 };
  for (const c of checkpoints) await Deno.remove(c.dir, { recursive: true });
  return { deleted: checkpoints.length };
}

/**
 * Writes the run's settings, with the model folder they resolved to, as `train_config.json`.
 * @example
 * ```ts
 * await writeRunConfig(cfg, "/home/me/.cache/huggingface/hub/models--org--name/snapshots/abc");
 * ```
 */
export async function writeRunConfig(cfg: TrainConfig, modelPath: string): Promise<void> {
  await writeJsonAtomic(`${cfg.out}/${RUN_FILES.config}`, { ...cfg, model_path: modelPath }, { indent: 2 });
}

/**
 * Saves the trained model as `<out>/final` (weights in `dtype`) and, with LoRA and `merge`, the merged full
 * model as `<out>/merged`. Returns the folders written.
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
  const finalDir = `${out}/${RUN_FILES.final}`;
  await saveTrainable(gpu, trainable, finalDir, opts.dtype);
  if (!trainable.lora || !opts.merge) return { finalDir };
  const mergedDir = `${out}/${RUN_FILES.merged}`;
  await saveMerged(gpu, trainable, mergedDir, opts.dtype);
  return { finalDir, mergedDir };
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
        "another --out",
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
 * `.checkpoint-000020.tmp-…` holds a whole model and its optimizer state), and a stale `.previous` copy of
 * a model folder whose replacement completed. Call it holding the folder's {@link lockRunFolder} lock.
 * Returns the removed paths and their size in bytes.
 *
 * @example
 * ```ts
 * const { removed, bytes } = await removeStaleRunTemps("runs/orpo");
 * ```
 */
export async function removeStaleRunTemps(out: string): Promise<{ removed: string[]; bytes: number }> {
  const stale = await removeStaleTemps(out, RUN_TEMPS);
  for (const name of RUN_MODELS) {
    const previous = `${out}/${name}.previous`;
    if (await pathExists(`${out}/${name}`) && await pathExists(previous)) {
      await Deno.remove(previous, { recursive: true });
      stale.removed.push(previous);
    }
  }
  return stale;
}

/** Removes the oldest checkpoints so at most `keep` remain (0 keeps all). */
async function pruneCheckpoints(out: string, keep: number): Promise<void> {
  if (keep <= 0) return;
  const all = await listCheckpoints(out);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) await Deno.remove(c.dir, { recursive: true });
}
