/**
 * Crash-safe writes: a file or a whole folder appears complete under its final name, or not at all.
 *
 * Files are written under a temporary name in the same folder (so the final rename never crosses file
 * systems), flushed with fsync, then renamed over the target. Folders (checkpoints, saved models) are built
 * complete under a temporary name and swapped in by {@link replaceDirAtomic}; the previous folder survives
 * until the new one is in place, and {@link recoverReplacedDir} undoes a swap cut short by a kill.
 *
 * @module
 */
import { pathExists } from "./fs.ts";
import { basename, dirname, join } from "node:path";

/** Suffix of the previous folder while {@link replaceDirAtomic} swaps a new one in. */
export const PREVIOUS_DIR_SUFFIX = ".previous";

/** A name no other writer will pick: pid plus random bits, so two processes never share a temp file. */
function uniqueSuffix(): string {
  const random = crypto.getRandomValues(new Uint32Array(2));
  return `${Deno.pid}-${random[0].toString(36)}${random[1].toString(36)}`;
}

/**
 * The temporary sibling of `path` used while it is being written. Hidden, so globs skip it.
 * @example
 * ```ts
 * tempSiblingPath("out/config.json"); // "out/.config.json.tmp-4242-k3j9x1q0"
 * ```
 */
export function tempSiblingPath(path: string, tag = "tmp"): string {
  return join(dirname(path), `.${basename(path)}.${tag}-${uniqueSuffix()}`);
}

/** Flushes a folder's entry list so a rename inside it survives power loss; silently skipped where unsupported. */
async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await Deno.open(dir, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  } catch {
    // Windows cannot open folders and some file systems refuse fsync on them; the rename is still atomic.
  }
}

async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.length) done += await file.write(data.subarray(done));
}

/**
 * Writes `path` through a callback that receives an open file handle, atomically: the callback writes a
 * temporary sibling, which is fsynced and renamed over `path` only if the callback succeeds. Use it to
 * stream files too large to hold in memory. Parent folders are created.
 *
 * @example
 * ```ts
 * await writeFileAtomicWith("out/big.bin", async (f) => {
 *   for (const chunk of chunks) await f.write(chunk);
 * });
 * ```
 */
export async function writeFileAtomicWith(
  path: string,
  write: (file: Deno.FsFile) => Promise<void>,
): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = tempSiblingPath(path);
  try {
    const file = await Deno.open(tmp, { write: true, createNew: true });
    try {
      await write(file);
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await removeQuietly(tmp);
    throw e;
  }
  await syncDir(dirname(path));
}

/**
 * Writes bytes or UTF-8 text to `path` atomically (temporary sibling, fsync, rename). Parent folders are
 * created. A reader sees the old content or the new, never a mix.
 *
 * @example
 * ```ts
 * await writeFileAtomic("runs/a/metrics.txt", "step 10\n");
 * ```
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return writeFileAtomicWith(path, (file) => writeAll(file, bytes));
}

/** Options for {@link writeJsonAtomic}. */
export interface JsonWriteOptions {
  /** Spaces of indentation (default 2). */
  indent?: number;
  /** Sort object keys at every depth, as Python's `json.dumps(sort_keys=True)` does (default false). */
  sortKeys?: boolean;
}

/**
 * Returns a copy of `value` whose objects list their keys in sorted order, at every depth.
 * @example
 * ```ts
 * JSON.stringify(sortKeysDeep({ b: 1, a: { d: 2, c: 3 } })); // '{"a":{"c":3,"d":2},"b":1}'
 * ```
 */
export function sortKeysDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeysDeep);
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(obj).sort()) out[key] = sortKeysDeep(obj[key]);
    return out;
  }
  return value;
}

/**
 * Writes `value` as indented JSON with a final newline, atomically.
 *
 * @example
 * ```ts
 * await writeJsonAtomic("out/config.json", { hidden_size: 64 }, { sortKeys: true });
 * ```
 */
export function writeJsonAtomic(path: string, value: unknown, options: JsonWriteOptions = {}): Promise<void> {
  const data = options.sortKeys ? sortKeysDeep(value) : value;
  return writeFileAtomic(path, JSON.stringify(data, null, options.indent ?? 2) + "\n");
}

/**
 * Creates an empty temporary folder next to `finalDir`, for building its replacement in.
 *
 * @example
 * ```ts
 * const tmp = await makeTempSiblingDir("runs/a/checkpoint");
 * await writeFileAtomic(`${tmp}/state.json`, "{}");
 * await replaceDirAtomic(tmp, "runs/a/checkpoint");
 * ```
 */
export async function makeTempSiblingDir(finalDir: string): Promise<string> {
  await Deno.mkdir(dirname(finalDir), { recursive: true });
  const tmp = tempSiblingPath(finalDir);
  await Deno.mkdir(tmp);
  return tmp;
}

/**
 * Puts the complete folder `tmpDir` in place as `finalDir`. If `finalDir` exists it is first renamed to
 * `finalDir + ".previous"` and deleted only after the new folder is in place, so a kill at any moment leaves
 * either the old or the new folder under one of those two names ({@link recoverReplacedDir} restores the
 * name). `tmpDir` must be on the same file system, e.g. from {@link makeTempSiblingDir}.
 *
 * @example
 * ```ts
 * await replaceDirAtomic(tmp, "runs/a/checkpoint");
 * ```
 */
export async function replaceDirAtomic(tmpDir: string, finalDir: string): Promise<void> {
  const info = await Deno.stat(tmpDir).catch(() => undefined);
  if (!info?.isDirectory) throw new Error(`replaceDirAtomic: ${tmpDir} is not a folder`);
  const previous = finalDir + PREVIOUS_DIR_SUFFIX;
  if (await pathExists(finalDir)) {
    // A stale `.previous` is left by a kill after an earlier swap completed; the current folder is newer.
    await removeQuietly(previous);
    await Deno.rename(finalDir, previous);
  }
  await Deno.rename(tmpDir, finalDir);
  await syncDir(dirname(finalDir));
  await removeQuietly(previous);
}

/**
 * Finishes or undoes a {@link replaceDirAtomic} that a kill interrupted: if `finalDir` is missing but its
 * `.previous` copy exists, the copy gets its name back. Returns true when it restored something. Call it
 * before reading a folder that is replaced this way (e.g. before resuming from a checkpoint).
 *
 * @example
 * ```ts
 * await recoverReplacedDir("runs/a/checkpoint");
 * ```
 */
export async function recoverReplacedDir(finalDir: string): Promise<boolean> {
  const previous = finalDir + PREVIOUS_DIR_SUFFIX;
  if (await pathExists(finalDir) || !(await pathExists(previous))) return false;
  await Deno.rename(previous, finalDir);
  return true;
}

/**
 * Checks, before any long work, that `path` can later be written as a file: it is not a folder, its parent
 * folder exists or can be created, and a file can be created there. `what` names the setting in the error
 * (e.g. `--out`).
 *
 * @example
 * ```ts
 * await checkWritableFile("runs/kobest.json", "--out"); // throws "--out runs: is a folder; …" for a folder
 * ```
 */
export async function checkWritableFile(path: string, what: string): Promise<void> {
  const info = await Deno.stat(path).catch((e) => {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`${what} ${path}: ${(e as Error).message}`);
  });
  if (info?.isDirectory) {
    throw new Error(`${what} ${path}: is a folder; give a file name, e.g. ${join(path, "results.json")}`);
  }
  const probe = tempSiblingPath(path, "probe");
  try {
    await Deno.mkdir(dirname(path), { recursive: true });
    await Deno.writeFile(probe, new Uint8Array(), { createNew: true });
  } catch (e) {
    throw new Error(`${what} ${path}: cannot write there (${(e as Error).message})`);
  }
  await removeQuietly(probe);
}

async function sizeOf(path: string): Promise<number> {
  const info = await Deno.lstat(path);
  if (!info.isDirectory) return info.size;
  let total = 0;
  for await (const e of Deno.readDir(path)) total += await sizeOf(join(path, e.name));
  return total;
}

/**
 * Removes the temporary siblings ({@link tempSiblingPath}) in `dir` that interrupted writes left, for the
 * files or folders `owned` names; others' temporaries are left alone. Call it only when no writer can be
 * active in `dir` (e.g. while holding the folder's lock). Returns what was removed and how many bytes it held.
 *
 * @example
 * ```ts
 * const { removed, bytes } = await removeStaleTemps("runs/orpo", /^(checkpoint-\d+|final)$/);
 * ```
 */
export async function removeStaleTemps(
  dir: string,
  owned: RegExp,
): Promise<{ removed: string[]; bytes: number }> {
  const removed: string[] = [];
  let bytes = 0;
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { removed, bytes };
    throw e;
  }
  for (const e of entries) {
    const m = /^\.(.+)\.tmp-(\d+)-[0-9a-z]+$/.exec(e.name);
    if (!m || !owned.test(m[1])) continue;
    const path = join(dir, e.name);
    bytes += await sizeOf(path).catch(() => 0);
    await removeQuietly(path);
    removed.push(path);
  }
  return { removed, bytes };
}
