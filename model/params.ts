/**
 * Parameters of a model on the GPU, stored in a few flat arenas (one per optimizer group) as llm.c does, so
 * AdamW and gradient clipping are one dispatch per arena and checkpoints are straight copies. Which
 * parameters a Llama has, and their shapes, is `io/llama_architecture.ts`'s `llamaParamSpecs`.
 *
 * @module
 */
import { Arena, type Gpu, type Tensor } from "../gpu/runtime.ts";
import { numel, type ParamSpec } from "../io/llama_architecture.ts";

/**
 * A set of tensors with the same layout in several arenas: the values, and (for trainable sets) their
 * gradients and AdamW moments. Tensors are grouped by weight decay so each group is a few flat buffers.
 *
 * @example
 * ```ts
 * const set = ParamSet.create(gpu, llamaParamSpecs(dims), { trainable: true });
 * set.value("model.norm.weight"); // a Tensor
 * ```
 */
export class ParamSet {
  /** Every parameter's name, shape and decay flag, in the order given at creation. */
  readonly specs: ParamSpec[];
  /** Whether the set has gradients and AdamW moments. */
  readonly trainable: boolean;
  /** Value tensors by parameter name. */
  readonly values: Map<string, Tensor> = new Map();
  /** Gradient tensors by parameter name (trainable sets only). */
  readonly grads: Map<string, Tensor> = new Map();
  /** AdamW first moments by parameter name (trainable sets only). */
  readonly m: Map<string, Tensor> = new Map();
  /** AdamW second moments by parameter name (trainable sets only). */
  readonly v: Map<string, Tensor> = new Map();
  /** One entry per optimizer group: the arenas holding values, grads and moments of its tensors. */
  readonly groups: { decay: boolean; values: Arena; grads?: Arena; m?: Arena; v?: Arena }[] = [];

  private constructor(specs: ParamSpec[], trainable: boolean) {
    this.specs = specs;
    this.trainable = trainable;
  }

  /**
   * Allocates values (and, when trainable, grads and moments) for `specs`. `dtypeOf` may hold some values
   * as f16 (frozen base weights); gradients and moments are always f32.
   */
  static create(
    gpu: Gpu,
    specs: ParamSpec[],
    opts: { trainable: boolean; label?: string; dtypeOf?: (spec: ParamSpec) => "f32" | "f16" },
  ): ParamSet {
    const set = new ParamSet(specs, opts.trainable);
    const label = opts.label ?? "params";
    for (const decay of [true, false]) {
      const members = specs.filter((s) => s.decay === decay);
      if (members.length === 0) continue;
      const tag = `${label}.${decay ? "decay" : "nodecay"}`;
      const group = {
        decay,
        values: new Arena(gpu, tag),
        grads: opts.trainable ? new Arena(gpu, `${tag}.grad`) : undefined,
        m: opts.trainable ? new Arena(gpu, `${tag}.m`) : undefined,
        v: opts.trainable ? new Arena(gpu, `${tag}.v`) : undefined,
      };
      for (const s of members) {
        const n = numel(s.shape);
        set.values.set(s.name, group.values.alloc(n, opts.dtypeOf?.(s) ?? "f32", s.name, s.shape));
        if (opts.trainable) {
          set.grads.set(s.name, group.grads!.alloc(n, "f32", `${s.name}.grad`, s.shape));
          set.m.set(s.name, group.m!.alloc(n, "f32", `${s.name}.m`, s.shape));
          set.v.set(s.name, group.v!.alloc(n, "f32", `${s.name}.v`, s.shape));
        }
      }
      for (const a of [group.values, group.grads, group.m, group.v]) a?.finish();
      set.groups.push(group);
    }
    return set;
  }

  /** The value tensor of `name`; throws naming the parameter when it is not in this set. */
  value(name: string): Tensor {
    const t = this.values.get(name);
    if (!t) throw new Error(`no parameter named "${name}"`);
    return t;
  }

  /** Releases every buffer of this set. */
  destroy(): void {
    for (const g of this.groups) {
      for (const a of [g.values, g.grads, g.m, g.v]) a?.chunks.forEach((c) => c.buffer?.destroy());
    }
  }

  /** Total number of elements. */
  get size(): number {
    return this.specs.reduce((s, p) => s + numel(p.shape), 0);
  }
}
