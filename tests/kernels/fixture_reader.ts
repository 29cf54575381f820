/**
 * A tiny safetensors reader for tests (the product's own reader lives in `io/`; tests of kernels must not
 * depend on it): an 8-byte little-endian header length, a JSON header of `{name: {dtype, shape,
 * data_offsets}}`, then the raw little-endian data.
 * @module
 */
import { fileURLToPath } from "node:url";

/** One tensor of a fixture file, widened to a plain typed array. */
export interface FixtureTensor {
  dtype: string;
  shape: number[];
  data: Float32Array | Int32Array | Float64Array;
}

/**
 * The oracle fixture folder, `tests/fixtures/llama-tiny-public/` (made by Hugging Face transformers; see the
 * README there).
 * @example
 * ```ts
 * const url = new URL("expected.safetensors", FIXTURE_DIR);
 * ```
 */
export const FIXTURE_DIR: URL = new URL("../fixtures/llama-tiny-public/", import.meta.url);

/**
 * {@link FIXTURE_DIR} as a file-system path (without a trailing slash), for APIs that take paths.
 * @example
 * ```ts
 * await openModelFolder(`${FIXTURE_PATH}/model`);
 * ```
 */
export const FIXTURE_PATH: string = fileURLToPath(FIXTURE_DIR).replace(/[\\/]$/, "");

/**
 * Reads every F32, I32 and I64 tensor of a safetensors file (I64 becomes Float64Array).
 * @example
 * ```ts
 * const t = await readFixture(new URL("expected.safetensors", FIXTURE_DIR));
 * console.log(t.get("dpo.loss")?.data[0]);
 * ```
 */
export async function readFixture(url: URL): Promise<Map<string, FixtureTensor>> {
  const bytes = await Deno.readFile(url);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen))) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const start = 8 + headerLen;
  const out = new Map<string, FixtureTensor>();
  for (const [name, h] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const raw = bytes.slice(start + h.data_offsets[0], start + h.data_offsets[1]).buffer;
    out.set(name, { dtype: h.dtype, shape: h.shape, data: widen(raw, h.dtype, `${url.pathname}: ${name}`) });
  }
  return out;
}

/**
 * The tensor `name`, or an error naming the missing tensor.
 * @example
 * ```ts
 * const loss = fixtureTensor(await readFixture(url), "sft.loss").data[0];
 * ```
 */
export function fixtureTensor(map: Map<string, FixtureTensor>, name: string): FixtureTensor {
  const t = map.get(name);
  if (!t) throw new Error(`fixture tensor "${name}" is missing`);
  return t;
}

function widen(raw: ArrayBuffer, dtype: string, where: string): Float32Array | Int32Array | Float64Array {
  switch (dtype) {
    case "F32":
      return new Float32Array(raw);
    case "I32":
      return new Int32Array(raw);
    case "I64":
      return Float64Array.from(new BigInt64Array(raw), Number);
    default:
      throw new Error(`${where}: dtype ${dtype} is not supported by the test reader (F32, I32, I64)`);
  }
}
