/**
 * One person's arena over a results JSONL: what is left to vote on, votes, skips and undos, and the tables.
 *
 * Every vote and undo is appended to the results file before it is acknowledged, so nothing is lost to a
 * reload or a restart; reopening the file (with the same plan) finds what is voted and which vote an undo
 * would take back. Skips are not votes: a skipped item goes to the back of the queue for as long as this
 * session runs. Requests that no longer match the state (an item voted in another tab, an undo of a vote that
 * is not the last one standing) are refused with an {@link ArenaRequestError} naming what is current.
 *
 * @module
 */
import { writeFileAtomic } from "../../io/atomic.ts";
import { agreementLine, type JudgeAgreement, judgeAgreements } from "./agreement.ts";
import {
  ARENA_VERSION,
  type ArenaItem,
  type ArenaPlan,
  humanRecord,
  type HumanVote,
  isVoted,
  itemKey,
} from "./human.ts";
import { JudgmentLog, type JudgmentRecord } from "./judgments.ts";
import { type PairSummary, renderTable, summarizePair, type WinRateSummary } from "./summary.ts";

/** Why an arena request was refused: `unknown_item`, `already_voted`, `stale_undo` or `nothing_to_undo`. */
export type ArenaRequestCode = "unknown_item" | "already_voted" | "stale_undo" | "nothing_to_undo";

/**
 * A request the arena's state refuses; `code` says which kind.
 *
 * @example
 * ```ts
 * await session.undo("0123abcd"); // ArenaRequestError (stale_undo): the last vote standing is …
 * ```
 */
export class ArenaRequestError extends Error {
  /** Which kind of refusal. */
  readonly code: ArenaRequestCode;
  /** A refusal of kind `code`, saying what is current. */
  constructor(code: ArenaRequestCode, message: string) {
    super(message);
    this.name = "ArenaRequestError";
    this.code = code;
  }
}

/** Votes cast and items in all. */
export interface ArenaProgress {
  /** Items voted on. */
  done: number;
  /** Items in the plan. */
  total: number;
}

/** Table 1 from the person's votes, and agreement with every other judge in the results file. */
export interface ArenaTables {
  /** The summary JSON, as `deno task winrate` writes one, for this person. */
  summary: WinRateSummary & { agreement: JudgeAgreement[] };
  /** Table 1 in Markdown. */
  table: string;
  /** FastChat's agreement lines (empty when no other judge judged the same questions). */
  agreement: string[];
}

/** Where a person's arena files lie, next to the results: the seed, the summary JSON and the table. */
export function arenaPaths(
  resultsPath: string,
  judge: string,
): { seed: string; summary: string; table: string } {
  const base = `${resultsPath.replace(/\.jsonl$/, "")}.${judge.replace(/[^\p{L}\p{N}._@-]+/gu, "-")}`;
  return { seed: `${base}.arena.json`, summary: `${base}.summary.json`, table: `${base}.md` };
}

/**
 * The seed a person's arena draws its orders from: `given` (written down), else the one written down, else a
 * new one (written down), so a restarted arena shows every question as before.
 */
export async function arenaSeed(path: string, given?: number): Promise<number> {
  if (given === undefined) {
    try {
      const kept = JSON.parse(await Deno.readTextFile(path)).seed;
      if (Number.isSafeInteger(kept)) return kept;
      throw new Error(`${path}: "seed": expected an integer, got ${JSON.stringify(kept)}`);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  const seed = given ?? crypto.getRandomValues(new Uint32Array(1))[0];
  await writeFileAtomic(path, JSON.stringify({ seed, arena: ARENA_VERSION }) + "\n");
  return seed;
}

/**
 * A person's arena: the plan, the results file, and what is voted.
 *
 * @example
 * ```ts
 * const session = await ArenaSession.open(plan, "runs/winrate/judgments.jsonl");
 * const item = session.next();
 * if (item) await session.vote(item.key, "A");
 * console.log(session.tables().table);
 * ```
 */
export class ArenaSession {
  /** What is shown, in order. */
  readonly plan: ArenaPlan;
  /** The questions file, named in the summary. */
  readonly prompts: string;
  readonly #log: JudgmentLog;
  readonly #items: Map<string, ArenaItem>;
  /** Items skipped in this session, in the order skipped (they come after every other item). */
  #skipped: string[] = [];
  /** Items whose vote stands, in the order cast: an undo takes back the last. */
  #history: string[] = [];

  private constructor(plan: ArenaPlan, log: JudgmentLog, prompts: string) {
    this.plan = plan;
    this.prompts = prompts;
    this.#log = log;
    this.#items = new Map(plan.items.map((item) => [item.key, item]));
    const planned = new Set(plan.items.map((i) => i.fingerprint));
    for (const line of log.lines) {
      if (line.judge !== plan.judge || !planned.has(line.fingerprint) || line.game === undefined) continue;
      const key = itemKey(line.fingerprint, line.game, plan.rule);
      this.#history = this.#history.filter((k) => k !== key);
      if (line.action === "vote") this.#history.push(key);
    }
  }

  /**
   * Opens the results file (a missing one is started by the first vote); `prompts` names the questions file
   * in the summary, `warn` hears of a cut last line.
   */
  static async open(
    plan: ArenaPlan,
    resultsPath: string,
    o: { prompts?: string; warn?: (m: string) => void } = {},
  ): Promise<ArenaSession> {
    return new ArenaSession(plan, await JudgmentLog.open(resultsPath, o.warn), o.prompts ?? "");
  }

  /** The results file. */
  get path(): string {
    return this.#log.path;
  }

  #line(item: ArenaItem): JudgmentRecord | undefined {
    return this.#log.find({
      model_a: item.modelA,
      model_b: item.modelB,
      id: item.question.id,
      fingerprint: item.fingerprint,
    });
  }

  #voted(item: ArenaItem): boolean {
    return isVoted(this.#line(item), item, this.plan.rule);
  }

  #item(key: unknown): ArenaItem {
    const item = typeof key === "string" ? this.#items.get(key) : undefined;
    if (!item) {
      throw new ArenaRequestError(
        "unknown_item",
        `no item ${JSON.stringify(key)} in this arena (the page may be from an earlier arena: reload it)`,
      );
    }
    return item;
  }

  /** The next item to vote on: the first unvoted one in the plan's order, skipped ones last. */
  next(): ArenaItem | undefined {
    const open = this.plan.items.filter((item) => !this.#voted(item));
    return open.find((item) => !this.#skipped.includes(item.key)) ??
      this.#skipped.map((key) => this.#items.get(key)!).find((item) => open.includes(item));
  }

  /** Votes cast (of the plan's items) and items in all. */
  progress(): ArenaProgress {
    const done = this.plan.items.filter((item) => this.#voted(item)).length;
    return { done, total: this.plan.items.length };
  }

  /** The item the next undo takes back, if any. */
  lastVote(): ArenaItem | undefined {
    const key = this.#history.at(-1);
    return key === undefined ? undefined : this.#items.get(key);
  }

  /** Records a vote on `key`, appended to the results file before this resolves. */
  vote(key: unknown, vote: HumanVote): Promise<void> {
    const item = this.#item(key);
    if (this.#voted(item)) {
      throw new ArenaRequestError(
        "already_voted",
        `item ${item.key} is already voted on; undo it to vote again`,
      );
    }
    this.#skipped = this.#skipped.filter((k) => k !== item.key);
    this.#history.push(item.key);
    return this.#log.append(humanRecord(this.#line(item), item, this.plan, vote));
  }

  /** Puts `key` behind every other unvoted item, for this session. */
  skip(key: unknown): void {
    const item = this.#item(key);
    if (this.#voted(item)) {
      throw new ArenaRequestError(
        "already_voted",
        `item ${item.key} is already voted on; undo it to vote again`,
      );
    }
    this.#skipped = [...this.#skipped.filter((k) => k !== item.key), item.key];
  }

  /**
   * Takes back the last vote standing, which must be `key`'s (the page says which vote it means, so a second
   * tab or a repeated request cannot take back another); resolves with the item, to be voted on again.
   */
  async undo(key: unknown): Promise<ArenaItem> {
    const item = this.#item(key);
    const last = this.#history.at(-1);
    if (last === undefined) throw new ArenaRequestError("nothing_to_undo", "there is no vote to undo");
    if (last !== item.key) {
      throw new ArenaRequestError(
        "stale_undo",
        `item ${item.key} is not the last vote standing (that is ${last}); reload to see the current state`,
      );
    }
    this.#history.pop();
    const line = this.#line(item)!;
    // Under `once` the vote may have been cast in the other order (drawn with an earlier seed).
    const game: 1 | 2 = this.plan.rule === "both" || line.verdicts[item.game - 1] !== null
      ? item.game
      : item.game === 1
      ? 2
      : 1;
    await this.#log.append(humanRecord(line, { ...item, game }, this.plan, null));
    return item;
  }

  /** Table 1 from this person's votes, and the agreement with the other judges of the results file. */
  tables(): ArenaTables {
    const pairs: PairSummary[] = this.plan.pairs.map((pair) => {
      const lines = pair.questions.map((q) =>
        this.#log.find({ model_a: pair.modelA, model_b: pair.modelB, id: q.id, fingerprint: q.fingerprint })
      );
      const found = lines.filter((l) => l !== undefined);
      const counted = summarizePair(pair.modelA, pair.modelB, found, pair.missing);
      const unvoted = lines.length - found.length;
      return {
        ...counted,
        questions: counted.questions + unvoted,
        pending: (counted.pending ?? 0) + unvoted,
      };
    });
    const agreement = judgeAgreements(this.#log.lines);
    return {
      summary: {
        judge: this.plan.judge,
        judge_prompt: ARENA_VERSION,
        prompts: this.prompts,
        results: this.#log.path,
        pairs,
        no_verdict: 0,
        orders: this.plan.rule,
        agreement,
      },
      table: renderTable(pairs, this.plan.judge, this.plan.rule),
      agreement: agreement.map(agreementLine),
    };
  }

  /** Writes the summary JSON and the Markdown table (with the agreement lines) next to the results. */
  async writeTables(): Promise<ArenaTables> {
    const tables = this.tables();
    const paths = arenaPaths(this.#log.path, this.plan.judge);
    await writeFileAtomic(paths.summary, JSON.stringify(tables.summary, null, 2) + "\n");
    const agreement = tables.agreement.length > 0
      ? `\n\nAgreement (FastChat's compute_agreement):\n\n${tables.agreement.map((l) => `- ${l}`).join("\n")}`
      : "";
    await writeFileAtomic(paths.table, tables.table + agreement + "\n");
    return tables;
  }
}
