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
