import { JsonlError, jsonlLines, JsonlLog, parseJsonl } from "../../io/jsonl.ts";
import { assertEquals, assertRejects, assertStringIncludes, assertThrows } from "../asserts.ts";

class OtherError extends Error {}

Deno.test("jsonl: objects with file:line; blank lines, a BOM and CRLF are fine", () => {
  const rows = parseJsonl('\ufeff{"a":1}\r\n\r\n  \n{"a":2}', "x.jsonl");
  assertEquals(rows.map((r) => [r.line, r.where, r.value.a, r.text]), [
    [1, "x.jsonl:1", 1, '{"a":1}'],
    [4, "x.jsonl:4", 2, '{"a":2}'],
  ]);
});

Deno.test("jsonl: in an input file every bad line is an error naming file:line, the last one too", () => {
  assertThrows(() => parseJsonl('{"a":1}\n{"a":\n', "x.jsonl"), JsonlError, "x.jsonl:2: not valid JSON (");
  assertThrows(() => parseJsonl('{"a":1}\n{"a":', "x.jsonl"), JsonlError, "x.jsonl:2: not valid JSON");
  assertThrows(
    () => parseJsonl("[1]\n", "x.jsonl"),
    JsonlError,
    "x.jsonl:1: expected a JSON object, got list",
  );
  assertThrows(
    () => parseJsonl('"s"\n', "x.jsonl", { error: (m) => new OtherError(m) }),
    OtherError,
    "string",
  );
  const lines = jsonlLines('{"a":1}\nnull\n{', "x.jsonl").map((l) => "error" in l ? l.error : l.value);
  assertEquals(lines.slice(0, 2), [{ a: 1 }, "x.jsonl:2: expected a JSON object, got null"]);
  assertStringIncludes(String(lines[2]), "x.jsonl:3: not valid JSON (");
});

Deno.test("jsonl: in a log a cut last line is left out with a warning; a cut line followed by more is an error", () => {
  const warnings: string[] = [];
  const warn = (w: string) => warnings.push(w);
  const rows = parseJsonl('{"a":1}\n{"a":2}\n{"a', "log.jsonl", { log: true, warn });
  assertEquals(rows.map((r) => r.value.a), [1, 2]);
  assertEquals(warnings.length, 1);
  assertStringIncludes(
    warnings[0],
    "log.jsonl:3: a last line cut short (no newline at its end, not valid JSON)",
  );
  assertThrows(
    () => parseJsonl('{"a":1}\n{"a\n{"a":2}\n', "log.jsonl", { log: true, warn }),
    JsonlError,
    "log.jsonl:2: not valid JSON",
  );
  assertThrows(
    () => parseJsonl('{"a":1}\n{"a\n', "log.jsonl", { log: true, warn }),
    JsonlError,
    "log.jsonl:2",
  );
  assertEquals(warnings.length, 1, "only a last line without its newline is a cut write");
});

Deno.test("jsonl log: a killed writer's cut line is cut off the file before the next append", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/log.jsonl`;
  const warnings: string[] = [];
  const warn = (w: string) => warnings.push(w);
  try {
    const fresh = await JsonlLog.open(path, { warn });
    assertEquals(fresh.rows.length, 0, "a missing file is an empty log");
    await Promise.all([fresh.append({ n: 1 }), fresh.append({ n: 2 }), fresh.append({ n: 3 })]);
    assertEquals(await Deno.readTextFile(path), '{"n":1}\n{"n":2}\n{"n":3}\n', "appends keep their order");

    // Killed mid-line, and mid-character: the last line's bytes end inside "한".
    const cut = new TextEncoder().encode('{"n":4,"s":"한');
    await Deno.writeFile(path, cut.subarray(0, cut.length - 1), { append: true });
    const reopened = await JsonlLog.open(path, { warn });
    assertEquals(reopened.rows.map((r) => r.value.n), [1, 2, 3]);
    assertEquals(await Deno.readTextFile(path), '{"n":1}\n{"n":2}\n{"n":3}\n', "the cut line is gone");
    assertStringIncludes(warnings[0], `${path}:4: a last line cut short`);
    assertStringIncludes(warnings[0], "removed from the file");
    await reopened.append({ n: 4 });
    assertEquals((await JsonlLog.open(path)).rows.map((r) => r.value.n), [1, 2, 3, 4]);

    // A whole last line without its newline (written by hand) is kept, and the next row gets a line of its own.
    await Deno.writeTextFile(path, '{"n":1}');
    const handWritten = await JsonlLog.open(path, { warn });
    await handWritten.append({ n: 2 });
    assertEquals(await Deno.readTextFile(path), '{"n":1}\n{"n":2}\n');
    assertEquals(warnings.length, 1);

    await Deno.writeTextFile(path, '{"n":1}\n{oops\n{"n":3}\n');
    await assertRejects(
      () => JsonlLog.open(path, { error: (m) => new OtherError(m) }),
      OtherError,
      `${path}:2: not valid JSON`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("jsonl log: keep drops rows a resumed run redoes, rewriting the file whole", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/metrics.jsonl`;
  try {
    await Deno.writeTextFile(
      path,
      '{"step":1,"loss":2}\n{"step":2, "loss":1.5}\n{"step":3,"loss":1}\n{"step":4,"lo',
    );
    const log = await JsonlLog.open(path, { keep: (r) => (r.value.step as number) <= 2, warn: () => {} });
    assertEquals(log.rows.map((r) => r.value.step), [1, 2]);
    assertEquals(
      await Deno.readTextFile(path),
      '{"step":1,"loss":2}\n{"step":2, "loss":1.5}\n',
      "lines as written",
    );
    await log.append({ step: 3, loss: 0.9 });
    assertEquals((await Deno.readTextFile(path)).split("\n").length, 4);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
