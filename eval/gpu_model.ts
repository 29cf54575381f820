/**
 * The GPU model as lm-evaluation-harness's scorer sees it: a batch of token sequences in, the log-prob (and
 * is-greedy flag) of each scored next token out. The work is model/scorer.ts's {@link TokenScorer}: one
 * forward pass per batch over right-padded sequences, then the vocabulary projection of the scored rows only.
 *
 * @module
 */
import type { Gpu, Tensor } from "../gpu/runtime.ts";
import type { LoadedLlama } from "../model/load.ts";
import { TokenScorer } from "../model/scorer.ts";
import type { LogprobQuery, TokenLogprobModel, TokenLogprobs } from "./loglikelihood.ts";

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
  readonly #scorer: TokenScorer;

  /**
   * Wraps a {@link TokenScorer} over `loaded`.
   * @param gpu The device `loaded` lives on.
   * @param loaded A loaded model; its `maxTokens` bounds the tokens of one batch.
   * @param opts `maxLength`: longest query in input tokens, at most the model's RoPE table; longer queries
   * are refused. `rowAdapter`: the stacked adapters' row choice, when the model has several.
   */
  constructor(gpu: Gpu, loaded: LoadedLlama, opts: { maxLength: number; rowAdapter?: Tensor }) {
    this.gpu = gpu;
    this.loaded = loaded;
    this.maxLength = opts.maxLength;
    this.#scorer = new TokenScorer(gpu, loaded, opts);
  }

  async tokenLogprobs(batch: LogprobQuery[]): Promise<TokenLogprobs[]> {
    return (await this.#scorer.score(batch)).map(({ logprobs, greedy }) => ({ logprobs, greedy }));
  }
}
