/**
 * The objectives' host side: everything that differs between SFT, DPO and ORPO outside their kernel
 * (kernels/objective.ts, which computes the loss, the metrics and d(loss)/d(logp) on the GPU).
 *
 * - what each trains on, TRL's default learning rate, and what its progress line shows ({@link OBJECTIVES});
 * - the masks and reference values of a micro-batch ({@link microBatch}): ORPO's NLL mask, DPO's reference
 *   sums, the pair count;
 * - the kernel's inputs on the GPU and its per-step normalisers, summed over the micro-batches of a step
 *   so accumulated gradients equal one big batch's ({@link ObjectiveInputs});
 * - DPO's reference log-probs, computed once from the starting weights ({@link dpoReference}).
 *
 * @module
 */
import { type Dispatch, type Gpu, prefix, type Tensor } from "../gpu/runtime.ts";
import { writeJsonAtomic } from "../io/atomic.ts";
import {
  type DpoLossType,
  OBJECTIVE_HYPER_LENGTH,
  OBJECTIVE_METRICS,
  objectiveDispatches,
  objectiveHyper,
  type ObjectiveKind,
} from "../kernels/objective.ts";
import type { StepBuffers } from "../model/llama.ts";
import { type Batch, type BatchingOptions, preferenceBatches } from "./batching.ts";
import type { PreparedData } from "./data.ts";
import type { PreferenceExample } from "./examples.ts";

/**
 * DPO's loss variants.
 * @example
 * ```ts
 * DPO_LOSS_TYPES.includes("ipo"); // true
 * ```
 */
export const DPO_LOSS_TYPES: readonly DpoLossType[] = ["sigmoid", "ipo", "hinge"];

/** What ORPO's NLL covers: the whole chosen sequence, prompt included (TRL), or its completion only. */
export type OrpoNll = "whole" | "completion";

/**
 * Every {@link OrpoNll}.
 * @example
 * ```ts
 * ORPO_NLL.includes("completion"); // true
 * ```
 */
export const ORPO_NLL: readonly OrpoNll[] = ["whole", "completion"];

/** The objective's settings. */
export interface ObjectiveSettings {
  objective: ObjectiveKind;
  /** DPO's β or ORPO's λ. */
  beta: number;
  lossType?: DpoLossType;
  /** ORPO: NLL over the whole chosen sequence (TRL) or the completion only. */
  orpoNll?: OrpoNll;
}

/** What an objective is beyond its kernel, as the command line and the progress line show it. */
export interface ObjectiveInfo {
  /** Its name in the help text. */
  title: string;
  /** The rows it trains on: SFT rows, or preference pairs. */
  data: "sft" | "preference";
  /** TRL's default learning rate for it. */
  defaultLr: number;
  /** Metrics the progress line shows after the loss: label, metric name, decimals. */
  progress: readonly (readonly [label: string, metric: string, digits: number])[];
}

const PAIR_PROGRESS = [["margin", "rewards/margins", 3], ["acc", "rewards/accuracies", 2]] as const;

/**
 * SFT, DPO and ORPO as the command line, the data reader and the progress line see them.
 * @example
 * ```ts
 * OBJECTIVES.orpo.defaultLr; // 1e-6, TRL's
 * ```
 */
export const OBJECTIVES: { readonly [K in ObjectiveKind]: ObjectiveInfo } = {
  sft: {
    title: "supervised fine-tuning",
    data: "sft",
    defaultLr: 2e-5,
    progress: [["acc", "mean_token_accuracy", 3]],
  },
  dpo: {
    title: "Direct Preference Optimization",
    data: "preference",
    defaultLr: 1e-6,
    progress: PAIR_PROGRESS,
  },
  orpo: {
    title: "Odds Ratio Preference Optimization",
    data: "preference",
    defaultLr: 1e-6,
    progress: [["nll", "nll_loss", 4], ...PAIR_PROGRESS],
  },
};

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

/**
 * The objective kernel's inputs on the GPU: the loss mask, ORPO's NLL mask, DPO's reference sums and the
 * per-step values (normalisers, β or λ); records the kernel's dispatches.
 * @example
 * ```ts
 * const inputs = new ObjectiveInputs(gpu, settings, model.opts.maxTokens, 16);
 * inputs.setStep(mbs);
 * inputs.write(mbs[0]);
 * gpu.run(inputs.dispatches(B, T, io, metrics));
 * ```
 */
export class ObjectiveInputs {
  readonly gpu: Gpu;
  readonly settings: ObjectiveSettings;
  readonly #lossMask: Tensor;
  readonly #nllMask: Tensor;
  readonly #refLogp: Tensor;
  readonly #hyper: Tensor;

  /** `maxTokens`: most rows of one micro-batch; `maxSequences`: most sequences (pairs count twice). */
  constructor(gpu: Gpu, settings: ObjectiveSettings, maxTokens: number, maxSequences: number) {
    this.gpu = gpu;
    this.settings = settings;
    this.#lossMask = gpu.tensor(maxTokens, "f32", "loss.mask");
    this.#nllMask = gpu.tensor(maxTokens, "f32", "nll.mask");
    this.#refLogp = gpu.tensor(maxSequences, "f32", "ref.logp");
    this.#hyper = gpu.tensor(OBJECTIVE_HYPER_LENGTH, "f32", "objective.hyper");
  }

  /** Metric names of the objective, in the kernel's slot order. */
  get metricNames(): readonly string[] {
    return OBJECTIVE_METRICS[this.settings.objective];
  }

  /** Writes the normalisers over all micro-batches of a step, so accumulated gradients equal one batch's. */
  setStep(mbs: readonly MicroBatch[]): void {
    const total = (f: (m: MicroBatch) => number) => Math.max(1, mbs.reduce((a, m) => a + f(m), 0));
    this.gpu.write(
      this.#hyper,
      objectiveHyper(this.settings.objective, {
        normTokens: total((m) => m.batch.lossTokens),
        normPairs: total((m) => m.pairs),
        normNllTokens: total((m) => m.nllTokens),
        beta: this.settings.beta,
        lambda: this.settings.beta,
      }),
    );
  }

  #greedyOf(io: StepBuffers): Tensor {
    if (!io.greedy) {
      throw new Error("SFT needs the step buffers' greedy matches: allocStep({ greedy: true })");
    }
    return io.greedy;
  }

  /** Writes one micro-batch's masks and reference sums (its tokens go through the model's `writeBatch`). */
  write(mb: MicroBatch): void {
    this.gpu.write(this.#lossMask, mb.lossMask);
    if (mb.nllMask) this.gpu.write(this.#nllMask, mb.nllMask);
    if (mb.refLogp) this.gpu.write(this.#refLogp, mb.refLogp);
  }

  /** The kernel over `S` sequences of `T` tokens: loss and metrics (added into `metrics`), then `io.dlogp`. */
  dispatches(S: number, T: number, io: StepBuffers, metrics: Tensor): Dispatch[] {
    const s = this.settings;
    return objectiveDispatches(this.gpu, {
      kind: s.objective,
      lossType: s.objective === "dpo" ? s.lossType : undefined,
      logp: prefix(io.logp, S * T),
      mask: prefix(this.#lossMask, S * T),
      nllMask: s.objective === "orpo" ? prefix(this.#nllMask, S * T) : undefined,
      refLogp: s.objective === "dpo" ? prefix(this.#refLogp, S) : undefined,
      greedy: s.objective === "sft" ? prefix(this.#greedyOf(io), S * T) : undefined,
      hyper: this.#hyper,
      metrics,
      dlogp: prefix(io.dlogp, S * T),
      sequences: S,
      T,
    });
  }
}

/** DPO's reference sums, `[2·i]` chosen and `[2·i + 1]` rejected of example i, for both splits. */
export interface ReferenceLogps {
  train: Float32Array;
  eval: Float32Array;
}

/**
 * Summed completion log-probs of every pair under the starting weights (DPO's frozen reference model),
 * computed once before training through `runner` (a StepRunner: its forward pass, per-token log-probs) and
 * cached in `file`, keyed by the run's fingerprint.
 * @example
 * ```ts
 * const reference = await dpoReference(runner, data, batching, "runs/dpo/reference_logps.json", fp, log);
 * ```
 */
export async function dpoReference(
  runner: { logps(batch: Batch): Promise<Float32Array> },
  data: PreparedData & { kind: "preference" },
  batching: BatchingOptions,
  file: string,
  fingerprint: string,
  log: (message: string) => void,
): Promise<ReferenceLogps> {
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
      log(`[dpo] ignoring unreadable ${file}: ${(e as Error).message}`);
    }
  }
  const t0 = performance.now();
  const compute = async (examples: PreferenceExample[]) => {
    const out = new Float32Array(2 * examples.length);
    const once = { ...batching, epochs: 1, shuffle: false };
    for (const { batch } of preferenceBatches(examples, once)) {
      const { B, T } = batch;
      const logp = await runner.logps(batch);
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
  log(
    `[dpo] reference log-probs of ${data.train.length + data.eval.length} pairs in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s`,
  );
  return { train, eval: evalRef };
}
