/**
 * Requests that used to jam the server: settings that passed the API check but failed inside the engine,
 * and an engine that stops answering. Each must get a clear answer, free its slot, and leave the server
 * able to serve and to shut down.
 */
import { loadEngine } from "../../generate/engine.ts";
import { startServer } from "../../serve/server.ts";
import { assert, assertEquals, assertStringIncludes } from "../asserts.ts";
import { GPU_TEST, settlesWithin, testGpu } from "../helpers.ts";
import { writeMicroModel } from "../model/micro_model.ts";
import { FakeEngine, HANG_MARKER } from "./fake_engine.ts";
import { expectIdle, post, postJson, TEST_LIMITS } from "./http.ts";

const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: "micro",
  messages: [{ role: "user", content }],
  max_tokens: 3,
  ...extra,
});

Deno.test(
  "serve (real engine): out-of-range sampling settings get 400 before queueing and jam nothing",
  GPU_TEST,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "serve-jam-" });
    const engine = await loadEngine(await writeMicroModel(`${root}/model`), {
      maxConcurrent: 2,
      maxContextTokens: 128,
      gpu: await testGpu(),
      modelId: "micro",
    });
    const server = startServer(engine, {
      ...TEST_LIMITS,
      maxConcurrent: 2,
      maxQueue: 4,
      maxPromptTokens: 100,
    });
    try {
      const url = `${server.url}/v1/chat/completions`;
      const bad: [Record<string, unknown>, string, string][] = [
        [{ seed: -1 }, "seed", "[0, 2^32)"],
        [{ seed: 2 ** 32 }, "seed", "[0, 2^32)"],
        [{ temperature: -1 }, "temperature", "in [0, 2]"],
        [{ top_k: -3 }, "top_k", ">= 0"],
        [{ repetition_penalty: -1 }, "repetition_penalty", "> 0"],
      ];
      // Four of each at once: more than the slots, as the reported jam needed.
      for (const [extra, param, range] of bad) {
        const answers = await settlesWithin(
          Promise.all(
            Array.from(
              { length: 4 },
              () => postJson(server.url, "/v1/chat/completions", chat("안녕", extra)),
            ),
          ),
          10_000,
          `four requests with ${JSON.stringify(extra)}`,
        );
        for (const a of answers) {
          assertEquals([a.status, a.body.error.param], [400, param], JSON.stringify(extra));
          assertStringIncludes(a.body.error.message, range);
        }
      }
      // A request generating while bad ones arrive is unaffected, and normal requests still get answers.
      const running = fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(chat("한국의 수도는?", { max_tokens: 8, temperature: 0 })),
      });
      const beside = await Promise.all(
        [1, 2, 3].map(() => postJson(server.url, "/v1/chat/completions", chat("x", { seed: -1 }))),
      );
      assert(beside.every((b) => b.status === 400));
      const ok = await settlesWithin(running, 20_000, "a normal request beside bad ones");
      assertEquals(ok.status, 200);
      assertEquals((await ok.json()).object, "chat.completion");
      const after = await settlesWithin(
        postJson(server.url, "/v1/chat/completions", chat("다시", { seed: 7, temperature: 0.8 })),
        20_000,
        "a normal request after the bad ones",
      );
      assertEquals(after.status, 200);
      await expectIdle(server.url);
    } finally {
      await settlesWithin(server.close(), 15_000, "close()");
      engine.close();
      await Deno.remove(root, { recursive: true });
    }
  },
);

Deno.test("serve: /health reports degraded while a generation makes no progress; it recovers", async () => {
  const engine = new FakeEngine({ modelId: "micro" });
  const server = startServer(engine, { ...TEST_LIMITS, stuckAfterMs: 150 });
  try {
    const hung = post(server.url, "/v1/chat/completions", chat(HANG_MARKER));
    await engine.until((e) => e.active === 1);
    await new Promise((r) => setTimeout(r, 300));
    const res = await fetch(`${server.url}/health`);
    const body = await res.json();
    assertEquals([res.status, body.status, body.stuck], [503, "degraded", 1]);
    engine.releaseHung();
    assertEquals((await hung).status, 200);
    await expectIdle(server.url);
  } finally {
    engine.releaseHung();
    await settlesWithin(server.close(), 15_000, "close()");
  }
});

Deno.test("serve: an engine that ignores its abort is abandoned: the client gets its answer and the slot is freed", async () => {
  const engine = new FakeEngine({ modelId: "micro" });
  const server = startServer(engine, {
    ...TEST_LIMITS,
    maxConcurrent: 1,
    requestTimeoutMs: 100,
    stuckAfterMs: 200,
  });
  try {
    const res = await settlesWithin(
      post(server.url, "/v1/chat/completions", chat(HANG_MARKER)),
      5000,
      "the hung request",
    );
    assertEquals(res.status, 504);
    await res.body?.cancel();
    // The slot is free for the next request although the engine still holds the hung call.
    const next = await settlesWithin(
      postJson(server.url, "/v1/chat/completions", chat("hello")),
      5000,
      "the next request",
    );
    assertEquals(next.status, 200);
    const health = await (await fetch(`${server.url}/health`)).json();
    assertEquals([health.running, health.stuck, health.status], [0, 1, "degraded"]);
    engine.releaseHung();
    await engine.until((e) => e.active === 0);
    await expectIdle(server.url);
  } finally {
    engine.releaseHung();
    await settlesWithin(server.close(), 15_000, "close()");
  }
});

Deno.test("serve: close() finishes even when the engine never returns", async () => {
  const engine = new FakeEngine({ modelId: "micro" });
  const server = startServer(engine, { ...TEST_LIMITS, shutdownGraceMs: 50, stuckAfterMs: 100 });
  const hung = post(server.url, "/v1/chat/completions", chat(HANG_MARKER, { stream: true }));
  await engine.until((e) => e.active === 1);
  await settlesWithin(server.close(), 5000, "close()");
  const res = await hung;
  assertStringIncludes(await res.text(), "shutting down");
  engine.releaseHung();
});
