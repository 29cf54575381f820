/**
 * A person as the win rates' judge: what the arena (`deno task arena`, `serve/arena.ts`) shows, and how a vote
 * becomes a line of the results JSONL beside the LLM judge's verdicts, judged by `human:<name>`.
 *
 * Two rules make Table 1 from the votes (the {@link OrderRule}):
 *
 * - `once` (the default, as FastChat's Chatbot Arena and its MT-Bench human judgments): each question is
 *   shown once, its two answers in an order drawn at random; the vote is the question's outcome. Half the
 *   votes of `both`, and a person (unlike a judge model) sees no answer twice.
 * - `both` (as the LLM judge plays): each question is shown in both orders, the second showing after every
 *   question has been seen once; a win needs both votes to prefer the same model, anything else is a tie
 *   (`combineVerdicts`), so a person's position bias cancels as the judge's does.
 *
 * The order each question is shown in, and the sequence of questions, are drawn from a seed (kept next to
 * the results, so a restarted arena shows the same question in the same order); each line records the order
 * it was voted in as well (`game`). A line holds the question's whole state in the LLM judge's convention:
 * `verdicts[0]` is the vote with model A's answer shown first (game 1), `verdicts[1]` with model B's shown
 * first (game 2), each `A` (the answer shown first), `B` (the second) or `C` (tie); `outcome` is what the rule
 * makes of them, `pending` while it still needs a vote. The last line of a key wins, so an undo is one more
 * line with that vote cleared (`action: "undo"`).
 *
 * @module
 */
import { WinRateInputError } from "./inputs.ts";
import type { Question } from "./inputs.ts";
import { combineVerdicts } from "./judge.ts";
import type { Verdict } from "./judge_prompt.ts";
import type { JudgmentRecord, OrderRule, Outcome } from "./judgments.ts";
import { HUMAN_JUDGE_PREFIX } from "./summary.ts";

/** Part of every human fingerprint: changes when what a person is shown, or how votes count, changes. */
export const ARENA_VERSION = "arena-v1";

/** The rule used unless `--orders` says otherwise: FastChat's arena, each question shown once. */
export const DEFAULT_ORDER_RULE: OrderRule = "once";

/** A person's vote on what was shown: the first answer (A), the second (B), or a tie. */
export type HumanVote = "A" | "B" | "tie";

const VERDICT_OF: Record<HumanVote, Verdict> = { A: "A", B: "B", tie: "C" };

/**
 * The judge name of a person: `human:<name>`; the name is 1–64 letters, digits, `.`, `_`, `@` or `-`.
 *
 * @example
 * ```ts
 * humanJudgeName("민지"); // "human:민지"
 * humanJudgeName("two words"); // WinRateInputError
 * ```
 */
export function humanJudgeName(name: string, where = "--judge_name"): string {
  if (!/^[\p{L}\p{N}._@-]{1,64}$/u.test(name)) {
    throw new WinRateInputError(
      `${where} ${JSON.stringify(name)}: expected 1 to 64 letters, digits, ".", "_", "@" or "-" ` +
        `(votes are judged by "${HUMAN_JUDGE_PREFIX}<name>")`,
    );
  }
  return HUMAN_JUDGE_PREFIX + name;
}

/** A pair of models with their answers by question id. */
export interface AnsweredPair {
  /** The model whose side the rates are reported from. */
  modelA: string;
  /** The model it is compared against. */
  modelB: string;
  /** Model A's answers by question id. */
  answersA: ReadonlyMap<string, string>;
  /** Model B's answers by question id. */
  answersB: ReadonlyMap<string, string>;
}

/** One thing to vote on: a question of a pair, shown in one order. */
export interface ArenaItem {
  /** Names the item in the page's requests: the fingerprint, plus the game under `both`. */
  key: string;
  /** Index of the pair in the plan. */
  pair: number;
  /** The question asked. */
  question: Question;
  /** The pair's model A. */
  modelA: string;
  /** The pair's model B. */
  modelB: string;
  /** Of the question, both answers, the judge and the rule: the key of its line in the results. */
  fingerprint: string;
  /** 1: model A's answer is shown first; 2: model B's. */
  game: 1 | 2;
  /** The two answers in the order shown: `[first (A), second (B)]`. */
  shown: [string, string];
}

/** One question of one pair, in both orders' items. */
export interface PlannedQuestion {
  /** Index of the pair in the plan. */
  pair: number;
  /** The question's id. */
  id: string;
  /** The key of its line in the results. */
  fingerprint: string;
}

/** What the arena shows, in order. */
export interface ArenaPlan {
  /** `human:<name>`. */
  judge: string;
  /** How questions are shown and counted. */
  rule: OrderRule;
  /** What the orders and the sequence were drawn from. */
  seed: number;
  /** Per pair: its models, the questions both answered, and how many questions lack an answer. */
  pairs: { modelA: string; modelB: string; questions: PlannedQuestion[]; missing: number }[];
  /** Every item in the order it is shown; under `both` every question's first order comes first. */
  items: ArenaItem[];
}

/**
 * What a person's judgment of a question depends on, hashed: the arena's version, the person, the rule, both
 * model names, the question and both answers (16 hex digits, like the LLM judge's).
 */
export async function humanFingerprint(
  judge: string,
  rule: OrderRule,
  pair: Pick<AnsweredPair, "modelA" | "modelB">,
  question: Question,
  answerA: string,
  answerB: string,
): Promise<string> {
  const text = JSON.stringify([
    ARENA_VERSION,
    judge,
    rule,
    pair.modelA,
    pair.modelB,
    question.text,
    answerA,
    answerB,
  ]);
  return (await sha256Hex(text)).slice(0, 16);
}

async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A draw in [0, 2^32) fixed by the seed and the text. */
async function draw(seed: number, text: string): Promise<number> {
  return parseInt((await sha256Hex(`${seed}\n${text}`)).slice(0, 8), 16);
}

/**
 * The item key of a question's vote in `game`: its fingerprint under `once` (one item per question, whatever
 * order it was drawn in), fingerprint and game under `both`.
 */
export function itemKey(fingerprint: string, game: 1 | 2, rule: OrderRule): string {
  return rule === "once" ? fingerprint : `${fingerprint}-${game}`;
}

/**
 * Plans what a person is shown: for every pair, every question both models answered; under `once` in one
 * order drawn from `seed`, under `both` in that order and then, after every other question's first showing,
 * in the other. The sequence is drawn from `seed` too.
 *
 * @example
 * ```ts
 * const plan = await planArena([{ modelA: "SFT", modelB: "PT", answersA, answersB }], questions, {
 *   judge: "human:minji", rule: "once", seed: 7,
 * });
 * plan.items[0].shown; // [first answer, second answer]
 * ```
 */
export async function planArena(
  pairs: readonly AnsweredPair[],
  questions: readonly Question[],
  o: { judge: string; rule: OrderRule; seed: number },
): Promise<ArenaPlan> {
  const ranked: { item: ArenaItem; round: number; rank: number }[] = [];
  const planned: ArenaPlan["pairs"] = [];
  for (const [pairIndex, pair] of pairs.entries()) {
    const answered = questions.filter((q) => pair.answersA.has(q.id) && pair.answersB.has(q.id));
    const entry = {
      modelA: pair.modelA,
      modelB: pair.modelB,
      questions: [] as PlannedQuestion[],
      missing: questions.length - answered.length,
    };
    planned.push(entry);
    for (const question of answered) {
      const answerA = pair.answersA.get(question.id)!, answerB = pair.answersB.get(question.id)!;
      const fingerprint = await humanFingerprint(o.judge, o.rule, pair, question, answerA, answerB);
      entry.questions.push({ pair: pairIndex, id: question.id, fingerprint });
      const first: 1 | 2 = (await draw(o.seed, `order ${fingerprint}`)) % 2 === 0 ? 1 : 2;
      const games: (1 | 2)[] = o.rule === "once" ? [first] : [first, first === 1 ? 2 : 1];
      for (const [round, game] of games.entries()) {
        ranked.push({
          round,
          rank: await draw(o.seed, `rank ${round} ${fingerprint}`),
          item: {
            key: itemKey(fingerprint, game, o.rule),
            pair: pairIndex,
            question,
            modelA: pair.modelA,
            modelB: pair.modelB,
            fingerprint,
            game,
            shown: game === 1 ? [answerA, answerB] : [answerB, answerA],
          },
        });
      }
    }
  }
  ranked.sort((x, y) => x.round - y.round || x.rank - y.rank || (x.item.key < y.item.key ? -1 : 1));
  return { judge: o.judge, rule: o.rule, seed: o.seed, pairs: planned, items: ranked.map((r) => r.item) };
}

/**
 * A question's outcome from model A's side under `rule`: under `both` the two games combined as the LLM
 * judge's are (`pending` until both are voted); under `once` the one vote cast.
 *
 * @example
 * ```ts
 * humanOutcome([null, "B"], "once"); // "win": model A's answer was shown second and chosen
 * humanOutcome([null, "B"], "both"); // "pending"
 * humanOutcome(["A", "B"], "both"); // "win"
 * ```
 */
export function humanOutcome(verdicts: readonly [Verdict | null, Verdict | null], rule: OrderRule): Outcome {
  const [first, second] = verdicts;
  if (rule === "both") return first !== null && second !== null ? combineVerdicts(first, second) : "pending";
  if (first !== null) return first === "A" ? "win" : first === "B" ? "loss" : "tie";
  if (second !== null) return second === "A" ? "loss" : second === "B" ? "win" : "tie";
  return "pending";
}

/**
 * The results line after a person votes on `item` (or, with `vote` null, takes back its vote), given the
 * question's line so far.
 *
 * @example
 * ```ts
 * const line = humanRecord(undefined, item, plan, "A");
 * line.outcome; // "win" when item.game is 1
 * ```
 */
export function humanRecord(
  previous: JudgmentRecord | undefined,
  item: ArenaItem,
  plan: Pick<ArenaPlan, "judge" | "rule">,
  vote: HumanVote | null,
  now: Date = new Date(),
): JudgmentRecord {
  const verdicts: [Verdict | null, Verdict | null] = previous ? [...previous.verdicts] : [null, null];
  verdicts[item.game - 1] = vote === null ? null : VERDICT_OF[vote];
  return {
    id: item.question.id,
    model_a: item.modelA,
    model_b: item.modelB,
    judge: plan.judge,
    fingerprint: item.fingerprint,
    verdicts,
    outcome: humanOutcome(verdicts, plan.rule),
    judge_raw: ["", ""],
    attempts: [verdicts[0] === null ? 0 : 1, verdicts[1] === null ? 0 : 1],
    errors: [],
    judged_at: now.toISOString(),
    orders: plan.rule,
    game: item.game,
    action: vote === null ? "undo" : "vote",
  };
}

/**
 * Whether `line` holds the vote `item` asks for: under `once` any vote on the question, under `both` the vote
 * of the item's game.
 *
 * @example
 * ```ts
 * isVoted(log.find(key), item, "both"); // false until the item's own order is voted on
 * ```
 */
export function isVoted(line: JudgmentRecord | undefined, item: ArenaItem, rule: OrderRule): boolean {
  if (!line) return false;
  return rule === "once" ? line.verdicts.some((v) => v !== null) : line.verdicts[item.game - 1] !== null;
}
