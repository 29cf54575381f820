/**
 * Resumable stages with explicit outputs, and `pipeline.json`, the record of what each stage last did.
 *
 * A stage's fingerprint hashes its own settings and the run id of every stage it reads from. A stage is
 * skipped when its last run completed with the same fingerprint and its outputs are still complete.
 * Otherwise it runs, and gets a new run id when it completes, which changes the fingerprint of every stage
 * downstream: a changed setting, or a removed output, reruns that stage and its dependents, nothing else.
 *
 * Before a stage runs with a fingerprint other than the one recorded (new settings, new inputs, or no
 * record), its `clean` removes its old outputs so it starts fresh. With the same fingerprint (a run that was
 * killed, or whose outputs were removed) nothing is removed, so a training stage resumes from its last
 * checkpoint and an answer file keeps the answers already generated.
 *
 * @module
 */
import { writeJsonAtomic } from "../io/atomic.ts";

/** JSON values stages record as settings and results. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** What a stage knows about the stages before it when it runs. */
export interface StageContext {
  /** The recorded result of an upstream stage (it completed, now or in an earlier run). */
  resultOf(stage: string): Json | undefined;
  log(line: string): void;
}

/** One step of a pipeline. */
export interface Stage {
  name: string;
  /** Stages whose outputs this one reads; they must come earlier in the list. */
  deps: string[];
  /** Everything that changes this stage's outputs (no secrets: it is written to pipeline.json). */
  settings: Json;
  /** Paths this stage writes, for the record. */
  outputs: string[];
  /**
   * Set when the stage is deliberately not run; the reason is printed and recorded, and stages that read it
   * must not list it in `deps`.
   */
  disabled?: string;
  /** Why the outputs are incomplete (e.g. "sft/config.json is missing"), or undefined when complete. */
  missing(ctx: StageContext): Promise<string | undefined>;
  /** Removes earlier outputs before a fresh start. */
  clean(): Promise<void>;
  /** Produces the outputs; what it returns is recorded and given to later stages. */
  run(ctx: StageContext): Promise<Json>;
}

/** Status of a stage in pipeline.json. */
export type StageStatus = "running" | "complete" | "failed" | "skipped";

/** A stage's entry in pipeline.json. */
export interface StageRecord {
  status: StageStatus;
  /** Hash of the settings and the upstream run ids. */
  fingerprint: string;
  /** Hash of the settings alone (tells "settings changed" from "an input stage reran"). */
  settings_hash: string;
  settings: Json;
  /** Run id of each upstream stage this run read. */
  inputs: Record<string, string>;
  outputs: string[];
  /** Set when the stage completes; what downstream fingerprints hash. */
  run_id?: string;
  result?: Json;
  started_at?: string;
  finished_at?: string;
  seconds?: number;
  /** Why a stage was skipped on purpose, or the error of a failed run. */
  note?: string;
}

/** The whole of pipeline.json. */
export interface PipelineManifest {
  version: 1;
  /** Stages of the latest invocation, in order (records of stages no longer used stay below it). */
  stage_order: string[];
  updated_at: string;
  /** Free-form description of the invocation (preset, model, …). */
  about: Json;
  stages: Record<string, StageRecord>;
}

/** What happened to a stage in this invocation. */
export interface StageOutcome {
  /** The stage's name, e.g. `sft` or `kobest-pt`. */
  name: string;
  /** `ran`; `skipped`: outputs complete, settings and inputs unchanged; `disabled` by the settings. */
  action: "ran" | "skipped" | "disabled";
  /** Why it ran ("settings changed", "sft/config.json is missing", …) or why it was disabled. */
  reason: string;
  /** Wall-clock time the stage took (0 when it did not run). */
  seconds: number;
}

/** Options of {@link runStages}. */
export interface RunStagesOptions {
  /** Written after every change of a stage's status. */
  manifestPath: string;
  about: Json;
  log?: (line: string) => void;
}

/**
 * SHA-256 (first 16 hex digits) of a JSON value with its object keys sorted, so equal settings hash equal.
 *
 * @example
 * ```ts
 * await hashJson({ b: 1, a: 2 }) === await hashJson({ a: 2, b: 1 }); // true
 * ```
 */
export async function hashJson(value: Json): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify(sortKeys(value)));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

function sortKeys(value: Json): Json {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys(value[k])]));
  }
  return value;
}

/**
 * Reads pipeline.json, or returns an empty manifest when there is none. A file that is not a manifest is an
 * error naming it (it is never silently replaced).
 *
 * @example
 * ```ts
 * const manifest = await readManifest("runs/repro-tiny/pipeline.json");
 * manifest.stages.sft?.status; // "complete"
 * ```
 */
export async function readManifest(path: string): Promise<PipelineManifest> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { version: 1, stage_order: [], updated_at: "", about: null, stages: {} };
    }
    throw e;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message}); remove it to rerun every stage`);
  }
  const m = value as Partial<PipelineManifest>;
  if (typeof m !== "object" || m === null || m.version !== 1 || typeof m.stages !== "object" || !m.stages) {
    throw new Error(
      `${path}: expected a pipeline manifest ({"version": 1, "stages": {…}}); remove it to rerun`,
    );
  }
  return { stage_order: [], updated_at: "", about: null, ...m } as PipelineManifest;
}

function checkOrder(stages: readonly Stage[]): void {
  const seen = new Map<string, Stage>();
  for (const s of stages) {
    if (seen.has(s.name)) throw new Error(`pipeline: two stages are named "${s.name}"`);
    for (const d of s.deps) {
      const dep = seen.get(d);
      if (!dep) throw new Error(`pipeline: stage "${s.name}" reads "${d}", which does not come before it`);
      if (dep.disabled) throw new Error(`pipeline: stage "${s.name}" reads "${d}", which is disabled`);
    }
    seen.set(s.name, s);
  }
}

function newRunId(): string {
  const bits = crypto.getRandomValues(new Uint32Array(2));
  return `${new Date().toISOString()}#${bits[0].toString(36)}${bits[1].toString(36)}`;
}

/** Why a stage must run, or undefined when it can be skipped. */
async function reasonToRun(
  stage: Stage,
  record: StageRecord | undefined,
  now: { fingerprint: string; settingsHash: string; inputs: Record<string, string> },
  ctx: StageContext,
): Promise<string | undefined> {
  if (!record) return "no earlier run";
  if (record.fingerprint !== now.fingerprint) {
    if (record.settings_hash !== now.settingsHash) return "settings changed";
    const names = new Set([...Object.keys(record.inputs), ...Object.keys(now.inputs)]);
    const changed = [...names].filter((d) => record.inputs[d] !== now.inputs[d]);
    return `input stage(s) ${changed.join(", ")} changed`;
  }
  if (record.status !== "complete") return `the last run is ${record.status}; resuming`;
  return await stage.missing(ctx);
}

/**
 * Runs (or skips) each stage in order, recording every status change in the manifest. Stops at the first
 * failing stage (recorded as failed) by rethrowing its error.
 *
 * @example
 * ```ts
 * const outcomes = await runStages([dataStage, sftStage], { manifestPath: "runs/x/pipeline.json", about: {} });
 * outcomes.map((o) => `${o.name}: ${o.action}`); // ["data: skipped", "sft: ran"]
 * ```
 */
export async function runStages(stages: readonly Stage[], opts: RunStagesOptions): Promise<StageOutcome[]> {
  checkOrder(stages);
  const log = opts.log ?? ((l: string) => console.error(l));
  const manifest = await readManifest(opts.manifestPath);
  manifest.stage_order = stages.map((s) => s.name);
  manifest.about = opts.about;
  const save = () => {
    manifest.updated_at = new Date().toISOString();
    return writeJsonAtomic(opts.manifestPath, manifest);
  };
  const runIds = new Map<string, string>();
  const ctx: StageContext = { resultOf: (name) => manifest.stages[name]?.result, log };
  const outcomes: StageOutcome[] = [];
  for (const stage of stages) {
    const settingsHash = await hashJson(stage.settings);
    const inputs = Object.fromEntries(stage.deps.map((d) => [d, runIds.get(d)!]));
    const fingerprint = await hashJson({ stage: stage.name, settings: settingsHash, inputs });
    const record = manifest.stages[stage.name];
    const base = { fingerprint, settings_hash: settingsHash, settings: stage.settings, inputs };
    if (stage.disabled) {
      manifest.stages[stage.name] = { ...base, status: "skipped", outputs: [], note: stage.disabled };
      log(`[reproduce] ${stage.name}: not run — ${stage.disabled}`);
      outcomes.push({ name: stage.name, action: "disabled", reason: stage.disabled, seconds: 0 });
      await save();
      continue;
    }
    const reason = await reasonToRun(stage, record, { fingerprint, settingsHash, inputs }, ctx);
    if (reason === undefined) {
      runIds.set(stage.name, record!.run_id!);
      log(`[reproduce] ${stage.name}: complete, skipped`);
      outcomes.push({ name: stage.name, action: "skipped", reason: "outputs complete", seconds: 0 });
      continue;
    }
    if (!record || record.fingerprint !== fingerprint) await stage.clean();
    log(`[reproduce] ${stage.name}: running (${reason})`);
    const started = performance.now();
    manifest.stages[stage.name] = {
      ...base,
      status: "running",
      outputs: stage.outputs,
      started_at: new Date().toISOString(),
    };
    await save();
    let result: Json;
    try {
      result = await stage.run(ctx);
    } catch (e) {
      Object.assign(manifest.stages[stage.name], { status: "failed", note: (e as Error).message });
      await save();
      throw e;
    }
    const seconds = Math.round((performance.now() - started) / 10) / 100;
    const runId = newRunId();
    Object.assign(manifest.stages[stage.name], {
      status: "complete",
      run_id: runId,
      result,
      finished_at: new Date().toISOString(),
      seconds,
    });
    await save();
    runIds.set(stage.name, runId);
    log(`[reproduce] ${stage.name}: done in ${seconds.toFixed(1)} s`);
    outcomes.push({ name: stage.name, action: "ran", reason, seconds });
  }
  await save();
  return outcomes;
}
