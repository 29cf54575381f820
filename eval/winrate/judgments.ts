/**
 * The results JSONL: one line per judged pair, appended as soon as it is judged. A rerun skips every pair
 * whose fingerprint — prompt version, judge model, question and both answers — is already there with a
 * verdict; the last line of a key wins.
 *
 * @module
 */
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
 * The results JSONL: what is already judged, and appends that survive a crash. A last line cut short by a
 * crash is ignored and the next append starts on a fresh line.
 */
export class JudgmentLog {
  readonly path: string;
  readonly #byKey = new Map<string, JudgmentRecord>();
  #needsNewline = false;
  #writes: Promise<void> = Promise.resolve();

  private constructor(path: string) {
    this.path = path;
  }

  /**
   * Opens (or starts) a results file.
   *
   * @example
   * ```ts
   * const log = await JudgmentLog.open("runs/winrate/judgments.jsonl");
   * ```
   */
  static async open(path: string): Promise<JudgmentLog> {
    const log = new JudgmentLog(path);
    let text = "";
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const complete = await dropCutLastLine(path, text);
    log.#needsNewline = complete !== "" && !complete.endsWith("\n");
    log.#load(complete);
    return log;
  }

  #load(text: string): void {
    text.split("\n").forEach((line, i) => {
      if (line.trim() === "") return;
      let rec: JudgmentRecord;
      try {
        rec = JSON.parse(line);
      } catch {
        throw new WinRateInputError(`${this.path}:${i + 1}: not valid JSON; fix or remove the line`);
      }
      this.#byKey.set(judgmentKey(rec), rec);
    });
  }

  /** The stored judgment with this key, if any. */
  find(r: Pick<JudgmentRecord, "model_a" | "model_b" | "id" | "fingerprint">): JudgmentRecord | undefined {
    return this.#byKey.get(judgmentKey(r));
  }

  /** Appends one record; appends are serialized so lines never interleave. */
  append(rec: JudgmentRecord): Promise<void> {
    this.#byKey.set(judgmentKey(rec), rec);
    const line = (this.#needsNewline ? "\n" : "") + JSON.stringify(rec) + "\n";
    this.#needsNewline = false;
    this.#writes = this.#writes.then(() => Deno.writeTextFile(this.path, line, { append: true }));
    return this.#writes;
  }
}

/**
 * A crash mid-append leaves a last line without its newline that does not parse: cut it off the file (it is
 * judged again) and return the text that remains.
 */
async function dropCutLastLine(path: string, text: string): Promise<string> {
  if (text === "" || text.endsWith("\n")) return text;
  const start = text.lastIndexOf("\n") + 1;
  try {
    JSON.parse(text.slice(start));
    return text;
  } catch {
    const kept = text.slice(0, start);
    await Deno.truncate(path, new TextEncoder().encode(kept).byteLength);
    return kept;
  }
}

function judgmentKey(r: Pick<JudgmentRecord, "model_a" | "model_b" | "id" | "fingerprint">): string {
  return JSON.stringify([r.model_a, r.model_b, r.id, r.fingerprint]);
}
