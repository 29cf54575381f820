/**
 * The trainer: SFT, DPO and ORPO on the WGSL model, from a Hugging Face folder and data files to a better
 * model. One optimizer step = `gradAccum` micro-batches, each one submission (forward → objective →
 * backward, gradients accumulating), then one submission for clipping + AdamW and one small readback of the
 * metrics. The run folder ends as the Hugging Face Trainer leaves it: the model at its root, checkpoints in
 * `checkpoint-<step>/` (atomic), `trainer_state.json` whose `log_history` holds TRL's metric names (also
 * streamed to `metrics.jsonl`), `training_args.json`; progress goes to stderr, and `--resume_from_checkpoint`
 * continues bit-for-bit from a checkpoint: same weights, moments, step, data order and pending log averages.
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
  type LogEntry,
  removeStaleRunTemps,
  resumeCheckpoint,
  RUN_FILES,
  runFingerprint,
  saveCheckpoint,
  saveFinal,
  startingCheckpoint,
  type TrainerState,
  writeTrainerState,
  writeTrainingArgs,
} from "./checkpoint.ts";
import { type TrainConfig, validateConfig } from "./config.ts";
import { maxTokenId, prepareData, type PreparedData } from "./data.ts";
import { dpoReference, type MicroBatch, microBatch, OBJECTIVES } from "./objectives.ts";
import { AdamW } from "./optimizer.ts";
import { StepRunner } from "./runner.ts";
import { learningRate, warmupSteps } from "./schedule.ts";
import { loadTrainable, type Trainable } from "./trainable.ts";
import { numel } from "../io/llama_architecture.ts";

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
  /** The trained model: the run folder itself, whose root holds it (a Hugging Face folder or a PEFT adapter). */
  finalDir: string;
  /** With LoRA and `merge`: the merged full model (`<out>/merged`). */
  mergedDir?: string;
  /** Optimizer steps taken in total, earlier processes of a resumed run included. */
  steps: number;
  /** Optimizer steps this call took (0 when it resumed a finished run). */
  stepsTaken: number;
  /** Steps the run was planned for. */
  totalSteps: number;
  /** Training loss of the first step of this process. */
  firstLoss?: number;
  /** Training loss of the last step of this process. */
  lastLoss?: number;
  /** The last evaluation loss, when there was evaluation. */
  lastEvalLoss?: number;
  /** The run's `metrics.jsonl`: one line per log_history entry (training logs, evaluations, the summary). */
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

/** A `*_steps` setting in steps: below 1 it is a ratio of the total, rounded up, as the Trainer reads it. */
function stepsOf(every: number, totalSteps: number): number {
  return every < 1 ? Math.max(1, Math.ceil(every * totalSteps)) : every;
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
  const data = await prepareData(cfg, tok, (m) => say(m));
  say(describeData(data));

  // --- the schedule: steps, batches, warm-up, and when to log, evaluate and save
  const padId = tok.padId ?? tok.eosId ?? 0;
  const perEpoch = batchesPerEpoch(data.train.length, { batchSize: cfg.batchSize, seed: cfg.seed, padId });
  const stepsPerEpoch = Math.max(1, Math.floor(perEpoch / cfg.gradAccum));
  const totalSteps = cfg.maxSteps > 0 ? cfg.maxSteps : Math.max(1, Math.ceil(stepsPerEpoch * cfg.epochs));
  const epochs = Math.ceil((totalSteps * cfg.gradAccum) / perEpoch) + 1;
  const batching: BatchingOptions = {
    batchSize: cfg.batchSize,
    seed: cfg.seed,
    padId,
    padMultiple: cfg.padMultiple,
    epochs,
  };
  const warmup = warmupSteps(totalSteps, cfg.warmupSteps, cfg.warmupRatio);
  const schedule = {
    maxSteps: totalSteps,
    numTrainEpochs: Math.ceil(totalSteps / stepsPerEpoch),
    loggingSteps: stepsOf(cfg.logEvery, totalSteps),
    evalSteps: stepsOf(cfg.evalEvery ?? cfg.logEvery, totalSteps),
    saveSteps: stepsOf(cfg.saveEvery, totalSteps),
    trainBatchSize: cfg.batchSize,
  };
  const fingerprint = await runFingerprint(cfg, data);

  // --- the model and its optimizer, from the base model or a checkpoint
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
  let state = freshTrainerState(schedule, fingerprint);
  if (start.from) {
    const resumed = await resumeCheckpoint(start.from.dir, opt, fingerprint);
    state = { ...resumed, max_steps: totalSteps, num_train_epochs: schedule.numTrainEpochs };
    say(`resuming from ${start.from.dir} at step ${state.global_step}`);
  }
  await writeTrainingArgs(cfg, modelDir);
  const metricsFile = `${cfg.out}/${RUN_FILES.metrics}`;
  // A resumed run rewrites the lines past its checkpoint (and an earlier summary); a line cut by a kill is
  // removed (io/jsonl.ts).
  const metrics = await JsonlLog.open(metricsFile, {
    keep: (row) => (row.value.step as number) <= state.global_step && row.value.train_runtime === undefined,
    warn: (m) => log.info(`[${cfg.objective}] warning: ${m}`),
  });
  const logEntry = async (entry: LogEntry) => {
    state.log_history.push(entry);
    await metrics.append(entry);
  };

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
  const evalBatches = () => [...batchesOf(data, { ...batching, epochs: 1 }, { epoch: 0, batch: 0 }, true)];
  const evaluate = async (): Promise<LogEntry> => {
    const t0 = performance.now();
    const batches = evalBatches();
    const values = await runner.evaluate(batches.map((b) => microBatch(b.batch, settings, reference?.eval)));
    const seconds = (performance.now() - t0) / 1000;
    return {
      ...values,
      eval_runtime: round(seconds, 4),
      eval_samples_per_second: round(data.eval.length / seconds, 3),
      eval_steps_per_second: round(batches.length / seconds, 3),
    };
  };
  const flopsPerToken = 6 * nonEmbeddingParams(trainable);

  // --- the loop: one optimizer step of `gradAccum` micro-batches per iteration
  const result: TrainResult = {
    finalDir: cfg.out,
    steps: state.global_step,
    stepsTaken: 0,
    totalSteps,
    metricsFile,
  };
  const own = state.kotransfer;
  const batches = batchesOf(data, batching, own.data_position, false);
  const started = performance.now() - own.elapsed_s * 1000;
  let stepsThisProcess = 0;
  while (state.global_step < totalSteps) {
    const t0 = performance.now();
    const mbs: MicroBatch[] = [];
    for (let i = 0; i < cfg.gradAccum; i++) {
      const next = batches.next();
      if (next.done) break;
      mbs.push(microBatch(next.value.batch, settings, reference?.train));
      own.data_position = next.value.next;
    }
    if (mbs.length === 0) break;
    const lr = learningRate(cfg.schedule, cfg.lr, state.global_step, warmup, totalSteps);
    const { values, gradNorm } = await runner.step(mbs, lr, state.global_step + 1);
    if (!Number.isFinite(values.loss)) {
      throw new Error(nonFiniteLoss(values.loss, state.global_step + 1, stepsThisProcess + 1));
    }

    const tokens = sum(mbs.map((mb) => mb.batch.tokens));
    state.global_step++;
    stepsThisProcess++;
    result.stepsTaken = stepsThisProcess;
    state.num_input_tokens_seen += tokens;
    state.total_flos += flopsPerToken * tokens;
    state.epoch = own.data_position.epoch + own.data_position.batch / perEpoch;
    own.elapsed_s = (performance.now() - started) / 1000;
    own.loss_sum += values.loss;
    const pending = own.pending;
    pending.steps++;
    for (const n of runner.metricNames) pending.sums[n] = (pending.sums[n] ?? 0) + values[n];
    pending.tokens += tokens;
    pending.seconds += (performance.now() - t0) / 1000;
    result.firstLoss ??= values.loss;
    result.lastLoss = values.loss;

    const last = state.global_step === totalSteps;
    const every = (n: number) => state.global_step % n === 0;
    if (every(schedule.loggingSteps) || last) {
      const entry = trainLogEntry(runner.metricNames, pending, gradNorm, lr, state);
      own.pending = { steps: 0, sums: {}, tokens: 0, seconds: 0 };
      await logEntry(entry);
      log.progress(progressLine(cfg.objective, entry, state, totalSteps));
    }
    const evalNow = cfg.evalStrategy === "steps"
      ? every(schedule.evalSteps)
      : cfg.evalStrategy === "epoch" && every(stepsPerEpoch);
    if (data.eval.length > 0 && cfg.evalStrategy !== "no" && (evalNow || last)) {
      const ev = await evaluate();
      result.lastEvalLoss = ev.eval_loss;
      await logEntry({ ...ev, epoch: round(state.epoch, 4), step: state.global_step });
      say(`step ${state.global_step} eval_loss ${ev.eval_loss.toFixed(4)}`);
    }
    const stopping = opts.stopAfter !== undefined && stepsThisProcess >= opts.stopAfter;
    if (every(schedule.saveSteps) || last || stopping) {
      await saveCheckpoint(gpu, cfg.out, trainable, opt, state, cfg);
    }
    if (stopping) {
      result.steps = state.global_step;
      return result;
    }
  }

  // --- the trained model at the root, and the Trainer's closing summary
  result.steps = state.global_step;
  const saved = await saveFinal(gpu, cfg.out, trainable, { dtype: cfg.saveDtype, merge: cfg.merge });
  result.mergedDir = saved.mergedDir;
  const runtime = Math.max(own.elapsed_s, 1e-9);
  await logEntry({
    train_runtime: round(runtime, 4),
    train_samples_per_second: round((state.global_step * cfg.batchSize * cfg.gradAccum) / runtime, 3),
    train_steps_per_second: round(state.global_step / runtime, 3),
    total_flos: state.total_flos,
    train_loss: own.loss_sum / Math.max(1, state.global_step),
    epoch: round(state.epoch, 4),
    step: state.global_step,
  });
  await writeTrainerState(cfg.out, state);
  say(
    `saved the model in ${saved.finalDir}${
      saved.mergedDir ? ` and the merged model in ${saved.mergedDir}` : ""
    }`,
  );
  return result;
}

/**
 * A training entry of `log_history`, as TRL logs it: each metric averaged over the steps since the last
 * entry, the last step's gradient norm and learning rate, the tokens seen, the epoch and step (and the
 * toolkit's throughput and elapsed time beside them).
 */
function trainLogEntry(
  names: readonly string[],
  pending: TrainerState["kotransfer"]["pending"],
  gradNorm: number,
  lr: number,
  state: TrainerState,
): LogEntry {
  const entry: LogEntry = {};
  for (const n of names) entry[n] = pending.sums[n] / pending.steps;
  return Object.assign(entry, {
    grad_norm: gradNorm,
    learning_rate: lr,
    num_tokens: state.num_input_tokens_seen,
    tokens_per_second: pending.tokens / Math.max(pending.seconds, 1e-9),
    elapsed_s: round(state.kotransfer.elapsed_s, 3),
    epoch: round(state.epoch, 4),
    step: state.global_step,
  });
}

/** Parameters the Trainer's FLOP estimate counts: all but the input embedding (adapters included). */
function nonEmbeddingParams(t: Trainable): number {
  const specs = [...t.loaded.params.specs, ...(t.lora?.params.specs ?? [])];
  return specs.filter((p) => p.name !== "model.embed_tokens.weight").reduce((n, p) => n + numel(p.shape), 0);
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
    return `loss is ${loss} at step ${step}, before this run changed any weight (so not --learning_rate): the loaded ` +
      "weights are finite, so check the data (a batch with no tokens to learn?) and the model's config";
  }
  return `loss became ${loss} at step ${step}; lower --learning_rate or check the data`;
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
  const rate = state.global_step / Math.max(state.kotransfer.elapsed_s, 1e-9);
  const eta = (total - state.global_step) / rate;
  const shown = OBJECTIVES[kind].progress.map(([label, metric, digits]) =>
    ` ${label} ${r[metric].toFixed(digits)}`
  );
  return `[${kind}] step ${state.global_step}/${total} loss ${r.loss.toFixed(4)}${shown.join("")} lr ${
    r.learning_rate.toExponential(2)
  } | ${Math.round(r.tokens_per_second).toLocaleString("en-US")} tok/s | ETA ${formatDuration(eta)}`;
}
