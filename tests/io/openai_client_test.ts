import { OpenAIClient, OpenAIRequestError } from "../../io/openai_client.ts";
import { assertEquals, assertRejects, assertStringIncludes } from "../asserts.ts";

Deno.test("openai client: retries 429 and 5xx with backoff and fails at once on other 4xx", async () => {
  const statuses = [429, 503, 200];
  let calls = 0;
  let badCalls = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.text();
    if (new URL(req.url).pathname.startsWith("/bad")) {
      badCalls++;
      return Response.json({ error: { message: "model is required" } }, { status: 400 });
    }
    const status = statuses[calls++];
    if (status !== 200) {
      return Response.json({ error: { message: `busy ${status}` } }, {
        status,
        headers: { "retry-after": "0" },
      });
    }
    return Response.json({ choices: [{ message: { content: "ok" }, finish_reason: "stop" }] });
  });
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const client = new OpenAIClient({ baseUrl: base, retries: 3, retryBaseMs: 1 });
    assertEquals(client.baseUrl, `${base}/v1`);
    const reply = await client.chat({ model: "m", messages: [{ role: "user", content: "hi" }] });
    assertEquals([reply.content, calls], ["ok", 3]);

    calls = 0;
    statuses.splice(0, 3, 500, 500, 500);
    const tired = new OpenAIClient({ baseUrl: base, retries: 1, retryBaseMs: 1 });
    const err = await assertRejects(
      () => tired.chat({ model: "m", messages: [] }),
      OpenAIRequestError,
      "busy 500",
    );
    assertEquals([(err as OpenAIRequestError).status, calls], [500, 2]);
    assertStringIncludes(err.message, "after 2 attempts");

    const wrong = new OpenAIClient({ baseUrl: `${base}/bad`, retries: 3, retryBaseMs: 1 });
    const bad = await assertRejects(
      () => wrong.chat({ model: "", messages: [] }),
      OpenAIRequestError,
      "HTTP 400",
    );
    assertStringIncludes(bad.message, "model is required");
    assertEquals(badCalls, 1, "a 400 is not retried");
  } finally {
    await server.shutdown();
  }
});
