/**
 * The safetensors format: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
 * shape and byte range, then the raw little-endian tensor bytes.
 *
 * Reading is lazy: {@link SafetensorsFile.open} reads and validates only the header; each tensor is then
 * read on its own with seek + read, so multi-GB checkpoints never sit in memory whole. Writing follows the
 * Rust library byte for byte (space-padded header, wider dtypes first, names sorted) and is atomic.
 *
 * Float conversions are exact where exactness is possible (F16/BF16 → F32) and round to nearest even
 * otherwise (F32 → F16/BF16), as PyTorch does.
 *
 * @module
 */
import {
  bf16BitsToF32,
  bf16ToF16,
  bf16ToF32,
  f16BitsToF32,
  f16ToF32,
  f32ToBf16,
  f32ToBf16Bits,
  f32ToF16,
  f32ToF16Bits,
} from "../gpu/half.ts";
import { writeFileAtomicWith } from "./atomic.ts";

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error("safetensors.ts assumes a little-endian machine (typed arrays are read in place)");
}

/** Every dtype the format defines with a whole number of bytes per element, with its size. */
export const DTYPE_SIZES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const;

/** A dtype name as it appears in a safetensors header. */
export type SafetensorsDType = keyof typeof DTYPE_SIZES;

/** The dtypes {@link writeSafetensors} writes. */
export type WritableDType = "F32" | "F16" | "BF16" | "I32";

/** Rust's limit: a larger header is treated as corruption rather than read into memory. */
export const MAX_HEADER_BYTES = 100_000_000;

/** One tensor's entry in a header, with its byte range resolved to absolute file offsets. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** Number of elements (product of the shape; 1 for a scalar). */
  readonly numel: number;
  /** Absolute byte offset of the first element in the file. */
  readonly fileOffset: number;
  readonly byteLength: number;
}

/** A tensor's raw bytes with its description, as read by {@link SafetensorsFile.readRaw}. */
export interface RawTensor {
  /** The dtype named in the header. */
  readonly dtype: SafetensorsDType;
  /** The shape named in the header; empty for a scalar. */
  readonly shape: readonly number[];
  /** The tensor's bytes exactly as stored (little-endian). */
  readonly bytes: Uint8Array;
}

/** An element range inside a tensor (flattened, row-major), for reading a slice of a huge tensor. */
export interface ElementRange {
  /** First element, counted in the flattened tensor. */
  start: number;
  /** Number of elements to read. */
  count: number;
}

/**
 * Thrown for malformed files and wrong requests; the message names the file and, where known, the tensor.
 * @example
 * ```ts
 * try { await SafetensorsFile.open(path); } catch (e) { if (e instanceof SafetensorsError) console.error(e.message); }
 * ```
 */
export class SafetensorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SafetensorsError";
  }
}

// ---------------------------------------------------------------------------------------------------------
// Float conversions live in gpu/half.ts; re-exported here for callers of the safetensors API.

export {
  bf16BitsToF32,
  bf16ToF16,
  bf16ToF32,
  f16BitsToF32,
  f16ToF32,
  f32ToBf16,
  f32ToBf16Bits,
  f32ToF16,
  f32ToF16Bits,
};

// ---------------------------------------------------------------------------------------------------------
// Header parsing and validation

function isDType(s: unknown): s is SafetensorsDType {
  return typeof s === "string" && Object.hasOwn(DTYPE_SIZES, s);
}

function isNonNegativeInt(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function describe(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

function parseMetadata(raw: unknown, path: string): Record<string, string> {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new SafetensorsError(`${path}: __metadata__ must be an object of strings, got ${describe(raw)}`);
  }
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value !== "string") {
      throw new SafetensorsError(`${path}: __metadata__.${key} must be a string, got ${describe(value)}`);
    }
  }
  return raw as Record<string, string>;
}

function parseEntry(
  name: string,
  raw: unknown,
  path: string,
  dataStart: number,
  dataLength: number,
): TensorInfo {
  const where = `${path}: tensor "${name}"`;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new SafetensorsError(`${where}: expected an object with dtype, shape, data_offsets`);
  }
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (!isDType(dtype)) {
    throw new SafetensorsError(
      `${where}: unknown dtype ${describe(dtype)} (expected one of ${Object.keys(DTYPE_SIZES).join(", ")})`,
    );
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInt)) {
    throw new SafetensorsError(
      `${where}: shape must be a list of non-negative integers, got ${describe(shape)}`,
    );
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInt)) {
    throw new SafetensorsError(
      `${where}: data_offsets must be [begin, end] non-negative integers, got ${describe(offsets)}`,
    );
  }
  const [begin, end] = offsets as number[];
  if (begin > end) {
    throw new SafetensorsError(`${where}: data_offsets [${begin}, ${end}] end before they begin`);
  }
  if (end > dataLength) {
    throw new SafetensorsError(
      `${where}: data_offsets [${begin}, ${end}] run past the end of the data (${dataLength} bytes): ` +
        `the file is truncated or the header is wrong`,
    );
  }
  const numel = (shape as number[]).reduce((a, b) => a * b, 1);
  const needed = numel * DTYPE_SIZES[dtype];
  if (end - begin !== needed) {
    throw new SafetensorsError(
      `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype} × ` +
        `[${shape.join(", ")}] needs ${needed}`,
    );
  }
  return { name, dtype, shape: shape as number[], numel, fileOffset: dataStart + begin, byteLength: needed };
}

function checkNoOverlap(infos: TensorInfo[], path: string): void {
  const sorted = infos.filter((t) => t.byteLength > 0).sort((a, b) => a.fileOffset - b.fileOffset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (sorted[i].fileOffset < prev.fileOffset + prev.byteLength) {
      throw new SafetensorsError(
        `${path}: tensors "${prev.name}" and "${sorted[i].name}" overlap in the file`,
      );
    }
  }
}

/** The parsed header of a safetensors file. */
export interface SafetensorsHeader {
  /** Tensors in header order. */
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Byte offset where tensor data begins (8 + header length). */
  dataStart: number;
}

/**
 * Parses and validates a header's JSON text: dtypes known, offsets inside the data, sizes equal to
 * dtype × shape, no two tensors overlapping. Errors name `path` and the tensor.
 *
 * @example
 * ```ts
 * const h = parseSafetensorsHeader('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 16, 8, "x.safetensors");
 * h.tensors.get("w")!.fileOffset; // 16
 * ```
 */
export function parseSafetensorsHeader(
  json: string,
  dataStart: number,
  dataLength: number,
  path: string,
): SafetensorsHeader {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new SafetensorsError(`${path}: the header is not valid JSON (${(e as Error).message})`);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new SafetensorsError(
      `${path}: the header must be a JSON object, got ${describe(raw).slice(0, 80)}`,
    );
  }
  let metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(raw)) {
    if (name === "__metadata__") metadata = parseMetadata(entry, path);
    else tensors.set(name, parseEntry(name, entry, path, dataStart, dataLength));
  }
  checkNoOverlap([...tensors.values()], path);
  return { tensors, metadata, dataStart };
}

// ---------------------------------------------------------------------------------------------------------
// Reading

async function readExactly(file: Deno.FsFile, out: Uint8Array, path: string): Promise<void> {
  let done = 0;
  while (done < out.length) {
    const n = await file.read(out.subarray(done));
    if (n === null) throw new SafetensorsError(`${path}: unexpected end of file`);
    done += n;
  }
}

async function readAt(path: string, offset: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  if (length === 0) return out;
  using file = await Deno.open(path, { read: true });
  await file.seek(offset, Deno.SeekMode.Start);
  await readExactly(file, out, path);
  return out;
}

/**
 * An opened safetensors file: the header is in memory, tensors are read on demand. Holds no open file
 * handle between reads, so it needs no closing and concurrent reads are safe.
 * @example
 * ```ts
 * const st = await SafetensorsFile.open("model.safetensors");
 * for (const name of st.names()) console.log(name, st.info(name).dtype, st.info(name).shape);
 * ```
 */
export class SafetensorsFile {
  private constructor(
    /** Path the file was opened from; used in every error message. */
    readonly path: string,
    private readonly header: SafetensorsHeader,
  ) {}

  /**
   * Reads and validates the header of `path`.
   * @example
   * ```ts
   * const st = await SafetensorsFile.open("model/model.safetensors");
   * const w = await st.readF32("model.norm.weight");
   * ```
   */
  static async open(path: string): Promise<SafetensorsFile> {
    using file = await Deno.open(path, { read: true });
    const size = (await file.stat()).size;
    if (size < 8) throw new SafetensorsError(`${path}: ${size} bytes is too short for a safetensors file`);
    const prefix = new Uint8Array(8);
    await readExactly(file, prefix, path);
    const headerLength = new DataView(prefix.buffer).getBigUint64(0, true);
    if (headerLength > BigInt(Math.min(size - 8, MAX_HEADER_BYTES))) {
      throw new SafetensorsError(
        `${path}: header length ${headerLength} does not fit the file (${size} bytes) or exceeds ` +
          `${MAX_HEADER_BYTES}: not a safetensors file, or a truncated one`,
      );
    }
    const headerBytes = new Uint8Array(Number(headerLength));
    await readExactly(file, headerBytes, path);
    let json: string;
    try {
      json = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
    } catch {
      throw new SafetensorsError(`${path}: the header is not valid UTF-8`);
    }
    const dataStart = 8 + headerBytes.length;
    return new SafetensorsFile(path, parseSafetensorsHeader(json, dataStart, size - dataStart, path));
  }

  /** The `__metadata__` strings (e.g. `{ format: "pt" }`); empty when absent. */
  get metadata(): Record<string, string> {
    return this.header.metadata;
  }

  /** Tensor names in header order. @example `st.names(); // ["lm_head.weight", "model.embed_tokens.weight", …]` */
  names(): string[] {
    return [...this.header.tensors.keys()];
  }

  /** Whether the file holds a tensor named `name`. @example `st.has("lm_head.weight")` */
  has(name: string): boolean {
    return this.header.tensors.has(name);
  }

  /** The header entry of `name`; throws naming the file when it is absent. @example `st.info("w").shape` */
  info(name: string): TensorInfo {
    const info = this.header.tensors.get(name);
    if (!info) throw new SafetensorsError(`${this.path}: no tensor named "${name}"`);
    return info;
  }

  private async readBytes(info: TensorInfo, range?: ElementRange): Promise<Uint8Array> {
    const size = DTYPE_SIZES[info.dtype];
    if (!range) return await readAt(this.path, info.fileOffset, info.byteLength);
    const { start, count } = range;
    if (!isNonNegativeInt(start) || !isNonNegativeInt(count) || start + count > info.numel) {
      throw new SafetensorsError(
        `${this.path}: tensor "${info.name}": element range start ${start} count ${count} is outside ` +
          `its ${info.numel} elements`,
      );
    }
    return await readAt(this.path, info.fileOffset + start * size, count * size);
  }

  /**
   * The tensor's bytes as stored (little-endian), with its dtype and shape; `range` reads part of it.
   * @example
   * ```ts
   * const { dtype, bytes } = await st.readRaw("model.embed_tokens.weight");
   * ```
   */
  async readRaw(name: string, range?: ElementRange): Promise<RawTensor> {
    const info = this.info(name);
    return { dtype: info.dtype, shape: info.shape, bytes: await this.readBytes(info, range) };
  }

  /**
   * The tensor as f32: F32 as is, F16/BF16 widened exactly, F64 rounded. Other dtypes are refused.
   * @example
   * ```ts
   * const w = await st.readF32("lm_head.weight", { start: 0, count: 4096 }); // first row only
   * ```
   */
  async readF32(name: string, range?: ElementRange): Promise<Float32Array> {
    const info = this.info(name);
    const bytes = await this.readBytes(info, range);
    switch (info.dtype) {
      case "F32":
        return new Float32Array(bytes.buffer, 0, bytes.length / 4);
      case "F16":
        return f16ToF32(new Uint16Array(bytes.buffer, 0, bytes.length / 2));
      case "BF16":
        return bf16ToF32(new Uint16Array(bytes.buffer, 0, bytes.length / 2));
      case "F64":
        return Float32Array.from(new Float64Array(bytes.buffer, 0, bytes.length / 8));
      default:
        throw new SafetensorsError(
          `${this.path}: tensor "${name}" is ${info.dtype}; readF32 reads F32, F16, BF16 or F64`,
        );
    }
  }

  /**
   * The tensor as raw f16 bits, for weights kept in f16 on the GPU: F16 as stored, F32/BF16 rounded to
   * nearest even (BF16 values beyond f16's range become ±inf).
   * @example
   * ```ts
   * const bits = await st.readF16Bits("model.layers.0.mlp.up_proj.weight");
   * ```
   */
  async readF16Bits(name: string, range?: ElementRange): Promise<Uint16Array> {
    const info = this.info(name);
    if (info.dtype === "F16") {
      const bytes = await this.readBytes(info, range);
      return new Uint16Array(bytes.buffer, 0, bytes.length / 2);
    }
    if (info.dtype === "BF16") {
      const bytes = await this.readBytes(info, range);
      return bf16ToF16(new Uint16Array(bytes.buffer, 0, bytes.length / 2));
    }
    if (info.dtype === "F32") return f32ToF16(await this.readF32(name, range));
    throw new SafetensorsError(
      `${this.path}: tensor "${name}" is ${info.dtype}; readF16Bits reads F16, F32 or BF16`,
    );
  }

  /**
   * An integer tensor as Int32Array: I32 as is; I64, U32, I16, U16, I8, U8, BOOL converted, refusing values
   * outside the int32 range (the message names the tensor and the element).
   * @example
   * ```ts
   * const ids = await st.readI32("gen.ids");
   * ```
   */
  async readI32(name: string, range?: ElementRange): Promise<Int32Array> {
    const info = this.info(name);
    const b = await this.readBytes(info, range);
    switch (info.dtype) {
      case "I32":
        return new Int32Array(b.buffer, 0, b.length / 4);
      case "I64":
        return this.narrow(name, new BigInt64Array(b.buffer, 0, b.length / 8), range?.start ?? 0);
      case "U32":
        return this.narrow(name, new Uint32Array(b.buffer, 0, b.length / 4), range?.start ?? 0);
      case "I16":
        return Int32Array.from(new Int16Array(b.buffer, 0, b.length / 2));
      case "U16":
        return Int32Array.from(new Uint16Array(b.buffer, 0, b.length / 2));
      case "I8":
        return Int32Array.from(new Int8Array(b.buffer, 0, b.length));
      case "U8":
      case "BOOL":
        return Int32Array.from(b);
      default:
        throw new SafetensorsError(
          `${this.path}: tensor "${name}" is ${info.dtype}; readI32 reads integer dtypes`,
        );
    }
  }

  /**
   * A U8 or BOOL tensor's bytes (BOOL as 0/1).
   * @example
   * ```ts
   * const mask = await st.readU8("pref.mask");
   * ```
   */
  async readU8(name: string, range?: ElementRange): Promise<Uint8Array> {
    const info = this.info(name);
    if (info.dtype !== "U8" && info.dtype !== "BOOL") {
      throw new SafetensorsError(`${this.path}: tensor "${name}" is ${info.dtype}; readU8 reads U8 or BOOL`);
    }
    return await this.readBytes(info, range);
  }

  private narrow(name: string, src: BigInt64Array | Uint32Array, firstIndex: number): Int32Array {
    const out = new Int32Array(src.length);
    for (let i = 0; i < src.length; i++) {
      const v = Number(src[i]);
      if (v < -2147483648 || v > 2147483647) {
        throw new SafetensorsError(
          `${this.path}: tensor "${name}" element ${firstIndex + i} is ${src[i]}, outside the int32 range`,
        );
      }
      out[i] = v;
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Writing

/** Tensor data for {@link writeSafetensors}: F16/BF16 take f32 values (rounded) or raw 16-bit patterns. */
export type TensorData = Float32Array | Uint16Array | Int32Array;

/** A tensor's values whole, or as consecutive pieces of its row-major values. */
export type TensorSource = TensorData | AsyncIterable<TensorData>;

/**
 * One tensor to write. `data` may be a function, called once when the tensor's turn comes (streaming); it
 * may return the data whole or as consecutive pieces (an async iterable), so no whole copy of a large
 * tensor need exist on the host.
 */
export interface TensorToWrite {
  dtype: WritableDType;
  shape: readonly number[];
  data: TensorData | (() => TensorSource | Promise<TensorSource>);
}

/** Rust safetensors orders the data by dtype, widest-ranked first, so each tensor stays aligned. */
const RUST_DTYPE_RANK: Record<WritableDType, number> = { F32: 3, I32: 2, BF16: 1, F16: 0 };

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Orders tensors as the Rust library writes them: dtype rank descending, then name ascending.
 * @example
 * ```ts
 * safetensorsWriteOrder({ b: { dtype: "F16" }, a: { dtype: "F16" }, c: { dtype: "F32" } }); // ["c", "a", "b"]
 * ```
 */
export function safetensorsWriteOrder(tensors: Record<string, { dtype: WritableDType }>): string[] {
  return Object.keys(tensors).sort((a, b) =>
    RUST_DTYPE_RANK[tensors[b].dtype] - RUST_DTYPE_RANK[tensors[a].dtype] || compareNames(a, b)
  );
}

function checkTensorToWrite(path: string, name: string, t: TensorToWrite): number {
  if (!Object.hasOwn(RUST_DTYPE_RANK, t.dtype)) {
    throw new SafetensorsError(
      `${path}: tensor "${name}": cannot write dtype ${describe(t.dtype)} (F32, F16, BF16, I32)`,
    );
  }
  if (!Array.isArray(t.shape) || !t.shape.every(isNonNegativeInt)) {
    throw new SafetensorsError(
      `${path}: tensor "${name}": shape must be non-negative integers, got ${describe(t.shape)}`,
    );
  }
  return t.shape.reduce((a, b) => a * b, 1);
}

/**
 * Encodes a header (length prefix included) as the Rust library does: JSON padded with spaces so the data
 * starts 8-byte aligned.
 * @example
 * ```ts
 * encodeSafetensorsHeader([{ name: "w", dtype: "F32", shape: [2], begin: 0, end: 8 }]).length; // 8 + 56
 * ```
 */
export function encodeSafetensorsHeader(
  entries: { name: string; dtype: WritableDType; shape: readonly number[]; begin: number; end: number }[],
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [e.begin, e.end] };
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

function encodeTensor(
  path: string,
  name: string,
  dtype: WritableDType,
  numel: number,
  data: TensorData,
): Uint8Array {
  const ok = (dtype === "F32" && data instanceof Float32Array) ||
    (dtype === "I32" && data instanceof Int32Array) ||
    ((dtype === "F16" || dtype === "BF16") && (data instanceof Float32Array || data instanceof Uint16Array));
  if (!ok) {
    throw new SafetensorsError(
      `${path}: tensor "${name}": ${dtype} data must be ${
        dtype === "F32"
          ? "a Float32Array"
          : dtype === "I32"
          ? "an Int32Array"
          : "a Float32Array or Uint16Array (bits)"
      }, got ${data.constructor.name}`,
    );
  }
  if (data.length !== numel) {
    throw new SafetensorsError(
      `${path}: tensor "${name}": ${data.length} values, but its shape holds ${numel}`,
    );
  }
  let out: TensorData = data;
  if (dtype === "F16" && data instanceof Float32Array) out = f32ToF16(data);
  if (dtype === "BF16" && data instanceof Float32Array) out = f32ToBf16(data);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.length) done += await file.write(data.subarray(done));
}

/**
 * Writes a safetensors file atomically, laid out as the Rust library lays it out (so files compare byte for
 * byte with Python's `save_file`): space-padded header, F32 then I32 then BF16 then F16 tensors, each group
 * in sorted name order. Tensors given as functions are produced and written one at a time.
 *
 * @example
 * ```ts
 * await writeSafetensors("out.safetensors", {
 *   "w": { dtype: "BF16", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
 *   "ids": { dtype: "I32", shape: [2], data: new Int32Array([7, 9]) },
 * }, { format: "pt" });
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Promise<void> {
  const order = safetensorsWriteOrder(tensors);
  let offset = 0;
  const entries = order.map((name) => {
    const t = tensors[name];
    const numel = checkTensorToWrite(path, name, t);
    const begin = offset;
    offset += numel * DTYPE_SIZES[t.dtype];
    return { name, dtype: t.dtype, shape: [...t.shape], begin, end: offset, numel };
  });
  if (metadata) parseMetadata(metadata, path);
  const header = encodeSafetensorsHeader(entries, metadata);
  await writeFileAtomicWith(path, async (file) => {
    await writeAll(file, header);
    for (const e of entries) {
      const source = tensors[e.name].data;
      const data = typeof source === "function" ? await source() : source;
      if (!(Symbol.asyncIterator in data)) {
        await writeAll(file, encodeTensor(path, e.name, e.dtype, e.numel, data));
        continue;
      }
      let written = 0;
      for await (const piece of data) {
        if (written + piece.length > e.numel) {
          throw new SafetensorsError(
            `${path}: tensor "${e.name}": pieces hold more than its ${e.numel} values`,
          );
        }
        await writeAll(file, encodeTensor(path, e.name, e.dtype, piece.length, piece));
        written += piece.length;
      }
      if (written !== e.numel) {
        throw new SafetensorsError(
          `${path}: tensor "${e.name}": pieces hold ${written} values, its shape ${e.numel}`,
        );
      }
    }
  });
}
