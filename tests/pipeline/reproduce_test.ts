import { RULE_JUDGE_MODEL } from "../../eval/winrate/rule_judge.ts";
import { reproduce, type ReproduceResult } from "../../pipeline/reproduce.ts";
import { KO_PROMPTS, KOBEST_TINY_DIR, type ReproduceSettings } from "../../pipeline/settings.ts";
import { readManifest } from "../../pipeline/stages.ts";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../asserts.ts";
import { GPU_TEST, testGpu } from "../helpers.ts";
import { writeMicroModel } from "../model/micro_model.ts";

/** A test-sized preset: the micro model, a couple of steps per objective, 2 KoBEST documents, 3 prompts. */
function microSettings(model: string, out: string): ReproduceSettings {
  const training = { maxLength: 96, batchSize: 4, maxSteps: 2, lr: 1e-3, saveEvery: 1, saveTotalLimit: 1 };
  return {
    preset: "micro (test)",
    model,
    buildTinyBase: false,
    out,
    trainDocs: 4,
    kobestDir: KOBEST_TINY_DIR,
    kobestLimit: 2,
    shots: [0, 5],
    kobestBatchSize: 16,
    prompts: KO_PROMPTS,
    promptsLimit: 3,
    answerMaxTokens: 6,
    answerContext: 256,
    dpo: true,
    judge: { kind: "rule" },
    train: { sft: { ...training }, orpo: { ...training }, dpo: { ...training, lr: 1e-4 } },
    needs: "the CPU adapter",
  };
}

const ran = (r: ReproduceResult) => r.outcomes.filter((o) => o.action === "ran").map((o) => o.name);

const ALL_STAGES = [
  "base",
  "data",
  "sft",
  "orpo",
  "dpo",
  "kobest-pt",
  "kobest-sft",
  "kobest-orpo",
  "kobest-dpo",
  "table2",
  "answers-pt",
  "answers-sft",
  "answers-orpo",
  "answers-dpo",
  "winrate",
  "report",
];

Deno.test(
  "reproduce: both tables and the report, every stage resumable, reruns only what changed",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const root = await Deno.makeTempDir();
    const settings = microSettings(await writeMicroModel(`${root}/base`), `${root}/run`);
    const run = (s: ReproduceSettings) => reproduce(s, { gpu, log: () => {} });

    // First run: everything, from the micro base model.
    const first = await run(settings);
    assertEquals(ran(first), ALL_STAGES);
    assertEquals(first.work.trainingSteps, 6, "2 steps each of SFT, ORPO and DPO");
    assertEquals(first.work.judgeCalls, 3 * 3 * 2, "3 pairs × 3 prompts × both orders");
    assertEquals(first.work.answersGenerated, 4 * 3);
    for (const [a, b] of [["SFT", "PT"], ["SFT", "ORPO"], ["DPO", "SFT"]]) {
      assertMatch(
        first.table1!,
        new RegExp(`^\\| ${a} \\| ${b} \\| .*\\| 3 \\| 0 \\| 0 \\|$`, "m"),
        `${a} vs ${b}`,
      );
    }
    assertStringIncludes(first.table1!, RULE_JUDGE_MODEL);
    assertStringIncludes(first.table1!, "not a language model");
    for (const model of ["PT", "SFT", "ORPO", "DPO"]) {
      for (const shots of [0, 5]) {
        assertMatch(
          first.table2,
          new RegExp(`^\\| ${model} \\| ${shots} \\| `, "m"),
        );
      }
    }
    assertEquals(await Deno.readTextFile(`${root}/run/kobest/table2.md`), first.table2);
    const html = await Deno.readTextFile(first.report);
    for (const text of [RULE_JUDGE_MODEL, "ORPO", "DPO", "micro (test)"]) assertStringIncludes(html, text);
    const manifest = await readManifest(first.manifest);
    assertEquals(manifest.stage_order, ALL_STAGES);
    for (const name of ALL_STAGES) assertEquals(manifest.stages[name].status, "complete", name);

    // Second run: every stage complete, nothing loaded, trained or judged.
    const second = await run(settings);
    assertEquals(ran(second), []);
    assertEquals(second.work, { trainingSteps: 0, kobestModels: 0, answersGenerated: 0, judgeCalls: 0 });
    assert(second.seconds < 3, `a complete pipeline took ${second.seconds.toFixed(1)} s to check`);
    assertEquals([second.table1, second.table2], [first.table1, first.table2]);

    // A removed output: that stage and what reads it.
    await Deno.remove(`${root}/run/kobest/sft.json`);
    const third = await run(settings);
    assertEquals(ran(third), ["kobest-sft", "table2", "report"]);
    assertEquals(third.work.kobestModels, 1);

    // A changed setting: ORPO retrains from scratch, and only ORPO's evaluations and what reads them rerun.
    const longer = microSettings(settings.model, settings.out);
    longer.train.orpo.maxSteps = 3;
    const fourth = await run(longer);
    assertEquals(ran(fourth), ["orpo", "kobest-orpo", "table2", "answers-orpo", "winrate", "report"]);
    assertEquals(fourth.work.trainingSteps, 3);
    assert(fourth.work.judgeCalls <= 3 * 2, "only SFT vs ORPO can need new judgments");
    const orpo = await readManifest(fourth.manifest);
    assertEquals(orpo.stages.orpo.result, {
      dir: `${root}/run/orpo`,
      run_dir: `${root}/run/orpo`,
      steps: 3,
    });
  },
);
