/**
 * How often two judges agree, as FastChat's `llm_judge/compute_agreement.py` counts it for the MT-Bench
 * human judgments: per question and pair of models, each of the first judge's decisions (an LLM judge has
 * one) is set against every vote of the second (all persons together, FastChat's `human`); a decision is
 * model A, model B or a tie (pairs are keyed with their names in sorted order, so a pair compared as (A, B) by
 * one judge and (B, A) by another still meets). "With ties" counts every such meeting and two ties agree;
 * "without ties" leaves out every meeting where either side is a tie. Persons are also compared with one
 * another (FastChat's `human human`): each two votes by different persons on the same question and pair.
 *
 * A judge's decision on a question is its last line for it (as the results file's rule has it); `error` and
 * `pending` lines are no decision. Lines are matched by question id and model names: answers regenerated
 * between the LLM's and the person's judgments would compare different answers.
 *
 * @module
 */
import type { JudgmentRecord } from "./judgments.ts";
import { isHumanJudge } from "./summary.ts";

/** Meetings counted and those that agreed. */
export interface AgreementCount {
  /** Meetings where the two decisions were the same. */
  agree: number;
  /** Meetings counted. */
  total: number;
}

/** One comparison of judges: FastChat's two lines, with and without ties. */
export interface JudgeAgreement {
  /** The first judge (an LLM judge's name, or `human` for persons compared with one another). */
  first: string;
  /** The second: `human`, every person's votes. */
  second: string;
  /** Every meeting; two ties agree. */
  withTies: AgreementCount;
  /** Meetings where neither decision is a tie. */
  withoutTies: AgreementCount;
}

type Winner = "first" | "second" | "tie";

/** Each judge's decisions: judge → question-and-pair key → winner, the sorted pair's first model's side. */
function decisions(records: readonly JudgmentRecord[]): Map<string, Map<string, Winner>> {
  const byJudge = new Map<string, Map<string, Winner | undefined>>();
  for (const r of records) {
    const swapped = r.model_b < r.model_a;
    const key = JSON.stringify([r.id, ...(swapped ? [r.model_b, r.model_a] : [r.model_a, r.model_b])]);
    const decided = r.outcome === "tie"
      ? "tie"
      : r.outcome === "win"
      ? (swapped ? "second" : "first")
      : r.outcome === "loss"
      ? (swapped ? "first" : "second")
      : undefined;
    const judged = byJudge.get(r.judge) ?? new Map();
    byJudge.set(r.judge, judged);
    // Delete first, so the last line decides and a cleared one (undo, error) leaves no decision.
    judged.delete(key);
    judged.set(key, decided);
  }
  const out = new Map<string, Map<string, Winner>>();
  for (const [judge, judged] of byJudge) {
    const kept = new Map([...judged].filter((e): e is [string, Winner] => e[1] !== undefined));
    if (kept.size > 0) out.set(judge, kept);
  }
  return out;
}

function meet(into: JudgeAgreement, a: Winner, b: Winner): void {
  into.withTies.total++;
  if (a === b) into.withTies.agree++;
  if (a === "tie" || b === "tie") return;
  into.withoutTies.total++;
  if (a === b) into.withoutTies.agree++;
}

function empty(first: string, second: string): JudgeAgreement {
  return { first, second, withTies: { agree: 0, total: 0 }, withoutTies: { agree: 0, total: 0 } };
}

/**
 * Every LLM (or rule) judge in `records` against the persons' votes, then persons against one another when
 * two or more voted on the same questions; comparisons that share no question are left out.
 *
 * @example
 * ```ts
 * const log = await JudgmentLog.open("runs/winrate/judgments.jsonl");
 * for (const a of judgeAgreements(log.lines)) console.log(agreementLine(a));
 * // gpt-4o vs human: with ties 7/10 agree (0.70); without ties 5/6 (0.83)
 * ```
 */
export function judgeAgreements(records: readonly JudgmentRecord[]): JudgeAgreement[] {
  const byJudge = decisions(records);
  const humans = [...byJudge].filter(([judge]) => isHumanJudge(judge)).map(([, d]) => d);
  const rows: JudgeAgreement[] = [];
  for (const [judge, judged] of byJudge) {
    if (isHumanJudge(judge)) continue;
    const row = empty(judge, "human");
    for (const [key, winner] of judged) {
      for (const person of humans) {
        const vote = person.get(key);
        if (vote !== undefined) meet(row, winner, vote);
      }
    }
    if (row.withTies.total > 0) rows.push(row);
  }
  const among = empty("human", "human");
  for (let i = 0; i < humans.length; i++) {
    for (let j = i + 1; j < humans.length; j++) {
      for (const [key, vote] of humans[i]) {
        const other = humans[j].get(key);
        if (other !== undefined) meet(among, vote, other);
      }
    }
  }
  if (among.withTies.total > 0) rows.push(among);
  return rows;
}

/**
 * One comparison as a line, FastChat's figures (`#total`, `#agree`, ratio to two decimals) with and
 * without ties.
 *
 * @example
 * ```ts
 * agreementLine({ first: "gpt-4o", second: "human", withTies: { agree: 7, total: 10 },
 *   withoutTies: { agree: 5, total: 6 } });
 * // "gpt-4o vs human: with ties 7/10 agree (0.70); without ties 5/6 (0.83)"
 * ```
 */
export function agreementLine(a: JudgeAgreement): string {
  const ratio = (c: AgreementCount) => c.total === 0 ? "–" : (c.agree / c.total).toFixed(2);
  return `${a.first} vs ${a.second}: with ties ${a.withTies.agree}/${a.withTies.total} agree ` +
    `(${ratio(a.withTies)}); without ties ${a.withoutTies.agree}/${a.withoutTies.total} ` +
    `(${ratio(a.withoutTies)})`;
}
