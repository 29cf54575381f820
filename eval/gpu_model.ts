/**
 * The GPU model as lm-evaluation-harness's scorer sees it: a batch of token sequences in, the log-prob (and
 * is-greedy flag) of each scored next token out. One forward pass per batch over right-padded sequences
 * (lengths rounded up to a multiple of 64 so recorded programs are reused), then the vocabulary projection
 * of the scored rows only.
 *
 * @module
 */
import { type Gpu, prefix, ProgramCache, type Tensor } from "../gpu/runtime.ts";
import type { LoadedLlama } from "../model/load.ts";
import type { StepBuffers } from "../model/llama.ts";
import { writeBatch } from "../model/inputs.ts";
import type { LogprobQuery, TokenLogprobModel, TokenLogprobs } from "./loglikelihood.ts";

const LENGTH_BUCKET = 64;

/**
 * Scores token sequences with a loaded model.
 * @example
 * ```ts
 * const scorer = new GpuLogprobModel(gpu, loaded, { maxLength: 2048 });
 * const [r] = await scorer.tokenLogprobs([{ ids: [1, 2, 3, 4], scoreFrom: 2 }]);
 * ```
 */
export class GpuLogprobModel implements TokenLogprobModel {
  /** The device the model runs on. */
  readonly gpu: Gpu;
  /** The model scored, loaded with room for `batchSize × maxLength` tokens. */
  readonly loaded: LoadedLlama;
  readonly maxLength: number;
  readonly #io: StepBuffers;
  readonly #programs = new ProgramCache();
  /** Per scored row: its row in the forward, its target id, and the results. */
  readonly #score: { index: Tensor; targets: Tensor; logp: Tensor; lse: Tensor; greedy: Tensor };

  /**
   * Allocates the model's step buffers and the per-row scoring buffers.
   * @param gpu The device `loaded` lives on.
   * @param loaded A loaded model; its `maxTokens` bounds the tokens of one batch.
   * @param opts `maxLength`: longest query in input tokens, at most the model's RoPE table; longer queries
   * are refused.
   */
  constructor(gpu: Gpu, loaded: LoadedLlama, opts: { maxLength: number }) {
    this.gpu = gpu;
    this.loaded = loaded;
    this.maxLength = opts.maxLength;
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

  async tokenLogprobs(batch: LogprobQuery[]): Promise<TokenLogprobs[]> {
    if (batch.length === 0) return [];
    const model = this.loaded.model, g = this.gpu, io = this.#io;
    const longest = Math.max(...batch.map((q) => q.ids.length - 1));
    if (longest > this.maxLength) {
      throw new RangeError(`a query has ${longest} input tokens; maxLength is ${this.maxLength}`);
    }
    const B = batch.length,
      T = Math.min(Math.ceil(longest / LENGTH_BUCKET) * LENGTH_BUCKET, model.rope.maxPositions);
    if (B * T > model.opts.maxTokens) {
      throw new RangeError(
        `a batch of ${B}×${T} tokens exceeds the workspace (${model.opts.maxTokens}); lower --batch-size`,
      );
    }
    const ids = new Int32Array(B * T), mask = new Uint32Array(B * T);
    const index: number[] = [], targets: number[] = [];
    batch.forEach((q, b) => {
      const inputs = q.ids.length - 1;
      if (inputs < 1 || q.scoreFrom < 0 || q.scoreFrom >= inputs) {
        throw new RangeError(`query ${b}: ${q.ids.length} ids with scoreFrom ${q.scoreFrom} score nothing`);
      }
      ids.set(q.ids.slice(0, inputs), b * T);
      mask.fill(1, b * T, b * T + inputs);
      for (let t = q.scoreFrom; t < inputs; t++) {
        index.push(b * T + t);
        targets.push(q.ids[t + 1]);
      }
    });
    const n = index.length;
    // Padded rows score row 0 against target 0 and are not read back.
    const rows = Math.min(Math.ceil(n / LENGTH_BUCKET) * LENGTH_BUCKET, model.opts.maxTokens);
    writeBatch(g, io, { B, T, ids, attentionMask: mask });
    const idx = new Uint32Array(rows), tgt = new Uint32Array(rows);
    idx.set(index);
    tgt.set(targets);
    const sc = this.#score;
    g.write(sc.index, idx);
    g.write(sc.targets, tgt);
    g.run([
      ...this.#programs.get(`fwd:${B}x${T}`, () => model.forwardHidden(B, T, io)),
      ...this.#programs.get(`score:${B}x${T}:${rows}`, () =>
        model.scoreRows({
          index: prefix(sc.index, rows),
          targets: prefix(sc.targets, rows),
          logp: prefix(sc.logp, rows),
          lse: prefix(sc.lse, rows),
          greedy: prefix(sc.greedy, rows),
          n: rows,
          srcRows: B * T,
        })),
    ]);
    const [logp, greedy] = await g.readMany([prefix(sc.logp, n), prefix(sc.greedy, n)]) as [
      Float32Array,
      Uint32Array,
    ];
    let k = 0;
    return batch.map((q) => {
      const count = q.ids.length - 1 - q.scoreFrom;
      const out = {
        logprobs: logp.slice(k, k + count),
        greedy: Uint8Array.from(greedy.subarray(k, k + count)),
      };
      k += count;
      return out;
    });
  }
}
