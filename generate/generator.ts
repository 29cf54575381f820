/**
 * Token generation on the GPU with a KV cache and continuous batching.
 *
 * A fixed number of slots share one cache. A request is admitted into a free slot by a prefill (its prompt
 * but the last token, padded to a multiple of 64 so programs are reused) that writes the cache; then every
 * decode step processes the last token of every slot at once: forward with the cache, logits, sampling on
 * the GPU, and the bookkeeping that feeds the sampled id into the next step. `stepsPerSubmit` decode steps are
 * recorded into one submission and the produced tokens are read back once per submission (each awaited
 * readback costs ~11 ms in Deno), so a sequence may run a few steps past its end; those tokens are dropped.
 *
 * @module
 */
import { type Dispatch, type Gpu, prefix, ProgramCache, slice, type Tensor } from "../gpu/runtime.ts";
import { decodeAdvance } from "../kernels/kvcache.ts";
import { SAMPLE_PARAMS, sampleDispatch, samplingParams, seenFromTokens } from "../kernels/sampling.ts";
import type { KvCacheView, Llama, StepBuffers } from "../model/llama.ts";
import type { LoadedLlama } from "../model/load.ts";

/** How to pick each next token (Hugging Face `generate()` semantics). */
export interface SamplingOptions {
  /** 0 (default) is greedy decoding. */
  temperature?: number;
  /** Keep the k most likely tokens (0: all). */
  topK?: number;
  /** Keep the smallest set with this much probability (1: all). */
  topP?: number;
  /** HF's multiplicative repetition penalty over the prompt and the output (1: none). */
  repetitionPenalty?: number;
  /** OpenAI's additive frequency penalty over the output (0: none). */
  frequencyPenalty?: number;
  /** OpenAI's additive presence penalty over the output (0: none). */
  presencePenalty?: number;
  /** Seed of the sampler; the same seed gives the same tokens. */
  seed?: number;
  /** Second seed word: requests with the same seed and different streams draw differently (`n` choices). */
  stream?: number;
}

/** One sequence to continue. */
export interface GenerationRequest extends SamplingOptions {
  /** The prompt's token ids, special tokens included; at least one. */
  promptIds: readonly number[];
  /** Most tokens to generate, stop ids excluded. */
  maxNewTokens: number;
  /** Ids that end the sequence (not included in the output). */
  stopIds?: readonly number[];
  /** Called with each batch of new tokens as they are read back; return `false` to stop here. */
  onTokens?: (ids: number[]) => boolean | void;
  /**
   * Ends the sequence with `finishReason: "abort"`; checked at each readback, so a few more steps may run.
   */
  signal?: AbortSignal;
  /** The stacked adapter this sequence uses (model/adapters.ts; 0 or absent: the base model). */
  adapter?: number;
}

/** A finished sequence. */
export interface GenerationOutput {
  /** Generated ids, without the prompt and the stop id. */
  ids: number[];
  /**
   * `stop`: a stop id, or `onTokens` returned false; `length`: `maxNewTokens` or the context was reached;
   * `abort`: the signal.
   */
  finishReason: "stop" | "length" | "abort";
  /** Tokens in the prompt. */
  promptTokens: number;
  /** The stop id that ended the sequence, when one did (it is not in `ids`). */
  stopId?: number;
}

/** Sizes of a {@link Generator}. */
export interface GeneratorOptions {
  /** Sequences decoded together (default 4). */
  slots?: number;
  /** Positions per sequence, prompt included (default: the model's RoPE table length); a multiple of 64. */
  contextTokens?: number;
  /** Decode steps per submission between readbacks (default 8). */
  stepsPerSubmit?: number;
  /**
   * The stacked adapters' per-row choice (model/adapters.ts), when the model serves several: the generator
   * writes each slot's {@link GenerationRequest.adapter} into it before every pass.
   */
  rowAdapter?: Tensor;
}

interface Slot {
  req: GenerationRequest;
  /** The request's sampling settings as the sampler's parameter row, checked when it was queued. */
  params: Float32Array;
  resolve: (o: GenerationOutput) => void;
  reject: (e: unknown) => void;
  ids: number[];
  /** Tokens of this slot already read back from the output ring. */
  consumed: number;
  /** Position of the token the next decode step consumes. */
  position: number;
  /** The stop id that ended the sequence. */
  stopId?: number;
}

const BUCKET = 64;

function roundUp(n: number, m: number): number {
  return Math.ceil(n / m) * m;
}

/**
 * Generates tokens for many requests at once on one model.
 *
 * @example
 * ```ts
 * const gen = new Generator(gpu, loaded, { slots: 4 });
 * const { ids } = await gen.generate({ promptIds: [1, 530, 99], maxNewTokens: 20 });
 * ```
 */
export class Generator {
  /** The device the model and the KV cache live on. */
  readonly gpu: Gpu;
  /** The model generating. */
  readonly model: Llama;
  /** Sequences decoded together; further requests wait for a free slot. */
  readonly slots: number;
  /** Positions per sequence in the KV cache, prompt included: the context limit. */
  readonly kvRows: number;
  /** Decode steps recorded per submission between readbacks. */
  readonly stepsPerSubmit: number;
  /** Vocabulary size: the width of each logits row. */
  readonly vocab: number;
  readonly #cacheK: Tensor[];
  readonly #cacheV: Tensor[];
  readonly #cacheMask: Tensor;
  readonly #decodeIo: StepBuffers;
  readonly #prefillIo: StepBuffers;
  readonly #live: Tensor;
  readonly #produced: Tensor;
  readonly #out: Tensor;
  readonly #sampled: Tensor;
  readonly #params: Tensor;
  readonly #counter: Tensor;
  readonly #seen: Tensor;
  readonly #rowAdapter?: Tensor;
  readonly #programs = new ProgramCache();
  readonly #slots: (Slot | undefined)[];
  readonly #pending: Slot[] = [];
  #running: Promise<void> | undefined;

  /**
   * Allocates the KV cache and per-slot buffers for `loaded`, which must have been loaded with room for
   * `max(slots, contextTokens)` tokens.
   *
   * @param gpu The device `loaded` lives on.
   * @param loaded The model; it stays owned by the caller.
   * @param opts Slots, context length and steps per submission.
   */
  constructor(gpu: Gpu, loaded: LoadedLlama, opts: GeneratorOptions = {}) {
    const model = loaded.model;
    this.gpu = gpu;
    this.model = model;
    this.slots = opts.slots ?? 4;
    this.kvRows = opts.contextTokens ?? Math.floor(model.rope.maxPositions / BUCKET) * BUCKET;
    if (this.kvRows % BUCKET !== 0 || this.kvRows < BUCKET) {
      throw new RangeError(`contextTokens must be a positive multiple of ${BUCKET}, got ${this.kvRows}`);
    }
    if (this.kvRows > model.rope.maxPositions) {
      throw new RangeError(
        `contextTokens ${this.kvRows} exceeds the model's RoPE table (${model.rope.maxPositions})`,
      );
    }
    if (model.opts.maxTokens < Math.max(this.slots, this.kvRows)) {
      throw new RangeError(
        `the model's workspace holds ${model.opts.maxTokens} rows; generation needs ${
          Math.max(this.slots, this.kvRows)
        }`,
      );
    }
    if (model.fullLogitsRows < this.slots) {
      throw new RangeError(`logits chunk (${model.fullLogitsRows} rows) < slots (${this.slots})`);
    }
    this.stepsPerSubmit = opts.stepsPerSubmit ?? 8;
    this.vocab = loaded.config.vocabSize;
    const d = model.dims, width = d.numKvHeads * d.headDim, S = this.slots;
    this.#cacheK = Array.from(
      { length: d.numLayers },
      (_, l) => gpu.tensor(S * this.kvRows * width, "f32", `cache.k${l}`),
    );
    this.#cacheV = Array.from(
      { length: d.numLayers },
      (_, l) => gpu.tensor(S * this.kvRows * width, "f32", `cache.v${l}`),
    );
    this.#cacheMask = gpu.tensor(S * this.kvRows, "u32", "cache.mask");
    this.#decodeIo = model.allocStep();
    this.#prefillIo = model.allocStep();
    this.#live = gpu.tensor(S, "u32", "slot.live");
    this.#produced = gpu.tensor(S, "u32", "slot.produced");
    this.#out = gpu.tensor(S * this.kvRows, "u32", "slot.out");
    this.#sampled = gpu.tensor(S, "u32", "slot.sampled");
    this.#params = gpu.tensor(S * SAMPLE_PARAMS.stride, "f32", "slot.params");
    this.#counter = gpu.tensor(S, "u32", "slot.counter");
    this.#seen = gpu.tensor(S * this.vocab, "u32", "slot.seen");
    this.#rowAdapter = opts.rowAdapter;
    this.#slots = new Array(S).fill(undefined);
  }

  /**
   * Releases the KV cache and the per-slot buffers (the model's weights belong to whoever loaded them).
   * Generation must be idle: closing under a running request would free buffers the GPU still uses.
   * @example
   * ```ts
   * await gen.generate({ promptIds: [1, 530], maxNewTokens: 8 });
   * gen.close();
   * ```
   */
  close(): void {
    // The decode loop may still be winding down, but with no slot or queued request it submits nothing more.
    if (this.#pending.length > 0 || this.#slots.some((s) => s)) {
      throw new Error("Generator.close(): requests are still running; await them first");
    }
    const owned = [
      ...this.#cacheK,
      ...this.#cacheV,
      this.#cacheMask,
      this.#live,
      this.#produced,
      this.#out,
      this.#sampled,
      this.#params,
      this.#counter,
      this.#seen,
    ];
    for (const t of owned) t.buffer.destroy();
    this.#programs.clear();
  }

  /**
   * Continues `req.promptIds`; resolves when the sequence ends. Requests beyond the slots wait their turn.
   * Every setting is checked before the request is queued: a bad one rejects at once with a RangeError
   * naming it (the ranges are `SAMPLING_RANGES` in kernels/sampling.ts), and a request that fails later
   * (its `onTokens` throws) fails alone, freeing its slot.
   */
  generate(req: GenerationRequest): Promise<GenerationOutput> {
    const P = req.promptIds?.length ?? 0;
    if (P === 0) {
      return Promise.reject(new RangeError("the prompt is empty: generation needs at least one token"));
    }
    if (P >= this.kvRows) {
      return Promise.reject(
        new RangeError(`the prompt has ${P} tokens; this generator holds at most ${this.kvRows - 1}`),
      );
    }
    const bad = req.promptIds.find((id) => !(Number.isInteger(id) && id >= 0 && id < this.vocab));
    if (bad !== undefined) {
      return Promise.reject(new RangeError(`token id ${bad} is outside the vocabulary (${this.vocab})`));
    }
    if (!(Number.isSafeInteger(req.maxNewTokens) && req.maxNewTokens >= 1)) {
      return Promise.reject(new RangeError(`maxNewTokens must be an integer >= 1, got ${req.maxNewTokens}`));
    }
    if (req.adapter && !this.#rowAdapter) {
      return Promise.reject(
        new RangeError(`adapter ${req.adapter}: this generator's model has no stacked adapters`),
      );
    }
    let params: Float32Array;
    try {
      params = samplingParams({
        temperature: req.temperature ?? 0,
        topK: req.topK ?? 0,
        topP: req.topP ?? 1,
        repetitionPenalty: req.repetitionPenalty ?? 1,
        frequencyPenalty: req.frequencyPenalty ?? 0,
        presencePenalty: req.presencePenalty ?? 0,
        seed: req.seed ?? Math.floor(Math.random() * 2 ** 32),
        stream: req.stream ?? 0,
      }, "generate()");
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ req, params, resolve, reject, ids: [], consumed: 0, position: P - 1 });
      this.#kick();
    });
  }

  /** Starts the decode loop unless it runs; a request queued while the loop was ending restarts it. */
  #kick(): void {
    if (this.#running) return;
    this.#running = this.#loop().finally(() => {
      this.#running = undefined;
      if (this.#pending.length > 0) this.#kick();
    });
  }

  async #loop(): Promise<void> {
    try {
      while (this.#pending.length > 0 || this.#slots.some((s) => s)) {
        this.#admit();
        if (!this.#slots.some((s) => s)) continue;
        const maxPos = Math.max(...this.#slots.map((s) => (s ? s.position : 0)));
        const Tk = Math.min(this.kvRows, roundUp(maxPos + this.stepsPerSubmit + 1, BUCKET));
        const step = this.#programs.get(`decode:${Tk}`, () => this.#decodeStep(Tk));
        if (this.#rowAdapter) {
          this.gpu.write(this.#rowAdapter, Uint32Array.from(this.#slots, (s) => s?.req.adapter ?? 0));
        }
        const steps: Dispatch[] = [];
        for (let i = 0; i < this.stepsPerSubmit; i++) steps.push(...step);
        this.gpu.run(steps);
        const [produced, out] = await this.gpu.readMany([this.#produced, this.#out]) as Uint32Array[];
        this.#collect(produced, out);
      }
    } catch (e) {
      for (const s of [...this.#slots, ...this.#pending]) s?.reject(e);
      this.#slots.fill(undefined);
      this.#pending.length = 0;
    }
  }

  /** Fills free slots from the queue. A request whose admission fails is rejected alone; its slot stays free. */
  #admit(): void {
    for (let s = 0; s < this.slots && this.#pending.length > 0; s++) {
      if (this.#slots[s]) continue;
      const slot = this.#pending.shift()!;
      if (slot.req.signal?.aborted) {
        slot.resolve({ ids: [], finishReason: "abort", promptTokens: slot.req.promptIds.length });
        s--;
        continue;
      }
      try {
        this.#start(s, slot);
        this.#slots[s] = slot;
      } catch (e) {
        this.#free(s);
        slot.reject(e);
        s--;
      }
    }
  }

  /** Slot `s`'s per-slot state, sampling settings, and the prompt's prefill. */
  #start(s: number, slot: Slot): void {
    const g = this.gpu, prompt = slot.req.promptIds, P = prompt.length;
    const mask = new Uint32Array(this.kvRows);
    mask.fill(1, 0, P);
    g.write(this.#cacheMask, mask, s * this.kvRows);
    g.write(this.#decodeIo.ids, Uint32Array.of(prompt[P - 1]), s);
    g.write(this.#decodeIo.positions, Uint32Array.of(P - 1), s);
    g.write(this.#live, Uint32Array.of(1), s);
    g.write(this.#produced, Uint32Array.of(0), s);
    g.write(this.#counter, Uint32Array.of(0), s);
    g.write(this.#params, slot.params, s * SAMPLE_PARAMS.stride);
    const promptTensor = g.upload(Uint32Array.from(prompt), "prompt");
    try {
      const dispatches = [
        ...seenFromTokens(g, {
          seen: this.#seen,
          tokens: promptTensor,
          count: P,
          row: s,
          vocab: this.vocab,
          clear: true,
        }),
      ];
      if (P > 1) {
        const T = roundUp(P - 1, BUCKET);
        const ids = new Uint32Array(T);
        ids.set(prompt.slice(0, P - 1));
        g.write(this.#prefillIo.ids, ids);
        g.write(this.#prefillIo.positions, Uint32Array.from({ length: T }, (_, i) => i));
        if (this.#rowAdapter) g.write(this.#rowAdapter, new Uint32Array(T).fill(slot.req.adapter ?? 0));
        dispatches.push(...this.#programs.get(`prefill:${s}:${T}`, () => this.#prefill(s, T)));
      }
      g.run(dispatches);
    } finally {
      promptTensor.buffer.destroy();
    }
  }

  /** Stops decoding slot `s` and marks it free. */
  #free(s: number): void {
    this.#slots[s] = undefined;
    try {
      this.gpu.write(this.#live, Uint32Array.of(0), s);
    } catch {
      // The device is gone: the decode loop's next submission fails and reports it.
    }
  }

  #slotView(t: Tensor, s: number, perSlot: number): Tensor {
    return slice(t, s * perSlot, perSlot, `${t.label}[${s}]`);
  }

  #prefill(s: number, T: number): Dispatch[] {
    const d = this.model.dims, width = d.numKvHeads * d.headDim;
    const kv: KvCacheView = {
      k: this.#cacheK.map((t) => this.#slotView(t, s, this.kvRows * width)),
      v: this.#cacheV.map((t) => this.#slotView(t, s, this.kvRows * width)),
      kvRows: this.kvRows,
      Tk: T,
      qOffset: 0,
      keyMask: this.#slotView(this.#cacheMask, s, this.kvRows),
    };
    return this.model.forwardHidden(1, T, this.#prefillIo, kv);
  }

  #decodeStep(Tk: number): Dispatch[] {
    const S = this.slots, g = this.gpu;
    const kv: KvCacheView = {
      k: this.#cacheK,
      v: this.#cacheV,
      kvRows: this.kvRows,
      Tk,
      qOffset: Tk - 1,
      keyMask: this.#cacheMask,
    };
    return [
      ...this.model.forwardHidden(S, 1, this.#decodeIo, kv),
      ...this.model.forwardLogits(0, S),
      ...sampleDispatch(g, {
        logits: prefix(this.model.logitsBuffer, S * this.vocab),
        params: this.#params,
        seen: this.#seen,
        counter: this.#counter,
        out: this.#sampled,
        rows: S,
        vocab: this.vocab,
      }),
      decodeAdvance(g, {
        sampled: this.#sampled,
        active: this.#live,
        ids: this.#decodeIo.ids,
        positions: this.#decodeIo.positions,
        keyMask: this.#cacheMask,
        produced: this.#produced,
        out: this.#out,
        slots: S,
        kvRows: this.kvRows,
        maxNew: this.kvRows,
      }),
    ];
  }

  /** Hands newly produced tokens to their requests and frees the slots of finished ones. */
  #collect(produced: Uint32Array, out: Uint32Array): void {
    for (let s = 0; s < this.slots; s++) {
      const slot = this.#slots[s];
      if (!slot) continue;
      const req = slot.req;
      const fresh: number[] = [];
      let reason: GenerationOutput["finishReason"] | undefined;
      for (let i = slot.consumed; i < produced[s] && !reason; i++) {
        const id = out[s * this.kvRows + i];
        slot.consumed = i + 1;
        slot.position++;
        if (req.stopIds?.includes(id)) {
          reason = "stop";
          slot.stopId = id;
          break;
        }
        fresh.push(id);
        if (slot.ids.length + fresh.length >= req.maxNewTokens) reason = "length";
        else if (slot.position >= this.kvRows - 1) reason = "length";
      }
      slot.ids.push(...fresh);
      try {
        if (fresh.length > 0 && req.onTokens?.(fresh) === false) reason ??= "stop";
      } catch (e) {
        // The caller's callback failed: that request ends with its error, the others decode on.
        this.#free(s);
        slot.reject(e);
        continue;
      }
      if (req.signal?.aborted) reason ??= "abort";
      if (reason) {
        this.#free(s);
        slot.resolve({
          ids: slot.ids,
          finishReason: reason,
          promptTokens: req.promptIds.length,
          ...(slot.stopId !== undefined ? { stopId: slot.stopId } : {}),
        });
      }
    }
  }
}
