/**
 * Scoring token sequences with a loaded model: one forward pass over a right-padded batch (lengths rounded up
 * to a multiple of 64 so recorded programs are reused), then the vocabulary projection of the scored rows
 * only, giving each scored token's log-probability, whether it was the argmax, and optionally the k most
 * probable tokens at that position. lm-evaluation-harness's scorer (eval/gpu_model.ts) and the server's
 * `echo`/`logprobs` answers (generate/engine.ts) both run on it.
 *
 * @module
 */
import { type Gpu, prefix, ProgramCache, type Tensor } from "../gpu/runtime.ts";
import { NO_TARGET } from "../kernels/logprobs.ts";
import type { StepBuffers } from "./llama.ts";
import type { LoadedLlama } from "./load.ts";

const LENGTH_BUCKET = 64;

/** One sequence to score: run the model on its ids and score predictions from `scoreFrom` on. */
export interface ScoreQuery {
  /** Token ids; the last is only a target unless `next` is set. */
  ids: readonly number[];
  /** First scored prediction t (predicting ids[t + 1]); earlier positions are context. */
  scoreFrom: number;
  /**
   * Also run the last id and predict what follows it (no target): the answer's last entry then has a NaN
   * log-prob and greedy 0, and its top tokens are the model's next-token choices.
   */
  next?: boolean;
}

/** The answer for one {@link ScoreQuery}: entry i is prediction t = scoreFrom + i. */
export interface ScoredQuery {
  /** log p(ids[t + 1] | ids[0..t]), natural log (NaN for the `next` entry). */
  logprobs: Float32Array;
  /** 1 if ids[t + 1] is the argmax of that distribution (ties: the lowest id), else 0. */
  greedy: Uint8Array;
  /** With `topK`: k ids per entry, most probable first. */
  topIds?: Uint32Array;
  /** With `topK`: their log-probs. */
  topLogprobs?: Float32Array;
}

/** Options of {@link TokenScorer.score}. */
export interface ScoreOptions {
  /** Also return the k most probable tokens at each scored position (1 ≤ k ≤ vocabulary). */
  topK?: number;
  /** The stacked adapter every row of this batch uses (model/adapters.ts; 0: none). */
  adapter?: number;
}

/** Tokens a query feeds the model: all of them with `next`, else all but the last (a target only). */
function inputsOf(q: ScoreQuery): number {
  return q.ids.length - (q.next ? 0 : 1);
}

/**
 * Scores batches of token sequences with one loaded model.
 * @example
 * ```ts
 * const scorer = new TokenScorer(gpu, loaded, { maxLength: 2048 });
 * const [r] = await scorer.score([{ ids: [1, 2, 3, 4], scoreFrom: 0 }], { topK: 1 });
 * r.logprobs.length; // 3
 * ```
 */
export class TokenScorer {
  /** The device the model runs on. */
  readonly gpu: Gpu;
  /** The model scored; its `maxTokens` bounds the tokens of one batch. */
  readonly loaded: LoadedLlama;
  /** Longest query in input tokens. */
  readonly maxLength: number;
  readonly #io: StepBuffers;
  readonly #programs = new ProgramCache();
  readonly #rowAdapter?: Tensor;
  readonly #score: { index: Tensor; targets: Tensor; logp: Tensor; lse: Tensor; greedy: Tensor };
  #top?: { k: number; ids: Tensor; logp: Tensor };

  /**
   * Allocates step buffers and per-row scoring buffers.
   * @param gpu The device `loaded` lives on.
   * @param loaded A loaded model.
   * @param opts `maxLength`: longest query in input tokens (at most the model's RoPE table);
   * `rowAdapter`: the stacked adapters' per-row choice ({@link ScoreOptions.adapter} writes it).
   */
  constructor(gpu: Gpu, loaded: LoadedLlama, opts: { maxLength: number; rowAdapter?: Tensor }) {
    this.gpu = gpu;
    this.loaded = loaded;
    this.maxLength = opts.maxLength;
    this.#rowAdapter = opts.rowAdapter;
    if (opts.maxLength > loaded.model.rope.maxPositions) {
      throw new RangeError(
        `maxLength ${opts.maxLength} exceeds the model's RoPE table (${loaded.model.rope.maxPositions})`,
      );
    }
    this.#io = loaded.model.allocStep();
    const N = loaded.model.opts.maxTokens;
    this.#score = {
      index: gpu.tensor(N, "u32", "score.index"),
      targets: gpu.tensor(N, "u32", "score.targets"),
      logp: gpu.tensor(N, "f32", "score.logp"),
      lse: gpu.tensor(N, "f32", "score.lse"),
      greedy: gpu.tensor(N, "u32", "score.greedy"),
    };
  }

  /** Releases the scorer's buffers (not the model's). */
  close(): void {
    const s = this.#score;
    for (const t of [s.index, s.targets, s.logp, s.lse, s.greedy]) t.buffer.destroy();
    if (this.#top) { for (const t of [this.#top.ids, this.#top.logp]) t.buffer.destroy(); }
    this.#programs.clear();
  }

  /** Top-k buffers with room for `k` per row, grown when a larger k is asked for. */
  #topBuffers(k: number): { k: number; ids: Tensor; logp: Tensor } {
    if (this.#top && this.#top.k >= k) return this.#top;
    if (this.#top) { for (const t of [this.#top.ids, this.#top.logp]) t.buffer.destroy(); }
    const N = this.loaded.model.opts.maxTokens;
    this.#top = {
      k,
      ids: this.gpu.tensor(N * k, "u32", "score.topIds"),
      logp: this.gpu.tensor(N * k, "f32", "score.topLogp"),
    };
    return this.#top;
  }

  /**
   * Scores a batch; answers in the same order. A batch larger than the model's workspace runs in parts;
   * a query longer than `maxLength` inputs, or than the workspace alone, is refused, naming the limit.
   */
  async score(batch: readonly ScoreQuery[], opts: ScoreOptions = {}): Promise<ScoredQuery[]> {
    if (batch.length === 0) return [];
    const model = this.loaded.model;
    const longest = Math.max(...batch.map(inputsOf));
    if (longest > this.maxLength) {
      throw new RangeError(`a query has ${longest} input tokens; maxLength is ${this.maxLength}`);
    }
    const B = batch.length,
      T = Math.min(Math.ceil(longest / LENGTH_BUCKET) * LENGTH_BUCKET, model.rope.maxPositions);
    if (B * T > model.opts.maxTokens) {
      if (B === 1) {
        throw new RangeError(
          `a query of ${longest} tokens exceeds the workspace (${model.opts.maxTokens} tokens); ` +
            "lower the maximum length",
        );
      }
      // Long sequences: the batch runs in parts that fit the workspace.
      const half = Math.ceil(B / 2);
      return [...await this.score(batch.slice(0, half), opts), ...await this.score(batch.slice(half), opts)];
    }
    return await this.#scoreFitting(batch, T, opts);
  }

  async #scoreFitting(batch: readonly ScoreQuery[], T: number, opts: ScoreOptions): Promise<ScoredQuery[]> {
    const model = this.loaded.model, g = this.gpu, io = this.#io, V = this.loaded.config.vocabSize;
    const B = batch.length;
    const k = opts.topK ?? 0;
    if (!(Number.isInteger(k) && k >= 0 && k <= V)) {
      throw new RangeError(`topK must be an integer in [0, ${V}], got ${k}`);
    }
    const ids = new Uint32Array(B * T), mask = new Uint32Array(B * T);
    const positions = Uint32Array.from({ length: B * T }, (_, r) => r % T);
    const index: number[] = [], targets: number[] = [];
    batch.forEach((q, b) => {
      const inputs = inputsOf(q);
      if (inputs < 1 || q.scoreFrom < 0 || q.scoreFrom >= inputs) {
        throw new RangeError(`query ${b}: ${q.ids.length} ids with scoreFrom ${q.scoreFrom} score nothing`);
      }
      const bad = q.ids.find((id) => !(Number.isInteger(id) && id >= 0 && id < V));
      if (bad !== undefined) {
        throw new RangeError(`query ${b}: token id ${bad} is outside the vocabulary (${V})`);
      }
      ids.set(q.ids.slice(0, inputs), b * T);
      mask.fill(1, b * T, b * T + inputs);
      for (let t = q.scoreFrom; t < inputs; t++) {
        index.push(b * T + t);
        targets.push(t + 1 < q.ids.length ? q.ids[t + 1] : NO_TARGET);
      }
    });
    const n = index.length;
    // Padded rows score row 0 against target 0 and are not read back.
    const rows = Math.min(Math.ceil(n / LENGTH_BUCKET) * LENGTH_BUCKET, model.opts.maxTokens);
    g.write(io.ids, ids);
    g.write(io.positions, positions);
    g.write(io.keyMask, mask);
    if (this.#rowAdapter) g.write(this.#rowAdapter, new Uint32Array(B * T).fill(opts.adapter ?? 0));
    else if (opts.adapter) throw new RangeError("this model has no stacked adapters to choose from");
    const idx = new Uint32Array(rows), tgt = new Uint32Array(rows);
    idx.set(index);
    tgt.set(targets);
    const sc = this.#score;
    g.write(sc.index, idx);
    g.write(sc.targets, tgt);
    const top = k > 0 ? this.#topBuffers(k) : undefined;
    // One recording for both: scoreRows reads the row groups of the forward pass recorded just before it.
    g.run(
      this.#programs.get(`score:${B}x${T}:${rows}:${k}:${top?.k ?? 0}`, () => [
        ...model.forwardHidden(B, T, io),
        ...model.scoreRows({
          index: prefix(sc.index, rows),
          targets: prefix(sc.targets, rows),
          logp: prefix(sc.logp, rows),
          lse: prefix(sc.lse, rows),
          greedy: prefix(sc.greedy, rows),
          ...(top ? { top: { k, ids: prefix(top.ids, rows * k), logp: prefix(top.logp, rows * k) } } : {}),
          n: rows,
          srcRows: B * T,
        }),
      ]),
    );
    const reads = [prefix(sc.logp, n), prefix(sc.greedy, n)];
    if (top) reads.push(prefix(top.ids, n * k), prefix(top.logp, n * k));
    const [logp, greedy, topIds, topLogp] = await g.readMany(reads) as [
      Float32Array,
      Uint32Array,
      Uint32Array?,
      Float32Array?,
    ];
    let at = 0;
    return batch.map((q) => {
      const count = inputsOf(q) - q.scoreFrom;
      const out: ScoredQuery = {
        logprobs: logp.slice(at, at + count),
        greedy: Uint8Array.from(greedy.subarray(at, at + count)),
      };
      if (q.next) out.logprobs[count - 1] = NaN;
      if (topIds && topLogp) {
        out.topIds = topIds.slice(at * k, (at + count) * k);
        out.topLogprobs = topLogp.slice(at * k, (at + count) * k);
      }
      at += count;
      return out;
    });
  }
}
