import {
  BASE_SPECIAL_TOKENS,
  CHAT_ROLE_TOKENS,
  trainBpeTokenizer,
  writeTokenizerFiles,
} from "../../text/bpe_train.ts";
import { ChatTemplateError, loadTokenizer, tokenizerFromFiles } from "../../text/tokenizer.ts";
import { assert, assertEquals, assertThrows } from "../asserts.ts";
import { bundledTexts, tempDir } from "./fixtures.ts";

const ROUND_TRIP = [
  "안녕하세요, 반갑습니다! 오늘 날씨가 참 좋네요.",
  "Hello, world! It's 3:45 p.m. — isn't it?",
  "한글과 English가 섞인 문장, 숫자 1,234.5와 이모지 🙂🚀도 있어요.",
  "  여러 칸의  공백\n\n\t탭과 줄바꿈\r\n끝 ",
  "뷁 똠 햏 ㅋㅋㅋ ㅠㅠ 쀍",
  "<s>특수 토큰처럼 보이는 글자</s>도 그대로",
];

Deno.test("bpe_train: trains on the bundled Korean data; the files load and round-trip text exactly", async () => {
  const rows = await bundledTexts();
  // Every fifth row is held out to measure compression on text the merges never saw.
  const train = rows.filter((_, i) => i % 5 !== 0).flat();
  const held = rows.filter((_, i) => i % 5 === 0).flat().join("\n");
  const t0 = performance.now();
  const files = trainBpeTokenizer(train, { vocabSize: 1500 });
  const ms = performance.now() - t0;
  assert(ms < 5000, `training took ${ms.toFixed(0)} ms`);

  const dir = await tempDir();
  await writeTokenizerFiles(dir, files);
  const tok = await loadTokenizer(dir);
  assertEquals(tok.vocabSize, 1500);
  assertEquals([tok.bosId, tok.eosIds, tok.padId, tok.prefixIds], [1, [2], 0, [1]]);
  assertEquals([0, 1, 2, 3, 4, 5].map((id) => tok.idToToken(id)), [
    ...BASE_SPECIAL_TOKENS,
    ...CHAT_ROLE_TOKENS,
  ]);
  assertEquals([...tok.specialIds].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5]);

  for (const text of [...ROUND_TRIP, held]) {
    const ids = tok.encode(text);
    assertEquals(ids[0], 1, "the post-processor prepends <s>");
    assertEquals(tok.decode(ids, { skipSpecialTokens: true }), text.replace(/<s>|<\/s>/g, ""));
    assertEquals(tok.decode(tok.encode(text, { addSpecialTokens: false })), text);
  }

  const bytes = new TextEncoder().encode(held).length;
  const ratio = bytes / tok.encode(held, { addSpecialTokens: false }).length;
  console.log(
    `bpe_train: vocab 1500 trained in ${ms.toFixed(0)} ms; held-out Korean: ${ratio.toFixed(2)} bytes/token`,
  );
  assert(ratio > 2.5, `held-out compression ${ratio.toFixed(2)} bytes/token is no better than expected`);
});

Deno.test("bpe_train: the chat template renders, and chats get one BOS", async () => {
  const tok = tokenizerFromFiles(trainBpeTokenizer((await bundledTexts()).flat(), { vocabSize: 600 }));
  const chat = [
    { role: "system", content: "한국어로 답하세요." },
    { role: "user", content: "수도는?" },
    { role: "assistant", content: "서울입니다." },
  ];
  assertEquals(
    tok.applyChatTemplate(chat),
    "<s><|system|>\n한국어로 답하세요.</s><|user|>\n수도는?</s><|assistant|>\n서울입니다.</s>",
  );
  assertEquals(
    tok.applyChatTemplate(chat.slice(1, 2), { addGenerationPrompt: true }),
    "<s><|user|>\n수도는?</s><|assistant|>\n",
  );
  const ids = tok.encodeChat(chat);
  assertEquals(ids.slice(0, 2), [1, 3]);
  assertEquals(ids.filter((id) => id === 1).length, 1);
  assertEquals(ids.filter((id) => id === 2).length, 3);
  assertEquals(tok.decode(ids), tok.applyChatTemplate(chat));
  assertThrows(() => tok.applyChatTemplate([{ role: "tool", content: "x" }]), ChatTemplateError, "got tool");
});

Deno.test("bpe_train: merges follow pair frequency and stop below minFrequency", () => {
  // Pre-tokens: "ab", "Ġab", "Ġab", "abc". (a,b) occurs 4 times, then (Ġ,ab) twice; (ab,c) once is too rare.
  const files = trainBpeTokenizer(["ab ab ab", "abc"], { vocabSize: 1000 });
  const model = files.tokenizerJson.model as { merges: string[]; vocab: Record<string, number> };
  assertEquals(model.merges, ["a b", "Ġ ab"]);
  assertEquals(Object.keys(model.vocab).length, 6 + 256 + 2);
  assertEquals(model.vocab["Ġab"], 6 + 256 + 1);
  const tok = tokenizerFromFiles(files);
  assertEquals(tok.encode("ab abc", { addSpecialTokens: false }).map((id) => tok.idToToken(id)), [
    "ab",
    "Ġab",
    "c",
  ]);
  const once = trainBpeTokenizer(["ab ab ab", "abc"], { vocabSize: 1000, minFrequency: 1 });
  assertEquals((once.tokenizerJson.model as { merges: string[] }).merges, ["a b", "Ġ ab", "ab c"]);
});

Deno.test("bpe_train: deterministic output and checked options", async () => {
  const texts = (await bundledTexts()).slice(0, 60).flat();
  const a = trainBpeTokenizer(texts, { vocabSize: 700 });
  const b = trainBpeTokenizer(texts, { vocabSize: 700 });
  assertEquals(JSON.stringify(a), JSON.stringify(b));
  const custom = trainBpeTokenizer(texts, {
    vocabSize: 700,
    specialTokens: ["<|im_start|>"],
    chatTemplate: "T",
  });
  assertEquals(custom.tokenizerConfig.chat_template, "T");
  assertEquals(custom.specialTokensMap.additional_special_tokens, ["<|im_start|>"]);
  assertThrows(
    () => trainBpeTokenizer(texts, { vocabSize: 200 }),
    RangeError,
    "vocabSize: expected an integer from 262",
  );
  assertThrows(() => trainBpeTokenizer(texts, { vocabSize: 700, specialTokens: ["<s>"] }), Error, "distinct");
});
