#!/usr/bin/env -S deno run --no-prompt --allow-read --allow-write --allow-net=127.0.0.1 --allow-env=DENO_WEBGPU_BACKEND,OPENAI_API_KEY --unstable-no-legacy-abort
/**
 * Serve two models over the OpenAI-compatible API and compare their answers pairwise: the paper's Table 1
 * (win / tie / loss rates of A against B, each question judged in both orders).
 *
 *   ./examples/serve_winrate.ts [--a DIR] [--b DIR] [--limit N] [--out DIR] [--judge-url URL --judge-model M]
 *
 * Defaults: A = runs/example-orpo/orpo and B = runs/example-orpo/base (what ./examples/orpo_table2.ts
 * writes), the first 10 bundled Korean instructions, and the offline rule judge (a heuristic that prefers
 * Korean, non-repetitive answers; not a language model). With --judge-url, any OpenAI-compatible judge
 * (key from OPENAI_API_KEY; add its host to --allow-net). About 1 minute on a 2-core CPU.
 * @module
 */
import { parseArgs } from "node:util";
import { KO_PROMPTS, loadEngine, runWinRate, startRuleJudgeServer, startServer } from "../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    a: { type: "string", default: "runs/example-orpo/orpo" },
    b: { type: "string", default: "runs/example-orpo/base" },
    limit: { type: "string", default: "10" },
    out: { type: "string", default: "runs/example-winrate" },
    "judge-url": { type: "string" },
    "judge-model": { type: "string" },
  },
});

// Each model gets its own server on a free port, as `deno task serve --port 0` would run it.
const servers = [];
for (const dir of [values.a, values.b]) {
  // The tiny model's byte-level tokenizer spends many tokens on Korean: give prompts most of its 512.
  const engine = await loadEngine(dir, { maxConcurrent: 2, maxContextTokens: 512 });
  servers.push(
    startServer(engine, {
      port: 0,
      maxConcurrent: 2,
      maxQueue: 32,
      maxPromptTokens: 448,
      maxTokensLimit: 64,
    }),
  );
}
const judge = values["judge-url"]
  ? {
    url: values["judge-url"],
    model: values["judge-model"] ?? "gpt-4o",
    apiKey: Deno.env.get("OPENAI_API_KEY"),
  }
  : startRuleJudgeServer();

// Answers are generated through the servers (cached under OUT/answers), then judged in both orders. The
// results JSONL is resumable: run the script again and finished judgments are kept.
const report = await runWinRate({
  promptsPath: KO_PROMPTS,
  limit: Number(values.limit),
  pairs: [{
    a: { name: "A", source: { kind: "url", url: `${servers[0].url}/v1` } },
    b: { name: "B", source: { kind: "url", url: `${servers[1].url}/v1` } },
  }],
  judge,
  answers: { maxTokens: 48, temperature: 0 },
  resultsPath: `${values.out}/judgments.jsonl`,
  log: (line) => console.error(line),
});
console.log(report.table);

for (const server of servers) await server.close();
if ("close" in judge) await judge.close();
