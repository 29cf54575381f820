/** KoBEST inputs accepted with a loss the user must hear about: each gets a warning with a count. */
import { parseKobestTsv } from "../../eval/kobest/data.ts";
import { evaluateKobest } from "../../eval/kobest/evaluate.ts";
import type { TokenEncoder, TokenLogprobModel } from "../../eval/loglikelihood.ts";
import { assertEquals, assertStringIncludes } from "../asserts.ts";

Deno.test("kobest data: TSV rows dropped for an empty field are counted, with their lines", () => {
  const text = "ID\tText\tLabel\r\n1\t좋다\t1\r\n2\t\t0\r\n3\t싫다\t\r\n4\t그저 그렇다\t0\r\n";
  const warnings: string[] = [];
  const docs = parseKobestTsv(text, "sentineg", "SentiNeg/test.tsv", (m) => warnings.push(m));
  assertEquals(docs.length, 2);
  assertEquals(warnings.length, 1);
  assertStringIncludes(
    warnings[0],
    "SentiNeg/test.tsv: dropped 2 of 4 row(s) with an empty field (line 3, 4)",
  );
});

/** One token per character; a model that finds every continuation equally likely. */
const chars: TokenEncoder = { encode: (text) => [...text].map((c) => c.codePointAt(0)! % 1000) };
const flat = (maxLength: number): TokenLogprobModel => ({
  maxLength,
  tokenLogprobs: (batch) =>
    Promise.resolve(batch.map((q) => {
      const n = q.ids.length - 1 - q.scoreFrom;
      return { logprobs: new Float32Array(n).fill(-1), greedy: new Uint8Array(n) };
    })),
});

Deno.test("kobest: documents whose shots do not fit the window are counted per shot setting", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/sentineg`);
    const rows = (n: number, offset: number) =>
      Array.from({ length: n }, (_, i) => JSON.stringify({ sentence: `문장 ${i + offset}`, label: i % 2 }))
        .join("\n");
    await Deno.writeTextFile(`${dir}/sentineg/train.jsonl`, rows(20, 100));
    await Deno.writeTextFile(`${dir}/sentineg/test.jsonl`, rows(4, 0));
    const warnings: string[] = [];
    await evaluateKobest(flat(48), chars, {
      dataDir: dir,
      tasks: ["sentineg"],
      shots: [0, 5],
      onWarning: (m) => warnings.push(m),
    });
    // A 0-shot context is ~20 characters; five shots are ~100, far past the 48-token window.
    assertEquals(warnings.length, 1, warnings.join("\n"));
    assertStringIncludes(
      warnings[0],
      "5-shot: 4 of 4 documents (sentineg 4/4) are longer than max_length 48",
    );
    assertStringIncludes(warnings[0], "fewer than 5 whole shots");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
