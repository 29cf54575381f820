/**
 * `--dataset_name` as TRL's scripts take it: a file, a folder or a Hub dataset repo, split as `datasets`
 * splits one (README.md configs, `data/<split>-00000-of-00001.*`, split words in names), with Parquet files
 * read by hyparquet — checked against files written as `datasets`/pyarrow lay them out.
 */
// deno-lint-ignore no-import-prefix
import { parquetWriteBuffer } from "npm:hyparquet-writer@0.17.0";
import { datasetSplitFiles, globRegExp, splitDataFiles } from "../../io/dataset_repo.ts";
import { loadDataset } from "../../io/datasets.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../asserts.ts";
import { FakeHub } from "./fake_hub.ts";

const split = (files: string[], readme?: string, config?: string) =>
  Object.fromEntries(splitDataFiles("org/set", files, readme, config));

Deno.test("dataset repo: files split by name as datasets splits them", () => {
  // push_to_hub's layout: data/<split>-NNNNN-of-NNNNN.parquet, any split name.
  assertEquals(
    split([
      "README.md",
      ".gitattributes",
      "data/train-00000-of-00002.parquet",
      "data/train-00001-of-00002.parquet",
      "data/test_prefs-00000-of-00001.parquet",
    ]),
    {
      train: ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"],
      test_prefs: ["data/test_prefs-00000-of-00001.parquet"],
    },
  );
  // Split words in file names, then in folder names; the most common data extension wins.
  assertEquals(split(["train.jsonl", "dev.jsonl", "eval.jsonl", "notes.txt"]), {
    train: ["train.jsonl"],
    validation: ["dev.jsonl"],
    test: ["eval.jsonl"],
  });
  assertEquals(split(["my_train_2.json", "my_test_2.json", "retrain.csv"]), {
    train: ["my_train_2.json"],
    test: ["my_test_2.json"],
  });
  assertEquals(split(["training/a.jsonl", "training/b.jsonl", "testing/c.jsonl"]), {
    train: ["training/a.jsonl", "training/b.jsonl"],
    test: ["testing/c.jsonl"],
  });
  // No split names: everything is train.
  assertEquals(split(["part1.jsonl", "part2.jsonl"]), { train: ["part1.jsonl", "part2.jsonl"] });
  // A configuration named without README configs: its folder.
  assertEquals(split(["boolq/train.jsonl", "boolq/test.jsonl", "copa/train.jsonl"], undefined, "copa"), {
    train: ["copa/train.jsonl"],
  });
  assertThrows(() => split(["README.md"]), Error, "org/set: no data files");
});

Deno.test("dataset repo: README.md configs pick the files of each split and configuration", () => {
  const readme = `---
license: mit
configs:
- config_name: default
  data_files:
  - split: train
    path: "data/train-*"
  - split: test
    path: data/test-*
- config_name: ko
  default: true
  data_dir: ko
- config_name: raw
  data_files: raw/*.jsonl
---
# A dataset
`;
  const files = [
    "data/train-00000-of-00001.parquet",
    "data/test-00000-of-00001.parquet",
    "ko/train.jsonl",
    "ko/validation.jsonl",
    "raw/a.jsonl",
    "raw/b.jsonl",
  ];
  assertEquals(split(files, readme), { train: ["ko/train.jsonl"], validation: ["ko/validation.jsonl"] });
  assertEquals(split(files, readme, "default"), {
    train: ["data/train-00000-of-00001.parquet"],
    test: ["data/test-00000-of-00001.parquet"],
  });
  assertEquals(split(files, readme, "raw"), { train: ["raw/a.jsonl", "raw/b.jsonl"] });
  assertThrows(
    () => split(files, readme, "en"),
    Error,
    'org/set: no configuration "en" (it has default, ko, raw)',
  );
  const several = readme.replace("  default: true\n", "").replace("config_name: default", "config_name: en");
  assertThrows(
    () => split(files, several),
    Error,
    "several configurations (en, ko, raw); choose one with --dataset_config",
  );
  assert(globRegExp("**/train-*.parquet").test("a/b/train-0.parquet"));
  assert(!globRegExp("data/*.jsonl").test("data/x/y.jsonl"));
});

/** Preference rows in a Parquet file as `datasets` writes them (string columns, a list<struct> of messages). */
function preferenceParquet(rows: { prompt: string; chosen: string; rejected: string }[]): Uint8Array {
  return new Uint8Array(parquetWriteBuffer({
    columnData: [
      { name: "prompt", data: rows.map((r) => r.prompt), type: "STRING" },
      { name: "chosen", data: rows.map((r) => r.chosen), type: "STRING" },
      { name: "rejected", data: rows.map((r) => r.rejected), type: "STRING" },
      { name: "score", data: rows.map((_, i) => BigInt(i)), type: "INT64" },
    ],
  }));
}

function chatParquet(conversations: { role: string; content: string }[][]): Uint8Array {
  return new Uint8Array(parquetWriteBuffer({
    columnData: [{ name: "messages", data: conversations }],
    schema: [
      { name: "root", num_children: 1 },
      { name: "messages", repetition_type: "REQUIRED", converted_type: "LIST", num_children: 1 },
      { name: "list", repetition_type: "REPEATED", num_children: 1 },
      { name: "element", repetition_type: "REQUIRED", num_children: 2 },
      { name: "role", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "REQUIRED" },
      { name: "content", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "REQUIRED" },
    ],
  }));
}

Deno.test("datasets: Parquet rows (strings, int64, a list of message structs) and JSON Lines in .json", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const rows = [{ prompt: "수도는?", chosen: "서울", rejected: "부산" }, {
      prompt: "1+1?",
      chosen: "2",
      rejected: "3",
    }];
    await Deno.writeFile(`${dir}/pref.parquet`, preferenceParquet(rows));
    const pref = await loadDataset(`${dir}/pref.parquet`, { expect: "preference" });
    assertEquals(pref.rows.map((r) => "chosen" in r ? [r.prompt, r.chosen] : []), [["수도는?", "서울"], [
      "1+1?",
      "2",
    ]]);
    await Deno.writeFile(
      `${dir}/chat.parquet`,
      chatParquet([[{ role: "user", content: "안녕" }, { role: "assistant", content: "반가워요" }]]),
    );
    const chat = await loadDataset(`${dir}/chat.parquet`);
    assertEquals(chat.format, "conversational");
    // A bad row is named by its row number.
    await Deno.writeFile(`${dir}/bad.parquet`, preferenceParquet([rows[0], { ...rows[1], chosen: "" }]));
    await assertRejects(() => loadDataset(`${dir}/bad.parquet`), Error, "bad.parquet:row 2");
    await Deno.writeFile(`${dir}/junk.parquet`, new TextEncoder().encode("not parquet at all"));
    await assertRejects(() => loadDataset(`${dir}/junk.parquet`), Error, "junk.parquet: not a Parquet file");
    await Deno.writeTextFile(`${dir}/lines.json`, '{"text": "하나"}\n{"text": "둘"}\n');
    assertEquals((await loadDataset(`${dir}/lines.json`)).rows.length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dataset repo: a Hub dataset's split is downloaded into the cache; a file has only train", async () => {
  const rows = (n: number, tag: string) =>
    Array.from({ length: n }, (_, i) => ({ prompt: `${tag} ${i}?`, chosen: "예", rejected: "아니오" }));
  const hub = FakeHub.start([{
    type: "dataset",
    id: "org/ko-prefs",
    commit: "b".repeat(40),
    files: {
      "README.md":
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*\n" +
        "  - split: test\n    path: data/test-*\n---\n",
      "data/train-00000-of-00001.parquet": preferenceParquet(rows(5, "train")),
      "data/test-00000-of-00001.parquet": preferenceParquet(rows(2, "test")),
    },
  }]);
  const cacheDir = await Deno.makeTempDir({ prefix: "hf-cache-" });
  const hubOptions = { endpoint: hub.endpoint, cacheDir, token: "" };
  try {
    const [train] = await datasetSplitFiles("org/ko-prefs", { split: "train", hub: hubOptions });
    assert(train.includes("datasets--org--ko-prefs"), train);
    assertEquals((await loadDataset(train)).rows.length, 5);
    const [test] = await datasetSplitFiles("org/ko-prefs", { split: "test", hub: hubOptions });
    assertEquals((await loadDataset(test)).rows.length, 2);
    await assertRejects(
      () => datasetSplitFiles("org/ko-prefs", { split: "validation", hub: hubOptions }),
      Error,
      'org/ko-prefs: no "validation" split (it has "train", "test")',
    );
    const file = `${cacheDir}/local.jsonl`;
    await Deno.writeTextFile(file, '{"text": "하나"}\n');
    assertEquals(await datasetSplitFiles(file, { split: "train" }), [file]);
    await assertRejects(
      () => datasetSplitFiles(file, { split: "test" }),
      Error,
      "a data file holds one split",
    );
    await assertRejects(
      () => datasetSplitFiles("no/such/path.jsonl", { split: "train" }),
      Error,
      "neither a data file",
    );
  } finally {
    await hub.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});
