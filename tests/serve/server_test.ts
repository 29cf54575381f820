import { startServer } from "../../serve/server.ts";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../asserts.ts";
import { FAIL_MARKER, FakeEngine, fakeTokens } from "./fake_engine.ts";
import { expectIdle, post, postJson, sseEvents, withServer } from "./http.ts";

const REPLY = "하나 둘 셋 넷 다섯 여섯";
const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: "fake-model",
  messages: [{ role: "system", content: "간결하게" }, { role: "user", content }],
  ...extra,
});

Deno.test("serve: a chat completion has OpenAI's shape, usage and the engine's sampling settings", async () => {
  const engine = new FakeEngine({ reply: () => REPLY });
  await withServer(engine, {}, async (url) => {
    const { status, body } = await postJson(
      url,
      "/v1/chat/completions",
      chat("안녕", {
        temperature: 0.5,
        top_p: 0.9,
        top_k: 40,
        frequency_penalty: 0.4,
        seed: 7,
        max_tokens: 50,
      }),
    );
    assertEquals(status, 200);
    assertMatch(body.id, /^chatcmpl-[0-9a-f]{32}$/);
    assertEquals(body.object, "chat.completion");
    assert(Number.isInteger(body.created) && Math.abs(body.created - Date.now() / 1000) < 60, "created");
    assertEquals(body.model, "fake-model");
    assertEquals(body.choices, [{
      index: 0,
      message: { role: "assistant", content: REPLY },
      logprobs: null,
      finish_reason: "stop",
    }]);
    const prompt = "<|system|>간결하게\n<|user|>안녕\n<|assistant|>";
    const promptTokens = engine.countTokens(prompt);
    assertEquals(body.usage, {
      prompt_tokens: promptTokens,
      completion_tokens: 6,
      total_tokens: promptTokens + 6,
    });
    assertEquals(engine.requests[0], {
      prompt,
      maxTokens: 50,
      temperature: 0.5,
      topP: 0.9,
      topK: 40,
      repetitionPenalty: 1,
      frequencyPenalty: 0.4,
      presencePenalty: 0,
      stop: [],
      seed: 7,
    });
  });
});

Deno.test("serve: a streamed chat completion sends the role first, the text, the finish, usage and [DONE]", async () => {
  const engine = new FakeEngine({ reply: () => REPLY });
  await withServer(engine, {}, async (url) => {
    const res = await post(
      url,
      "/v1/chat/completions",
      chat("안녕", { stream: true, stream_options: { include_usage: true } }),
    );
    assertEquals(res.status, 200);
    assertStringIncludes(res.headers.get("content-type") ?? "", "text/event-stream");
    // deno-lint-ignore no-explicit-any
    const events = sseEvents(await res.text()) as any[];
    assertEquals(events.at(-1), "[DONE]");
    const chunks = events.slice(0, -1);
    const id = chunks[0].id;
    assert(chunks.every((c) => c.id === id && c.object === "chat.completion.chunk"), "one id, chunk objects");
    assertEquals(chunks[0].choices[0].delta, { role: "assistant", content: "" });
    assertEquals(chunks[0].usage, null, "usage is null until the usage chunk");
    const text = chunks.slice(1, -2).map((c) => c.choices[0].delta.content).join("");
    assertEquals(text, REPLY);
    assertEquals(chunks.at(-2).choices[0], { index: 0, delta: {}, logprobs: null, finish_reason: "stop" });
    assertEquals(chunks.at(-1).choices, []);
    assertEquals(chunks.at(-1).usage.completion_tokens, 6);
    assertEquals(chunks.at(-1).usage.total_tokens, chunks.at(-1).usage.prompt_tokens + 6);
  });
});

Deno.test("serve: text completions default to 16 tokens and stream without usage unless asked", async () => {
  const long = Array.from({ length: 30 }, (_, i) => `w${i}`).join(" ");
  const engine = new FakeEngine({ reply: () => long });
  await withServer(engine, {}, async (url) => {
    const { status, body } = await postJson(url, "/v1/completions", {
      model: "fake-model",
      prompt: "옛날 옛적에",
    });
    assertEquals(status, 200);
    assertMatch(body.id, /^cmpl-/);
    assertEquals(body.object, "text_completion");
    assertEquals(body.choices[0].finish_reason, "length");
    assertEquals(body.choices[0].text, fakeTokens(long).slice(0, 16).join(""));
    assertEquals(body.usage, { prompt_tokens: 2, completion_tokens: 16, total_tokens: 18 });
    assertEquals(engine.requests[0].prompt, "옛날 옛적에", "no chat template on text completions");

    const res = await post(url, "/v1/completions", {
      model: "fake-model",
      prompt: ["옛날"],
      max_tokens: 3,
      stream: true,
    });
    // deno-lint-ignore no-explicit-any
    const events = sseEvents(await res.text()) as any[];
    assertEquals(events.at(-1), "[DONE]");
    const chunks = events.slice(0, -1);
    assert(chunks.every((c) => c.object === "text_completion" && !("usage" in c)), "no usage field");
    assertEquals(chunks.map((c) => c.choices[0].text).join(""), "w0 w1 w2 ");
    assertEquals(chunks.at(-1).choices[0].finish_reason, "length");
    assertEquals(chunks.slice(0, -1).map((c) => c.choices[0].finish_reason), [null, null, null]);
  });
});

Deno.test("serve: stop strings cut the text even when they span tokens, streamed or not", async () => {
  const engine = new FakeEngine({ reply: () => "one two three four" });
  await withServer(engine, {}, async (url) => {
    const plain = await postJson(url, "/v1/chat/completions", chat("x", { stop: "o th" }));
    assertEquals(plain.body.choices[0].message.content, "one tw");
    assertEquals(plain.body.choices[0].finish_reason, "stop");
    assertEquals(plain.body.usage.completion_tokens, 2, "tokens of the text actually returned");
    assertEquals(engine.aborts, 1, "the engine was stopped at the stop string");

    const res = await post(url, "/v1/chat/completions", chat("x", { stop: ["zzz", "three"], stream: true }));
    // deno-lint-ignore no-explicit-any
    const events = sseEvents(await res.text()) as any[];
    const text = events.slice(1, -2).map((c) => c.choices[0].delta.content).join("");
    assertEquals(text, "one two ");
    assertEquals(events.at(-2).choices[0].finish_reason, "stop");
  });
});

Deno.test("serve: malformed requests get 400 naming the field; unknown model and route 404; wrong method 405", async () => {
  const engine = new FakeEngine();
  await withServer(engine, { modelAliases: ["alias"] }, async (url) => {
    const cases: [unknown, number, string | null, string][] = [
      ["{not json", 400, null, "invalid_json"],
      ["", 400, null, "invalid_json"],
      [[1, 2], 400, null, "invalid_type"],
      [chat("x", { temperature: "hot" }), 400, "temperature", "invalid_value"],
      [chat("x", { temperature: 2.5 }), 400, "temperature", "invalid_value"],
      [chat("x", { top_p: 0 }), 400, "top_p", "invalid_value"],
      [chat("x", { top_k: 1.5 }), 400, "top_k", "invalid_value"],
      [chat("x", { max_tokens: 0 }), 400, "max_tokens", "invalid_value"],
      [chat("x", { max_completion_tokens: 501 }), 400, "max_tokens", "invalid_value"],
      [chat("x", { n: 0 }), 400, "n", "invalid_value"],
      [chat("x", { stream: "yes" }), 400, "stream", "invalid_value"],
      [chat("x", { stream_options: { include_usage: true } }), 400, "stream_options", "invalid_value"],
      [chat("x", { stop: ["a", "b", "c", "d", "e"] }), 400, "stop", "invalid_value"],
      [chat("x", { presence_penalty: -2.5 }), 400, "presence_penalty", "invalid_value"],
      [chat("x", { logprobs: true }), 400, "logprobs", "unsupported_parameter"],
      [{ model: "fake-model", messages: [] }, 400, "messages", "invalid_type"],
      [
        { model: "fake-model", messages: [{ role: "robot", content: "x" }] },
        400,
        "messages[0].role",
        "invalid_value",
      ],
      [
        { model: "fake-model", messages: [{ role: "user", content: 5 }] },
        400,
        "messages[0].content",
        "invalid_type",
      ],
      [
        { model: "fake-model", messages: [{ role: "assistant", content: "x" }] },
        400,
        "messages",
        "invalid_messages",
      ],
      [{ messages: [{ role: "user", content: "x" }] }, 400, "model", "invalid_type"],
      [chat("x", { model: "gpt-4" }), 404, "model", "model_not_found"],
    ];
    for (const [body, status, param, code] of cases) {
      const res = await postJson(url, "/v1/chat/completions", body);
      const what = `body ${JSON.stringify(body)}`;
      assertEquals(res.status, status, what);
      assertEquals(Object.keys(res.body.error).sort(), ["code", "message", "param", "type"], what);
      assertEquals([res.body.error.param, res.body.error.code], [param, code], what);
      if (param) assertStringIncludes(res.body.error.message, param.replace(/\[.*/, ""), what);
    }
    // The fake engine gives no log-probabilities, so token-id prompts and echo are refused, naming the field.
    const idPrompt = await postJson(url, "/v1/completions", { model: "fake-model", prompt: [1, 2, 3] });
    assertEquals([idPrompt.status, idPrompt.body.error.param], [400, "prompt"]);
    const echo = await postJson(url, "/v1/completions", { model: "fake-model", prompt: "a", echo: true });
    assertEquals([echo.status, echo.body.error.param], [400, "echo"]);
    const viaAlias = await postJson(url, "/v1/chat/completions", chat("x", { model: "alias" }));
    assertEquals(viaAlias.status, 200, "an alias is accepted");
    assertEquals(viaAlias.body.model, "fake-model");

    const unknown = await postJson(url, "/v1/embeddings", {});
    assertEquals([unknown.status, unknown.body.error.code], [404, "unknown_route"]);
    const wrongMethod = await fetch(`${url}/v1/chat/completions`);
    assertEquals(wrongMethod.status, 405);
    assertEquals(wrongMethod.headers.get("allow"), "POST");
    assertEquals((await wrongMethod.json()).error.code, "method_not_allowed");
    const models = await (await fetch(`${url}/v1/models`)).json();
    assertEquals(models.object, "list");
    assertEquals(models.data.map((m: { id: string }) => m.id), ["fake-model", "alias"]);
  });
});

Deno.test("serve: oversize prompts and bodies get 413; an engine failure gets 500 and the server stays up", async () => {
  const engine = new FakeEngine({ maxContextTokens: 60 });
  await withServer(engine, { maxPromptTokens: 40, maxBodyBytes: 2000 }, async (url) => {
    const words = (n: number) => Array.from({ length: n }, () => "말").join(" ");
    const long = await postJson(url, "/v1/chat/completions", chat(words(50)));
    assertEquals([long.status, long.body.error.param, long.body.error.code], [
      413,
      "messages",
      "context_length_exceeded",
    ]);
    assertStringIncludes(long.body.error.message, "at most 40");
    const longText = await postJson(url, "/v1/completions", { model: "fake-model", prompt: words(41) });
    assertEquals([longText.status, longText.body.error.param], [413, "prompt"]);
    const fits = await postJson(url, "/v1/completions", { model: "fake-model", prompt: words(40) });
    assertEquals(fits.status, 200, "a prompt at the limit is accepted");
    const overflow = await postJson(url, "/v1/completions", {
      model: "fake-model",
      prompt: words(40),
      max_tokens: 21,
    });
    assertEquals([overflow.status, overflow.body.error.code], [400, "context_length_exceeded"]);
    const big = await postJson(url, "/v1/completions", { model: "fake-model", prompt: "x".repeat(3000) });
    assertEquals([big.status, big.body.error.code], [413, "request_too_large"]);

    const failed = await postJson(url, "/v1/chat/completions", chat(FAIL_MARKER));
    assertEquals([failed.status, failed.body.error.type, failed.body.error.code], [
      500,
      "server_error",
      "engine_error",
    ]);
    assertStringIncludes(failed.body.error.message, "simulated device lost");
    const streamFail = await post(url, "/v1/chat/completions", chat(FAIL_MARKER, { stream: true }));
    // deno-lint-ignore no-explicit-any
    const events = sseEvents(await streamFail.text()) as any[];
    assertEquals(events.at(-1).error.code, "engine_error", "a failure mid-stream ends with an error event");
    await expectIdle(url);
    const after = await postJson(url, "/v1/chat/completions", chat("still there?"));
    assertEquals(after.status, 200);
  });
});

Deno.test("serve: past maxConcurrent requests queue in order, past maxQueue they get 429", async () => {
  const engine = new FakeEngine({ reply: (p) => `answer to ${p.split("<|user|>")[1]}` });
  let open!: () => void;
  engine.gate = new Promise((resolve) => open = resolve);
  await withServer(engine, { maxConcurrent: 1, maxQueue: 1 }, async (url) => {
    const first = postJson(url, "/v1/chat/completions", chat("first"));
    await engine.until((e) => e.active === 1);
    const second = postJson(url, "/v1/chat/completions", chat("second"));
    await waitForHealth(url, (h) => h.queued === 1);
    const third = await postJson(url, "/v1/chat/completions", chat("third"));
    assertEquals([third.status, third.body.error.type, third.body.error.code], [
      429,
      "rate_limit_error",
      "queue_full",
    ]);
    assertEquals(third.headers.get("retry-after"), "1");
    open();
    const [a, b] = await Promise.all([first, second]);
    assertEquals([a.status, b.status], [200, 200]);
    assertStringIncludes(a.body.choices[0].message.content, "first");
    assertStringIncludes(b.body.choices[0].message.content, "second");
    assertEquals(engine.peakActive, 1, "never more than maxConcurrent at once");
    assertEquals(engine.requests.length, 2, "the rejected request never reached the engine");
  });
});

Deno.test("serve: an API key is required on /v1 when configured; /health stays open", async () => {
  const engine = new FakeEngine();
  await withServer(engine, { apiKey: "s3cret" }, async (url) => {
    const none = await postJson(url, "/v1/chat/completions", chat("x"));
    assertEquals([none.status, none.body.error.code], [401, "invalid_api_key"]);
    const wrong = await postJson(url, "/v1/chat/completions", chat("x"), { authorization: "Bearer s3cres" });
    assertEquals(wrong.status, 401);
    const models = await fetch(`${url}/v1/models`);
    assertEquals(models.status, 401);
    await models.body?.cancel();
    const right = await postJson(url, "/v1/chat/completions", chat("x"), { authorization: "Bearer s3cret" });
    assertEquals(right.status, 200);
    assertEquals(engine.requests.length, 1);
  });
});

Deno.test("serve: a client that leaves mid-stream stops its generation and frees its slot", async () => {
  const long = Array.from({ length: 2000 }, (_, i) => `t${i}`).join(" ");
  const engine = new FakeEngine({ reply: () => long, tokenDelayMs: 2 });
  await withServer(engine, { maxConcurrent: 1, maxQueue: 0 }, async (url) => {
    const res = await post(url, "/v1/chat/completions", chat("x", { stream: true }));
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let seen = "";
    while (!seen.includes("t3")) seen += decoder.decode((await reader.read()).value);
    await reader.cancel();
    await engine.until((e) => e.aborts === 1 && e.active === 0);
    await waitForHealth(url, (h) => h.running === 0);
    const next = await postJson(url, "/v1/chat/completions", chat("again", { max_tokens: 2 }));
    assertEquals(next.status, 200, "the slot was freed");
  });
});

Deno.test("serve: a client that leaves while waiting or before a plain answer frees everything", async () => {
  const engine = new FakeEngine();
  let open!: () => void;
  engine.gate = new Promise((resolve) => open = resolve);
  await withServer(engine, { maxConcurrent: 1, maxQueue: 1 }, async (url) => {
    const runningCtl = new AbortController();
    const running = post(url, "/v1/chat/completions", chat("running"), { signal: runningCtl.signal });
    await engine.until((e) => e.active === 1);
    const queuedCtl = new AbortController();
    const queued = post(url, "/v1/chat/completions", chat("queued"), { signal: queuedCtl.signal });
    await waitForHealth(url, (h) => h.queued === 1);
    queuedCtl.abort();
    await queued.catch(() => {});
    await waitForHealth(url, (h) => h.queued === 0);
    runningCtl.abort();
    await running.catch(() => {});
    await engine.until((e) => e.aborts === 1 && e.active === 0);
    open();
    assertEquals(engine.requests.length, 1, "the queued request never started");
  });
});

Deno.test("serve: requestTimeoutMs aborts the generation with 504", async () => {
  const engine = new FakeEngine();
  engine.gate = new Promise(() => {});
  await withServer(engine, { requestTimeoutMs: 100 }, async (url) => {
    const res = await postJson(url, "/v1/chat/completions", chat("x"));
    assertEquals([res.status, res.body.error.code], [504, "timeout"]);
    assertEquals(engine.aborts, 1);
  });
});

Deno.test("serve: close() lets running generations finish, then stops accepting", async () => {
  const engine = new FakeEngine({ reply: () => REPLY, tokenDelayMs: 10 });
  const server = startServer(engine, {
    port: 0,
    maxConcurrent: 2,
    maxQueue: 2,
    maxPromptTokens: 100,
    maxTokensLimit: 100,
  });
  const pending = postJson(server.url, "/v1/chat/completions", chat("x"));
  await engine.until((e) => e.active === 1);
  await server.close();
  const done = await pending;
  assertEquals([done.status, done.body.choices[0].message.content], [200, REPLY]);
  let refused = false;
  await fetch(`${server.url}/health`).then((r) => r.body?.cancel(), () => refused = true);
  assert(refused, "no connections after close");
});

Deno.test("serve: close() aborts generations still running after the grace period", async () => {
  const engine = new FakeEngine();
  engine.gate = new Promise(() => {});
  const server = startServer(engine, {
    port: 0,
    maxConcurrent: 2,
    maxQueue: 2,
    maxPromptTokens: 100,
    maxTokensLimit: 100,
    shutdownGraceMs: 50,
  });
  const plain = postJson(server.url, "/v1/chat/completions", chat("x"));
  const streamed = post(server.url, "/v1/chat/completions", chat("y", { stream: true }));
  await engine.until((e) => e.active === 2);
  await server.close();
  const p = await plain;
  assertEquals([p.status, p.body.error.code], [503, "shutting_down"]);
  // deno-lint-ignore no-explicit-any
  const events = sseEvents(await (await streamed).text()) as any[];
  assertEquals(events.at(-1).error.code, "shutting_down");
  assertEquals(engine.aborts, 2);
});

async function waitForHealth(
  url: string,
  // deno-lint-ignore no-explicit-any
  pred: (h: any) => boolean,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const h = await (await fetch(`${url}/health`)).json();
    if (pred(h)) return;
    if (Date.now() > deadline) throw new Error(`health never matched: ${JSON.stringify(h)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("serve: n choices and several prompts are numbered as OpenAI numbers them, streamed or not", async () => {
  const engine = new FakeEngine({ reply: (p) => `답: ${p}` });
  await withServer(engine, { maxConcurrent: 1 }, async (url) => {
    const { status, body } = await postJson(url, "/v1/completions", {
      model: "fake-model",
      prompt: ["가", "나 다"],
      n: 2,
      max_tokens: 5,
      seed: 3,
    });
    assertEquals(status, 200, JSON.stringify(body));
    assertEquals(
      body.choices.map((c: { index: number; text: string }) => [c.index, c.text]),
      [[0, "답: 가"], [1, "답: 가"], [2, "답: 나 다"], [3, "답: 나 다"]],
    );
    // Each prompt counts once; each choice's tokens count.
    assertEquals(body.usage, { prompt_tokens: 3, completion_tokens: 2 + 2 + 3 + 3, total_tokens: 13 });
    // The choices of one prompt share its seed and differ in their random stream.
    const seeds = engine.requests.map((r) => [r.prompt, r.seed, r.choice ?? 0]);
    assertEquals(seeds, [["가", 3, 0], ["가", 3, 1], ["나 다", 3, 0], ["나 다", 3, 1]]);

    const res = await post(url, "/v1/chat/completions", chat("x", { n: 3, stream: true }));
    // deno-lint-ignore no-explicit-any
    const chunks = (sseEvents(await res.text()) as any[]).slice(0, -1);
    for (const index of [0, 1, 2]) {
      const mine = chunks.filter((c) => c.choices[0].index === index);
      assertEquals(mine[0].choices[0].delta, { role: "assistant", content: "" });
      assertEquals(
        mine.map((c) => c.choices[0].delta.content ?? "").join(""),
        "답: <|system|>간결하게\n<|user|>x\n<|assistant|>",
      );
      assertEquals(mine.at(-1).choices[0].finish_reason, "stop");
    }
  });
});
