/**
 * File-system questions asked all over the toolkit, answered one way: a missing path is `false`, any other
 * error (permissions, I/O) is thrown rather than mistaken for absence.
 * @module
 */

/**
 * Whether `path` exists (a link counts as itself, not its target).
 * @example
 * ```ts
 * if (await pathExists("runs/tiny-base")) console.log("built already");
 * ```
 */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Whether `path` is a regular file (following links).
 * @example
 * ```ts
 * if (await isFile("model/model.safetensors")) console.log("single-file weights");
 * ```
 */
export async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Reads a text file that must be UTF-8. Where `Deno.readTextFile` would turn bytes of another encoding
 * (a Korean file saved as CP949/EUC-KR, say) into U+FFFD silently, this throws an error naming the file,
 * the first bad line and how many lines are affected. A leading byte-order mark is dropped.
 *
 * @example
 * ```ts
 * const text = await readUtf8File("data/ko_sft_tiny.jsonl");
 * ```
 */
export async function readUtf8File(path: string): Promise<string> {
  return decodeUtf8(await Deno.readFile(path), path);
}

/**
 * Decodes UTF-8 bytes read from `path`, throwing as {@link readUtf8File} does.
 *
 * @example
 * ```ts
 * decodeUtf8(Uint8Array.of(0xc7, 0xd1), "a.txt"); // throws "a.txt:1: not valid UTF-8 …"
 * ```
 */
export function decodeUtf8(bytes: Uint8Array, path: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const strict = new TextDecoder("utf-8", { fatal: true });
    const bad: number[] = [];
    let start = 0, line = 1;
    for (let i = 0; i <= bytes.length; i++) {
      if (i < bytes.length && bytes[i] !== 0x0a) continue;
      try {
        strict.decode(bytes.subarray(start, i));
      } catch {
        bad.push(line);
      }
      start = i + 1;
      line++;
    }
    throw new Error(
      `${path}:${bad[0] ?? 1}: not valid UTF-8 (${bad.length} line(s) affected); the file seems to be in ` +
        "another encoding: convert it first, e.g. iconv -f CP949 -t UTF-8 in.jsonl > out.jsonl",
    );
  }
}
