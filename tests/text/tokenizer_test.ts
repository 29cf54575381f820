import {
  ChatTemplateError,
  loadTokenizer,
  type TextTokenizer,
  TokenizerError,
  tokenizerFromFiles,
} from "../../text/tokenizer.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes, assertThrows } from "../asserts.ts";
import { fixtureCopy, fixtureDir, fixtureFiles, tempDir } from "./fixtures.ts";

// Mistral-7B-Instruct-v0.1's chat template and the ids transformers.js gives for this conversation, as
// published in npm @huggingface/jinja's README.
const MISTRAL_TEMPLATE = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != " +
  "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/" +
  "assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + " +
  "' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% else %}" +
  "{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";
const MISTRAL_CHAT = [
  { role: "user", content: "Hello, how are you?" },
  { role: "assistant", content: "I'm doing great. How can I help you today?" },
  { role: "user", content: "I'd like to show off how chat templating works!" },
];
const MISTRAL_CHAT_TEXT =
  "<s>[INST] Hello, how are you? [/INST]I'm doing great. How can I help you today?</s> " +
  "[INST] I'd like to show off how chat templating works! [/INST]";
const MISTRAL_CHAT_IDS = [
  1,
  733,
  16289,
  28793,
  22557,
  28725,
  910,
  460,
  368,
  28804,
  733,
  28748,
  16289,
  28793,
  28737,
  28742,
  28719,
  2548,
  1598,
  28723,
  1602,
  541,
  315,
  1316,
  368,
  3154,
  28804,
  2,
  28705,
  733,
  16289,
  28793,
  315,
  28742,
  28715,
  737,
  298,
  1347,
  805,
  910,
  10706,
  5752,
  1077,
  3791,
  28808,
  733,
  28748,
  16289,
  28793,
];

const KOREAN = [
  "안녕하세요, 반갑습니다!",
  "대한민국의 수도는 서울이고, 부산은 두 번째로 큰 도시입니다.",
  "  띄어쓰기가  여러 번\n\n줄바꿈도 있고\t탭도 있는 문장 ",
  "한글과 English가 섞인 문장 123개, 그리고 이모지 🙂도 있어요.",
  "ㄱㄴㄷ 뷁 햏 똠방각하",
];

let llama3: Promise<TextTokenizer> | undefined;
let mistral: Promise<TextTokenizer> | undefined;
const loadLlama3 = () => (llama3 ??= fixtureDir("llama3").then((d) => loadTokenizer(d)));
const loadMistral = () => (mistral ??= fixtureDir("mistral").then((d) => loadTokenizer(d)));

Deno.test("tokenizer: Llama-3 known ids, special ids and vocabulary", async () => {
  const tok = await loadLlama3();
  assertEquals(tok.encode("Hello world", { addSpecialTokens: false }), [9906, 1917]);
  // This original Llama-3 tokenizer.json has a ByteLevel post-processor only: no BOS by default.
  assertEquals(tok.encode("Hello world"), [9906, 1917]);
  assertEquals(tok.encode("Hello, how are you?", { addSpecialTokens: false }), [
    9906,
    11,
    1268,
    527,
    499,
    30,
  ]);
  assertEquals(tok.bosId, 128000);
  assertEquals(tok.eosIds, [128001]);
  assertEquals(tok.padId, 128001, "no pad token: pad with EOS");
  assertEquals(tok.vocabSize, 128256);
  assertEquals(tok.idToToken(128000), "<|begin_of_text|>");
  assertEquals(tok.tokenToId("<|eot_id|>"), 128009);
  assertEquals(tok.tokenToId("Ġworld"), 1917);
  assert(tok.specialIds.has(128000) && tok.specialIds.has(128009) && !tok.specialIds.has(9906));
  assertEquals(tok.decode([128000, 9906, 1917]), "<|begin_of_text|>Hello world");
  assertEquals(tok.decode([128000, 9906, 1917], { skipSpecialTokens: true }), "Hello world");
  assertEquals(tok.decode([]), "");
  assertEquals(tok.prefixIds, []);
});

Deno.test("tokenizer: Mistral known ids (BOS from the post-processor)", async () => {
  const tok = await loadMistral();
  assertEquals(tok.encode("Hello, how are you?"), [1, 22557, 28725, 910, 460, 368, 28804]);
  assertEquals(tok.encode("Hello, how are you?", { addSpecialTokens: false }), [
    22557,
    28725,
    910,
    460,
    368,
    28804,
  ]);
  assertEquals([tok.bosId, tok.eosIds, tok.padId, tok.vocabSize], [1, [2], 2, 32000]);
  assertEquals(tok.prefixIds, [1]);
  assertEquals(tok.idToToken(28705), "▁");
  assertEquals(
    tok.decode([1, 22557, 28725, 910, 460, 368, 28804], { skipSpecialTokens: true }),
    "Hello, how are you?",
  );
});

Deno.test("tokenizer: Korean text round-trips exactly through both vocabularies", async () => {
  for (const tok of [await loadLlama3(), await loadMistral()]) {
    for (const text of KOREAN) {
      const ids = tok.encode(text);
      assertEquals(tok.decode(ids, { skipSpecialTokens: true }), text, `${tok.vocabSize}: ${text}`);
    }
  }
  // Mistral spells rare Hangul with byte-fallback tokens: 녕 is three of them.
  const m = await loadMistral();
  const bytes = m.encode("안녕", { addSpecialTokens: false }).map((id) => m.idToToken(id));
  assertEquals(bytes.filter((t) => /^<0x[0-9A-F]{2}>$/.test(t ?? "")).length, 3);
});

Deno.test("tokenizer: decodeStream hands out only whole characters and adds up to decode()", async () => {
  for (const tok of [await loadLlama3(), await loadMistral()]) {
    for (const text of KOREAN) {
      const ids = tok.encode(text);
      const stream = tok.decodeStream({ skipSpecialTokens: true });
      const pieces = ids.map((id) => stream.push(id));
      const rest = stream.flush();
      assertEquals(rest, "");
      for (const p of pieces) {
        assert(!p.includes("\uFFFD"), `a piece holds a partial character: ${JSON.stringify(p)}`);
      }
      assertEquals(pieces.join(""), tok.decode(ids, { skipSpecialTokens: true, cleanUpSpaces: false }));
    }
  }
  // Byte tokens of one character: nothing comes out until the last byte.
  const m = await loadMistral();
  const ids = m.encode("녕", { addSpecialTokens: false }).filter((id) => m.idToToken(id)?.startsWith("<0x"));
  const stream = m.decodeStream();
  assertEquals(ids.map((id) => stream.push(id)), ["", "", "녕"]);
  // A stream cut inside a character gives the replacement character on flush.
  const cut = m.decodeStream();
  cut.push(ids[0]);
  assertEquals(cut.flush(), "\uFFFD");
});

Deno.test("tokenizer: Llama-3 chat template for a two-turn conversation", async () => {
  const tok = await loadLlama3();
  const messages = [
    { role: "user", content: "한국의 수도는 어디인가요?" },
    { role: "assistant", content: "  한국의 수도는 서울입니다. " },
  ];
  const text = tok.applyChatTemplate(messages, { addGenerationPrompt: false });
  // The template trims contents and, as shipped, always ends with an assistant header.
  assertEquals(
    text,
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n한국의 수도는 어디인가요?<|eot_id|>" +
      "<|start_header_id|>assistant<|end_header_id|>\n\n한국의 수도는 서울입니다.<|eot_id|>" +
      "<|start_header_id|>assistant<|end_header_id|>\n\n",
  );
  const ids = tok.encodeChat(messages);
  assertEquals(ids.slice(0, 3), [128000, 128006, 882]); // <|begin_of_text|><|start_header_id|>user
  assertEquals(ids.filter((id) => id === 128000).length, 1);
  assertEquals(ids.filter((id) => id === 128009).length, 2);
  assertEquals(tok.decode(ids), text);
});

Deno.test("tokenizer: double-BOS rule with Mistral's template and published ids", async () => {
  const tok = await loadTokenizer(await fixtureDir("mistral"), { chatTemplate: MISTRAL_TEMPLATE });
  assertEquals(tok.applyChatTemplate(MISTRAL_CHAT), MISTRAL_CHAT_TEXT);
  // The template writes <s> and the post-processor prepends another: plain encode shows both.
  assertEquals(tok.encode(MISTRAL_CHAT_TEXT).slice(0, 3), [1, 1, 733]);
  assertEquals(tok.encodeChat(MISTRAL_CHAT), MISTRAL_CHAT_IDS);
  // A template that writes no BOS keeps the post-processor's.
  assertEquals(tok.encodeTemplated("[INST] hi [/INST]").filter((id) => id === 1).length, 1);
  assertThrows(
    () => tok.applyChatTemplate([{ role: "system", content: "x" }, ...MISTRAL_CHAT]),
    ChatTemplateError,
    "Conversation roles must alternate",
  );
});

Deno.test("tokenizer: double-BOS rule with Llama-3's current BOS post-processor", async () => {
  const files = await fixtureFiles("llama3");
  // Meta's later tokenizer.json: ByteLevel followed by a TemplateProcessing that prepends <|begin_of_text|>.
  files.tokenizerJson.post_processor = {
    type: "Sequence",
    processors: [
      { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
      {
        type: "TemplateProcessing",
        single: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, {
          Sequence: { id: "A", type_id: 0 },
        }],
        pair: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, {
          Sequence: { id: "A", type_id: 0 },
        }],
        special_tokens: {
          "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [128000], tokens: ["<|begin_of_text|>"] },
        },
      },
    ],
  };
  const tok = tokenizerFromFiles(files);
  assertEquals(tok.encode("Hello world"), [128000, 9906, 1917]);
  assertEquals(tok.prefixIds, [128000]);
  const ids = tok.encodeChat([{ role: "user", content: "안녕?" }], { addGenerationPrompt: true });
  assertEquals(ids.slice(0, 2), [128000, 128006]);
  assertEquals(ids.filter((id) => id === 128000).length, 1);
});

Deno.test("tokenizer: a model without a chat template says so when a chat method is called", async () => {
  const tok = await loadMistral();
  assertEquals(tok.chatTemplate, null);
  const e = assertThrows(
    () => tok.encodeChat([{ role: "user", content: "hi" }]),
    ChatTemplateError,
    "no chat template",
  );
  assertStringIncludes(e.message, "chatTemplate");
  // The globals transformers passes: special token strings, add_generation_prompt, strftime_now.
  assertEquals(
    tok.applyChatTemplate([], {
      template: "{{ bos_token }}|{{ eos_token }}|{{ add_generation_prompt }}|{{ strftime_now('%Y') }}",
      addGenerationPrompt: true,
    }),
    `<s>|</s>|true|${new Date().getFullYear()}`,
  );
  // A per-call template works without one loaded.
  assertEquals(
    tok.applyChatTemplate([{ role: "user", content: "hi" }], { template: MISTRAL_TEMPLATE }),
    "<s>[INST] hi [/INST]",
  );
  assertThrows(
    () => tok.applyChatTemplate([{ role: "user", content: 3 } as never], { template: MISTRAL_TEMPLATE }),
    ChatTemplateError,
    "messages[0]",
  );
});

Deno.test("tokenizer: template files, special_tokens_map and generation_config are read", async () => {
  const dir = await fixtureCopy("mistral");
  await Deno.writeTextFile(
    `${dir}/chat_template.jinja`,
    "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}",
  );
  await Deno.writeTextFile(`${dir}/generation_config.json`, JSON.stringify({ eos_token_id: [2, 13] }));
  let tok = await loadTokenizer(dir);
  assertEquals(tok.applyChatTemplate([{ role: "user", content: "a" }]), "<s>[user]a");
  assertEquals(tok.eosIds, [2, 13]);

  await Deno.remove(`${dir}/chat_template.jinja`);
  await Deno.writeTextFile(
    `${dir}/chat_template.json`,
    JSON.stringify({ chat_template: "J{{ messages[0].content }}" }),
  );
  tok = await loadTokenizer(dir);
  assertEquals(tok.applyChatTemplate([{ role: "user", content: "a" }]), "Ja");
  // The loader's option wins over every file.
  tok = await loadTokenizer(dir, { chatTemplate: "O" });
  assertEquals(tok.applyChatTemplate([{ role: "user", content: "a" }]), "O");

  // bos/eos/pad from special_tokens_map.json when the config lacks them (old files store AddedToken objects).
  const config = JSON.parse(await Deno.readTextFile(`${dir}/tokenizer_config.json`));
  delete config.bos_token;
  delete config.eos_token;
  delete config.pad_token;
  await Deno.writeTextFile(`${dir}/tokenizer_config.json`, JSON.stringify(config));
  await Deno.writeTextFile(
    `${dir}/special_tokens_map.json`,
    JSON.stringify({ bos_token: { content: "<s>" }, eos_token: "</s>", pad_token: "<unk>" }),
  );
  tok = await loadTokenizer(dir);
  assertEquals([tok.bosId, tok.eosIds, tok.padId], [1, [2, 13], 0]);
});

Deno.test("tokenizer: bad folders and ids give errors naming the file or position", async () => {
  const empty = await tempDir();
  await assertRejects(() => loadTokenizer(empty), TokenizerError, `${empty}/tokenizer.json: not found`);
  const dir = await fixtureCopy("mistral");
  await Deno.writeTextFile(`${dir}/generation_config.json`, "{ nope");
  await assertRejects(() => loadTokenizer(dir), TokenizerError, "generation_config.json: invalid JSON");
  await Deno.writeTextFile(`${dir}/generation_config.json`, JSON.stringify({ eos_token_id: "x" }));
  await assertRejects(() => loadTokenizer(dir), TokenizerError, 'field "eos_token_id"');
  await Deno.remove(`${dir}/generation_config.json`);
  await Deno.writeTextFile(`${dir}/tokenizer_config.json`, JSON.stringify({ bos_token: "<nope>" }));
  await assertRejects(
    () => loadTokenizer(dir),
    TokenizerError,
    'bos_token "<nope>" is not in the vocabulary',
  );

  const tok = await loadMistral();
  assertThrows(() => tok.decode([1, 32000]), RangeError, "id 32000 at position 1");
  assertThrows(() => tok.decode([1.5]), RangeError, "position 0");
});
