/**
 * Parameters of a model on the GPU, stored in a few flat arenas (one per optimizer group) as llm.c does, so
 * AdamW and gradient clipping are one dispatch per arena chunk and checkpoints are straight copies. Which
 * parameters a Llama has, and their shapes, is `io/llama_architecture.ts`'s `llamaParamSpecs`.
 *
 * A parameter larger than one binding (a 128k-vocabulary embedding) is split at row boundaries into blocks
 * (`gpu/row_blocks.ts`), each its own arena allocation, so every arena chunk still fits a binding and the
 * optimizer, which works chunk by chunk, never sees the difference. Its gradient and moments are split at
 * the same rows.
 *
 * @module
 */
import { Arena, DTYPE_BYTES, type Gpu, type Tensor } from "../gpu/runtime.ts";
import { type RowBlocks, rowBlockSizes, rowsAndCols, wholeTensor } from "../gpu/row_blocks.ts";
import { numel, type ParamSpec } from "../io/llama_architecture.ts";

/** Which of a parameter's tensors: its value, gradient, or AdamW first or second moment. */
export type ParamPart = "value" | "grad" | "m" | "v";

/**
 * A set of tensors with the same layout in several arenas: the values, and (for trainable sets) their
 * gradients and AdamW moments. Tensors are grouped by weight decay so each group is a few flat buffers.
 *
 * @example
 * ```ts
 * const set = ParamSet.create(gpu, llamaParamSpecs(dims), { trainable: true });
 * set.value("model.norm.weight"); // a Tensor
 * set.blocks("model.embed_tokens.weight").blocks.length; // > 1 when the embedding exceeds a binding
 * ```
 */
export class ParamSet {
  /** Every parameter's name, shape and decay flag, in the order given at creation. */
  readonly specs: ParamSpec[];
  /** Whether the set has gradients and AdamW moments. */
  readonly trainable: boolean;
  /** Value tensors by parameter name. */
  readonly values: Map<string, RowBlocks> = new Map();
  /** Gradient tensors by parameter name (trainable sets only). */
  readonly grads: Map<string, RowBlocks> = new Map();
  /** AdamW first moments by parameter name (trainable sets only). */
  readonly m: Map<string, RowBlocks> = new Map();
  /** AdamW second moments by parameter name (trainable sets only). */
  readonly v: Map<string, RowBlocks> = new Map();
  /** One entry per optimizer group: the arenas holding values, grads and moments of its tensors. */
  readonly groups: { decay: boolean; values: Arena; grads?: Arena; m?: Arena; v?: Arena }[] = [];

  private constructor(specs: ParamSpec[], trainable: boolean) {
    this.specs = specs;
    this.trainable = trainable;
  }

  /**
   * Allocates values (and, when trainable, grads and moments) for `specs`. `dtypeOf` may hold some values
   * as f16 (frozen base weights); gradients and moments are always f32. A parameter that would not fit one
   * binding is split into row blocks, the same rows in every arena.
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
        const dtype = opts.dtypeOf?.(s) ?? "f32";
        const { cols } = rowsAndCols(s.shape);
        // Values, gradients and moments share one row split: the widest dtype sets it.
        const widest = opts.trainable ? 4 : DTYPE_BYTES[dtype];
        const sizes = rowBlockSizes(
          rowsAndCols(s.shape).rows,
          cols * widest,
          group.values.chunkBytes,
          s.name,
        );
        set.values.set(s.name, allocBlocks(group.values, s, dtype, sizes, s.name));
        if (opts.trainable) {
          set.grads.set(s.name, allocBlocks(group.grads!, s, "f32", sizes, `${s.name}.grad`));
          set.m.set(s.name, allocBlocks(group.m!, s, "f32", sizes, `${s.name}.m`));
          set.v.set(s.name, allocBlocks(group.v!, s, "f32", sizes, `${s.name}.v`));
        }
      }
      for (const a of [group.values, group.grads, group.m, group.v]) a?.finish();
      set.groups.push(group);
    }
    return set;
  }

  /** One of `name`'s tensors as row blocks; throws naming the parameter when it is not in this set. */
  blocks(name: string, part: ParamPart = "value"): RowBlocks {
    const map = part === "value"
      ? this.values
      : part === "grad"
      ? this.grads
      : part === "m"
      ? this.m
      : this.v;
    const t = map.get(name);
    if (!t) {
      throw new Error(
        part === "value" || this.values.has(name)
          ? `no ${part === "value" ? "parameter" : `${part} of the parameter`} named "${name}"`
          : `no parameter named "${name}"`,
      );
    }
    return t;
  }

  /** The value tensor of `name` whole (throws when it is split into row blocks; see {@link blocks}). */
  value(name: string): Tensor {
    return wholeTensor(this.blocks(name));
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

/** One arena allocation per row block. */
function allocBlocks(
  arena: Arena,
  spec: ParamSpec,
  dtype: "f32" | "f16",
  sizes: number[],
  label: string,
): RowBlocks {
  const { rows, cols } = rowsAndCols(spec.shape);
  let row0 = 0;
  const blocks = sizes.map((n, i) => {
    const blockLabel = sizes.length > 1 ? `${label}[${i}]` : label;
    const shape = spec.shape.length > 1 ? [n, ...spec.shape.slice(1)] : [n];
    const block = { row0, rows: n, tensor: arena.alloc(n * cols, dtype, blockLabel, shape) };
    row0 += n;
    return block;
  });
  return { rows, cols, dtype, shape: spec.shape, label, blocks };
}
