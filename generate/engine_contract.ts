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
  /** The prompt as token ids (OpenAI's token-id prompts); when given, it is used as is and `prompt` is not. */
  promptIds?: readonly number[];
  /** Upper bound on generated tokens (end-of-sequence excluded). */
  maxTokens: number;
  /** 0 means greedy decoding. */
  temperature: number;
  /** Nucleus sampling mass in (0, 1]; 1 disables it. */
  topP: number;
  /** Keep only the k most likely tokens; 0 disables it. */
  topK: number;
  /** CTRL-style multiplicative penalty on tokens of the prompt and output (Hugging Face's); 1 disables it. */
  repetitionPenalty: number;
  /** OpenAI's additive frequency penalty on the output's tokens, per occurrence; 0 (default) disables it. */
  frequencyPenalty?: number;
  /** OpenAI's additive presence penalty on every token the output holds; 0 (default) disables it. */
  presencePenalty?: number;
  /**
   * Strings that end generation; they are not part of the output. The server also enforces them on the text
   * it receives, so an engine may stop late (checking rarely is fine) but must not stop early.
   */
  stop: string[];
  /** Makes sampling reproducible for the same request on the same engine. */
  seed?: number;
  /** Which of a request's `n` choices this is: the same seed draws differently for each (default 0). */
  choice?: number;
  /** The adapter to generate with, by its served name (one of {@link GenerationEngine.adapters}). */
  adapter?: string;
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
  /** The prompt's token ids, when the engine reports them (needed for `logprobs`). */
  promptIds?: number[];
  /** The generated ids through the one that completed `text` (end-of-sequence excluded), when reported. */
  ids?: number[];
  /** The end-of-sequence id that ended generation, when one did (OpenAI's logprobs list it, empty text). */
  stopId?: number;
}

/** One sequence to score: the log-probability of each token from `from` on, given the ones before it. */
export interface ScoreRequest {
  /** Token ids. */
  ids: readonly number[];
  /** First token scored, ≥ 1 (the first token has nothing to be predicted from). */
  from: number;
  /** Also give the most probable token after the last one, and the top tokens there. */
  next?: boolean;
}

/** A token and its log-probability (natural log). */
export interface TokenChoice {
  /** The token's id. */
  id: number;
  /** Its log-probability. */
  logprob: number;
}

/** The answer to one {@link ScoreRequest}. */
export interface ScoredTokens {
  /** Entry i: log p(ids[from + i] | ids[0 .. from + i − 1]). */
  logprobs: number[];
  /** Entry i: the `topN` most probable tokens at that position, most probable first (ties: lowest id). */
  top: TokenChoice[][];
  /** With `next`: the most probable next token (what greedy decoding emits) and the top tokens there. */
  next?: { token: TokenChoice; top: TokenChoice[] };
}

/**
 * What an engine offers for OpenAI's `logprobs`, `top_logprobs` and `echo`: its tokenizer's view of text and
 * the model's log-probabilities of given tokens.
 */
export interface TokenScoring {
  /** Ids are in [0, vocabSize). */
  readonly vocabSize: number;
  /** The ids that end generation (end-of-sequence). */
  readonly stopIds: readonly number[];
  /** A text prompt's ids, as `generate` encodes it. */
  encode(text: string): number[];
  /**
   * Each id's piece of text, decoded incrementally with special tokens shown: joined they are the decoded
   * text; a character split over several tokens comes with its last one (the others give "").
   */
  tokenPieces(ids: readonly number[]): string[];
  /** How one token reads on its own (the keys of `top_logprobs`). */
  tokenString(id: number): string;
  /** Scores sequences with the model (or `adapter`), giving `topN` alternatives per position. */
  score(
    requests: readonly ScoreRequest[],
    options: { topN: number; adapter?: string },
  ): Promise<ScoredTokens[]>;
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
  /** Adapters served over the model (`serve --lora NAME=DIR`), by the names clients pass as `model`. */
  readonly adapters?: readonly string[];
  /** Log-probabilities of tokens, when the engine can give them (`logprobs`, `echo`). */
  readonly scoring?: TokenScoring;
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
  /** Adapters to serve over the model, each selected by its name as the request's `model` (vLLM's `--lora-modules`). */
  loras?: readonly { name: string; dir: string }[];
}
