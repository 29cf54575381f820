/**
 * lm-evaluation-harness's `loglikelihood` requests, independent of any model: how a (context, continuation)
 * pair becomes token ids, which tokens are scored, and how their log-probabilities add up.
 *
 * For each pair, as lm-eval's Hugging Face backend does:
 * 1. trailing whitespace of the context moves onto the front of the continuation;
 * 2. `whole = encode(context + continuation)` and `ctx = encode(context)`, both with the tokenizer's default
 *    special tokens (a Llama tokenizer.json prepends BOS; `addSpecialTokens: false` gives the older
 *    lm-eval 0.4.x behaviour); the continuation's tokens are `whole[ctx.length:]`, so a token that merges
 *    across the boundary belongs to the continuation;
 * 3. the model reads `(ctx + cont)` cut to its last `maxLength + 1` tokens, minus the last one, and the
 *    continuation's log-probs are the last `cont.length` predictions; the result is their sum and whether
 *    every continuation token was the argmax (`is_greedy`).
 *
 * Batching: requests are grouped by document (all choices of one document share a context and go in the
 * same batch, so a model can reuse the shared prefix), groups run longest first (as lm-eval sorts), and
 * identical token sequences are scored once.
 *
 * @module
 */

/** The tokenizer shape this module needs (a `TextTokenizer` from `text/tokenizer.ts` fits). */
export interface TokenEncoder {
  /** Token ids of `text`; `addSpecialTokens` undefined means the tokenizer's default. */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
}

/** One sequence for the model to score: run it on `ids[0..len-2]`, score predictions from `scoreFrom`. */
export interface LogprobQuery {
  /** Token ids, 2 ≤ length ≤ maxLength + 1; the last id is only a target, never an input. */
  ids: number[];
  /** First scored prediction t (predicting ids[t + 1]); earlier positions are context the model may skip. */
  scoreFrom: number;
}

/** The model's answer for one {@link LogprobQuery}; both arrays have `ids.length - 1 - scoreFrom` entries. */
export interface TokenLogprobs {
  /** Entry i: log p(ids[scoreFrom + i + 1] | ids[0..scoreFrom + i]), natural log. */
  logprobs: Float32Array;
  /** Entry i: 1 if ids[scoreFrom + i + 1] is the argmax of that distribution (ties: the lowest id wins). */
  greedy: Uint8Array;
}

/**
 * What a language model must provide to be scored. The GPU model implements it: one forward pass over a
 * right-padded batch, log-softmax at the scored positions only, gathered at the target ids.
 *
 * @example
 * ```ts
 * const model: TokenLogprobModel = {
 *   maxLength: 2048,
 *   tokenLogprobs: async (batch) => batch.map((q) => myForward(q.ids, q.scoreFrom)),
 * };
 * ```
 */
export interface TokenLogprobModel {
  /** Longest input in tokens (lm-eval's `max_length`). */
  readonly maxLength: number;
  /** Scores a batch; answers in the same order. */
  tokenLogprobs(batch: LogprobQuery[]): Promise<TokenLogprobs[]>;
}

/** One lm-eval loglikelihood request: log p(continuation | context). `group` keeps a document's choices together. */
export interface LoglikelihoodRequest {
  context: string;
  continuation: string;
  /** Requests with the same group (e.g. the choices of one document) are put in the same batch when they fit. */
  group?: string | number;
}

/** lm-eval's answer to a loglikelihood request. */
export interface LoglikelihoodResult {
  loglikelihood: number;
  isGreedy: boolean;
}

/** Options for {@link scoreRequests}. */
export interface ScoreOptions {
  /** Sequences per model call (default 16). */
  batchSize?: number;
  /** Passed to `encode`; undefined keeps the tokenizer's default special tokens (current lm-eval). */
  addSpecialTokens?: boolean;
  /** Token id used as the context when a context is empty (lm-eval's `eot_token_id`). */
  eotTokenId?: number;
  /** Called after each model call with the number of requests answered so far. */
  onProgress?: (progress: { done: number; total: number }) => void;
  /**
   * Called for each request longer than `maxLength + 1` tokens, with how many tokens were cut from the start
   * of its context (lm-eval cuts them silently; a few-shot context loses its first shots this way).
   */
  onTruncated?: (request: number, cutTokens: number) => void;
}

/** A request after tokenization: the model input and how many trailing predictions are the continuation. */
export interface EncodedRequest {
  /** Context tokens followed by continuation tokens, left-truncated to maxLength + 1 (last one not an input). */
  ids: number[];
  /** Number of continuation tokens (the last `contLength` ids). */
  contLength: number;
}

/**
 * Moves the context's trailing whitespace onto the continuation, as lm-eval's `_encode_pair` does.
 *
 * @example
 * ```ts
 * splitTrailingSpace("답변: ", " 예"); // ["답변:", "  예"]
 * ```
 */
export function splitTrailingSpace(context: string, continuation: string): [string, string] {
  const kept = context.replace(/\s+$/u, "");
  return [kept, context.slice(kept.length) + continuation];
}

/**
 * Tokenizes one request as lm-eval does and applies its truncation rule.
 *
 * @example
 * ```ts
 * const enc = encodeRequest(tokenizer, "질문: 예?", " 예", 2048);
 * enc.ids.slice(-enc.contLength); // the continuation's tokens
 * ```
 */
export function encodeRequest(
  tokenizer: TokenEncoder,
  context: string,
  continuation: string,
  maxLength: number,
  options: Pick<ScoreOptions, "addSpecialTokens" | "eotTokenId"> = {},
): EncodedRequest {
  const { ids, contLength } = encodeCut(tokenizer, context, continuation, maxLength, options);
  return { ids, contLength };
}

/** {@link encodeRequest}, with the number of tokens the truncation cut from the start. */
function encodeCut(
  tokenizer: TokenEncoder,
  context: string,
  continuation: string,
  maxLength: number,
  options: Pick<ScoreOptions, "addSpecialTokens" | "eotTokenId">,
): EncodedRequest & { cut: number } {
  if (!(Number.isInteger(maxLength) && maxLength >= 1)) {
    throw new RangeError(`loglikelihood: maxLength must be a positive integer, got ${maxLength}`);
  }
  const encodeOptions = options.addSpecialTokens === undefined
    ? undefined
    : { addSpecialTokens: options.addSpecialTokens };
  let contextIds: number[];
  let contIds: number[];
  if (context === "") {
    if (options.eotTokenId === undefined) {
      throw new Error(
        "loglikelihood: an empty context needs eotTokenId (lm-eval scores it after end-of-text)",
      );
    }
    contextIds = [options.eotTokenId];
    contIds = tokenizer.encode(continuation, encodeOptions);
  } else {
    const [ctx, cont] = splitTrailingSpace(context, continuation);
    const whole = tokenizer.encode(ctx + cont, encodeOptions);
    contextIds = tokenizer.encode(ctx, encodeOptions);
    contIds = whole.slice(contextIds.length);
  }
  if (contIds.length === 0) {
    throw new Error(`loglikelihood: continuation ${JSON.stringify(continuation)} has no tokens of its own`);
  }
  if (contIds.length > maxLength) {
    throw new Error(
      `loglikelihood: continuation has ${contIds.length} tokens, more than maxLength ${maxLength}`,
    );
  }
  const whole = [...contextIds, ...contIds];
  const ids = whole.slice(-(maxLength + 1));
  return { ids, contLength: contIds.length, cut: whole.length - ids.length };
}

/** A unique token sequence to score and the requests that share it. */
interface Job {
  ids: number[];
  contLength: number;
  requests: number[];
  group: string;
}

function jobKey(ids: number[], contLength: number): string {
  return `${contLength}:${ids.join(",")}`;
}

/** Unique sequences, in first-seen order; identical (ids, contLength) pairs are merged. */
function buildJobs(encoded: EncodedRequest[], groups: string[]): Job[] {
  const byKey = new Map<string, Job>();
  encoded.forEach((enc, i) => {
    const key = jobKey(enc.ids, enc.contLength);
    const job = byKey.get(key);
    if (job) job.requests.push(i);
    else byKey.set(key, { ids: enc.ids, contLength: enc.contLength, requests: [i], group: groups[i] });
  });
  return [...byKey.values()];
}

/**
 * Orders jobs longest first, lm-eval style, keeping each group's jobs together: groups are ordered by their
 * longest sequence (ties by first appearance) and jobs within a group longest first.
 */
function orderGroups(jobs: Job[]): Job[][] {
  const groups = new Map<string, Job[]>();
  for (const job of jobs) {
    const list = groups.get(job.group);
    if (list) list.push(job);
    else groups.set(job.group, [job]);
  }
  return [...groups.values()]
    .map((list, order) => {
      list.sort((a, b) => b.ids.length - a.ids.length);
      return { list, longest: list[0].ids.length, order };
    })
    .sort((a, b) => b.longest - a.longest || a.order - b.order)
    .map((g) => g.list);
}

/** Packs groups into batches of at most `batchSize`, starting a new batch rather than splitting a group that fits. */
function batchGroups(groups: Job[][], batchSize: number): Job[][] {
  const batches: Job[][] = [];
  let current: Job[] = [];
  for (const group of groups) {
    if (current.length > 0 && current.length + group.length > batchSize) {
      batches.push(current);
      current = [];
    }
    for (const job of group) {
      current.push(job);
      if (current.length === batchSize) {
        batches.push(current);
        current = [];
      }
    }
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

function checkAnswer(answer: TokenLogprobs | undefined, job: Job, index: number): void {
  const expected = job.contLength;
  if (!answer || answer.logprobs.length !== expected || answer.greedy.length !== expected) {
    throw new Error(
      `loglikelihood: the model answered query ${index} with ${
        answer?.logprobs.length ?? "no"
      } log-probs and ` +
        `${answer?.greedy.length ?? "no"} greedy flags; expected ${expected} of each`,
    );
  }
  if (answer.logprobs.some((x) => Number.isNaN(x))) {
    throw new Error(`loglikelihood: the model returned NaN log-probs for query ${index}`);
  }
}

/** Sums in float64 (lm-eval sums float32 log-probs on the GPU, then takes a Python float). */
function sumLogprobs(logprobs: Float32Array): number {
  let s = 0;
  for (const x of logprobs) s += x;
  return s;
}

/**
 * Scores lm-eval loglikelihood requests with a model; results come back in request order.
 *
 * @example
 * ```ts
 * const [yes, no] = await scoreRequests(model, tokenizer, [
 *   { context: "질문: 하늘은 파란가? 답변:", continuation: " 예", group: 0 },
 *   { context: "질문: 하늘은 파란가? 답변:", continuation: " 아니오", group: 0 },
 * ], { batchSize: 8 });
 * yes.loglikelihood > no.loglikelihood; // the model prefers 예
 * ```
 */
export async function scoreRequests(
  model: TokenLogprobModel,
  tokenizer: TokenEncoder,
  requests: readonly LoglikelihoodRequest[],
  options: ScoreOptions = {},
): Promise<LoglikelihoodResult[]> {
  const batchSize = options.batchSize ?? 16;
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) {
    throw new RangeError(`batchSize must be ≥ 1, got ${batchSize}`);
  }
  const encoded = encodeAll(tokenizer, requests, model.maxLength, options);
  const groups = requests.map((r, i) => (r.group === undefined ? `#${i}` : `g${String(r.group)}`));
  const batches = batchGroups(orderGroups(buildJobs(encoded, groups)), batchSize);
  const results: LoglikelihoodResult[] = new Array(requests.length);
  let done = 0;
  for (const batch of batches) {
    const queries = batch.map((job) => ({ ids: job.ids, scoreFrom: job.ids.length - 1 - job.contLength }));
    const answers = await model.tokenLogprobs(queries);
    batch.forEach((job, k) => {
      checkAnswer(answers[k], job, k);
      const result = {
        loglikelihood: sumLogprobs(answers[k].logprobs),
        isGreedy: answers[k].greedy.every((g) => g === 1),
      };
      for (const r of job.requests) results[r] = result;
      done += job.requests.length;
    });
    options.onProgress?.({ done, total: requests.length });
  }
  return results;
}

/**
 * Encodes every request. A few recent encodings are remembered because the choices of one document repeat
 * the same (often long, few-shot) context one after another.
 */
function encodeAll(
  tokenizer: TokenEncoder,
  requests: readonly LoglikelihoodRequest[],
  maxLength: number,
  options: ScoreOptions,
): EncodedRequest[] {
  const recent = new Map<string, number[]>();
  const memo: TokenEncoder = {
    encode(text, opts) {
      const hit = recent.get(text);
      if (hit) return hit;
      const ids = tokenizer.encode(text, opts);
      recent.set(text, ids);
      if (recent.size > 4) recent.delete(recent.keys().next().value as string);
      return ids;
    },
  };
  return requests.map((r, i) => {
    const { ids, contLength, cut } = encodeCut(memo, r.context, r.continuation, maxLength, options);
    if (cut > 0) options.onTruncated?.(i, cut);
    return { ids, contLength };
  });
}
