/**
 * The optimizer: AdamW over every trainable arena with global-norm clipping (torch.optim.AdamW after
 * torch.nn.utils.clip_grad_norm_), as recorded dispatches, and its state (the moments) in and out for
 * checkpoints.
 *
 * @module
 */
import type { Dispatch, Gpu, Tensor } from "../gpu/runtime.ts";
import { readRows, writeRows } from "../gpu/row_blocks.ts";
import { adamw, ADAMW_HYPER_LENGTH, adamwHyper } from "../kernels/adamw.ts";
import { fill } from "../kernels/elementwise.ts";
import { gradNormSquared } from "../kernels/gradnorm.ts";
import type { ParamSet } from "../model/params.ts";

/** AdamW settings (torch.optim.AdamW's names). */
export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Applied to groups whose parameters decay (not to biases and norm weights). */
  weightDecay?: number;
  /** Decay every parameter, as a bare torch.optim.AdamW over `model.parameters()` does. */
  decayAll?: boolean;
  /** Clip the global gradient norm to this value (torch.nn.utils.clip_grad_norm_); none when absent. */
  maxGradNorm?: number;
}

/** AdamW's state: the first (m) and second (v) moment of every parameter, by Hugging Face name. */
export interface AdamWMoments {
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

/**
 * AdamW over every trainable arena of one or more parameter sets: one gradient-norm reduction and one
 * dispatch per arena chunk. The step-dependent values live in `hyper`, so the dispatches are recorded once.
 *
 * @example
 * ```ts
 * const opt = new AdamW(gpu, [params], { weightDecay: 0.01, maxGradNorm: 1 });
 * opt.setStep(1, 1e-4);
 * gpu.run([...opt.zeroGrads(), ...forwardAndBackward, ...opt.step()]);
 * ```
 */
export class AdamW {
  readonly gpu: Gpu;
  readonly sets: ParamSet[];
  readonly opts: Required<Omit<AdamWOptions, "maxGradNorm">> & { maxGradNorm?: number };
  readonly hyper: Tensor;
  /** Σ g² over every gradient, written by each step (read it to log the gradient norm). */
  readonly gradNormSq: Tensor;
  #step?: Dispatch[];
  #zero?: Dispatch[];

  constructor(gpu: Gpu, sets: ParamSet[], opts: AdamWOptions = {}) {
    for (const s of sets) if (!s.trainable) throw new Error("AdamW needs trainable parameter sets");
    this.gpu = gpu;
    this.sets = sets;
    this.opts = {
      beta1: opts.beta1 ?? 0.9,
      beta2: opts.beta2 ?? 0.999,
      eps: opts.eps ?? 1e-8,
      weightDecay: opts.weightDecay ?? 0,
      decayAll: opts.decayAll ?? false,
      maxGradNorm: opts.maxGradNorm,
    };
    this.hyper = gpu.tensor(ADAMW_HYPER_LENGTH, "f32", "adamw.hyper");
    this.gradNormSq = gpu.tensor(1, "f32", "grad.normsq");
  }

  /** Writes step `step` (1-based, for bias correction) and its learning rate. */
  setStep(step: number, lr: number): void {
    this.gpu.write(this.hyper, adamwHyper(step, lr, this.opts.beta1, this.opts.beta2, this.opts.eps));
  }

  #groups() {
    return this.sets.flatMap((s) => s.groups);
  }

  /** Dispatches setting every gradient to zero (once per optimizer step, before accumulating). */
  zeroGrads(): Dispatch[] {
    this.#zero ??= this.#groups().flatMap((g) =>
      g.grads!.views().map((x) => fill(this.gpu, { x, n: x.length, value: 0 }))
    );
    return this.#zero;
  }

  /** Dispatches: the global gradient norm, then AdamW over every chunk (clipped when configured). */
  step(): Dispatch[] {
    if (!this.#step) {
      const groups = this.#groups();
      const out: Dispatch[] = gradNormSquared(this.gpu, {
        grads: groups.flatMap((g) => g.grads!.views()),
        out: this.gradNormSq,
      });
      for (const g of groups) {
        const [values, grads, m, v] = [g.values.views(), g.grads!.views(), g.m!.views(), g.v!.views()];
        values.forEach((param, i) => {
          out.push(adamw(this.gpu, {
            param,
            grad: grads[i],
            m: m[i],
            v: v[i],
            n: param.length,
            hyper: this.hyper,
            weightDecay: g.decay || this.opts.decayAll ? this.opts.weightDecay : 0,
            gradNormSq: this.opts.maxGradNorm !== undefined ? this.gradNormSq : undefined,
            maxGradNorm: this.opts.maxGradNorm,
          }));
        });
      }
      this.#step = out;
    }
    return this.#step;
  }

  /** The moments m and v of every parameter, by name (the state a checkpoint saves). */
  async readMoments(): Promise<AdamWMoments> {
    const m = new Map<string, Float32Array>(), v = new Map<string, Float32Array>();
    for (const set of this.sets) {
      const names = set.specs.map((s) => s.name);
      const data = await readRows(this.gpu, [
        ...names.map((n) => set.blocks(n, "m")),
        ...names.map((n) => set.blocks(n, "v")),
      ]);
      names.forEach((n, i) => {
        m.set(n, data[i] as Float32Array);
        v.set(n, data[names.length + i] as Float32Array);
      });
    }
    return { m, v };
  }

  /** Writes saved moments back; `source` names where they came from when one is missing. */
  writeMoments({ m, v }: AdamWMoments, source: string): void {
    for (const set of this.sets) {
      for (const spec of set.specs) {
        const mm = m.get(spec.name), vv = v.get(spec.name);
        if (!mm || !vv) throw new Error(`${source} lacks the moments of "${spec.name}"`);
        writeRows(this.gpu, set.blocks(spec.name, "m"), mm);
        writeRows(this.gpu, set.blocks(spec.name, "v"), vv);
      }
    }
  }
}
