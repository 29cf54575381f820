import { summarizePair } from "../../eval/winrate/summary.ts";
import {
  kobestModelName,
  parseMetricsJsonl,
  readReportInput,
  readReportInputs,
  ReportInputError,
} from "../../report/inputs.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes, assertThrows } from "../asserts.ts";
import {
  fixtureMetrics,
  judgmentLines,
  kobestResults,
  NASTY_MODEL,
  NASTY_RUN,
  winRateSummary,
  writeFixtureInputs,
} from "./fixtures.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "report-inputs-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("report inputs: every kind is told apart by its content, whatever its file name", async () => {
  await withTempDir(async (dir) => {
    const paths = await writeFixtureInputs(dir);
    const expected = await fixtureMetrics("orpo");

    const run = await readReportInput(paths.runs[0]);
    assert(run.kind === "run", "a run folder");
    assertEquals(run.run.name, NASTY_RUN);
    assertEquals(run.run.config?.objective, "orpo");
    assertEquals(run.run.train, expected.filter((r) => "loss" in r));
    assertEquals(run.run.eval.map((r) => r.step), [3, 6, 8]);

    const viaMetrics = await readReportInput(`${paths.runs[0]}/metrics.jsonl`);
    assert(viaMetrics.kind === "run", "a metrics.jsonl means its run");
    assertEquals(viaMetrics.run.train, run.run.train);

    // Names say nothing: a KoBEST file called .jsonl and a summary called .txt are still recognised.
    await Deno.copyFile(paths.kobest, `${dir}/a.jsonl`);
    await Deno.copyFile(paths.summary, `${dir}/b.txt`);
    const kobest = await readReportInput(`${dir}/a.jsonl`);
    assert(kobest.kind === "kobest", "KoBEST results");
    assertEquals(
      kobest.entries.map((e) => [e.model, e.shots]),
      [["EleutherAI/polyglot-ko-1.3b", 0], ["EleutherAI/polyglot-ko-1.3b", 5], [NASTY_MODEL, 0]],
    );
    assertEquals(kobest.entries[2].source, `${dir}/a.jsonl[2]`);
    const single = `${dir}/single.json`;
    await Deno.writeTextFile(single, JSON.stringify(kobestResults()[1]));
    const one = await readReportInput(single);
    assert(one.kind === "kobest" && one.entries.length === 1 && one.entries[0].shots === 5, "one object");

    const summary = await readReportInput(`${dir}/b.txt`);
    assert(summary.kind === "winrate", "a win-rate summary");
    assertEquals(summary.sets, [{ judge: "gpt-4o", pairs: winRateSummary().pairs, source: `${dir}/b.txt` }]);

    const lines = await readReportInput(paths.judgments);
    assert(lines.kind === "winrate", "a win-rate JSONL");
    assertEquals(lines.sets[0].judge, "gpt-4o-mini");
    assertEquals(lines.sets[0].pairs, [summarizePair("orpo", "base", judgmentLines(), 0)]);
    assertEquals([lines.sets[0].pairs[0].wins, lines.sets[0].pairs[0].errors], [7, 1]);
  });
});

Deno.test("report inputs: model names as lm-eval writes them", () => {
  assertEquals(kobestModelName({ model_name: "org/m", config: { model: "hf" } }), "org/m");
  assertEquals(
    kobestModelName({
      config: { model: "hf", model_args: "dtype=float16, pretrained=EleutherAI/polyglot-ko-1.3b" },
    }),
    "EleutherAI/polyglot-ko-1.3b",
  );
  assertEquals(
    kobestModelName({ config: { model: "orpo-tiny", model_args: "pretrained=runs/x" } }),
    "orpo-tiny",
  );
  assertEquals(kobestModelName({ config: { model: "hf", model_args: "" } }), "hf");
  assertEquals(kobestModelName({ config: {} }), undefined);
});

Deno.test("report inputs: metrics keep the last record of a step logged twice and skip a line being written", () => {
  const text = '{"step":1,"loss":3}\n{"step":2,"loss":2.5}\n{"step":2,"eval_loss":2.7}\n' +
    '{"step":2,"loss":2.4}\n{"step":3,"lo';
  const { train, eval: evals } = parseMetricsJsonl(text, "m.jsonl");
  assertEquals(train, [{ step: 1, loss: 3 }, { step: 2, loss: 2.4 }]);
  assertEquals(evals, [{ step: 2, eval_loss: 2.7 }]);
  // The same cut line followed by a newline is damage, not a write in progress.
  assertThrows(
    () => parseMetricsJsonl(text + "\n", "m.jsonl"),
    ReportInputError,
    "m.jsonl:5: not valid JSON",
  );
  assertThrows(
    () => parseMetricsJsonl('{"step":1,"loss":3}\n{"step":2,"loss":"x"}\n', "m.jsonl"),
    ReportInputError,
    'm.jsonl:2: "loss": expected a number, got "x"',
  );
  assertThrows(
    () => parseMetricsJsonl('{"step":0,"loss":3}\n', "m.jsonl"),
    ReportInputError,
    'm.jsonl:1: "step": expected a positive integer, got 0',
  );
});

Deno.test("report inputs: bad input is rejected with the file, field and what was expected", async () => {
  await withTempDir(async (dir) => {
    const write = async (name: string, value: unknown) => {
      await Deno.writeTextFile(`${dir}/${name}`, typeof value === "string" ? value : JSON.stringify(value));
      return `${dir}/${name}`;
    };
    const unknown = await write("notes.json", { hello: "세계" });
    await assertRejects(() => readReportInput(unknown), ReportInputError, `${unknown}: not a report input`);
    await assertRejects(
      () => readReportInput(unknown),
      ReportInputError,
      "a training run folder (metrics.jsonl",
    );
    await assertRejects(
      async () => readReportInput(await write("plain.txt", "한국어 문장\n")),
      ReportInputError,
      "not a report input (found no JSON)",
    );
    await Deno.mkdir(`${dir}/empty`);
    await assertRejects(
      () => readReportInput(`${dir}/empty`),
      ReportInputError,
      "it has none of metrics.jsonl",
    );
    await assertRejects(
      () => readReportInput(`${dir}/missing`),
      ReportInputError,
      `${dir}/missing: no such file or folder`,
    );

    const [zero, five] = kobestResults();
    const mixed = { ...zero, "n-shot": { ...zero["n-shot"], kobest_copa: 5 } };
    await assertRejects(
      async () => readReportInput(await write("mixed.json", mixed)),
      ReportInputError,
      '"n-shot" mixes shot settings (kobest_boolq 0, kobest_copa 5',
    );
    const noSamples = { ...five, "n-samples": {} };
    await assertRejects(
      async () => readReportInput(await write("arr.json", [zero, noSamples])),
      ReportInputError,
      `${dir}/arr.json[1]: "n-samples".kobest_boolq.effective: expected a positive integer`,
    );
    const noF1 = structuredClone(zero);
    delete (noF1.results.kobest_wic as Record<string, unknown>)["f1,none"];
    await assertRejects(
      async () => readReportInput(await write("nof1.json", noF1)),
      ReportInputError,
      'results.kobest_wic["f1,none"]: expected a number, got undefined',
    );
    const otherTasks = { ...zero, results: { arc_easy: { alias: "arc_easy" } } };
    await assertRejects(
      async () => readReportInput(await write("arc.json", otherTasks)),
      ReportInputError,
      'no kobest_* task in "results"',
    );

    const summary = winRateSummary();
    summary.pairs[1] = { ...summary.pairs[1], judged: 3 };
    await assertRejects(
      async () => readReportInput(await write("s.json", summary)),
      ReportInputError,
      "s.json: pairs[1]: judged is 3 but wins + ties + losses is 20",
    );
    const lines = judgmentLines().map((r) => JSON.stringify(r));
    lines[3] = JSON.stringify({ ...judgmentLines()[3], outcome: "draw" });
    await assertRejects(
      async () => readReportInput(await write("j.jsonl", lines.join("\n") + "\n")),
      ReportInputError,
      'j.jsonl:4: "outcome": expected win | tie | loss | error | pending, got "draw"',
    );
    await assertRejects(() => readReportInputs([]), ReportInputError, "no inputs");
  });
});

Deno.test("report inputs: merging names runs, models and judges apart", async () => {
  await withTempDir(async (dir) => {
    const paths = await writeFixtureInputs(dir);
    await Deno.mkdir(`${dir}/other/dpo-tiny`, { recursive: true });
    await Deno.copyFile(`${paths.runs[1]}/metrics.jsonl`, `${dir}/other/dpo-tiny/metrics.jsonl`);
    await Deno.copyFile(paths.kobest, `${dir}/again.json`);
    // The same judge's pair in the summary and again in a second file: the first one given is kept.
    const again = winRateSummary();
    again.pairs = [{
      ...again.pairs[0],
      wins: 0,
      ties: 20,
      losses: 0,
      win: 0,
      tie: 1,
      loss: 0,
      win_rate: 0.5,
    }];
    await Deno.writeTextFile(`${dir}/again.summary.json`, JSON.stringify(again));
    const inputs = await readReportInputs([
      paths.runs[1],
      `${dir}/other/dpo-tiny`,
      paths.kobest,
      `${dir}/again.json`,
      paths.summary,
      paths.judgments,
      `${dir}/again.summary.json`,
    ]);
    assertEquals(inputs.runs.map((r) => r.name), [paths.runs[1], `${dir}/other/dpo-tiny`]);
    assertEquals(inputs.kobest.map((e) => e.model).slice(0, 3), [
      "EleutherAI/polyglot-ko-1.3b (kobest_results.json)",
      "EleutherAI/polyglot-ko-1.3b (kobest_results.json)",
      `${NASTY_MODEL} (kobest_results.json)`,
    ]);
    assertEquals(inputs.kobest[3].model, "EleutherAI/polyglot-ko-1.3b (again.json)");
    assertEquals(inputs.winRates.map((s) => [s.judge, s.pairs.length]), [["gpt-4o", 2], ["gpt-4o-mini", 1]]);
    assertEquals(inputs.winRates[0].pairs[0].wins, winRateSummary().pairs[0].wins);
    assertStringIncludes(inputs.winRates[0].source, "again.summary.json");
    await assertRejects(
      () => readReportInputs([paths.runs[1], paths.runs[1]]),
      ReportInputError,
      "the same run folder is given twice",
    );
  });
});

Deno.test("report inputs: a folder the Hugging Face Trainer or TRL wrote reads from trainer_state.json", async () => {
  await withTempDir(async (dir) => {
    // What `trl sft` leaves without save_state(): log_history only in the checkpoints' trainer_state.json.
    const history = [
      {
        loss: 2.5,
        grad_norm: 1.2,
        learning_rate: 2e-5,
        num_tokens: 4096,
        mean_token_accuracy: 0.41,
        epoch: 0.5,
        step: 10,
      },
      { eval_loss: 2.4, "eval_rewards/margins": 0.2, eval_runtime: 1.5, epoch: 0.5, step: 10 },
      {
        loss: 2.1,
        grad_norm: 1.1,
        learning_rate: 1e-5,
        num_tokens: 8192,
        mean_token_accuracy: 0.47,
        epoch: 1,
        step: 20,
      },
      { train_runtime: 61.5, train_loss: 2.3, total_flos: 1e12, epoch: 1, step: 20 },
    ];
    for (const [step, entries] of [[10, history.slice(0, 2)], [20, history]] as const) {
      await Deno.mkdir(`${dir}/trl-run/checkpoint-${step}`, { recursive: true });
      await Deno.writeTextFile(
        `${dir}/trl-run/checkpoint-${step}/trainer_state.json`,
        JSON.stringify({ global_step: step, log_history: entries }),
      );
    }
    const input = await readReportInput(`${dir}/trl-run`);
    assert(input.kind === "run", "a run folder");
    assertEquals(input.run.train.map((r) => [r.step, r.loss]), [[10, 2.5], [20, 2.1]]);
    assertEquals(input.run.eval.map((r) => r.step), [10]);
    assertEquals(input.run.summary?.train_runtime, 61.5);
    // Given as a file, the state means its run; a root trainer_state.json is read before the checkpoints'.
    await Deno.writeTextFile(
      `${dir}/trl-run/trainer_state.json`,
      JSON.stringify({ log_history: history.slice(0, 1) }),
    );
    const root = await readReportInput(`${dir}/trl-run/trainer_state.json`);
    assert(root.kind === "run", "trainer_state.json means its run");
    assertEquals(root.run.train.map((r) => r.step), [10]);
    await Deno.writeTextFile(
      `${dir}/trl-run/trainer_state.json`,
      JSON.stringify({ log_history: [{ step: 1, loss: "x" }] }),
    );
    await assertRejects(
      () => readReportInput(`${dir}/trl-run`),
      ReportInputError,
      'trainer_state.json: log_history[0]: "loss": expected a number',
    );
  });
});

Deno.test("report inputs: a run of the layout before TRL's reads with its evaluation keys renamed", () => {
  const text = '{"step":1,"loss":2,"tokens":10}\n{"step":1,"eval_loss":2.5,"eval_rewards_margins":0.1}\n';
  assertEquals(parseMetricsJsonl(text, "metrics.jsonl").eval, [
    { step: 1, eval_loss: 2.5, "eval_rewards/margins": 0.1 },
  ]);
});
