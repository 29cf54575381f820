import { readAnswers } from "../../eval/winrate/answers.ts";
import { parsePairSpec, readQuestions, WinRateInputError } from "../../eval/winrate/inputs.ts";
import { combineVerdicts } from "../../eval/winrate/judge.ts";
import { JUDGE_SYSTEM_PROMPT, judgeUserPrompt, parseVerdict } from "../../eval/winrate/judge_prompt.ts";
import { JudgmentLog, type JudgmentRecord } from "../../eval/winrate/judgments.ts";
import { runWinRate, type WinRateConfig } from "../../eval/winrate/run.ts";
import { summarizePair } from "../../eval/winrate/summary.ts";
import { winRateConfigFromArgs } from "../../eval/winrate/cli.ts";
import { startServer } from "../../serve/server.ts";
import { KO_PROMPTS } from "../../pipeline/settings.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes, assertThrows } from "../asserts.ts";
import { FakeEngine } from "../serve/fake_engine.ts";

Deno.test("winrate: verdicts are read as FastChat reads them ([[A]], then [[B]], then [[C]]); the two orders combine as FastChat does", () => {
  assertEquals(parseVerdict('형식은 "[[C]]"입니다. 그래서 [[B]]'), "B");
  assertEquals(parseVerdict("[[A]] 라고 하려다 [[ A ]] 아님"), "A");
  assertEquals(parseVerdict("판정 불가 [A] [[D]]"), null);
  // A reply quoting the format: FastChat takes [[A]] wherever it is; the `last` rule takes the last marker.
  const quoted = '"[[A]]" 또는 "[[B]]"로 답해야 합니다. 최종 판정: [[B]]';
  assertEquals([parseVerdict(quoted), parseVerdict(quoted, "fastchat"), parseVerdict(quoted, "last")], [
    "A",
    "A",
    "B",
  ]);
  assertEquals(parseVerdict("[[C]] 그리고 [[B]]"), "B");
  const table: [ReturnType<typeof parseVerdict>, ReturnType<typeof parseVerdict>, string][] = [
    ["A", "B", "win"],
    ["B", "A", "loss"],
    ["A", "A", "tie"],
    ["B", "B", "tie"],
    ["C", "B", "tie"],
    ["A", "C", "tie"],
    ["C", "C", "tie"],
    [null, "B", "error"],
    ["A", null, "error"],
  ];
  for (const [first, second, outcome] of table) {
    assertEquals(combineVerdicts(first, second), outcome, `${first} then ${second}`);
  }
  const prompt = judgeUserPrompt("질문", "답 하나", "답 둘");
  assertEquals(
    prompt,
    "[사용자 질문]\n질문\n\n[어시스턴트 A의 답변 시작]\n답 하나\n[어시스턴트 A의 답변 끝]\n\n" +
      "[어시스턴트 B의 답변 시작]\n답 둘\n[어시스턴트 B의 답변 끝]",
  );
  for (const marker of ["[[A]]", "[[B]]", "[[C]]"]) assertStringIncludes(JUDGE_SYSTEM_PROMPT, marker);
});

Deno.test("winrate: question text, answer formats and input errors naming file and line", async () => {
  const real = await readQuestions(KO_PROMPTS);
  assertEquals(real.length, 252);
  const first = (await Deno.readTextFile(KO_PROMPTS))
    .split("\n")[0];
  const row = JSON.parse(first);
  assertEquals(real[0], { id: row.id, text: `${row.instruction}\n\n${row.instances[0].input}` });

  const dir = await Deno.makeTempDir();
  try {
    const q = `${dir}/q.jsonl`;
    await Deno.writeTextFile(
      q,
      [
        { id: "a", instruction: "시를 써 주세요.", instances: [{ input: "  ", output: "" }] },
        { question_id: 7, turns: ["첫 질문", "둘째 질문"] },
        { id: "c", question: "그냥 질문" },
      ].map((r) => JSON.stringify(r)).join("\n") + "\n\n",
    );
    assertEquals(await readQuestions(q), [
      { id: "a", text: "시를 써 주세요." },
      { id: "7", text: "첫 질문" },
      { id: "c", text: "그냥 질문" },
    ]);
    assertEquals((await readQuestions(q, 1)).length, 1);

    const ans = `${dir}/a.jsonl`;
    await Deno.writeTextFile(
      ans,
      '{"id":"a","answer":"하나"}\n{"id":"b","output":"둘"}\n{"question_id":3,"choices":[{"turns":["셋"]}]}\n',
    );
    assertEquals([...(await readAnswers(ans))], [["a", "하나"], ["b", "둘"], ["3", "셋"]]);

    const bad: [string, string][] = [
      ['{"id":"a","answer":"x"}\n{"id":"a","answer":"y"}\n', "bad.jsonl:2: duplicate id"],
      ['{"id":"a","answer":"x"}\n{"id":"b","answer":\n', "bad.jsonl:2: not valid JSON"],
      ['{"id":"a","text":"x"}\n', 'bad.jsonl:1: expected a string "answer" or "output"'],
      ['{"answer":"x"}\n', 'bad.jsonl:1: expected a string or number "id"'],
    ];
    for (const [text, message] of bad) {
      await Deno.writeTextFile(`${dir}/bad.jsonl`, text);
      await assertRejects(() => readAnswers(`${dir}/bad.jsonl`), WinRateInputError, message);
    }
    await Deno.writeTextFile(`${dir}/bad.jsonl`, '{"id":"x","instances":[]}\n');
    await assertRejects(
      () => readQuestions(`${dir}/bad.jsonl`),
      WinRateInputError,
      'bad.jsonl:1: expected a string "instruction"',
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assertEquals(parsePairSpec("x=a.jsonl,y=http://127.0.0.1:9/v1"), {
    a: { name: "x", source: { kind: "file", path: "a.jsonl" } },
    b: { name: "y", source: { kind: "url", url: "http://127.0.0.1:9/v1" } },
  });
  assertThrows(() => parsePairSpec("x=a.jsonl"), WinRateInputError, "nameA=answersA,nameB=answersB");
  assertThrows(() => parsePairSpec("x=a.jsonl,=b.jsonl"), WinRateInputError, "is not name=source");
  assertThrows(() => parsePairSpec("x=a.jsonl,x=b.jsonl"), WinRateInputError, "names are equal");
});

Deno.test("winrate: a results line cut short by a crash is ignored and the next append starts a new line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/r.jsonl`;
    const rec = (id: string): JudgmentRecord => ({
      id,
      model_a: "x",
      model_b: "y",
      judge: "j",
      fingerprint: "f",
      verdicts: ["A", "B"],
      outcome: "win",
      judge_raw: ["", ""],
      attempts: [1, 1],
      errors: [],
      judged_at: "",
    });
    await Deno.writeTextFile(path, JSON.stringify(rec("q1")) + "\n" + JSON.stringify(rec("q2")).slice(0, 30));
    const log = await JudgmentLog.open(path);
    assert(log.find(rec("q1")), "complete lines are kept");
    assertEquals(log.find(rec("q2")), undefined, "the cut line is judged again");
    await log.append(rec("q2"));
    const reopened = await JudgmentLog.open(path);
    assert(reopened.find(rec("q2")), "the appended line reads back");
    await Deno.writeTextFile(path, "{oops\n" + JSON.stringify(rec("q1")) + "\n");
    await assertRejects(() => JudgmentLog.open(path), WinRateInputError, "r.jsonl:1: not valid JSON");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const s = summarizePair("x", "y", [], 3);
  assertEquals([s.judged, s.win_rate, s.missing], [0, null, 3]);
});

/** Reads the two answers from a rendered judge prompt and decides the way a judge with a few quirks would. */
function fakeJudge(prompt: string): string {
  const answer = (who: string) =>
    new RegExp(`\\[어시스턴트 ${who}의 답변 시작\\]\\n([\\s\\S]*?)\\n\\[어시스턴트 ${who}의 답변 끝\\]`).exec(
      prompt,
    )
      ?.[1] ?? "";
  const a = answer("A"), b = answer("B");
  if (a.includes("엉망") || b.includes("엉망")) return "두 답변을 비교할 수 없습니다.";
  // A judge with position bias: it always prefers whatever it sees first, so the two orders disagree.
  if (a.includes("편향") || b.includes("편향")) {
    return "형식 예시는 [[C]]입니다. 첫 답변이 좋아 보입니다. [[A]]";
  }
  const score = (t: string) => Number(/점수=(\d)/.exec(t)?.[1]);
  const v = score(a) > score(b) ? "A" : score(a) < score(b) ? "B" : "C";
  return `형식 예시는 [[C]]입니다. 두 답변을 비교했습니다. 최종 판정: [[${v}]]`;
}

Deno.test("winrate: end to end with a judge and an answering model served over loopback, then resumed", async () => {
  const dir = await Deno.makeTempDir();
  const judgeEngine = new FakeEngine({ modelId: "fake-judge", reply: fakeJudge });
  const answerEngine = new FakeEngine({ modelId: "fake-y", reply: () => "점수=2 답변입니다" });
  const limits = { port: 0, maxConcurrent: 2, maxQueue: 8, maxPromptTokens: 3000, maxTokensLimit: 1024 };
  const judgeServer = startServer(judgeEngine, { ...limits, apiKey: "judge-key" });
  const answerServer = startServer(answerEngine, limits);
  try {
    const questions = [1, 2, 3, 4, 5, 6].map((i) => ({
      id: `q${i}`,
      instruction: `질문 ${i}`,
      instances: [{ input: i === 1 ? "입력 예시" : "" }],
      ...(i === 2 ? { category: "math" } : i === 3 ? { category: "stem" } : {}),
    }));
    await Deno.writeTextFile(`${dir}/prompts.jsonl`, questions.map((q) => JSON.stringify(q)).join("\n"));
    const xAnswers = ["점수=3", "점수=1", "점수=2", "점수=2 편향", "점수=2 엉망"]; // none for q6
    await Deno.writeTextFile(
      `${dir}/x.jsonl`,
      xAnswers.map((a, i) =>
        JSON.stringify(i % 2 ? { id: `q${i + 1}`, output: a } : { id: `q${i + 1}`, answer: a })
      )
        .join("\n") + "\n",
    );
    const writeZ = (q2: string) =>
      Deno.writeTextFile(
        `${dir}/z.jsonl`,
        questions.map((q) => JSON.stringify({ id: q.id, answer: q.id === "q2" ? q2 : "점수=1" })).join("\n"),
      );
    await writeZ("점수=1");
    const config: WinRateConfig = {
      promptsPath: `${dir}/prompts.jsonl`,
      pairs: [
        {
          a: { name: "x", source: { kind: "file", path: `${dir}/x.jsonl` } },
          b: { name: "y", source: { kind: "url", url: answerServer.url } },
        },
        parsePairSpec(`x=${dir}/x.jsonl,z=${dir}/z.jsonl`),
      ],
      judge: { url: `${judgeServer.url}/v1`, model: "fake-judge", apiKey: "judge-key", maxTokens: 256 },
      verdictRetries: 2,
      resultsPath: `${dir}/out/judgments.jsonl`,
      parallel: 3,
      http: { retryBaseMs: 5 },
    };

    const first = await runWinRate(config);
    const rows = first.table.split("\n");
    assertEquals(rows[2], "| x | y | 25.0% (1) | 50.0% (2) | 25.0% (1) | 50.0% | 4 | 1 | 1 |");
    assertEquals(rows[3], "| x | z | 50.0% (2) | 50.0% (2) | 0.0% (0) | 75.0% | 4 | 1 | 1 |");
    assertEquals(first.summary.pairs[0], {
      model_a: "x",
      model_b: "y",
      questions: 5,
      missing: 1,
      wins: 1,
      ties: 2,
      losses: 1,
      errors: 1,
      judged: 4,
      win: 0.25,
      tie: 0.5,
      loss: 0.25,
      win_rate: 0.5,
    });
    // 4 judged questions × 2 orders, plus the unparseable one: 2 orders × (1 + 2 retries); for each pair.
    assertEquals([first.judgeCalls, judgeEngine.requests.length], [28, 28]);
    assertEquals([first.answerCalls, answerEngine.requests.length], [6, 6]);
    assertStringIncludes(answerEngine.requests[0].prompt, "질문 1\n\n입력 예시");
    // Answers as FastChat generates them: the category's temperature (0.7 otherwise), 1,024 tokens, seed 0.
    const asked = (n: number) => answerEngine.requests.find((r) => r.prompt.includes(`질문 ${n}`))!;
    assertEquals([asked(1).temperature, asked(2).temperature, asked(3).temperature], [0.7, 0, 0.1]);
    assert(answerEngine.requests.every((r) => r.maxTokens === 1024 && r.seed === 0), "1,024 tokens, seed 0");
    assert(
      judgeEngine.requests.every((r) => r.temperature === 0 && r.maxTokens === 256),
      "judge at temperature 0",
    );

    const lines = (await Deno.readTextFile(config.resultsPath)).trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(lines.length, 10);
    const line = (b: string, id: string) => lines.find((l) => l.model_b === b && l.id === id);
    assertEquals([line("y", "q1").verdicts, line("y", "q1").outcome], [["A", "B"], "win"]);
    assertEquals([line("y", "q2").verdicts, line("y", "q2").outcome], [["B", "A"], "loss"]);
    assertEquals([line("y", "q3").verdicts, line("y", "q3").outcome], [["C", "C"], "tie"]);
    assertEquals([line("y", "q4").verdicts, line("y", "q4").outcome], [["A", "A"], "tie"]);
    const broken = line("z", "q5");
    assertEquals([broken.verdicts, broken.outcome, broken.attempts], [[null, null], "error", [3, 3]]);
    assertEquals(broken.errors.length, 2);
    assertStringIncludes(broken.judge_raw[0], "비교할 수 없습니다");
    assertEquals(JSON.parse(await Deno.readTextFile(`${dir}/out/judgments.summary.json`)), first.summary);
    assertEquals(await Deno.readTextFile(`${dir}/out/judgments.md`), first.table + "\n");
    assertEquals((await Deno.readTextFile(`${dir}/out/answers/y.jsonl`)).trim().split("\n").length, 6);

    // A rerun judges nothing with a verdict again; the two errored pairs (q5) are retried: 2 orders × 3 calls.
    assertEquals([first.noVerdict, first.summary.no_verdict], [2, 2]);
    const second = await runWinRate(config);
    assertEquals([second.judgeCalls, second.answerCalls], [12, 0]);
    assertEquals([judgeEngine.requests.length, answerEngine.requests.length], [40, 6]);
    assertEquals(second.table, first.table);

    await writeZ("점수=3");
    const third = await runWinRate(config);
    assertEquals(
      third.judgeCalls,
      2 + 12,
      "the pair whose answer changed is judged again, and the errored ones",
    );
    assertEquals(third.summary.pairs[1].losses, 1);
  } finally {
    await judgeServer.close();
    await answerServer.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("winrate task: flags become a run configuration; keys come from the named variables", () => {
  const env: Record<string, string> = { OPENAI_API_KEY: "sk-default", MY_JUDGE: "sk-judge", ANS: "sk-ans" };
  const base = ["--prompts", "p.jsonl", "--judge-url", "http://127.0.0.1:1/v1", "--judge-model", "j"];
  const config = winRateConfigFromArgs(
    [
      ...base,
      "--pair",
      "x=x.jsonl,y=y.jsonl",
      "--model-a-url",
      "http://127.0.0.1:2",
      "--model-b-url",
      "http://127.0.0.1:3",
      "--model-b",
      "served-b",
      "--limit",
      "10",
      "--parallel",
      "2",
      "--answer-key-env",
      "ANS",
    ],
    (name) => env[name],
  );
  assert(config !== "help");
  assertEquals(config.pairs.length, 2);
  assertEquals(config.pairs[1], {
    a: { name: undefined, source: { kind: "url", url: "http://127.0.0.1:2" } },
    b: { name: "served-b", source: { kind: "url", url: "http://127.0.0.1:3" } },
  });
  assertEquals([config.judge.apiKey, config.answers?.apiKey, config.limit, config.parallel], [
    "sk-default",
    "sk-ans",
    10,
    2,
  ]);
  assertEquals(config.resultsPath, "runs/winrate/judgments.jsonl");
  const named = winRateConfigFromArgs(
    [...base, "--pair", "x=a,y=b", "--judge-key-env", "MY_JUDGE"],
    (n) => env[n],
  );
  assertEquals(named !== "help" && named.judge.apiKey, "sk-judge");
  const keyless = winRateConfigFromArgs([...base, "--pair", "x=a,y=b"], () => undefined);
  assertEquals(keyless !== "help" && keyless.judge.apiKey, undefined, "a local judge needs no key");
  assertEquals(winRateConfigFromArgs(["--help"], () => undefined), "help");
  assertThrows(
    () => winRateConfigFromArgs([...base, "--pair", "x=a,y=b", "--judge-key-env", "NOPE"], () => undefined),
    Error,
    "NOPE is unset",
  );
  assertThrows(() => winRateConfigFromArgs(base, () => undefined), Error, "at least one --pair");
  assertThrows(
    () => winRateConfigFromArgs([...base, "--pair", "x=a,y=b", "--limit", "0"], () => undefined),
    Error,
    "--limit: expected an integer ≥ 1, got 0",
  );
  assertThrows(
    () => winRateConfigFromArgs([...base, "--model-a-url", "http://h"], () => undefined),
    Error,
    "go together",
  );
  assertThrows(
    () =>
      winRateConfigFromArgs(
        ["--pair", "x=a,y=b", "--judge-url", "http://u", "--judge-model", "j"],
        () => undefined,
      ),
    Error,
    "--prompts is required",
  );
});
