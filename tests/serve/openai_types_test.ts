import { ApiError } from "../../serve/errors.ts";
import { parseChatRequest, parseCompletionRequest, type Prompt } from "../../serve/openai_types.ts";
import { assertEquals, assertThrows } from "../asserts.ts";

const user = [{ role: "user", content: "hi" }];

Deno.test("openai types: defaults, penalties and content parts", () => {
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
    frequencyPenalty: 0,
    presencePenalty: 0,
    n: 1,
    stop: [],
    seed: undefined,
    stream: false,
    includeUsage: false,
    logprobs: undefined,
    echo: false,
  });
  // OpenAI's additive penalties and vLLM's multiplicative one are separate fields that combine.
  const penalties = parseChatRequest({
    model: "m",
    messages: user,
    frequency_penalty: -2,
    presence_penalty: 1.5,
    repetition_penalty: 1.3,
  });
  assertEquals(
    [penalties.frequencyPenalty, penalties.presencePenalty, penalties.repetitionPenalty],
    [-2, 1.5, 1.3],
  );
  const both = parseChatRequest({ model: "m", messages: user, max_tokens: 9, max_completion_tokens: 9 });
  assertEquals(both.maxTokens, 9);
  const text = parseCompletionRequest({
    model: "m",
    prompt: "p",
    stream: true,
    stream_options: { include_usage: true },
  });
  assertEquals([text.input, text.stream, text.includeUsage], [{ kind: "text", prompts: ["p"] }, true, true]);
  assertEquals(
    parseCompletionRequest({ model: "m", prompt: "p", user: "ignored", presence_penalty: 0 }).stop,
    [],
  );
});

Deno.test("openai types: the four prompt forms, echo, logprobs and n", () => {
  const forms: [unknown, Prompt[]][] = [
    ["a", ["a"]],
    [["a", "b"], ["a", "b"]],
    [[1, 2, 3], [[1, 2, 3]]],
    [[[1, 2], [3]], [[1, 2], [3]]],
  ];
  for (const [prompt, prompts] of forms) {
    assertEquals(parseCompletionRequest({ model: "m", prompt }).input, { kind: "text", prompts });
  }
  // What lm-eval's local-completions sends for log-likelihoods.
  const lmEval = parseCompletionRequest({
    model: "m",
    prompt: [[1, 2, 3], [1, 2, 4]],
    temperature: 0,
    max_tokens: 1,
    logprobs: 1,
    seed: 1234,
    echo: true,
  });
  assertEquals([lmEval.echo, lmEval.logprobs, lmEval.maxTokens, lmEval.seed], [true, 1, 1, 1234]);
  assertEquals(parseCompletionRequest({ model: "m", prompt: "a", echo: true, max_tokens: 0 }).maxTokens, 0);
  const chat = parseChatRequest({ model: "m", messages: user, logprobs: true, top_logprobs: 3, n: 4 });
  assertEquals([chat.logprobs, chat.n], [3, 4]);
  assertEquals(parseChatRequest({ model: "m", messages: user, logprobs: true }).logprobs, 0);
  assertEquals(parseChatRequest({ model: "m", messages: user, logprobs: false }).logprobs, undefined);
});

Deno.test("openai types: each bad field is a 400 naming it", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ seed: 1.5 }, "seed"],
    [{ max_tokens: 3, max_completion_tokens: 4 }, "max_completion_tokens"],
    [{ presence_penalty: 3 }, "presence_penalty"],
    [{ frequency_penalty: 3 }, "frequency_penalty"],
    [{ repetition_penalty: 0 }, "repetition_penalty"],
    [{ stop: [""] }, "stop"],
    [{ stop: 5 }, "stop"],
    [{ tools: [{ type: "function" }] }, "tools"],
    [{ response_format: { type: "json_object" } }, "response_format"],
    [{ stream_options: true, stream: true }, "stream_options"],
    [{ n: 0 }, "n"],
    [{ n: 2, best_of: 3 }, "best_of"],
    [{ top_logprobs: 2 }, "top_logprobs"],
    [{ logprobs: true, top_logprobs: 21 }, "top_logprobs"],
    [{ logprobs: true, stream: true }, "logprobs"],
    [{ max_tokens: 0 }, "max_tokens"],
    [{ echo: true }, "echo"],
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
  const textCases: [Record<string, unknown>, string][] = [
    [{ prompt: [] }, "prompt"],
    [{ prompt: ["a", 1] }, "prompt"],
    [{ prompt: [[1, 2], [-1]] }, "prompt[1]"],
    [{ prompt: [[1, 2], []] }, "prompt[1]"],
    [{ prompt: [1.5] }, "prompt"],
    [{ prompt: "a", logprobs: 21 }, "logprobs"],
    [{ prompt: "a", logprobs: true }, "logprobs"],
    [{ prompt: "a", max_tokens: 0 }, "max_tokens"],
    [{ prompt: "a", echo: true, stream: true }, "echo"],
  ];
  for (const [extra, param] of textCases) {
    const err = assertThrows(() => parseCompletionRequest({ model: "m", ...extra }), ApiError) as ApiError;
    assertEquals([err.status, err.param], [400, param], JSON.stringify(extra));
  }
});
