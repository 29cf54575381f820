/**
 * Small file helpers of the pipeline: content digests for stage fingerprints, and the checks that tell
 * whether a stage's outputs are complete (each returns why not, or undefined).
 *
 * @module
 */

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * SHA-256 (first 16 hex digits) of a file's bytes; the error names the file and the flag it came from.
 *
 * @example
 * ```ts
 * await fileDigest("data/ko_user_oriented_instructions.jsonl", "--prompts"); // "3f1c…"
 * ```
 */
export async function fileDigest(path: string, what = "file"): Promise<string> {
  try {
    return await sha256Hex(await Deno.readFile(path));
  } catch (e) {
    throw new Error(`${what} ${path}: cannot read it (${(e as Error).message})`);
  }
}

/** Files under `dir`, relative and sorted; symlinks are followed (Hub snapshots link to their blobs). */
async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(`${dir}${prefix ? `/${prefix}` : ""}`)) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    const info = e.isSymlink ? await Deno.stat(`${dir}/${rel}`) : e;
    if (info.isDirectory) out.push(...await listFiles(dir, rel));
    else if (info.isFile) out.push(rel);
  }
  return out.sort();
}

/**
 * SHA-256 of every file in a folder (paths and bytes, in sorted order): changes when any file does.
 *
 * @example
 * ```ts
 * await folderDigest("data/kobest_tiny", "--kobest-dir");
 * ```
 */
export async function folderDigest(dir: string, what = "folder"): Promise<string> {
  let files: string[];
  try {
    files = await listFiles(dir);
  } catch (e) {
    throw new Error(`${what} ${dir}: cannot read it (${(e as Error).message})`);
  }
  const parts: string[] = [];
  for (const rel of files) parts.push(`${rel}:${await fileDigest(`${dir}/${rel}`, what)}`);
  return await sha256Hex(new TextEncoder().encode(parts.join("\n")));
}

/**
 * A cheap stamp of a model folder: its config.json and the size and modification time of every weight and
 * tokenizer file. Rebuilding or replacing the model changes it; reading it costs a few `stat` calls.
 *
 * @example
 * ```ts
 * const before = await modelFolderStamp("runs/tiny-base");
 * ```
 */
export async function modelFolderStamp(dir: string): Promise<string> {
  const parts: string[] = [`config:${await fileDigest(`${dir}/config.json`, "model config")}`];
  for (const rel of await listFiles(dir)) {
    if (!/\.(safetensors|json)$/.test(rel) || rel === "config.json") continue;
    const info = await Deno.stat(`${dir}/${rel}`);
    parts.push(`${rel}:${info.size}:${info.mtime?.getTime() ?? 0}`);
  }
  return await sha256Hex(new TextEncoder().encode(parts.join("\n")));
}

/**
 * Undefined when `path` is a file, else a sentence saying it is missing.
 *
 * @example
 * ```ts
 * await fileMissing("runs/x/report.html"); // "runs/x/report.html is missing"
 * ```
 */
export async function fileMissing(path: string): Promise<string | undefined> {
  try {
    if ((await Deno.stat(path)).isFile) return undefined;
    return `${path} is not a file`;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return `${path} is missing`;
    throw e;
  }
}

/**
 * Undefined when `dir` holds a loadable model folder (config.json and safetensors weights), else why not.
 *
 * @example
 * ```ts
 * await modelFolderMissing("runs/x/sft"); // undefined once training finished
 * ```
 */
export async function modelFolderMissing(dir: string): Promise<string | undefined> {
  const config = await fileMissing(`${dir}/config.json`);
  if (config) return config;
  const files = await listFiles(dir);
  return files.some((f) => !f.includes("/") && f.endsWith(".safetensors"))
    ? undefined
    : `${dir} has no .safetensors weights`;
}

/**
 * Removes files or folders, ignoring those already gone.
 *
 * @example
 * ```ts
 * await removeAll(["runs/x/sft", "runs/x/kobest/sft.json"]);
 * ```
 */
export async function removeAll(paths: readonly string[]): Promise<void> {
  for (const p of paths) {
    try {
      await Deno.remove(p, { recursive: true });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
}
