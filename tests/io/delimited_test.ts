import { DelimitedSyntaxError, parseDelimited, parseTable } from "../../io/delimited.ts";
import { KOBEST_TINY_DIR } from "../../pipeline/settings.ts";
import { assertEquals, assertThrows } from "../asserts.ts";
import { sha256Hex } from "../helpers.ts";

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

Deno.test("delimited: every bundled KoBEST TSV reads as Python's csv module reads it, field for field", async () => {
  // From Python 3.11: rows = list(csv.reader(f, delimiter="\t")) (header included) for each file of
  // data/kobest_tiny, with the SHA-256 of json.dumps(rows, ensure_ascii=False, separators=(",", ":")).
  const expected: Record<string, [number, string]> = {
    "BoolQ/test.tsv": [41, "b5bd084a33975f49bf62704d70087e8494bd05547749ede8d7b522eff633caaa"],
    "BoolQ/train.tsv": [121, "422801509e1056e68eb7a4e792b3f4a58aa0ef5aa7c3dbafc1e24ca6b8922d96"],
    "COPA/test.tsv": [41, "4132e7289d51a90e39237e0cf8888e79f7155d2e816e3bc9cbe2e75f898ab458"],
    "COPA/train.tsv": [121, "539b78dd98dba0e91fecdc74a2b9063aa9ff8c7f79640ea3bd982653e6e9fe47"],
    "HellaSwag/test.tsv": [41, "53476351ae9ad420fcb34e15065ee94b187f1d8e3a6bc707cff7f0780ae0ada0"],
    "HellaSwag/train.tsv": [121, "5187e70853979c1d052af2ade2eb3e49a8918a7d0a681b0b206ff7ce094b34db"],
    "SentiNeg/test.tsv": [41, "76a3721040616536fa000295602aa176272019cdb5283e3859bc514f7db381c0"],
    "SentiNeg/train.tsv": [121, "27b09c95cf490cb2333f11d0e6e8e913d31d82f5837a1763aa40a8fd34e073d7"],
    "WiC/test.tsv": [41, "1ff2edf9d41704ca68223e6317651c7234fb216cf0bd48142d3fd81cfaa368ec"],
    "WiC/train.tsv": [121, "b1f955dcc21fb9a7627c38ed01896dbc9d8b6d746b93e74e65b28bd34360372b"],
  };
  for (const [f, [count, sha256]] of Object.entries(expected)) {
    const text = await Deno.readTextFile(`${KOBEST_TINY_DIR}/${f}`);
    const rows = parseDelimited(text, { delimiter: "\t", file: f }).map((r) => r.fields);
    assertEquals(rows.length, count, f);
    assertEquals(await sha256Hex(JSON.stringify(rows)), sha256, f);
    assertEquals(parseTable(text, { delimiter: "\t", file: f }).rows.length + 1, count, f);
  }
});
