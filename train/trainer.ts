/**
 * The trainer: SFT, DPO and ORPO on the WGSL model, from a Hugging Face folder and data files to a better
 * model. One optimizer step = `gradAccum` micro-batches, each one submission (forward → objective →
 * backward, gradients accumulating), then one submission for clipping + AdamW and one small readback of the
 * metrics. Metrics go to `metrics.jsonl`, progress to stderr, checkpoints to `checkpoint-<step>/` (atomic),
 * and `--resume` continues bit-for-bit from the newest checkpoint: same weights, moments, step and data order.
 *
 * @module
 */
import { Gpu, prefix } from "../gpu/runtime.ts";
import { writeJsonAtomic } from "../io/atomic.ts";
import { type ModelSource, resolveModelSource } from "../io/model_source.ts";
import { JsonlLog } from "../io/jsonl.ts";
import { type LoadedLlama, loadLlama, readParams, saveLlama } from "../model/load.ts";
import type { StepBuffers } from "../model/llama.ts";
import { ParamSet } from "../model/params.ts";
import { loadTokenizer } from "../text/tokenizer.ts";
import {
  type Batch,
  batchesPerEpoch,
  type BatchingOptions,
  preferenceBatches,
  sftBatches,
} from "./batching.ts";
import {
  checkpointDir,
  earlierRun,
  loadCheckpointState,
  lockRunFolder,
  pruneCheckpoints,
  removeStaleRunTemps,
  saveCheckpoint,
  type TrainerState,
} from "./checkpoint.ts";
import { type TrainConfig, validateConfig } from "./config.ts";
import { maxTokenId, prepareData, type PreparedData } from "./data.ts";
import type { PreferenceExample } from "./examples.ts";
import {
  initLora,
  loadLoraAdapter,
  loraAdapters,
  loraParamSpecs,
  type LoraSpec,
  mergeLora,
  saveLoraAdapter,
} from "./lora.ts";
import { learningRate, warmupSteps } from "./schedule.ts";
import { type MicroBatch, microBatch, StepRunner } from "./runner.ts";
import { AdamW, writeBatch } from "./step.ts";

/** Where a run reports progress and messages (stderr by default). */
export interface TrainLogger {
  /** Receives messages: the adapter, resuming, evaluation losses, where the model was saved. */
  info(message: string): void;
  /** Receives one progress line per logged step. */
  progress(line: string): void;
}

/** The default logger: messages and progress lines on stderr. */
export const stderrLogger: TrainLogger = {
  info: (m) => console.error(m),
  progress: (l) => console.error(l),
};

/** What a finished (or stopped) run produced. */
export interface TrainResult {
  /** The trained model: a Hugging Face folder (full training) or a PEFT adapter folder (LoRA). */
  finalDir: string;
  /** With LoRA and `merge`: the merged full model. */
  mergedDir?: string;
  /** Optimizer steps taken in total, earlier processes of a resumed run included. */
  steps: number;
  /** Steps the run was planned for. */
  totalSteps: number;
  /** Training loss of the first and last logged steps of this process. */
  firstLoss?: number;
  /** Training loss of the last step of this process. */
  lastLoss?: number;
  /** The last evaluation loss, when there was eval data. */
  lastEvalLoss?: number;
  /** The run's `metrics.jsonl`: one line per logged step and per evaluation. */
  metricsFile: string;
}

/** Options of {@link train} beyond the run's configuration. */
export interface TrainOptions {
  /** Device to train on (default: a new one). */
  gpu?: Gpu;
  /** Where messages and progress go (default: stderr). */
  log?: TrainLogger;
  /** Stop (as if killed) after this many optimizer steps in this process: for resume tests. */
  stopAfter?: number;
}

interface Trainable {
  loaded: LoadedLlama;
  /** Parameter sets the optimizer updates (the model's, or the LoRA adapters'). */
  sets: ParamSet[];
  lora?: { spec: LoraSpec; params: ParamSet; baseModel: string };
}

const REFERENCE_FILE = "reference_logps.json";

/**
 * Trains a model as `cfg` says and returns where the result went.
 * @example
 * ```ts
 * const result = await train(withDefaults("orpo", { model: "runs/tiny-base", data: ["data/ko_pref_tiny.jsonl"], out: "runs/orpo" }));
 * console.log(result.finalDir);
 * ```
 */
export async function train(cfg: TrainConfig, opts: TrainOptions = {}): Promise<TrainResult> {
  validateConfig(cfg);
  const checkpoints = await checkRunFolder(cfg);
  const lock = await lockRunFolder(cfg.out);
  try {
    return await trainLocked(cfg, opts, checkpoints);
  } finally {
    lock.release();
  }
}

/** {@link train} once the run folder is checked and locked. */
async function trainLocked(
  cfg: TrainConfig,
  opts: TrainOptions,
  checkpoints: { dir: string; step: number }[],
): Promise<TrainResult> {
  const log = opts.log ?? stderrLogger;
  const gpu = opts.gpu ?? await Gpu.create();
  log.info(`[${cfg.objective}] adapter: ${gpu.describe()}`);
  const stale = await removeStaleRunTemps(cfg.out);
  if (stale.removed.length > 0) {
    log.info(
      `[${cfg.objective}] removed ${stale.removed.length} stale temporary folder(s) left by an interrupted ` +
        `save (${(stale.bytes / 1e6).toFixed(1)} MB): ${stale.removed.join(", ")}`,
    );
  }
  const source = await resolveModelSource(cfg.model);
  const modelDir = source.modelDir;
  const lora = trainedAdapter(cfg, source, log);
  const tok = await loadTokenizer(source.tokenizerDir, { chatTemplate: cfg.chatTemplate });
  const data = await prepareData(cfg, tok);
  log.info(
    `[${cfg.objective}] ${data.train.length} training and ${data.eval.length} evaluation examples` +
      (data.stats.truncated ? `, ${data.stats.truncated} truncated` : "") +
      (data.stats.dropped ? `, ${data.stats.dropped} dropped (nothing left to learn after truncation)` : "") +
      (data.skippedRows ? `, ${data.skippedRows} bad rows skipped` : "") +
      (data.stats.promptMismatches
        ? `, ${data.stats.promptMismatches} prompt(s) whose last token merges into the completion (split at ` +
          "the prompt's own tokens, as TRL does)"
        : ""),
  );

  // --- the schedule of the run
  const padId = tok.padId ?? tok.eosId ?? 0;
  const perEpoch = batchesPerEpoch(data.train.length, { batchSize: cfg.batchSize, seed: cfg.seed, padId });
  const stepsPerEpoch = Math.max(1, Math.floor(perEpoch / cfg.gradAccum));
  const totalSteps = cfg.maxSteps > 0 ? cfg.maxSteps : stepsPerEpoch * cfg.epochs;
  const epochs = Math.ceil((totalSteps * cfg.gradAccum) / perEpoch) + 1;
  const batching: BatchingOptions = {
    batchSize: cfg.batchSize,
    seed: cfg.seed,
    padId,
    padMultiple: cfg.padMultiple,
    epochs,
  };
  const warmup = warmupSteps(totalSteps, cfg.warmupSteps, cfg.warmupRatio);
  const fingerprint = await fingerprintOf(cfg, data);

  // --- the model, its trainable parameters, and where a resumed run starts
  if (!cfg.resume && checkpoints.length > 0) {
    // --overwrite-output-dir: the old checkpoints would otherwise be mistaken for this run's.
    for (const c of checkpoints) await Deno.remove(c.dir, { recursive: true });
    log.info(
      `[${cfg.objective}] removed ${checkpoints.length} checkpoint(s) of an earlier run in ${cfg.out}`,
    );
    checkpoints.length = 0;
  }
  const resumeFrom = checkpoints[checkpoints.length - 1];
  const maxT = Math.ceil(cfg.maxLength / cfg.padMultiple) * cfg.padMultiple;
  const rowsPerBatch = cfg.batchSize * (data.kind === "preference" ? 2 : 1);
  const trainable = await loadTrainable(
    gpu,
    cfg,
    source,
    lora,
    resumeFrom?.dir,
    rowsPerBatch * maxT,
    maxT,
    log,
  );
  const model = trainable.loaded.model;
  const vocab = trainable.loaded.config.vocabSize;
  const highest = maxTokenId(data);
  if (highest >= vocab) {
    throw new Error(
      `token id ${highest} from ${modelDir}'s tokenizer is outside the model's vocabulary (${vocab})`,
    );
  }
  const opt = new AdamW(gpu, trainable.sets, {
    beta1: cfg.adamBeta1,
    beta2: cfg.adamBeta2,
    eps: cfg.adamEps,
    weightDecay: cfg.weightDecay,
    maxGradNorm: cfg.maxGradNorm > 0 ? cfg.maxGradNorm : undefined,
  });
  let state: TrainerState = {
    global_step: 0,
    epoch: 0,
    data_position: { epoch: 0, batch: 0 },
    max_steps: totalSteps,
    tokens_seen: 0,
    elapsed_s: 0,
    fingerprint,
  };
  if (resumeFrom) {
    const saved = await loadCheckpointState(resumeFrom.dir);
    if (saved.state.fingerprint !== fingerprint) {
      throw new Error(
        `${resumeFrom.dir} was written by a run with other data or settings; use another --out, or drop --resume`,
      );
    }
    writeMoments(gpu, trainable.sets, saved.m, saved.v, resumeFrom.dir);
    state = { ...saved.state, max_steps: totalSteps };
    log.info(`[${cfg.objective}] resuming from ${resumeFrom.dir} at step ${state.global_step}`);
  }
  await writeJsonAtomic(`${cfg.out}/train_config.json`, { ...cfg, model_path: modelDir }, { indent: 2 });
  const metricsFile = `${cfg.out}/metrics.jsonl`;
  // A resumed run rewrites the lines past its checkpoint; a line cut by a kill is removed (io/jsonl.ts).
  const metrics = await JsonlLog.open(metricsFile, {
    keep: (row) => (row.value.step as number) <= state.global_step,
    warn: (m) => log.info(`[${cfg.objective}] warning: ${m}`),
  });

  // --- DPO's reference log-probs, once, from the starting weights
  const reference = cfg.objective === "dpo" && data.kind === "preference"
    ? await referenceLogps(gpu, trainable.loaded, data, batching, cfg, fingerprint, log)
    : undefined;

  const settings = { objective: cfg.objective, beta: cfg.beta, lossType: cfg.lossType, orpoNll: cfg.orpoNll };
  const runner = new StepRunner(gpu, model, opt, settings, rowsPerBatch);
  const names = runner.metricNames;
  const evaluate = () =>
    runner.evaluate(
      [...batchesOf(data, { ...batching, epochs: 1 }, { epoch: 0, batch: 0 }, true)].map((b) =>
        microBatch(b.batch, settings, reference?.eval)
      ),
    );

  // --- the loop
  const result: TrainResult = {
    finalDir: `${cfg.out}/final`,
    steps: state.global_step,
    totalSteps,
    metricsFile,
  };
  const iterator = batchesOf(data, batching, state.data_position, false);
  const started = performance.now() - state.elapsed_s * 1000;
  let stepsThisProcess = 0;
  while (state.global_step < totalSteps) {
    const t0 = performance.now();
    const mbs: MicroBatch[] = [];
    for (let i = 0; i < cfg.gradAccum; i++) {
      const next = iterator.next();
      if (next.done) break;
      mbs.push(microBatch(next.value.batch, settings, reference?.train));
      state.data_position = next.value.next;
    }
    if (mbs.length === 0) break;
    const lr = learningRate(cfg.schedule, cfg.lr, state.global_step, warmup, totalSteps);
    const { values, gradNorm } = await runner.step(mbs, lr, state.global_step + 1);
    const tokens = sum(mbs.map((mb) => mb.batch.tokens));
    state.global_step++;
    stepsThisProcess++;
    state.tokens_seen += tokens;
    state.epoch = state.data_position.epoch + state.data_position.batch / perEpoch;
    state.elapsed_s = (performance.now() - started) / 1000;
    const seconds = (performance.now() - t0) / 1000;
    const record: Record<string, number> = { step: state.global_step, epoch: round(state.epoch, 4) };
    for (const n of names) record[n] = values[n];
    Object.assign(record, {
      learning_rate: lr,
      grad_norm: gradNorm,
      tokens,
      tokens_per_second: tokens / seconds,
      elapsed_s: round(state.elapsed_s, 3),
    });
    if (!Number.isFinite(record.loss)) {
      throw new Error(nonFiniteLoss(record.loss, state.global_step, stepsThisProcess));
    }
    result.firstLoss ??= record.loss;
    result.lastLoss = record.loss;
    if (state.global_step % cfg.logEvery === 0 || state.global_step === totalSteps) {
      await metrics.append(record);
      log.progress(progressLine(cfg.objective, record, state, totalSteps));
    }
    const last = state.global_step === totalSteps;
    if (data.eval.length > 0 && ((cfg.evalEvery > 0 && state.global_step % cfg.evalEvery === 0) || last)) {
      const ev = await evaluate();
      result.lastEvalLoss = ev.eval_loss;
      await metrics.append({ step: state.global_step, ...ev });
      log.info(`[${cfg.objective}] step ${state.global_step} eval_loss ${ev.eval_loss.toFixed(4)}`);
    }
    const stopping = opts.stopAfter !== undefined && stepsThisProcess >= opts.stopAfter;
    if ((cfg.saveEvery > 0 && state.global_step % cfg.saveEvery === 0) || last || stopping) {
      await writeCheckpoint(gpu, trainable, cfg, source, state);
      await pruneCheckpoints(cfg.out, cfg.saveTotalLimit);
    }
    if (stopping) {
      result.steps = state.global_step;
      return result;
    }
  }
  result.steps = state.global_step;
  const saved = await writeFinal(gpu, trainable, cfg, source);
  result.mergedDir = saved.mergedDir;
  log.info(`[${cfg.objective}] saved ${result.finalDir}${saved.mergedDir ? ` and ${saved.mergedDir}` : ""}`);
  return result;
}

/**
 * Refuses a run folder that would lose or mix up work: a fresh run where an earlier run left checkpoints or
 * a model (unless `overwriteOutputDir`), and `resume` with no checkpoint. Returns the complete checkpoints.
 */
async function checkRunFolder(cfg: TrainConfig): Promise<{ dir: string; step: number }[]> {
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

/** Why a loss is NaN or infinite: on the first step of a run no update has happened, so not the rate. */
function nonFiniteLoss(loss: number, step: number, stepsThisProcess: number): string {
  if (stepsThisProcess === 1) {
    return `loss is ${loss} at step ${step}, before this run changed any weight (so not --lr): the loaded ` +
      "weights are finite, so check the data (a batch with no tokens to learn?) and the model's config";
  }
  return `loss became ${loss} at step ${step}; lower --lr or check the data`;
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60), sec = Math.round(s % 60);
  return m > 0 ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}

function progressLine(kind: string, r: Record<string, number>, state: TrainerState, total: number): string {
  const rate = state.global_step / Math.max(state.elapsed_s, 1e-9);
  const eta = (total - state.global_step) / rate;
  const extra = kind === "sft"
    ? ""
    : ` margin ${(r["rewards/margins"] ?? 0).toFixed(3)} acc ${(r["rewards/accuracies"] ?? 0).toFixed(2)}`;
  return `[${kind}] step ${state.global_step}/${total} loss ${r.loss.toFixed(4)}${
    r.nll_loss !== undefined ? ` nll ${r.nll_loss.toFixed(4)}` : ""
  }${extra} lr ${r.learning_rate.toExponential(2)} | ${
    Math.round(r.tokens_per_second).toLocaleString("en-US")
  } tok/s | ETA ${formatDuration(eta)}`;
}

/** Settings a resumed run must share with the run that wrote the checkpoint. */
async function fingerprintOf(cfg: TrainConfig, data: PreparedData): Promise<string> {
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
 * The adapter a LoRA run trains: a new one as `cfg.lora` describes it, or, when `--model` names a PEFT adapter
 * folder, that adapter (its own rank, alpha and targets), trained further over its base model. Full
 * training of an adapter folder is refused: merge it first, or train the base.
 */
function trainedAdapter(
  cfg: TrainConfig,
  source: ModelSource,
  log: TrainLogger,
): { spec: LoraSpec; init?: Map<string, Float32Array>; baseModel: string } | undefined {
  const adapter = source.adapter;
  if (!adapter) return cfg.lora ? { spec: cfg.lora, baseModel: cfg.model } : undefined;
  if (!cfg.lora) {
    throw new Error(
      `--model ${cfg.model} is a PEFT adapter over ${adapter.baseModel}: train it further with --lora-r (the ` +
        `adapter's own rank, alpha and targets are used), or train the base model in full with --model ` +
        adapter.baseModel,
    );
  }
  log.info(
    `[${cfg.objective}] training the adapter ${cfg.model} further over ${adapter.baseModel} (its own r=` +
      `${adapter.spec.r}, lora_alpha=${adapter.spec.alpha}, target_modules ${
        JSON.stringify(adapter.spec.targets)
      }` +
      `; --lora-r, --lora-alpha and --lora-targets do not apply)`,
  );
  return { spec: adapter.spec, init: adapter.weights, baseModel: adapter.baseModel };
}

/** Loads the model (from the checkpoint when resuming full training) and its trainable parameters. */
async function loadTrainable(
  gpu: Gpu,
  cfg: TrainConfig,
  source: ModelSource,
  lora: ReturnType<typeof trainedAdapter>,
  resumeDir: string | undefined,
  maxTokens: number,
  maxPositions: number,
  log: TrainLogger,
): Promise<Trainable> {
  const checks = {
    ignoreUnusedWeights: cfg.ignoreUnusedWeights,
    warn: (m: string) => log.info(`[${cfg.objective}] warning: ${m}`),
  };
  const modelDir = source.modelDir;
  if (!lora) {
    const loaded = await loadLlama(gpu, resumeDir ?? modelDir, {
      trainable: true,
      maxTokens,
      maxPositions,
      ...checks,
    });
    loaded.dir = modelDir; // tokenizer and generation files come from the base model's folder
    return { loaded, sets: [loaded.params] };
  }
  const spec = lora.spec;
  const dims = source.config;
  const params = ParamSet.create(gpu, loraParamSpecs(dims, spec), { trainable: true, label: "lora" });
  const init = resumeDir
    ? (await loadLoraAdapter(resumeDir)).weights
    : lora.init ?? initLora(dims, spec, cfg.seed);
  for (const p of params.specs) {
    const w = init.get(p.name);
    if (!w) throw new Error(`${resumeDir ?? "LoRA init"}: adapter lacks "${p.name}"`);
    gpu.write(params.value(p.name), w);
  }
  const loaded = await loadLlama(gpu, modelDir, {
    trainable: false,
    maxTokens,
    maxPositions,
    frozenF16: cfg.f16Base,
    lora: loraAdapters(params, spec, dims),
    ...checks,
  });
  return { loaded, sets: [params], lora: { spec, params, baseModel: lora.baseModel } };
}

function writeMoments(
  gpu: Gpu,
  sets: ParamSet[],
  m: Map<string, Float32Array>,
  v: Map<string, Float32Array>,
  where: string,
): void {
  for (const set of sets) {
    for (const spec of set.specs) {
      const mm = m.get(spec.name), vv = v.get(spec.name);
      if (!mm || !vv) throw new Error(`${where}/optimizer.safetensors lacks the moments of "${spec.name}"`);
      gpu.write(set.m.get(spec.name)!, mm);
      gpu.write(set.v.get(spec.name)!, vv);
    }
  }
}

async function readMoments(
  gpu: Gpu,
  sets: ParamSet[],
): Promise<{ m: Map<string, Float32Array>; v: Map<string, Float32Array> }> {
  const m = new Map<string, Float32Array>(), v = new Map<string, Float32Array>();
  for (const set of sets) {
    const names = set.specs.map((s) => s.name);
    const data = await gpu.readMany([...names.map((n) => set.m.get(n)!), ...names.map((n) => set.v.get(n)!)]);
    names.forEach((n, i) => {
      m.set(n, data[i] as Float32Array);
      v.set(n, data[names.length + i] as Float32Array);
    });
  }
  return { m, v };
}

async function writeCheckpoint(
  gpu: Gpu,
  t: Trainable,
  cfg: TrainConfig,
  source: ModelSource,
  state: TrainerState,
): Promise<void> {
  const modelDir = source.modelDir;
  const moments = await readMoments(gpu, t.sets);
  await saveCheckpoint(
    checkpointDir(cfg.out, state.global_step),
    async (tmp) => {
      if (t.lora) {
        await saveLoraAdapter(tmp, await readParams(gpu, t.lora.params), t.lora.spec, t.lora.baseModel, {
          dims: t.loaded.config,
          tokenizerFrom: source.tokenizerDir,
        });
      } else {
        // Checkpoints stay f32 so a resumed run continues exactly.
        await saveLlama(gpu, t.loaded, `${tmp}/model-tmp`, { dtype: "F32", copyFrom: modelDir });
        for await (const e of Deno.readDir(`${tmp}/model-tmp`)) {
          await Deno.rename(
            `${tmp}/model-tmp/${e.name}`,
            `${tmp}/${e.name}`,
          );
        }
        await Deno.remove(`${tmp}/model-tmp`);
      }
    },
    moments,
    state,
  );
}

async function writeFinal(
  gpu: Gpu,
  t: Trainable,
  cfg: TrainConfig,
  source: ModelSource,
): Promise<{ mergedDir?: string }> {
  const modelDir = source.modelDir;
  const finalDir = `${cfg.out}/final`;
  if (!t.lora) {
    await saveLlama(gpu, t.loaded, finalDir, { dtype: cfg.saveDtype, copyFrom: modelDir });
    return {};
  }
  const adapter = await readParams(gpu, t.lora.params);
  await saveLoraAdapter(finalDir, adapter, t.lora.spec, t.lora.baseModel, {
    dims: t.loaded.config,
    tokenizerFrom: source.tokenizerDir,
  });
  if (!cfg.merge) return {};
  const base = await readParams(gpu, t.loaded.params);
  const mergedDir = `${cfg.out}/merged`;
  await saveLlama(gpu, t.loaded, mergedDir, {
    dtype: cfg.saveDtype,
    copyFrom: modelDir,
    weights: mergeLora(base, adapter, t.lora.spec, t.loaded.config),
  });
  return { mergedDir };
}

/** Batches of the run's data kind, each with the position of the batch after it. */
function* batchesOf(
  data: PreparedData,
  options: BatchingOptions,
  from: { epoch: number; batch: number },
  evalSet: boolean,
): Generator<{ batch: Batch; next: { epoch: number; batch: number } }> {
  const perEpoch = batchesPerEpoch(evalSet ? data.eval.length : data.train.length, options);
  const opts = evalSet ? { ...options, shuffle: false } : options;
  const source = data.kind === "sft"
    ? sftBatches(evalSet ? data.eval : data.train, opts, from)
    : preferenceBatches(evalSet ? data.eval : data.train, opts, from);
  for (const { position, batch } of source) {
    const nb = position.batch + 1;
    yield {
      batch,
      next: nb >= perEpoch ? { epoch: position.epoch + 1, batch: 0 } : { epoch: position.epoch, batch: nb },
    };
  }
}

/**
 * Summed completion log-probs of every pair under the starting weights (DPO's frozen reference model),
 * computed once and cached in the run folder (`reference_logps.json`), keyed by the run's fingerprint.
 */
async function referenceLogps(
  gpu: Gpu,
  loaded: LoadedLlama,
  data: PreparedData & { kind: "preference" },
  batching: BatchingOptions,
  cfg: TrainConfig,
  fingerprint: string,
  log: TrainLogger,
): Promise<{ train: Float32Array; eval: Float32Array }> {
  const file = `${cfg.out}/${REFERENCE_FILE}`;
  try {
    const cached = JSON.parse(await Deno.readTextFile(file)) as {
      fingerprint: string;
      train: number[];
      eval: number[];
    };
    if (cached.fingerprint === fingerprint) {
      return { train: Float32Array.from(cached.train), eval: Float32Array.from(cached.eval) };
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      log.info(`[dpo] ignoring unreadable ${file}: ${(e as Error).message}`);
    }
  }
  const t0 = performance.now();
  const model = loaded.model;
  const io: StepBuffers = model.allocStep();
  const compute = async (examples: PreferenceExample[]) => {
    const out = new Float32Array(2 * examples.length);
    const once = { ...batching, epochs: 1, shuffle: false };
    for (const { batch } of preferenceBatches(examples, once)) {
      const { B, T } = batch;
      writeBatch(gpu, io, batch);
      gpu.run(model.forward(B, T, io));
      const logp = await gpu.read(prefix(io.logp, B * T));
      const pairs = B / 2;
      for (let s = 0; s < B; s++) {
        let total = 0;
        for (let t = 0; t < T; t++) if (batch.lossMask[s * T + t]) total += logp[s * T + t];
        const ex = batch.exampleIndices[s % pairs];
        out[2 * ex + (s < pairs ? 0 : 1)] = total;
      }
    }
    return out;
  };
  const train = await compute(data.train);
  const evalRef = await compute(data.eval);
  await writeJsonAtomic(file, { fingerprint, train: [...train], eval: [...evalRef] });
  log.info(
    `[dpo] reference log-probs of ${data.train.length + data.eval.length} pairs in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s`,
  );
  return { train, eval: evalRef };
}
