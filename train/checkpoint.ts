/**
 * Checkpoints of a run, as Hugging Face's Trainer lays them out: `<out>/checkpoint-<step>/` holding the model
 * (a full Hugging Face folder, or a PEFT adapter), `optimizer.safetensors` (AdamW moments) and
 * `trainer_state.json` (step, data position). Each is built in a temporary folder and swapped in whole, so a
 * kill never leaves a half-written checkpoint, and `--resume` continues from the newest complete one.
 *
 * @module
 */
import {
  makeTempSiblingDir,
  recoverReplacedDir,
  removeStaleTemps,
  replaceDirAtomic,
  writeJsonAtomic,
} from "../io/atomic.ts";
import { pathExists } from "../io/fs.ts";
import { SafetensorsFile, writeSafetensors } from "../io/safetensors.ts";
import type { AdamWMoments } from "./optimizer.ts";

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

/** Folder name of the checkpoint at `step` (zero-padded so names sort by step). */
export function checkpointDir(out: string, step: number): string {
  return `${out}/checkpoint-${String(step).padStart(6, "0")}`;
}

/** Complete checkpoints of a run, oldest first. */
export async function listCheckpoints(out: string): Promise<{ dir: string; step: number }[]> {
  const found: { dir: string; step: number }[] = [];
  try {
    for await (const e of Deno.readDir(out)) {
      const m = e.name.match(/^checkpoint-(\d+)(\.previous)?$/);
      if (!m || !e.isDirectory) continue;
      const dir = `${out}/checkpoint-${m[1]}`;
      if (m[2]) await recoverReplacedDir(dir); // a kill during a swap: restore the complete copy
      try {
        await Deno.stat(`${dir}/trainer_state.json`);
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
 * Writes a checkpoint atomically. `writeModel` fills the temporary folder with the model files (a full
 * folder or an adapter); moments are saved as `m.<name>` / `v.<name>` in `optimizer.safetensors`.
 */
export async function saveCheckpoint(
  dir: string,
  writeModel: (tmp: string) => Promise<void>,
  moments: AdamWMoments,
  state: TrainerState,
): Promise<void> {
  const tmp = await makeTempSiblingDir(dir);
  try {
    await writeModel(tmp);
    const tensors: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
    for (const [kind, map] of [["m", moments.m], ["v", moments.v]] as const) {
      for (const [name, data] of map) {
        tensors[`${kind}.${name}`] = { dtype: "F32", shape: [data.length], data };
      }
    }
    await writeSafetensors(`${tmp}/optimizer.safetensors`, tensors);
    await writeJsonAtomic(`${tmp}/trainer_state.json`, state, { indent: 2 });
    await replaceDirAtomic(tmp, dir);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/** Reads `trainer_state.json` and the AdamW moments of a checkpoint. */
export async function loadCheckpointState(dir: string): Promise<{ state: TrainerState } & AdamWMoments> {
  const path = `${dir}/trainer_state.json`;
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
    if (state[key] === undefined) throw new Error(`${dir}/trainer_state.json: field "${key}" is missing`);
  }
  const file = await SafetensorsFile.open(`${dir}/optimizer.safetensors`);
  const m = new Map<string, Float32Array>(), v = new Map<string, Float32Array>();
  for (const name of file.names()) {
    const target = name.startsWith("m.") ? m : name.startsWith("v.") ? v : undefined;
    if (!target) throw new Error(`${dir}/optimizer.safetensors: unexpected tensor "${name}"`);
    target.set(name.slice(2), await file.readF32(name));
  }
  return { state, m, v };
}

/** What an earlier run left in a run folder: its complete checkpoints and its saved models. */
export async function earlierRun(
  out: string,
): Promise<{ checkpoints: { dir: string; step: number }[]; models: string[] }> {
  const models: string[] = [];
  for (const name of RUN_MODELS) {
    await recoverReplacedDir(`${out}/${name}`);
    if (await pathExists(`${out}/${name}`)) models.push(`${out}/${name}`);
  }
  return { checkpoints: await listCheckpoints(out), models };
}

/** The model folders a run saves beside its checkpoints. */
const RUN_MODELS = ["final", "merged"];

/** Names (before `.tmp-…`) of what a run writes into its folder through a temporary sibling. */
const RUN_TEMPS = /^(checkpoint-\d+|final|merged|metrics\.jsonl|train_config\.json|reference_logps\.json)$/;

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
  const file = await Deno.open(`${out}/.lock`, { write: true, create: true });
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
export async function pruneCheckpoints(out: string, keep: number): Promise<void> {
  if (keep <= 0) return;
  const all = await listCheckpoints(out);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) await Deno.remove(c.dir, { recursive: true });
}
