import { kobestMarkdownTable } from "../../eval/kobest/results.ts";
import { renderTable } from "../../eval/winrate/summary.ts";
import type { ChartSpec } from "../../report/charts.ts";
import { escapeHtml, inlineScript, scriptJson } from "../../report/html.ts";
import { readReportInputs } from "../../report/inputs.ts";
import { buildReport, type PageData } from "../../report/page.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../asserts.ts";
import {
  fixtureMetrics,
  judgmentLines,
  kobestResults,
  NASTY_MODEL,
  NASTY_RUN,
  winRateSummary,
  writeFixtureInputs,
} from "./fixtures.ts";
import { summarizePair } from "../../eval/winrate/summary.ts";

type Dataset = { label: string; data: unknown[]; borderDash?: number[] };

/** The page's chart data, read back as the browser reads it. */
function pageData(html: string): PageData {
  const json = /<script type="application\/json" id="chart-data">([\s\S]*?)<\/script>/.exec(html)?.[1];
  assert(json !== undefined, "the page embeds its chart data");
  return JSON.parse(json);
}

function datasets(chart: ChartSpec): Dataset[] {
  return chart.config.data.datasets as unknown as Dataset[];
}

/** Cells of the rows of the first table after `marker`, as HTML. */
function tableRows(html: string, marker: string): string[][] {
  const from = html.indexOf(marker);
  assert(from >= 0, `the page has ${marker}`);
  const table = html.slice(from, html.indexOf("</table>", from));
  const body = table.slice(table.indexOf("<tbody>"));
  return [...body.matchAll(/<tr[^>]*>(.*?)<\/tr>/g)].map((m) =>
    [...m[1].matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((c) => c[1])
  );
}

function markdownRows(markdown: string): string[][] {
  return markdown.split("\n").filter((l) => l.startsWith("| ")).slice(1).map((l) =>
    l.slice(2, -2).split(" | ")
  );
}

async function fullReport() {
  const dir = await Deno.makeTempDir({ prefix: "report-page-" });
  try {
    const paths = await writeFixtureInputs(dir);
    const inputs = await readReportInputs([...paths.runs, paths.kobest, paths.summary, paths.judgments]);
    const built = await buildReport(inputs, { title: "한국어 전이 <실험> 보고서", generatedAt: new Date(0) });
    return { ...built, paths };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("report page: one chart per metric, KoBEST and judge, with the runs' data", async () => {
  const { html, charts } = await fullReport();
  const data = pageData(html);
  assertEquals(data.charts, charts, "the page embeds exactly the charts built");
  assertEquals(charts.map((c) => c.id), [
    "train-loss",
    "train-nll-loss",
    "train-log-odds-ratio",
    "train-rewards-margins",
    "train-learning-rate",
    "train-tokens-per-second",
    "kobest-f1",
    "winrate-1",
    "winrate-2",
  ]);
  assertEquals((html.match(/<canvas /g) ?? []).length, charts.length, "one canvas per chart");
  for (const c of charts) assertStringIncludes(html, `<canvas id="${c.id}"`);

  const orpo = await fixtureMetrics("orpo"), dpo = await fixtureMetrics("dpo");
  const points = (rows: Record<string, number>[], key: string) =>
    rows.filter((r) => key in r).map((r) => ({ x: r.step, y: r[key] }));
  const byId = (id: string) => charts.find((c) => c.id === id)!;

  // Train and eval share the axes: solid for training, dashed for evaluation, one colour per run.
  const loss = datasets(byId("train-loss"));
  assertEquals(loss.map((d) => d.label), [NASTY_RUN, `${NASTY_RUN} (eval)`, "dpo-tiny", "dpo-tiny (eval)"]);
  assertEquals(loss[0].data, points(orpo, "loss"));
  assertEquals(loss[1].data, points(orpo, "eval_loss"));
  assertEquals(loss[3].data, points(dpo, "eval_loss"));
  assertEquals(loss.map((d) => d.borderDash !== undefined), [false, true, false, true]);
  assertEquals(loss[0].data.length, 8);
  assertEquals(loss[1].data.length, 3);

  // DPO logs no NLL and no log odds: those charts have the ORPO run only.
  assertEquals(datasets(byId("train-nll-loss")).map((d) => d.label), [NASTY_RUN, `${NASTY_RUN} (eval)`]);
  assertEquals(datasets(byId("train-log-odds-ratio"))[0].data, points(orpo, "log_odds_ratio"));
  const margins = datasets(byId("train-rewards-margins"));
  assertEquals(margins.length, 4);
  assertEquals(margins[3].data, points(dpo, "eval_rewards_margins"));
  assertEquals(datasets(byId("train-learning-rate")).map((d) => d.data), [
    points(orpo, "learning_rate"),
    points(dpo, "learning_rate"),
  ]);
  assertEquals(datasets(byId("train-tokens-per-second"))[1].data, points(dpo, "tokens_per_second"));
});

Deno.test("report page: KoBEST bars and table carry kobestMarkdownTable's numbers", async () => {
  const { html, charts } = await fullReport();
  const results = kobestResults();
  const labels = ["EleutherAI/polyglot-ko-1.3b", "EleutherAI/polyglot-ko-1.3b", NASTY_MODEL];
  const markdown = markdownRows(kobestMarkdownTable(results.map((r, i) => ({ model: `m${i}`, results: r }))));

  const chart = charts.find((c) => c.id === "kobest-f1")!;
  assertEquals(chart.config.data.labels, ["BoolQ", "COPA", "HellaSwag", "SentiNeg", "WiC", "Avg"]);
  const bars = datasets(chart);
  assertEquals(bars.map((d) => d.label), [
    "EleutherAI/polyglot-ko-1.3b · 0-shot",
    "EleutherAI/polyglot-ko-1.3b · 5-shot",
    `${NASTY_MODEL} · 0-shot`,
  ]);
  assertEquals(bars[0].data.slice(0, 5), [0.355, 0.711, 0.401, 0.683, 0.327]);
  assertEquals(bars[2].data[2], null, "no HellaSwag bar where the model has no HellaSwag score");
  bars.forEach((bar, i) => {
    const avgF1 = markdown[i][7].split(" ")[0];
    assertEquals((bar.data[5] as number).toFixed(3), avgF1, `${bar.label}: Avg bar = table's Avg`);
  });

  const rows = tableRows(html, "<h3>Macro-F1 (accuracy)</h3>");
  assertEquals(rows, markdown.map((cells, i) => [escapeHtml(labels[i]), ...cells.slice(1)]));
  assertEquals(rows[0].slice(1), [
    "0",
    "0.355 (0.498)",
    "0.711 (0.712)",
    "0.401 (0.406)",
    "0.683 (0.693)",
    "0.327 (0.487)",
    rows[0][7],
  ]);
  assertEquals(rows[2][4], "–");
});

Deno.test("report page: win/tie/loss bars in percent with the win rate, and the Table-1 rows", async () => {
  const { html, charts } = await fullReport();
  const summary = winRateSummary();
  const fromLines = summarizePair("orpo", "base", judgmentLines(), 0);

  const [first, second] = charts.filter((c) => c.kind === "winrate");
  assertEquals(first.title, "Win / tie / loss, judged by gpt-4o");
  assertEquals(first.config.data.labels, [
    "orpo vs base · win rate 55.0%",
    `${NASTY_MODEL} vs base · win rate 37.5%`,
  ]);
  assertEquals(datasets(first).map((d) => [d.label, d.data]), [
    ["Win", [45, 25]],
    ["Tie", [20, 25]],
    ["Loss", [35, 50]],
  ]);
  assertEquals(second.config.data.labels, ["orpo vs base · win rate 66.7%"]);
  assertEquals(datasets(second).map((d) => d.data[0]), [58.3, 16.7, 25]);
  assertEquals((fromLines.win_rate! * 100).toFixed(1), "66.7");

  const expected = markdownRows(renderTable(summary.pairs, summary.judge)).map((cells) =>
    cells.map(escapeHtml)
  );
  assertEquals(tableRows(html, "<h3>Judge: gpt-4o</h3>"), expected);
  assertEquals(tableRows(html, "<h3>Judge: gpt-4o-mini</h3>"), [
    ["orpo", "base", "58.3% (7)", "16.7% (2)", "25.0% (3)", "66.7%", "12", "1", "0"],
  ]);
});

Deno.test("report page: every input text is escaped, Korean is kept, the page needs no network", async () => {
  const { html } = await fullReport();
  for (const raw of [NASTY_MODEL, NASTY_RUN, "<실험>"]) {
    assert(!html.includes(raw), `unescaped ${raw} in the page`);
  }
  assertStringIncludes(html, `<title>한국어 전이 &lt;실험&gt; 보고서</title>`);
  assertStringIncludes(html, `<h1>한국어 전이 &lt;실험&gt; 보고서</h1>`);
  assertStringIncludes(html, escapeHtml(NASTY_MODEL));
  assertStringIncludes(
    html,
    `<th>${escapeHtml(NASTY_RUN)}</th>`,
    "the run's column in the configuration table",
  );
  // Inside the chart data the names survive intact for the canvas, but cannot close the script element.
  const data = pageData(html);
  assertEquals(data.charts[0].config.data.datasets[0].label, NASTY_RUN);
  assertEquals(
    html.split("</script>").length - 1,
    html.split("<script").length - 1,
    "every script closes once",
  );
  assertEquals(scriptJson("</script><!--"), '"\\u003c/script>\\u003c!--"');
  assertEquals(inlineScript('a = "</SCRIPT>"; b = "<!--";'), 'a = "<\\/SCRIPT>"; b = "<\\!--";');

  assertStringIncludes(html, `<html lang="ko">`);
  assertStringIncludes(html, `font-family: "NanumGothic", "Nanum Gothic", "Noto Sans KR"`);
  assertEquals(data.font.split(", ").at(-1), "sans-serif");
  assertStringIncludes(html, "Chart.js v4.6.1", "Chart.js is inlined");
  assertStringIncludes(html, "default-src 'none'");
  assert(!/(src|href)=["']?(https?:)?\/\//i.test(html), "no external resource");
  assert(!/<script[^>]+src=/i.test(html), "no external script");
});

Deno.test("report page: sections without input are left out; the configuration marks what differs", async () => {
  const { html } = await fullReport();
  for (const id of ["training", "kobest", "winrate"]) assertStringIncludes(html, `<section id="${id}">`);
  const config = tableRows(html, "<h3>Configuration (training_args.json)</h3>");
  const lr = config.find((r) => r[0] === "lr");
  assertEquals(lr, ["lr", "0.003", "0.0005"]);
  assertStringIncludes(html, `<tr class="differs"><td>lr</td>`);
  assertStringIncludes(html, `<tr><td>batchSize</td>`);
  const runs = tableRows(html, "<h3>Runs</h3>");
  assertEquals(runs.map((r) => r.slice(0, 3)), [[escapeHtml(NASTY_RUN), "orpo", "8"], [
    "dpo-tiny",
    "dpo",
    "8",
  ]]);

  const dir = await Deno.makeTempDir({ prefix: "report-page-" });
  try {
    const paths = await writeFixtureInputs(dir);
    const onlyKobest = await buildReport(await readReportInputs([paths.kobest]));
    assertEquals(onlyKobest.charts.map((c) => c.id), ["kobest-f1"]);
    assert(!onlyKobest.html.includes(`<section id="training">`), "no training section");
    assert(!onlyKobest.html.includes(`<section id="winrate">`), "no win-rate section");
    const onlyRun = await buildReport(await readReportInputs([paths.runs[1]]));
    assertEquals(onlyRun.charts.map((c) => c.id), [
      "train-loss",
      "train-rewards-margins",
      "train-learning-rate",
      "train-tokens-per-second",
    ]);
    assert(!onlyRun.html.includes(`<section id="kobest">`), "no KoBEST section");
    assert(!onlyRun.html.includes("Highlighted: settings that differ"), "nothing to compare with one run");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("report page: a person's win rates beside the LLM judge's, pairs turned to match, with the agreement", async () => {
  const dir = await Deno.makeTempDir({ prefix: "report-judges-" });
  try {
    const line = (judge: string, id: number, a: string, b: string, outcome: string, orders?: string) =>
      JSON.stringify({
        id: `q${id}`,
        model_a: a,
        model_b: b,
        judge,
        fingerprint: `${judge}-${id}`,
        verdicts: [null, null],
        outcome,
        judge_raw: ["", ""],
        attempts: [1, 1],
        errors: [],
        judged_at: "2026-12-01T00:00:00.000Z",
        ...(orders ? { orders, game: 1, action: "vote" } : {}),
      });
    // The LLM judged (orpo, base); the person voted on (base, orpo): the report turns the person's row.
    const lines = [
      ...["win", "win", "tie", "loss"].map((o, i) => line("gpt-4o-mini", i, "orpo", "base", o)),
      ...["loss", "win", "tie", "win"].map((o, i) => line("human:민지", i, "base", "orpo", o, "once")),
    ];
    await Deno.writeTextFile(`${dir}/judgments.jsonl`, lines.join("\n") + "\n");
    const inputs = await readReportInputs([`${dir}/judgments.jsonl`]);
    const { html } = await buildReport(inputs, { generatedAt: new Date(0) });
    assertStringIncludes(html, "<h3>People and LLM judges side by side</h3>");
    assertStringIncludes(html, `<th class="num">gpt-4o-mini</th><th class="num">human:민지</th>`);
    assertEquals(tableRows(html, "<h3>People and LLM judges side by side</h3>"), [
      ["orpo", "base", "62.5% (2/1/1)", "37.5% (1/1/2)"],
    ]);
    // FastChat's counts: q0, q2 (both ties) and q3 agree, q1 does not; without ties q2 is left out.
    assertStringIncludes(
      html,
      "<li>gpt-4o-mini vs human: with ties 3/4 agree (0.75); without ties 2/3 (0.67)</li>",
    );
    // The person's own Table 1 says how the questions were shown and counts pending votes.
    assertEquals(tableRows(html, "<h3>Judge: human:민지</h3>"), [
      ["base", "orpo", "50.0% (2)", "25.0% (1)", "25.0% (1)", "62.5%", "4", "0", "0"],
    ]);
    assertStringIncludes(html, "Each question is shown once, its two answers in a random order");
    // The arena's summary JSON (orders, pending) reads as well, without lines for the agreement.
    const summary = {
      judge: "human:수진",
      judge_prompt: "arena-v1",
      prompts: "p.jsonl",
      results: "judgments.jsonl",
      orders: "both",
      no_verdict: 0,
      pairs: [{ ...summarizePair("orpo", "base", [], 0), questions: 3, pending: 3 }],
      agreement: [],
    };
    await Deno.writeTextFile(`${dir}/human.summary.json`, JSON.stringify(summary));
    const both = await readReportInputs([`${dir}/judgments.jsonl`, `${dir}/human.summary.json`]);
    assertEquals(both.winRates.find((s) => s.judge === "human:수진")?.orders, "both");
    const withSummary = (await buildReport(both)).html;
    assertEquals(tableRows(withSummary, "<h3>People and LLM judges side by side</h3>")[0], [
      "orpo",
      "base",
      "62.5% (2/1/1)",
      "37.5% (1/1/2)",
      "– (0/0/0)",
    ]);
    assertStringIncludes(withSummary, "Each question is shown in both orders");
    await Deno.writeTextFile(`${dir}/bad.summary.json`, JSON.stringify({ ...summary, orders: "twice" }));
    await assertRejects(() => readReportInputs([`${dir}/bad.summary.json`]), Error, '"orders": expected');
    // Only LLM judges (or only people): no side-by-side table.
    const llmOnly = await buildReport(
      await readReportInputs([`${dir}/judgments.jsonl`]).then((i) => ({
        ...i,
        winRates: i.winRates.filter((s) => s.judge === "gpt-4o-mini"),
      })),
    );
    assert(!llmOnly.html.includes("side by side"), "one kind of judge only");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
