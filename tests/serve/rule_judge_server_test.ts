import { judgeMessages, parseVerdict } from "../../eval/winrate/judge_prompt.ts";
import { RULE_JUDGE_MODEL, RuleJudgeClient } from "../../eval/winrate/rule_judge.ts";
import { RuleJudgeEngine, startRuleJudgeServer } from "../../serve/rule_judge_server.ts";
import { assertEquals } from "../asserts.ts";
import { judgeKoreanVsEnglish } from "../eval/rule_judge_scenario.ts";

Deno.test("rule judge server: as an engine it answers a rendered chat, and refuses other text without a verdict", async () => {
  const engine = new RuleJudgeEngine();
  const request = (prompt: string, maxTokens = 4096) => ({
    prompt,
    maxTokens,
    temperature: 0,
    topP: 1,
    topK: 0,
    repetitionPenalty: 1,
    stop: [],
  });
  const signal = new AbortController().signal;
  const prompt = engine.renderChat(judgeMessages("질문", "한국어 답입니다.", "An English answer."));
  let streamed = "";
  const r = await engine.generate(request(prompt), (t) => (streamed += t), signal);
  assertEquals([parseVerdict(r.text), streamed, r.finishReason], ["A", r.text, "stop"]);
  const short = await engine.generate(request(prompt, 5), () => {}, signal);
  assertEquals([short.text, short.finishReason], ["[[A]]", "length"]);
  const refused = await engine.generate(request("그냥 대화"), () => {}, signal);
  assertEquals(parseVerdict(refused.text), null);
  assertEquals(engine.calls, 3);
});

Deno.test("rule judge server: over HTTP, runWinRate gets the same judgments as in process", async () => {
  const judge = startRuleJudgeServer();
  try {
    const served = await judgeKoreanVsEnglish({ url: judge.url, model: judge.model });
    const pair = served.report.summary.pairs[0];
    assertEquals([pair.wins, pair.ties, pair.losses, pair.errors], [2, 1, 0, 0]);
    assertEquals([served.report.summary.judge, served.report.judgeCalls, judge.engine.calls], [
      RULE_JUDGE_MODEL,
      6,
      6,
    ]);
    const inProcess = await judgeKoreanVsEnglish({ client: new RuleJudgeClient(), model: RULE_JUDGE_MODEL });
    const compared = (r: typeof served.records[number]) => [r.id, r.fingerprint, r.verdicts, r.judge_raw];
    assertEquals(served.records.map(compared), inProcess.records.map(compared));
  } finally {
    await judge.close();
  }
});
