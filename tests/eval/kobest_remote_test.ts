/**
 * KoBEST scored two ways must agree: locally on the GPU, and through this project's server with
 * lm-evaluation-harness's `local-completions` protocol (`--base_url`); and an adapter folder must score as
 * its merged model does.
 */
import { runKobest } from "../../eval/kobest/run.ts";
import type { RequestRecord } from "../../eval/kobest/evaluate.ts";
import { loadEngine } from "../../generate/engine.ts";
import { parseJsonl } from "../../io/jsonl.ts";
import { startServer } from "../../serve/server.ts";
import { assert, assertAlmostEquals, assertEquals } from "../asserts.ts";
import { GPU_TEST, testGpu } from "../helpers.ts";
import { writeMergedModel, writeMicroAdapter, writeMicroModel } from "../model/micro_model.ts";
import { TEST_LIMITS } from "../serve/http.ts";

const DATA = new URL("../../data/kobest_tiny", import.meta.url).pathname;
const TASKS = ["copa" as const, "sentineg" as const, "wic" as const];

/** The dump's records, in order, without the model name. */
async function records(path: string): Promise<RequestRecord[]> {
  return parseJsonl(await Deno.readTextFile(path), path).map((r) => r.value as unknown as RequestRecord);
}

/** Two scorings of the same requests: the same requests, log-likelihoods within `tol`, identical metrics. */
async function assertSameScores(
  a: { dump: string; results: Awaited<ReturnType<typeof runKobest>>["results"] },
  b: { dump: string; results: Awaited<ReturnType<typeof runKobest>>["results"] },
  tol: number,
): Promise<void> {
  const ra = await records(a.dump), rb = await records(b.dump);
  assertEquals(ra.length, rb.length);
  assert(ra.length > 0, "something was scored");
  ra.forEach((x, i) => {
    const y = rb[i];
    assertEquals([x.task, x.shots, x.docIndex, x.choiceIndex, x.context, x.continuation], [
      y.task,
      y.shots,
      y.docIndex,
      y.choiceIndex,
      y.context,
      y.continuation,
    ]);
    assertAlmostEquals(x.loglikelihood, y.loglikelihood, tol, `request ${i} (${x.task})`);
  });
  assertEquals(a.results.length, b.results.length);
  a.results.forEach((e, i) => {
    for (const [task, metrics] of Object.entries(e.results.results)) {
      const other = b.results[i].results.results[task] as Record<string, unknown>;
      for (const [name, value] of Object.entries(metrics)) {
        if (name.startsWith("acc") || name.startsWith("f1")) {
          assertEquals(value, other[name], `${task} ${name}`);
        }
      }
    }
  });
}

Deno.test("kobest --base_url: scoring through the server equals local scoring", GPU_TEST, async () => {
  const root = await Deno.makeTempDir({ prefix: "kobest-remote-" });
  const gpu = await testGpu();
  const lines: string[] = [];
  try {
    const dir = await writeMicroModel(`${root}/model`);
    // WiC's 1-shot contexts outgrow the micro model's 256 positions; truncation is covered elsewhere.
    const tasks = ["copa" as const, "sentineg" as const];
    const common = { tasks, shots: [0, 1], limit: 8, dataDir: DATA, log: (l: string) => lines.push(l) };
    const local = await runKobest({ ...common, models: [dir], gpu, dumpRequests: `${root}/local.jsonl` });
    const engine = await loadEngine(dir, { maxConcurrent: 2, gpu, modelId: "micro" });
    const server = startServer(engine, {
      ...TEST_LIMITS,
      maxConcurrent: 2,
      maxQueue: 8,
      maxPromptTokens: 255,
    });
    try {
      const remote = await runKobest({
        ...common,
        models: ["micro"],
        remote: { baseUrl: `${server.url}/v1`, tokenizer: dir, concurrency: 2 },
        batchSize: 5,
        dumpRequests: `${root}/remote.jsonl`,
      });
      assert(
        !lines.some((l) => l.includes("longer than max_length")),
        "no context was cut:\n" + lines.join("\n"),
      );
      await assertSameScores(
        { dump: `${root}/local.jsonl`, results: local.results },
        { dump: `${root}/remote.jsonl`, results: remote.results },
        1e-4,
      );
      assertEquals(
        remote.results[0].results.config.model_args.startsWith(`base_url=${server.url}/v1/completions`),
        true,
      );
    } finally {
      await server.close();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("kobest: an adapter folder scores as its merged model does", GPU_TEST, async () => {
  const root = await Deno.makeTempDir({ prefix: "kobest-adapter-" });
  const gpu = await testGpu();
  try {
    const base = await writeMicroModel(`${root}/base`);
    const adapter = await writeMicroAdapter(`${root}/adapter`, base);
    const merged = await writeMergedModel(`${root}/merged`, base, adapter);
    const common = { tasks: TASKS, shots: [0], limit: 8, dataDir: DATA, gpu, log: () => {} };
    const a = await runKobest({ ...common, models: [adapter], dumpRequests: `${root}/a.jsonl` });
    const m = await runKobest({ ...common, models: [merged], dumpRequests: `${root}/m.jsonl` });
    await runKobest({ ...common, models: [base], dumpRequests: `${root}/b.jsonl` });
    await assertSameScores({ dump: `${root}/a.jsonl`, results: a.results }, {
      dump: `${root}/m.jsonl`,
      results: m.results,
    }, 1e-4);
    // The adapter changes the scores: the comparison is not between two copies of the base.
    const withAdapter = await records(`${root}/a.jsonl`), plain = await records(`${root}/b.jsonl`);
    const differs = withAdapter.some((r, i) => Math.abs(r.loglikelihood - plain[i].loglikelihood) > 1e-3);
    assert(differs, "the adapter moves the log-likelihoods");
    assertEquals(a.results[0].results.config.model_args.includes(`peft=${adapter}`), true);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
