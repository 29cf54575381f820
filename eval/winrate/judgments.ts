/**
 * The results JSONL: one line per judged pair, appended as soon as it is judged. A rerun skips every pair
 * whose fingerprint — prompt version, judge model, question and both answers — is already there with a
 * verdict; the last line of a key wins.
 *
 * A person's votes from the arena (`human.ts`) land in the same file, judged by `human:<name>`: one line per
 * vote or undo, holding the question's whole state (so the last line wins for them too), with the fields
 * `orders`, `game` and `action` added and the outcome `pending` while the person's rule still needs a vote.
 *
 * @module
 */
import { JsonlLog, type JsonlRow } from "../../io/jsonl.ts";
import type { Verdict } from "./judge_prompt.ts";
import { WinRateInputError } from "./inputs.ts";

/**
 * A pair's result from model A's side. `error`: the LLM judge gave no verdict (a rerun asks again);
 * `pending`: a person has not (or no longer, after an undo) cast every vote the rule needs. Neither counts in
 * the rates.
 */
export type Outcome = "win" | "tie" | "loss" | "error" | "pending";

/**
 * How a person's votes can make a question's outcome: `once` shows each question once, its two answers in a
 * random order, and the vote is the outcome (FastChat's Chatbot Arena and its MT-Bench human judgments);
 * `both` shows it in both orders and a win needs both votes to agree, as the LLM judge's two games.
 * @example
 * ```ts
 * ORDER_RULES.includes("both"); // true
 * ```
 */
export const ORDER_RULES: readonly OrderRule[] = ["once", "both"];

/** One of {@link ORDER_RULES}. */
export type OrderRule = "once" | "both";

/** One line of the results JSONL. */
export interface JudgmentRecord {
  /** The question's id. */
  id: string;
  /** The model whose side the outcome is from. */
  model_a: string;
  /** The model it is compared against. */
  model_b: string;
  /** The judge model's id, or `human:<name>` for a person. */
  judge: string;
  /** Hash of prompt version, judge, question and both answers: what makes a judgment reusable. */
  fingerprint: string;
  /** Game 1 shows model_a as assistant A; game 2 shows model_b as assistant A. Null: no verdict found. */
  verdicts: [Verdict | null, Verdict | null];
  /** What the verdicts make of the pair, from model A's side. */
  outcome: Outcome;
  /** The judge's last reply in each game, shortened to {@link RAW_CHARS} characters. */
  judge_raw: [string, string];
  /** Judge calls made in each game (more than one when a reply had no verdict). */
  attempts: [number, number];
  /** Why a game has no verdict (empty when both have one). */
  errors: string[];
  /** When the line was written (ISO 8601). */
  judged_at: string;
  /** A person's line only: the rule the vote was cast under. */
  orders?: OrderRule;
  /** A person's line only: the game this line changed (1: model_a's answer shown first). */
  game?: 1 | 2;
  /** A person's line only: a vote cast, or the vote of `game` taken back. */
  action?: "vote" | "undo";
}

/**
 * The results JSONL on disk: what is already judged, and appends that survive a crash. Opening it follows
 * the toolkit's JSONL rule (io/jsonl.ts): a last line cut short by a killed run is cut off the file with a
 * warning (and judged again); any other bad line is an error naming the file and line.
 */
export class JudgmentLog {
  readonly path: string;
  readonly #log: JsonlLog;
  readonly #byKey = new Map<string, JudgmentRecord>();
  readonly #lines: JudgmentRecord[] = [];

  private constructor(log: JsonlLog) {
    this.path = log.path;
    this.#log = log;
    for (const row of log.rows) {
      const rec = parseJudgment(row);
      this.#byKey.set(judgmentKey(rec), rec);
      this.#lines.push(rec);
    }
  }

  /**
   * Opens (or starts) a results file; `warn` hears of a cut last line (default: `console.warn`).
   *
   * @example
   * ```ts
   * const log = await JudgmentLog.open("runs/winrate/judgments.jsonl");
   * ```
   */
  static async open(path: string, warn?: (message: string) => void): Promise<JudgmentLog> {
    return new JudgmentLog(await JsonlLog.open(path, { warn, error: (m) => new WinRateInputError(m) }));
  }

  /** The stored judgment with this key, if any. */
  find(r: Pick<JudgmentRecord, "model_a" | "model_b" | "id" | "fingerprint">): JudgmentRecord | undefined {
    return this.#byKey.get(judgmentKey(r));
  }

  /** Every line, the file's and those appended since, in file order (a key's later lines included). */
  get lines(): readonly JudgmentRecord[] {
    return this.#lines;
  }

  /** Appends one record; appends are serialized so lines never interleave. */
  append(rec: JudgmentRecord): Promise<void> {
    this.#byKey.set(judgmentKey(rec), rec);
    this.#lines.push(rec);
    return this.#log.append(rec);
  }
}

const OUTCOMES = new Set(["win", "tie", "loss", "error", "pending"]);

/**
 * One results line as a {@link JudgmentRecord}, checked for the fields a summary needs (`model_a`,
 * `model_b`, `judge`, `id`, `outcome`); `error` makes the error for a line that lacks one (default: a
 * {@link WinRateInputError}).
 *
 * @example
 * ```ts
 * for (const row of parseJsonl(text, "judgments.jsonl", { log: true })) parseJudgment(row).outcome;
 * ```
 */
export function parseJudgment(
  row: JsonlRow,
  error: (message: string) => Error = (m) => new WinRateInputError(m),
): JudgmentRecord {
  const { value, where } = row;
  for (const f of ["model_a", "model_b", "judge"]) {
    if (typeof value[f] !== "string") {
      throw error(`${where}: "${f}": expected a string, got ${show(value[f])}`);
    }
  }
  if (!(typeof value.id === "string" || typeof value.id === "number")) {
    throw error(`${where}: "id": expected a string, got ${show(value.id)}`);
  }
  if (!OUTCOMES.has(value.outcome as string)) {
    throw error(
      `${where}: "outcome": expected win | tie | loss | error | pending, got ${show(value.outcome)}`,
    );
  }
  return { ...value, id: String(value.id) } as unknown as JudgmentRecord;
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function judgmentKey(r: Pick<JudgmentRecord, "model_a" | "model_b" | "id" | "fingerprint">): string {
  return JSON.stringify([r.model_a, r.model_b, r.id, r.fingerprint]);
}
