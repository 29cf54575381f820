import { loadEngine } from "../../generate/engine.ts";
import { startServer } from "../../serve/server.ts";
import { assert, assertEquals } from "../asserts.ts";
import { GPU_TEST, testGpu } from "../helpers.ts";
import { writeMicroModel } from "../model/micro_model.ts";
import { expectIdle, sseEvents, TEST_LIMITS } from "./http.ts";

/** The real server with the real GPU engine on a micro model, over loopback HTTP. */
Deno.test(
  "serve (real engine): chat, streaming, concurrent greedy requests and stop strings",
  GPU_TEST,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "serve-real-" });
    const dir = await writeMicroModel(`${root}/model`);
    const engine = await loadEngine(dir, {
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
      const chat = (extra: Record<string, unknown>) =>
        fetch(`${server.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            model: "micro",
            messages: [{ role: "user", content: "한국의 수도는?" }],
            max_tokens: 12,
            temperature: 0,
            ...extra,
          }),
        });
      const plain = await (await chat({})).json();
      assertEquals(plain.object, "chat.completion");
      assertEquals(plain.usage.completion_tokens + plain.usage.prompt_tokens, plain.usage.total_tokens);
      assertEquals(
        plain.usage.prompt_tokens,
        engine.countTokens(engine.renderChat([{ role: "user", content: "한국의 수도는?" }])),
      );
      assert(["length", "stop"].includes(plain.choices[0].finish_reason), plain.choices[0].finish_reason);
      const text: string = plain.choices[0].message.content;
      // Streaming the same greedy request gives the same text, chunk by chunk.
      const events = sseEvents(await (await chat({ stream: true })).text());
      const streamed = events.filter((e) => e !== "[DONE]").map((e) =>
        (e as { choices: { delta: { content?: string } }[] }).choices[0]?.delta?.content ?? ""
      ).join("");
      assertEquals(streamed, text);
      // Three greedy requests at once on two slots: the same answer each time.
      const many = await Promise.all(
        [chat({}), chat({}), chat({})].map(async (r) => (await (await r).json()).choices[0].message.content),
      );
      assertEquals(many, [text, text, text]);
      // A stop string cuts the answer before it.
      if (text.length > 2) {
        const stop = text.slice(2, 3);
        const cut = await (await chat({ stop: [stop] })).json();
        assertEquals(cut.choices[0].message.content, text.slice(0, text.indexOf(stop)));
        assertEquals(cut.choices[0].finish_reason, "stop");
      }
      await expectIdle(server.url);
    } finally {
      await server.close();
      await Deno.remove(root, { recursive: true });
    }
  },
);
