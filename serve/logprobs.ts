/**
 * OpenAI's `logprobs` objects from the engine's scores: the legacy completions shape (`tokens`,
 * `token_logprobs`, `top_logprobs` dicts, `text_offset`, as OpenAI's legacy API and vLLM give them, what
 * lm-evaluation-harness's `local-completions` reads) and the chat shape (`content` of `{token, logprob,
 * bytes, top_logprobs}`).
 *
 * Each token's text is its incremental piece of the decoded text (a character split over several byte tokens
 * comes with its last one), so the pieces join into the text; `top_logprobs` keys are each alternative token
 * decoded alone (two tokens reading the same keep the more probable one's value). Log-probabilities are the
 * model's own (before temperature and penalties), as vLLM reports them by default.
 *
 * @module
 */
import type { ScoredTokens, TokenChoice, TokenScoring } from "../generate/engine_contract.ts";
import type { ChatLogprobs, CompletionLogprobs } from "./openai_types.ts";

/** One token of a choice with its log-probability (null: a prompt's first token) and alternatives. */
export interface TokenEntry {
  id: number;
  /** Its piece of the choice's text. */
  piece: string;
  logprob: number | null;
  /** The most probable tokens at its position (null where `logprob` is). */
  top: TokenChoice[] | null;
}

/**
 * The entries of `ids[from..]` from a score over `ids` (see `TokenScoring.score`); with `fromStart`, the
 * first id comes first with a null log-prob (an echoed prompt).
 *
 * @example
 * ```ts
 * const [scored] = await scoring.score([{ ids, from: 1 }], { topN: 1 });
 * const entries = tokenEntries(scoring, ids, 1, scored, true); // every token of ids, the first with null
 * ```
 */
export function tokenEntries(
  scoring: TokenScoring,
  ids: readonly number[],
  from: number,
  scored: ScoredTokens,
  fromStart: boolean,
): TokenEntry[] {
  const pieces = scoring.tokenPieces(ids);
  const out: TokenEntry[] = [];
  if (fromStart) out.push({ id: ids[0], piece: pieces[0], logprob: null, top: null });
  for (let i = 0; i < scored.logprobs.length; i++) {
    const at = from + i;
    out.push({ id: ids[at], piece: pieces[at], logprob: scored.logprobs[i], top: scored.top[i] });
  }
  return out;
}

/** `top` as a `{token: logprob}` dict; the first (more probable) of two tokens reading alike wins. */
function topDict(scoring: TokenScoring, top: readonly TokenChoice[]): Record<string, number> {
  const dict: Record<string, number> = {};
  for (const c of top) {
    const key = scoring.tokenString(c.id);
    if (!Object.hasOwn(dict, key)) dict[key] = c.logprob;
  }
  return dict;
}

/**
 * The legacy completions `logprobs` object; `text_offset` counts from the start of the choice's text.
 *
 * @example
 * ```ts
 * completionLogprobs(scoring, entries).token_logprobs[0]; // null for an echoed prompt's first token
 * ```
 */
export function completionLogprobs(
  scoring: TokenScoring,
  entries: readonly TokenEntry[],
): CompletionLogprobs {
  const textOffset: number[] = [];
  let at = 0;
  for (const e of entries) {
    textOffset.push(at);
    at += e.piece.length;
  }
  return {
    tokens: entries.map((e) => e.piece),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => (e.top ? topDict(scoring, e.top) : null)),
    text_offset: textOffset,
  };
}

const utf8 = new TextEncoder();

/**
 * The chat `logprobs` object of the generated tokens.
 *
 * @example
 * ```ts
 * chatLogprobs(scoring, entries).content[0].top_logprobs.length; // top_logprobs asked for
 * ```
 */
export function chatLogprobs(scoring: TokenScoring, entries: readonly TokenEntry[]): ChatLogprobs {
  return {
    content: entries.map((e) => ({
      token: e.piece,
      logprob: e.logprob ?? 0,
      bytes: [...utf8.encode(e.piece)],
      top_logprobs: (e.top ?? []).map((c) => {
        const token = scoring.tokenString(c.id);
        return { token, logprob: c.logprob, bytes: [...utf8.encode(token)] };
      }),
    })),
  };
}
