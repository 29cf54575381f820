import {
  DatasetError,
  fileTypeOf,
  loadDataset,
  parseDataset,
  type PreferenceRow,
  type PromptCompletionRow,
  readRawRows,
  rowTexts,
  seededRandom,
  splitEval,
} from "../../io/datasets.ts";
import { assert, assertEquals, assertNotEquals, assertRejects, assertThrows } from "../asserts.ts";

const jsonl = (...rows: unknown[]) =>
  rows.map((r) => typeof r === "string" ? r : JSON.stringify(r)).join("\n") + "\n";

Deno.test("datasets: JSONL rows of each format keep their file:line", () => {
  const text = jsonl(
    { text: "안녕하세요." },
    "",
    { prompt: "1+1은?", completion: "2입니다." },
    { messages: [{ role: "user", content: "안녕?" }, { role: "assistant", content: "안녕하세요!" }] },
  );
  const ds = parseDataset(text, "sft.jsonl");
  assertEquals(ds.format, "language-modeling");
  assertEquals(ds.rows, [
    { kind: "language-modeling", source: "sft.jsonl:1", text: "안녕하세요." },
    { kind: "prompt-completion", source: "sft.jsonl:3", prompt: "1+1은?", completion: "2입니다." },
    {
      kind: "conversational",
      source: "sft.jsonl:4",
      messages: [{ role: "user", content: "안녕?" }, { role: "assistant", content: "안녕하세요!" }],
    },
  ]);
  const pref = parseDataset(jsonl({ prompt: "질문", chosen: "좋은 답", rejected: "bad answer" }), "p.jsonl");
  assertEquals(pref.rows[0], {
    kind: "preference",
    source: "p.jsonl:1",
    prompt: "질문",
    chosen: "좋은 답",
    rejected: "bad answer",
    implicitPrompt: false,
  });
});

Deno.test("datasets: conversational prompt-completion and preference rows", () => {
  const user = [{ role: "user", content: "수도는?" }];
  const ds = parseDataset(
    jsonl({
      prompt: user,
      chosen: [{ role: "assistant", content: "서울" }],
      rejected: [{ role: "assistant", content: "Seoul" }],
    }),
    "c.jsonl",
  );
  const row = ds.rows[0] as PreferenceRow;
  assertEquals([row.prompt, row.chosen], [user, [{ role: "assistant", content: "서울" }]]);
  assertThrows(
    () => parseDataset(jsonl({ prompt: user, completion: "서울" }), "c.jsonl"),
    DatasetError,
    'c.jsonl:1: field "completion": expected a list of messages like "prompt", got a string',
  );
});

Deno.test("datasets: JSON arrays and data/train objects report each element's line", () => {
  const arr = '[\n  {"text": "하나"},\n\n  {\n    "text": "둘"\n  }, {"text": "셋"}\n]\n';
  assertEquals(parseDataset(arr, "a.json").rows.map((r) => r.source), ["a.json:2", "a.json:4", "a.json:6"]);
  const obj = '{"version": "data", "meta": {"data": [1]},\n "data": [\n {"text": "가"},\n {"text": "나"}]}';
  assertEquals(parseDataset(obj, "o.json").rows.map((r) => r.source), ["o.json:3", "o.json:4"]);
  const train = '{"train": [{"text": "[\\"x\\"] {"}, \n{"text": "y"}]}';
  assertEquals(parseDataset(train, "t.json").rows.map((r) => r.source), ["t.json:1", "t.json:2"]);
  assertThrows(
    () => parseDataset('{"rows": []}', "r.json"),
    DatasetError,
    'r.json: expected a JSON list of rows or an object with a "data" or "train" list, got object with keys rows',
  );
  assertThrows(() => parseDataset("[1,", "bad.json"), DatasetError, "bad.json: invalid JSON");
});

Deno.test("datasets: CSV with quoted newlines, message cells and TSV", () => {
  const csv = 'prompt,completion,note\n"여러 줄\n질문",답,x\n"[짧은] 질문","두 줄\n""답""",\n';
  const ds = parseDataset(csv, "d.csv");
  assertEquals(ds.rows.map((r) => r.source), ["d.csv:2", "d.csv:4"]);
  assertEquals((ds.rows[0] as PromptCompletionRow).prompt, "여러 줄\n질문");
  // A cell starting with "[" that is not JSON stays text.
  assertEquals((ds.rows[1] as PromptCompletionRow).prompt, "[짧은] 질문");
  assertEquals((ds.rows[1] as PromptCompletionRow).completion, '두 줄\n"답"');

  const tsv =
    'messages\tid\n[{"role": "user", "content": "안녕"}, {"role": "assistant", "content": "네"}]\t1\n';
  assertEquals(parseDataset(tsv, "m.tsv").rows[0].kind, "conversational");
  assertThrows(
    () => parseDataset("messages\nnot json\n", "m.csv"),
    DatasetError,
    'm.csv:2: field "messages": expected a JSON list',
  );
  assertThrows(
    () => parseDataset('text,x\n"open,1\n', "q.csv"),
    DatasetError,
    "q.csv:2: quoted field is never closed",
  );
});

Deno.test("datasets: bad rows stop with file:line, field, expectation and the detected format", () => {
  const first = { prompt: "질문", chosen: "답", rejected: "answer" };
  const cases: [unknown, string][] = [
    [
      { prompt: "q", chosen: 3, rejected: "r" },
      'p.jsonl:2: field "chosen": expected a non-empty string or a list of {role, content} messages, got number ' +
      '(format "preference", detected from the first row)',
    ],
    [
      { prompt: "q", chosen: "", rejected: "r" },
      'p.jsonl:2: field "chosen": expected a non-empty string or a list of {role, content} messages, got empty string',
    ],
    [{ prompt: "q", chosen: "c" }, 'p.jsonl:2: field "rejected": missing (format "preference"'],
    [
      { prompt: null, chosen: "c", rejected: "r" },
      'p.jsonl:2: field "prompt": expected a non-empty string or a list of {role, content} messages, got null',
    ],
    [{ text: "x" }, 'p.jsonl:2: a "language-modeling" row in a "preference" dataset'],
    ["[1, 2]", "p.jsonl:2: expected a JSON object, got list"],
    ['{"prompt": "q",', "p.jsonl:2: not valid JSON"],
  ];
  for (const [bad, message] of cases) {
    assertThrows(() => parseDataset(jsonl(first, bad), "p.jsonl"), DatasetError, message);
  }
  const chat = (role: unknown, content: unknown) => ({
    messages: [{ role: "user", content: "a" }, { role, content }],
  });
  assertThrows(
    () => parseDataset(jsonl(chat("bot", "b")), "m.jsonl"),
    DatasetError,
    'm.jsonl:1: field "messages[1].role": expected one of system, user, assistant, tool, got "bot"',
  );
  assertThrows(
    () => parseDataset(jsonl(chat("assistant", 5)), "m.jsonl"),
    DatasetError,
    'field "messages[1].content": expected a non-empty string, got number',
  );
  assertThrows(
    () => parseDataset(jsonl({ messages: [] }), "m.jsonl"),
    DatasetError,
    'field "messages": expected a non-empty list',
  );
  assertThrows(
    () => parseDataset(jsonl({ prompt: "q", completion: "c" }, { prompt: "q2" }), "s.jsonl"),
    DatasetError,
    's.jsonl:2: field "completion": missing (format "prompt-completion"',
  );
  assertThrows(
    () => parseDataset(jsonl({ question: "q" }), "u.jsonl"),
    DatasetError,
    "u.jsonl:1: cannot tell the dataset format from the fields (question)",
  );
  assertThrows(() => parseDataset(jsonl({ prompt: "q" }), "u.jsonl"), DatasetError, "prompt-only format");
  assertThrows(
    () => parseDataset("\n\n", "e.jsonl"),
    DatasetError,
    "e.jsonl: no usable rows: it holds no rows",
  );
});

Deno.test("datasets: skipBadRows counts and reports the rows it leaves out", () => {
  const text = jsonl(
    "not json",
    { prompt: "q1", completion: "c1" },
    { prompt: "q2", completion: 7 },
    { prompt: "q3", completion: "c3" },
    { prompt: "q4" },
    { prompt: "q5", completion: "c5" },
  );
  const ds = parseDataset(text, "s.jsonl", { skipBadRows: true });
  assertEquals(ds.format, "prompt-completion");
  assertEquals(ds.rows.map((r) => r.source), ["s.jsonl:2", "s.jsonl:4", "s.jsonl:6"]);
  assertEquals(ds.skipped, 3);
  assertEquals(ds.errors.map((e) => e.split(":").slice(0, 2).join(":")), [
    "s.jsonl:1",
    "s.jsonl:3",
    "s.jsonl:5",
  ]);
  assertThrows(
    () => parseDataset(jsonl("x", "y"), "z.jsonl", { skipBadRows: true }),
    DatasetError,
    "all 2 rows are invalid",
  );
});

Deno.test("datasets: TRL's implicit prompt is split off, or rejected with a reason", () => {
  const u = { role: "user", content: "수도는?" };
  const ds = parseDataset(
    jsonl(
      {
        chosen: [u, { role: "assistant", content: "서울" }],
        rejected: [u, { role: "assistant", content: "Tokyo" }],
      },
      { chosen: "질문: 수도는? 답: 서울", rejected: "질문: 수도는? 답: 부산" },
    ),
    "i.jsonl",
  );
  const [chat, text] = ds.rows as PreferenceRow[];
  assertEquals([chat.prompt, chat.chosen, chat.implicitPrompt], [[u], [{
    role: "assistant",
    content: "서울",
  }], true]);
  // The space before the differing point stays with the completions, as in TRL.
  assertEquals([text.prompt, text.chosen, text.rejected], ["질문: 수도는? 답:", " 서울", " 부산"]);
  assertThrows(
    () => parseDataset(jsonl({ chosen: "가나", rejected: "다라" }), "i.jsonl"),
    DatasetError,
    'field "prompt": missing (TRL\'s implicit prompt), and "chosen" and "rejected" share no start',
  );
  assertThrows(
    () => parseDataset(jsonl({ chosen: "같다", rejected: "같다" }), "i.jsonl"),
    DatasetError,
    "would leave one of them empty",
  );
});

Deno.test("datasets: expect names the family the caller needs", () => {
  const pref = jsonl({ prompt: "q", chosen: "c", rejected: "r" });
  assertThrows(
    () => parseDataset(pref, "p.jsonl", { expect: "sft" }),
    DatasetError,
    'p.jsonl:1: the first row is a "preference" row, but SFT needs',
  );
  assertThrows(
    () => parseDataset(jsonl({ text: "t" }), "t.jsonl", { expect: "preference" }),
    DatasetError,
    "DPO and ORPO need",
  );
});

Deno.test("datasets: splitEval is deterministic for a seed and partitions the rows", () => {
  const rows = Array.from({ length: 50 }, (_, i) => i);
  const a = splitEval(rows, { evalFraction: 0.1, seed: 3 });
  assertEquals(a, splitEval(rows, { evalFraction: 0.1, seed: 3 }));
  assertEquals(a.eval.length, 5);
  assertEquals([...a.train, ...a.eval].sort((x, y) => x - y), rows);
  assert(a.train.every((x, i) => i === 0 || a.train[i - 1] < x), "train keeps file order");
  assertNotEquals(a.eval, splitEval(rows, { evalFraction: 0.1, seed: 4 }).eval);
  assertEquals(splitEval(rows, { evalFraction: 0, seed: 1 }).eval, []);
  assertEquals(splitEval([1, 2, 3], { evalFraction: 0.01, seed: 1 }).eval.length, 1);
  assertThrows(() => splitEval([1], { evalFraction: 0.5, seed: 1 }), RangeError, "leaves no training rows");
  assertThrows(() => splitEval(rows, { evalFraction: 1, seed: 1 }), RangeError, "[0, 1)");
  assertEquals(seededRandom(9)(), seededRandom(9)());
});

Deno.test("datasets: readRawRows, file types and missing files", async () => {
  assertEquals([...readRawRows('\ufeff{"a": 1}\r\n', "r.jsonl", "jsonl")], [{
    source: "r.jsonl:1",
    value: { a: 1 },
  }]);
  assertEquals([fileTypeOf("a.JSONL"), fileTypeOf("b.json"), fileTypeOf("c.csv"), fileTypeOf("d.tsv")], [
    "jsonl",
    "json",
    "csv",
    "tsv",
  ]);
  assertEquals(fileTypeOf("train-00000-of-00001.parquet"), "parquet");
  assertThrows(() => fileTypeOf("x.arrow"), DatasetError, "x.arrow: unknown dataset file type");
  await assertRejects(
    () => loadDataset("/nonexistent/d.jsonl"),
    DatasetError,
    "/nonexistent/d.jsonl: cannot read the dataset",
  );
});

Deno.test("datasets: the bundled Korean data is valid", async () => {
  const pref = await loadDataset(new URL("../../data/ko_pref_tiny.jsonl", import.meta.url).pathname, {
    expect: "preference",
  });
  assertEquals([pref.format, pref.rows.length, pref.skipped], ["preference", 200, 0]);
  const sft = await loadDataset(new URL("../../data/ko_sft_tiny.jsonl", import.meta.url).pathname, {
    expect: "sft",
  });
  const kinds = sft.rows.map((r) => r.kind);
  assertEquals(kinds.filter((k) => k === "prompt-completion").length, 200);
  assertEquals(kinds.filter((k) => k === "conversational").length, 50);
  // The SFT prompts and completions are the preference prompts and chosen answers.
  const chosen = new Map(pref.rows.map((r) => [(r as PreferenceRow).prompt, (r as PreferenceRow).chosen]));
  for (const r of sft.rows) {
    if (r.kind === "prompt-completion") assertEquals(r.completion, chosen.get(r.prompt as string));
  }
  const hangul = [...pref.rows, ...sft.rows].flatMap(rowTexts).join("").match(/[가-힣]/g)?.length ?? 0;
  assert(hangul > 20000, `only ${hangul} Hangul syllables`);
});
