import { DelimitedSyntaxError, parseDelimited, parseTable } from "../../io/delimited.ts";
import { assertEquals, assertThrows } from "../asserts.ts";

Deno.test("delimited: CRLF, no final newline, quoted fields with doubled quotes and tabs", () => {
  const text = 'ID\tText\r\n1\t"He said ""hi""\tthere"\r\n2\tplain "inner" quote';
  assertEquals(parseDelimited(text, { delimiter: "\t" }), [
    { line: 1, fields: ["ID", "Text"] },
    { line: 2, fields: ["1", 'He said "hi"\tthere'] },
    { line: 3, fields: ["2", 'plain "inner" quote'] },
  ]);
});

Deno.test("delimited: a quoted field may span lines; line numbers follow the file", () => {
  const recs = parseDelimited('a,b\n"x\ny",2\n\n3,4\n', { delimiter: "," });
  assertEquals(recs, [
    { line: 1, fields: ["a", "b"] },
    { line: 2, fields: ["x\ny", "2"] },
    { line: 5, fields: ["3", "4"] },
  ]);
});

Deno.test("delimited: empty trailing field, BOM and lone CR", () => {
  assertEquals(parseDelimited("\ufeffa,\rb,c", { delimiter: "," }).map((r) => r.fields), [["a", ""], [
    "b",
    "c",
  ]]);
});

Deno.test("delimited: errors name the file and line", () => {
  assertThrows(
    () => parseDelimited('a\n"open', { delimiter: "\t", file: "x.tsv" }),
    DelimitedSyntaxError,
    "x.tsv:2",
  );
  assertThrows(
    () => parseTable("a,b\n1,2\n3\n", { delimiter: ",", file: "t.csv" }),
    DelimitedSyntaxError,
    "t.csv:3: expected 2 fields",
  );
});

Deno.test("delimited: every KoBEST TSV reads as Python's csv module reads it (row counts)", async () => {
  // Counts from Python: len(list(csv.reader(f, delimiter="\t"))) for each file, header included.
  const expected: Record<string, number> = {
    "BoolQ/train.tsv": 3666,
    "COPA/test.tsv": 1001,
    "HellaSwag/dev.tsv": 501,
    "SentiNeg/test.tsv": 398,
    "WiC/train.tsv": 3319,
  };
  for (const [f, n] of Object.entries(expected)) {
    const text = await Deno.readTextFile(new URL(`../../../shared/data/kobest/${f}`, import.meta.url));
    assertEquals(parseTable(text, { delimiter: "\t", file: f }).rows.length + 1, n, f);
  }
});
