/**
 * An offline pairwise judge made of rules, for the tiny preset of `deno task reproduce` only. It is not a
 * language model and does not judge content: it reads the judge prompt of eval/winrate/judge_prompt.ts, scores each
 * answer by how Korean and how little repetitive it is, and replies like an LLM judge — a short Korean
 * explanation ending in `[[A]]`, `[[B]]` or `[[C]]` — so the real win-rate machinery (both orders, verdict
 * parsing, resumable results) runs end to end without a GPU-sized judge or a network. It runs in process as
 * a {@link ChatClient} ({@link RuleJudgeClient}); `serve/rule_judge_server.ts` serves the same replies over
 * the OpenAI API.
 *
 * The rule, for one answer:
 * - empty (only whitespace): {@link EMPTY_SCORE};
 * - otherwise `hangulShare − repetitionPenalty`, in [−1, 1]:
 *   - `hangulShare`: Hangul syllables (U+AC00–U+D7A3) among all letters (`\p{L}`); 0 without letters;
 *   - `repetitionPenalty`: 0 when the distinct-bigram ratio (distinct character bigrams / all bigrams,
 *     whitespace removed) is at least {@link REPETITION_FLOOR}, rising linearly to 1 at ratio 0.
 * Verdict: a tie (`[[C]]`) when the scores differ by at most {@link TIE_BAND}, else the higher one wins.
 * The rule is symmetric, so both orders of a pair agree unless the pair is a tie.
 *
 * @module
 */
import {
  type ChatClient,
  type ChatReply,
  type ChatRequestBody,
  OpenAIRequestError,
} from "../../io/openai_client.ts";
import { judgeUserPrompt, type Verdict } from "./judge_prompt.ts";

/**
 * The model name the rule judge serves under; results and tables show it as the judge.
 * @example
 * ```ts
 * await runWinRate({ ...config, judge: { client: new RuleJudgeClient(), model: RULE_JUDGE_MODEL } });
 * ```
 */
export const RULE_JUDGE_MODEL = "kotransfer-rule-judge";

/**
 * Score of an empty answer: as low as the worst non-empty answer can get.
 * @example
 * ```ts
 * scoreAnswer("  ").score === EMPTY_SCORE; // true
 * ```
 */
export const EMPTY_SCORE = -1;
/**
 * Distinct-bigram ratio from which an answer is not penalised for repetition.
 * @example
 * ```ts
 * scoreAnswer("가나다라마바").repetitionPenalty; // 0: every bigram distinct, ratio 1 ≥ REPETITION_FLOOR
 * ```
 */
export const REPETITION_FLOOR = 0.5;
/**
 * Score differences up to this are a tie.
 * @example
 * ```ts
 * judgeAnswers("한국어", "한국어 x").verdict; // "C" when the scores differ by ≤ TIE_BAND
 * ```
 */
export const TIE_BAND = 0.05;

/** How the rule saw one answer. */
export interface AnswerScore {
  empty: boolean;
  /** Letters (`\p{L}`) in the answer. */
  letters: number;
  /** Hangul syllables in the answer. */
  hangul: number;
  /** hangul / letters; 0 without letters. */
  hangulShare: number;
  /** Distinct character bigrams / all bigrams (whitespace removed); 1 with fewer than two characters. */
  distinctBigramRatio: number;
  /** In [0, 1]. */
  repetitionPenalty: number;
  /** {@link EMPTY_SCORE} when empty, else hangulShare − repetitionPenalty. */
  score: number;
}

const HANGUL_SYLLABLE = /[\uAC00-\uD7A3]/u;
const LETTER = /\p{L}/u;

function distinctBigramRatio(text: string): number {
  const chars = Array.from(text.replace(/\s+/gu, ""));
  if (chars.length < 2) return 1;
  const bigrams = new Set<string>();
  for (let i = 0; i + 1 < chars.length; i++) bigrams.add(chars[i] + chars[i + 1]);
  return bigrams.size / (chars.length - 1);
}

/**
 * Scores one answer by the module's rule.
 *
 * @example
 * ```ts
 * scoreAnswer("서울은 한국의 수도입니다.").score; // 1
 * scoreAnswer("").score; // -1
 * scoreAnswer("Seoul is the capital.").score; // 0
 * ```
 */
export function scoreAnswer(answer: string): AnswerScore {
  if (answer.trim() === "") {
    return {
      empty: true,
      letters: 0,
      hangul: 0,
      hangulShare: 0,
      distinctBigramRatio: 1,
      repetitionPenalty: 0,
      score: EMPTY_SCORE,
    };
  }
  let letters = 0, hangul = 0;
  for (const ch of answer) {
    if (LETTER.test(ch)) letters++;
    if (HANGUL_SYLLABLE.test(ch)) hangul++;
  }
  const hangulShare = letters === 0 ? 0 : hangul / letters;
  const ratio = distinctBigramRatio(answer);
  const repetitionPenalty = Math.max(0, (REPETITION_FLOOR - ratio) / REPETITION_FLOOR);
  return {
    empty: false,
    letters,
    hangul,
    hangulShare,
    distinctBigramRatio: ratio,
    repetitionPenalty,
    score: hangulShare - repetitionPenalty,
  };
}

/** The verdict on two answers with their scores. */
export interface RuleVerdict {
  verdict: Verdict;
  a: AnswerScore;
  b: AnswerScore;
}

/**
 * Compares two answers: `C` within {@link TIE_BAND}, otherwise the higher score.
 *
 * @example
 * ```ts
 * judgeAnswers("김치는 발효 음식입니다.", "Kimchi is fermented.").verdict; // "A"
 * judgeAnswers("Kimchi is fermented.", "김치는 발효 음식입니다.").verdict; // "B"
 * ```
 */
export function judgeAnswers(answerA: string, answerB: string): RuleVerdict {
  const a = scoreAnswer(answerA), b = scoreAnswer(answerB);
  const diff = a.score - b.score;
  const verdict: Verdict = Math.abs(diff) <= TIE_BAND ? "C" : diff > 0 ? "A" : "B";
  return { verdict, a, b };
}

function describe(name: string, s: AnswerScore): string {
  if (s.empty) return `어시스턴트 ${name}: 빈 답변, 점수 ${s.score.toFixed(2)}`;
  return `어시스턴트 ${name}: 한글 비율 ${(s.hangulShare * 100).toFixed(0)}%, 반복 감점 ${
    s.repetitionPenalty.toFixed(2)
  }, 점수 ${s.score.toFixed(2)}`;
}

const OUTCOME_TEXT: Record<Verdict, string> = {
  A: "어시스턴트 A가 더 낫습니다.",
  B: "어시스턴트 B가 더 낫습니다.",
  C: "두 답변의 점수 차가 작아 비슷합니다.",
};

/**
 * The judge's reply: each answer's figures, a reminder of what the rule ignores, and the verdict marker.
 *
 * @example
 * ```ts
 * ruleJudgeReply("", "네, 맞습니다.");
 * // "어시스턴트 A: 빈 답변, 점수 -1.00. 어시스턴트 B: 한글 비율 100%, … 어시스턴트 B가 더 낫습니다. [[B]]"
 * ```
 */
export function ruleJudgeReply(answerA: string, answerB: string): string {
  const { verdict, a, b } = judgeAnswers(answerA, answerB);
  return `${describe("A", a)}. ${describe("B", b)}. 규칙 기반 심판이라 한국어 비율과 반복만 보고 내용의 ` +
    `정확성은 판단하지 않습니다. ${OUTCOME_TEXT[verdict]} [[${verdict}]]`;
}

/** The question and the two answers shown to the judge. */
export interface JudgeInput {
  question: string;
  answerA: string;
  answerB: string;
}

/** The judge user prompt's fixed text around its three slots, found by filling the template with markers. */
function templateParts(): { head: string; afterQuestion: string; afterA: string; tail: string } {
  const q = "\u0000Q\u0000", a = "\u0000A\u0000", b = "\u0000B\u0000";
  const filled = judgeUserPrompt(q, a, b);
  const iq = filled.indexOf(q), ia = filled.indexOf(a), ib = filled.indexOf(b);
  if (!(iq >= 0 && iq < ia && ia < ib)) {
    throw new Error(
      "eval/winrate/judge_prompt.ts: expected the question, answer A and answer B in that order",
    );
  }
  return {
    head: filled.slice(0, iq),
    afterQuestion: filled.slice(iq + q.length, ia),
    afterA: filled.slice(ia + a.length, ib),
    tail: filled.slice(ib + b.length),
  };
}

/**
 * Reads the question and both answers back out of a judge user prompt built by `judgeUserPrompt`. The
 * question ends at the first "answer A starts" marker and answer A at the first "answer A ends / answer B
 * starts" marker after it, so an answer that quotes those markers itself is split there. Returns null for
 * text that is not such a prompt.
 *
 * @example
 * ```ts
 * parseJudgePrompt(judgeUserPrompt("질문", "답 A", "답 B")); // { question: "질문", answerA: "답 A", answerB: "답 B" }
 * ```
 */
export function parseJudgePrompt(text: string): JudgeInput | null {
  const t = templateParts();
  if (!text.startsWith(t.head) || !text.endsWith(t.tail)) return null;
  const body = text.slice(t.head.length, text.length - t.tail.length);
  const q = body.indexOf(t.afterQuestion);
  if (q < 0) return null;
  const rest = body.slice(q + t.afterQuestion.length);
  const a = rest.indexOf(t.afterA);
  if (a < 0) return null;
  return { question: body.slice(0, q), answerA: rest.slice(0, a), answerB: rest.slice(a + t.afterA.length) };
}

/** What the rule judge says to a chat that is not a judge prompt: a refusal with no verdict marker. */
export const RULE_JUDGE_REFUSAL =
  "판정할 수 없습니다: 이 규칙 기반 심판은 eval/winrate/judge_prompt.ts의 판정 프롬프트(질문과 두 답변)만 읽습니다.";

/**
 * The rule judge's reply to a chat: the verdict on the judge prompt in the last user message, or
 * {@link RULE_JUDGE_REFUSAL}. With `maxTokens` (a token here is one UTF-16 code unit) a longer reply keeps
 * its end, where the verdict marker is, and finishes with `"length"`.
 *
 * @example
 * ```ts
 * ruleJudgeChat(judgeMessages("질문", "네.", "Yes.")).text.endsWith("[[A]]"); // true
 * ruleJudgeChat(judgeMessages("질문", "네.", "Yes."), 5); // { text: "[[A]]", finishReason: "length" }
 * ```
 */
export function ruleJudgeChat(
  messages: readonly { role: string; content: string }[],
  maxTokens?: number,
): { text: string; finishReason: "stop" | "length" } {
  const users = messages.filter((m) => m.role === "user");
  const input = users.length > 0 ? parseJudgePrompt(users[users.length - 1].content) : null;
  const full = input ? ruleJudgeReply(input.answerA, input.answerB) : RULE_JUDGE_REFUSAL;
  if (maxTokens === undefined || full.length <= maxTokens) return { text: full, finishReason: "stop" };
  return { text: full.slice(full.length - maxTokens), finishReason: "length" };
}

/**
 * The rule judge in process, as a {@link ChatClient}: pass it to `runWinRate` as the judge's client.
 *
 * @example
 * ```ts
 * const judge = new RuleJudgeClient();
 * const reply = await judge.chat({ model: RULE_JUDGE_MODEL, messages: judgeMessages("질문", "네.", "Yes.") });
 * reply.content.endsWith("[[A]]"); // true
 * judge.calls; // 1
 * ```
 */
export class RuleJudgeClient implements ChatClient {
  /** Chat requests answered. */
  calls = 0;

  /** Answers as the served rule judge would; a request for another model fails as a 404 would. */
  chat(body: ChatRequestBody): Promise<ChatReply> {
    if (body.model !== RULE_JUDGE_MODEL) {
      return Promise.reject(
        new OpenAIRequestError(
          `the rule judge is ${RULE_JUDGE_MODEL}, not ${JSON.stringify(body.model)}`,
          404,
        ),
      );
    }
    this.calls++;
    const { text, finishReason } = ruleJudgeChat(body.messages, body.max_tokens);
    const promptTokens = body.messages.reduce((n, m) => n + m.content.length, 0);
    return Promise.resolve({
      content: text,
      finishReason,
      usage: { prompt_tokens: promptTokens, completion_tokens: text.length },
    });
  }
}
