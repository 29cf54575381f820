/**
 * One optimizer step, one evaluation pass, or one forward pass of log-probs on the GPU, for any objective.
 * A step writes and submits its micro-batches one by one (forward → objective → backward, gradients
 * accumulating), then clipping + AdamW with the last one, then reads back the metrics and the gradient norm
 * once. Programs are recorded once per batch shape and replayed.
 *
 * @module
 */
import { type Gpu, prefix, ProgramCache, type Tensor } from "../gpu/runtime.ts";
import { writeBatch } from "../model/inputs.ts";
import type { Llama, StepBuffers } from "../model/llama.ts";
import type { Batch } from "./batching.ts";
import { type MicroBatch, ObjectiveInputs, type ObjectiveSettings } from "./objectives.ts";
import type { AdamW } from "./optimizer.ts";

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
  readonly #objective: ObjectiveInputs;
  readonly #metrics: Tensor;
  readonly #evalMetrics: Tensor;
  readonly #programs = new ProgramCache();

  /** `maxSequences`: most rows of one micro-batch (pairs count twice). */
  constructor(gpu: Gpu, model: Llama, opt: AdamW, settings: ObjectiveSettings, maxSequences: number) {
    this.gpu = gpu;
    this.model = model;
    this.opt = opt;
    this.settings = settings;
    this.io = model.allocStep({ greedy: settings.objective === "sft" });
    this.#objective = new ObjectiveInputs(gpu, settings, model.opts.maxTokens, maxSequences);
    this.#metrics = gpu.tensor(16, "f32", "metrics");
    this.#evalMetrics = gpu.tensor(16, "f32", "eval.metrics");
  }

  /** Metric names of the objective, in slot order. */
  get metricNames(): readonly string[] {
    return this.#objective.metricNames;
  }

  #forward(B: number, T: number) {
    return this.#programs.get(`fwd:${B}x${T}`, () => this.model.forward(B, T, this.io));
  }

  #write(mb: MicroBatch): void {
    writeBatch(this.gpu, this.io, mb.batch);
    this.#objective.write(mb);
  }

  /** One optimizer step (1-based `step`, learning rate `lr`) over `mbs`; reads back metrics once. */
  async step(mbs: MicroBatch[], lr: number, step: number): Promise<StepMetrics> {
    const g = this.gpu, io = this.io, model = this.model;
    g.write(this.#metrics, new Float32Array(this.#metrics.length));
    this.#objective.setStep(mbs);
    this.opt.setStep(step, lr);
    // One submission per micro-batch (its inputs are written just before it); the last one also clips and
    // updates, so a step without accumulation is a single command encoder.
    mbs.forEach((mb, i) => {
      const { B, T } = mb.batch;
      this.#write(mb);
      g.run([
        ...(i === 0 ? this.opt.zeroGrads() : []),
        ...this.#forward(B, T),
        ...this.#programs.get(`obj:${B}x${T}`, () => this.#objective.dispatches(B, T, io, this.#metrics)),
        ...this.#programs.get(`bwd:${B}x${T}`, () => model.backward(B, T, io)),
        ...(i === mbs.length - 1 ? this.opt.step() : []),
      ]);
    });
    const [m, normSq] = await g.readMany([this.#metrics, this.opt.gradNormSq]) as Float32Array[];
    return {
      values: Object.fromEntries(this.metricNames.map((n, i) => [n, m[i]])),
      gradNorm: Math.sqrt(normSq[0]),
    };
  }

  /** The objective's metrics over `mbs` without training, named as TRL logs them (`eval_rewards/chosen`). */
  async evaluate(mbs: MicroBatch[]): Promise<Record<string, number>> {
    const g = this.gpu, io = this.io;
    g.write(this.#evalMetrics, new Float32Array(this.#evalMetrics.length));
    this.#objective.setStep(mbs);
    for (const mb of mbs) {
      const { B, T } = mb.batch;
      this.#write(mb);
      g.run([
        ...this.#forward(B, T),
        ...this.#programs.get(
          `evalobj:${B}x${T}`,
          () => this.#objective.dispatches(B, T, io, this.#evalMetrics),
        ),
      ]);
    }
    const values = await g.read(this.#evalMetrics);
    return Object.fromEntries(this.metricNames.map((n, i) => [`eval_${n}`, values[i]]));
  }

  /** Per-token log-probs of a batch's targets under the current weights (`B·T` rows, forward only). */
  async logps(batch: Batch): Promise<Float32Array> {
    const { B, T } = batch;
    writeBatch(this.gpu, this.io, batch);
    this.gpu.run(this.#forward(B, T));
    return await this.gpu.readF32(prefix(this.io.logp, B * T));
  }
}
