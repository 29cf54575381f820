/**
 * The Llama-family decoder on WGSL kernels: forward to per-token log-probs (or full logits) and backward to
 * every parameter's gradient. It reads top to bottom like the model it implements:
 *
 * ```
 * embed → [rmsnorm → q,k,v (+bias) → rope → causal GQA attention → o_proj → +residual
 *          → rmsnorm → gate,up → silu(gate)·up → down_proj → +residual] × L → rmsnorm → lm_head → log-probs
 * ```
 *
 * Nothing here knows about objectives: the backward pass starts from d(loss)/d(log-prob) per token, which
 * the objective layer writes into `dlogp`. Functions here only record dispatches; callers submit them.
 *
 * Sizes beyond one binding: a weight may come as several row blocks (`gpu/row_blocks.ts`): the embedding
 * is looked up block by block, the vocabulary projection makes logits one vocabulary block at a time and
 * merges their softmax statistics, and a split linear layer computes each block's output columns on their
 * own. A pass whose activations exceed a binding runs in groups of whole sequences (`workspace.ts`). With
 * gradient checkpointing only each layer's input is kept, and the backward pass recomputes the layer.
 *
 * @module
 */
import { type Dispatch, type Gpu, prefix, type Tensor } from "../gpu/runtime.ts";
import type { RowBlock, RowBlocks } from "../gpu/row_blocks.ts";
import { wholeTensor } from "../gpu/row_blocks.ts";
import { matmul } from "../kernels/matmul.ts";
import { rmsnormBackward, rmsnormForward } from "../kernels/rmsnorm.ts";
import { embeddingBackward, embeddingForward } from "../kernels/embedding.ts";
import { ropeBackward, ropeForward } from "../kernels/rope.ts";
import { swigluBackward, swigluForward } from "../kernels/swiglu.ts";
import { add, addBias, biasBackward, copy, copyColumns, gatherRows } from "../kernels/elementwise.ts";
import { attentionBackward, attentionForward } from "../kernels/attention.ts";
import { kvScatter } from "../kernels/kvcache.ts";
import {
  LOGPROBS_STAT_FIELDS,
  logprobsBackward,
  logprobsBlockStats,
  logprobsForward,
  logprobsMerge,
} from "../kernels/logprobs.ts";
import { loraSelect } from "../kernels/lora_select.ts";
import { topkCandidateLayout, topLogprobs, topLogprobsBlock, topLogprobsMerge } from "../kernels/topk.ts";
import {
  hasBias,
  layerNormName,
  LINEAR_NAMES,
  type LinearName,
  linearName,
  linearShape,
  type LlamaDims,
  lmHeadName,
} from "../io/llama_architecture.ts";
import {
  activationBlockRows,
  chooseLogitsRows,
  finalWidths,
  gradWidths,
  GROUP_INPUTS,
  type LayerActName,
  layerWidths,
  rowChunks,
  type RowGroup,
  rowGroups,
} from "./workspace.ts";

/** Where the model finds a tensor: parameter values, their gradients (absent = frozen) and LoRA adapters. */
export interface WeightSource {
  /** Value of a parameter by Hugging Face name, as row blocks (one block unless it exceeds a binding). */
  value(name: string): RowBlocks;
  /** Gradient of a parameter, split at the same rows as its value, or undefined when it is frozen. */
  grad(name: string): RowBlocks | undefined;
  /** LoRA adapter of a linear layer (`model.layers.0.self_attn.q_proj`), if it has one. */
  lora?(linear: string): LoraAdapter | undefined;
}

/** A LoRA adapter: y += scale · (x·Aᵀ)·Bᵀ with A [r, in] and B [out, r]. */
export interface LoraAdapter {
  /** A [r, in]: projects the layer's input down to the rank. */
  a: Tensor;
  /** B [out, r]: projects back up to the layer's output. */
  b: Tensor;
  /** Gradient of A, accumulated; absent when the adapter is frozen. */
  gradA?: Tensor;
  /** Gradient of B, accumulated; absent when the adapter is frozen. */
  gradB?: Tensor;
  /** r, the adapter's rank. */
  rank: number;
  /** Multiplier of the adapter's output: alpha / r, or alpha / √r with rsLoRA. */
  scale: number;
  /**
   * Several adapters stacked along the rank, each row using its own (multi-LoRA serving; see
   * kernels/lora_select.ts): `rows` u32 [maxTokens] is each row's adapter (0: none), `columns` u32 [rank]
   * and `scales` f32 [rank] each stacked column's adapter and scale. `scale` then multiplies on top (1).
   * Inference only.
   */
  select?: { rows: Tensor; columns: Tensor; scales: Tensor };
}

/** Per-batch inputs and outputs of a forward/backward pass, each with room for `maxTokens` rows. */
export interface StepBuffers {
  /** u32 [N] token ids, N = B·T, batch-major. */
  ids: Tensor;
  /** u32 [N] position of each token (RoPE). */
  positions: Tensor;
  /** u32 [N] 1 for real tokens, 0 for padding (keys never attended). */
  keyMask: Tensor;
  /** u32 [N] the id each row predicts (`NO_TARGET` for none). */
  targets: Tensor;
  /** f32 [N] log p(target | prefix) per row. */
  logp: Tensor;
  /** f32 [N] log-sum-exp of each row's logits. */
  lse: Tensor;
  /** f32 [N] d(loss)/d(logp), written by the objective. */
  dlogp: Tensor;
  /**
   * u32 [N], when allocated: 1 where the row's target is the argmax of its logits (first index on ties, as
   * `torch.argmax`), written by {@link Llama.forward}; SFT's `mean_token_accuracy` counts it.
   */
  greedy?: Tensor;
}

/**
 * Where attention finds its keys and values when generating: per-layer caches with room for `kvRows`
 * positions per batch item. New K/V rows are written at their positions first, then attention reads the
 * cache.
 */
export interface KvCacheView {
  /** Per layer, [batch·kvRows, kvHeads·headDim]. */
  k: Tensor[];
  /** Per layer, [batch·kvRows, kvHeads·headDim]: the value cache. */
  v: Tensor[];
  /** Positions each batch item has room for in the cache. */
  kvRows: number;
  /** Keys attended: at least every written position + 1. */
  Tk: number;
  /** Key index of query 0 (causality: query i sees keys ≤ qOffset + i). */
  qOffset: number;
  /** u32 [batch·kvRows]: 1 for positions that hold a key a query may see. */
  keyMask: Tensor;
}

/** Sizes a {@link Llama} allocates its workspace for. */
export interface LlamaOptions {
  /** Most rows (B·T) one pass processes. */
  maxTokens: number;
  /** Rows of logits computed at once; bounds the logits buffer to logitsRows × vocab floats. */
  logitsRows?: number;
  /** Keep activations needed by backward (training). */
  trainable: boolean;
  /**
   * Keep only each decoder layer's input for the backward pass and recompute the layer there (TRL's
   * `gradient_checkpointing`): activations of one layer instead of all, for a second forward's compute.
   */
  gradientCheckpointing?: boolean;
}

/** One decoder layer's saved activations, plus x·Aᵀ of each LoRA linear ([rows, rank]). */
type LayerActs = Record<LayerActName, Tensor> & { loraXa: Map<LinearName, Tensor> };

type GradBuffers = Record<keyof ReturnType<typeof gradWidths>, Tensor>;

type FinalBuffers = Record<keyof ReturnType<typeof finalWidths>, Tensor>;

/** A group's own copies of the per-row u32 inputs, when a pass runs in several groups. */
type GroupInputs = Record<typeof GROUP_INPUTS[number], Tensor>;

/** Views of the first `rows` rows of each tensor in `set`, given each one's width per row. */
function firstRows<K extends string>(
  set: NoInfer<Record<K, Tensor>>,
  widths: Record<K, number>,
  rows: number,
): Record<K, Tensor> {
  const out = {} as Record<K, Tensor>;
  for (const key of Object.keys(widths) as K[]) out[key] = prefix(set[key], rows * widths[key]);
  return out;
}

/**
 * One group of a pass: B sequences of T tokens, N = B·T rows starting at row r0 of the whole pass, the
 * step's buffers (indexed by whole-pass rows), the group's own ids, positions and key mask, and, when
 * generating, the KV cache.
 */
interface Pass extends RowGroup {
  T: number;
  io: StepBuffers;
  inputs: GroupInputs;
  kv?: KvCacheView;
}

/** Rows [r0, r0+R) of a row-major [*, cols] tensor; r0 must keep the view 256-byte aligned. */
function rowsView(t: Tensor, r0: number, R: number, cols: number): Tensor {
  const offset = t.offset + r0 * cols * 4;
  if (offset % 256 !== 0) throw new RangeError(`row ${r0} of "${t.label}" is not 256-byte aligned`);
  return { buffer: t.buffer, offset, length: R * cols, dtype: t.dtype, label: t.label };
}

/**
 * A Llama-family model bound to its weights and a workspace on one GPU.
 *
 * @example
 * ```ts
 * const model = new Llama(gpu, dims, weights, rope, { maxTokens: 512, trainable: false });
 * const io = model.allocStep();
 * gpu.run(model.forward(2, 24, io));
 * ```
 */
export class Llama {
  /** The device the workspace and weights live on. */
  readonly gpu: Gpu;
  /** The architecture numbers. */
  readonly dims: LlamaDims;
  /** Parameter values, gradients and LoRA adapters by Hugging Face name. */
  readonly weights: WeightSource;
  /** Workspace sizes, with `logitsRows` resolved to what was allocated. */
  readonly opts: Required<LlamaOptions>;
  /** RoPE tables [maxPositions, headDim/2]. */
  readonly rope: { cos: Tensor; sin: Tensor; maxPositions: number };
  /** Rows of one activation block: `maxTokens` unless that would exceed a binding. */
  readonly blockRows: number;

  /** Every workspace buffer, released by {@link destroy}. */
  readonly #owned: GPUBuffer[] = [];
  /**
   * Activations by [slot][group]: a slot per layer when training without checkpointing, else one slot that
   * every layer (and, in inference or when recomputing, every group) reuses.
   */
  readonly #acts: LayerActs[][] = [];
  /** With gradient checkpointing: each layer's input by [layer][group], all the forward pass keeps. */
  readonly #inputs: Tensor[][] = [];
  /** After the last layer, by group. */
  readonly #final: FinalBuffers[] = [];
  /** Per-row inputs copied out for each group of a pass that runs in several. */
  readonly #groupInputs: GroupInputs[] = [];
  /** One chunk of logits of one vocabulary block, [logitsRows, widest block]. */
  readonly #logits: Tensor;
  /** Each vocabulary block's softmax statistics of one chunk, when the projection is split. */
  readonly #logitStats?: Tensor;
  /** The groups of the last pass recorded, which {@link forwardLogits} and {@link scoreRows} read. */
  #lastGroups: RowGroup[] = [];
  /** Gradients, allocated by the first backward pass. */
  #grad?: GradBuffers;
  /** dy·B of the LoRA linear being differentiated, [blockRows, max rank]. */
  #loraTmp?: Tensor;
  /** One row block's output columns of a split linear layer, allocated on first use. */
  #linearTmp?: Tensor;
  /** Whole rows of logits for sampling when the projection is split, allocated on first use. */
  #fullLogits?: Tensor;
  /** The final hidden rows {@link scoreRows} picks, [logitsRows, hidden], allocated on first use. */
  #picked?: Tensor;
  /**
   * Each vocabulary block's top-k candidates (values f32, ids u32) of one chunk, when the projection is
   * split, allocated on first use and replaced by a larger pair for a larger k; the smaller stay owned
   * (recorded programs may still bind them) until {@link destroy}.
   */
  #topCandidates?: { values: Tensor; ids: Tensor };
  /** Where the kernel writes a frozen norm weight's unused gradient (LoRA), allocated on first use. */
  #normScratch?: Tensor;

  /**
   * Allocates the workspace (activations, and their gradients when `trainable`).
   *
   * @param gpu The device `weights` live on.
   * @param dims The architecture numbers.
   * @param weights Where each parameter, gradient and adapter is found.
   * @param rope RoPE cos/sin tables [maxPositions, headDim/2] and the positions they cover.
   * @param opts Workspace sizes.
   */
  constructor(
    gpu: Gpu,
    dims: LlamaDims,
    weights: WeightSource,
    rope: { cos: Tensor; sin: Tensor; maxPositions: number },
    opts: LlamaOptions,
  ) {
    this.gpu = gpu;
    this.dims = dims;
    this.weights = weights;
    this.rope = rope;
    const vocabColumns = Math.max(...this.#headBlocks().map((b) => b.rows));
    const vocabBlocks = this.#headBlocks().length;
    const logitsRows = chooseLogitsRows(
      gpu.maxBinding,
      vocabColumns,
      dims.hiddenSize,
      opts.maxTokens,
      opts.logitsRows,
      vocabBlocks,
    );
    this.opts = {
      maxTokens: opts.maxTokens,
      trainable: opts.trainable,
      logitsRows,
      gradientCheckpointing: opts.trainable && Boolean(opts.gradientCheckpointing),
    };
    this.blockRows = activationBlockRows(dims, opts.maxTokens, gpu.maxBinding, this.#maxLoraRank());
    if (this.blockRows < 1) {
      throw new RangeError(`one row of activations is wider than one binding (${gpu.maxBinding} bytes)`);
    }
    // The first group's buffers now (a pass that fits one block needs no more); others on first use.
    for (let slot = 0; slot < this.#slots; slot++) this.#actsAt(slot, 0);
    for (let l = 0; l < (this.opts.gradientCheckpointing ? dims.numLayers : 0); l++) this.#inputAt(l, 0);
    this.#finalAt(0);
    this.#logits = this.#own(logitsRows * vocabColumns, "f32", "logits");
    if (vocabBlocks > 1) {
      this.#logitStats = this.#own(logitsRows * vocabBlocks * LOGPROBS_STAT_FIELDS, "f32", "logits.stats");
    }
    const maxRank = this.#maxLoraRank();
    if (maxRank > 0) this.#loraTmp = this.#own(this.blockRows * maxRank, "f32", "lora.tmp");
  }

  /** A workspace tensor this model owns (released by {@link destroy}). */
  #own(n: number, dtype: "f32" | "u32", label: string): Tensor {
    const t = this.gpu.tensor(n, dtype, label);
    this.#owned.push(t.buffer);
    return t;
  }

  /** One f32 [blockRows, width] workspace tensor per key of `widths`. */
  #ownRows<K extends string>(widths: Record<K, number>, label: (key: K) => string): Record<K, Tensor> {
    const out = {} as Record<K, Tensor>;
    for (const key of Object.keys(widths) as K[]) {
      out[key] = this.#own(this.blockRows * widths[key], "f32", label(key));
    }
    return out;
  }

  /** How many activation slots there are: one per layer when training without checkpointing, else one. */
  get #slots(): number {
    return this.opts.trainable && !this.opts.gradientCheckpointing ? this.dims.numLayers : 1;
  }

  /** The activations of `slot` for group `k`, allocated on first use. */
  #actsAt(slot: number, k: number): LayerActs {
    this.#acts[slot] ??= [];
    let acts = this.#acts[slot][k];
    if (!acts) {
      const tag = `L${slot}${k > 0 ? `#${k}` : ""}`;
      const maxRank = this.#maxLoraRank();
      const loraXa = new Map<LinearName, Tensor>();
      if (maxRank > 0) {
        for (const w of LINEAR_NAMES) {
          loraXa.set(w, this.#own(this.blockRows * maxRank, "f32", `${tag}.${w}.xa`));
        }
      }
      // With checkpointing the layer input lives in #inputs; the shared slot has no x of its own.
      const { x: _x, ...rest } = layerWidths(this.dims);
      const widths = this.opts.gradientCheckpointing ? rest : layerWidths(this.dims);
      const own = this.#ownRows<string>(widths, (key) => `${tag}.${key}`);
      acts = { ...own, loraXa } as LayerActs;
      this.#acts[slot][k] = acts;
    }
    return acts;
  }

  /** With checkpointing: layer l's input for group `k`, allocated on first use. */
  #inputAt(l: number, k: number): Tensor {
    this.#inputs[l] ??= [];
    return this.#inputs[l][k] ??= this.#own(
      this.blockRows * this.dims.hiddenSize,
      "f32",
      `L${l}${k > 0 ? `#${k}` : ""}.x`,
    );
  }

  /** The buffers after the last layer for group `k`, allocated on first use. */
  #finalAt(k: number): FinalBuffers {
    return this.#final[k] ??= this.#ownRows(
      finalWidths(this.dims),
      (key) => `final${k > 0 ? `#${k}` : ""}.${key}`,
    );
  }

  /** Releases the workspace (activations, step buffers, RoPE tables); the weights belong to their owner. */
  destroy(): void {
    for (const b of this.#owned) b.destroy();
    this.#owned.length = 0;
    this.rope.cos.buffer.destroy();
    this.rope.sin.buffer.destroy();
  }

  /** Allocates the per-batch input/output buffers for up to `maxTokens` rows. */
  allocStep(opts: { greedy?: boolean } = {}): StepBuffers {
    const N = this.opts.maxTokens;
    return {
      ids: this.#own(N, "u32", "ids"),
      positions: this.#own(N, "u32", "positions"),
      keyMask: this.#own(N, "u32", "keyMask"),
      targets: this.#own(N, "u32", "targets"),
      logp: this.#own(N, "f32", "logp"),
      lse: this.#own(N, "f32", "lse"),
      dlogp: this.#own(N, "f32", "dlogp"),
      ...(opts.greedy ? { greedy: this.#own(N, "u32", "greedy") } : {}),
    };
  }

  /**
   * The buffer {@link forwardLogits} fills: rows [0, R) of whole-vocabulary logits, `vocab` floats each.
   */
  get logitsBuffer(): Tensor {
    return this.#headBlocks().length === 1 ? this.#logits : this.#wholeLogits();
  }

  /**
   * The groups of whole sequences the last recorded pass ran in (one unless its activations exceed a
   * binding): {@link forwardLogits} takes rows within one group.
   */
  get passGroups(): readonly RowGroup[] {
    return this.#lastGroups;
  }

  /** Rows per logits chunk. */
  get logitsRows(): number {
    return this.opts.logitsRows;
  }

  /** Rows of whole-vocabulary logits {@link forwardLogits} computes at once. */
  get fullLogitsRows(): number {
    if (this.#headBlocks().length === 1) return this.opts.logitsRows;
    return Math.min(this.opts.logitsRows, Math.floor(this.gpu.maxBinding / (4 * this.dims.vocabSize)));
  }

  #maxLoraRank(): number {
    let r = 0;
    for (let l = 0; l < this.dims.numLayers; l++) {
      for (const w of LINEAR_NAMES) {
        r = Math.max(r, this.weights.lora?.(linearName(l, w))?.rank ?? 0);
      }
    }
    return r;
  }

  /** The vocabulary projection's weight in row (vocabulary) blocks. */
  #headBlocks(): readonly RowBlock[] {
    return this.weights.value(lmHeadName(this.dims)).blocks;
  }

  /** Layer l's activations for a pass, as views of its N rows (x·Aᵀ at each adapter's rank). */
  #layerViews(l: number, p: { index: number; N: number }): LayerActs {
    const ckpt = this.opts.gradientCheckpointing;
    // Inference and checkpointing reuse one slot for every layer and every group (they run in turn).
    const perLayer = this.#slots > 1;
    const acts = this.#actsAt(perLayer ? l : 0, perLayer ? p.index : 0);
    const widths = layerWidths(this.dims);
    const loraXa = new Map<LinearName, Tensor>();
    for (const [which, xa] of acts.loraXa) {
      const lora = this.weights.lora?.(linearName(l, which));
      if (lora) loraXa.set(which, prefix(xa, p.N * lora.rank));
    }
    const x = ckpt ? prefix(this.#inputAt(l, p.index), p.N * widths.x) : undefined;
    return { ...firstRows({ ...acts, ...(x ? { x } : {}) }, widths, p.N), loraXa };
  }

  /** The input of layer `l + 1` (the last layer's output goes to the final norm). */
  #nextInput(l: number, p: Pass): Tensor {
    if (l + 1 < this.dims.numLayers) return this.#layerViews(l + 1, p).x;
    return prefix(this.#finalAt(p.index).resid, p.N * this.dims.hiddenSize);
  }

  /**
   * The groups a B×T pass runs in: one group reading `io` directly when the pass fits an activation block,
   * else groups of whole sequences, each with its own per-row inputs ({@link groupInputCopies} fills them).
   */
  #passes(B: number, T: number, io: StepBuffers, kv?: KvCacheView): Pass[] {
    const N = B * T;
    if (N > this.opts.maxTokens) {
      throw new RangeError(`batch of ${N} tokens exceeds maxTokens ${this.opts.maxTokens}`);
    }
    const groups = rowGroups(B, T, this.blockRows);
    this.#lastGroups = groups;
    if (groups.length === 1) return [{ ...groups[0], T, io, kv, inputs: io }];
    if (kv) {
      throw new RangeError(
        `a pass of ${B}×${T} tokens with a KV cache needs ${groups.length} activation blocks; ` +
          `generation runs in one (${this.blockRows} rows)`,
      );
    }
    return groups.map((g) => {
      const inputs = this.#groupInputs[g.index] ??= Object.fromEntries(
        GROUP_INPUTS.map((key) => [key, this.#own(this.blockRows, "u32", `group${g.index}.${key}`)]),
      ) as GroupInputs;
      return { ...g, T, io, inputs };
    });
  }

  /** Copies each group's rows of ids, positions and key mask out of the step's buffers. */
  #groupInputCopies(passes: Pass[]): Dispatch[] {
    if (passes.length === 1) return [];
    return passes.flatMap((p) =>
      GROUP_INPUTS.map((key) =>
        copy(this.gpu, { src: p.io[key], dst: p.inputs[key], n: p.N, srcOffset: p.r0 })
      )
    );
  }

  /** The RoPE kernels' shared arguments for a pass (tables, positions, head size). */
  #ropeArgs(p: Pass) {
    return {
      positions: p.inputs.positions,
      cos: this.rope.cos,
      sin: this.rope.sin,
      rows: p.N,
      headDim: this.dims.headDim,
    };
  }

  // ---------------------------------------------------------------------------------------------------
  // Forward

  /**
   * Records the forward pass of B sequences of T tokens up to per-token log-probs (`io.logp`, `io.lse`, and
   * `io.greedy` when allocated). Inputs must already be written into `io.ids`, `io.positions`,
   * `io.keyMask` and `io.targets`.
   */
  forward(B: number, T: number, io: StepBuffers): Dispatch[] {
    const passes = this.#passes(B, T, io);
    const out = this.#groupInputCopies(passes);
    for (const p of passes) {
      out.push(...this.#hiddenForward(p));
      const normed = this.#finalAt(p.index).normed;
      for (const { r0, R } of rowChunks(p.N, this.opts.logitsRows)) {
        const hidden = rowsView(normed, r0, R, this.dims.hiddenSize);
        out.push(...this.#vocabLogprobs(hidden, R, { ...io, rowOffset: p.r0 + r0 }));
      }
    }
    return out;
  }

  /**
   * Records everything up to the final norm's output (the input of the vocabulary projection). With `kv`,
   * keys and values go into the cache and attention reads from it (generation).
   */
  forwardHidden(B: number, T: number, io: StepBuffers, kv?: KvCacheView): Dispatch[] {
    const passes = this.#passes(B, T, io, kv);
    return [...this.#groupInputCopies(passes), ...passes.flatMap((p) => this.#hiddenForward(p))];
  }

  /** One group from token ids to the final norm's output. */
  #hiddenForward(p: Pass): Dispatch[] {
    const d = this.dims;
    const fin = firstRows(this.#finalAt(p.index), finalWidths(d), p.N);
    const x0 = this.#layerViews(0, p).x;
    const out: Dispatch[] = this.weights.value("model.embed_tokens.weight").blocks.map((block) =>
      embeddingForward(this.gpu, {
        ids: p.inputs.ids,
        table: block.tensor,
        firstId: block.row0,
        out: x0,
        rows: p.N,
        dim: d.hiddenSize,
      })
    );
    for (let l = 0; l < d.numLayers; l++) {
      // In inference all layers share one buffer set, so the next input is the layer's own x, free again
      // once `mid` holds x + attention.
      out.push(...this.#layerForward(l, p, this.#layerViews(l, p), this.#nextInput(l, p)));
    }
    out.push(this.#normForward("model.norm.weight", { x: fin.resid, y: fin.normed, rstd: fin.rstd }));
    return out;
  }

  /**
   * One decoder layer, from `a.x` to `next` (= a.x + attention + MLP), saving what backward needs in `a`.
   * Without `next` (recomputing for the backward pass) it stops once the MLP's activation is saved.
   */
  #layerForward(l: number, p: Pass, a: LayerActs, next?: Tensor): Dispatch[] {
    const d = this.dims, g = this.gpu, N = p.N, kv = p.kv;
    const linear = (which: LinearName, x: Tensor, y: Tensor) =>
      this.#linearForward(l, which, { x, y, rows: N, xa: a.loraXa.get(which) });
    const rope = this.#ropeArgs(p);
    const out: Dispatch[] = [];
    // Attention block.
    out.push(this.#normForward(layerNormName(l, "input_layernorm"), { x: a.x, y: a.xn1, rstd: a.rstd1 }));
    out.push(...linear("q_proj", a.xn1, a.q));
    out.push(...linear("k_proj", a.xn1, a.k));
    out.push(...linear("v_proj", a.xn1, a.v));
    out.push(ropeForward(g, { ...rope, x: a.q, heads: d.numHeads }));
    out.push(ropeForward(g, { ...rope, x: a.k, heads: d.numKvHeads }));
    if (kv) {
      // Generation: the new keys and values go into the cache at their positions; attention reads the cache.
      const width = d.numKvHeads * d.headDim;
      const scatter = { positions: p.inputs.positions, rows: N, T: p.T, kvRows: kv.kvRows, width };
      out.push(kvScatter(g, { ...scatter, src: a.k, cache: kv.k[l] }));
      out.push(kvScatter(g, { ...scatter, src: a.v, cache: kv.v[l] }));
    }
    out.push(attentionForward(g, {
      q: a.q,
      k: kv ? kv.k[l] : a.k,
      v: kv ? kv.v[l] : a.v,
      out: a.attn,
      lse: a.lse,
      keyMask: kv ? kv.keyMask : p.inputs.keyMask,
      B: p.B,
      Tq: p.T,
      Tk: kv ? kv.Tk : p.T,
      kvRows: kv ? kv.kvRows : p.T,
      qOffset: kv ? kv.qOffset : 0,
      heads: d.numHeads,
      kvHeads: d.numKvHeads,
      headDim: d.headDim,
      scale: 1 / Math.sqrt(d.headDim),
    }));
    out.push(...linear("o_proj", a.attn, a.mid));
    out.push(add(g, { a: a.mid, b: a.x, out: a.mid, n: a.mid.length }));
    // MLP block.
    out.push(
      this.#normForward(layerNormName(l, "post_attention_layernorm"), { x: a.mid, y: a.xn2, rstd: a.rstd2 }),
    );
    out.push(...linear("gate_proj", a.xn2, a.gate));
    out.push(...linear("up_proj", a.xn2, a.up));
    out.push(swigluForward(g, { gate: a.gate, up: a.up, out: a.act, n: a.act.length }));
    if (!next) {
      // Recomputing: down_proj's output is not needed again, but its LoRA input projection is.
      const xa = a.loraXa.get("down_proj");
      return xa ? [...out, this.#loraDown(l, "down_proj", a.act, xa, N)] : out;
    }
    out.push(...linear("down_proj", a.act, next));
    out.push(add(g, { a: next, b: a.mid, out: next, n: next.length }));
    return out;
  }

  /** RMSNorm of the rows of `x` into `y`, saving each row's 1/rms in `rstd` (one value per row). */
  #normForward(weightName: string, v: { x: Tensor; y: Tensor; rstd: Tensor }): Dispatch {
    return rmsnormForward(this.gpu, {
      ...v,
      weight: wholeTensor(this.weights.value(weightName)),
      rows: v.rstd.length,
      dim: this.dims.hiddenSize,
      eps: this.dims.rmsNormEps,
    });
  }

  /**
   * y = x·Wᵀ (+ bias) (+ scale·(x·Aᵀ)·Bᵀ, saving x·Aᵀ in `xa`) over `rows` rows. A weight split into row
   * blocks gives each block's output columns separately, placed into y.
   */
  #linearForward(
    l: number,
    which: LinearName,
    v: { x: Tensor; y: Tensor; rows: number; xa?: Tensor },
  ): Dispatch[] {
    const g = this.gpu, N = v.rows;
    const name = linearName(l, which);
    const [outF, inF] = linearShape(this.dims, which);
    const W = this.weights.value(`${name}.weight`);
    const out: Dispatch[] = [];
    if (W.blocks.length === 1) {
      out.push(matmul(g, { a: v.x, b: W.blocks[0].tensor, c: v.y, M: N, N: outF, K: inF, transB: true }));
    } else {
      for (const block of W.blocks) {
        const part = this.#linearPart(N * block.rows);
        out.push(matmul(g, { a: v.x, b: block.tensor, c: part, M: N, N: block.rows, K: inF, transB: true }));
        out.push(copyColumns(g, {
          src: part,
          dst: v.y,
          rows: N,
          cols: block.rows,
          srcStride: block.rows,
          dstStride: outF,
          dstColumn: block.row0,
        }));
      }
    }
    if (hasBias(this.dims, which)) {
      const bias = wholeTensor(this.weights.value(`${name}.bias`));
      out.push(addBias(g, { x: v.y, bias, rows: N, cols: outF }));
    }
    const lora = this.weights.lora?.(name);
    if (lora) {
      const xa = v.xa!;
      out.push(this.#loraDown(l, which, v.x, xa, N));
      if (lora.select) {
        const { rows, columns, scales } = lora.select;
        out.push(
          loraSelect(g, {
            xa,
            rowAdapter: rows,
            colAdapter: columns,
            colScale: scales,
            rows: N,
            rank: lora.rank,
          }),
        );
      }
      out.push(matmul(g, {
        a: xa,
        b: lora.b,
        c: v.y,
        M: N,
        N: outF,
        K: lora.rank,
        transB: true,
        accumulate: true,
        alpha: lora.scale,
      }));
    }
    return out;
  }

  /** x·Aᵀ of linear `which`'s LoRA adapter into `xa` ([rows, rank]), which its backward pass reads. */
  #loraDown(l: number, which: LinearName, x: Tensor, xa: Tensor, rows: number): Dispatch {
    const lora = this.weights.lora!(linearName(l, which))!;
    const inF = linearShape(this.dims, which)[1];
    return matmul(this.gpu, { a: x, b: lora.a, c: xa, M: rows, N: lora.rank, K: inF, transB: true });
  }

  /** `n` floats of the split-linear scratch ([blockRows, widest row block of any linear weight]). */
  #linearPart(n: number): Tensor {
    if (!this.#linearTmp) {
      let widest = 0;
      for (let l = 0; l < this.dims.numLayers; l++) {
        for (const w of LINEAR_NAMES) {
          const blocks = this.weights.value(`${linearName(l, w)}.weight`).blocks;
          if (blocks.length > 1) widest = Math.max(widest, ...blocks.map((b) => b.rows));
        }
      }
      this.#linearTmp = this.#own(this.blockRows * widest, "f32", "linear.part");
    }
    return prefix(this.#linearTmp, n);
  }

  /**
   * Log-probs of R rows of final hidden states (`hidden`, [R, D]) at `rowOffset` of the per-row outputs:
   * one projection and log-softmax when the vocabulary projection is one block, else per vocabulary block
   * with the blocks' statistics merged (and, for `top`, each block's k best merged once `lse` is known;
   * R at most {@link #scoreChunkRows}).
   */
  #vocabLogprobs(
    hidden: Tensor,
    R: number,
    o: {
      targets: Tensor;
      lse: Tensor;
      logp: Tensor;
      greedy?: Tensor;
      top?: { k: number; ids: Tensor; logp: Tensor };
      rowOffset: number;
    },
  ): Dispatch[] {
    const g = this.gpu, D = this.dims.hiddenSize, V = this.dims.vocabSize;
    const blocks = this.#headBlocks();
    const project = (block: RowBlock) =>
      matmul(g, {
        a: hidden,
        b: block.tensor,
        c: prefix(this.#logits, R * block.rows),
        M: R,
        N: block.rows,
        K: D,
        transB: true,
      });
    const { top, ...scored } = o;
    const greedy = o.greedy ? { greedy: o.greedy } : {};
    if (blocks.length === 1) {
      const logits = prefix(this.#logits, R * V);
      return [
        project(blocks[0]),
        logprobsForward(g, { ...scored, ...greedy, logits, rows: R, vocab: V }),
        ...(top
          ? [topLogprobs(g, { logits, lse: o.lse, ...top, rows: R, vocab: V, rowOffset: o.rowOffset })]
          : []),
      ];
    }
    const out: Dispatch[] = [];
    const stats = prefix(this.#logitStats!, R * blocks.length * LOGPROBS_STAT_FIELDS);
    const layout = top && topkCandidateLayout(blocks.map((b) => b.rows), top.k);
    const candidates = layout && this.#candidates(R * layout.columns);
    blocks.forEach((block, b) => {
      const logits = prefix(this.#logits, R * block.rows);
      out.push(project(block));
      out.push(logprobsBlockStats(g, {
        logits,
        targets: o.targets,
        stats,
        rows: R,
        cols: block.rows,
        rowOffset: o.rowOffset,
        firstColumn: block.row0,
        block: b,
        blocks: blocks.length,
      }));
      if (top && layout && candidates) {
        out.push(topLogprobsBlock(g, {
          logits,
          candidateValues: candidates.values,
          candidateIds: candidates.ids,
          rows: R,
          cols: block.rows,
          firstColumn: block.row0,
          k: top.k,
          candidateColumns: layout.columns,
          candidateColumn: layout.offsets[b],
        }));
      }
    });
    out.push(logprobsMerge(g, {
      ...scored,
      ...greedy,
      stats,
      rows: R,
      blocks: blocks.length,
      blockColumns: blocks[0].rows,
      vocabSize: V,
    }));
    if (top && layout && candidates) {
      // After logprobsMerge: the candidates become log-probs with the whole row's lse.
      out.push(topLogprobsMerge(g, {
        candidateValues: candidates.values,
        candidateIds: candidates.ids,
        candidateColumns: layout.columns,
        lse: o.lse,
        ids: top.ids,
        logp: top.logp,
        rows: R,
        rowOffset: o.rowOffset,
        k: top.k,
      }));
    }
    return out;
  }

  /** At least `n` elements of each top-k candidate buffer (values f32, ids u32). */
  #candidates(n: number): { values: Tensor; ids: Tensor } {
    if (!this.#topCandidates || this.#topCandidates.values.length < n) {
      this.#topCandidates = {
        values: this.#own(n, "f32", "logits.topk.values"),
        ids: this.#own(n, "u32", "logits.topk.ids"),
      };
    }
    return { values: prefix(this.#topCandidates.values, n), ids: prefix(this.#topCandidates.ids, n) };
  }

  /**
   * Rows {@link scoreRows} projects at once: {@link logitsRows}, fewer when the top-k candidates of a split
   * vocabulary projection (min(k, columns) per block and row) would exceed one binding.
   */
  #scoreChunkRows(k: number | undefined): number {
    const blocks = this.#headBlocks();
    if (!k || blocks.length === 1) return this.opts.logitsRows;
    const { columns } = topkCandidateLayout(blocks.map((b) => b.rows), k);
    const fit = Math.floor(this.gpu.maxBinding / (4 * columns));
    if (fit < 1) {
      throw new RangeError(
        `the top ${k} candidates of one row (${columns} per row, over ${blocks.length} vocabulary blocks) ` +
          `exceed one binding (${this.gpu.maxBinding} bytes)`,
      );
    }
    return Math.min(this.opts.logitsRows, fit);
  }

  /**
   * Records whole-vocabulary logits for rows [r0, r0+R) of the last pass recorded (after
   * {@link forwardHidden}) into {@link logitsBuffer}; R at most {@link fullLogitsRows}, within one group.
   */
  forwardLogits(r0: number, R: number): Dispatch[] {
    const D = this.dims.hiddenSize, V = this.dims.vocabSize;
    const group = this.#lastGroups.find((grp) => r0 >= grp.r0 && r0 + R <= grp.r0 + grp.N);
    if (!group) throw new RangeError(`rows [${r0}, ${r0 + R}) are not within one group of the last pass`);
    if (R > this.fullLogitsRows) {
      throw new RangeError(`${R} rows of logits exceed the ${this.fullLogitsRows} computed at once`);
    }
    const hidden = rowsView(this.#finalAt(group.index).normed, r0 - group.r0, R, D);
    const blocks = this.#headBlocks();
    const project = (block: RowBlock, c: Tensor) =>
      matmul(this.gpu, { a: hidden, b: block.tensor, c, M: R, N: block.rows, K: D, transB: true });
    if (blocks.length === 1) return [project(blocks[0], prefix(this.#logits, R * V))];
    return blocks.flatMap((block) => [
      project(block, prefix(this.#logits, R * block.rows)),
      copyColumns(this.gpu, {
        src: this.#logits,
        dst: this.#wholeLogits(),
        rows: R,
        cols: block.rows,
        srcStride: block.rows,
        dstStride: V,
        dstColumn: block.row0,
      }),
    ]);
  }

  #wholeLogits(): Tensor {
    return this.#fullLogits ??= this.#own(this.fullLogitsRows * this.dims.vocabSize, "f32", "logits.whole");
  }

  /**
   * Log-probs of selected rows only (after {@link forwardHidden}): gathers those rows of the final hidden
   * state, projects them to the vocabulary chunk by chunk, and writes `logp` (and `greedy`, 1 where the
   * target is the argmax) for each. Scoring a continuation thus costs a vocabulary projection of its own
   * tokens, not of the whole context.
   */
  scoreRows(a: {
    /** u32 [n]: rows of the last forward (b·T + t) to score. */
    index: Tensor;
    /** u32 [n]: the id each scored row predicts. */
    targets: Tensor;
    logp: Tensor;
    lse: Tensor;
    greedy?: Tensor;
    /** Also each scored row's k most probable ids and their log-probs, k per row (`kernels/topk.ts`). */
    top?: { k: number; ids: Tensor; logp: Tensor };
    n: number;
    /** Rows of the last forward (B·T). */
    srcRows: number;
  }): Dispatch[] {
    const D = this.dims.hiddenSize;
    const groups = this.#lastGroups;
    const covered = groups.reduce((s, g) => s + g.N, 0);
    if (covered !== a.srcRows) {
      throw new RangeError(`srcRows ${a.srcRows} is not the ${covered} rows of the last forward pass`);
    }
    this.#picked ??= this.#own(this.opts.logitsRows * D, "f32", "final.picked");
    const out: Dispatch[] = [];
    for (const { r0, R } of rowChunks(a.n, this.#scoreChunkRows(a.top?.k))) {
      const picked = prefix(this.#picked, R * D);
      for (const g of groups) {
        out.push(gatherRows(this.gpu, {
          src: prefix(this.#finalAt(g.index).normed, g.N * D),
          index: a.index,
          indexOffset: r0,
          dst: picked,
          rows: R,
          width: D,
          srcRows: g.N,
          srcRow0: g.r0,
          outside: groups.length === 1 ? "zero" : "keep",
        }));
      }
      out.push(...this.#vocabLogprobs(picked, R, { ...a, rowOffset: r0 }));
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------------
  // Backward

  /** The gradient buffers as views of N rows, allocated on first use. */
  #gradViews(N: number): GradBuffers {
    if (!this.opts.trainable) throw new Error("this model was built for inference (trainable: false)");
    const widths = gradWidths(this.dims);
    this.#grad ??= this.#ownRows(widths, (key) => `grad.${key.slice(1)}`);
    return firstRows(this.#grad, widths, N);
  }

  /**
   * Records the backward pass from `io.dlogp` to every trainable parameter's gradient (accumulated with +=).
   * Must follow {@link forward} for the same batch in the same or an earlier submission.
   */
  backward(B: number, T: number, io: StepBuffers): Dispatch[] {
    // The forward pass copied each group's inputs; backward reads them again.
    return this.#passes(B, T, io).flatMap((p) => this.#groupBackward(p));
  }

  /** Backward through one group, from d(log-prob) of its rows to every gradient. */
  #groupBackward(p: Pass): Dispatch[] {
    const d = this.dims, D = d.hiddenSize;
    const G = this.#gradViews(p.N);
    const fin = firstRows(this.#finalAt(p.index), finalWidths(d), p.N);
    const out: Dispatch[] = [];
    // Vocabulary projection, chunk by chunk: recompute logits, turn them into d(logits) in place.
    for (const { r0, R } of rowChunks(p.N, this.opts.logitsRows)) {
      out.push(...this.#vocabBackward({
        hidden: rowsView(fin.normed, r0, R, D),
        dhidden: rowsView(G.dxn, r0, R, D),
        R,
        io: p.io,
        rowOffset: p.r0 + r0,
      }));
    }
    out.push(
      ...this.#normBackward("model.norm.weight", { dy: G.dxn, x: fin.resid, rstd: fin.rstd, dx: G.dres }),
    );
    // Decoder layers, last first; dres carries d(residual stream) from one to the next. With checkpointing
    // each layer's activations are recomputed from its saved input first.
    for (let l = d.numLayers - 1; l >= 0; l--) {
      const a = this.#layerViews(l, p);
      if (this.opts.gradientCheckpointing) out.push(...this.#layerForward(l, p, a));
      out.push(...this.#layerBackward(l, p, a, G));
    }
    const embGrad = this.weights.grad("model.embed_tokens.weight");
    if (embGrad) {
      out.push(
        ...embeddingBackward(this.gpu, {
          ids: p.inputs.ids,
          dout: G.dres,
          dtable: embGrad,
          rows: p.N,
          dim: D,
        }),
      );
    }
    return out;
  }

  /**
   * Backward through the vocabulary projection for R rows, one vocabulary block at a time: the block's
   * logits are recomputed and become d(logits) in place, then d(hidden) += d(logits)·W and
   * dW += d(logits)ᵀ·hidden.
   */
  #vocabBackward(
    v: { hidden: Tensor; dhidden: Tensor; R: number; io: StepBuffers; rowOffset: number },
  ): Dispatch[] {
    const g = this.gpu, D = this.dims.hiddenSize, V = this.dims.vocabSize, R = v.R;
    const head = this.weights.value(lmHeadName(this.dims));
    const headGrad = this.weights.grad(lmHeadName(this.dims));
    const out: Dispatch[] = [];
    head.blocks.forEach((block, b) => {
      const logits = prefix(this.#logits, R * block.rows);
      out.push(
        matmul(g, { a: v.hidden, b: block.tensor, c: logits, M: R, N: block.rows, K: D, transB: true }),
      );
      out.push(logprobsBackward(g, {
        logits,
        targets: v.io.targets,
        lse: v.io.lse,
        dlogp: v.io.dlogp,
        rows: R,
        vocab: block.rows,
        rowOffset: v.rowOffset,
        firstColumn: block.row0,
        vocabSize: V,
      }));
      out.push(
        matmul(g, { a: logits, b: block.tensor, c: v.dhidden, M: R, N: D, K: block.rows, accumulate: b > 0 }),
      );
      if (headGrad) {
        out.push(matmul(g, {
          a: logits,
          b: v.hidden,
          c: headGrad.blocks[b].tensor,
          M: block.rows,
          N: D,
          K: R,
          transA: true,
          accumulate: true,
        }));
      }
    });
    return out;
  }

  /** Backward through one decoder layer: `G.dres` holds d(layer output) on entry, d(layer input) on exit. */
  #layerBackward(l: number, p: Pass, a: LayerActs, G: GradBuffers): Dispatch[] {
    const d = this.dims, g = this.gpu, N = p.N;
    const back = (which: LinearName, v: { dy: Tensor; x: Tensor; dx: Tensor; accumulate?: boolean }) =>
      this.#linearBackward(l, which, { ...v, rows: N, xa: a.loraXa.get(which) });
    const rope = this.#ropeArgs(p);
    const out: Dispatch[] = [];
    // MLP block: next = mid + down(silu(gate(xn2))·up(xn2)).
    out.push(...back("down_proj", { dy: G.dres, x: a.act, dx: G.dact }));
    out.push(
      swigluBackward(g, {
        dout: G.dact,
        gate: a.gate,
        up: a.up,
        dgate: G.dgate,
        dup: G.dup,
        n: G.dact.length,
      }),
    );
    out.push(...back("gate_proj", { dy: G.dgate, x: a.xn2, dx: G.dxn }));
    out.push(...back("up_proj", { dy: G.dup, x: a.xn2, dx: G.dxn, accumulate: true }));
    out.push(
      ...this.#normBackward(layerNormName(l, "post_attention_layernorm"), {
        dy: G.dxn,
        x: a.mid,
        rstd: a.rstd2,
        dx: G.dres,
        accumulate: true,
      }),
    );
    // Attention block: mid = x + o_proj(attention(rope(q(xn1)), rope(k(xn1)), v(xn1))); dres holds d(mid).
    out.push(...back("o_proj", { dy: G.dres, x: a.attn, dx: G.dattn }));
    out.push(...attentionBackward(g, {
      q: a.q,
      k: a.k,
      v: a.v,
      out: a.attn,
      lse: a.lse,
      dout: G.dattn,
      dq: G.dq,
      dk: G.dk,
      dv: G.dv,
      keyMask: p.inputs.keyMask,
      B: p.B,
      T: p.T,
      heads: d.numHeads,
      kvHeads: d.numKvHeads,
      headDim: d.headDim,
      scale: 1 / Math.sqrt(d.headDim),
    }));
    out.push(ropeBackward(g, { ...rope, dx: G.dq, heads: d.numHeads }));
    out.push(ropeBackward(g, { ...rope, dx: G.dk, heads: d.numKvHeads }));
    out.push(...back("q_proj", { dy: G.dq, x: a.xn1, dx: G.dxn }));
    out.push(...back("k_proj", { dy: G.dk, x: a.xn1, dx: G.dxn, accumulate: true }));
    out.push(...back("v_proj", { dy: G.dv, x: a.xn1, dx: G.dxn, accumulate: true }));
    out.push(
      ...this.#normBackward(layerNormName(l, "input_layernorm"), {
        dy: G.dxn,
        x: a.x,
        rstd: a.rstd1,
        dx: G.dres,
        accumulate: true,
      }),
    );
    return out;
  }

  /**
   * From dy of an RMSNorm: dx (= dy·∂y/∂x, or added to dx with `accumulate`, the residual stream's case) and
   * the weight's gradient (always added to).
   */
  #normBackward(
    weightName: string,
    v: { dy: Tensor; x: Tensor; rstd: Tensor; dx: Tensor; accumulate?: boolean },
  ): Dispatch[] {
    const grad = this.weights.grad(weightName);
    return rmsnormBackward(this.gpu, {
      ...v,
      weight: wholeTensor(this.weights.value(weightName)),
      dweight: grad ? wholeTensor(grad) : this.#scratchNormGrad(),
      rows: v.rstd.length,
      dim: this.dims.hiddenSize,
      accumulate: v.accumulate ?? false,
    });
  }

  /** Frozen norm weights (LoRA) still need somewhere for the kernel to write their unused gradient. */
  #scratchNormGrad(): Tensor {
    this.#normScratch ??= this.#own(this.dims.hiddenSize, "f32", "frozen.norm.grad");
    return this.#normScratch;
  }

  /**
   * From dy of a linear layer: dx (= dy·W, or added to dx with `accumulate`, plus the LoRA path),
   * dW += dyᵀ·x, dbias += Σ dy, and LoRA's dA, dB (from x·Aᵀ saved in `xa`). A weight split into row
   * blocks takes each block's columns of dy on their own.
   */
  #linearBackward(
    l: number,
    which: LinearName,
    v: { dy: Tensor; x: Tensor; dx: Tensor; rows: number; xa?: Tensor; accumulate?: boolean },
  ): Dispatch[] {
    const g = this.gpu, N = v.rows, { dy, x, dx } = v;
    const name = linearName(l, which);
    const [outF, inF] = linearShape(this.dims, which);
    const W = this.weights.value(`${name}.weight`);
    const dW = this.weights.grad(`${name}.weight`);
    const out: Dispatch[] = [];
    W.blocks.forEach((block, b) => {
      let dyPart = dy;
      if (W.blocks.length > 1) {
        dyPart = this.#linearPart(N * block.rows);
        out.push(copyColumns(g, {
          src: dy,
          dst: dyPart,
          rows: N,
          cols: block.rows,
          srcStride: outF,
          srcColumn: block.row0,
          dstStride: block.rows,
        }));
      }
      const accumulate = b > 0 || (v.accumulate ?? false);
      out.push(matmul(g, { a: dyPart, b: block.tensor, c: dx, M: N, N: inF, K: block.rows, accumulate }));
      if (dW) {
        out.push(matmul(g, {
          a: dyPart,
          b: x,
          c: dW.blocks[b].tensor,
          M: block.rows,
          N: inF,
          K: N,
          transA: true,
          accumulate: true,
        }));
      }
    });
    const db = hasBias(this.dims, which) ? this.weights.grad(`${name}.bias`) : undefined;
    if (db) out.push(biasBackward(g, { dy, dbias: wholeTensor(db), rows: N, cols: outF }));
    const lora = this.weights.lora?.(name);
    if (lora?.select) throw new Error(`"${name}": stacked adapters (multi-LoRA) are for inference only`);
    if (lora) {
      const r = lora.rank, xa = v.xa!;
      const tmp = prefix(this.#loraTmp!, N * r);
      // tmp = dy·B  [N, r]; dx += scale·tmp·A; dB += scale·dyᵀ·xa; dA += scale·tmpᵀ·x
      out.push(matmul(g, { a: dy, b: lora.b, c: tmp, M: N, N: r, K: outF }));
      out.push(
        matmul(g, { a: tmp, b: lora.a, c: dx, M: N, N: inF, K: r, accumulate: true, alpha: lora.scale }),
      );
      if (lora.gradB) {
        out.push(matmul(g, {
          a: dy,
          b: xa,
          c: lora.gradB,
          M: outF,
          N: r,
          K: N,
          transA: true,
          accumulate: true,
          alpha: lora.scale,
        }));
      }
      if (lora.gradA) {
        out.push(matmul(g, {
          a: tmp,
          b: x,
          c: lora.gradA,
          M: r,
          N: inF,
          K: N,
          transA: true,
          accumulate: true,
          alpha: lora.scale,
        }));
      }
    }
    return out;
  }
}
