/**
 * OpenAI's request and response shapes for chat and text completions, and the validation that turns a
 * request body into sampling settings. Every rejection is a 400 naming the field and what was expected.
 *
 * Field mapping (extensions beyond OpenAI's API are marked):
 * - `max_completion_tokens` (newer name) or `max_tokens`: integer ≥ 1 (0 for text completions with `echo`,
 *   as vLLM allows, to score the prompt only). Absent: as much as the context and the server's limit allow
 *   for chat, 16 for text completions (OpenAI's default there).
 * - `temperature` [0, 2] (default 1; 0 is greedy), `top_p` (0, 1] (default 1), `seed` an integer in
 *   [0, 2^32) (the sampler's seed is one u32 word).
 * - `top_k` (extension): integer ≥ 0, 0 disables it.
 * - `repetition_penalty` (extension, vLLM's name): Hugging Face's multiplicative penalty on every token of
 *   the prompt and the output so far, > 0, 1 disables it.
 * - `frequency_penalty` and `presence_penalty` [-2, 2]: OpenAI's additive penalties on the output's tokens
 *   (`logit − frequency·count − presence·[count > 0]`), 0 disables them. All three combine.
 * - The sampling fields are checked against the sampler's own ranges (`SAMPLING_RANGES` in
 *   kernels/sampling.ts), narrowed where OpenAI's API is narrower, so a request accepted here never fails
 *   inside the engine.
 * - `stop`: a string or a list of up to 4 non-empty strings.
 * - `n` (1–{@link MAX_CHOICES}): choices per prompt, drawn with the same seed on different random streams.
 * - `stream`, `stream_options.include_usage` (only with `stream`).
 * - Text completions: `prompt` is a string, a list of strings, a list of token ids or a list of such lists
 *   (one choice per prompt and `n`, `index` = prompt · n + choice, as OpenAI numbers them); `echo` puts the
 *   prompt before the completion (and its tokens in `logprobs`); `logprobs` (0–{@link MAX_TOP_LOGPROBS}) asks
 *   for each token's log-probability and that many alternatives per position.
 * - Chat: `logprobs: true` with `top_logprobs` (0–{@link MAX_TOP_LOGPROBS}) alternatives per token.
 * - `logprobs` or `echo` with `stream` is refused (log-probabilities are computed after generation).
 * - Features the engine lacks (tools, suffix, best_of > 1, logit_bias, non-text response_format) are
 *   rejected rather than silently ignored; unknown fields such as `user` are ignored.
 *
 * @module
 */
import { inRange, type NumberRange, rangeText, SAMPLING_RANGES } from "../kernels/sampling.ts";
import type { ChatMessage } from "../generate/engine_contract.ts";
import { ApiError } from "./errors.ts";

/** Token counts reported with every completion. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** OpenAI's finish reasons this server produces. */
export type OpenAIFinishReason = "stop" | "length";

/** Most choices per prompt (`n`). */
export const MAX_CHOICES = 128;
/** Most alternatives per position (`logprobs` of completions, `top_logprobs` of chat), as vLLM's default. */
export const MAX_TOP_LOGPROBS = 20;

/** The legacy completions `logprobs` object (OpenAI's, as vLLM returns it). */
export interface CompletionLogprobs {
  /** Each token's text piece (joined: the choice's `text`). */
  tokens: string[];
  /** Each token's log-probability; null for a prompt's first token (nothing predicts it). */
  token_logprobs: (number | null)[];
  /** Per token, the most probable tokens there and their log-probabilities; null where `token_logprobs` is. */
  top_logprobs: (Record<string, number> | null)[];
  /** Each token's character offset in the choice's `text`. */
  text_offset: number[];
}

/** One token of chat `logprobs.content`. */
export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  /** The token's UTF-8 bytes. */
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

/** Chat `logprobs`. */
export interface ChatLogprobs {
  content: ChatTokenLogprob[];
}

/** A `chat.completion` response. */
export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: {
    index: number;
    message: { role: "assistant"; content: string };
    logprobs: ChatLogprobs | null;
    finish_reason: OpenAIFinishReason;
  }[];
  usage: Usage;
}

/** One streamed `chat.completion.chunk`. */
export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: {
    index: number;
    delta: { role?: "assistant"; content?: string };
    logprobs: null;
    finish_reason: OpenAIFinishReason | null;
  }[];
  usage?: Usage | null;
}

/** A `text_completion` response (and, with `finish_reason: null` until the end, each streamed chunk). */
export interface TextCompletion {
  id: string;
  object: "text_completion";
  created: number;
  model: string;
  choices: {
    index: number;
    text: string;
    logprobs: CompletionLogprobs | null;
    finish_reason: OpenAIFinishReason | null;
  }[];
  usage?: Usage | null;
}

/**
 * The `GET /v1/models` response. As vLLM lists them, an adapter served over the model has `parent` (and
 * `root`) set to the base model's id; `max_model_len` is the context a prompt and its completion share.
 */
export interface ModelList {
  object: "list";
  data: {
    id: string;
    object: "model";
    created: number;
    owned_by: string;
    root: string;
    parent: string | null;
    max_model_len: number;
  }[];
}

/** A text completion's prompt: text, or token ids. */
export type Prompt = string | number[];

/** The prompt of a request: chat messages to render, or one or more text (or token-id) prompts. */
export type RequestInput = { kind: "chat"; messages: ChatMessage[] } | { kind: "text"; prompts: Prompt[] };

/** A validated request, in the engine's terms. */
export interface ParsedRequest {
  model: string;
  input: RequestInput;
  /** Undefined when the client gave no limit. */
  maxTokens?: number;
  temperature: number;
  topP: number;
  topK: number;
  repetitionPenalty: number;
  frequencyPenalty: number;
  presencePenalty: number;
  stop: string[];
  seed?: number;
  stream: boolean;
  includeUsage: boolean;
  /** Choices per prompt. */
  n: number;
  /** Alternatives per position when log-probabilities are asked for; undefined when they are not. */
  logprobs?: number;
  /** Text completions: the prompt comes back before the completion. */
  echo: boolean;
}

type Body = Record<string, unknown>;

/**
 * Validates a `POST /v1/chat/completions` body.
 *
 * @example
 * ```ts
 * const req = parseChatRequest({ model: "m", messages: [{ role: "user", content: "hi" }], top_k: 40 });
 * // req.input.kind === "chat", req.topK === 40, req.temperature === 1
 * ```
 */
export function parseChatRequest(body: unknown): ParsedRequest {
  const b = requireObject(body);
  const common = parseCommon(b);
  if (common.maxTokens === 0) throw invalid("max_tokens must be at least 1", "max_tokens");
  if (b.echo != null && b.echo !== false) {
    throw invalid("echo is a text-completions field", "echo", "unsupported_parameter");
  }
  const wanted = optionalBoolean(b, "logprobs") ?? false;
  const top = optionalNumber(b, "top_logprobs", { min: 0, max: MAX_TOP_LOGPROBS, integer: true });
  if (top !== undefined && !wanted) {
    throw invalid("top_logprobs needs logprobs: true", "top_logprobs");
  }
  const parsed: ParsedRequest = {
    ...common,
    input: { kind: "chat", messages: parseMessages(b.messages) },
    logprobs: wanted ? top ?? 0 : undefined,
    echo: false,
  };
  return checkStreamed(parsed);
}

/**
 * Validates a `POST /v1/completions` body (a single prompt string, or a list holding one string).
 *
 * @example
 * ```ts
 * const req = parseCompletionRequest({ model: "m", prompt: "Once upon a time", max_tokens: 32 });
 * // req.input = { kind: "text", prompt: "Once upon a time" }, req.maxTokens === 32
 * ```
 */
export function parseCompletionRequest(body: unknown): ParsedRequest {
  const b = requireObject(body);
  const common = parseCommon(b);
  const echo = optionalBoolean(b, "echo") ?? false;
  if (common.maxTokens === 0 && !echo) {
    throw invalid("max_tokens may be 0 only with echo: true (to score the prompt)", "max_tokens");
  }
  const parsed: ParsedRequest = {
    ...common,
    input: { kind: "text", prompts: parsePrompts(b.prompt) },
    logprobs: optionalNumber(b, "logprobs", { min: 0, max: MAX_TOP_LOGPROBS, integer: true }),
    echo,
  };
  return checkStreamed(parsed);
}

/** Log-probabilities and echo are computed after generation, so they do not stream. */
function checkStreamed(p: ParsedRequest): ParsedRequest {
  if (p.stream && (p.logprobs !== undefined || p.echo)) {
    const field = p.logprobs !== undefined ? "logprobs" : "echo";
    throw invalid(
      `${field} is not supported with stream: true on this server (log-probabilities are computed after ` +
        "generation); send the request without stream",
      field,
      "unsupported_parameter",
    );
  }
  return p;
}

function requireObject(body: unknown): Body {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw invalid("the request body must be a JSON object", undefined, "invalid_type");
  }
  return body as Body;
}

function invalid(message: string, param?: string, code = "invalid_value"): ApiError {
  return new ApiError(400, message, { param, code });
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  const s = JSON.stringify(v);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}

function parseCommon(b: Body): Omit<ParsedRequest, "input" | "logprobs" | "echo"> {
  rejectUnsupported(b);
  if (typeof b.model !== "string" || b.model === "") {
    throw invalid(`model must be a non-empty string, got ${describe(b.model)}`, "model", "invalid_type");
  }
  const n = optionalNumber(b, "n", { min: 1, max: MAX_CHOICES, integer: true }) ?? 1;
  const bestOf = optionalNumber(b, "best_of", { min: 1, integer: true });
  if (bestOf !== undefined && bestOf !== n) {
    throw invalid(
      `best_of must equal n (${n}); ranking choices is not supported`,
      "best_of",
      "unsupported_parameter",
    );
  }
  const stream = optionalBoolean(b, "stream") ?? false;
  return {
    model: b.model,
    maxTokens: parseMaxTokens(b),
    temperature: optionalNumber(b, "temperature", API_RANGES.temperature) ?? 1,
    topP: optionalNumber(b, "top_p", API_RANGES.top_p) ?? 1,
    topK: optionalNumber(b, "top_k", API_RANGES.top_k) ?? 0,
    repetitionPenalty: optionalNumber(b, "repetition_penalty", API_RANGES.repetition_penalty) ?? 1,
    frequencyPenalty: optionalNumber(b, "frequency_penalty", API_RANGES.frequency_penalty) ?? 0,
    presencePenalty: optionalNumber(b, "presence_penalty", API_RANGES.presence_penalty) ?? 0,
    n,
    stop: parseStop(b.stop),
    seed: optionalNumber(b, "seed", API_RANGES.seed),
    stream,
    includeUsage: parseStreamOptions(b.stream_options, stream),
  };
}

function rejectUnsupported(b: Body): void {
  const unsupported: [string, (v: unknown) => boolean][] = [
    ["tools", (v) => Array.isArray(v) ? v.length > 0 : v != null],
    ["tool_choice", (v) => v != null && v !== "none"],
    ["functions", (v) => v != null],
    ["function_call", (v) => v != null && v !== "none"],
    ["suffix", (v) => v != null && v !== ""],
    ["logit_bias", (v) => v != null && (typeof v !== "object" || Object.keys(v as object).length > 0)],
    ["response_format", (v) => v != null && (v as { type?: unknown }).type !== "text"],
  ];
  for (const [field, isUsed] of unsupported) {
    if (isUsed(b[field])) {
      throw invalid(`${field} is not supported by this server`, field, "unsupported_parameter");
    }
  }
}

/**
 * The sampling fields' ranges in the API: the sampler's, narrowed where OpenAI's API is narrower
 * (temperature ≤ 2, top_p > 0, the additive penalties in [-2, 2]). The chat page's inputs keep within them.
 *
 * @example
 * ```ts
 * API_RANGES.temperature; // { min: 0, max: 2, note: "0 is greedy" }
 * ```
 */
export const API_RANGES = {
  temperature: { ...SAMPLING_RANGES.temperature, max: 2 },
  top_p: { ...SAMPLING_RANGES.topP, min: 0, minExclusive: true },
  top_k: SAMPLING_RANGES.topK,
  repetition_penalty: SAMPLING_RANGES.repetitionPenalty,
  frequency_penalty: { ...SAMPLING_RANGES.frequencyPenalty, min: -2, max: 2 },
  presence_penalty: { ...SAMPLING_RANGES.presencePenalty, min: -2, max: 2 },
  seed: SAMPLING_RANGES.seed,
} satisfies Record<string, NumberRange>;

function optionalNumber(b: Body, field: string, range: NumberRange): number | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (!inRange(v, range)) throw invalid(`${field} must be ${rangeText(range)}, got ${describe(v)}`, field);
  return v;
}

function optionalBoolean(b: Body, field: string): boolean | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw invalid(`${field} must be true or false, got ${describe(v)}`, field);
  return v;
}

function parseMaxTokens(b: Body): number | undefined {
  const newer = optionalNumber(b, "max_completion_tokens", { min: 0, integer: true });
  const older = optionalNumber(b, "max_tokens", { min: 0, integer: true });
  if (newer !== undefined && older !== undefined && newer !== older) {
    throw invalid(
      `max_tokens (${older}) and max_completion_tokens (${newer}) disagree; give one`,
      "max_completion_tokens",
    );
  }
  return newer ?? older;
}

function parseStop(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  const list = typeof v === "string" ? [v] : v;
  if (
    !Array.isArray(list) || list.length > 4 || !list.every((s) => typeof s === "string" && s.length > 0)
  ) {
    throw invalid(`stop must be a non-empty string or a list of up to 4 of them, got ${describe(v)}`, "stop");
  }
  return list;
}

function parseStreamOptions(v: unknown, stream: boolean): boolean {
  if (v === undefined || v === null) return false;
  if (!stream) throw invalid("stream_options is only allowed when stream is true", "stream_options");
  if (typeof v !== "object" || Array.isArray(v)) {
    throw invalid(`stream_options must be an object, got ${describe(v)}`, "stream_options");
  }
  return optionalBoolean(v as Body, "include_usage") ?? false;
}

const ROLES: Record<string, ChatMessage["role"]> = {
  system: "system",
  developer: "system",
  user: "user",
  assistant: "assistant",
};

function parseMessages(v: unknown): ChatMessage[] {
  if (!Array.isArray(v) || v.length === 0) {
    throw invalid(`messages must be a non-empty list, got ${describe(v)}`, "messages", "invalid_type");
  }
  return v.map((m, i) => parseMessage(m, `messages[${i}]`));
}

function parseMessage(m: unknown, where: string): ChatMessage {
  if (typeof m !== "object" || m === null || Array.isArray(m)) {
    throw invalid(`${where} must be an object with role and content`, where, "invalid_type");
  }
  const { role, content } = m as Body;
  const mapped = typeof role === "string" ? ROLES[role] : undefined;
  if (!mapped) {
    throw invalid(
      `${where}.role must be one of system, developer, user, assistant; got ${describe(role)}`,
      `${where}.role`,
    );
  }
  return { role: mapped, content: parseContent(content, `${where}.content`) };
}

function parseContent(v: unknown, where: string): string {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) {
    return v.map((part, i) => {
      const p = part as Body | null;
      if (typeof p !== "object" || p === null || p.type !== "text" || typeof p.text !== "string") {
        throw invalid(`${where}[${i}] must be a text part {"type": "text", "text": "..."}`, `${where}[${i}]`);
      }
      return p.text;
    }).join("");
  }
  throw invalid(
    `${where} must be a string or a list of text parts, got ${describe(v)}`,
    where,
    "invalid_type",
  );
}

/** OpenAI's four prompt forms: text, texts, token ids, lists of token ids. */
function parsePrompts(v: unknown): Prompt[] {
  const isIds = (x: unknown): x is number[] =>
    Array.isArray(x) && x.length > 0 && x.every((id) => Number.isSafeInteger(id) && id >= 0);
  if (typeof v === "string") return [v];
  if (isIds(v)) return [v];
  if (Array.isArray(v) && v.length > 0) {
    if (v.every((p) => typeof p === "string")) return v as string[];
    const bad = v.findIndex((p) => !isIds(p));
    if (bad < 0) return v as number[][];
    if (v.every((p) => Array.isArray(p))) {
      throw invalid(
        `prompt[${bad}] must be a non-empty list of token ids (integers ≥ 0), got ${describe(v[bad])}`,
        `prompt[${bad}]`,
        "invalid_type",
      );
    }
  }
  throw invalid(
    `prompt must be a string, a list of strings, a list of token ids or a list of token-id lists, got ${
      describe(v)
    }`,
    "prompt",
    "invalid_type",
  );
}
