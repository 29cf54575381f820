import {
  PREVIOUS_DIR_SUFFIX,
  recoverReplacedDir,
  replaceDirAtomic,
  writeFileAtomic,
  writeFileAtomicWith,
  writeJsonAtomic,
} from "../../io/atomic.ts";
import { assertEquals, assertRejects } from "../asserts.ts";

const root = Deno.makeTempDirSync({ prefix: "atomic-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

Deno.test("atomic: files are written whole, parents created, no temporary file left", async () => {
  const dir = await Deno.makeTempDir({ dir: root });
  await writeFileAtomic(`${dir}/a/b/text.txt`, "첫 줄\n");
  assertEquals(await Deno.readTextFile(`${dir}/a/b/text.txt`), "첫 줄\n");
  await writeFileAtomic(`${dir}/a/b/text.txt`, new Uint8Array([1, 2, 3]));
  assertEquals(await Deno.readFile(`${dir}/a/b/text.txt`), new Uint8Array([1, 2, 3]));
  await writeJsonAtomic(`${dir}/c.json`, { b: 1, a: { d: [2, { z: 0, y: 1 }], c: null } }, {
    sortKeys: true,
  });
  assertEquals(
    await Deno.readTextFile(`${dir}/c.json`),
    '{\n  "a": {\n    "c": null,\n    "d": [\n      2,\n      {\n        "y": 1,\n        "z": 0\n      }\n    ]\n  },\n  "b": 1\n}\n',
  );
  assertEquals(names(dir), ["a", "c.json"]);
  assertEquals(names(`${dir}/a/b`), ["text.txt"]);
});

Deno.test("atomic: a failing writer keeps the old content and removes its temporary file", async () => {
  const dir = await Deno.makeTempDir({ dir: root });
  await writeFileAtomic(`${dir}/state.json`, "old");
  await assertRejects(
    () =>
      writeFileAtomicWith(`${dir}/state.json`, async (f) => {
        await f.write(new TextEncoder().encode("half-writ"));
        throw new Error("killed mid-write");
      }),
    Error,
    "killed mid-write",
  );
  assertEquals(await Deno.readTextFile(`${dir}/state.json`), "old");
  assertEquals(names(dir), ["state.json"]);
});

Deno.test("atomic: replaceDirAtomic swaps folders; recoverReplacedDir undoes an interrupted swap", async () => {
  const parent = await Deno.makeTempDir({ dir: root });
  const final = `${parent}/ckpt`;
  const build = async (marker: string) => {
    const tmp = await Deno.makeTempDir({ dir: parent, prefix: ".tmp-" });
    await Deno.writeTextFile(`${tmp}/${marker}`, marker);
    return tmp;
  };
  await replaceDirAtomic(await build("one"), final);
  assertEquals(names(final), ["one"]);
  await replaceDirAtomic(await build("two"), final);
  assertEquals(names(final), ["two"]);
  assertEquals(names(parent), ["ckpt"], "the previous folder is gone once the new one is in place");

  // A kill between the two renames: only the `.previous` folder exists.
  await Deno.rename(final, final + PREVIOUS_DIR_SUFFIX);
  assertEquals(await recoverReplacedDir(final), true);
  assertEquals(names(final), ["two"]);
  assertEquals(await recoverReplacedDir(final), false, "nothing to recover when the folder is there");

  // A kill after the swap but before the cleanup: a stale `.previous` is dropped by the next swap.
  await Deno.mkdir(final + PREVIOUS_DIR_SUFFIX);
  await replaceDirAtomic(await build("three"), final);
  assertEquals(names(parent), ["ckpt"]);
  assertEquals(names(final), ["three"]);
  await assertRejects(() => replaceDirAtomic(`${parent}/missing`, final), Error, "is not a folder");
});
