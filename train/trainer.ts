/**
 * The trainer: SFT, DPO and ORPO on the WGSL model, from a Hugging Face folder and data files to a better
 * model. One optimizer step = `gradAccum` micro-batches, each one submission (forward → objective →
 * backward, gradients accumulating), then one submission for clipping + AdamW and one small readback of the
 * metrics. Metrics go to `metrics.jsonl`, progress to stderr, checkpoints to `checkpoint-<step>/` (atomic),
 * and `--resume` continues bit-for-bit from the newest checkpoint: same weights, moments, step and data order.
 *
 * @module
 */
import { Gpu } from "../gpu/runtime.ts";
import { JsonlLog } from "../io/jsonl.ts";
import { resolveModelSource } from "../io/model_source.ts";
import type { ObjectiveKind } from "../kernels/objective.ts";
import { loadTokenizer } from "../text/tokenizer.ts";
import {
  type Batch,
  batchesPerEpoch,
  type BatchingOptions,
  preferenceBatches,
  sftBatches,
} from "./batching.ts";
import {
  type Checkpoint,
  checkRunFolder,
  freshTrainerState,
  lockRunFolder,
  removeStaleRunTemps,
  resumeCheckpoint,
  RUN_FILES,
  runFingerprint,
  saveCheckpoint,
  saveFinal,
  startingCheckpoint,
  type TrainerState,
  writeRunConfig,
} from "./checkpoint.ts";
import { type TrainConfig, validateConfig } from "./config.ts";
import { maxTokenId, prepareData, type PreparedData } from "./data.ts";
import { dpoReference, type MicroBatch, microBatch, OBJECTIVES } from "./objectives.ts";
import { AdamW } from "./optimizer.ts";
import { StepRunner } from "./runner.ts";
import { learningRate, warmupSteps } from "./schedule.ts";
import { loadTrainable } from "./trainable.ts";

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
  checkpoints: Checkpoint[],
): Promise<TrainResult> {
  const log = opts.log ?? stderrLogger;
  const say = (m: string) => log.info(`[${cfg.objective}] ${m}`);
  const gpu = opts.gpu ?? await Gpu.create();
  const stale = await removeStaleRunTemps(cfg.out);
  if (stale.removed.length > 0) {
    say(
      `removed ${stale.removed.length} stale temporary folder(s) left by an interrupted ` +
        `save (${(stale.bytes / 1e6).toFixed(1)} MB): ${stale.removed.join(", ")}`,
    );
  }

  // --- the data
  const source = await resolveModelSource(cfg.model);
  const modelDir = source.modelDir;
  const tok = await loadTokenizer(source.tokenizerDir, { chatTemplate: cfg.chatTemplate });
  const data = await prepareData(cfg, tok);
  say(describeData(data));

  // --- the schedule: steps, batches, warm-up
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
  const fingerprint = await runFingerprint(cfg, data);

  // --- the model and its optimizer, from the base model or the newest checkpoint
  const start = await startingCheckpoint(cfg, checkpoints);
  if (start.deleted > 0) say(`removed ${start.deleted} checkpoint(s) of an earlier run in ${cfg.out}`);
  const maxT = Math.ceil(cfg.maxLength / cfg.padMultiple) * cfg.padMultiple;
  const rowsPerBatch = cfg.batchSize * (data.kind === "preference" ? 2 : 1);
  const trainable = await loadTrainable(gpu, cfg, source, start.from?.dir, {
    maxTokens: rowsPerBatch * maxT,
    maxPositions: maxT,
    warn: (m) => say(`warning: ${m}`),
    info: say,
  });
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
  let state = freshTrainerState(totalSteps, fingerprint);
  if (start.from) {
    state = { ...await resumeCheckpoint(start.from.dir, opt, fingerprint), max_steps: totalSteps };
    say(`resuming from ${start.from.dir} at step ${state.global_step}`);
  }
  await writeRunConfig(cfg, modelDir);
  const metricsFile = `${cfg.out}/${RUN_FILES.metrics}`;
  // A resumed run rewrites the lines past its checkpoint; a line cut by a kill is removed (io/jsonl.ts).
  const metrics = await JsonlLog.open(metricsFile, {
    keep: (row) => (row.value.step as number) <= state.global_step,
    warn: (m) => log.info(`[${cfg.objective}] warning: ${m}`),
  });

  // --- the objective: its step runner, and DPO's reference log-probs (once, from the starting weights)
  const settings = { objective: cfg.objective, beta: cfg.beta, lossType: cfg.lossType, orpoNll: cfg.orpoNll };
  const runner = new StepRunner(gpu, trainable.loaded.model, opt, settings, rowsPerBatch);
  const reference = cfg.objective === "dpo" && data.kind === "preference"
    ? await dpoReference(
      runner,
      data,
      batching,
      `${cfg.out}/${RUN_FILES.reference}`,
      fingerprint,
      (m) => log.info(m),
    )
    : undefined;
  const evaluate = () =>
    runner.evaluate(
      [...batchesOf(data, { ...batching, epochs: 1 }, { epoch: 0, batch: 0 }, true)].map((b) =>
        microBatch(b.batch, settings, reference?.eval)
      ),
    );

  // --- the loop: one optimizer step of `gradAccum` micro-batches per iteration
  const result: TrainResult = {
    finalDir: `${cfg.out}/${RUN_FILES.final}`,
    steps: state.global_step,
    totalSteps,
    metricsFile,
  };
  const batches = batchesOf(data, batching, state.data_position, false);
  const started = performance.now() - state.elapsed_s * 1000;
  let stepsThisProcess = 0;
  while (state.global_step < totalSteps) {
    const t0 = performance.now();
    const mbs: MicroBatch[] = [];
    for (let i = 0; i < cfg.gradAccum; i++) {
      const next = batches.next();
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
    for (const n of runner.metricNames) record[n] = values[n];
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

    const last = state.global_step === totalSteps;
    const every = (n: number) => n > 0 && state.global_step % n === 0;
    if (every(cfg.logEvery) || last) {
      await metrics.append(record);
      log.progress(progressLine(cfg.objective, record, state, totalSteps));
    }
    if (data.eval.length > 0 && (every(cfg.evalEvery) || last)) {
      const ev = await evaluate();
      result.lastEvalLoss = ev.eval_loss;
      await metrics.append({ step: state.global_step, ...ev });
      say(`step ${state.global_step} eval_loss ${ev.eval_loss.toFixed(4)}`);
    }
    const stopping = opts.stopAfter !== undefined && stepsThisProcess >= opts.stopAfter;
    if (every(cfg.saveEvery) || last || stopping) {
      await saveCheckpoint(gpu, cfg.out, trainable, opt, state, cfg.saveTotalLimit);
    }
    if (stopping) {
      result.steps = state.global_step;
      return result;
    }
  }

  // --- the trained model
  result.steps = state.global_step;
  const saved = await saveFinal(gpu, cfg.out, trainable, { dtype: cfg.saveDtype, merge: cfg.merge });
  result.mergedDir = saved.mergedDir;
  say(`saved ${saved.finalDir}${saved.mergedDir ? ` and ${saved.mergedDir}` : ""}`);
  return result;
}

/** The data's summary line: examples, and what truncation, bad rows and tokenization did to them. */
function describeData(data: PreparedData): string {
  return `${data.train.length} training and ${data.eval.length} evaluation examples` +
    (data.stats.truncated ? `, ${data.stats.truncated} truncated` : "") +
    (data.stats.dropped ? `, ${data.stats.dropped} dropped (nothing left to learn after truncation)` : "") +
    (data.skippedRows ? `, ${data.skippedRows} bad rows skipped` : "") +
    (data.stats.promptMismatches
      ? `, ${data.stats.promptMismatches} prompt(s) whose last token merges into the completion (split at ` +
        "the prompt's own tokens, as TRL does)"
      : "");
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

function progressLine(
  kind: ObjectiveKind,
  r: Record<string, number>,
  state: TrainerState,
  total: number,
): string {
  const rate = state.global_step / Math.max(state.elapsed_s, 1e-9);
  const eta = (total - state.global_step) / rate;
  const shown = OBJECTIVES[kind].progress.map(([label, metric, digits]) =>
    ` ${label} ${r[metric].toFixed(digits)}`
  );
  return `[${kind}] step ${state.global_step}/${total} loss ${r.loss.toFixed(4)}${shown.join("")} lr ${
    r.learning_rate.toExponential(2)
  } | ${Math.round(r.tokens_per_second).toLocaleString("en-US")} tok/s | ETA ${formatDuration(eta)}`;
}
