import { generateAnswers } from "../../eval/winrate/answers.ts";
import { WinRateInputError } from "../../eval/winrate/inputs.ts";
import { runWinRate } from "../../eval/winrate/run.ts";
import { RULE_JUDGE_MODEL, RuleJudgeClient } from "../../eval/winrate/rule_judge.ts";
import { startServer } from "../../serve/server.ts";
import { assertEquals, assertRejects, assertStringIncludes } from "../asserts.ts";
import { FakeEngine } from "../serve/fake_engine.ts";

Deno.test("winrate: a run killed while caching generated answers leaves a cut line the next run reads past", async () => {
  const dir = await Deno.makeTempDir();
  const answering = new FakeEngine({ modelId: "served", reply: () => "새로 만든 답변입니다." });
  const server = startServer(answering, {
    port: 0,
    maxConcurrent: 2,
    maxQueue: 8,
    maxPromptTokens: 3000,
    maxTokensLimit: 1024,
  });
  try {
    await Deno.writeTextFile(
      `${dir}/prompts.jsonl`,
      ["q1", "q2", "q3"].map((id) => JSON.stringify({ id, question: `질문 ${id}` })).join("\n") + "\n",
    );
    await Deno.writeTextFile(
      `${dir}/mine.jsonl`,
      ["q1", "q2", "q3"].map((id) => JSON.stringify({ id, answer: `${id}에 대한 한국어 답변` })).join("\n"),
    );
    // What a win-rate run killed mid-append leaves in its answer cache: q1 whole, q2 cut short.
    await Deno.mkdir(`${dir}/answers`);
    const cache = `${dir}/answers/served.jsonl`;
    const q1 = JSON.stringify({ id: "q1", answer: "캐시된 답변", model: "served" }) + "\n";
    await Deno.writeTextFile(cache, q1 + JSON.stringify({ id: "q2", answer: "잘린 답" }).slice(0, 20));

    const logged: string[] = [];
    const report = await runWinRate({
      promptsPath: `${dir}/prompts.jsonl`,
      pairs: [{
        a: { name: "mine", source: { kind: "file", path: `${dir}/mine.jsonl` } },
        b: { name: "served", source: { kind: "url", url: server.url } },
      }],
      judge: { client: new RuleJudgeClient(), model: RULE_JUDGE_MODEL },
      resultsPath: `${dir}/judgments.jsonl`,
      answersDir: `${dir}/answers`,
      log: (line) => logged.push(line),
    });
    assertEquals(report.answerCalls, 2, "only the cut answer (q2) and the missing one (q3) are generated");
    assertEquals(report.summary.pairs[0].questions, 3);
    assertStringIncludes(logged.join("\n"), `${cache}:2: `, "the dropped line is named with a warning");
    const lines = (await Deno.readTextFile(cache)).split("\n");
    assertEquals(lines[0] + "\n", q1, "the kept answer is untouched");
    assertEquals(lines.length, 4, "three whole lines, each ending in a newline");
    assertEquals(lines.slice(1, 3).map((l) => JSON.parse(l).id).sort(), ["q2", "q3"]);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("winrate answers: a cut last line is cut off the file; other bad lines are errors naming the line", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/a.jsonl`;
  const warnings: string[] = [];
  const keep = (questions: string[]) =>
    generateAnswers({
      questions: questions.map((id) => ({ id, text: id })),
      path,
      model: "m",
      warn: (w) => warnings.push(w),
      start: () => Promise.reject(new Error("nothing is missing")),
    });
  try {
    await Deno.writeTextFile(path, '{"id":"q0","answer":"네"}\n{"id":"q1","answer":"아니');
    assertEquals([...(await keep(["q0"])).answers], [["q0", "네"]]);
    assertEquals(await Deno.readTextFile(path), '{"id":"q0","answer":"네"}\n');
    assertEquals(warnings.length, 1);
    assertStringIncludes(warnings[0], `${path}:2: a last line cut short`);
    await Deno.writeTextFile(path, '{"id":"q0"\n{"id":"q1","answer":"네"}\n');
    await assertRejects(() => keep([]), WinRateInputError, `${path}:1: not valid JSON`);
    await Deno.writeTextFile(path, '{"id":"q0","text":"네"}\n');
    await assertRejects(
      () => keep([]),
      WinRateInputError,
      `${path}:1: expected a string "answer" or "output"`,
    );
    await Deno.remove(path);
    assertEquals((await keep([])).answers.size, 0, "a missing file holds no answers");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("winrate answers: generated once each, appended as they arrive; after a failure the running ones finish", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/a.jsonl`;
  const questions = ["q1", "q2", "q3", "q4"].map((id) => ({ id, text: `질문 ${id}` }));
  let closed = 0;
  try {
    await Deno.writeTextFile(path, JSON.stringify({ id: "q1", answer: "있던 답" }) + "\n");
    const failing = generateAnswers({
      questions,
      path,
      model: "m",
      parallel: 2,
      start: (todo) => {
        assertEquals(todo.map((q) => q.id), ["q2", "q3", "q4"]);
        return Promise.resolve({
          answer: async (q) => {
            if (q.id === "q2") throw new Error("the model failed");
            await new Promise((r) => setTimeout(r, 20));
            return { answer: `${q.id} 답`, promptTruncated: q.id === "q3" };
          },
          close: () => closed++,
        });
      },
    });
    await assertRejects(() => failing, Error, "the model failed");
    assertEquals(closed, 1, "closed once, after the running answer settled");
    const lines = (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(lines, [{ id: "q1", answer: "있던 답" }, {
      id: "q3",
      answer: "q3 답",
      model: "m",
      prompt_truncated: true,
    }]);
    const rerun = await generateAnswers({
      questions,
      path,
      model: "m",
      start: () => Promise.resolve({ answer: (q) => Promise.resolve({ answer: `${q.id} 새 답` }) }),
    });
    assertEquals([rerun.generated, rerun.kept], [2, 2]);
    assertEquals([...rerun.answers.keys()].sort(), ["q1", "q2", "q3", "q4"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
