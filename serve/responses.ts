/**
 * Builders for the two completion formats, whole and streamed, so the server runs one generation path for
 * both endpoints. Streams follow OpenAI: chat sends a role-only delta first; every stream ends with a chunk
 * carrying `finish_reason`, then (with `stream_options.include_usage`) a chunk with empty `choices` and the
 * usage, then `data: [DONE]`.
 * @module
 */
import type {
  ChatCompletion,
  ChatCompletionChunk,
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

/** The objects one endpoint sends back. */
export interface ResponseFormat {
  /** The non-streamed response. */
  complete(text: string, finish: OpenAIFinishReason, usage: Usage): ChatCompletion | TextCompletion;
  /** Chunks sent before any text. */
  opening(): (ChatCompletionChunk | TextCompletion)[];
  /** A chunk carrying a piece of text. */
  delta(text: string): ChatCompletionChunk | TextCompletion;
  /** Chunks sent after the last text: the finish reason, then usage if asked for. */
  closing(finish: OpenAIFinishReason, usage: Usage): (ChatCompletionChunk | TextCompletion)[];
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
 * fmt.delta("안녕").choices[0].delta; // { content: "안녕" }
 * ```
 */
export function chatFormat(who: ResponseIdentity): ResponseFormat {
  const chunk = (
    delta: ChatCompletionChunk["choices"][0]["delta"],
    finish: OpenAIFinishReason | null,
  ): ChatCompletionChunk => ({
    id: who.id,
    object: "chat.completion.chunk",
    created: who.created,
    model: who.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(who.includeUsage ? { usage: null } : {}),
  });
  return {
    complete: (text, finish, usage) => ({
      id: who.id,
      object: "chat.completion",
      created: who.created,
      model: who.model,
      choices: [{
        index: 0,
        message: { role: "assistant", content: text },
        logprobs: null,
        finish_reason: finish,
      }],
      usage,
    }),
    opening: () => [chunk({ role: "assistant", content: "" }, null)],
    delta: (text) => chunk({ content: text }, null),
    closing: (finish, usage) => {
      const last = chunk({}, finish);
      if (!who.includeUsage) return [last];
      return [last, { ...chunk({}, null), choices: [], usage }];
    },
  };
}

/**
 * The `text_completion` format (streamed chunks use the same object type).
 *
 * @example
 * ```ts
 * const fmt = textFormat({ id: "cmpl-1", created: 0, model: "m", includeUsage: true });
 * fmt.delta("Once").choices[0].text; // "Once"
 * ```
 */
export function textFormat(who: ResponseIdentity): ResponseFormat {
  const chunk = (text: string, finish: OpenAIFinishReason | null): TextCompletion => ({
    id: who.id,
    object: "text_completion",
    created: who.created,
    model: who.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
    ...(who.includeUsage ? { usage: null } : {}),
  });
  return {
    complete: (text, finish, usage) => {
      const { usage: _streamOnly, ...rest } = chunk(text, finish);
      return { ...rest, usage };
    },
    opening: () => [],
    delta: (text) => chunk(text, null),
    closing: (finish, usage) => {
      const last = chunk("", finish);
      if (!who.includeUsage) return [last];
      return [last, { ...chunk("", null), choices: [], usage }];
    },
  };
}
