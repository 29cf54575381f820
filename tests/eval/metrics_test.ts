import {
  argmax,
  codePointLength,
  macroF1,
  mean,
  meanStderr,
  pooledSampleStderr,
  scoreChoices,
  weightedMean,
} from "../../eval/kobest/metrics.ts";
import {
  buildLmEvalResults,
  type DocScore,
  groupRow,
  kobestMarkdownTable,
  type RunConfig,
  scoreTask,
} from "../../eval/kobest/results.ts";
import { assertAlmostEquals, assertEquals, assertThrows } from "../asserts.ts";

Deno.test("metrics: macro F1 by hand, including a class that is never predicted", () => {
  // class 0: tp 2, fp 2 -> 4/6; class 1: tp 0, fn 2 -> 0; mean 1/3.
  assertAlmostEquals(macroF1([0, 0, 1, 1], [0, 0, 0, 0]), 1 / 3, 1e-15);
  // A label only among the predictions still counts: class 0: 4/5; class 1: tp 0, fp 1 -> 0; mean 0.4.
  assertAlmostEquals(macroF1([0, 0, 0], [0, 1, 0]), 0.4, 1e-15);
  // Four classes (HellaSwag): 1, 0, 2/3, 2/3 -> 7/12.
  assertAlmostEquals(macroF1([0, 1, 2, 3, 3], [0, 2, 2, 3, 1]), 7 / 12, 1e-15);
  assertEquals(macroF1([0, 1, 1], [0, 1, 1]), 1);
  assertThrows(() => macroF1([0], [0, 1]), Error, "1 golds but 2 predictions");
});

Deno.test("metrics: mean and lm-eval's mean_stderr (sample stddev / sqrt(n))", () => {
  assertEquals(mean([1, 0, 1, 1]), 0.75);
  // Values from Python: math.sqrt(sum((x - mu) ** 2 for x in a) / (len(a) - 1)) / math.sqrt(len(a))
  assertEquals(meanStderr([1, 0, 1, 1]), 0.25);
  assertEquals(meanStderr([1, 0]), 0.5);
  assertEquals(meanStderr([1]), "N/A");
});

Deno.test("metrics: size-weighted group mean and pooled stderr", () => {
  assertEquals(weightedMean([0.5, 1], [100, 300]), 0.875);
  // Python: math.sqrt((999 * 0.01**2 * 1000 + 499 * 0.02**2 * 500) / 1498 / 1500)
  assertAlmostEquals(pooledSampleStderr([0.01, 0.02], [1000, 500]) as number, 0.009427303659828457, 1e-17);
  assertEquals(pooledSampleStderr([0.01, "N/A"], [10, 10]), "N/A");
});

Deno.test("metrics: argmax keeps the first maximum; acc_norm divides by the choice's characters", () => {
  assertEquals(argmax([-2, -1, -1]), 1);
  // lls [-3, -2]: raw argmax 1; per character -3/3 = -1 beats -2/1 = -2, so the normalised pick is 0.
  assertEquals(scoreChoices([-3, -2], ["가나다", "라"], 0), { pred: 1, predNorm: 0, acc: 0, accNorm: 1 });
  // Python's len counts code points: an astral character is one, not two UTF-16 units.
  assertEquals(codePointLength("a😀b"), 3);
  assertThrows(() => scoreChoices([-1], ["a", "b"], 0), Error, "1 log-likelihoods for 2 choices");
});

/** Documents whose predictions are `preds` (the chosen choice gets log-likelihood -1, others -5). */
function docs(golds: number[], preds: number[], choices: string[]): DocScore[] {
  return golds.map((gold, i) => ({
    gold,
    choices,
    loglikelihoods: choices.map((_, c) => (c === preds[i] ? -1 : -5)),
  }));
}

const CONFIG: RunConfig = {
  model: "fake",
  model_args: "",
  batch_size: 8,
  limit: null,
  bootstrap_iters: 100000,
  fewshot_seed: 1234,
  split: "test",
  add_special_tokens: "default",
};

Deno.test("results: task scores, the kobest group and lm-eval's layout", () => {
  const boolq = scoreTask("boolq", docs([1, 0, 1, 1], [1, 0, 1, 0], ["아니오", "예"]));
  const copa = scoreTask("copa", docs([0, 1], [0, 0], ["하나", "둘"]));
  assertEquals(boolq.acc, 0.75);
  assertEquals(boolq.accStderr, 0.25);
  assertAlmostEquals(boolq.f1, (2 / 3 + 4 / 5) / 2, 1e-15);
  assertEquals(boolq.accNorm, undefined);
  assertAlmostEquals(copa.f1, 1 / 3, 1e-15);

  const out = buildLmEvalResults({ scores: [copa, boolq], shots: 5, config: CONFIG, date: 1700000000.5 });
  assertEquals(Object.keys(out.results), ["kobest", "kobest_boolq", "kobest_copa"]);
  assertEquals(out.results.kobest_boolq, {
    alias: "kobest_boolq",
    "acc,none": 0.75,
    "acc_stderr,none": 0.25,
    "f1,none": boolq.f1,
    "f1_stderr,none": "N/A",
  });
  const group = out.groups.kobest;
  assertAlmostEquals(group["acc,none"] as number, 4 / 6, 1e-15);
  assertAlmostEquals(group["f1,none"] as number, 0.6, 1e-15);
  // Python: pooled_sample_stderr([0.25, 0.5], [4, 2])
  assertAlmostEquals(group["acc_stderr,none"] as number, 0.22821773229381923, 1e-16);
  assertEquals(group["f1_stderr,none"], "N/A");
  assertEquals(out.group_subtasks, { kobest: ["kobest_boolq", "kobest_copa"] });
  assertEquals(out["n-shot"], { kobest: 5, kobest_boolq: 5, kobest_copa: 5 });
  assertEquals(out["n-samples"].kobest_copa, { original: 2, effective: 2 });
  assertEquals(out.versions.kobest_boolq, 1.0);
  assertEquals(out.configs.kobest_boolq.doc_to_text, "{{paragraph}} 질문: {{question}} 답변: ");
  assertEquals(out.configs.kobest_boolq.num_fewshot, 5);
  assertEquals(out.config.fewshot_seed, 1234);
  assertEquals(out.date, 1700000000.5);
});

Deno.test("results: acc_norm only for HellaSwag; one task alone has no group", () => {
  const hs = scoreTask("hellaswag", [{
    gold: 0,
    choices: ["가나다", "라", "마", "바"],
    loglikelihoods: [-3, -2, -9, -9],
  }]);
  assertEquals([hs.acc, hs.accNorm, hs.accNormStderr], [0, 1, "N/A"]);
  const out = buildLmEvalResults({ scores: [hs], shots: 0, config: CONFIG, date: 0 });
  assertEquals(out.groups, {});
  assertEquals(out.results.kobest_hellaswag["acc_norm,none"], 1);
  assertEquals(groupRow([hs])["acc_norm,none"], 1);
});

Deno.test("results: Markdown table of model x shots with the weighted average", () => {
  const boolq = scoreTask("boolq", docs([1, 0, 1, 1], [1, 0, 1, 0], ["아니오", "예"]));
  const copa = scoreTask("copa", docs([0, 1], [0, 0], ["하나", "둘"]));
  const both = buildLmEvalResults({ scores: [boolq, copa], shots: 0, config: CONFIG, date: 0 });
  const onlyBoolq = buildLmEvalResults({ scores: [boolq], shots: 5, config: CONFIG, date: 0 });
  assertEquals(
    kobestMarkdownTable([{ model: "base", results: both }, { model: "tuned", results: onlyBoolq }]),
    [
      "| Model | Shots | BoolQ F1 (acc) | COPA F1 (acc) | Avg F1 (acc) |",
      "|---|---|---:|---:|---:|",
      "| base | 0 | 0.733 (0.750) | 0.333 (0.500) | 0.600 (0.667) |",
      "| tuned | 5 | 0.733 (0.750) | – | 0.733 (0.750) |",
    ].join("\n"),
  );
});
