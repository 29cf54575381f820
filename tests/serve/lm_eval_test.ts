/**
 * The real server with the real GPU engine, asked what existing clients send: lm-evaluation-harness's
 * `local-completions` log-likelihood request (token-id prompts, echo, logprobs 1, max_tokens 1), checked
 * against the model's own scoring (eval/loglikelihood.ts); and chat with logprobs and n > 1.
 */
import { GpuLogprobModel } from "../../eval/gpu_model.ts";
import { encodeRequest, scoreRequests } from "../../eval/loglikelihood.ts";
import { loadEngine } from "../../generate/engine.ts";
import { loadLlama } from "../../model/load.ts";
import { startServer } from "../../serve/server.ts";
import { assert, assertAlmostEquals, assertEquals } from "../asserts.ts";
import { GPU_TEST, testGpu } from "../helpers.ts";
import { writeMicroModel } from "../model/micro_model.ts";
import { expectIdle, postJson, TEST_LIMITS } from "./http.ts";

const PAIRS: [string, string][] = [
  ["질문: 한국의 수도는 어디인가? 답변:", " 서울"],
  ["질문: 한국의 수도는 어디인가? 답변:", " 부산"],
  ["문장: 오늘은 날씨가 맑다. 긍부정:", " 긍정"],
  ["문장: 비가 와서 슬프다 ", " 부정"],
];

/** lm-eval's `LocalCompletionsAPI.parse_logprobs`, line by line. */
// deno-lint-ignore no-explicit-any
function parseLogprobs(out: any, ctxlens: number[]): [number, boolean][] {
  // deno-lint-ignore no-explicit-any
  const choices = [...out.choices].sort((a: any, b: any) => a.index - b.index);
  return choices.map((choice, i) => {
    const ctxlen = ctxlens[i];
    assert(ctxlen > 0, "Context length must be greater than 0");
    const tokens: number[] = choice.logprobs.token_logprobs.slice(ctxlen, -1);
    const tops: Record<string, number>[] = choice.logprobs.top_logprobs.slice(ctxlen, -1);
    const logprobs = tokens.reduce((s, x) => s + x, 0);
    let greedy = true;
    tokens.forEach((tok, t) => {
      if (tok !== Math.max(...Object.values(tops[t]))) greedy = false;
    });
    return [logprobs, greedy];
  });
}

Deno.test(
  "serve (real engine): lm-eval's local-completions log-likelihood request is answered as the model scores it",
  GPU_TEST,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "serve-lm-eval-" });
    const gpu = await testGpu();
    try {
      const dir = await writeMicroModel(`${root}/model`);
      const engine = await loadEngine(dir, {
        maxConcurrent: 2,
        maxContextTokens: 128,
        gpu,
        modelId: "micro",
      });
      const server = startServer(engine, { ...TEST_LIMITS, maxPromptTokens: 127 });
      try {
        const tok = engine.tokenizer;
        const encoded = PAIRS.map(([c, x]) => encodeRequest(tok, c, x, 126));
        const prompt = encoded.map((e) => e.ids);
        const ctxlens = encoded.map((e) => e.ids.length - e.contLength);
        // Exactly the payload LocalCompletionsAPI._create_payload builds for loglikelihood requests.
        const { status, body } = await postJson(server.url, "/v1/completions", {
          model: "micro",
          prompt,
          temperature: 0,
          max_tokens: 1,
          logprobs: 1,
          seed: 1234,
          echo: true,
        });
        assertEquals(status, 200, JSON.stringify(body));
        assertEquals(body.choices.map((c: { index: number }) => c.index), [0, 1, 2, 3]);
        assertEquals(body.usage.prompt_tokens, prompt.reduce((n, p) => n + p.length, 0));
        for (const [i, choice] of body.choices.entries()) {
          const lp = choice.logprobs;
          const n = prompt[i].length + 1;
          assertEquals([lp.tokens.length, lp.token_logprobs.length, lp.top_logprobs.length], [n, n, n]);
          assertEquals([lp.token_logprobs[0], lp.top_logprobs[0]], [null, null], "nothing predicts token 0");
          assert(lp.token_logprobs.slice(1).every((x: unknown) => typeof x === "number" && x <= 0));
          assert(lp.top_logprobs.slice(1).every((d: object) => Object.keys(d).length === 1), "logprobs: 1");
          assertEquals(lp.text_offset[0], 0);
          lp.text_offset.forEach((at: number, t: number) => {
            if (t > 0) assertEquals(at, lp.text_offset[t - 1] + lp.tokens[t - 1].length, `text_offset[${t}]`);
          });
          assert(["length", "stop"].includes(choice.finish_reason), choice.finish_reason);
          // The generated token is greedy: its log-prob is the top of its position.
          const last = lp.token_logprobs.at(-1), top = Object.values(lp.top_logprobs.at(-1)) as number[];
          assertEquals(last, Math.max(...top));
        }
        // The same numbers as the model's own scoring (what deno task kobest computes locally).
        const loaded = await loadLlama(gpu, dir, { trainable: false, maxTokens: 4 * 128, maxPositions: 128 });
        const local = await scoreRequests(
          new GpuLogprobModel(gpu, loaded, { maxLength: 126 }),
          tok,
          PAIRS.map(([context, continuation]) => ({ context, continuation })),
        );
        const remote = parseLogprobs(body, ctxlens);
        remote.forEach(([ll, greedy], i) => {
          assertAlmostEquals(ll, local[i].loglikelihood, 1e-4, `request ${i} log-likelihood`);
          assertEquals(greedy, local[i].isGreedy, `request ${i} is_greedy`);
        });
        // The generated token is what greedy generation gives.
        const gen = await postJson(server.url, "/v1/completions", {
          model: "micro",
          prompt: prompt[0],
          temperature: 0,
          max_tokens: 1,
        });
        const echoed = body.choices[0];
        assert(
          echoed.text.endsWith(gen.body.choices[0].text),
          `${echoed.text} / ${gen.body.choices[0].text}`,
        );

        // The other prompt forms: a text prompt scored with max_tokens 0, and one list of ids.
        const text = await postJson(server.url, "/v1/completions", {
          model: "micro",
          prompt: PAIRS[0].join(""),
          max_tokens: 0,
          echo: true,
          logprobs: 2,
        });
        assertEquals(text.status, 200, JSON.stringify(text.body));
        const only = text.body.choices[0];
        assertEquals(only.text, PAIRS[0].join(""));
        assertEquals(only.finish_reason, "length");
        assertEquals(only.logprobs.token_logprobs.length, text.body.usage.prompt_tokens);
        assertEquals(text.body.usage.completion_tokens, 0);
        assert(only.logprobs.top_logprobs.slice(1).every((d: object) => Object.keys(d).length <= 2));
        const ids = await postJson(server.url, "/v1/completions", {
          model: "micro",
          prompt: prompt[2],
          max_tokens: 0,
          echo: true,
          logprobs: 0,
        });
        assertEquals(
          ids.body.choices[0].logprobs.token_logprobs.slice(1),
          body.choices[2].logprobs.token_logprobs.slice(1, -1),
          "the same prompt scores the same alone",
        );
        const outside = await postJson(server.url, "/v1/completions", {
          model: "micro",
          prompt: [[1, 99999]],
        });
        assertEquals([outside.status, outside.body.error.param], [400, "prompt"]);
        await expectIdle(server.url);
      } finally {
        await server.close();
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

Deno.test("serve (real engine): chat logprobs, top_logprobs, n > 1 and the penalties", GPU_TEST, async () => {
  const root = await Deno.makeTempDir({ prefix: "serve-chat-logprobs-" });
  try {
    const dir = await writeMicroModel(`${root}/model`);
    const engine = await loadEngine(dir, { maxConcurrent: 2, maxContextTokens: 128, gpu: await testGpu() });
    const server = startServer(engine, { ...TEST_LIMITS, maxPromptTokens: 100 });
    try {
      const chat = (extra: Record<string, unknown>) =>
        postJson(server.url, "/v1/chat/completions", {
          model: engine.modelId,
          messages: [{ role: "user", content: "한국의 수도는?" }],
          max_tokens: 8,
          ...extra,
        });
      const greedy = await chat({ temperature: 0, logprobs: true, top_logprobs: 3 });
      assertEquals(greedy.status, 200, JSON.stringify(greedy.body));
      const choice = greedy.body.choices[0];
      const content = choice.logprobs.content;
      const extra = choice.finish_reason === "stop" ? 1 : 0; // the end-of-sequence token, with empty text
      assertEquals(content.length, greedy.body.usage.completion_tokens + extra);
      assertEquals(content.map((c: { token: string }) => c.token).join(""), choice.message.content);
      for (const c of content) {
        assertEquals(c.top_logprobs.length, 3);
        // Greedy decoding picks the top token, and tops are sorted.
        assertAlmostEquals(c.logprob, c.top_logprobs[0].logprob, 1e-6);
        assert(c.top_logprobs[0].logprob >= c.top_logprobs[1].logprob);
        assertEquals(c.bytes, [...new TextEncoder().encode(c.token)]);
      }
      // n choices on distinct random streams of one seed: reproducible, and counted in usage.
      const sampled = { temperature: 1, n: 3, seed: 42, max_tokens: 6 };
      const a = await chat(sampled), b = await chat(sampled);
      assertEquals(a.body.choices.map((c: { index: number }) => c.index), [0, 1, 2]);
      assertEquals(a.body.choices, b.body.choices, "the same seed gives the same choices");
      const completion = a.body.usage.completion_tokens;
      assert(completion >= 3 && completion <= 18, `three choices of 1 to 6 tokens, got ${completion}`);
      assert(
        new Set(a.body.choices.map((c: { message: { content: string } }) => c.message.content)).size > 1,
      );
      // The three penalties are accepted together.
      const penalised = await chat({
        temperature: 0,
        frequency_penalty: 1,
        presence_penalty: 0.5,
        repetition_penalty: 1.2,
      });
      assertEquals(penalised.status, 200, JSON.stringify(penalised.body));
      await expectIdle(server.url);
    } finally {
      await server.close();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
