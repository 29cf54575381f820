import { ApiError } from "../../serve/errors.ts";
import { parseChatRequest, parseCompletionRequest } from "../../serve/openai_types.ts";
import { assertEquals, assertThrows } from "../asserts.ts";

const user = [{ role: "user", content: "hi" }];

Deno.test("openai types: defaults, penalty mapping and content parts", () => {
  const req = parseChatRequest({
    model: "m",
    messages: [
      { role: "developer", content: [{ type: "text", text: "be " }, { type: "text", text: "brief" }] },
      ...user,
    ],
  });
  assertEquals(req, {
    model: "m",
    input: {
      kind: "chat",
      messages: [{ role: "system", content: "be brief" }, { role: "user", content: "hi" }],
    },
    maxTokens: undefined,
    temperature: 1,
    topP: 1,
    topK: 0,
    repetitionPenalty: 1,
    stop: [],
    seed: undefined,
    stream: false,
    includeUsage: false,
  });
  assertEquals(
    parseChatRequest({ model: "m", messages: user, frequency_penalty: -2 }).repetitionPenalty,
    0.5,
  );
  assertEquals(parseChatRequest({ model: "m", messages: user, frequency_penalty: 2 }).repetitionPenalty, 1.5);
  assertEquals(
    parseChatRequest({ model: "m", messages: user, repetition_penalty: 1.3, frequency_penalty: 0 })
      .repetitionPenalty,
    1.3,
  );
  const both = parseChatRequest({ model: "m", messages: user, max_tokens: 9, max_completion_tokens: 9 });
  assertEquals(both.maxTokens, 9);
  const text = parseCompletionRequest({
    model: "m",
    prompt: "p",
    stream: true,
    stream_options: { include_usage: true },
  });
  assertEquals([text.input, text.stream, text.includeUsage], [{ kind: "text", prompt: "p" }, true, true]);
  assertEquals(
    parseCompletionRequest({ model: "m", prompt: "p", user: "ignored", presence_penalty: 0 }).stop,
    [],
  );
});

Deno.test("openai types: each bad field is a 400 naming it", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ seed: 1.5 }, "seed"],
    [{ max_tokens: 3, max_completion_tokens: 4 }, "max_completion_tokens"],
    [{ presence_penalty: 1 }, "presence_penalty"],
    [{ frequency_penalty: 3 }, "frequency_penalty"],
    [{ repetition_penalty: 0 }, "repetition_penalty"],
    [{ stop: [""] }, "stop"],
    [{ stop: 5 }, "stop"],
    [{ tools: [{ type: "function" }] }, "tools"],
    [{ response_format: { type: "json_object" } }, "response_format"],
    [{ stream_options: true, stream: true }, "stream_options"],
    [
      { messages: [{ role: "user", content: [{ type: "image_url", image_url: {} }] }] },
      "messages[0].content[0]",
    ],
  ];
  for (const [extra, param] of cases) {
    const err = assertThrows(
      () => parseChatRequest({ model: "m", messages: user, ...extra }),
      ApiError,
    ) as ApiError;
    assertEquals([err.status, err.param], [400, param], JSON.stringify(extra));
  }
  const err = assertThrows(
    () => parseCompletionRequest({ model: "m", prompt: ["a", "b"] }),
    ApiError,
  ) as ApiError;
  assertEquals(err.param, "prompt");
});
