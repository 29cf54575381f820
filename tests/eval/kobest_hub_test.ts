import { loadKobestSplit } from "../../eval/kobest/data.ts";
import { kobestDataDir } from "../../eval/kobest/run.ts";
import { assertEquals, assertRejects } from "../asserts.ts";
import { FakeHub } from "../io/fake_hub.ts";

Deno.test("kobest: without --data-dir the Hub's jsonl files are fetched into the cache and read", async () => {
  const boolq = (n: number) =>
    Array.from(
      { length: n },
      (_, i) => JSON.stringify({ paragraph: `문단 ${i}`, question: `질문 ${i}?`, label: i % 2 }),
    ).join("\n") + "\n";
  const hub = FakeHub.start([{
    type: "dataset",
    id: "skt/kobest_v1",
    commit: "a".repeat(40),
    files: { "boolq/test.jsonl": boolq(3), "boolq/train.jsonl": boolq(5) },
  }]);
  const cacheDir = await Deno.makeTempDir({ prefix: "hf-cache-" });
  try {
    const dir = await kobestDataDir(undefined, ["boolq"], ["test", "train"], {
      endpoint: hub.endpoint,
      cacheDir,
      token: "",
    });
    assertEquals(dir.includes("datasets--skt--kobest_v1"), true, dir);
    const docs = await loadKobestSplit(dir, "boolq", "test");
    assertEquals(docs.map((d) => [d.question, d.label]), [["질문 0?", 0], ["질문 1?", 1], ["질문 2?", 0]]);
    // A second call is served from the cache, offline.
    const again = await kobestDataDir(undefined, ["boolq"], ["test", "train"], { cacheDir, offline: true });
    assertEquals(again, dir);
    // Offline with an empty cache: the error says which files are needed and where they come from.
    const empty = await Deno.makeTempDir({ prefix: "hf-empty-" });
    await assertRejects(
      () => kobestDataDir(undefined, ["copa"], ["test"], { cacheDir: empty, offline: true }),
      Error,
      "copa/test.jsonl",
    );
    await Deno.remove(empty, { recursive: true });
  } finally {
    await hub.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});
