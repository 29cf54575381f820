/**
 * One optimizer step and one evaluation pass on the GPU, for any objective: micro-batches are written and
 * submitted one by one (forward → objective → backward, gradients accumulating), then clipping + AdamW, then
 * a single readback of the metrics and the gradient norm. Programs are recorded once per batch shape.
 *
 * @module
 */
import { type Dispatch, type Gpu, prefix, ProgramCache, type Tensor } from "../gpu/runtime.ts";
import {
  type DpoLossType,
  OBJECTIVE_HYPER_LENGTH,
  OBJECTIVE_METRICS,
  objectiveDispatches,
  objectiveHyper,
  type ObjectiveKind,
} from "../kernels/objective.ts";
import { writeBatch } from "../model/inputs.ts";
import type { Llama, StepBuffers } from "../model/llama.ts";
import type { Batch } from "./batching.ts";
import type { AdamW } from "./optimizer.ts";

/** The objective's settings. */
export interface ObjectiveSettings {
  objective: ObjectiveKind;
  /** DPO's β or ORPO's λ. */
  beta: number;
  lossType?: DpoLossType;
  /** ORPO: NLL over the whole chosen sequence (TRL) or the completion only. */
  orpoNll?: "whole" | "completion";
}

/** A batch with the objective's masks (and DPO's reference sums), ready to write. */
export interface MicroBatch {
  batch: Batch;
  lossMask: Float32Array;
  nllMask?: Float32Array;
  refLogp?: Float32Array;
  pairs: number;
  nllTokens: number;
}

/**
 * The objective's inputs for one batch. `ref` holds DPO's reference sums per example, `[2·i]` chosen and
 * `[2·i + 1]` rejected.
 * @example
 * ```ts
 * const mb = microBatch(batch, { objective: "orpo", beta: 0.1, orpoNll: "whole" });
 * ```
 */
export function microBatch(batch: Batch, s: ObjectiveSettings, ref?: Float32Array): MicroBatch {
  const { B, T } = batch;
  const lossMask = Float32Array.from(batch.lossMask);
  const pairs = s.objective === "sft" ? 0 : B / 2;
  const mb: MicroBatch = { batch, lossMask, pairs, nllTokens: 0 };
  if (s.objective === "orpo") {
    // TRL's ORPO takes the NLL over the whole chosen sequence; `completion` restricts it to the answer.
    const nll = new Float32Array(B * T);
    for (let r = 0; r < B * T; r++) {
      const t = r % T;
      nll[r] = s.orpoNll === "completion" ? lossMask[r] : (t + 1 < T && batch.attentionMask[r + 1] ? 1 : 0);
    }
    mb.nllMask = nll;
    for (let r = 0; r < pairs * T; r++) mb.nllTokens += nll[r];
  }
  if (s.objective === "dpo") {
    if (!ref) throw new Error("DPO needs reference log-probs");
    const values = new Float32Array(B);
    batch.exampleIndices.forEach((ex, i) => {
      values[i] = ref[2 * ex];
      values[pairs + i] = ref[2 * ex + 1];
    });
    mb.refLogp = values;
  }
  return mb;
}

/** Metrics of one step, TRL's names. */
export interface StepMetrics {
  values: Record<string, number>;
  gradNorm: number;
}

/**
 * Runs optimizer steps and evaluations for one model, objective and optimizer.
 * @example
 * ```ts
 * const runner = new StepRunner(gpu, model, opt, { objective: "sft", beta: 0.1 }, 8);
 * const { values } = await runner.step([microBatch(batch, settings)], 1e-4, 1);
 * ```
 */
export class StepRunner {
  readonly gpu: Gpu;
  readonly model: Llama;
  readonly opt: AdamW;
  readonly settings: ObjectiveSettings;
  readonly io: StepBuffers;
  readonly #lossMask: Tensor;
  readonly #nllMask: Tensor;
  readonly #refLogp: Tensor;
  readonly #hyper: Tensor;
  readonly #metrics: Tensor;
  readonly #evalMetrics: Tensor;
  readonly #programs = new ProgramCache();

  /** `maxSequences`: most rows of one micro-batch (pairs count twice). */
  constructor(gpu: Gpu, model: Llama, opt: AdamW, settings: ObjectiveSettings, maxSequences: number) {
    this.gpu = gpu;
    this.model = model;
    this.opt = opt;
    this.settings = settings;
    this.io = model.allocStep();
    const rows = model.opts.maxTokens;
    this.#lossMask = gpu.tensor(rows, "f32", "loss.mask");
    this.#nllMask = gpu.tensor(rows, "f32", "nll.mask");
    this.#refLogp = gpu.tensor(maxSequences, "f32", "ref.logp");
    this.#hyper = gpu.tensor(OBJECTIVE_HYPER_LENGTH, "f32", "objective.hyper");
    this.#metrics = gpu.tensor(16, "f32", "metrics");
    this.#evalMetrics = gpu.tensor(16, "f32", "eval.metrics");
  }

  /** Metric names of the objective, in slot order. */
  get metricNames(): readonly string[] {
    return OBJECTIVE_METRICS[this.settings.objective];
  }

  #objective(S: number, T: number, metrics: Tensor): Dispatch[] {
    const s = this.settings, io = this.io;
    return objectiveDispatches(this.gpu, {
      kind: s.objective,
      lossType: s.objective === "dpo" ? s.lossType : undefined,
      logp: prefix(io.logp, S * T),
      mask: prefix(this.#lossMask, S * T),
      nllMask: s.objective === "orpo" ? prefix(this.#nllMask, S * T) : undefined,
      refLogp: s.objective === "dpo" ? prefix(this.#refLogp, S) : undefined,
      hyper: this.#hyper,
      metrics,
      dlogp: prefix(io.dlogp, S * T),
      sequences: S,
      T,
    });
  }

  #write(mb: MicroBatch): void {
    writeBatch(this.gpu, this.io, mb.batch);
    this.gpu.write(this.#lossMask, mb.lossMask);
    if (mb.nllMask) this.gpu.write(this.#nllMask, mb.nllMask);
    if (mb.refLogp) this.gpu.write(this.#refLogp, mb.refLogp);
  }

  /** Normalisers over all micro-batches of a step, so accumulated gradients equal one big batch's. */
  #hyperFor(mbs: MicroBatch[]): Float32Array {
    const total = (f: (m: MicroBatch) => number) => Math.max(1, mbs.reduce((a, m) => a + f(m), 0));
    return objectiveHyper(this.settings.objective, {
      normTokens: total((m) => m.batch.lossTokens),
      normPairs: total((m) => m.pairs),
      normNllTokens: total((m) => m.nllTokens),
      beta: this.settings.beta,
      lambda: this.settings.beta,
    });
  }

  #named(values: Float32Array, prefixName = ""): Record<string, number> {
    return Object.fromEntries(this.metricNames.map((n, i) => [prefixName + n, values[i]]));
  }

  /** One optimizer step (1-based `step`, learning rate `lr`) over `mbs`; reads back metrics once. */
  async step(mbs: MicroBatch[], lr: number, step: number): Promise<StepMetrics> {
    const g = this.gpu, io = this.io, model = this.model;
    g.write(this.#metrics, new Float32Array(this.#metrics.length));
    g.write(this.#hyper, this.#hyperFor(mbs));
    this.opt.setStep(step, lr);
    // One submission per micro-batch (its inputs are written just before it); the last one also clips and
    // updates, so a step without accumulation is a single command encoder.
    mbs.forEach((mb, i) => {
      const { B, T } = mb.batch;
      this.#write(mb);
      g.run([
        ...(i === 0 ? this.opt.zeroGrads() : []),
        ...this.#programs.get(`fwd:${B}x${T}`, () => model.forward(B, T, io)),
        ...this.#programs.get(`obj:${B}x${T}`, () => this.#objective(B, T, this.#metrics)),
        ...this.#programs.get(`bwd:${B}x${T}`, () => model.backward(B, T, io)),
        ...(i === mbs.length - 1 ? this.opt.step() : []),
      ]);
    });
    const [m, normSq] = await g.readMany([this.#metrics, this.opt.gradNormSq]) as Float32Array[];
    return { values: this.#named(m), gradNorm: Math.sqrt(normSq[0]) };
  }

  /** The objective's metrics over `mbs` without training (names prefixed `eval_`, slashes as `_`). */
  async evaluate(mbs: MicroBatch[]): Promise<Record<string, number>> {
    const g = this.gpu, io = this.io, model = this.model;
    g.write(this.#evalMetrics, new Float32Array(this.#evalMetrics.length));
    g.write(this.#hyper, this.#hyperFor(mbs));
    for (const mb of mbs) {
      const { B, T } = mb.batch;
      this.#write(mb);
      g.run([
        ...this.#programs.get(`fwd:${B}x${T}`, () => model.forward(B, T, io)),
        ...this.#programs.get(`evalobj:${B}x${T}`, () => this.#objective(B, T, this.#evalMetrics)),
      ]);
    }
    const values = await g.read(this.#evalMetrics);
    return Object.fromEntries(this.metricNames.map((n, i) => [`eval_${n.replaceAll("/", "_")}`, values[i]]));
  }
}
