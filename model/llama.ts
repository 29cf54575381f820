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
 * @module
 */
import { type Dispatch, type Gpu, prefix, type Tensor } from "../gpu/runtime.ts";
import { matmul } from "../kernels/matmul.ts";
import { rmsnormBackward, rmsnormForward } from "../kernels/rmsnorm.ts";
import { embeddingBackward, embeddingForward } from "../kernels/embedding.ts";
import { ropeBackward, ropeForward } from "../kernels/rope.ts";
import { swigluBackward, swigluForward } from "../kernels/swiglu.ts";
import { add, addBias, biasBackward, gatherRows } from "../kernels/elementwise.ts";
import { attentionBackward, attentionForward } from "../kernels/attention.ts";
import { kvScatter } from "../kernels/kvcache.ts";
import { logprobsBackward, logprobsForward } from "../kernels/logprobs.ts";
import { loraSelect } from "../kernels/lora_select.ts";
import { topLogprobs } from "../kernels/topk.ts";
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

/** Where the model finds a tensor: parameter values, their gradients (absent = frozen) and LoRA adapters. */
export interface WeightSource {
  /** Value of a parameter by Hugging Face name. */
  value(name: string): Tensor;
  /** Gradient buffer of a parameter, or undefined when the parameter is frozen. */
  grad(name: string): Tensor | undefined;
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
}

// ---------------------------------------------------------------------------------------------------------
// Workspace layout: every buffer a pass uses is [rows, width]; a pass over N rows works on views of the
// first N rows, built once per pass ({@link firstRows}).

/** Width of each activation one decoder layer keeps for the backward pass (per row). */
function layerWidths(d: LlamaDims) {
  const D = d.hiddenSize, I = d.intermediateSize, Q = d.numHeads * d.headDim, KV = d.numKvHeads * d.headDim;
  return {
    /** Residual stream entering the layer. */
    x: D,
    /** input_layernorm(x) and its 1/rms per row. */
    xn1: D,
    rstd1: 1,
    /** q and k after RoPE, v as projected. */
    q: Q,
    k: KV,
    v: KV,
    /** Attention output (input of o_proj) and its log-sum-exp per row and head. */
    attn: Q,
    lse: d.numHeads,
    /** x + o_proj(attn). */
    mid: D,
    /** post_attention_layernorm(mid) and its 1/rms per row. */
    xn2: D,
    rstd2: 1,
    /** gate_proj(xn2), up_proj(xn2) and silu(gate)·up (input of down_proj). */
    gate: I,
    up: I,
    act: I,
  };
}

/** One decoder layer's saved activations, plus x·Aᵀ of each LoRA linear ([rows, rank]). */
type LayerActs = Record<keyof ReturnType<typeof layerWidths>, Tensor> & { loraXa: Map<LinearName, Tensor> };

/** Width of each gradient buffer the backward pass reuses layer after layer (per row). */
function gradWidths(d: LlamaDims) {
  const D = d.hiddenSize, I = d.intermediateSize, Q = d.numHeads * d.headDim, KV = d.numKvHeads * d.headDim;
  return {
    /** d(residual stream) between blocks. */
    dres: D,
    /** d(a norm's output). */
    dxn: D,
    /** d(attention output), then d(q), d(k), d(v) after attention's backward. */
    dattn: Q,
    dq: Q,
    dk: KV,
    dv: KV,
    /** d(silu(gate)·up), then d(gate), d(up). */
    dact: I,
    dgate: I,
    dup: I,
  };
}

type GradBuffers = Record<keyof ReturnType<typeof gradWidths>, Tensor>;

/** Width of the buffers after the last layer (per row). */
function finalWidths(d: LlamaDims) {
  /** The last residual (input of the final norm), its 1/rms per row, and the final norm's output. */
  return { resid: d.hiddenSize, rstd: 1, normed: d.hiddenSize };
}

type FinalBuffers = Record<keyof ReturnType<typeof finalWidths>, Tensor>;

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

/** One pass over B sequences of T tokens: N = B·T rows, the step's buffers and, when generating, the KV cache. */
interface Pass {
  B: number;
  T: number;
  N: number;
  io: StepBuffers;
  kv?: KvCacheView;
}

/** Rows of logits per chunk: a multiple of 64 so chunk views stay 256-byte aligned. */
function chooseLogitsRows(gpu: Gpu, vocab: number, maxTokens: number, asked?: number): number {
  const budget = Math.min(gpu.maxBinding, 256 * 2 ** 20);
  const fit = Math.max(64, Math.floor(budget / (vocab * 4) / 64) * 64);
  const want = asked ?? fit;
  return Math.max(64, Math.floor(Math.min(want, fit, Math.ceil(maxTokens / 64) * 64) / 64) * 64);
}

/** The row ranges [r0, r0 + R) that cover `n` rows in chunks of at most `size`. */
function chunks(n: number, size: number): { r0: number; R: number }[] {
  const out: { r0: number; R: number }[] = [];
  for (let r0 = 0; r0 < n; r0 += size) out.push({ r0, R: Math.min(size, n - r0) });
  return out;
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

  /** Every workspace buffer, released by {@link destroy}. */
  readonly #owned: GPUBuffer[] = [];
  /** Per layer when training; one shared set in inference, where the layers run one after another. */
  readonly #layers: LayerActs[] = [];
  /** After the last layer, [maxTokens, width]. */
  readonly #final: FinalBuffers;
  /** One chunk of logits, [logitsRows, vocab]. */
  readonly #logits: Tensor;
  /** Gradients, allocated by the first backward pass. */
  #grad?: GradBuffers;
  /** dy·B of the LoRA linear being differentiated, [maxTokens, max rank]. */
  #loraTmp?: Tensor;
  /** The final hidden rows {@link scoreRows} picks, allocated on first use. */
  #picked?: Tensor;
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
    const logitsRows = chooseLogitsRows(gpu, dims.vocabSize, opts.maxTokens, opts.logitsRows);
    this.opts = { maxTokens: opts.maxTokens, trainable: opts.trainable, logitsRows };
    const N = opts.maxTokens;
    // Training keeps every layer's activations; inference reuses one layer's worth.
    const distinct = opts.trainable ? dims.numLayers : 1;
    const maxRank = this.#maxLoraRank();
    for (let l = 0; l < distinct; l++) {
      const loraXa = new Map<LinearName, Tensor>();
      if (maxRank > 0) {
        for (const w of LINEAR_NAMES) loraXa.set(w, this.#own(N * maxRank, "f32", `L${l}.${w}.xa`));
      }
      this.#layers.push({ ...this.#ownRows(layerWidths(dims), (key) => `L${l}.${key}`), loraXa });
    }
    this.#final = this.#ownRows(finalWidths(dims), (key) => `final.${key}`);
    this.#logits = this.#own(logitsRows * dims.vocabSize, "f32", "logits");
    if (maxRank > 0) this.#loraTmp = this.#own(N * maxRank, "f32", "lora.tmp");
  }

  /** A workspace tensor this model owns (released by {@link destroy}). */
  #own(n: number, dtype: "f32" | "u32", label: string): Tensor {
    const t = this.gpu.tensor(n, dtype, label);
    this.#owned.push(t.buffer);
    return t;
  }

  /** One f32 [maxTokens, width] workspace tensor per key of `widths`. */
  #ownRows<K extends string>(widths: Record<K, number>, label: (key: K) => string): Record<K, Tensor> {
    const out = {} as Record<K, Tensor>;
    for (const key of Object.keys(widths) as K[]) {
      out[key] = this.#own(this.opts.maxTokens * widths[key], "f32", label(key));
    }
    return out;
  }

  /** Releases the workspace (activations, step buffers, RoPE tables); the weights belong to their owner. */
  destroy(): void {
    for (const b of this.#owned) b.destroy();
    this.#owned.length = 0;
    this.rope.cos.buffer.destroy();
    this.rope.sin.buffer.destroy();
  }

  /** Allocates the per-batch input/output buffers for up to `maxTokens` rows. */
  allocStep(): StepBuffers {
    const N = this.opts.maxTokens;
    return {
      ids: this.#own(N, "u32", "ids"),
      positions: this.#own(N, "u32", "positions"),
      keyMask: this.#own(N, "u32", "keyMask"),
      targets: this.#own(N, "u32", "targets"),
      logp: this.#own(N, "f32", "logp"),
      lse: this.#own(N, "f32", "lse"),
      dlogp: this.#own(N, "f32", "dlogp"),
    };
  }

  /** The buffer holding logits rows [0, logitsRows) of the last chunk computed (see {@link forwardLogits}). */
  get logitsBuffer(): Tensor {
    return this.#logits;
  }

  /** Rows per logits chunk. */
  get logitsRows(): number {
    return this.opts.logitsRows;
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

  /** Layer l's activations as views of N rows (x·Aᵀ at each adapter's rank). */
  #layerViews(l: number, N: number): LayerActs {
    const acts = this.#layers[this.opts.trainable ? l : 0];
    const loraXa = new Map<LinearName, Tensor>();
    for (const [which, xa] of acts.loraXa) {
      const lora = this.weights.lora?.(linearName(l, which));
      if (lora) loraXa.set(which, prefix(xa, N * lora.rank));
    }
    return { ...firstRows(acts, layerWidths(this.dims), N), loraXa };
  }

  /** The number of rows of a B×T pass, checked against the workspace. */
  #rows(B: number, T: number): number {
    const N = B * T;
    if (N > this.opts.maxTokens) {
      throw new RangeError(`batch of ${N} tokens exceeds maxTokens ${this.opts.maxTokens}`);
    }
    return N;
  }

  /** The RoPE kernels' shared arguments for N rows (tables, positions, head size). */
  #ropeArgs(io: StepBuffers, N: number) {
    return {
      positions: io.positions,
      cos: this.rope.cos,
      sin: this.rope.sin,
      rows: N,
      headDim: this.dims.headDim,
    };
  }

  // ---------------------------------------------------------------------------------------------------
  // Forward

  /**
   * Records the forward pass of B sequences of T tokens up to per-token log-probs (`io.logp`, `io.lse`).
   * Inputs must already be written into `io.ids`, `io.positions`, `io.keyMask` and `io.targets`.
   */
  forward(B: number, T: number, io: StepBuffers): Dispatch[] {
    const out = this.forwardHidden(B, T, io);
    const V = this.dims.vocabSize;
    for (const { r0, R } of chunks(B * T, this.opts.logitsRows)) {
      out.push(this.#logitsChunk(r0, R));
      out.push(logprobsForward(this.gpu, {
        logits: prefix(this.#logits, R * V),
        targets: io.targets,
        lse: io.lse,
        logp: io.logp,
        rows: R,
        vocab: V,
        rowOffset: r0,
      }));
    }
    return out;
  }

  /**
   * Records everything up to the final norm's output (the input of the vocabulary projection). With `kv`,
   * keys and values go into the cache and attention reads from it (generation).
   */
  forwardHidden(B: number, T: number, io: StepBuffers, kv?: KvCacheView): Dispatch[] {
    const d = this.dims, N = this.#rows(B, T);
    const fin = firstRows(this.#final, finalWidths(d), N);
    const out: Dispatch[] = [embeddingForward(this.gpu, {
      ids: io.ids,
      table: this.weights.value("model.embed_tokens.weight"),
      out: this.#layerViews(0, N).x,
      rows: N,
      dim: d.hiddenSize,
    })];
    for (let l = 0; l < d.numLayers; l++) {
      // The next layer's input. In inference all layers share one buffer set, so this is the layer's own x,
      // free again once `mid` holds x + attention.
      const next = l + 1 < d.numLayers ? this.#layerViews(l + 1, N).x : fin.resid;
      out.push(...this.#layerForward(l, { B, T, N, io, kv }, this.#layerViews(l, N), next));
    }
    out.push(this.#normForward("model.norm.weight", { x: fin.resid, y: fin.normed, rstd: fin.rstd }));
    return out;
  }

  /** One decoder layer, from `a.x` to `next` (= a.x + attention + MLP), saving what backward needs in `a`. */
  #layerForward(
    l: number,
    p: Pass,
    a: LayerActs,
    next: Tensor,
  ): Dispatch[] {
    const d = this.dims, g = this.gpu, N = p.N, kv = p.kv;
    const linear = (which: LinearName, x: Tensor, y: Tensor) =>
      this.#linearForward(l, which, { x, y, rows: N, xa: a.loraXa.get(which) });
    const rope = this.#ropeArgs(p.io, N);
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
      const scatter = { positions: p.io.positions, rows: N, T: p.T, kvRows: kv.kvRows, width };
      out.push(kvScatter(g, { ...scatter, src: a.k, cache: kv.k[l] }));
      out.push(kvScatter(g, { ...scatter, src: a.v, cache: kv.v[l] }));
    }
    out.push(attentionForward(g, {
      q: a.q,
      k: kv ? kv.k[l] : a.k,
      v: kv ? kv.v[l] : a.v,
      out: a.attn,
      lse: a.lse,
      keyMask: kv ? kv.keyMask : p.io.keyMask,
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
    out.push(...linear("down_proj", a.act, next));
    out.push(add(g, { a: next, b: a.mid, out: next, n: next.length }));
    return out;
  }

  /** RMSNorm of the rows of `x` into `y`, saving each row's 1/rms in `rstd` (one value per row). */
  #normForward(weightName: string, v: { x: Tensor; y: Tensor; rstd: Tensor }): Dispatch {
    return rmsnormForward(this.gpu, {
      ...v,
      weight: this.weights.value(weightName),
      rows: v.rstd.length,
      dim: this.dims.hiddenSize,
      eps: this.dims.rmsNormEps,
    });
  }

  /** y = x·Wᵀ (+ bias) (+ scale·(x·Aᵀ)·Bᵀ, saving x·Aᵀ in `xa`) over `rows` rows. */
  #linearForward(
    l: number,
    which: LinearName,
    v: { x: Tensor; y: Tensor; rows: number; xa?: Tensor },
  ): Dispatch[] {
    const g = this.gpu, N = v.rows;
    const name = linearName(l, which);
    const [outF, inF] = linearShape(this.dims, which);
    const out: Dispatch[] = [
      matmul(g, {
        a: v.x,
        b: this.weights.value(`${name}.weight`),
        c: v.y,
        M: N,
        N: outF,
        K: inF,
        transB: true,
      }),
    ];
    if (hasBias(this.dims, which)) {
      out.push(addBias(g, { x: v.y, bias: this.weights.value(`${name}.bias`), rows: N, cols: outF }));
    }
    const lora = this.weights.lora?.(name);
    if (lora) {
      const xa = v.xa!;
      out.push(matmul(g, { a: v.x, b: lora.a, c: xa, M: N, N: lora.rank, K: inF, transB: true }));
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

  /** Records logits for rows [r0, r0+R) into {@link logitsBuffer} (after {@link forwardHidden}). */
  forwardLogits(r0: number, R: number): Dispatch {
    return this.#logitsChunk(r0, R);
  }

  #logitsChunk(r0: number, R: number): Dispatch {
    const D = this.dims.hiddenSize, V = this.dims.vocabSize;
    return matmul(this.gpu, {
      a: rowsView(this.#final.normed, r0, R, D),
      b: this.weights.value(lmHeadName(this.dims)),
      c: prefix(this.#logits, R * V),
      M: R,
      N: V,
      K: D,
      transB: true,
    });
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
    const D = this.dims.hiddenSize, V = this.dims.vocabSize;
    this.#picked ??= this.#own(this.opts.maxTokens * D, "f32", "final.picked");
    if (a.n > this.opts.maxTokens) {
      throw new RangeError(`${a.n} scored rows exceed maxTokens ${this.opts.maxTokens}`);
    }
    const out: Dispatch[] = [gatherRows(this.gpu, {
      src: prefix(this.#final.normed, a.srcRows * D),
      index: a.index,
      dst: prefix(this.#picked, a.n * D),
      rows: a.n,
      width: D,
      srcRows: a.srcRows,
    })];
    for (const { r0, R } of chunks(a.n, this.opts.logitsRows)) {
      const logits = prefix(this.#logits, R * V);
      out.push(matmul(this.gpu, {
        a: rowsView(this.#picked, r0, R, D),
        b: this.weights.value(lmHeadName(this.dims)),
        c: logits,
        M: R,
        N: V,
        K: D,
        transB: true,
      }));
      out.push(logprobsForward(this.gpu, {
        logits,
        targets: a.targets,
        lse: a.lse,
        logp: a.logp,
        rows: R,
        vocab: V,
        rowOffset: r0,
        ...(a.greedy ? { greedy: a.greedy } : {}),
      }));
      if (a.top) {
        out.push(topLogprobs(this.gpu, { logits, lse: a.lse, ...a.top, rows: R, vocab: V, rowOffset: r0 }));
      }
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
    const d = this.dims, g = this.gpu, N = this.#rows(B, T), D = d.hiddenSize, V = d.vocabSize;
    const G = this.#gradViews(N);
    const fin = firstRows(this.#final, finalWidths(d), N);
    const head = this.weights.value(lmHeadName(this.dims));
    const headGrad = this.weights.grad(lmHeadName(this.dims));
    const out: Dispatch[] = [];
    // Vocabulary projection, chunk by chunk: recompute logits, turn them into d(logits) in place.
    for (const { r0, R } of chunks(N, this.opts.logitsRows)) {
      const logits = prefix(this.#logits, R * V);
      out.push(this.#logitsChunk(r0, R));
      out.push(logprobsBackward(g, {
        logits,
        targets: io.targets,
        lse: io.lse,
        dlogp: io.dlogp,
        rows: R,
        vocab: V,
        rowOffset: r0,
      }));
      out.push(matmul(g, { a: logits, b: head, c: rowsView(G.dxn, r0, R, D), M: R, N: D, K: V }));
      if (headGrad) {
        const normed = rowsView(fin.normed, r0, R, D);
        out.push(
          matmul(g, { a: logits, b: normed, c: headGrad, M: V, N: D, K: R, transA: true, accumulate: true }),
        );
      }
    }
    out.push(
      ...this.#normBackward("model.norm.weight", { dy: G.dxn, x: fin.resid, rstd: fin.rstd, dx: G.dres }),
    );
    // Decoder layers, last first; dres carries d(residual stream) from one to the next.
    for (let l = d.numLayers - 1; l >= 0; l--) {
      out.push(...this.#layerBackward(l, { B, T, N, io }, this.#layerViews(l, N), G));
    }
    const embGrad = this.weights.grad("model.embed_tokens.weight");
    if (embGrad) {
      out.push(...embeddingBackward(g, { ids: io.ids, dout: G.dres, dtable: embGrad, rows: N, dim: D }));
    }
    return out;
  }

  /** Backward through one decoder layer: `G.dres` holds d(layer output) on entry, d(layer input) on exit. */
  #layerBackward(
    l: number,
    p: Pass,
    a: LayerActs,
    G: GradBuffers,
  ): Dispatch[] {
    const d = this.dims, g = this.gpu, N = p.N;
    const back = (which: LinearName, v: { dy: Tensor; x: Tensor; dx: Tensor; accumulate?: boolean }) =>
      this.#linearBackward(l, which, { ...v, rows: N, xa: a.loraXa.get(which) });
    const rope = this.#ropeArgs(p.io, N);
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
      keyMask: p.io.keyMask,
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
    return rmsnormBackward(this.gpu, {
      ...v,
      weight: this.weights.value(weightName),
      dweight: this.weights.grad(weightName) ?? this.#scratchNormGrad(),
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
   * dW += dyᵀ·x, dbias += Σ dy, and LoRA's dA, dB (from x·Aᵀ saved in `xa`).
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
    const out: Dispatch[] = [
      matmul(g, { a: dy, b: W, c: dx, M: N, N: inF, K: outF, accumulate: v.accumulate ?? false }),
    ];
    const dW = this.weights.grad(`${name}.weight`);
    if (dW) {
      out.push(matmul(g, { a: dy, b: x, c: dW, M: outF, N: inF, K: N, transA: true, accumulate: true }));
    }
    const db = hasBias(this.dims, which) ? this.weights.grad(`${name}.bias`) : undefined;
    if (db) out.push(biasBackward(g, { dy, dbias: db, rows: N, cols: outF }));
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
