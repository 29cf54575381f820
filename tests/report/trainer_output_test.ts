/**
 * The report reads what the trainer writes today: a real 3-step ORPO run of the tiny model on the bundled
 * data, made here, then reported on.
 */
import { BUNDLED_DATA, ensureTinyBase } from "../../model/tiny.ts";
import { withDefaults } from "../../train/config.ts";
import { train } from "../../train/trainer.ts";
import { readReportInputs } from "../../report/inputs.ts";
import { buildReport } from "../../report/page.ts";
import { assert, assertEquals } from "../asserts.ts";
import { GPU_TEST, testGpu } from "../helpers.ts";

Deno.test(
  "report of a real training run: every logged metric charted, train and eval",
  GPU_TEST,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "report-train-" });
    try {
      await ensureTinyBase(`${dir}/base`);
      const result = await train(
        withDefaults("orpo", {
          model: `${dir}/base`,
          data: [BUNDLED_DATA.preference.pathname],
          out: `${dir}/orpo-run`,
          maxSteps: 3,
          maxLength: 64,
          batchSize: 4,
          lr: 1e-3,
          evalFraction: 0.05,
          evalEvery: 2,
          logEvery: 1,
        }),
        { gpu: await testGpu(), log: { info: () => {}, progress: () => {} } },
      );
      const inputs = await readReportInputs([`${dir}/orpo-run`]);
      const [run] = inputs.runs;
      assertEquals(run.name, "orpo-run");
      assertEquals(run.config?.max_steps, 3);
      assertEquals(run.train.map((r) => r.step), [1, 2, 3]);
      assertEquals(run.eval.map((r) => r.step), [2, 3]);

      const { html, charts } = await buildReport(inputs);
      assertEquals(charts.map((c) => c.id), [
        "train-loss",
        "train-nll-loss",
        "train-log-odds-ratio",
        "train-rewards-margins",
        "train-learning-rate",
        "train-tokens-per-second",
      ]);
      const loss = charts[0].config.data.datasets as unknown as {
        label: string;
        data: { x: number; y: number }[];
      }[];
      assertEquals(loss.map((d) => d.label), ["orpo-run", "orpo-run (eval)"]);
      // Checked against what train() returned, not against the file the report read.
      assertEquals(loss[0].data[0], { x: 1, y: result.firstLoss! });
      assertEquals(loss[0].data[2], { x: 3, y: result.lastLoss! });
      assertEquals(loss[1].data[1], { x: 3, y: result.lastEvalLoss! });
      for (const chart of charts.slice(1)) {
        const [first] = chart.config.data.datasets;
        assertEquals(first.data.length, 3, `${chart.id}: one point per step`);
      }
      assert(html.includes(`<td>orpo-run</td><td>orpo</td><td class="num">3</td>`), "the run's summary row");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
