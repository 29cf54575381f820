/**
 * Request bodies as the servers read them: at most a set number of bytes, UTF-8, one JSON value; each
 * failure an {@link ApiError} (413 too large, 400 empty, not UTF-8 or not JSON).
 * @module
 */
import { ApiError } from "./errors.ts";

/**
 * The request's body parsed as JSON.
 *
 * @example
 * ```ts
 * const body = await readJson(req, 4 * 1024 * 1024); // ApiError 413 past 4 MiB, 400 when not JSON
 * ```
 */
export async function readJson(req: Request, maxBytes: number): Promise<unknown> {
  const text = await readBody(req, maxBytes);
  if (text.trim() === "") {
    throw new ApiError(400, "the request body is empty; expected a JSON object", { code: "invalid_json" });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`, {
      code: "invalid_json",
    });
  }
}

async function readBody(req: Request, maxBytes: number): Promise<string> {
  const tooLarge = () =>
    new ApiError(413, `the request body is larger than ${maxBytes} bytes`, { code: "request_too_large" });
  if (Number(req.headers.get("content-length")) > maxBytes) throw tooLarge();
  if (!req.body) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ApiError(400, "the request body is not valid UTF-8", { code: "invalid_json" });
  }
}
