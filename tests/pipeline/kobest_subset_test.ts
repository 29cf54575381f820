import { KOBEST_TASKS, kobestTsvPath, loadKobestSplit } from "../../eval/kobest/data.ts";
import { firstRecords, KOBEST_TINY_SIZES, writeKobestSubset } from "../../pipeline/kobest_subset.ts";
import { KOBEST_TINY_DIR } from "../../pipeline/settings.ts";
import { assertEquals, assertThrows } from "../asserts.ts";
import { sha256Hex } from "../helpers.ts";

Deno.test("kobest subset: cuts at record boundaries, keeping quoting, CRLF and the file's final newline", () => {
  const text = 'ID\tText\r\n1\t"a\r\nb ""q"""\r\n2\tc\r\n3\td';
  assertEquals(firstRecords(text, 2, "\t"), 'ID\tText\r\n1\t"a\r\nb ""q"""\r\n2\tc');
  assertEquals(firstRecords(text, 1, "\t"), 'ID\tText\r\n1\t"a\r\nb ""q"""');
  assertEquals(firstRecords(text + "\r\n", 1, "\t"), 'ID\tText\r\n1\t"a\r\nb ""q"""\r\n');
  assertEquals(firstRecords("h\nx\ny\n", 1, "\t"), "h\nx\n");
  assertEquals(firstRecords(text, 10, "\t"), text, "fewer records than asked: the whole file");
  assertEquals(firstRecords(text, 0, "\t"), "ID\tText");
  assertThrows(() => firstRecords(text, -1, "\t", "x.tsv"), RangeError, "x.tsv: records must be");
});

// SHA-256 of every bundled file. They were recorded after writeKobestSubset cut the full KoBEST v1.0 files
// (SKT-LSL/KoBEST_datarepo v1.0, commit 2956e24) into exactly these bytes; data/kobest_tiny/SOURCE.md says
// how to repeat that check with a download of the full set.
const BUNDLED_SHA256: Record<string, string> = {
  "BoolQ/train.tsv": "07f00d12626a12744a0c99b680b574cd89443d9d6fd405647ece32912135c03b",
  "BoolQ/test.tsv": "43bdf4da21ff0e67bc2d38be25df7ded320138ff8cfcb6375cb05b55ee8db057",
  "COPA/train.tsv": "ab161d5eaefb269076529f863f3b82d0c41678d1e4e20d3e8a7b627064f719b1",
  "COPA/test.tsv": "6e4f72d3db9b0d87201f43585b291aa8a9949aba73a7b6bfa9f09896c49645d6",
  "HellaSwag/train.tsv": "22f82ceb242f52f86b01c33880fbcd4e5252deb09fa6367a19a6738e3828f1e7",
  "HellaSwag/test.tsv": "0081dce30f159cd2c20e2fcd3c09d585afef6322f5b54bf635882532b8a71363",
  "SentiNeg/train.tsv": "7baa2dc39dec6fbcc464dbd048b26347a86117099a4ef470d9095658d74b099f",
  "SentiNeg/test.tsv": "e703913dc87ffb72437a9b40a6b4051690b8d6c46aab4b1b00e278e70e397754",
  "WiC/train.tsv": "bf3bc6421bdd4cca264ba0a5c58f0a7becbacfa1211717e43cbfbe0bdac3f754",
  "WiC/test.tsv": "8fbd631f894bea930ffa7ea990ea6b4590b45b78e5ca9e3d0cfc3c338d700aa3",
};

Deno.test("kobest subset: data/kobest_tiny holds whole records, cut as the cutter cuts, with the recorded bytes", async () => {
  // Cutting the bundled files again at the same sizes must give them back byte for byte: each is a header
  // plus exactly that many whole records, ending as the original file ends.
  const cut = await Deno.makeTempDir();
  try {
    const written = await writeKobestSubset(KOBEST_TINY_DIR, cut, KOBEST_TINY_SIZES);
    assertEquals(written.sort(), Object.keys(BUNDLED_SHA256).sort());
    for (const rel of written) {
      const bundled = await Deno.readFile(`${KOBEST_TINY_DIR}/${rel}`);
      assertEquals(await Deno.readFile(`${cut}/${rel}`), bundled, rel);
      assertEquals(await sha256Hex(bundled), BUNDLED_SHA256[rel], `${rel} differs from the verified cut`);
    }
  } finally {
    await Deno.remove(cut, { recursive: true });
  }
});

Deno.test("kobest subset: eval/kobest/data.ts loads every bundled file with every record", async () => {
  for (const task of KOBEST_TASKS) {
    for (const [split, count] of [["train", 120], ["test", 40]] as const) {
      const docs = await loadKobestSplit(KOBEST_TINY_DIR, task, split);
      assertEquals(docs.length, count, kobestTsvPath(task, split));
    }
  }
});
