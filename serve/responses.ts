/**
 * Builders for the two completion formats, whole and streamed, so the server runs one generation path for
 * both endpoints. Streams follow OpenAI: chat sends a role-only delta first for each choice; each choice ends
 * with a chunk carrying its `finish_reason`; then (with `stream_options.include_usage`) a chunk with empty
 * `choices` and the usage, then `data: [DONE]`.
 * @module
 */
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatLogprobs,
  CompletionLogprobs,
  OpenAIFinishReason,
  TextCompletion,
  Usage,
} from "./openai_types.ts";

/** Everything a response needs to say about its request. */
export interface ResponseIdentity {
  id: string;
  /** Unix seconds. */
  created: number;
  model: string;
  /** Whether streamed chunks carry `usage` (null until the final usage chunk). */
  includeUsage: boolean;
}

/** One finished choice of a non-streamed response. */
export interface FinishedChoice {
  text: string;
  finish: OpenAIFinishReason;
  /** The endpoint's `logprobs` object, when asked for. */
  logprobs?: CompletionLogprobs | ChatLogprobs;
}

/** The objects one endpoint sends back; `index` is the choice's. */
export interface ResponseFormat {
  /** The non-streamed response; choice i has index i. */
  complete(choices: readonly FinishedChoice[], usage: Usage): ChatCompletion | TextCompletion;
  /** Chunks sent before a choice's text. */
  opening(index: number): (ChatCompletionChunk | TextCompletion)[];
  /** A chunk carrying a piece of a choice's text. */
  delta(index: number, text: string): ChatCompletionChunk | TextCompletion;
  /** The chunk ending a choice. */
  finish(index: number, finish: OpenAIFinishReason): ChatCompletionChunk | TextCompletion;
  /** Chunks sent after every choice has ended: usage, if asked for. */
  closing(usage: Usage): (ChatCompletionChunk | TextCompletion)[];
}

/**
 * Token counts in OpenAI's shape.
 *
 * @example
 * ```ts
 * usageOf(12, 5); // { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 }
 * ```
 */
export function usageOf(promptTokens: number, completionTokens: number): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

/**
 * The `chat.completion` / `chat.completion.chunk` format.
 *
 * @example
 * ```ts
 * const fmt = chatFormat({ id: "chatcmpl-1", created: 0, model: "m", includeUsage: false });
 * fmt.delta(0, "안녕").choices[0].delta; // { content: "안녕" }
 * ```
 */
export function chatFormat(who: ResponseIdentity): ResponseFormat {
  const chunk = (
    index: number,
    delta: ChatCompletionChunk["choices"][0]["delta"],
    finish: OpenAIFinishReason | null,
  ): ChatCompletionChunk => ({
    id: who.id,
    object: "chat.completion.chunk",
    created: who.created,
    model: who.model,
    choices: [{ index, delta, logprobs: null, finish_reason: finish }],
    ...(who.includeUsage ? { usage: null } : {}),
  });
  return {
    complete: (choices, usage) => ({
      id: who.id,
      object: "chat.completion",
      created: who.created,
      model: who.model,
      choices: choices.map((c, index) => ({
        index,
        message: { role: "assistant", content: c.text },
        logprobs: (c.logprobs as ChatLogprobs | undefined) ?? null,
        finish_reason: c.finish,
      })),
      usage,
    }),
    opening: (index) => [chunk(index, { role: "assistant", content: "" }, null)],
    delta: (index, text) => chunk(index, { content: text }, null),
    finish: (index, finish) => chunk(index, {}, finish),
    closing: (usage) => (who.includeUsage ? [{ ...chunk(0, {}, null), choices: [], usage }] : []),
  };
}

/**
 * The `text_completion` format (streamed chunks use the same object type).
 *
 * @example
 * ```ts
 * const fmt = textFormat({ id: "cmpl-1", created: 0, model: "m", includeUsage: true });
 * fmt.delta(0, "Once").choices[0].text; // "Once"
 * ```
 */
export function textFormat(who: ResponseIdentity): ResponseFormat {
  const chunk = (index: number, text: string, finish: OpenAIFinishReason | null): TextCompletion => ({
    id: who.id,
    object: "text_completion",
    created: who.created,
    model: who.model,
    choices: [{ index, text, logprobs: null, finish_reason: finish }],
    ...(who.includeUsage ? { usage: null } : {}),
  });
  return {
    complete: (choices, usage) => ({
      id: who.id,
      object: "text_completion",
      created: who.created,
      model: who.model,
      choices: choices.map((c, index) => ({
        index,
        text: c.text,
        logprobs: (c.logprobs as CompletionLogprobs | undefined) ?? null,
        finish_reason: c.finish,
      })),
      usage,
    }),
    opening: () => [],
    delta: (index, text) => chunk(index, text, null),
    finish: (index, finish) => chunk(index, "", finish),
    closing: (usage) => (who.includeUsage ? [{ ...chunk(0, "", null), choices: [], usage }] : []),
  };
}
