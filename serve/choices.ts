/**
 * A request's choices: one per prompt and `n` (`index` = prompt · n + choice, as OpenAI numbers them), each
 * planned before anything runs (its prompt encoded and checked against the context) and finished after its
 * generation with the text and `logprobs` the request asked for.
 *
 * A choice that only scores its prompt — `echo` with `max_tokens` 0, or 1 at temperature 0 with no
 * penalties or stop strings, what lm-evaluation-harness's `local-completions` sends for log-likelihoods —
 * runs one forward pass: the prompt's log-probabilities and the greedy next token come from the same scores.
 * Any other choice is generated, then (for `logprobs` or `echo`) its prompt and output are scored.
 *
 * @module
 */
import type { GenerateRequest, GenerationEngine, TokenScoring } from "../generate/engine_contract.ts";
import { ApiError } from "./errors.ts";
import type { GenerationOutcome } from "./generation.ts";
import { chatLogprobs, completionLogprobs, tokenEntries, type TokenEntry } from "./logprobs.ts";
import type { ParsedRequest, Prompt } from "./openai_types.ts";
import type { FinishedChoice } from "./responses.ts";

/** The server's limits a plan is checked against. */
export interface ChoiceLimits {
  maxPromptTokens: number;
  maxTokensLimit: number;
  /** `max_tokens` when the request gives none. */
  defaultMaxTokens: number;
}

/** One choice, ready to run. */
export interface ChoicePlan {
  /** The choice's `index` in the response. */
  index: number;
  /** Which prompt it continues (usage counts each prompt once). */
  promptIndex: number;
  /** The prompt as text (for `echo`): as given, or its ids decoded. */
  promptText: string;
  /** The prompt's ids when they are needed (scoring, or a token-id prompt). */
  promptIds?: number[];
  promptTokens: number;
  /** What to generate; `maxTokens` may be 0 for a score-only choice. */
  request: GenerateRequest;
  /** The choice only scores its prompt (see the module comment). */
  scoreOnly: boolean;
}

/** The outcome of one choice. */
export interface ChoiceOutcome extends FinishedChoice {
  completionTokens: number;
}

function needsScoring(p: ParsedRequest): boolean {
  return p.logprobs !== undefined || p.echo;
}

/** Refuses a request needing log-probabilities (or token ids) from an engine that cannot give them. */
function scoringOf(engine: GenerationEngine, param: string, what: string): TokenScoring {
  if (!engine.scoring) {
    throw new ApiError(400, `${param}: ${what} are not supported by this server's engine`, {
      param,
      code: "unsupported_parameter",
    });
  }
  return engine.scoring;
}

function promptIdsOf(
  engine: GenerationEngine,
  prompt: Prompt,
  where: string,
  scoring: boolean,
): number[] | undefined {
  if (typeof prompt === "string") return scoring ? engine.scoring!.encode(prompt) : undefined;
  const vocab = scoringOf(engine, where, "token-id prompts").vocabSize;
  const bad = prompt.findIndex((id) => id >= vocab);
  if (bad >= 0) {
    throw new ApiError(
      400,
      `${where}[${bad}] is token id ${prompt[bad]}, outside the vocabulary (${vocab})`,
      {
        param: where,
        code: "invalid_value",
      },
    );
  }
  return prompt;
}

/**
 * Plans every choice of a validated request: renders or encodes each prompt, checks it and `max_tokens`
 * against the context and the server's limits (413 or 400 naming the field), and decides how it runs.
 *
 * @example
 * ```ts
 * const { plans, promptTokens } = planChoices(engine, parsed, "text", limits, "my-adapter");
 * ```
 */
export function planChoices(
  engine: GenerationEngine,
  parsed: ParsedRequest,
  limits: ChoiceLimits,
  adapter: string | undefined,
): { plans: ChoicePlan[]; promptTokens: number } {
  const scoring = needsScoring(parsed);
  if (scoring) scoringOf(engine, parsed.echo ? "echo" : "logprobs", "log-probabilities");
  const prompts: { text: string; ids?: number[]; where: string }[] = parsed.input.kind === "chat"
    ? [{ text: renderChat(engine, parsed), where: "messages" }]
    : parsed.input.prompts.map((p, i, all) => {
      const where = all.length > 1 ? `prompt[${i}]` : "prompt";
      const ids = promptIdsOf(engine, p, where, scoring);
      const text = typeof p === "string" ? p : engine.scoring!.tokenPieces(p).join("");
      return { text, ids, where };
    });
  const plans: ChoicePlan[] = [];
  let promptTokens = 0;
  prompts.forEach((prompt, promptIndex) => {
    const count = prompt.ids?.length ?? engine.countTokens(prompt.text);
    const context = engine.maxContextTokens;
    if (count > limits.maxPromptTokens || count >= context) {
      throw new ApiError(
        413,
        `${prompt.where} is ${count} tokens; this server accepts at most ${
          Math.min(limits.maxPromptTokens, context - 1)
        }`,
        { type: "invalid_request_error", param: prompt.where, code: "context_length_exceeded" },
      );
    }
    promptTokens += count;
    const maxTokens = resolveMaxTokens(parsed.maxTokens, count, context, limits);
    const scoreOnly = parsed.echo && (maxTokens === 0 || (maxTokens === 1 && greedyUnpenalised(parsed)));
    for (let c = 0; c < parsed.n; c++) {
      plans.push({
        index: promptIndex * parsed.n + c,
        promptIndex,
        promptText: prompt.text,
        promptIds: prompt.ids,
        promptTokens: count,
        scoreOnly,
        request: {
          prompt: prompt.text,
          ...(prompt.ids ? { promptIds: prompt.ids } : {}),
          maxTokens,
          temperature: parsed.temperature,
          topP: parsed.topP,
          topK: parsed.topK,
          repetitionPenalty: parsed.repetitionPenalty,
          frequencyPenalty: parsed.frequencyPenalty,
          presencePenalty: parsed.presencePenalty,
          stop: parsed.stop,
          ...(parsed.seed !== undefined ? { seed: parsed.seed } : {}),
          ...(c > 0 ? { choice: c } : {}),
          ...(adapter !== undefined ? { adapter } : {}),
        },
      });
    }
  });
  return { plans, promptTokens };
}

/** Whether one token of greedy decoding is the argmax of the model's own scores. */
function greedyUnpenalised(p: ParsedRequest): boolean {
  return p.temperature === 0 && p.repetitionPenalty === 1 && p.frequencyPenalty === 0 &&
    p.presencePenalty === 0 && p.stop.length === 0;
}

function renderChat(engine: GenerationEngine, parsed: ParsedRequest): string {
  if (parsed.input.kind !== "chat") throw new Error("renderChat: not a chat request");
  try {
    return engine.renderChat(parsed.input.messages);
  } catch (e) {
    throw new ApiError(400, `the chat template rejected the messages: ${(e as Error).message}`, {
      param: "messages",
      code: "invalid_messages",
    });
  }
}

function resolveMaxTokens(
  asked: number | undefined,
  promptTokens: number,
  context: number,
  limits: ChoiceLimits,
): number {
  const room = context - promptTokens;
  if (asked === undefined) return Math.min(limits.defaultMaxTokens, limits.maxTokensLimit, room);
  if (asked > limits.maxTokensLimit) {
    throw new ApiError(
      400,
      `max_tokens must be at most ${limits.maxTokensLimit} on this server, got ${asked}`,
      {
        param: "max_tokens",
        code: "invalid_value",
      },
    );
  }
  if (asked > room) {
    throw new ApiError(
      400,
      `the prompt's ${promptTokens} tokens plus max_tokens ${asked} exceed the model's context of ${context} tokens`,
      { param: "max_tokens", code: "context_length_exceeded" },
    );
  }
  return asked;
}

/**
 * Runs a score-only choice: one forward pass over the prompt; with `max_tokens` 1 the greedy next token is
 * the completion (end-of-sequence included, as vLLM lists it, with empty text).
 */
export async function scorePrompt(
  engine: GenerationEngine,
  plan: ChoicePlan,
  parsed: ParsedRequest,
): Promise<ChoiceOutcome> {
  const scoring = engine.scoring!;
  const ids = plan.promptIds!;
  const topN = parsed.logprobs ?? 0;
  const next = plan.request.maxTokens === 1;
  const [scored] = await scoring.score([{ ids, from: 1, next }], { topN, adapter: plan.request.adapter });
  const entries = ids.length > 1 || !next
    ? tokenEntries(scoring, ids, 1, scored, true)
    : [{ id: ids[0], piece: scoring.tokenPieces(ids)[0], logprob: null, top: null }];
  let text = plan.promptText, finish: FinishedChoice["finish"] = "length";
  if (next && scored.next) {
    const { token, top } = scored.next;
    const stop = scoring.stopIds.includes(token.id);
    const piece = stop ? "" : scoring.tokenPieces([...ids, token.id]).at(-1)!;
    entries.push({ id: token.id, piece, logprob: token.logprob, top: topN > 0 ? top : [] });
    text += piece;
    if (stop) finish = "stop";
  }
  return {
    text,
    finish,
    completionTokens: plan.request.maxTokens,
    ...(parsed.logprobs !== undefined ? { logprobs: completionLogprobs(scoring, entries) } : {}),
  };
}

/**
 * Finishes a generated choice: its text (after the prompt, with `echo`) and, when asked for, the
 * log-probabilities of its tokens (and of the prompt's, with `echo`), scored after generation.
 */
export async function finishGenerated(
  engine: GenerationEngine,
  plan: ChoicePlan,
  parsed: ParsedRequest,
  out: GenerationOutcome,
  kind: "chat" | "text",
): Promise<ChoiceOutcome> {
  const text = (parsed.echo ? plan.promptText : "") + out.text;
  const base = {
    text,
    finish: out.finishReason as FinishedChoice["finish"],
    completionTokens: out.completionTokens,
  };
  if (!needsScoring(parsed) || parsed.logprobs === undefined && !parsed.echo) return base;
  const scoring = engine.scoring!;
  const promptIds = out.promptIds ?? plan.promptIds ?? scoring.encode(plan.promptText);
  const generated = keptIds(scoring, out);
  const ids = [...promptIds, ...generated.ids];
  const from = parsed.echo ? 1 : promptIds.length;
  let entries: TokenEntry[] = [];
  if (from < ids.length) {
    const [scored] = await scoring.score([{ ids, from }], {
      topN: parsed.logprobs ?? 0,
      adapter: plan.request.adapter,
    });
    entries = tokenEntries(scoring, ids, from, scored, parsed.echo);
  } else if (parsed.echo) {
    entries = [{ id: ids[0], piece: scoring.tokenPieces(ids)[0], logprob: null, top: null }];
  }
  // A stop id ends the output with empty text, as vLLM lists it.
  if (generated.withStop) entries[entries.length - 1].piece = "";
  if (parsed.logprobs === undefined) return base;
  return {
    ...base,
    logprobs: kind === "chat" ? chatLogprobs(scoring, entries) : completionLogprobs(scoring, entries),
  };
}

/** The generated ids whose text the choice returns (the server may cut at a stop string), and the stop id. */
function keptIds(scoring: TokenScoring, out: GenerationOutcome): { ids: number[]; withStop: boolean } {
  const ids = out.ids ?? [];
  const pieces = scoring.tokenPieces(ids);
  let length = 0, n = 0;
  while (n < ids.length && length < out.text.length) length += pieces[n++].length;
  const kept = ids.slice(0, n);
  const withStop = out.stopId !== undefined && n === ids.length;
  return { ids: withStop ? [...kept, out.stopId!] : kept, withStop };
}
