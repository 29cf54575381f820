/**
 * Turns validated dataset rows into token ids and label masks, the way TRL's trainers prepare them.
 *
 * SFT (TRL's SFTTrainer):
 * - `text`: the tokenizer's prefix (e.g. BOS) + text + EOS; every token is a target.
 * - prompt-completion with plain text: prompt and prompt+completion are tokenized as TRL does (the joint
 *   text decides the ids, the prompt's own length decides where targets start); EOS is appended. By default
 *   only completion tokens are targets (`completion_only_loss`).
 * - prompt-completion with chats: the prompt rendered with `add_generation_prompt`, then prompt+completion
 *   rendered whole; the template closes the turn, so no EOS is added.
 * - `messages`: the rendered chat; every token is a target (TRL's default) or, with `assistantOnlyLoss`,
 *   only the tokens of assistant turns.
 *
 * Preference pairs (TRL's DPOTrainer and ORPOTrainer): chat prompts are rendered with
 * `add_generation_prompt`; a chat completion is what rendering prompt+completion adds after the prompt's
 * text. Prompt and completions are tokenized separately; each completion gets EOS appended unless it already
 * ends with it.
 *
 * Special tokens: a sequence starts as the tokenizer's default post-processing starts a text
 * ({@link TextTokenizer.prefixIds}, e.g. BOS for Llama-2/Mistral, nothing for the original Llama-3
 * tokenizer.json) and never twice: when a chat template already wrote BOS, no second one is added.
 *
 * Truncation, the same for every kind of example: a sequence is a prompt part (the tokens before the first
 * target; empty for whole-text loss) followed by a completion part.
 * 1. With `maxPromptLength`, a longer prompt keeps its last `maxPromptLength` tokens (TRL's `keep_end`
 *    for prompts: the question's end is what the answer follows).
 * 2. With `maxLength`, a longer sequence keeps the first `maxLength - prompt length` completion tokens.
 *    For a pair, chosen and rejected are each cut against the same prompt.
 * 3. An example left with no target token (for a pair: either side) is dropped and counted.
 *
 * @module
 */
import type { ChatMessage, TextTokenizer } from "../text/tokenizer.ts";
import type { Message, PreferenceRow, SftRow, TextOrChat } from "../io/datasets.ts";

/**
 * One SFT sequence: ids and, for each id, 1 when it is a target token (predicted from the ones before).
 *
 * @example
 * ```ts
 * const ex: SftExample = { ids: [1, 57, 2], labelMask: [0, 1, 1], source: "a.jsonl:1" };
 * ```
 */
export interface SftExample {
  ids: number[];
  labelMask: number[];
  /** `file:line` of the row it came from. */
  source: string;
}

/**
 * One preference pair: a shared prompt and the two completions (each ending with EOS).
 *
 * @example
 * ```ts
 * const ex: PreferenceExample = { promptIds: [1, 57], chosenIds: [80, 2], rejectedIds: [90, 2], source: "p.jsonl:1" };
 * ```
 */
export interface PreferenceExample {
  promptIds: number[];
  chosenIds: number[];
  rejectedIds: number[];
  source: string;
}

/**
 * Length limits; see the module documentation for how they apply.
 *
 * @example
 * ```ts
 * buildPreferenceExamples(rows, tok, { maxLength: 512, maxPromptLength: 256 });
 * ```
 */
export interface TruncationOptions {
  /** Most tokens in one sequence (prompt + completion). */
  maxLength?: number;
  /** Most prompt tokens; longer prompts keep their end. */
  maxPromptLength?: number;
}

/**
 * Options for SFT examples.
 *
 * @example
 * ```ts
 * buildSftExamples(rows, tok, { maxLength: 1024, assistantOnlyLoss: true });
 * ```
 */
export interface SftExampleOptions extends TruncationOptions {
  /** For prompt-completion rows: targets are the completion only (default true, TRL's default). */
  completionOnlyLoss?: boolean;
  /** For `messages` rows: targets are assistant turns only (default false: the whole chat, TRL's default). */
  assistantOnlyLoss?: boolean;
}

/**
 * What happened while building examples.
 *
 * @example
 * ```ts
 * const { stats } = buildSftExamples(rows, tok, { maxLength: 64 }); console.log(stats.dropped, stats.droppedSources);
 * ```
 */
export interface ExampleStats {
  kept: number;
  /** Rows dropped because no target token survived truncation. */
  dropped: number;
  /** `file:line` of the dropped rows (at most 100). */
  droppedSources: string[];
  /** Examples that were cut by a length limit but kept. */
  truncated: number;
  /** Prompt-completion rows whose prompt ids were not a prefix of the prompt+completion ids (TRL warns). */
  promptMismatches: number;
}

const MAX_DROPPED_SOURCES = 100;

/** A sequence before truncation: prompt part, then completion part with its own target mask. */
interface Parts {
  prompt: number[];
  completion: number[];
  completionMask: number[];
  promptMismatch?: boolean;
}

/**
 * Builds SFT examples for all rows, dropping (and counting) those that truncation leaves without targets.
 *
 * @example
 * ```ts
 * const { examples, stats } = buildSftExamples(ds.rows as SftRow[], tok, { maxLength: 512 });
 * ```
 */
export function buildSftExamples(
  rows: readonly SftRow[],
  tok: TextTokenizer,
  options: SftExampleOptions = {},
): { examples: SftExample[]; stats: ExampleStats } {
  checkLimits(options);
  const stats = emptyStats();
  const examples: SftExample[] = [];
  for (const row of rows) {
    const parts = sftParts(row, tok, options);
    if (parts.promptMismatch) stats.promptMismatches++;
    const cut = truncate(parts, options);
    if (cut === null) {
      recordDrop(stats, row.source);
      continue;
    }
    if (cut.truncated) stats.truncated++;
    stats.kept++;
    examples.push({
      ids: [...cut.prompt, ...cut.completion],
      labelMask: [...cut.prompt.map(() => 0), ...cut.completionMask],
      source: row.source,
    });
  }
  return { examples, stats };
}

/**
 * Builds preference examples for all rows, dropping (and counting) pairs left without a completion.
 *
 * @example
 * ```ts
 * const { examples } = buildPreferenceExamples(ds.rows as PreferenceRow[], tok, { maxLength: 512, maxPromptLength: 256 });
 * ```
 */
export function buildPreferenceExamples(
  rows: readonly PreferenceRow[],
  tok: TextTokenizer,
  options: TruncationOptions = {},
): { examples: PreferenceExample[]; stats: ExampleStats } {
  checkLimits(options);
  const stats = emptyStats();
  const examples: PreferenceExample[] = [];
  for (const row of rows) {
    requireSameForm(row.source, row.prompt, row.chosen, row.rejected);
    const { promptText, chosenText, rejectedText } = preferenceTexts(row, tok);
    const prompt = withPrefixOnce(tok, tok.encode(promptText, { addSpecialTokens: false }));
    const chosen = truncate(completionParts(prompt, completionIds(tok, chosenText)), options);
    const rejected = truncate(completionParts(prompt, completionIds(tok, rejectedText)), options);
    if (chosen === null || rejected === null) {
      recordDrop(stats, row.source);
      continue;
    }
    if (chosen.truncated || rejected.truncated) stats.truncated++;
    stats.kept++;
    examples.push({
      promptIds: chosen.prompt,
      chosenIds: chosen.completion,
      rejectedIds: rejected.completion,
      source: row.source,
    });
  }
  return { examples, stats };
}

function checkLimits(options: TruncationOptions): void {
  for (const key of ["maxLength", "maxPromptLength"] as const) {
    const v = options[key];
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) {
      throw new RangeError(`${key}: expected a positive integer, got ${v}`);
    }
  }
}

function emptyStats(): ExampleStats {
  return { kept: 0, dropped: 0, droppedSources: [], truncated: 0, promptMismatches: 0 };
}

function recordDrop(stats: ExampleStats, source: string): void {
  stats.dropped++;
  if (stats.droppedSources.length < MAX_DROPPED_SOURCES) stats.droppedSources.push(source);
}

/** `ids` with the tokenizer's default prefix in front, unless they already start with it. */
function withPrefixOnce(tok: TextTokenizer, ids: number[]): number[] {
  const prefix = tok.prefixIds;
  const has = prefix.every((id, i) => ids[i] === id);
  return has ? ids : [...prefix, ...ids];
}

function withEos(tok: TextTokenizer, ids: number[]): number[] {
  const eos = tok.eosId;
  if (eos === null) throw new Error("the tokenizer has no EOS token, which training examples need");
  return ids[ids.length - 1] === eos ? ids : [...ids, eos];
}

function chatIds(
  tok: TextTokenizer,
  messages: readonly ChatMessage[],
  addGenerationPrompt: boolean,
): number[] {
  const text = tok.applyChatTemplate(messages, { addGenerationPrompt });
  return withPrefixOnce(tok, tok.encode(text, { addSpecialTokens: false }));
}

function completionParts(prompt: number[], completion: number[], mask?: number[]): Parts {
  return { prompt, completion, completionMask: mask ?? completion.map(() => 1) };
}

function sftParts(row: SftRow, tok: TextTokenizer, options: SftExampleOptions): Parts {
  switch (row.kind) {
    case "language-modeling":
      return completionParts(
        [],
        withEos(tok, withPrefixOnce(tok, tok.encode(row.text, { addSpecialTokens: false }))),
      );
    case "conversational":
      return options.assistantOnlyLoss
        ? assistantOnlyParts(tok, row.messages)
        : completionParts([], chatIds(tok, row.messages, false));
    case "prompt-completion": {
      requireSameForm(row.source, row.prompt, row.completion);
      const parts = promptCompletionParts(tok, row.prompt, row.completion);
      if (options.completionOnlyLoss === false) {
        return completionParts([], [...parts.prompt, ...parts.completion], undefined);
      }
      return parts;
    }
  }
}

/**
 * TRL's prompt-completion tokenization: ids of prompt+completion, with targets from the prompt's own
 * token count on. When the prompt's ids are not a prefix of the joint ids (a merge across the boundary),
 * the split still falls at the prompt's length, as in TRL, and the mismatch is counted.
 */
function promptCompletionParts(tok: TextTokenizer, prompt: TextOrChat, completion: TextOrChat): Parts {
  let promptIds: number[];
  let fullIds: number[];
  if (typeof prompt === "string") {
    promptIds = withPrefixOnce(tok, tok.encode(prompt, { addSpecialTokens: false }));
    fullIds = withEos(tok, withPrefixOnce(tok, tok.encode(prompt + completion, { addSpecialTokens: false })));
  } else {
    promptIds = chatIds(tok, prompt, true);
    fullIds = chatIds(tok, [...prompt, ...(completion as Message[])], false);
  }
  const split = Math.min(promptIds.length, fullIds.length);
  const mismatch = promptIds.some((id, i) => fullIds[i] !== id);
  return { ...completionParts(fullIds.slice(0, split), fullIds.slice(split)), promptMismatch: mismatch };
}

/**
 * Targets on assistant turns only. For assistant message i, its tokens run from the end of the chat rendered
 * up to message i with the generation prompt, to the end of the chat rendered through message i; both ends
 * are found as the longest shared start with the whole chat's ids, so templates that add text between
 * turns still give sensible spans.
 */
function assistantOnlyParts(tok: TextTokenizer, messages: readonly Message[]): Parts {
  const full = chatIds(tok, messages, false);
  const mask = full.map(() => 0);
  messages.forEach((m, i) => {
    if (m.role !== "assistant") return;
    const start = sharedStart(chatIds(tok, messages.slice(0, i), true), full);
    const end = sharedStart(chatIds(tok, messages.slice(0, i + 1), false), full);
    for (let t = start; t < end; t++) mask[t] = 1;
  });
  const first = mask.indexOf(1);
  if (first < 0) return { prompt: full, completion: [], completionMask: [] };
  return { prompt: full.slice(0, first), completion: full.slice(first), completionMask: mask.slice(first) };
}

/** Rows built by hand may skip io/datasets.ts validation: text and chat parts cannot be combined. */
function requireSameForm(source: string, ...parts: TextOrChat[]): void {
  if (parts.some((p) => typeof p !== typeof parts[0])) {
    throw new TypeError(
      `${source}: a row's prompt and completions must all be text or all be chat message lists`,
    );
  }
}

function sharedStart(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** The texts of a pair as TRL renders them: chat prompts with the generation prompt, chat completions as the added text. */
function preferenceTexts(row: PreferenceRow, tok: TextTokenizer) {
  if (typeof row.prompt === "string") {
    return { promptText: row.prompt, chosenText: row.chosen as string, rejectedText: row.rejected as string };
  }
  const prompt = row.prompt;
  const promptRendered = tok.applyChatTemplate(prompt, { addGenerationPrompt: true });
  const chosenRendered = tok.applyChatTemplate([...prompt, ...(row.chosen as Message[])]);
  const rejectedRendered = tok.applyChatTemplate([...prompt, ...(row.rejected as Message[])]);
  // Some templates render the generation prompt differently from a real turn: keep only the shared text.
  const n = Math.min(
    sharedTextStart(promptRendered, chosenRendered),
    sharedTextStart(promptRendered, rejectedRendered),
  );
  return {
    promptText: promptRendered.slice(0, n),
    chosenText: chosenRendered.slice(n),
    rejectedText: rejectedRendered.slice(n),
  };
}

function sharedTextStart(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

function completionIds(tok: TextTokenizer, text: string): number[] {
  return withEos(tok, tok.encode(text, { addSpecialTokens: false }));
}

/** Applies the truncation policy; null when no target token is left. */
function truncate(parts: Parts, options: TruncationOptions): (Parts & { truncated: boolean }) | null {
  let { prompt, completion, completionMask } = parts;
  let truncated = false;
  if (options.maxPromptLength !== undefined && prompt.length > options.maxPromptLength) {
    prompt = prompt.slice(prompt.length - options.maxPromptLength);
    truncated = true;
  }
  if (options.maxLength !== undefined && prompt.length + completion.length > options.maxLength) {
    const room = Math.max(0, options.maxLength - prompt.length);
    completion = completion.slice(0, room);
    completionMask = completionMask.slice(0, room);
    truncated = true;
  }
  if (!completionMask.includes(1)) return null;
  return { prompt, completion, completionMask, truncated };
}
