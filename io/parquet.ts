/**
 * Parquet files as rows of JSON-like objects, through `hyparquet` (pure JavaScript, no permissions): what
 * Hugging Face's datasets keep on the Hub (`data/train-00000-of-00001.parquet`), string, number and list
 * columns and lists of structs (chat `messages`) alike. Plain and Snappy-compressed files are read, which
 * covers what `datasets` and the Hub's parquet conversion write; another codec is an error naming it.
 *
 * @module
 */
// deno-lint-ignore no-import-prefix
import { parquetMetadata, parquetReadObjects } from "npm:hyparquet@1.33.0";

/**
 * The rows of a Parquet file, each an object of its columns: 64-bit integers as numbers, nulls left out
 * (a missing field, as a JSONL row without it).
 *
 * @example
 * ```ts
 * const rows = await parquetRows(await Deno.readFile("train-00000-of-00001.parquet"), "train.parquet");
 * rows[0].prompt;
 * ```
 */
export async function parquetRows(bytes: Uint8Array, file: string): Promise<Record<string, unknown>[]> {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let rows: Record<string, unknown>[];
  try {
    const metadata = parquetMetadata(buffer);
    rows = await parquetReadObjects({ file: buffer, metadata });
  } catch (e) {
    const message = (e as Error).message;
    const codec = /compression|codec/i.test(message)
      ? " (this reader decodes uncompressed and Snappy Parquet, which `datasets` and the Hub write)"
      : "";
    throw new Error(`${file}: not a Parquet file it can read: ${message}${codec}`);
  }
  return rows.map((row) => plain(row) as Record<string, unknown>);
}

/** A decoded value as JSON would hold it: bigints as numbers, nulls dropped from objects. */
function plain(value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Date) return value.toISOString();
  if (value !== null && typeof value === "object" && !(value instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== null && v !== undefined) out[k] = plain(v);
    return out;
  }
  return value;
}
