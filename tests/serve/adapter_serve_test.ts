/**
 * PEFT adapters served by the real engine: an adapter folder served directly answers as its merged model;
 * several adapters over one base (`--lora NAME=DIR`) answer in one batch, each as if served alone.
 */
import { loadEngine, type TextEngine } from "../../generate/engine.ts";
import { startServer } from "../../serve/server.ts";
import { assertAlmostEquals, assertEquals, assertNotEquals } from "../asserts.ts";
import { GPU_TEST, testGpu } from "../helpers.ts";
import { writeMergedModel, writeMicroAdapter, writeMicroModel } from "../model/micro_model.ts";
import { expectIdle, postJson, TEST_LIMITS } from "./http.ts";

const QUESTIONS = ["한국의 수도는?", "오늘 날씨는 어때요?", "좋아하는 음식은?"];

/** Greedy answers and echoed prompt log-probs of `model` on a server over `engine`. */
async function answers(engine: TextEngine, model: string, maxConcurrent = 3) {
  const server = startServer(engine, { ...TEST_LIMITS, maxConcurrent, maxQueue: 8, maxPromptTokens: 100 });
  try {
    return await ask(server.url, model);
  } finally {
    await server.close();
  }
}

async function ask(url: string, model: string) {
  const replies = await Promise.all(QUESTIONS.map(async (q) => {
    const { status, body } = await postJson(url, "/v1/chat/completions", {
      model,
      messages: [{ role: "user", content: q }],
      max_tokens: 10,
      temperature: 0,
    });
    assertEquals(status, 200, JSON.stringify(body));
    return body.choices[0].message.content as string;
  }));
  const { body } = await postJson(url, "/v1/completions", {
    model,
    prompt: QUESTIONS[0],
    max_tokens: 0,
    echo: true,
    logprobs: 1,
  });
  return { replies, logprobs: body.choices[0].logprobs.token_logprobs.slice(1) as number[] };
}

function assertClose(a: number[], b: number[], what: string): void {
  assertEquals(a.length, b.length, what);
  a.forEach((x, i) => assertAlmostEquals(x, b[i], 1e-4, `${what}[${i}]`));
}

Deno.test(
  "serve (real engine): an adapter folder is served directly, as its merged model",
  GPU_TEST,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "serve-adapter-" });
    const gpu = await testGpu();
    try {
      const base = await writeMicroModel(`${root}/base`);
      const adapter = await writeMicroAdapter(`${root}/adapter`, base);
      const merged = await writeMergedModel(`${root}/merged`, base, adapter);
      const opts = { maxConcurrent: 3, maxContextTokens: 128, gpu, modelId: "m" };
      const viaAdapter = await answers(await loadEngine(adapter, opts), "m");
      const viaMerged = await answers(await loadEngine(merged, opts), "m");
      const plain = await answers(await loadEngine(base, opts), "m");
      assertEquals(viaAdapter.replies, viaMerged.replies);
      assertClose(viaAdapter.logprobs, viaMerged.logprobs, "echoed log-probs");
      assertNotEquals(viaAdapter.logprobs, plain.logprobs, "the adapter changes the model");
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

Deno.test(
  "serve (real engine): --lora adapters over one base answer in one batch as each does alone",
  GPU_TEST,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "serve-lora-" });
    const gpu = await testGpu();
    try {
      const base = await writeMicroModel(`${root}/base`);
      const first = await writeMicroAdapter(`${root}/first`, base, { seed: 3 });
      // A second adapter of other ranks, modules and scaling, so the stacked columns differ per linear.
      const second = await writeMicroAdapter(`${root}/second`, base, {
        seed: 9,
        spec: {
          r: 2,
          alpha: 6,
          targets: ["q_proj", "o_proj", "gate_proj"],
          rslora: true,
          layersToTransform: [1],
        },
      });
      const opts = { maxConcurrent: 3, maxContextTokens: 128, gpu };
      const alone = {
        base: await answers(await loadEngine(base, { ...opts, modelId: "base" }), "base"),
        first: await answers(await loadEngine(first, { ...opts, modelId: "first" }), "first"),
        second: await answers(await loadEngine(second, { ...opts, modelId: "second" }), "second"),
      };
      // Each adapter changes the model, so a mix-up of rows would show.
      assertNotEquals(alone.first.logprobs, alone.base.logprobs);
      assertNotEquals(alone.second.logprobs, alone.base.logprobs);
      assertNotEquals(alone.first.logprobs, alone.second.logprobs);
      const engine = await loadEngine(base, {
        ...opts,
        modelId: "base",
        loras: [{ name: "first", dir: first }, { name: "second", dir: second }],
      });
      const server = startServer(engine, {
        ...TEST_LIMITS,
        maxConcurrent: 9,
        maxQueue: 8,
        maxPromptTokens: 100,
      });
      try {
        const models = await (await fetch(`${server.url}/v1/models`)).json();
        assertEquals(
          models.data.map((m: { id: string; parent: string | null }) => [m.id, m.parent]),
          [["base", null], ["first", "base"], ["second", "base"]],
        );
        // All three models' requests at once: their rows share decode batches.
        const [b, f, s] = await Promise.all([
          ask(server.url, "base"),
          ask(server.url, "first"),
          ask(server.url, "second"),
        ]);
        assertEquals(b.replies, alone.base.replies, "base");
        assertEquals(f.replies, alone.first.replies, "first");
        assertEquals(s.replies, alone.second.replies, "second");
        assertClose(b.logprobs, alone.base.logprobs, "base log-probs");
        assertClose(f.logprobs, alone.first.logprobs, "first log-probs");
        assertClose(s.logprobs, alone.second.logprobs, "second log-probs");
        const unknown = await postJson(server.url, "/v1/completions", { model: "third", prompt: "x" });
        assertEquals([unknown.status, unknown.body.error.code], [404, "model_not_found"]);
        await expectIdle(server.url);
      } finally {
        await server.close();
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);
