/**
 * KV-cache kernels for generation: writing the K/V rows of new tokens into a per-slot cache at their
 * positions, and the bookkeeping after sampling (next input id, position, visible keys, output ring) that
 * lets many decode steps run in one submission without the CPU. Reference: `kvcache_ref.ts`.
 * @module
 */
import type { Dispatch, Gpu, Tensor } from "../gpu/runtime.ts";
import { flatGroups, flatKernel } from "./flat.ts";
import { checkCount, checkTensor } from "./tensor_checks.ts";

const SCATTER = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> positions: array<u32>;
@group(0) @binding(2) var<storage, read_write> cache: array<f32>;
struct P { rows: u32, T: u32, kv_rows: u32, width: u32 }
@group(0) @binding(3) var<uniform> p: P;`,
  "p.rows * p.width",
  /* wgsl */ `
  let row = i / p.width;
  let col = i % p.width;
  let pos = positions[row];
  if (pos >= p.kv_rows) { return; }
  let dst = (row / p.T) * p.kv_rows + pos;
  cache[dst * p.width + col] = src[i];`,
);

/** Arguments of {@link kvScatter}. */
export interface KvScatterArgs {
  /** New K or V rows, [rows, width]. */
  src: Tensor;
  /** u32 [rows]: each row's position in its sequence. */
  positions: Tensor;
  /** [batch·kvRows, width]: row (row/T)·kvRows + position receives the new row. */
  cache: Tensor;
  rows: number;
  /** Rows per batch item in `src` (the prompt length for a prefill, 1 for a decode step). */
  T: number;
  kvRows: number;
  width: number;
}

/**
 * Copies new K/V rows into the cache at their positions (rows past `kvRows` are dropped).
 * @example
 * ```ts
 * gpu.run([kvScatter(gpu, { src: k, positions, cache: kCache, rows: 1, T: 1, kvRows: 512, width: 64 })]);
 * ```
 */
export function kvScatter(gpu: Gpu, a: KvScatterArgs): Dispatch {
  for (const [f, v] of [["rows", a.rows], ["T", a.T], ["kvRows", a.kvRows], ["width", a.width]] as const) {
    checkCount("kvScatter", f, v, 1);
  }
  if (a.rows % a.T !== 0) {
    throw new RangeError(`kvScatter: rows (${a.rows}) must be a multiple of T (${a.T})`);
  }
  checkTensor("kvScatter", "src", a.src, "f32", a.rows * a.width, "rows·width");
  checkTensor("kvScatter", "positions", a.positions, "u32", a.rows, "rows");
  checkTensor(
    "kvScatter",
    "cache",
    a.cache,
    "f32",
    (a.rows / a.T) * a.kvRows * a.width,
    "batch·kvRows·width",
  );
  return gpu.dispatch(SCATTER, [a.src, a.positions, a.cache], flatGroups(a.rows * a.width), [
    a.rows,
    a.T,
    a.kvRows,
    a.width,
  ], "kv.scatter");
}

const ADVANCE = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> sampled: array<u32>;
@group(0) @binding(1) var<storage, read> live: array<u32>;
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> positions: array<u32>;
@group(0) @binding(4) var<storage, read_write> key_mask: array<u32>;
@group(0) @binding(5) var<storage, read_write> produced: array<u32>;
@group(0) @binding(6) var<storage, read_write> out: array<u32>;
struct P { slots: u32, kv_rows: u32, max_new: u32 }
@group(0) @binding(7) var<uniform> p: P;`,
  "p.slots",
  /* wgsl */ `
  if (live[i] == 0u) { return; }
  let tok = sampled[i];
  ids[i] = tok;
  let n = produced[i];
  if (n < p.max_new) {
    out[i * p.max_new + n] = tok;
    produced[i] = n + 1u;
  }
  let pos = positions[i];
  if (pos + 1u < p.kv_rows) {
    positions[i] = pos + 1u;
    key_mask[i * p.kv_rows + pos + 1u] = 1u;
  }`,
);

/** Arguments of {@link decodeAdvance}: u32 tensors, one entry per slot unless stated. */
export interface DecodeAdvanceArgs {
  sampled: Tensor;
  /** 1 for slots that are generating. */
  active: Tensor;
  ids: Tensor;
  positions: Tensor;
  /** [slots·kvRows]. */
  keyMask: Tensor;
  /** Tokens produced so far per slot. */
  produced: Tensor;
  /** [slots·maxNew] produced tokens. */
  out: Tensor;
  slots: number;
  kvRows: number;
  maxNew: number;
}

/**
 * After sampling: next input ids, positions, visible keys and the output ring, for every active slot.
 * @example
 * ```ts
 * gpu.run([...step, decodeAdvance(gpu, { sampled, active, ids, positions, keyMask, produced, out, slots: 4, kvRows: 512, maxNew: 256 })]);
 * ```
 */
export function decodeAdvance(gpu: Gpu, a: DecodeAdvanceArgs): Dispatch {
  for (const [f, v] of [["slots", a.slots], ["kvRows", a.kvRows], ["maxNew", a.maxNew]] as const) {
    checkCount("decodeAdvance", f, v, 1);
  }
  for (const f of ["sampled", "active", "ids", "positions", "produced"] as const) {
    checkTensor("decodeAdvance", f, a[f], "u32", a.slots, "slots");
  }
  checkTensor("decodeAdvance", "keyMask", a.keyMask, "u32", a.slots * a.kvRows, "slots·kvRows");
  checkTensor("decodeAdvance", "out", a.out, "u32", a.slots * a.maxNew, "slots·maxNew");
  return gpu.dispatch(
    ADVANCE,
    [a.sampled, a.active, a.ids, a.positions, a.keyMask, a.produced, a.out],
    flatGroups(a.slots),
    [a.slots, a.kvRows, a.maxNew],
    "decode.advance",
  );
}
