import { fileDigest, folderDigest, modelFolderMissing, modelFolderStamp } from "../../pipeline/files.ts";
import { assertEquals, assertNotEquals, assertRejects } from "../asserts.ts";

Deno.test("pipeline files: a model folder of symlinks (a Hub snapshot) is complete and stamped", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/blobs`);
  await Deno.mkdir(`${dir}/snapshot`);
  await Deno.writeTextFile(`${dir}/blobs/w`, "weights");
  await Deno.writeTextFile(`${dir}/snapshot/config.json`, "{}");
  assertEquals(await modelFolderMissing(`${dir}/snapshot`), `${dir}/snapshot has no .safetensors weights`);
  await Deno.symlink("../blobs/w", `${dir}/snapshot/model.safetensors`);
  assertEquals(await modelFolderMissing(`${dir}/snapshot`), undefined);
  const before = await modelFolderStamp(`${dir}/snapshot`);
  assertEquals(await modelFolderStamp(`${dir}/snapshot`), before, "stable while nothing changes");
  await Deno.writeTextFile(`${dir}/blobs/w`, "other weights");
  assertNotEquals(await modelFolderStamp(`${dir}/snapshot`), before, "a replaced weight file changes it");
  assertEquals(await modelFolderMissing(`${dir}/none`), `${dir}/none/config.json is missing`);
});

Deno.test("pipeline files: digests follow content, and a missing input names its flag", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/d/sub`, { recursive: true });
  await Deno.writeTextFile(`${dir}/d/sub/a.tsv`, "x");
  const first = await folderDigest(`${dir}/d`);
  await Deno.writeTextFile(`${dir}/d/sub/a.tsv`, "y");
  assertNotEquals(await folderDigest(`${dir}/d`), first);
  assertEquals(await fileDigest(`${dir}/d/sub/a.tsv`), await fileDigest(`${dir}/d/sub/a.tsv`));
  await assertRejects(
    () => fileDigest(`${dir}/nope.jsonl`, "--prompts"),
    Error,
    `--prompts ${dir}/nope.jsonl: cannot read it`,
  );
  await assertRejects(
    () => folderDigest(`${dir}/nope`, "--kobest-dir"),
    Error,
    `--kobest-dir ${dir}/nope: cannot read it`,
  );
});
