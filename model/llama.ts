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
import { hasBias, LINEAR_NAMES, type LinearName, linearName, linearShape, type LlamaDims } from "./params.ts";

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

interface LayerActs {
  x: Tensor; // residual input [N, D]
  xn1: Tensor;
  rstd1: Tensor;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  attn: Tensor;
  lse: Tensor;
  mid: Tensor; // x + attention
  xn2: Tensor;
  rstd2: Tensor;
  gate: Tensor;
  up: Tensor;
  act: Tensor;
  /** x·Aᵀ of each LoRA linear, saved for backward. */
  loraXa: Map<LinearName, Tensor>;
}

/** Rows of logits per chunk: a multiple of 64 so chunk views stay 256-byte aligned. */
function chooseLogitsRows(gpu: Gpu, vocab: number, maxTokens: number, asked?: number): number {
  const budget = Math.min(gpu.maxBinding, 256 * 2 ** 20);
  const fit = Math.max(64, Math.floor(budget / (vocab * 4) / 64) * 64);
  const want = asked ?? fit;
  return Math.max(64, Math.floor(Math.min(want, fit, Math.ceil(maxTokens / 64) * 64) / 64) * 64);
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
  readonly #layers: LayerActs[] = [];
  /** The last residual (input of the final norm), its rstd, the final norm's output, and a logits chunk. */
  readonly #final: { resid: Tensor; rstd: Tensor; normed: Tensor; logits: Tensor };
  #grad?: { dres: Tensor; dxn: Tensor; dattn: Tensor; dq: Tensor; dk: Tensor; dv: Tensor; dI: Tensor[] };
  #loraTmp?: Tensor;

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
    const N = opts.maxTokens, D = dims.hiddenSize, I = dims.intermediateSize;
    const Q = dims.numHeads * dims.headDim, KV = dims.numKvHeads * dims.headDim;
    const t = (n: number, label: string) => this.#own(n, "f32", label);
    // Training keeps every layer's activations; inference reuses one layer's worth.
    const distinct = opts.trainable ? dims.numLayers : 1;
    const maxRank = this.#maxLoraRank();
    for (let l = 0; l < distinct; l++) {
      const loraXa = new Map<LinearName, Tensor>();
      if (maxRank > 0) {
        for (const w of LINEAR_NAMES) {
          loraXa.set(w, t(N * maxRank, `L${l}.${w}.xa`));
        }
      }
      this.#layers.push({
        x: t(N * D, `L${l}.x`),
        xn1: t(N * D, `L${l}.xn1`),
        rstd1: t(N, `L${l}.rstd1`),
        q: t(N * Q, `L${l}.q`),
        k: t(N * KV, `L${l}.k`),
        v: t(N * KV, `L${l}.v`),
        attn: t(N * Q, `L${l}.attn`),
        lse: t(N * dims.numHeads, `L${l}.lse`),
        mid: t(N * D, `L${l}.mid`),
        xn2: t(N * D, `L${l}.xn2`),
        rstd2: t(N, `L${l}.rstd2`),
        gate: t(N * I, `L${l}.gate`),
        up: t(N * I, `L${l}.up`),
        act: t(N * I, `L${l}.act`),
        loraXa,
      });
    }
    this.#final = {
      resid: t(N * D, "final.resid"),
      rstd: t(N, "final.rstd"),
      normed: t(N * D, "final.normed"),
      logits: t(logitsRows * dims.vocabSize, "logits"),
    };
    if (maxRank > 0) this.#loraTmp = t(N * maxRank, "lora.tmp");
  }

  readonly #owned: GPUBuffer[] = [];

  /** A workspace tensor this model owns (released by {@link destroy}). */
  #own(n: number, dtype: "f32" | "u32", label: string): Tensor {
    const t = this.gpu.tensor(n, dtype, label);
    this.#owned.push(t.buffer);
    return t;
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
    return this.#final.logits;
  }

  /** Rows per logits chunk. */
  get logitsRows(): number {
    return this.opts.logitsRows;
  }

  #layer(l: number): LayerActs {
    return this.#layers[this.opts.trainable ? l : 0];
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

  // ---------------------------------------------------------------------------------------------------
  // Forward

  /**
   * Records the forward pass of B sequences of T tokens up to per-token log-probs (`io.logp`, `io.lse`).
   * Inputs must already be written into `io.ids`, `io.positions`, `io.keyMask` and `io.targets`.
   */
  forward(B: number, T: number, io: StepBuffers): Dispatch[] {
    const out = this.forwardHidden(B, T, io);
    const N = B * T;
    for (let r0 = 0; r0 < N; r0 += this.opts.logitsRows) {
      const R = Math.min(this.opts.logitsRows, N - r0);
      out.push(this.#logitsChunk(r0, R));
      out.push(logprobsForward(this.gpu, {
        logits: prefix(this.#final.logits, R * this.dims.vocabSize),
        targets: io.targets,
        lse: io.lse,
        logp: io.logp,
        rows: R,
        vocab: this.dims.vocabSize,
        rowOffset: r0,
      }));
    }
    return out;
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
    for (let r0 = 0; r0 < a.n; r0 += this.opts.logitsRows) {
      const R = Math.min(this.opts.logitsRows, a.n - r0);
      const logits = prefix(this.#final.logits, R * V);
      out.push(matmul(this.gpu, {
        a: rowsView(this.#picked, r0, R, D),
        b: this.weights.value(this.#lmHeadName()),
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
    }
    return out;
  }

  #picked?: Tensor;

  /** Records logits for rows [r0, r0+R) into {@link logitsBuffer} (after {@link forwardHidden}). */
  forwardLogits(r0: number, R: number): Dispatch {
    return this.#logitsChunk(r0, R);
  }

  #logitsChunk(r0: number, R: number): Dispatch {
    const D = this.dims.hiddenSize, V = this.dims.vocabSize;
    return matmul(this.gpu, {
      a: rowsView(this.#final.normed, r0, R, D),
      b: this.weights.value(this.#lmHeadName()),
      c: prefix(this.#final.logits, R * V),
      M: R,
      N: V,
      K: D,
      transB: true,
    });
  }

  #lmHeadName(): string {
    return this.dims.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  }

  /**
   * Records everything up to the final norm's output (the input of the vocabulary projection). With `kv`,
   * keys and values go into the cache and attention reads from it (generation).
   */
  forwardHidden(B: number, T: number, io: StepBuffers, kv?: KvCacheView): Dispatch[] {
    const d = this.dims, g = this.gpu, N = B * T;
    if (N > this.opts.maxTokens) {
      throw new RangeError(`batch of ${N} tokens exceeds maxTokens ${this.opts.maxTokens}`);
    }
    const D = d.hiddenSize, I = d.intermediateSize, Q = d.numHeads * d.headDim, KV = d.numKvHeads * d.headDim;
    const out: Dispatch[] = [];
    const first = this.#layer(0);
    out.push(embeddingForward(g, {
      ids: io.ids,
      table: this.weights.value("model.embed_tokens.weight"),
      out: prefix(first.x, N * D),
      rows: N,
      dim: D,
    }));
    for (let l = 0; l < d.numLayers; l++) {
      const a = this.#layer(l);
      // The next layer's input: in inference all layers share one buffer set, so the residual ping-pongs
      // between x and mid.
      const next = l + 1 < d.numLayers ? this.#layer(l + 1).x : this.#final.resid;
      const x = prefix(a.x, N * D);
      // --- attention block
      out.push(this.#normForward(`model.layers.${l}.input_layernorm.weight`, x, a.xn1, a.rstd1, N));
      out.push(...this.#linearForward(l, "q_proj", a.xn1, a.q, N, a));
      out.push(...this.#linearForward(l, "k_proj", a.xn1, a.k, N, a));
      out.push(...this.#linearForward(l, "v_proj", a.xn1, a.v, N, a));
      const rope = this.#ropeArgs(io, N);
      out.push(ropeForward(g, { ...rope, x: prefix(a.q, N * Q), heads: d.numHeads }));
      out.push(ropeForward(g, { ...rope, x: prefix(a.k, N * KV), heads: d.numKvHeads }));
      if (kv) {
        const scatter = { positions: io.positions, rows: N, T, kvRows: kv.kvRows, width: KV };
        out.push(kvScatter(g, { ...scatter, src: prefix(a.k, N * KV), cache: kv.k[l] }));
        out.push(kvScatter(g, { ...scatter, src: prefix(a.v, N * KV), cache: kv.v[l] }));
      }
      out.push(attentionForward(g, {
        q: prefix(a.q, N * Q),
        k: kv ? kv.k[l] : prefix(a.k, N * KV),
        v: kv ? kv.v[l] : prefix(a.v, N * KV),
        out: prefix(a.attn, N * Q),
        lse: prefix(a.lse, N * d.numHeads),
        keyMask: kv ? kv.keyMask : io.keyMask,
        B,
        Tq: T,
        Tk: kv ? kv.Tk : T,
        kvRows: kv ? kv.kvRows : T,
        qOffset: kv ? kv.qOffset : 0,
        heads: d.numHeads,
        kvHeads: d.numKvHeads,
        headDim: d.headDim,
        scale: 1 / Math.sqrt(d.headDim),
      }));
      out.push(...this.#linearForward(l, "o_proj", a.attn, a.mid, N, a));
      out.push(add(g, { a: prefix(a.mid, N * D), b: x, out: prefix(a.mid, N * D), n: N * D }));
      // --- MLP block
      out.push(
        this.#normForward(`model.layers.${l}.post_attention_layernorm.weight`, a.mid, a.xn2, a.rstd2, N),
      );
      out.push(...this.#linearForward(l, "gate_proj", a.xn2, a.gate, N, a));
      out.push(...this.#linearForward(l, "up_proj", a.xn2, a.up, N, a));
      out.push(swigluForward(g, {
        gate: prefix(a.gate, N * I),
        up: prefix(a.up, N * I),
        out: prefix(a.act, N * I),
        n: N * I,
      }));
      const xNext = this.opts.trainable || l + 1 === d.numLayers ? next : a.x;
      out.push(...this.#linearForward(l, "down_proj", a.act, xNext, N, a));
      out.push(
        add(g, { a: prefix(xNext, N * D), b: prefix(a.mid, N * D), out: prefix(xNext, N * D), n: N * D }),
      );
    }
    out.push(
      this.#normForward("model.norm.weight", this.#final.resid, this.#final.normed, this.#final.rstd, N),
    );
    return out;
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

  /** RMSNorm of N rows of `x` into `y`, saving each row's 1/rms in `rstd` for the backward pass. */
  #normForward(weightName: string, x: Tensor, y: Tensor, rstd: Tensor, N: number): Dispatch {
    const D = this.dims.hiddenSize;
    return rmsnormForward(this.gpu, {
      x: prefix(x, N * D),
      weight: this.weights.value(weightName),
      y: prefix(y, N * D),
      rstd: prefix(rstd, N),
      rows: N,
      dim: D,
      eps: this.dims.rmsNormEps,
    });
  }

  /** y = x·Wᵀ (+ bias) (+ scale·(x·Aᵀ)·Bᵀ). */
  #linearForward(l: number, which: LinearName, x: Tensor, y: Tensor, N: number, acts: LayerActs): Dispatch[] {
    const g = this.gpu;
    const name = linearName(l, which);
    const [outF, inF] = linearShape(this.dims, which);
    const xv = prefix(x, N * inF), yv = prefix(y, N * outF);
    const out: Dispatch[] = [
      matmul(g, {
        a: xv,
        b: this.weights.value(`${name}.weight`),
        c: yv,
        M: N,
        N: outF,
        K: inF,
        transB: true,
      }),
    ];
    if (hasBias(this.dims, which)) {
      out.push(addBias(g, { x: yv, bias: this.weights.value(`${name}.bias`), rows: N, cols: outF }));
    }
    const lora = this.weights.lora?.(name);
    if (lora) {
      const xa = prefix(acts.loraXa.get(which)!, N * lora.rank);
      out.push(matmul(g, { a: xv, b: lora.a, c: xa, M: N, N: lora.rank, K: inF, transB: true }));
      out.push(matmul(g, {
        a: xa,
        b: lora.b,
        c: yv,
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

  // ---------------------------------------------------------------------------------------------------
  // Backward

  #gradBuffers() {
    if (!this.opts.trainable) throw new Error("this model was built for inference (trainable: false)");
    if (!this.#grad) {
      const d = this.dims, N = this.opts.maxTokens;
      const t = (n: number, label: string) => this.#own(n, "f32", label);
      const Q = d.numHeads * d.headDim, KV = d.numKvHeads * d.headDim;
      this.#grad = {
        dres: t(N * d.hiddenSize, "grad.res"),
        dxn: t(N * d.hiddenSize, "grad.xn"),
        dattn: t(N * Q, "grad.attn"),
        dq: t(N * Q, "grad.q"),
        dk: t(N * KV, "grad.k"),
        dv: t(N * KV, "grad.v"),
        dI: [
          t(N * d.intermediateSize, "grad.act"),
          t(N * d.intermediateSize, "grad.gate"),
          t(N * d.intermediateSize, "grad.up"),
        ],
      };
    }
    return this.#grad;
  }

  /**
   * Records the backward pass from `io.dlogp` to every trainable parameter's gradient (accumulated with +=).
   * Must follow {@link forward} for the same batch in the same or an earlier submission.
   */
  backward(B: number, T: number, io: StepBuffers): Dispatch[] {
    const d = this.dims, g = this.gpu, N = B * T;
    const D = d.hiddenSize, I = d.intermediateSize, Q = d.numHeads * d.headDim, KV = d.numKvHeads * d.headDim;
    const G = this.#gradBuffers();
    const out: Dispatch[] = [];
    const V = d.vocabSize;
    const head = this.weights.value(this.#lmHeadName());
    const headGrad = this.weights.grad(this.#lmHeadName());
    const xf = this.#final.normed;
    // --- vocabulary projection, chunk by chunk: recompute logits, turn them into d(logits) in place.
    for (let r0 = 0; r0 < N; r0 += this.opts.logitsRows) {
      const R = Math.min(this.opts.logitsRows, N - r0);
      const logits = prefix(this.#final.logits, R * V);
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
        out.push(matmul(g, {
          a: logits,
          b: rowsView(xf, r0, R, D),
          c: headGrad,
          M: V,
          N: D,
          K: R,
          transA: true,
          accumulate: true,
        }));
      }
    }
    out.push(
      ...this.#normBackward(
        "model.norm.weight",
        G.dxn,
        this.#final.resid,
        this.#final.rstd,
        G.dres,
        N,
        false,
      ),
    );
    for (let l = d.numLayers - 1; l >= 0; l--) {
      const a = this.#layer(l);
      const [dact, dgate, dup] = G.dI;
      // --- MLP block: dres holds d(x_{l+1}).
      out.push(...this.#linearBackward(l, "down_proj", G.dres, a.act, dact, N, a, false));
      out.push(swigluBackward(g, {
        dout: prefix(dact, N * I),
        gate: prefix(a.gate, N * I),
        up: prefix(a.up, N * I),
        dgate: prefix(dgate, N * I),
        dup: prefix(dup, N * I),
        n: N * I,
      }));
      out.push(...this.#linearBackward(l, "gate_proj", dgate, a.xn2, G.dxn, N, a, false));
      out.push(...this.#linearBackward(l, "up_proj", dup, a.xn2, G.dxn, N, a, true));
      out.push(
        ...this.#normBackward(
          `model.layers.${l}.post_attention_layernorm.weight`,
          G.dxn,
          a.mid,
          a.rstd2,
          G.dres,
          N,
          true,
        ),
      );
      // --- attention block: dres holds d(mid).
      out.push(...this.#linearBackward(l, "o_proj", G.dres, a.attn, G.dattn, N, a, false));
      out.push(...attentionBackward(g, {
        q: prefix(a.q, N * Q),
        k: prefix(a.k, N * KV),
        v: prefix(a.v, N * KV),
        out: prefix(a.attn, N * Q),
        lse: prefix(a.lse, N * d.numHeads),
        dout: prefix(G.dattn, N * Q),
        dq: prefix(G.dq, N * Q),
        dk: prefix(G.dk, N * KV),
        dv: prefix(G.dv, N * KV),
        keyMask: io.keyMask,
        B,
        T,
        heads: d.numHeads,
        kvHeads: d.numKvHeads,
        headDim: d.headDim,
        scale: 1 / Math.sqrt(d.headDim),
      }));
      const rope = this.#ropeArgs(io, N);
      out.push(ropeBackward(g, { ...rope, dx: prefix(G.dq, N * Q), heads: d.numHeads }));
      out.push(ropeBackward(g, { ...rope, dx: prefix(G.dk, N * KV), heads: d.numKvHeads }));
      out.push(...this.#linearBackward(l, "q_proj", G.dq, a.xn1, G.dxn, N, a, false));
      out.push(...this.#linearBackward(l, "k_proj", G.dk, a.xn1, G.dxn, N, a, true));
      out.push(...this.#linearBackward(l, "v_proj", G.dv, a.xn1, G.dxn, N, a, true));
      out.push(
        ...this.#normBackward(
          `model.layers.${l}.input_layernorm.weight`,
          G.dxn,
          a.x,
          a.rstd1,
          G.dres,
          N,
          true,
        ),
      );
    }
    const embGrad = this.weights.grad("model.embed_tokens.weight");
    if (embGrad) {
      out.push(
        ...embeddingBackward(g, {
          ids: io.ids,
          dout: prefix(G.dres, N * D),
          dtable: embGrad,
          rows: N,
          dim: D,
        }),
      );
    }
    return out;
  }

  #normBackward(
    weightName: string,
    dy: Tensor,
    x: Tensor,
    rstd: Tensor,
    dx: Tensor,
    N: number,
    accumulate: boolean,
  ): Dispatch[] {
    const D = this.dims.hiddenSize;
    const dweight = this.weights.grad(weightName) ?? this.#scratchNormGrad();
    return rmsnormBackward(this.gpu, {
      dy: prefix(dy, N * D),
      x: prefix(x, N * D),
      weight: this.weights.value(weightName),
      rstd: prefix(rstd, N),
      dx: prefix(dx, N * D),
      dweight,
      rows: N,
      dim: D,
      accumulate,
    });
  }

  #normScratch?: Tensor;
  /** Frozen norm weights (LoRA) still need somewhere for the kernel to write their unused gradient. */
  #scratchNormGrad(): Tensor {
    this.#normScratch ??= this.#own(this.dims.hiddenSize, "f32", "frozen.norm.grad");
    return this.#normScratch;
  }

  /**
   * From dy of a linear layer: dx (= or += dy·W, plus the LoRA path), dW += dyᵀ·x, dbias += Σ dy,
   * and LoRA's dA, dB.
   */
  #linearBackward(
    l: number,
    which: LinearName,
    dy: Tensor,
    x: Tensor,
    dx: Tensor,
    N: number,
    acts: LayerActs,
    accumulate: boolean,
  ): Dispatch[] {
    const g = this.gpu;
    const name = linearName(l, which);
    const [outF, inF] = linearShape(this.dims, which);
    const dyv = prefix(dy, N * outF), xv = prefix(x, N * inF), dxv = prefix(dx, N * inF);
    const out: Dispatch[] = [
      matmul(g, {
        a: dyv,
        b: this.weights.value(`${name}.weight`),
        c: dxv,
        M: N,
        N: inF,
        K: outF,
        accumulate,
      }),
    ];
    const dW = this.weights.grad(`${name}.weight`);
    if (dW) {
      out.push(matmul(g, { a: dyv, b: xv, c: dW, M: outF, N: inF, K: N, transA: true, accumulate: true }));
    }
    const db = hasBias(this.dims, which) ? this.weights.grad(`${name}.bias`) : undefined;
    if (db) out.push(biasBackward(g, { dy: dyv, dbias: db, rows: N, cols: outF }));
    const lora = this.weights.lora?.(name);
    if (lora) {
      const r = lora.rank;
      const xa = prefix(acts.loraXa.get(which)!, N * r);
      const tmp = prefix(this.#loraTmp!, N * r);
      // tmp = dy·B  [N, r]; dx += scale·tmp·A; dB += scale·dyᵀ·xa; dA += scale·tmpᵀ·x
      out.push(matmul(g, { a: dyv, b: lora.b, c: tmp, M: N, N: r, K: outF }));
      out.push(
        matmul(g, { a: tmp, b: lora.a, c: dxv, M: N, N: inF, K: r, accumulate: true, alpha: lora.scale }),
      );
      if (lora.gradB) {
        out.push(matmul(g, {
          a: dyv,
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
          b: xv,
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

/** Rows [r0, r0+R) of a row-major [*, cols] tensor; r0 must keep the view 256-byte aligned. */
function rowsView(t: Tensor, r0: number, R: number, cols: number): Tensor {
  const offset = t.offset + r0 * cols * 4;
  if (offset % 256 !== 0) throw new RangeError(`row ${r0} of "${t.label}" is not 256-byte aligned`);
  return { buffer: t.buffer, offset, length: R * cols, dtype: t.dtype, label: t.label };
}
