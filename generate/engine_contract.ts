/**
 * What a text generator offers its callers: the contract between whatever generates text (the GPU engine of
 * `engine.ts`, the rule judge, a fake in tests) and whatever drives it (the HTTP server in `serve/`). The
 * server knows nothing of models, KV caches or batching: it renders, counts, admits and streams; the engine
 * turns one prompt into text.
 *
 * `engine.ts` provides `loadEngine(modelDir, options: LoadEngineOptions): Promise<TextEngine>`, a
 * {@link GenerationEngine}. The contract lives here, beside its main implementation, so `serve/` imports
 * `generate/` and never the other way round.
 *
 * @module
 */

/** One chat turn, after the server has flattened OpenAI's content parts into plain text. */
export interface ChatMessage {
  /** Who speaks. */
  role: "system" | "user" | "assistant";
  /** The turn's text. */
  content: string;
}

/** What to generate. Sampling follows Hugging Face `generate` semantics. */
export interface GenerateRequest {
  /** The full prompt text, chat template already applied for chat requests. */
  prompt: string;
  /** Upper bound on generated tokens (end-of-sequence excluded). */
  maxTokens: number;
  /** 0 means greedy decoding. */
  temperature: number;
  /** Nucleus sampling mass in (0, 1]; 1 disables it. */
  topP: number;
  /** Keep only the k most likely tokens; 0 disables it. */
  topK: number;
  /** CTRL-style multiplicative penalty on already-seen tokens (Hugging Face's); 1 disables it. */
  repetitionPenalty: number;
  /**
   * Strings that end generation; they are not part of the output. The server also enforces them on the text
   * it receives, so an engine may stop late (checking rarely is fine) but must not stop early.
   */
  stop: string[];
  /** Makes sampling reproducible for the same request on the same engine. */
  seed?: number;
}

/** Why generation ended: a stop string or end-of-sequence, the token budget, or the abort signal. */
export type FinishReason = "stop" | "length" | "abort";

/** The outcome of one {@link GenerationEngine.generate} call. */
export interface GenerateResult {
  /** All generated text: the concatenation of every `onText` delta. */
  text: string;
  /** Why generation ended. */
  finishReason: FinishReason;
  /** Tokens in the prompt as the engine encoded it (special tokens included). */
  promptTokens: number;
  /** Tokens generated, end-of-sequence excluded. */
  completionTokens: number;
}

/**
 * A loaded model that can generate. Several `generate` calls may run at once (the server admits up to its
 * `maxConcurrent`); the engine batches them as it sees fit.
 *
 * @example
 * ```ts
 * const engine: GenerationEngine = await loadEngine("models/ko-1b", { maxConcurrent: 4 });
 * const prompt = engine.renderChat([{ role: "user", content: "안녕하세요" }]);
 * const ctl = new AbortController();
 * const res = await engine.generate(
 *   { prompt, maxTokens: 64, temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1, stop: [] },
 *   (delta) => console.log(delta),
 *   ctl.signal,
 * );
 * ```
 */
export interface GenerationEngine {
  /** The name clients pass as `model`. */
  readonly modelId: string;
  /** Prompt plus completion tokens the engine can hold for one sequence. */
  readonly maxContextTokens: number;
  /** Tokens `text` encodes to, counted the way `generate` will count the prompt. */
  countTokens(text: string): number;
  /**
   * Applies the model's chat template with the generation prompt appended. Throws when the template rejects
   * the conversation (e.g. roles that do not alternate); the server reports that as a 400.
   */
  renderChat(messages: ChatMessage[]): string;
  /**
   * Generates from `req.prompt`, calling `onText` with each new piece of text in order. When `signal` aborts
   * the engine stops soon (within a few decode steps) and resolves with `finishReason: "abort"` (rejecting
   * with the abort reason is accepted too). Any other rejection is an engine failure (HTTP 500).
   */
  generate(
    req: GenerateRequest,
    onText: (delta: string) => void,
    signal: AbortSignal,
  ): Promise<GenerateResult>;
}

/** Options the server task passes to `loadEngine` in `engine.ts`. */
export interface LoadEngineOptions {
  /** Sequences the server may run at once: the engine's batch capacity. */
  maxConcurrent: number;
  /** Context length to allocate KV cache for; the model's own limit when absent. */
  maxContextTokens?: number;
  /** Load a folder whose files hold tensors its config does not use, with a warning (otherwise an error). */
  ignoreUnusedWeights?: boolean;
}
