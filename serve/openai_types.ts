/**
 * OpenAI's request and response shapes for chat and text completions, and the validation that turns a
 * request body into sampling settings. Every rejection is a 400 naming the field and what was expected.
 *
 * Field mapping (extensions beyond OpenAI's API are marked):
 * - `max_completion_tokens` (newer name) or `max_tokens`: integer ≥ 1. Absent: as much as the context and
 *   the server's limit allow for chat, 16 for text completions (OpenAI's default there).
 * - `temperature` [0, 2] (default 1; 0 is greedy), `top_p` (0, 1] (default 1), `seed` an integer in
 *   [0, 2^32) (the sampler's seed is one u32 word).
 * - `top_k` (extension): integer ≥ 0, 0 disables it.
 * - `repetition_penalty` (extension): Hugging Face's multiplicative penalty, > 0, 1 disables it.
 * - The sampling fields are checked against the sampler's own ranges (`SAMPLING_RANGES` in
 *   kernels/sampling.ts), narrowed where OpenAI's API is narrower, so a request accepted here never fails
 *   inside the engine.
 * - `frequency_penalty` [-2, 2] maps to `repetition_penalty = 1 + frequency_penalty / 4` (so 0 is off,
 *   0.4 gives 1.1, and the whole range stays positive). Giving both with a non-zero `frequency_penalty` is
 *   ambiguous and rejected.
 * - `presence_penalty`: only 0 is accepted (there is no additive penalty in the engine).
 * - `stop`: a string or a list of up to 4 non-empty strings.
 * - `n`: only 1. `stream`, `stream_options.include_usage` (only with `stream`).
 * - Features the engine lacks (tools, logprobs, echo, suffix, best_of > 1, logit_bias, non-text
 *   response_format) are rejected rather than silently ignored; unknown fields such as `user` are ignored.
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

/** A `chat.completion` response. */
export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: {
    index: number;
    message: { role: "assistant"; content: string };
    logprobs: null;
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
  choices: { index: number; text: string; logprobs: null; finish_reason: OpenAIFinishReason | null }[];
  usage?: Usage | null;
}

/** The `GET /v1/models` response. */
export interface ModelList {
  object: "list";
  data: { id: string; object: "model"; created: number; owned_by: string }[];
}

/** The prompt of a request: chat messages to render, or raw text. */
export type RequestInput = { kind: "chat"; messages: ChatMessage[] } | { kind: "text"; prompt: string };

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
  stop: string[];
  seed?: number;
  stream: boolean;
  includeUsage: boolean;
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
  return { ...parseCommon(b), input: { kind: "chat", messages: parseMessages(b.messages) } };
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
  return { ...parseCommon(b), input: { kind: "text", prompt: parsePrompt(b.prompt) } };
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

function parseCommon(b: Body): Omit<ParsedRequest, "input"> {
  rejectUnsupported(b);
  if (typeof b.model !== "string" || b.model === "") {
    throw invalid(`model must be a non-empty string, got ${describe(b.model)}`, "model", "invalid_type");
  }
  const n = optionalNumber(b, "n", { min: 1, integer: true });
  if (n !== undefined && n !== 1) throw invalid(`n must be 1 (one choice per request), got ${n}`, "n");
  const stream = optionalBoolean(b, "stream") ?? false;
  return {
    model: b.model,
    maxTokens: parseMaxTokens(b),
    temperature: optionalNumber(b, "temperature", API_RANGES.temperature) ?? 1,
    topP: optionalNumber(b, "top_p", API_RANGES.top_p) ?? 1,
    topK: optionalNumber(b, "top_k", API_RANGES.top_k) ?? 0,
    repetitionPenalty: parseRepetitionPenalty(b),
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
    ["logprobs", (v) => v != null && v !== false],
    ["top_logprobs", (v) => v != null && v !== 0],
    ["echo", (v) => v === true],
    ["suffix", (v) => v != null && v !== ""],
    ["best_of", (v) => v != null && v !== 1],
    ["logit_bias", (v) => v != null && (typeof v !== "object" || Object.keys(v as object).length > 0)],
    ["response_format", (v) => v != null && (v as { type?: unknown }).type !== "text"],
  ];
  for (const [field, isUsed] of unsupported) {
    if (isUsed(b[field])) {
      throw invalid(`${field} is not supported by this server`, field, "unsupported_parameter");
    }
  }
  const presence = optionalNumber(b, "presence_penalty", { min: -2, max: 2 });
  if (presence !== undefined && presence !== 0) {
    throw invalid(
      "presence_penalty is not supported (only 0); use frequency_penalty or repetition_penalty",
      "presence_penalty",
      "unsupported_parameter",
    );
  }
}

/**
 * The sampling fields' ranges in the API: the sampler's, narrowed where OpenAI's API is narrower
 * (temperature ≤ 2, top_p > 0); `repetition_penalty` gets its range through {@link parseRepetitionPenalty}.
 */
const API_RANGES = {
  temperature: { ...SAMPLING_RANGES.temperature, max: 2 },
  top_p: { ...SAMPLING_RANGES.topP, min: 0, minExclusive: true },
  top_k: SAMPLING_RANGES.topK,
  repetition_penalty: SAMPLING_RANGES.repetitionPenalty,
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
  const newer = optionalNumber(b, "max_completion_tokens", { min: 1, integer: true });
  const older = optionalNumber(b, "max_tokens", { min: 1, integer: true });
  if (newer !== undefined && older !== undefined && newer !== older) {
    throw invalid(
      `max_tokens (${older}) and max_completion_tokens (${newer}) disagree; give one`,
      "max_completion_tokens",
    );
  }
  return newer ?? older;
}

function parseRepetitionPenalty(b: Body): number {
  const rep = optionalNumber(b, "repetition_penalty", API_RANGES.repetition_penalty);
  const freq = optionalNumber(b, "frequency_penalty", { min: -2, max: 2 });
  if (rep !== undefined && freq !== undefined && freq !== 0) {
    throw invalid(
      "give either repetition_penalty or frequency_penalty, not both",
      "frequency_penalty",
    );
  }
  return rep ?? 1 + (freq ?? 0) / 4;
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

function parsePrompt(v: unknown): string {
  if (typeof v === "string") return v;
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === "string") return v[0];
  throw invalid(
    `prompt must be a string (or a list holding exactly one string), got ${describe(v)}`,
    "prompt",
    "invalid_type",
  );
}
