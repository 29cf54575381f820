/**
 * A person as the win rates' judge (eval/winrate/human.ts, arena_session.ts, agreement.ts): how votes make
 * outcomes under each rule, what the arena shows in which order, votes, skips and undos that survive
 * reopening the results file, Table 1 from the votes, and FastChat's judge–human agreement.
 */
import { agreementLine, judgeAgreements } from "../../eval/winrate/agreement.ts";
import { arenaPaths, ArenaRequestError, arenaSeed, ArenaSession } from "../../eval/winrate/arena_session.ts";
import { type AnsweredPair, humanJudgeName, humanOutcome, planArena } from "../../eval/winrate/human.ts";
import type { Question } from "../../eval/winrate/inputs.ts";
import { JudgmentLog, type JudgmentRecord, type OrderRule } from "../../eval/winrate/judgments.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes, assertThrows } from "../asserts.ts";

const QUESTIONS: Question[] = Array.from({ length: 6 }, (_, i) => ({ id: `q${i}`, text: `질문 ${i}` }));

function pair(missing: string[] = []): AnsweredPair {
  const answers = (model: string) =>
    new Map(QUESTIONS.filter((q) => !missing.includes(q.id)).map((q) => [q.id, `${model}의 답 ${q.id}`]));
  return { modelA: "SFT", modelB: "PT", answersA: answers("SFT"), answersB: answers("PT") };
}

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "human-judge-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function session(dir: string, rule: OrderRule, seed = 11, missing: string[] = []) {
  const plan = await planArena([pair(missing)], QUESTIONS, { judge: "human:minji", rule, seed });
  return await ArenaSession.open(plan, `${dir}/judgments.jsonl`, { prompts: "q.jsonl" });
}

/** The vote that prefers `model` for the item shown now. */
function voteFor(s: ArenaSession, model: "SFT" | "PT" | "tie"): { key: string; vote: "A" | "B" | "tie" } {
  const item = s.next()!;
  if (model === "tie") return { key: item.key, vote: "tie" };
  const firstIsA = item.game === 1;
  return { key: item.key, vote: (model === "SFT") === firstIsA ? "A" : "B" };
}

Deno.test("human judge: names, rules, and outcomes under each rule", () => {
  assertEquals(humanJudgeName("민지"), "human:민지");
  assertThrows(() => humanJudgeName("two words"), Error, "--judge_name");
  assertThrows(() => humanJudgeName("", "--judge-name"), Error, '--judge-name ""');
  // once: the vote cast, in whichever order it was shown.
  assertEquals(humanOutcome(["A", null], "once"), "win");
  assertEquals(humanOutcome([null, "A"], "once"), "loss");
  assertEquals(humanOutcome([null, "B"], "once"), "win");
  assertEquals(humanOutcome(["C", null], "once"), "tie");
  assertEquals(humanOutcome([null, null], "once"), "pending");
  // both: the two orders combined as the LLM judge's games are; one order alone is pending.
  assertEquals(humanOutcome(["A", "B"], "both"), "win");
  assertEquals(humanOutcome(["B", "A"], "both"), "loss");
  assertEquals(humanOutcome(["A", "A"], "both"), "tie");
  assertEquals(humanOutcome(["A", null], "both"), "pending");
});

Deno.test("human judge: the plan shows each question once (or in both orders, the second round after the first), drawn from the seed", async () => {
  const once = await planArena([pair(["q5"])], QUESTIONS, { judge: "human:minji", rule: "once", seed: 3 });
  assertEquals(once.items.length, 5, "q5 lacks an answer");
  assertEquals(once.pairs[0].missing, 1);
  assertEquals(new Set(once.items.map((i) => i.question.id)).size, 5);
  for (const item of once.items) {
    const [a, b] = [`SFT의 답 ${item.question.id}`, `PT의 답 ${item.question.id}`];
    assertEquals(item.shown, item.game === 1 ? [a, b] : [b, a]);
  }
  const again = await planArena([pair(["q5"])], QUESTIONS, { judge: "human:minji", rule: "once", seed: 3 });
  assertEquals(again.items.map((i) => [i.key, i.game]), once.items.map((i) => [i.key, i.game]), "same seed");
  const seeds = await Promise.all(
    [4, 5, 6, 7].map((seed) => planArena([pair()], QUESTIONS, { judge: "human:minji", rule: "once", seed })),
  );
  const orders = new Set(seeds.map((p) => p.items.map((i) => `${i.question.id}${i.game}`).join()));
  assert(orders.size > 1, "other seeds draw other orders");
  assert(seeds.flatMap((p) => p.items).some((i) => i.game === 1), "some first shown as A");
  assert(seeds.flatMap((p) => p.items).some((i) => i.game === 2), "some first shown as B");
  const both = await planArena([pair()], QUESTIONS, { judge: "human:minji", rule: "both", seed: 3 });
  assertEquals(both.items.length, 12);
  const firstRound = both.items.slice(0, 6);
  assertEquals(new Set(firstRound.map((i) => i.question.id)).size, 6, "every question once before any twice");
  for (const item of both.items.slice(6)) {
    const earlier = firstRound.find((i) => i.question.id === item.question.id)!;
    assertEquals(item.game, earlier.game === 1 ? 2 : 1, "then in the other order");
  }
  assert(
    once.items[0].fingerprint !== both.items.find((i) => i.question.id === once.items[0].question.id)!
      .fingerprint,
    "the rule is part of the fingerprint",
  );
});

Deno.test("human judge: votes, skips and undos land in the results file and survive reopening it", async () => {
  await withTemp(async (dir) => {
    const s = await session(dir, "once");
    assertEquals(s.progress(), { done: 0, total: 6 });
    const first = s.next()!;
    s.skip(first.key);
    assert(s.next()!.key !== first.key, "a skipped item goes to the back");
    const v1 = voteFor(s, "SFT");
    await s.vote(v1.key, v1.vote);
    const v2 = voteFor(s, "PT");
    await s.vote(v2.key, v2.vote);
    const v3 = voteFor(s, "tie");
    await s.vote(v3.key, v3.vote);
    assertEquals(s.progress().done, 3);
    await assertRejects(() => s.vote(v1.key, "A"), ArenaRequestError, "already voted");
    assertThrows(() => s.skip(v1.key), ArenaRequestError, "already voted");
    await assertRejects(() => s.vote("nope", "A"), ArenaRequestError, "no item");
    // Only the last vote standing can be undone.
    const stale = await assertRejects(() => s.undo(v2.key), ArenaRequestError) as ArenaRequestError;
    assertEquals(stale.code, "stale_undo");
    assertEquals(s.lastVote()!.key, v3.key);
    assertEquals((await s.undo(v3.key)).key, v3.key);
    assertEquals(s.next()!.key, v3.key, "the undone item is shown again at once");
    assertEquals(s.lastVote()!.key, v2.key);
    assertEquals(s.progress().done, 2);

    // Reopened (a server restart): the same votes, the same undo, the same next item; skips are forgotten.
    const reopened = await session(dir, "once");
    assertEquals(reopened.progress().done, 2);
    assertEquals(reopened.lastVote()!.key, v2.key);
    await reopened.undo(v2.key);
    assertEquals(reopened.lastVote()!.key, v1.key);
    const lines = (await JudgmentLog.open(`${dir}/judgments.jsonl`)).lines;
    assertEquals(lines.map((l) => l.action), ["vote", "vote", "vote", "undo", "undo"]);
    assertEquals(lines.map((l) => l.outcome), ["win", "loss", "tie", "pending", "pending"]);
    assert(lines.every((l) => l.judge === "human:minji" && l.orders === "once"));
    const v1line = lines[0];
    assertEquals(
      v1line.verdicts[v1line.game! - 1],
      v1.vote === "tie" ? "C" : v1.vote,
      "the order is recorded",
    );
    await assertRejects(() => reopened.undo(v1.key).then(() => reopened.undo(v1.key)), ArenaRequestError);
    const none = await assertRejects(() => reopened.undo(v1.key), ArenaRequestError) as ArenaRequestError;
    assertEquals(none.code, "nothing_to_undo");
  });
});

Deno.test("human judge: Table 1 from the votes under once and both, written next to the results", async () => {
  await withTemp(async (dir) => {
    const once = await session(dir, "once", 11, ["q5"]);
    for (const model of ["SFT", "SFT", "PT", "tie"] as const) {
      const v = voteFor(once, model);
      await once.vote(v.key, v.vote);
    }
    const tables = await once.writeTables();
    const p = tables.summary.pairs[0];
    assertEquals([p.wins, p.ties, p.losses, p.judged, p.pending, p.missing, p.errors], [2, 1, 1, 4, 1, 1, 0]);
    assertEquals(p.win_rate, 2.5 / 4);
    assertEquals(tables.summary.orders, "once");
    assertStringIncludes(tables.table, "| Judged | Pending | Missing |");
    assertStringIncludes(
      tables.table,
      "| SFT | PT | 50.0% (2) | 25.0% (1) | 25.0% (1) | 62.5% | 4 | 1 | 1 |",
    );
    assertStringIncludes(tables.table, "Each question is shown once");
    const paths = arenaPaths(`${dir}/judgments.jsonl`, "human:minji");
    assertEquals(paths.summary, `${dir}/judgments.human-minji.summary.json`);
    assertEquals(JSON.parse(await Deno.readTextFile(paths.summary)).pairs[0].wins, 2);
    assertStringIncludes(await Deno.readTextFile(paths.table), "62.5%");

    // both: a question counts once both orders are voted, a win only when they agree.
    const both = await session(dir, "both");
    const byQuestion = new Map<string, "SFT" | "PT">([["q0", "SFT"], ["q1", "PT"], ["q2", "SFT"]]);
    // q0: SFT both times (win); q1: PT both times (loss); q2: SFT, then PT (tie); the rest once only.
    for (let i = 0; i < 12; i++) {
      const item = both.next()!;
      const second = i >= 6;
      const wanted = item.question.id === "q2" && second ? "PT" : byQuestion.get(item.question.id) ?? "SFT";
      if (second && !byQuestion.has(item.question.id)) {
        both.skip(item.key);
        continue;
      }
      const v = voteFor(both, wanted);
      await both.vote(v.key, v.vote);
    }
    const b = both.tables().summary.pairs[0];
    assertEquals([b.wins, b.ties, b.losses, b.pending], [1, 1, 1, 3]);
    assertStringIncludes(both.tables().table, "Each question is shown in both orders");
  });
});

Deno.test("human judge: the seed is drawn once and kept next to the results", async () => {
  await withTemp(async (dir) => {
    const path = `${dir}/judgments.human-minji.arena.json`;
    const drawn = await arenaSeed(path);
    assertEquals(await arenaSeed(path), drawn, "kept");
    assertEquals(await arenaSeed(path, 42), 42, "given");
    assertEquals(await arenaSeed(path), 42, "the given one is kept");
    await Deno.writeTextFile(path, '{"seed": "x"}');
    await assertRejects(() => arenaSeed(path), Error, '"seed": expected an integer');
  });
});

function line(judge: string, id: string, a: string, b: string, outcome: JudgmentRecord["outcome"]) {
  return {
    id,
    model_a: a,
    model_b: b,
    judge,
    fingerprint: `${judge}${id}${a}`,
    verdicts: [null, null],
    outcome,
    judge_raw: ["", ""],
    attempts: [1, 1],
    errors: [],
    judged_at: "",
  } as JudgmentRecord;
}

Deno.test("agreement: FastChat's compute_agreement, with and without ties, pairs in either orientation", () => {
  const records = [
    line("gpt", "q1", "X", "Y", "win"),
    line("gpt", "q2", "X", "Y", "tie"),
    line("gpt", "q3", "X", "Y", "loss"),
    line("gpt", "q4", "X", "Y", "win"),
    line("gpt", "q5", "X", "Y", "error"),
    // alice compared (Y, X): a loss is X's win.
    line("human:alice", "q1", "Y", "X", "loss"),
    line("human:alice", "q2", "Y", "X", "tie"),
    line("human:alice", "q3", "Y", "X", "loss"),
    line("human:alice", "q5", "Y", "X", "win"),
    line("human:bob", "q1", "X", "Y", "tie"),
    line("human:bob", "q2", "X", "Y", "win"),
    line("human:bob", "q4", "X", "Y", "win"),
    // An undone vote is no decision, and the last line decides.
    line("human:bob", "q3", "X", "Y", "win"),
    line("human:bob", "q3", "X", "Y", "pending"),
  ];
  const rows = judgeAgreements(records);
  assertEquals(rows, [
    { first: "gpt", second: "human", withTies: { agree: 3, total: 6 }, withoutTies: { agree: 2, total: 3 } },
    {
      first: "human",
      second: "human",
      withTies: { agree: 0, total: 2 },
      withoutTies: { agree: 0, total: 0 },
    },
  ]);
  assertEquals(agreementLine(rows[0]), "gpt vs human: with ties 3/6 agree (0.50); without ties 2/3 (0.67)");
  assertEquals(agreementLine(rows[1]), "human vs human: with ties 0/2 agree (0.00); without ties 0/0 (–)");
  assertEquals(judgeAgreements(records.filter((r) => r.judge === "gpt")), [], "no person, no agreement");
});
