/**
 * A {@link TokenLogprobModel} over any OpenAI-compatible `/v1/completions` endpoint (vLLM, this project's
 * server), speaking exactly what lm-evaluation-harness's `local-completions` sends for log-likelihood tasks:
 * `{model, prompt: [token-id lists], temperature: 0, max_tokens: 1, logprobs: 1, seed: 1234, echo: true}`,
 * and reading each choice (sorted by `index`) as its `parse_logprobs` does: the sum of
 * `token_logprobs[ctxlen:-1]`, greedy when each of those equals the largest value of its `top_logprobs` dict.
 *
 * The ids sent are the query's ids as the local scorer would read them (context then continuation, cut to
 * the last `maxLength + 1`), `ctxlen` the index of the first scored token. lm-eval's API models hold
 * `max_length − 1` prompt tokens for one generated token; so do these, with `maxLength + 2` the context a
 * server needs. Batches are split into requests of `requestBatch` prompts sent `concurrency` at a time; the
 * client retries failed requests, and an answer of the wrong shape is an error naming the request and choice.
 *
 * @module
 */
import { type OpenAIClient, OpenAIRequestError } from "../io/openai_client.ts";
import type { LogprobQuery, TokenLogprobModel, TokenLogprobs } from "./loglikelihood.ts";

/** Options of {@link RemoteLogprobModel}. */
export interface RemoteLogprobOptions {
  /** The served model name (the request's `model`). */
  model: string;
  /** Longest query in input tokens (the prompt sent has at most one more). */
  maxLength: number;
  /** Prompts per request (lm-eval's `batch_size`; default 16). */
  requestBatch?: number;
  /** Requests in flight at once (lm-eval's `num_concurrent`; default 4). */
  concurrency?: number;
  /** Sent as `seed` (lm-eval's default 1234). */
  seed?: number;
}

/** lm-eval's `seed` default for API models. */
const LM_EVAL_SEED = 1234;

/**
 * Scores queries through a completions endpoint.
 * @example
 * ```ts
 * const client = new OpenAIClient({ baseUrl: "http://127.0.0.1:8000/v1" });
 * const model = new RemoteLogprobModel(client, { model: "my-model", maxLength: 2046 });
 * const [r] = await model.tokenLogprobs([{ ids: [1, 5, 9, 12], scoreFrom: 1 }]);
 * ```
 */
export class RemoteLogprobModel implements TokenLogprobModel {
  readonly maxLength: number;
  /** The endpoint's client. */
  readonly client: OpenAIClient;
  readonly #opts: Required<RemoteLogprobOptions>;
  /** Requests sent so far. */
  requests = 0;

  /**
   * A scorer over one served model.
   * @param client The endpoint's client (its retries apply to every request).
   * @param opts The served model, the longest query, and the traffic.
   */
  constructor(client: OpenAIClient, opts: RemoteLogprobOptions) {
    this.client = client;
    this.maxLength = opts.maxLength;
    this.#opts = { requestBatch: 16, concurrency: 4, seed: LM_EVAL_SEED, ...opts };
    for (const key of ["requestBatch", "concurrency", "maxLength"] as const) {
      if (!(Number.isInteger(this.#opts[key]) && this.#opts[key] >= 1)) {
        throw new RangeError(`${key} must be an integer ≥ 1, got ${this.#opts[key]}`);
      }
    }
  }

  /** Queries a caller should pass per call to keep every request slot busy. */
  get batchSize(): number {
    return this.#opts.requestBatch * this.#opts.concurrency;
  }

  async tokenLogprobs(batch: LogprobQuery[]): Promise<TokenLogprobs[]> {
    const size = this.#opts.requestBatch;
    const parts: LogprobQuery[][] = [];
    for (let i = 0; i < batch.length; i += size) parts.push(batch.slice(i, i + size));
    const answers: TokenLogprobs[][] = new Array(parts.length);
    let next = 0;
    const worker = async () => {
      while (next < parts.length) {
        const k = next++;
        answers[k] = await this.#request(parts[k]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#opts.concurrency, parts.length) }, worker));
    return answers.flat();
  }

  async #request(queries: LogprobQuery[]): Promise<TokenLogprobs[]> {
    for (const q of queries) {
      if (q.ids.length - 1 > this.maxLength) {
        throw new RangeError(`a query has ${q.ids.length - 1} input tokens; maxLength is ${this.maxLength}`);
      }
    }
    const number = ++this.requests;
    const where = `${this.client.baseUrl}/completions (request ${number}, ${queries.length} prompts)`;
    let json: unknown;
    try {
      json = await this.client.completions({
        model: this.#opts.model,
        prompt: queries.map((q) => [...q.ids]),
        temperature: 0,
        max_tokens: 1,
        logprobs: 1,
        seed: this.#opts.seed,
        echo: true,
      });
    } catch (e) {
      if (e instanceof OpenAIRequestError) {
        throw new OpenAIRequestError(`log-likelihood request ${number}: ${e.message}`, e.status);
      }
      throw e;
    }
    return parseLogprobChoices(json, queries, where);
  }
}

/**
 * Reads an echo + logprobs completions response as lm-eval's `parse_logprobs` does: for each choice in
 * `index` order, the log-probs of the query's scored tokens (`token_logprobs[ctxlen:-1]`) and whether each
 * equals the top of its `top_logprobs` dict. Errors name `where` and the choice.
 *
 * @example
 * ```ts
 * const [answer] = parseLogprobChoices(json, [{ ids: [1, 5, 9], scoreFrom: 1 }], "http://host/v1/completions");
 * answer.logprobs.length; // 1: the token 9
 * ```
 */
export function parseLogprobChoices(
  json: unknown,
  queries: readonly LogprobQuery[],
  where: string,
): TokenLogprobs[] {
  const fail = (message: string): never => {
    throw new OpenAIRequestError(`${where}: ${message}`);
  };
  const choices = (json as { choices?: unknown })?.choices;
  if (!Array.isArray(choices)) return fail("the response has no choices list");
  if (choices.length !== queries.length) {
    fail(`${choices.length} choices for ${queries.length} prompts (one per prompt expected, n = 1)`);
  }
  const sorted = [...choices].sort((a, b) => Number(a?.index) - Number(b?.index));
  return sorted.map((choice, i) => {
    if (choice?.index !== i) fail(`choice indexes are not 0…${queries.length - 1}`);
    const q = queries[i];
    const lp = choice.logprobs as { token_logprobs?: unknown; top_logprobs?: unknown } | null;
    const tokens = lp?.token_logprobs, tops = lp?.top_logprobs;
    // The prompt echoed, then the one generated token.
    const expected = q.ids.length + 1;
    if (!Array.isArray(tokens) || !Array.isArray(tops)) {
      return fail(
        `choice ${i} has no logprobs.token_logprobs and top_logprobs lists (echo and logprobs asked)`,
      );
    }
    if (tokens.length !== expected || tops.length !== expected) {
      fail(
        `choice ${i} has ${tokens.length} token_logprobs and ${tops.length} top_logprobs for a prompt of ` +
          `${q.ids.length} tokens with max_tokens 1; expected ${expected} (the prompt echoed and one token)`,
      );
    }
    const ctxlen = q.scoreFrom + 1;
    const count = q.ids.length - ctxlen;
    const logprobs = new Float32Array(count);
    const greedy = new Uint8Array(count);
    for (let t = 0; t < count; t++) {
      const value = tokens[ctxlen + t], top = tops[ctxlen + t];
      if (typeof value !== "number" || !Number.isFinite(value)) {
        fail(`choice ${i}: token_logprobs[${ctxlen + t}] is ${JSON.stringify(value)}, not a number`);
      }
      const values = top && typeof top === "object" ? Object.values(top as Record<string, unknown>) : [];
      if (values.length === 0 || !values.every((v) => typeof v === "number")) {
        fail(
          `choice ${i}: top_logprobs[${ctxlen + t}] is ${JSON.stringify(top)}, not a {token: logprob} dict`,
        );
      }
      logprobs[t] = value as number;
      greedy[t] = value === Math.max(...values as number[]) ? 1 : 0;
    }
    return { logprobs, greedy };
  });
}
