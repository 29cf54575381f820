import { KOBEST_TASKS, kobestTsvPath, loadKobestSplit } from "../../eval/kobest/data.ts";
import { firstRecords, KOBEST_TINY_SIZES, writeKobestSubset } from "../../pipeline/kobest_subset.ts";
import { KOBEST_TINY_DIR } from "../../pipeline/settings.ts";
import { assertEquals, assertThrows } from "../asserts.ts";

const SOURCE = new URL("../../../shared/data/kobest", import.meta.url).pathname;

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

Deno.test("kobest subset: data/kobest_tiny is the first records of KoBEST v1.0, byte for byte", async () => {
  const cut = await Deno.makeTempDir();
  const written = await writeKobestSubset(SOURCE, cut, KOBEST_TINY_SIZES);
  assertEquals(written.length, KOBEST_TASKS.length * 2);
  for (const rel of written) {
    assertEquals(await Deno.readFile(`${KOBEST_TINY_DIR}/${rel}`), await Deno.readFile(`${cut}/${rel}`), rel);
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
