import { judgeMessages, judgeUserPrompt, parseVerdict } from "../../eval/winrate/judge_prompt.ts";
import {
  EMPTY_SCORE,
  judgeAnswers,
  parseJudgePrompt,
  RULE_JUDGE_MODEL,
  RULE_JUDGE_REFUSAL,
  RuleJudgeClient,
  ruleJudgeReply,
  scoreAnswer,
} from "../../eval/winrate/rule_judge.ts";
import { OpenAIRequestError } from "../../io/openai_client.ts";
import { assert, assertAlmostEquals, assertEquals, assertMatch, assertRejects } from "../asserts.ts";
import { judgeKoreanVsEnglish } from "./rule_judge_scenario.ts";

Deno.test("rule judge: the score is the Hangul share among letters", () => {
  assertEquals(scoreAnswer("서울은 한국의 수도입니다.").score, 1);
  assertEquals(scoreAnswer("Seoul is the capital.").score, 0);
  const mixed = scoreAnswer("서울 is 수도"); // 4 Hangul of 6 letters
  assertEquals([mixed.letters, mixed.hangul], [6, 4]);
  assertAlmostEquals(mixed.score, 4 / 6, 1e-12);
  assertEquals(scoreAnswer("12345 !!").score, 0, "no letters: no Hangul share");
});

Deno.test("rule judge: empty answers score lowest and heavy repetition is penalised", () => {
  assertEquals(scoreAnswer("").score, EMPTY_SCORE);
  assertEquals(scoreAnswer(" \n\t").empty, true);
  // 가나 and 나가 are the only bigrams among 9: ratio 2/9, penalty (0.5 − 2/9) / 0.5.
  const looped = scoreAnswer("가나가나가나가나가나");
  assertAlmostEquals(looped.distinctBigramRatio, 2 / 9, 1e-12);
  assertAlmostEquals(looped.repetitionPenalty, (0.5 - 2 / 9) / 0.5, 1e-12);
  assertAlmostEquals(looped.score, 1 - (0.5 - 2 / 9) / 0.5, 1e-12);
  assertEquals(scoreAnswer("하늘이 파랗고 바다가 깊다").repetitionPenalty, 0, "varied text: no penalty");
  assertEquals(scoreAnswer("가 가 가 가").distinctBigramRatio, 1 / 3, "whitespace does not count");
});

Deno.test("rule judge: verdicts follow the scores in both orders, with a tie band", () => {
  const korean = "김치는 배추를 소금에 절여 발효시킨 음식입니다.";
  const english = "Kimchi is a fermented dish.";
  assertEquals(judgeAnswers(korean, english).verdict, "A");
  assertEquals(judgeAnswers(english, korean).verdict, "B");
  assertEquals(judgeAnswers(korean, "된장찌개는 된장으로 끓입니다.").verdict, "C", "both fully Korean");
  assertEquals(judgeAnswers("", english).verdict, "B", "empty loses to anything with text");
  assertEquals(judgeAnswers("안녕안녕안녕안녕안녕안녕", "안녕하세요, 반갑습니다.").verdict, "B");
  // 20 Hangul of 21 letters (0.952) against 1.0: inside the 0.05 band.
  assertEquals(judgeAnswers("가나다라마바사아자차카타파하거너더러머버x", korean).verdict, "C");
});

Deno.test("rule judge: the reply explains and ends with the verdict marker the win-rate parser reads", () => {
  const reply = ruleJudgeReply("", "네, 맞습니다.");
  assertMatch(reply, /어시스턴트 A: 빈 답변/);
  assertMatch(reply, /내용의 정확성은 판단하지 않습니다/);
  assert(reply.endsWith("[[B]]"), reply);
  assertEquals(parseVerdict(reply), "B");
});

Deno.test("rule judge: the judge prompt's question and answers are read back exactly", () => {
  const question = "다음 글을 요약하세요.\n\n[사용자 질문] 같은 줄도 있습니다.";
  const a = "첫 줄\n\n둘째 줄 [[A]]";
  const b = "[어시스턴트 B의 답변 시작]처럼 보이는 글\n끝";
  assertEquals(parseJudgePrompt(judgeUserPrompt(question, a, b)), { question, answerA: a, answerB: b });
  assertEquals(parseJudgePrompt(judgeUserPrompt("", "", "")), { question: "", answerA: "", answerB: "" });
  assertEquals(parseJudgePrompt("아무 글"), null);
});

Deno.test("rule judge: in process it answers a judge chat, keeps the verdict under max_tokens, refuses other text", async () => {
  const judge = new RuleJudgeClient();
  const messages = judgeMessages("질문", "한국어 답입니다.", "An English answer.");
  const full = await judge.chat({ model: RULE_JUDGE_MODEL, messages });
  assertEquals([parseVerdict(full.content), full.finishReason], ["A", "stop"]);
  const short = await judge.chat({ model: RULE_JUDGE_MODEL, messages, max_tokens: 5 });
  assertEquals([short.content, short.finishReason], ["[[A]]", "length"]);
  const refused = await judge.chat({
    model: RULE_JUDGE_MODEL,
    messages: [{ role: "user", content: "그냥 대화" }],
  });
  assertEquals([refused.content, parseVerdict(refused.content)], [RULE_JUDGE_REFUSAL, null]);
  await assertRejects(
    () => judge.chat({ model: "gpt-4o", messages }),
    OpenAIRequestError,
    `the rule judge is ${RULE_JUDGE_MODEL}`,
  );
  assertEquals(judge.calls, 3);
});

Deno.test("rule judge: in process, runWinRate judges both orders and counts wins", async () => {
  const judge = new RuleJudgeClient();
  const { report, records } = await judgeKoreanVsEnglish({ client: judge, model: RULE_JUDGE_MODEL });
  const pair = report.summary.pairs[0];
  assertEquals([pair.wins, pair.ties, pair.losses, pair.errors], [2, 1, 0, 0]);
  assertEquals([report.summary.judge, report.judgeCalls, judge.calls], [RULE_JUDGE_MODEL, 6, 6]);
  assertEquals(records.map((r) => r.verdicts), [["A", "B"], ["A", "B"], ["C", "C"]]);
});
