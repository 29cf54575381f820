/**
 * A small client for OpenAI-compatible chat endpoints (OpenAI itself, vLLM, or this project's server), with
 * the retries a long evaluation needs: 408, 409, 429, 5xx, network failures and per-attempt timeouts are
 * retried with exponential backoff (honouring `Retry-After`); other 4xx are the caller's mistake and fail at
 * once with the server's message.
 *
 * {@link ChatClient} is what a caller that only chats (the win-rate judge) needs: {@link OpenAIClient} is
 * one over HTTP; an in-process judge (eval/winrate/rule_judge.ts) is another.
 * @module
 */

/**
 * Anything that answers a chat request as an OpenAI-compatible endpoint would. A request that fails for good
 * (the endpoint is down, refuses the request) rejects with {@link OpenAIRequestError}; callers that judge
 * many requests count those and go on, and treat any other rejection as a bug.
 *
 * @example
 * ```ts
 * const echo: ChatClient = {
 *   chat: (body) => Promise.resolve({ content: body.messages.at(-1)!.content, finishReason: "stop" }),
 * };
 * (await echo.chat({ model: "echo", messages: [{ role: "user", content: "안녕" }] })).content; // "안녕"
 * ```
 */
export interface ChatClient {
  /** One chat completion, non-streamed: the first choice's text. */
  chat(body: ChatRequestBody): Promise<ChatReply>;
}

/**
 * Extra attempts after a request's first, unless told otherwise (408, 409, 429, 5xx, network errors, timeouts).
 * @example
 * ```ts
 * new OpenAIClient({ baseUrl: "http://127.0.0.1:8080/v1", retries: HTTP_RETRIES });
 * ```
 */
export const HTTP_RETRIES = 5;

/** Options for {@link OpenAIClient}. */
export interface OpenAIClientOptions {
  /** Base URL as OpenAI SDKs take it, e.g. `https://api.openai.com/v1`; a bare host gets `/v1` added. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>` when set. */
  apiKey?: string;
  /** Extra attempts after the first (default {@link HTTP_RETRIES}). */
  retries?: number;
  /** First backoff delay (default 1000 ms); it doubles per attempt, with jitter. */
  retryBaseMs?: number;
  /** Longest single wait between attempts (default 30 s). */
  retryMaxMs?: number;
  /** Per-attempt timeout (default 5 min). */
  timeoutMs?: number;
}

/** The fields of a chat request this client sends. */
export interface ChatRequestBody {
  /** The model id the endpoint serves. */
  model: string;
  /** The conversation, oldest turn first. */
  messages: { role: "system" | "user" | "assistant"; content: string }[];
  /** 0 for greedy decoding; the endpoint's default when absent. */
  temperature?: number;
  /** The reply budget in tokens; the endpoint's default when absent. */
  max_tokens?: number;
  /** Makes sampling reproducible where the endpoint supports it. */
  seed?: number;
}

/** The fields of a legacy completions request this client sends (lm-eval's `local-completions` payload). */
export interface CompletionRequestBody {
  /** The model id the endpoint serves. */
  model: string;
  /** Text, texts, token ids, or lists of token ids. */
  prompt: string | string[] | number[] | number[][];
  /** Tokens to generate (0 with `echo` scores the prompt only, where the endpoint allows it). */
  max_tokens?: number;
  /** 0 for greedy decoding. */
  temperature?: number;
  /** Log-probabilities of each token and this many alternatives per position. */
  logprobs?: number;
  /** Return the prompt (and its tokens' log-probabilities) before the completion. */
  echo?: boolean;
  /** Makes sampling reproducible where the endpoint supports it. */
  seed?: number;
}

/** The parts of a chat response callers use. */
export interface ChatReply {
  /** The first choice's text. */
  content: string;
  /** Why the reply ended (`stop`, `length`, …), as the endpoint says; null when it does not. */
  finishReason: string | null;
  /** Token counts, when the endpoint reports them. */
  usage?: { prompt_tokens: number; completion_tokens: number };
}

/**
 * A request that failed for good; `status` is absent for network failures.
 *
 * @example
 * ```ts
 * try {
 *   await client.chat(body);
 * } catch (e) {
 *   if (e instanceof OpenAIRequestError && e.status === 401) console.error("check the API key");
 * }
 * ```
 */
export class OpenAIRequestError extends Error {
  readonly status?: number;
  constructor(message: string, status?: number) {
    super(message);
    this.name = "OpenAIRequestError";
    this.status = status;
  }
}

const RETRYABLE_STATUS = new Set([408, 409, 429]);

/**
 * A client bound to one endpoint.
 *
 * @example
 * ```ts
 * const judge = new OpenAIClient({ baseUrl: "https://api.openai.com/v1", apiKey: Deno.env.get("OPENAI_API_KEY") });
 * const reply = await judge.chat({ model: "gpt-4o", messages: [{ role: "user", content: "안녕" }], temperature: 0 });
 * console.log(reply.content);
 * ```
 */
export class OpenAIClient implements ChatClient {
  /** The endpoint's base URL, normalized (`…/v1`). */
  readonly baseUrl: string;
  readonly #apiKey?: string;
  readonly #retries: number;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #timeoutMs: number;

  /**
   * A client for one endpoint.
   * @param opts The endpoint, its key, and the retry and timeout settings.
   */
  constructor(opts: OpenAIClientOptions) {
    this.baseUrl = normalizeBaseUrl(opts.baseUrl);
    this.#apiKey = opts.apiKey;
    this.#retries = opts.retries ?? HTTP_RETRIES;
    this.#baseMs = opts.retryBaseMs ?? 1000;
    this.#maxMs = opts.retryMaxMs ?? 30_000;
    this.#timeoutMs = opts.timeoutMs ?? 300_000;
  }

  /** `POST /chat/completions`, non-streamed; returns the first choice's text. */
  async chat(body: ChatRequestBody): Promise<ChatReply> {
    const json = await this.#request("POST", "/chat/completions", body);
    const choice = (json as { choices?: { message?: { content?: unknown }; finish_reason?: unknown }[] })
      .choices?.[0];
    const content = choice?.message?.content;
    if (typeof content !== "string") {
      throw new OpenAIRequestError(
        `${this.baseUrl}/chat/completions: the response has no choices[0].message.content string`,
      );
    }
    return {
      content,
      finishReason: typeof choice?.finish_reason === "string" ? choice.finish_reason : null,
      usage: (json as { usage?: ChatReply["usage"] }).usage,
    };
  }

  /**
   * `POST /completions` (the legacy text completions), non-streamed; returns the response JSON as the
   * endpoint sent it, for callers that read `choices[].logprobs`.
   */
  async completions(body: CompletionRequestBody): Promise<unknown> {
    return await this.#request("POST", "/completions", body);
  }

  /** `GET /models`: the ids the endpoint serves, in its order. */
  async listModels(): Promise<string[]> {
    return (await this.listModelCards()).map((m) => m.id);
  }

  /**
   * `GET /models` with each model's context length when the endpoint says it (vLLM's and this project's
   * `max_model_len`).
   */
  async listModelCards(): Promise<{ id: string; maxModelLen?: number }[]> {
    const json = await this.#request("GET", "/models");
    const data = (json as { data?: { id?: unknown; max_model_len?: unknown }[] }).data;
    if (!Array.isArray(data) || !data.every((m) => typeof m?.id === "string")) {
      throw new OpenAIRequestError(`${this.baseUrl}/models: expected { data: [{ id }] }`);
    }
    return data.map((m) => ({
      id: m.id as string,
      ...(Number.isInteger(m.max_model_len) ? { maxModelLen: m.max_model_len as number } : {}),
    }));
  }

  async #request(method: string, path: string, body?: unknown): Promise<unknown> {
    const url = this.baseUrl + path;
    for (let attempt = 0;; attempt++) {
      const outcome = await this.#attempt(method, url, body);
      if (outcome.ok) return outcome.json;
      if (!outcome.retryable || attempt >= this.#retries) {
        throw new OpenAIRequestError(
          `${method} ${url} failed${attempt > 0 ? ` after ${attempt + 1} attempts` : ""}: ${outcome.message}`,
          outcome.status,
        );
      }
      await sleep(this.#backoff(attempt, outcome.retryAfterMs));
    }
  }

  async #attempt(method: string, url: string, body: unknown): Promise<AttemptOutcome> {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), this.#timeoutMs);
    try {
      const res = await fetch(url, {
        method,
        headers: {
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...(this.#apiKey ? { authorization: `Bearer ${this.#apiKey}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: ctl.signal,
      });
      const text = await res.text();
      if (res.ok) return parseSuccess(text);
      return {
        ok: false,
        status: res.status,
        retryable: RETRYABLE_STATUS.has(res.status) || res.status >= 500,
        retryAfterMs: retryAfterMs(res.headers.get("retry-after")),
        message: `HTTP ${res.status}: ${errorMessage(text)}`,
      };
    } catch (e) {
      const message = ctl.signal.aborted ? `no answer within ${this.#timeoutMs} ms` : String(e);
      return { ok: false, retryable: true, message };
    } finally {
      clearTimeout(timer);
    }
  }

  #backoff(attempt: number, retryAfter?: number): number {
    const exp = Math.min(this.#maxMs, this.#baseMs * 2 ** attempt);
    const jittered = exp * (0.5 + Math.random() / 2);
    return Math.min(this.#maxMs, Math.max(jittered, retryAfter ?? 0));
  }
}

type AttemptOutcome =
  | { ok: true; json: unknown }
  | { ok: false; status?: number; retryable: boolean; retryAfterMs?: number; message: string };

function parseSuccess(text: string): AttemptOutcome {
  try {
    return { ok: true, json: JSON.parse(text) };
  } catch {
    return { ok: false, retryable: false, message: `the response is not JSON: ${text.slice(0, 200)}` };
  }
}

function errorMessage(text: string): string {
  try {
    const msg = JSON.parse(text)?.error?.message;
    if (typeof msg === "string") return msg;
  } catch {
    // Not OpenAI's error JSON: show the raw text.
  }
  return text.slice(0, 300);
}

function retryAfterMs(header: string | null): number | undefined {
  const seconds = header === null ? NaN : Number(header);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

/**
 * Trims trailing slashes and adds `/v1` to a URL that has no path.
 *
 * @example
 * ```ts
 * normalizeBaseUrl("http://127.0.0.1:8080/"); // "http://127.0.0.1:8080/v1"
 * normalizeBaseUrl("https://api.openai.com/v1"); // unchanged
 * ```
 */
export function normalizeBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TypeError(`not a URL: ${JSON.stringify(raw)} (expected e.g. http://127.0.0.1:8080/v1)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`expected an http(s) URL, got ${JSON.stringify(raw)}`);
  }
  const path = url.pathname.replace(/\/+$/, "");
  return `${url.origin}${path === "" ? "/v1" : path}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
