/**
 * Turns validated dataset rows into token ids and label masks, the way TRL's trainers prepare them. The
 * default `encoding: "trl"` follows current TRL (`tokenize_fn` of `SFTTrainer` and `DPOTrainer`,
 * `build_tokenized_answer` of the experimental `ORPOTrainer`); `encoding: "legacy"` is this toolkit's
 * earlier encoding (see below), kept for runs that must reproduce it.
 *
 * SFT (TRL's SFTTrainer):
 * - `text`: EOS appended to the text (as a string, unless it ends with it), tokenized with the tokenizer's
 *   default special tokens (e.g. BOS first); every token is a target.
 * - prompt-completion with plain text: EOS appended to the completion; `tokenizer(prompt)` and
 *   `tokenizer(prompt + completion)` (the joint text decides the ids, the prompt's own length decides where
 *   targets start). By default only completion tokens are targets (`completion_only_loss`).
 * - prompt-completion with chats: the prompt rendered with `add_generation_prompt`, then prompt+completion
 *   rendered whole, each tokenized without added special tokens (as `apply_chat_template(tokenize=True)`);
 *   the template closes the turn, so no EOS is added.
 * - `messages`: the rendered chat, tokenized the same way; every token is a target (TRL's default) or, with
 *   `assistantOnlyLoss`, only the tokens of assistant turns.
 *
 * Preference pairs: chat prompts are rendered with `add_generation_prompt`. DPO (TRL's DPOTrainer): EOS is
 * appended to plain-text completions only; prompt and prompt+completion are tokenized as for SFT and each
 * completion is what the joint ids hold after the prompt's own length. ORPO (TRL's experimental
 * ORPOTrainer): chats are rendered to text (a chat completion is what rendering prompt+completion adds after
 * the prompt), prompt and prompt+completion are tokenized without special tokens, a prompt token merged
 * into the completion moves into it, BOS is put before the prompt and EOS after each completion unless they
 * are there. (Where TRL masks each side's own prompt, the shared prompt here is the shorter one, so a token
 * merged on one side only is a target there.)
 *
 * Legacy encoding: a sequence starts as the tokenizer's default post-processing starts a text
 * ({@link TextTokenizer.prefixIds}) and never twice: when a chat template already wrote BOS, no second one
 * is added; EOS is appended as an id to text SFT rows and to every preference completion, and a pair's
 * prompt and completions are tokenized separately.
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

/** How rows become ids: current TRL's encoding, or this toolkit's earlier one (see the module comment). */
export type ExampleEncoding = "trl" | "legacy";

/**
 * Options for SFT examples.
 *
 * @example
 * ```ts
 * buildSftExamples(rows, tok, { maxLength: 1024, assistantOnlyLoss: true });
 * ```
 */
export interface SftExampleOptions extends TruncationOptions {
  /** Default `trl`. */
  encoding?: ExampleEncoding;
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
  options: PreferenceExampleOptions = {},
): { examples: PreferenceExample[]; stats: ExampleStats } {
  checkLimits(options);
  const stats = emptyStats();
  const examples: PreferenceExample[] = [];
  const encode = options.encoding === "legacy"
    ? legacyPair
    : options.objective === "orpo"
    ? orpoPair
    : dpoPair;
  for (const row of rows) {
    requireSameForm(row.source, row.prompt, row.chosen, row.rejected);
    const pair = encode(row, tok);
    if (pair.promptMismatch) stats.promptMismatches++;
    const chosen = truncate(completionParts(pair.prompt, pair.chosen), options);
    const rejected = truncate(completionParts(pair.prompt, pair.rejected), options);
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

/**
 * Options for preference examples.
 *
 * @example
 * ```ts
 * buildPreferenceExamples(rows, tok, { maxLength: 512, objective: "orpo" });
 * ```
 */
export interface PreferenceExampleOptions extends TruncationOptions {
  /** Default `trl`. */
  encoding?: ExampleEncoding;
  /** Whose encoding: TRL's DPOTrainer (default) or its ORPOTrainer. */
  objective?: "dpo" | "orpo";
}

/** A pair's ids before truncation: one prompt, two completions. */
interface EncodedPair {
  prompt: number[];
  chosen: number[];
  rejected: number[];
  /** A prompt's ids were not a prefix of prompt + completion (a merge at the boundary). */
  promptMismatch?: boolean;
}

/** The legacy encoding: prompt and completions tokenized separately, EOS appended to each completion. */
function legacyPair(row: PreferenceRow, tok: TextTokenizer): EncodedPair {
  const { promptText, chosenText, rejectedText } = preferenceTexts(row, tok);
  return {
    prompt: withPrefixOnce(tok, tok.encode(promptText, { addSpecialTokens: false })),
    chosen: completionIds(tok, chosenText),
    rejected: completionIds(tok, rejectedText),
  };
}

/** TRL's DPOTrainer: prompt and prompt+completion tokenized, each completion what follows the prompt. */
function dpoPair(row: PreferenceRow, tok: TextTokenizer): EncodedPair {
  const joint = (completion: TextOrChat) =>
    typeof row.prompt === "string"
      ? tok.encode(row.prompt + withEosText(tok, completion as string))
      : chatIdsAsTrl(tok, [...row.prompt, ...(completion as Message[])], false);
  const prompt = typeof row.prompt === "string"
    ? tok.encode(row.prompt)
    : chatIdsAsTrl(tok, row.prompt, true);
  const chosen = joint(row.chosen), rejected = joint(row.rejected);
  const mismatch = [chosen, rejected].some((ids) => prompt.some((id, i) => ids[i] !== id));
  return {
    prompt,
    chosen: chosen.slice(prompt.length),
    rejected: rejected.slice(prompt.length),
    promptMismatch: mismatch,
  };
}

/**
 * TRL's experimental ORPOTrainer (`build_tokenized_answer`, `add_bos_token_if_needed`,
 * `add_eos_token_if_needed`): texts tokenized without special tokens, a merged prompt token moved into the
 * completion, BOS before the prompt and EOS after each completion unless there.
 */
function orpoPair(row: PreferenceRow, tok: TextTokenizer): EncodedPair {
  const { promptText, chosenText, rejectedText } = preferenceTexts(row, tok);
  const plain = (t: string) => tok.encode(t, { addSpecialTokens: false });
  const promptIds = plain(promptText);
  const answer = (text: string) => {
    const full = plain(promptText + text);
    const merged = promptIds.some((id, i) => full[i] !== id);
    return { full, start: merged ? promptIds.length - 1 : promptIds.length, merged };
  };
  const chosen = answer(chosenText), rejected = answer(rejectedText);
  const shared = Math.max(0, Math.min(chosen.start, rejected.start));
  let prompt = chosen.full.slice(0, shared);
  const bos = tok.bosId;
  if (bos !== null && prompt[0] !== bos) prompt = [bos, ...prompt];
  const eos = tok.eosId;
  if (eos === null) throw new Error("the tokenizer has no EOS token, which training examples need");
  const tail = (a: { full: number[] }) => {
    const ids = a.full.slice(shared);
    return ids[ids.length - 1] === eos ? ids : [...ids, eos];
  };
  return {
    prompt,
    chosen: tail(chosen),
    rejected: tail(rejected),
    promptMismatch: chosen.merged || rejected.merged,
  };
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

/** `text` with the EOS token's text appended unless it ends with it (TRL's `add_eos`). */
function withEosText(tok: TextTokenizer, text: string): string {
  const eos = tok.specialTokenStrings.eos_token ??
    (tok.eosId === null ? undefined : tok.idToToken(tok.eosId));
  if (eos === undefined) throw new Error("the tokenizer has no EOS token, which training examples need");
  return text.endsWith(eos) ? text : text + eos;
}

/** A chat as `apply_chat_template(tokenize=True)` gives it: the rendered text, no special tokens added. */
function chatIdsAsTrl(
  tok: TextTokenizer,
  messages: readonly ChatMessage[],
  addGenerationPrompt: boolean,
): number[] {
  return tok.encode(tok.applyChatTemplate(messages, { addGenerationPrompt }), { addSpecialTokens: false });
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

/** How one encoding turns text and chats into ids. */
interface Encoder {
  /** A text SFT row. */
  text(text: string): number[];
  /** A chat, with or without the generation prompt. */
  chat(messages: readonly ChatMessage[], addGenerationPrompt: boolean): number[];
  /** A text prompt, and the text prompt with its completion. */
  promptAndJoint(prompt: string, completion: string): [number[], number[]];
}

function encoderOf(tok: TextTokenizer, encoding: ExampleEncoding | undefined): Encoder {
  if (encoding === "legacy") {
    const plain = (t: string) => withPrefixOnce(tok, tok.encode(t, { addSpecialTokens: false }));
    return {
      text: (t) => withEos(tok, plain(t)),
      chat: (m, g) => chatIds(tok, m, g),
      promptAndJoint: (p, c) => [plain(p), withEos(tok, plain(p + c))],
    };
  }
  return {
    text: (t) => tok.encode(withEosText(tok, t)),
    chat: (m, g) => chatIdsAsTrl(tok, m, g),
    promptAndJoint: (p, c) => [tok.encode(p), tok.encode(p + withEosText(tok, c))],
  };
}

function sftParts(row: SftRow, tok: TextTokenizer, options: SftExampleOptions): Parts {
  const enc = encoderOf(tok, options.encoding);
  switch (row.kind) {
    case "language-modeling":
      return completionParts([], enc.text(row.text));
    case "conversational":
      return options.assistantOnlyLoss
        ? assistantOnlyParts(enc, row.messages)
        : completionParts([], enc.chat(row.messages, false));
    case "prompt-completion": {
      requireSameForm(row.source, row.prompt, row.completion);
      const parts = promptCompletionParts(enc, row.prompt, row.completion);
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
function promptCompletionParts(enc: Encoder, prompt: TextOrChat, completion: TextOrChat): Parts {
  let promptIds: number[];
  let fullIds: number[];
  if (typeof prompt === "string") {
    [promptIds, fullIds] = enc.promptAndJoint(prompt, completion as string);
  } else {
    promptIds = enc.chat(prompt, true);
    fullIds = enc.chat([...prompt, ...(completion as Message[])], false);
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
function assistantOnlyParts(enc: Encoder, messages: readonly Message[]): Parts {
  const full = enc.chat(messages, false);
  const mask = full.map(() => 0);
  messages.forEach((m, i) => {
    if (m.role !== "assistant") return;
    const start = sharedStart(enc.chat(messages.slice(0, i), true), full);
    const end = sharedStart(enc.chat(messages.slice(0, i + 1), false), full);
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
