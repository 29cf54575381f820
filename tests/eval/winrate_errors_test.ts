/**
 * Win-rate judgments without a verdict are not final: a rerun retries them, the summary counts them, the
 * task exits non-zero while there are any, and a judge that fails on one pair does not stop the others.
 */
import { JUDGE_FAILURES_BEFORE_STOP, runWinRate, type WinRateConfig } from "../../eval/winrate/run.ts";
import { startServer } from "../../serve/server.ts";
import { assert, assertEquals, assertStringIncludes } from "../asserts.ts";
import { FakeEngine } from "../serve/fake_engine.ts";

const LIMITS = { port: 0, maxConcurrent: 2, maxQueue: 8, maxPromptTokens: 3000, maxTokensLimit: 512 };

/** Questions q1…qn and two answer files in `dir`; a config comparing x with y through `judgeUrl`. */
async function setup(dir: string, n: number, judgeUrl: string): Promise<WinRateConfig> {
  const ids = Array.from({ length: n }, (_, i) => `q${i + 1}`);
  const lines = (f: (id: string) => object) => ids.map((id) => JSON.stringify(f(id))).join("\n") + "\n";
  await Deno.writeTextFile(`${dir}/prompts.jsonl`, lines((id) => ({ id, question: `질문 ${id}` })));
  await Deno.writeTextFile(`${dir}/x.jsonl`, lines((id) => ({ id, answer: `x의 답 ${id}` })));
  await Deno.writeTextFile(`${dir}/y.jsonl`, lines((id) => ({ id, answer: `y의 답 ${id}` })));
  return {
    promptsPath: `${dir}/prompts.jsonl`,
    pairs: [{
      a: { name: "x", source: { kind: "file", path: `${dir}/x.jsonl` } },
      b: { name: "y", source: { kind: "file", path: `${dir}/y.jsonl` } },
    }],
    judge: { url: judgeUrl, model: "judge", maxTokens: 256 },
    verdictRetries: 0,
    resultsPath: `${dir}/out/judgments.jsonl`,
    parallel: 1,
    http: { retries: 0, retryBaseMs: 1 },
  };
}

Deno.test("winrate: judgments without a verdict are counted, and retried by the next run", async () => {
  const dir = await Deno.makeTempDir();
  let verdicts = false;
  const judge = new FakeEngine({
    modelId: "judge",
    reply: () => verdicts ? "좋습니다. [[A]]" : "모르겠습니다.",
  });
  const server = startServer(judge, LIMITS);
  try {
    const config = await setup(dir, 3, `${server.url}/v1`);
    const first = await runWinRate(config);
    assertEquals([first.noVerdict, first.summary.no_verdict, first.summary.pairs[0].errors], [3, 3, 3]);
    assertStringIncludes(first.table, "3 judgment(s) have no verdict");
    // The judge is fixed: the next run asks again about every pair that has no verdict, and only those.
    verdicts = true;
    const second = await runWinRate(config);
    assertEquals(second.judgeCalls, 6, "each errored pair is judged again in both orders");
    assertEquals([second.noVerdict, second.summary.pairs[0].ties], [0, 3]);
    const third = await runWinRate(config);
    assertEquals(third.judgeCalls, 0, "pairs with a verdict are not asked again");
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A judge that answers HTTP 400 for prompts holding `refuse`, and 500 for everything when `down`. */
function flakyJudge(state: { down: boolean; refuse: string }) {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const body = await req.json();
    const prompt = JSON.stringify(body.messages);
    if (state.down) return Response.json({ error: { message: "overloaded" } }, { status: 500 });
    if (prompt.includes(state.refuse)) {
      return Response.json({ error: { message: "context_length_exceeded" } }, { status: 400 });
    }
    return Response.json({ choices: [{ message: { content: "판정: [[B]]" }, finish_reason: "stop" }] });
  });
}

Deno.test("winrate: a judge request that fails errs for its pair only; a judge that keeps failing is left", async () => {
  const dir = await Deno.makeTempDir();
  const state = { down: false, refuse: "질문 q2" };
  const judge = flakyJudge(state);
  try {
    const config = await setup(dir, 4, `http://127.0.0.1:${judge.addr.port}/v1`);
    const lines: string[] = [];
    const report = await runWinRate({ ...config, log: (l) => lines.push(l) });
    assertEquals(report.summary.pairs[0].errors, 1);
    assertEquals(report.summary.pairs[0].judged, 3);
    assert(lines.some((l) => l.includes("q2") && l.includes("the judge request failed")), lines.join("\n"));
    // A judge that is down: the run stops asking after a few failures in a row and counts the rest.
    state.down = true;
    await Deno.remove(`${dir}/out`, { recursive: true });
    const down = await runWinRate({ ...config, pairs: config.pairs, log: () => {} });
    assertEquals(down.judgeCalls, JUDGE_FAILURES_BEFORE_STOP);
    assertEquals(down.noVerdict, 4);
  } finally {
    await judge.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("winrate task: the exit status is 1 while some pair has no verdict", async () => {
  const dir = await Deno.makeTempDir();
  const judge = new FakeEngine({ modelId: "judge", reply: () => "모르겠습니다." });
  const server = startServer(judge, LIMITS);
  try {
    await setup(dir, 2, `${server.url}/v1`);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net=127.0.0.1",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        new URL("../../tasks/winrate.ts", import.meta.url).pathname,
        "--prompts",
        `${dir}/prompts.jsonl`,
        "--pair",
        `x=${dir}/x.jsonl,y=${dir}/y.jsonl`,
        "--judge-url",
        `${server.url}/v1`,
        "--judge-model",
        "judge",
        "--verdict-retries",
        "0",
        "--judge-max-tokens",
        "256",
        "--out",
        `${dir}/out/judgments.jsonl`,
      ],
      env: { OPENAI_API_KEY: "" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 1, stderr);
    assertStringIncludes(stderr, "2 judgment(s) have no verdict");
    const summary = JSON.parse(await Deno.readTextFile(`${dir}/out/judgments.summary.json`));
    assertEquals(summary.no_verdict, 2);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
