/**
 * The judge: each question's two games (model A's answer shown first, then model B's), asked again while a
 * reply has no verdict marker, and combined into one outcome from model A's side.
 *
 * @module
 */
import { type ChatClient, OpenAIRequestError } from "../../io/openai_client.ts";
import {
  JUDGE_PROMPT_VERSION,
  judgeMessages,
  parseVerdict,
  type Verdict,
  type VerdictRule,
} from "./judge_prompt.ts";
import type { Question } from "./inputs.ts";
import type { JudgmentRecord, Outcome } from "./judgments.ts";

/** Judge replies kept in the results: the head and tail of longer ones. */
export const RAW_CHARS = 2000;

/**
 * Combines the two games of a pair. `first` shows model A as assistant A; `second` shows model B as A.
 *
 * @example
 * ```ts
 * combineVerdicts("A", "B"); // "win": both games prefer model A
 * combineVerdicts("A", "A"); // "tie": the judge followed the position, not the answer
 * combineVerdicts("C", "B"); // "tie"
 * combineVerdicts(null, "B"); // "error"
 * ```
 */
export function combineVerdicts(first: Verdict | null, second: Verdict | null): Outcome {
  if (first === null || second === null) return "error";
  const winner1 = first === "A" ? "a" : first === "B" ? "b" : "tie";
  const winner2 = second === "A" ? "b" : second === "B" ? "a" : "tie";
  if (winner1 !== winner2 || winner1 === "tie") return "tie";
  return winner1 === "a" ? "win" : "loss";
}

/**
 * A judge endpoint with its settings, counting the calls it makes.
 *
 * @example
 * ```ts
 * const judge = new Judge(new OpenAIClient({ baseUrl: "https://api.openai.com/v1", apiKey }), "gpt-4o", 2048, 2);
 * const game = await judge.game("질문", "답변 A", "답변 B"); // { verdict: "A", raw: "...[[A]]", attempts: 1 }
 * ```
 */
export class Judge {
  readonly model: string;
  calls = 0;
  readonly #client: ChatClient;
  readonly #maxTokens: number;
  readonly #verdictRetries: number;
  /** How verdicts are read from replies. */
  readonly verdictRule: VerdictRule;

  /** `verdictRetries`: extra calls for a game whose reply has no verdict; `verdictRule`: how to read one. */
  constructor(
    client: ChatClient,
    model: string,
    maxTokens: number,
    verdictRetries: number,
    verdictRule: VerdictRule = "fastchat",
  ) {
    this.#client = client;
    this.model = model;
    this.#maxTokens = maxTokens;
    this.#verdictRetries = verdictRetries;
    this.verdictRule = verdictRule;
  }

  /** One game: asks until the reply holds a verdict or the retries are spent. */
  async game(question: string, answerA: string, answerB: string): Promise<Game> {
    let raw = "";
    for (let attempt = 1; attempt <= 1 + this.#verdictRetries; attempt++) {
      this.calls++;
      const reply = await this.#client.chat({
        model: this.model,
        messages: judgeMessages(question, answerA, answerB),
        temperature: 0,
        max_tokens: this.#maxTokens,
      });
      raw = reply.content;
      const verdict = parseVerdict(raw, this.verdictRule);
      if (verdict) return { verdict, raw, attempts: attempt };
    }
    return { verdict: null, raw, attempts: 1 + this.#verdictRetries };
  }
}

/** The result of one judged game. */
export interface Game {
  verdict: Verdict | null;
  raw: string;
  attempts: number;
}

export interface JudgeTask {
  question: Question;
  modelA: string;
  modelB: string;
  answerA: string;
  answerB: string;
  fingerprint: string;
}

/**
 * Both games of one question for one pair, as a results line. A judge request that fails (after the HTTP
 * client's retries) makes the record an error instead of ending the run; `requestFailed` says so.
 */
export async function judgeQuestion(
  judge: Judge,
  task: JudgeTask,
): Promise<{ record: JudgmentRecord; requestFailed: boolean }> {
  const orders: [string, string][] = [[task.answerA, task.answerB], [task.answerB, task.answerA]];
  const games: Game[] = [];
  const errors: string[] = [];
  let requestFailed = false;
  for (const [i, [first, second]] of orders.entries()) {
    if (requestFailed) {
      games.push({ verdict: null, raw: "", attempts: 0 });
      continue;
    }
    try {
      const game = await judge.game(task.question.text, first, second);
      games.push(game);
      if (!game.verdict) {
        errors.push(`game ${i + 1}: no [[A]], [[B]] or [[C]] in the reply after ${game.attempts} attempt(s)`);
      }
    } catch (e) {
      if (!(e instanceof OpenAIRequestError)) throw e;
      requestFailed = true;
      games.push({ verdict: null, raw: "", attempts: 1 });
      errors.push(`game ${i + 1}: the judge request failed: ${e.message}`);
    }
  }
  const record: JudgmentRecord = {
    id: task.question.id,
    model_a: task.modelA,
    model_b: task.modelB,
    judge: judge.model,
    fingerprint: task.fingerprint,
    verdicts: [games[0].verdict, games[1].verdict],
    outcome: combineVerdicts(games[0].verdict, games[1].verdict),
    judge_raw: [shorten(games[0].raw), shorten(games[1].raw)],
    attempts: [games[0].attempts, games[1].attempts],
    errors,
    judged_at: new Date().toISOString(),
  };
  return { record, requestFailed };
}

function shorten(text: string): string {
  if (text.length <= RAW_CHARS) return text;
  const half = Math.floor((RAW_CHARS - 5) / 2);
  return `${text.slice(0, half)} […] ${text.slice(-half)}`;
}

/**
 * What a judgment depends on, hashed: the prompt version, the judge, how its verdicts are read, the
 * question and both answers. A resumed run reuses a judgment only when all of them are the same.
 */
export async function fingerprint(
  judgeModel: string,
  q: Question,
  answerA: string,
  answerB: string,
  verdictRule: VerdictRule = "fastchat",
): Promise<string> {
  const data = new TextEncoder().encode(
    JSON.stringify([JUDGE_PROMPT_VERSION, judgeModel, verdictRule, q.text, answerA, answerB]),
  );
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}
