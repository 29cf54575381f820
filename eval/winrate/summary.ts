/**
 * Counts and rates per pair, the JSON summary of a run and its Markdown table. The tie-adjusted win rate is
 * (wins + ties / 2) / (wins + ties + losses); errors are counted and left out of the rates.
 *
 * @module
 */
import type { JudgmentRecord, OrderRule, Outcome } from "./judgments.ts";

/** Counts and rates for one pair. Rates are fractions in [0, 1], null when nothing was judged. */
export interface PairSummary {
  /** Name of model A. */
  model_a: string;
  /** Name of model B. */
  model_b: string;
  /** Questions with answers from both models. */
  questions: number;
  /** Questions left out because a model had no answer for them. */
  missing: number;
  /** Questions where the judge preferred model A in both orders. */
  wins: number;
  /** Questions judged a tie in either order, or where the two orders disagree. */
  ties: number;
  /** Questions where the judge preferred model B in both orders. */
  losses: number;
  /**
   * Questions with no usable verdict in some order (none after the retries, the judge failed, or not judged
   * because the run stopped asking a failing judge); left out of the rates, judged again by a rerun.
   */
  errors: number;
  /**
   * Questions a person has not finished voting on (human judges only; absent for an LLM judge): left out of
   * the rates, and not errors.
   */
  pending?: number;
  /** wins + ties + losses: the denominator of every rate. */
  judged: number;
  /** wins / judged. */
  win: number | null;
  /** ties / judged. */
  tie: number | null;
  /** losses / judged. */
  loss: number | null;
  /** (wins + ties / 2) / judged. */
  win_rate: number | null;
}

/** The JSON summary of a run. */
export interface WinRateSummary {
  /** The judge model's id. */
  judge: string;
  /** Version of the judge prompt; a new version makes earlier judgments stale. */
  judge_prompt: string;
  /** The questions file. */
  prompts: string;
  /** The results JSONL the summary was computed from. */
  results: string;
  /** One summary per compared pair, in the configured order. */
  pairs: PairSummary[];
  /** Judgments without a verdict over all pairs (the sum of `errors`): a rerun retries them. */
  no_verdict: number;
  /** How each question was shown (human judges; an LLM judge always plays both orders). */
  orders?: OrderRule;
}

/**
 * Counts and rates for one pair from its judgments (errors are counted but left out of the rates);
 * `unjudged` questions, which have no record because the run stopped asking the judge, count as errors.
 * Records a person has not finished (`pending`) are counted apart, as `pending`, when there are any.
 *
 * @example
 * ```ts
 * const s = summarizePair("orpo", "base", records, 0);
 * s.win_rate; // (wins + ties / 2) / (wins + ties + losses)
 * ```
 */
export function summarizePair(
  modelA: string,
  modelB: string,
  records: readonly JudgmentRecord[],
  missing: number,
  unjudged = 0,
): PairSummary {
  const count = (o: Outcome) => records.filter((r) => r.outcome === o).length;
  const wins = count("win"), ties = count("tie"), losses = count("loss");
  const judged = wins + ties + losses;
  const rate = (n: number) => judged === 0 ? null : n / judged;
  const pending = count("pending");
  return {
    model_a: modelA,
    model_b: modelB,
    questions: records.length + unjudged,
    missing,
    wins,
    ties,
    losses,
    errors: count("error") + unjudged,
    ...(pending > 0 ? { pending } : {}),
    judged,
    win: rate(wins),
    tie: rate(ties),
    loss: rate(losses),
    win_rate: rate(wins + ties / 2),
  };
}

/** A person's judge name: `human:<name>` (the arena's votes); anything else is an LLM (or rule) judge. */
export const HUMAN_JUDGE_PREFIX = "human:";

/**
 * Whether `judge` names a person (`human:<name>`).
 *
 * @example
 * ```ts
 * isHumanJudge("human:minji"); // true
 * isHumanJudge("gpt-4o"); // false
 * ```
 */
export function isHumanJudge(judge: string): boolean {
  return judge.startsWith(HUMAN_JUDGE_PREFIX);
}

/**
 * A Markdown table in the manner of the paper's Table 1: one row per pair, from model A's side. `orders`
 * says how a person's questions were shown (default `both`, the only way an LLM judge plays); for a person
 * the Errors column becomes Pending: the questions not yet voted on.
 *
 * @example
 * ```ts
 * console.log(renderTable(summary.pairs, "gpt-4o"));
 * // | Model A | Model B | Win | Tie | Loss | Win rate | Judged | Errors | Missing |
 * // | orpo    | base    | 45.0% (90) | ...
 * ```
 */
export function renderTable(
  pairs: readonly PairSummary[],
  judge: string,
  orders: OrderRule = "both",
): string {
  const human = isHumanJudge(judge);
  const lastCount = human ? "Pending" : "Errors";
  const pct = (x: number | null) => x === null ? "–" : `${(x * 100).toFixed(1)}%`;
  const rows = pairs.map((p) =>
    `| ${p.model_a} | ${p.model_b} | ${pct(p.win)} (${p.wins}) | ${pct(p.tie)} (${p.ties}) | ` +
    `${pct(p.loss)} (${p.losses}) | ${pct(p.win_rate)} | ${p.judged} | ` +
    `${human ? p.pending ?? 0 : p.errors} | ${p.missing} |`
  );
  return [
    `| Model A | Model B | Win | Tie | Loss | Win rate | Judged | ${lastCount} | Missing |`,
    "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ...rows,
    "",
    human
      ? humanNote(judge, orders)
      : `Judge: ${judge}. Each pair is judged in both orders; a win needs both orders to agree. ` +
        "Win rate = (win + tie/2) / judged. Errors (no verdict after retries, or the judge " +
        "failed; a rerun judges them again) and questions missing an answer are left out.",
    ...(noVerdict(pairs) > 0
      ? ["", `**${noVerdict(pairs)} judgment(s) have no verdict: run again to retry them.**`]
      : []),
  ].join("\n");
}

function humanNote(judge: string, orders: OrderRule): string {
  const rule = orders === "once"
    ? "Each question is shown once, its two answers in a random order, and the vote is its outcome " +
      "(FastChat's Chatbot Arena)."
    : "Each question is shown in both orders; a win needs both votes to prefer the same model, anything " +
      "else is a tie.";
  return `Judge: ${judge} (a person's votes). ${rule} Win rate = (win + tie/2) / judged. Questions not yet ` +
    "voted on (pending) and questions missing an answer are left out.";
}

/** Judgments without a verdict over all pairs: the sum of each pair's `errors`. */
export function noVerdict(pairs: readonly PairSummary[]): number {
  return pairs.reduce((n, p) => n + p.errors, 0);
}
