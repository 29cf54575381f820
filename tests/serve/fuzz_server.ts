/**
 * The server process of the fuzz test: `deno run --v8-flags=--expose-gc fuzz_server.ts fake|real [MODEL_DIR]`.
 * Serves the fake engine or the GPU engine on a loopback port with the command line's signal handling
 * (`exitOnSignals`), prints `{"url": …}` on stdout once listening, and answers each `memory` line on stdin
 * with its heap use after a full garbage collection, so the test can compare memory before and after.
 * @module
 */
import { loadEngine } from "../../generate/engine.ts";
import type { GenerationEngine } from "../../generate/engine_contract.ts";
import { exitOnSignals, startServer } from "../../serve/server.ts";
import { FakeEngine } from "./fake_engine.ts";

/** The server's limits, shared with the test that drives it. */
export const FUZZ_LIMITS = {
  maxConcurrent: 2,
  maxQueue: 16,
  maxPromptTokens: 100,
  maxTokensLimit: 16,
  maxBodyBytes: 16 * 1024,
  requestTimeoutMs: 20_000,
  shutdownGraceMs: 1000,
  stuckAfterMs: 2000,
} as const;

/** Context of the GPU engine (the fake's is its default, 4096). */
export const REAL_CONTEXT = 128;

async function engineOf(kind: string, modelDir: string | undefined): Promise<GenerationEngine> {
  if (kind === "fake") return new FakeEngine({ modelId: "fuzz", tokenDelayMs: 1, record: false });
  if (kind === "real" && modelDir) {
    return await loadEngine(modelDir, {
      maxConcurrent: FUZZ_LIMITS.maxConcurrent,
      maxContextTokens: REAL_CONTEXT,
      modelId: "fuzz",
    });
  }
  throw new Error("usage: fuzz_server.ts fake | real MODEL_DIR");
}

if (import.meta.main) {
  const [kind, modelDir] = Deno.args;
  const engine = await engineOf(kind, modelDir);
  const server = startServer(engine, { port: 0, ...FUZZ_LIMITS });
  exitOnSignals(server, (line) => console.error(line));
  const out = new TextEncoder();
  const say = (value: unknown) => Deno.stdout.write(out.encode(JSON.stringify(value) + "\n"));
  await say({ url: server.url });
  const gc = (globalThis as { gc?: () => void }).gc;
  let pending = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    for (let i = pending.indexOf("\n"); i >= 0; i = pending.indexOf("\n")) {
      const command = pending.slice(0, i).trim();
      pending = pending.slice(i + 1);
      if (command !== "memory") continue;
      gc?.();
      await say({ heapUsed: Deno.memoryUsage().heapUsed, collected: gc !== undefined });
    }
  }
}
