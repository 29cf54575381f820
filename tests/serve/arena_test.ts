/**
 * The arena (`deno task arena`, serve/arena.ts, serve/ui/arena.*): its API refuses bad requests by name, and
 * in headless Chromium (skipped and counted without it; under CI=true it fails) a person's clicks and keys
 * land in the results JSONL, survive a reload and a restart of the command, and make Table 1, printed with
 * the agreement with the LLM (here: rule) judge of the same file; the page loads nothing from elsewhere.
 */
import { ArenaSession } from "../../eval/winrate/arena_session.ts";
import { planArena } from "../../eval/winrate/human.ts";
import { readQuestions } from "../../eval/winrate/inputs.ts";
import { JudgmentLog } from "../../eval/winrate/judgments.ts";
import { RULE_JUDGE_MODEL, RuleJudgeClient } from "../../eval/winrate/rule_judge.ts";
import { runWinRate } from "../../eval/winrate/run.ts";
import { startArenaServer } from "../../serve/arena.ts";
import { PAGE_CSP } from "../../serve/pages.ts";
import { assert, assertEquals, assertStringIncludes } from "../asserts.ts";
import { foreignRequests, type Page, withBrowser } from "../browser.ts";
import { chromiumCapability, taskArgs, testNeeding } from "../helpers.ts";

const CHROMIUM = await chromiumCapability();
const QUESTIONS = [
  "서울을 소개해 주세요.",
  "김치 만드는 법을 알려 주세요.",
  "한글은 누가 만들었나요?",
  "봄 시를 써 주세요.",
];

/** Prompts and two answer files; each answer names its model, so the test knows which side is which. */
async function writeInputs(dir: string): Promise<{ prompts: string; sft: string; pt: string }> {
  const paths = { prompts: `${dir}/prompts.jsonl`, sft: `${dir}/sft.jsonl`, pt: `${dir}/pt.jsonl` };
  const lines = (f: (q: string, i: number) => object) =>
    QUESTIONS.map((q, i) => JSON.stringify(f(q, i))).join("\n");
  await Deno.writeTextFile(paths.prompts, lines((q, i) => ({ id: `q${i}`, instruction: q })) + "\n");
  // Answers of different lengths and quality, so the rule judge decides some each way.
  await Deno.writeTextFile(
    paths.sft,
    lines((q, i) => ({ id: `q${i}`, answer: `SFT 답변: ${q} ${"자세한 설명입니다. ".repeat(i + 1)}` })) +
      "\n",
  );
  await Deno.writeTextFile(
    paths.pt,
    lines((q, i) => ({
      id: `q${i}`,
      answer: i % 2 === 0 ? `PT 답변 네.` : `PT 답변: ${q} 설명. 설명. 설명.`,
    })) + "\n",
  );
  return paths;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "arena-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("arena API: bad payloads, unknown items, double votes and stale undos are refused by name", async () => {
  await withDir(async (dir) => {
    const inputs = await writeInputs(dir);
    const questions = await readQuestions(inputs.prompts);
    const answers = (model: string) => new Map(questions.map((q) => [q.id, `${model} ${q.id}`]));
    const plan = await planArena(
      [{ modelA: "SFT", modelB: "PT", answersA: answers("SFT"), answersB: answers("PT") }],
      questions,
      { judge: "human:tester", rule: "once", seed: 1 },
    );
    const session = await ArenaSession.open(plan, `${dir}/judgments.jsonl`);
    const arena = startArenaServer(session, { port: 0 });
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${arena.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
    const refused = async (res: Response, status: number, code: string, param?: string) => {
      const body = await res.json();
      assertEquals([res.status, body.error.code], [status, code], JSON.stringify(body));
      if (param) assertEquals(body.error.param, param);
      return body.error.message as string;
    };
    try {
      const page = await fetch(`${arena.url}/`);
      assertEquals(page.headers.get("content-security-policy"), PAGE_CSP);
      assertStringIncludes(await page.text(), `<script src="/ui/arena.js" defer></script>`);
      const state = await (await fetch(`${arena.url}/api/state`)).json();
      assertEquals(state.progress, { done: 0, total: 4 });
      // The item names no model: the question, the answers in the order shown, and its key.
      assertEquals(Object.keys(state.item).sort(), ["answers", "key", "question"]);
      assert(QUESTIONS.includes(state.item.question));
      const key: string = state.item.key;

      await refused(await post("/api/vote", "{not json"), 400, "invalid_json");
      await refused(await post("/api/vote", "[1]"), 400, "invalid_json");
      await refused(await post("/api/vote", { vote: "A" }), 400, "invalid_value", "item");
      assertStringIncludes(
        await refused(await post("/api/vote", { item: key, vote: "C" }), 400, "invalid_value", "vote"),
        '"A", "B" or "tie"',
      );
      await refused(await post("/api/vote", { item: key }), 400, "invalid_value", "vote");
      assertStringIncludes(
        await refused(await post("/api/vote", { item: "nope", vote: "A" }), 404, "unknown_item"),
        "nope",
      );
      await refused(
        await post("/api/vote", JSON.stringify({ item: key, vote: "A" }), { "content-type": "text/plain" }),
        415,
        "unsupported_media_type",
      );
      await refused(
        await post("/api/vote", { item: key, vote: "A" }, { origin: "http://evil.example" }),
        403,
        "forbidden_origin",
      );
      await refused(await post("/api/undo", { item: key }), 409, "nothing_to_undo");
      await refused(await fetch(`${arena.url}/api/vote`), 405, "method_not_allowed");
      await refused(await fetch(`${arena.url}/api/votes`), 404, "unknown_route");
      await refused(await post("/api/vote", "x".repeat(70_000)), 413, "request_too_large");
      assertEquals((await session.tables()).summary.pairs[0].judged, 0, "nothing was recorded");

      const voted = await (await post("/api/vote", { item: key, vote: "A" })).json();
      assertEquals([voted.progress.done, voted.undo], [1, key]);
      await refused(await post("/api/vote", { item: key, vote: "B" }), 409, "already_voted");
      await refused(await post("/api/skip", { item: key }), 409, "already_voted");
      const second = voted.item.key;
      await post("/api/vote", { item: second, vote: "tie" }).then((r) => r.body?.cancel());
      assertStringIncludes(await refused(await post("/api/undo", { item: key }), 409, "stale_undo"), second);
      const undone = await (await post("/api/undo", { item: second })).json();
      assertEquals([undone.progress.done, undone.undo, undone.item.key], [1, key, second]);
      const lines = (await JudgmentLog.open(`${dir}/judgments.jsonl`)).lines;
      assertEquals(lines.map((l) => [l.action, l.outcome]), [
        ["vote", voted.table.pairs[0].wins ? "win" : "loss"],
        ["vote", "tie"],
        ["undo", "pending"],
      ]);
    } finally {
      await arena.close();
    }
  });
});

/** `deno task arena` as a child process, and the URL it serves at. */
async function startArenaTask(args: string[]): Promise<{ url: string; stop: () => Promise<string> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: await taskArgs("arena", ...args, "--quiet"),
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stdout = new Response(child.stdout).text();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let url: string | undefined;
  while (url === undefined) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the arena ended before serving:\n${seen}\n${await stdout}`);
    seen += value;
    url = / at (http:\/\/\S+)\/ /.exec(seen)?.[1];
  }
  void (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  return {
    url,
    stop: async () => {
      child.kill("SIGINT");
      const status = await child.status;
      assertEquals(status.code, 0, "Ctrl+C ends the arena cleanly");
      return await stdout;
    },
  };
}

/** Waits until the page shows `done` votes, and returns which model's answer is shown first, if any. */
async function shown(page: Page, done: number): Promise<{ key: string; first: "SFT" | "PT" } | null> {
  await page.waitFor(`document.body.dataset.done === "${done}" && !document.body.dataset.busy`);
  const item = await page.eval<{ key: string; a: string } | null>(`document.body.dataset.item
    ? { key: document.body.dataset.item, a: document.getElementById("answer-a").textContent }
    : null`);
  return item && { key: item.key, first: item.a.startsWith("SFT") ? "SFT" : "PT" };
}

testNeeding(
  CHROMIUM,
  "arena (Chromium): clicks and keys vote, skip and undo; a reload and a restart lose nothing; Table 1 and agreement",
  {},
  async () => {
    await withDir(async (dir) => {
      const inputs = await writeInputs(dir);
      const pair = `SFT=${inputs.sft},PT=${inputs.pt}`;
      // An LLM judge (the rule judge, in process) judged the same pair into the same results file.
      const llm = await runWinRate({
        promptsPath: inputs.prompts,
        pairs: [{
          a: { name: "SFT", source: { kind: "file", path: inputs.sft } },
          b: { name: "PT", source: { kind: "file", path: inputs.pt } },
        }],
        judge: { client: new RuleJudgeClient(), model: RULE_JUDGE_MODEL },
        resultsPath: `${dir}/out/judgments.jsonl`,
      });
      const args = [
        "--prompts",
        inputs.prompts,
        "--pair",
        pair,
        "--judge-name",
        "민지",
        "--out",
        `${dir}/out`,
      ];
      let task = await startArenaTask([...args, "--port", "0"]);
      const port = new URL(task.url).port;
      const votes = new Map<string, "SFT" | "PT">();
      await withBrowser(async (browser) => {
        const page = await browser.newPage();
        await page.goto(`${task.url}/`);
        await page.waitFor(`document.body.dataset.ready === "true"`);
        assertEquals(await page.eval(`document.getElementById("progress-text").textContent`), "0 of 4 voted");
        // 1: a click on the answer of SFT.
        let item = (await shown(page, 0))!;
        await page.click(item.first === "SFT" ? "#vote-a" : "#vote-b");
        votes.set(item.key, "SFT");
        // 2: skip it with S, then vote PT with the key 1 or 2.
        item = (await shown(page, 1))!;
        const skipped = item.key;
        await page.press("s");
        await page.waitFor(`document.body.dataset.item !== ${JSON.stringify(skipped)}`);
        item = (await shown(page, 1))!;
        await page.press(item.first === "PT" ? "1" : "2");
        votes.set(item.key, "PT");
        // 3: a tie with T, then U takes it back: the same item is shown again.
        item = (await shown(page, 2))!;
        const undone = item.key;
        await page.press("t");
        await shown(page, 3);
        await page.press("u");
        assertEquals((await shown(page, 2))!.key, undone, "the undone item comes back");
        // A reload shows the same state: two votes, the same item, and the undo of the PT vote.
        await page.reload();
        await page.waitFor(`document.body.dataset.ready === "true"`);
        assertEquals((await shown(page, 2))!.key, undone, "after a reload");
        assertEquals(await page.eval(`document.getElementById("undo").disabled`), false);
        assertEquals(await page.eval(`document.getElementById("progress").value`), 2);
        assertEquals(await page.fontsOf("#question"), ["NanumGothic"], "the Korean question's font");

        // Ctrl+C prints Table 1 so far; a restart on the same port finds every vote.
        const partial = await task.stop();
        assertStringIncludes(partial, "| SFT | PT | 50.0% (1) | 0.0% (0) | 50.0% (1) | 50.0% | 2 | 2 | 0 |");
        task = await startArenaTask([...args, "--port", port]);
        await page.reload();
        await page.waitFor(`document.body.dataset.ready === "true"`);
        // Skips last only while the arena runs: after the restart the skipped item (earlier in the drawn
        // sequence) comes first again, then the undone one. SFT for both, with the letter keys.
        item = (await shown(page, 2))!;
        assertEquals(item.key, skipped, "after a restart");
        await page.press(item.first === "SFT" ? "a" : "b");
        votes.set(item.key, "SFT");
        item = (await shown(page, 3))!;
        assertEquals(item.key, undone);
        await page.press(item.first === "SFT" ? "A" : "B");
        votes.set(item.key, "SFT");
        assertEquals(await shown(page, 4), null);
        await page.waitFor(`!document.getElementById("finished").hidden`);
        const row = await page.eval<string[]>(
          `[...document.querySelectorAll("#table tbody td")].map((td) => td.textContent)`,
        );
        assertEquals(row, ["SFT", "PT", "75.0% (3)", "0.0% (0)", "25.0% (1)", "75.0%", "4", "0", "0"]);
        const agreementShown = await page.eval<string>(`document.getElementById("agreement").textContent`);
        assertStringIncludes(agreementShown, `${RULE_JUDGE_MODEL} vs human`);
        assertEquals(await page.fontsOf("#judge"), ["NanumGothic"], "the Korean name's font");
        assertEquals(foreignRequests(page, task.url), [], "requests to anywhere but the arena");
        assertEquals(page.errors, [], "errors in the page");
      });
      const final = await task.stop();
      assertStringIncludes(final, "| SFT | PT | 75.0% (3) | 0.0% (0) | 25.0% (1) | 75.0% | 4 | 0 | 0 |");
      assertStringIncludes(final, "Each question is shown once, its two answers in a random order");

      // The votes are in the results file beside the rule judge's verdicts, each with the order it was shown in.
      const lines = (await JudgmentLog.open(`${dir}/out/judgments.jsonl`)).lines;
      const human = lines.filter((l) => l.judge === "human:민지");
      assertEquals(human.map((l) => l.action), ["vote", "vote", "vote", "undo", "vote", "vote"]);
      assert(human.every((l) => l.orders === "once" && (l.game === 1 || l.game === 2)));
      // Agreement as FastChat counts it: the rule judge's outcome against the person's on each question.
      const person = new Map(human.map((l) => [l.id, l.outcome]));
      const rule = lines.filter((l) => l.judge === RULE_JUDGE_MODEL);
      const met = rule.filter((l) => person.get(l.id) !== "pending" && l.outcome !== "error");
      const agree = met.filter((l) => l.outcome === person.get(l.id)).length;
      const decisive = met.filter((l) => l.outcome !== "tie" && person.get(l.id) !== "tie");
      const agreeDecisive = decisive.filter((l) => l.outcome === person.get(l.id)).length;
      assertStringIncludes(
        final,
        `${RULE_JUDGE_MODEL} vs human: with ties ${agree}/${met.length} agree (${
          (agree / met.length).toFixed(2)
        }); ` +
          `without ties ${agreeDecisive}/${decisive.length}`,
      );
      assertEquals(llm.summary.pairs[0].judged, 4);
      // Which model each vote chose, as the test meant it.
      for (const [key, model] of votes) {
        const line = human.findLast((l) => key.startsWith(l.fingerprint))!;
        assertEquals(line.outcome, model === "SFT" ? "win" : "loss", key);
      }
      // --no-serve prints the same table from the file, and the tables lie next to the results.
      const printed = await new Deno.Command(Deno.execPath(), {
        args: await taskArgs("arena", ...args, "--no-serve"),
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(printed.code, 0, new TextDecoder().decode(printed.stderr));
      assertStringIncludes(new TextDecoder().decode(printed.stdout), "| SFT | PT | 75.0% (3) |");
      const summary = JSON.parse(await Deno.readTextFile(`${dir}/out/judgments.human-민지.summary.json`));
      assertEquals([summary.judge, summary.orders, summary.pairs[0].wins], ["human:민지", "once", 3]);
    });
  },
);
