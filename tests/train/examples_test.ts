import type { Message, PreferenceRow, SftRow } from "../../io/datasets.ts";
import { trainBpeTokenizer } from "../../text/bpe_train.ts";
import { type TextTokenizer, tokenizerFromFiles } from "../../text/tokenizer.ts";
import { buildPreferenceExamples, buildSftExamples } from "../../train/examples.ts";
import { assertEquals, assertThrows } from "../asserts.ts";
import { bundledTexts, tinyTokenizer } from "../text/fixtures.ts";

const BOS = 1, EOS = 2;
const enc = (tok: TextTokenizer, text: string) => tok.encode(text, { addSpecialTokens: false });
const zeros = (n: number) => new Array<number>(n).fill(0);
const ones = (n: number) => new Array<number>(n).fill(1);
/** The text of the target tokens, to check masks token by token in readable form. */
const targetText = (tok: TextTokenizer, ids: number[], mask: number[]) =>
  tok.decode(ids.filter((_, i) => mask[i] === 1));

const text = (t: string): SftRow => ({ kind: "language-modeling", source: "t.jsonl:1", text: t });
const pc = (prompt: string | Message[], completion: string | Message[], source = "p.jsonl:1"): SftRow => ({
  kind: "prompt-completion",
  source,
  prompt,
  completion,
});
const chat = (...turns: [Message["role"], string][]): Message[] =>
  turns.map(([role, content]) => ({ role, content }));
const pref = (
  prompt: string | Message[],
  chosen: string | Message[],
  rejected: string | Message[],
): PreferenceRow => ({
  kind: "preference",
  source: "d.jsonl:1",
  prompt,
  chosen,
  rejected,
  implicitPrompt: false,
});

Deno.test("examples: text rows get the tokenizer's BOS, EOS and loss on every token", async () => {
  const tok = await tinyTokenizer();
  const { examples, stats } = buildSftExamples([text("안녕하세요. 반갑습니다.")], tok);
  const body = enc(tok, "안녕하세요. 반갑습니다.");
  assertEquals(examples[0].ids, [BOS, ...body, EOS]);
  assertEquals(examples[0].labelMask, ones(body.length + 2));
  assertEquals(stats, { kept: 1, dropped: 0, droppedSources: [], truncated: 0, promptMismatches: 0 });
});

Deno.test("examples: prompt-completion text masks the prompt (TRL's completion-only loss)", async () => {
  const tok = await tinyTokenizer();
  const prompt = enc(tok, "질문: 수도는?"), completion = enc(tok, " 서울입니다.");
  const [ex] = buildSftExamples([pc("질문: 수도는?", " 서울입니다.")], tok).examples;
  assertEquals(ex.ids, [BOS, ...prompt, ...completion, EOS]);
  assertEquals(ex.labelMask, [...zeros(1 + prompt.length), ...ones(completion.length + 1)]);
  assertEquals(targetText(tok, ex.ids, ex.labelMask), " 서울입니다.</s>");
  const [whole] =
    buildSftExamples([pc("질문: 수도는?", " 서울입니다.")], tok, { completionOnlyLoss: false }).examples;
  assertEquals([whole.ids, whole.labelMask], [ex.ids, ones(ex.ids.length)]);
});

Deno.test("examples: a prompt whose last token merges into the completion splits at its own length, counted", async () => {
  const tok = await tinyTokenizer();
  // " 수도" is one token, so "질문: 수" + "도는?" tokenizes differently together than apart.
  const promptIds = [BOS, ...enc(tok, "질문: 수")];
  const joint = [BOS, ...enc(tok, "질문: 수도는?"), EOS];
  const { examples, stats } = buildSftExamples([pc("질문: 수", "도는?")], tok);
  assertEquals(stats.promptMismatches, 1);
  assertEquals(examples[0].ids, joint);
  assertEquals(examples[0].labelMask, [...zeros(promptIds.length), ...ones(joint.length - promptIds.length)]);
});

Deno.test("examples: chat prompt-completion and messages, with one BOS from the template", async () => {
  const tok = await tinyTokenizer();
  const prompt = chat(["user", "안녕?"]), completion = chat(["assistant", "네!"]);
  const [ex] = buildSftExamples([pc(prompt, completion)], tok).examples;
  assertEquals(ex.ids, tok.encodeChat([...prompt, ...completion]));
  assertEquals(ex.ids.slice(0, 2), [BOS, 4], "<s><|user|>: the template's BOS, none added");
  assertEquals(targetText(tok, ex.ids, ex.labelMask), "네!</s>");
  assertEquals(ex.labelMask, [...zeros(ex.ids.length - 4), 1, 1, 1, 1]);

  const conversation = chat(["system", "짧게 답하세요."], ["user", "하나"], ["assistant", "첫 답"], [
    "user",
    "둘",
  ], [
    "assistant",
    "둘째 답",
  ]);
  const row: SftRow = { kind: "conversational", source: "m.jsonl:1", messages: conversation };
  const [whole] = buildSftExamples([row], tok).examples;
  assertEquals([whole.ids, whole.labelMask], [tok.encodeChat(conversation), ones(whole.ids.length)]);
  const [assistant] = buildSftExamples([row], tok, { assistantOnlyLoss: true }).examples;
  assertEquals(assistant.ids, whole.ids);
  assertEquals(targetText(tok, assistant.ids, assistant.labelMask), "첫 답</s>둘째 답</s>");
  const noAssistant: SftRow = {
    kind: "conversational",
    source: "m.jsonl:2",
    messages: chat(["user", "혼잣말"]),
  };
  assertEquals(buildSftExamples([noAssistant], tok, { assistantOnlyLoss: true }).stats.droppedSources, [
    "m.jsonl:2",
  ]);
});

Deno.test("examples: preference pairs as TRL builds them (text and chat), EOS once, BOS once", async () => {
  const tok = await tinyTokenizer();
  const [t] = buildPreferenceExamples([pref("질문: 수도는?", " 서울입니다.", " bad")], tok).examples;
  assertEquals(t.promptIds, [BOS, ...enc(tok, "질문: 수도는?")]);
  assertEquals(t.chosenIds, [...enc(tok, " 서울입니다."), EOS]);
  assertEquals(t.rejectedIds, [...enc(tok, " bad"), EOS]);

  const [c] = buildPreferenceExamples([
    pref(chat(["user", "안녕?"]), chat(["assistant", "네!"]), chat(["assistant", "Hi!"])),
  ], tok)
    .examples;
  assertEquals(c.promptIds, tok.encodeChat(chat(["user", "안녕?"]), { addGenerationPrompt: true }));
  assertEquals(c.promptIds.filter((id) => id === BOS).length, 1);
  // The template closes the turn with </s>; no second EOS is appended.
  assertEquals(c.chosenIds, enc(tok, "네!</s>"));
  assertEquals(c.rejectedIds, enc(tok, "Hi!</s>"));
  assertEquals(
    [...c.promptIds, ...c.chosenIds],
    tok.encodeChat(chat(["user", "안녕?"], ["assistant", "네!"])),
  );
});

Deno.test("examples: a tokenizer that adds no BOS gets none on text, and the template's on chats", async () => {
  const files = trainBpeTokenizer((await bundledTexts()).flat(), { vocabSize: 600 });
  files.tokenizerJson.post_processor = null;
  const tok = tokenizerFromFiles(files);
  assertEquals(tok.prefixIds, []);
  const [ex] = buildSftExamples([text("안녕")], tok).examples;
  assertEquals(ex.ids, [...enc(tok, "안녕"), EOS]);
  const [p] = buildPreferenceExamples([
    pref(chat(["user", "안녕?"]), chat(["assistant", "네"]), chat(["assistant", "no"])),
  ], tok)
    .examples;
  assertEquals(p.promptIds.slice(0, 2), [BOS, 4]);
});

Deno.test("examples: truncation keeps the prompt's end and the completion's start; empty completions are dropped", async () => {
  const tok = await tinyTokenizer();
  const prompt = [BOS, ...enc(tok, "하늘은 왜 파랗나요?")], completion = [...enc(tok, " 서울입니다."), EOS];
  const row = pc("하늘은 왜 파랗나요?", " 서울입니다.");

  const keepEnd = buildSftExamples([row], tok, { maxPromptLength: 3 });
  assertEquals(keepEnd.examples[0].ids, [...prompt.slice(-3), ...completion]);
  assertEquals(keepEnd.examples[0].labelMask, [0, 0, 0, ...ones(completion.length)]);
  assertEquals(keepEnd.stats.truncated, 1);

  const cut = buildSftExamples([row], tok, { maxLength: prompt.length + 2 }).examples[0];
  assertEquals(cut.ids, [...prompt, ...completion.slice(0, 2)]);
  assertEquals(cut.labelMask, [...zeros(prompt.length), 1, 1]);

  const both = buildSftExamples([row], tok, { maxPromptLength: 4, maxLength: 6 }).examples[0];
  assertEquals(both.ids, [...prompt.slice(-4), ...completion.slice(0, 2)]);

  const dropped = buildSftExamples([row, pc("짧은 질문", " 답", "p.jsonl:7")], tok, {
    maxLength: prompt.length,
  });
  assertEquals(dropped.examples.map((e) => e.source), ["p.jsonl:7"]);
  assertEquals([dropped.stats.kept, dropped.stats.dropped, dropped.stats.droppedSources], [1, 1, [
    "p.jsonl:1",
  ]]);

  const full = [BOS, ...enc(tok, "안녕하세요. 반갑습니다."), EOS];
  assertEquals(
    buildSftExamples([text("안녕하세요. 반갑습니다.")], tok, { maxLength: 4 }).examples[0].ids,
    full.slice(0, 4),
  );

  const pair = pref("하늘은 왜 파랗나요?", " 서울입니다.", " bad");
  const p = buildPreferenceExamples([pair], tok, { maxPromptLength: 2, maxLength: 4 });
  assertEquals([p.examples[0].promptIds, p.examples[0].chosenIds], [
    prompt.slice(-2),
    completion.slice(0, 2),
  ]);
  assertEquals(buildPreferenceExamples([pair], tok, { maxLength: prompt.length }).stats.dropped, 1);

  assertThrows(
    () => buildSftExamples([row], tok, { maxLength: 0 }),
    RangeError,
    "maxLength: expected a positive integer",
  );
  assertThrows(
    () => buildSftExamples([pc("q", chat(["assistant", "a"]))], tok),
    TypeError,
    "p.jsonl:1: a row's prompt",
  );
});

Deno.test("examples: current TRL encodes a pair's prompt and completion together; the legacy encoding apart", async () => {
  const tok = await tinyTokenizer();
  // " 수도" is one token: "질문: 수" + "도는?" merges across the boundary.
  const row = pref("질문: 수", "도는?", " bad");
  const prompt = [BOS, ...enc(tok, "질문: 수")];
  const jointChosen = tok.encode("질문: 수도는?</s>");
  // DPOTrainer: prompt and prompt+completion tokenized, the completion what follows the prompt's length.
  const dpo = buildPreferenceExamples([row], tok);
  assertEquals(dpo.examples[0].promptIds, prompt);
  assertEquals(dpo.examples[0].chosenIds, jointChosen.slice(prompt.length));
  assertEquals(dpo.stats.promptMismatches, 1);
  // ORPOTrainer: the merged prompt token moves into the completion; BOS and EOS added once.
  const [orpo] = buildPreferenceExamples([row], tok, { objective: "orpo" }).examples;
  const full = enc(tok, "질문: 수도는?");
  const start = enc(tok, "질문: 수").length - 1;
  assertEquals(orpo.promptIds, [BOS, ...full.slice(0, start)]);
  assertEquals(orpo.chosenIds, [...full.slice(start), EOS]);
  // The legacy encoding: prompt and completion apart, EOS as an id.
  const [legacy] = buildPreferenceExamples([row], tok, { encoding: "legacy" }).examples;
  assertEquals([legacy.promptIds, legacy.chosenIds], [prompt, [...enc(tok, "도는?"), EOS]]);
});

Deno.test("examples: chats are tokenized as apply_chat_template does (no BOS added); text gets EOS as text", async () => {
  const files = trainBpeTokenizer((await bundledTexts()).flat(), { vocabSize: 600 });
  const noBos = "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}";
  const tok = tokenizerFromFiles(files, { chatTemplate: noBos });
  assertEquals(tok.prefixIds, [BOS]);
  const messages = chat(["user", "안녕?"], ["assistant", "네!"]);
  const rendered = tok.applyChatTemplate(messages);
  const [trl] = buildSftExamples([{ kind: "conversational", source: "c:1", messages }], tok).examples;
  assertEquals(trl.ids, enc(tok, rendered), "no BOS the template does not write, no EOS");
  const [legacy] = buildSftExamples([{ kind: "conversational", source: "c:1", messages }], tok, {
    encoding: "legacy",
  }).examples;
  assertEquals(legacy.ids, [BOS, ...enc(tok, rendered)]);
  // A text that already ends with the EOS text gets no second one.
  const [t] = buildSftExamples([text("안녕</s>")], tok).examples;
  assertEquals(t.ids, [BOS, ...enc(tok, "안녕"), EOS]);
});
