/**
 * `runKobest` (what `deno task kobest` runs) against bad inputs: everything is checked before the first
 * model is scored, and each model's results reach `--out` as soon as they exist.
 */
import { runKobest } from "../../eval/kobest/run.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../asserts.ts";
import { GPU_TEST, testGpu } from "../helpers.ts";
import { writeMicroModel } from "../model/micro_model.ts";

const DATA = new URL("../../data/kobest_tiny", import.meta.url).pathname;

/** A log that remembers whether scoring started (progress lines say "requests of"). */
function recorder() {
  const lines: string[] = [];
  return {
    lines,
    log: (l: string) => lines.push(l),
    scored: () => lines.some((l) => l.includes("requests of")),
  };
}

Deno.test(
  "kobest run: models, data and output paths are all checked before anything is scored",
  GPU_TEST,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "kobest-run-" });
    try {
      const model = await writeMicroModel(`${root}/model`);
      const base = { tasks: ["copa" as const], limit: 4, dataDir: DATA, gpu: await testGpu() };
      const cases: [string, Parameters<typeof runKobest>[0], string][] = [
        ["a typo in the second --model", { ...base, models: [model, `${root}/modle`] }, `${root}/modle`],
        ["a folder without weights", { ...base, models: [model, root] }, root],
        ["--out naming a folder", { ...base, models: [model], out: root }, `--out ${root}`],
        [
          "--dump_requests naming a folder",
          { ...base, models: [model], dumpRequests: root },
          `--dump_requests ${root}`,
        ],
        [
          "a data folder without KoBEST",
          { ...base, models: [model], dataDir: `${root}/model` },
          `${root}/model`,
        ],
        ["more shots than the train split holds", { ...base, models: [model], shots: [0, 500] }, "500 shots"],
      ];
      for (const [what, options, named] of cases) {
        const r = recorder();
        const err = await assertRejects(() => runKobest({ ...options, log: r.log }), Error);
        assertStringIncludes(err.message, named, what);
        assert(!r.scored(), `${what}: found only after scoring started:\n${r.lines.join("\n")}`);
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

Deno.test(
  "kobest run: each model's results are in --out as soon as that model is scored",
  GPU_TEST,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "kobest-run-" });
    try {
      const first = await writeMicroModel(`${root}/first`, { seed: 1 });
      const second = await writeMicroModel(`${root}/second`, { seed: 2 });
      const out = `${root}/results/kobest.json`;
      let seenWhileSecondRan: unknown;
      const log = (line: string) => {
        if (seenWhileSecondRan === undefined && line.includes(`${second}:`) && line.includes("requests of")) {
          seenWhileSecondRan = JSON.parse(Deno.readTextFileSync(out));
        }
      };
      const { results } = await runKobest({
        models: [first, second],
        tasks: ["copa"],
        limit: 4,
        dataDir: DATA,
        out,
        gpu: await testGpu(),
        log,
      });
      assert(seenWhileSecondRan !== undefined, "the second model's progress was never logged");
      assertEquals((seenWhileSecondRan as { config: { model: string } }).config.model, first);
      const all = JSON.parse(await Deno.readTextFile(out));
      assertEquals(all.map((r: { config: { model: string } }) => r.config.model), [first, second]);
      assertEquals(results.length, 2);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

Deno.test(
  "kobest run: the context window is the model's max_position_embeddings, not 2,048, unless given",
  GPU_TEST,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "kobest-window-" });
    try {
      const model = await writeMicroModel(`${root}/model`);
      const configPath = `${model}/config.json`;
      const config = JSON.parse(await Deno.readTextFile(configPath));
      await Deno.writeTextFile(configPath, JSON.stringify({ ...config, max_position_embeddings: 3000 }));
      const base = {
        models: [model],
        tasks: ["copa" as const],
        limit: 2,
        dataDir: DATA,
        gpu: await testGpu(),
        log: () => {},
      };
      const own = await runKobest(base);
      assertStringIncludes(own.results[0].results.config.model_args, "max_length=3000");
      const given = await runKobest({ ...base, maxLength: 100 });
      assertStringIncludes(given.results[0].results.config.model_args, "max_length=100");
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);
