/**
 * The results JSONL: one line per judged pair, appended as soon as it is judged. A rerun skips every pair
 * whose fingerprint — prompt version, judge model, question and both answers — is already there with a
 * verdict; the last line of a key wins.
 *
 * @module
 */
import { JsonlLog, type JsonlRow } from "../../io/jsonl.ts";
import type { Verdict } from "./judge_prompt.ts";
import { WinRateInputError } from "./inputs.ts";

/** A pair's result from model A's side. */
export type Outcome = "win" | "tie" | "loss" | "error";

/** One line of the results JSONL. */
export interface JudgmentRecord {
  id: string;
  model_a: string;
  model_b: string;
  judge: string;
  /** Hash of prompt version, judge, question and both answers: what makes a judgment reusable. */
  fingerprint: string;
  /** Game 1 shows model_a as assistant A; game 2 shows model_b as assistant A. Null: no verdict found. */
  verdicts: [Verdict | null, Verdict | null];
  outcome: Outcome;
  /** The judge's last reply in each game, shortened to {@link RAW_CHARS} characters. */
  judge_raw: [string, string];
  /** Judge calls made in each game (more than one when a reply had no verdict). */
  attempts: [number, number];
  errors: string[];
  judged_at: string;
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

  private constructor(log: JsonlLog) {
    this.path = log.path;
    this.#log = log;
    for (const row of log.rows) {
      const rec = parseJudgment(row);
      this.#byKey.set(judgmentKey(rec), rec);
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

  /** Appends one record; appends are serialized so lines never interleave. */
  append(rec: JudgmentRecord): Promise<void> {
    this.#byKey.set(judgmentKey(rec), rec);
    return this.#log.append(rec);
  }
}

const OUTCOMES = new Set(["win", "tie", "loss", "error"]);

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
    throw error(`${where}: "outcome": expected win | tie | loss | error, got ${show(value.outcome)}`);
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
