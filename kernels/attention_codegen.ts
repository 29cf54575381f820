/**
 * WGSL generation for causal grouped-query attention (flash-attention style), forward and backward.
 *
 * Every kernel is generated for one head size and one tile shape, with its per-thread accumulators in
 * named registers and the loops over them unrolled at generation time: a private array indexed by a loop
 * counter goes to local memory on NVIDIA and costs 16x (facts.md).
 *
 * Rows. A workgroup serves one batch item `b` and one kv head `g`. The query rows that read `g` are the
 * `group = heads / kvHeads` query heads of its group at every query index; they are numbered
 * `row = i · group + hh` (query index `i`, head `g · group + hh`), so a run of consecutive rows covers
 * consecutive query indices and the causal limit of a tile is the one of its last row. One K/V tile in
 * workgroup memory then serves every head of the group. The decode kernel takes one row per workgroup
 * (parallel over batch items, heads and queries) and 256 keys per tile split across its threads; as each
 * K/V element is then read once, it reads them straight from storage instead of staging tiles.
 *
 * Phases of a tile, separated by workgroup barriers:
 * - load: the workgroup copies a tile of K (and V) rows into workgroup memory as `vec4`s, zero-padded
 *   past `headDim` (so any head size works) and past the last key; K/V rows are padded by one `vec4` so
 *   threads reading different rows at the same column hit different banks.
 * - scores: thread `t` computes the dot products of entries `t, t + threads, …` of the rows × keys tile.
 * - accumulate: thread `t` owns output "slots" (a row and a `vec4` of columns, plus, when the tile has
 *   fewer slots than threads, a `split` share of the keys or rows being summed over); split partial sums
 *   are added in workgroup memory at the end.
 *
 * @module
 */
import { WGSL_FLAT_INDEX } from "../gpu/runtime.ts";

/**
 * The log-sum-exp stored for a query row that sees no key (all keys padding, or left padding before the
 * causal limit). The empty sum's true value, −∞, would turn `exp(score − lse)` into +∞; this finite stand-in
 * for +∞ makes `exp(score − lse)` underflow to exactly 0, so the backward pass gives such a row (whose
 * output is all zeros) zero gradients even if a kernel did not re-check the mask.
 *
 * @example
 * ```ts
 * const empty = lse.map((x) => x === EMPTY_ROW_LSE); // rows that saw no key
 * ```
 */
export const EMPTY_ROW_LSE = 3.0e38;

/**
 * Largest head size the kernels are generated for (Llama uses 64 or 128).
 *
 * @example
 * ```ts
 * if (headDim > MAX_HEAD_DIM) throw new RangeError("head too large");
 * ```
 */
export const MAX_HEAD_DIM = 256;

/**
 * The four attention kernels that use tiles; `decode` is the forward pass for a handful of queries.
 *
 * @example
 * ```ts
 * const kernel: AttentionKernel = Tq <= 4 ? "decode" : "forward";
 * ```
 */
export type AttentionKernel = "forward" | "decode" | "dq" | "dkdv";

/**
 * The tile shape of one generated attention kernel.
 *
 * @example
 * ```ts
 * const tiles: AttentionTiles = { kernel: "dq", headDim: 64, rows: 16, keys: 16, threads: 128, split: 1 };
 * ```
 */
export interface AttentionTiles {
  readonly kernel: AttentionKernel;
  readonly headDim: number;
  /** Query rows per tile (a row is one query index of one head). */
  readonly rows: number;
  /** Keys per tile. */
  readonly keys: number;
  /** Threads per workgroup. */
  readonly threads: number;
  /**
   * How many thread groups share the accumulation loop (keys for forward and dq, query rows for dk/dv),
   * so that a tile with fewer output `vec4`s than threads still keeps every thread busy.
   */
  readonly split: number;
}

/** Workgroup size and tile shapes (rows, keys) to try, best first; the first that fits the device wins. */
const CANDIDATES: Record<
  AttentionKernel,
  { threads: number; shapes: readonly (readonly [number, number])[] }
> = {
  forward: { threads: 128, shapes: [[16, 32], [16, 16], [16, 8], [8, 8], [4, 8], [4, 4]] },
  decode: { threads: 128, shapes: [[1, 256], [1, 128]] },
  dq: { threads: 128, shapes: [[16, 32], [16, 16], [16, 8], [8, 8], [4, 8], [4, 4]] },
  dkdv: { threads: 128, shapes: [[32, 16], [16, 16], [16, 8], [8, 8], [8, 4], [4, 4]] },
};

/**
 * The largest tile shape of `kernel` for `headDim` whose workgroup memory fits `sharedLimit` bytes.
 *
 * @example
 * ```ts
 * const tiles = chooseTiles("forward", 128, gpu.limits.maxComputeWorkgroupStorageSize);
 * ```
 */
export function chooseTiles(kernel: AttentionKernel, headDim: number, sharedLimit: number): AttentionTiles {
  const { threads, shapes } = CANDIDATES[kernel];
  for (const [rows, keys] of shapes) {
    const tiles = makeTiles(kernel, headDim, rows, keys, threads);
    if (sharedBytes(tiles) <= sharedLimit) return tiles;
  }
  throw new RangeError(
    `attention: no ${kernel} tile for headDim ${headDim} fits in ${sharedLimit} bytes of workgroup memory`,
  );
}

/**
 * A tile shape with its `split` derived: the largest power of two that keeps the output slots within one
 * pass of the workgroup's threads.
 *
 * @example
 * ```ts
 * makeTiles("dq", 64, 16, 16, 128); // { ..., split: 1 }
 * ```
 */
export function makeTiles(
  kernel: AttentionKernel,
  headDim: number,
  rows: number,
  keys: number,
  threads: number,
): AttentionTiles {
  const d4 = Math.ceil(headDim / 4);
  // dk/dv owns key columns and sums over query rows; the others own query rows and sum over keys.
  const owned = kernel === "dkdv" ? keys : rows;
  const summed = kernel === "dkdv" ? rows : keys;
  const split = Math.min(summed, floorPow2(Math.max(1, Math.floor(threads / (owned * d4)))));
  return { kernel, headDim, rows, keys, threads, split };
}

/**
 * Bytes of workgroup memory a kernel of `tiles` declares.
 *
 * @example
 * ```ts
 * sharedBytes(chooseTiles("dq", 128, 32768)) <= 32768; // true
 * ```
 */
export function sharedBytes(tiles: AttentionTiles): number {
  const { rows, keys, threads } = tiles;
  const d4 = Math.ceil(tiles.headDim / 4);
  const kvTile = keys * (d4 + 1) * 16;
  const qTile = rows * d4 * 16;
  const slots = slotCount(tiles);
  const partial = tiles.split > 1 ? slots * 16 : 0;
  switch (tiles.kernel) {
    case "forward":
      return qTile + kvTile + rows * keys * 4 + threads * 4 + (tiles.split > 1 ? slots * 20 : 0);
    case "decode":
      return qTile + rows * keys * 4 + threads * 4 + (tiles.split > 1 ? slots * 20 : 0);
    case "dq":
      return 2 * qTile + 2 * kvTile + rows * keys * 4 + rows * 8 + partial;
    case "dkdv":
      return 2 * qTile + 2 * kvTile + rows * keys * 8 + rows * 8 + 2 * partial;
  }
}

function floorPow2(n: number): number {
  return 2 ** Math.floor(Math.log2(n));
}

/** Output slots of a tile: (owned row or key) × vec4 column × split share. */
function slotCount(t: AttentionTiles): number {
  return (t.kernel === "dkdv" ? t.keys : t.rows) * Math.ceil(t.headDim / 4) * t.split;
}

/** `f(0) … f(n − 1)` joined by newlines: the unrolled body of a per-register loop. */
function unroll(n: number, f: (e: number) => string): string {
  return Array.from({ length: n }, (_, e) => f(e)).join("\n");
}

/** Storage binding of an f32 tensor, as `vec4`s when the head size allows aligned `vec4` access. */
function floatBinding(binding: number, name: string, writable: boolean, vec: boolean): string {
  const access = writable ? "read_write" : "read";
  return `@group(0) @binding(${binding}) var<storage, ${access}> ${name}: array<${vec ? "vec4f" : "f32"}>;`;
}

/** `ld_<name>(base, c)`: columns 4c…4c+3 of the head slice starting at element `base`, zero past D. */
function loader(name: string, vec: boolean): string {
  if (vec) return `fn ld_${name}(base: u32, c: u32) -> vec4f { return ${name}[(base >> 2u) + c]; }`;
  return `fn ld_${name}(base: u32, c: u32) -> vec4f {
  let d = base + c * 4u;
  var x = vec4f(${name}[d], 0.0, 0.0, 0.0);
  if (c * 4u + 1u < D) { x.y = ${name}[d + 1u]; }
  if (c * 4u + 2u < D) { x.z = ${name}[d + 2u]; }
  if (c * 4u + 3u < D) { x.w = ${name}[d + 3u]; }
  return x;
}`;
}

/** `st_<name>(base, c, x)`: writes the columns of `x` that lie inside the head. */
function storer(name: string, vec: boolean): string {
  if (vec) return `fn st_${name}(base: u32, c: u32, x: vec4f) { ${name}[(base >> 2u) + c] = x; }`;
  return `fn st_${name}(base: u32, c: u32, x: vec4f) {
  let d = base + c * 4u;
  ${name}[d] = x.x;
  if (c * 4u + 1u < D) { ${name}[d + 1u] = x.y; }
  if (c * 4u + 2u < D) { ${name}[d + 2u] = x.z; }
  if (c * 4u + 3u < D) { ${name}[d + 3u] = x.w; }
}`;
}

function constants(t: AttentionTiles): string {
  const d4 = Math.ceil(t.headDim / 4);
  return `const D = ${t.headDim}u;
const D4 = ${d4}u;
const BQ = ${t.rows}u;
const BK = ${t.keys}u;
const NT = ${t.threads}u;
const KST = ${d4 + 1}u; // padded row stride of K/V tiles, in vec4s
const KS = ${t.split}u;
const SLOTS = ${slotCount(t)}u;
const NEG = -3.0e38; // running max before any visible key, and the score of a hidden key
const VISIBLE_MIN = -1.0e38; // scores above this are real
const EMPTY_LSE = ${EMPTY_ROW_LSE.toExponential()};`;
}

/**
 * Per-thread roles in the scores phase: entry `e` of thread `li` is tile entry `sIdx<e>` (row `sRow<e>`,
 * key `sKey<e>`); indices past the tile are clamped so the unrolled code needs no branches, and only
 * their writes are skipped.
 */
function scoreRoles(t: AttentionTiles): { count: number; guarded: boolean; code: string } {
  const entries = t.rows * t.keys;
  const count = Math.ceil(entries / t.threads);
  const code = unroll(count, (e) =>
    `  let sIdx${e} = min(li + ${e * t.threads}u, ${entries - 1}u);
  let sRow${e} = sIdx${e} / BK;
  let sKey${e} = sIdx${e} % BK;`);
  return { count, guarded: entries % t.threads !== 0, code };
}

/** Writes of the scores phase, skipped for the clamped duplicates of a guarded layout. */
function guardedWrite(guarded: boolean, e: number, t: AttentionTiles, body: string): string {
  if (!guarded) return body;
  return `if (li + ${e * t.threads}u < ${t.rows * t.keys}u) { ${body} }`;
}

/**
 * Per-thread roles in the accumulation phase: slot `e` is `oIdx<e>` = (owner · KS + share) · D4 + column.
 * With KS > 1 there is one slot per thread, so every thread runs one loop starting at its share `oPart`.
 */
function slotRoles(t: AttentionTiles): { count: number; guarded: boolean; code: string } {
  const slots = slotCount(t);
  const count = Math.ceil(slots / t.threads);
  const code = unroll(count, (e) =>
    `  let oIdx${e} = min(li + ${e * t.threads}u, SLOTS - 1u);
  let oCol${e} = oIdx${e} % D4;
  let oOwn${e} = oIdx${e} / (D4 * KS);`) + "\n  let oPart = (oIdx0 / D4) % KS;";
  return { count, guarded: slots % t.threads !== 0, code };
}

/** The cooperative copy of `rows` head slices into a workgroup `vec4` array. */
function tileLoad(target: string, stride: string, count: string, base: (r: string) => string, ok: string) {
  return `for (var e = li; e < ${count} * D4; e += NT) {
      let r = e / D4;
      var x = vec4f(0.0);
      if (${ok}) { x = ${base("r")}; }
      ${target}[r * ${stride} + e % D4] = x;
    }`;
}

/**
 * The forward kernel for `tiles` (kernel "forward" or "decode"): online softmax over key tiles, out and
 * log-sum-exp per row. Bindings: q, k, v, keyMask, out, lse, uniforms.
 *
 * @example
 * ```ts
 * const code = forwardSource(chooseTiles("forward", 64, 32768));
 * ```
 */
export function forwardSource(tiles: AttentionTiles): string {
  const t = tiles;
  const vec = t.headDim % 4 === 0;
  const rowThreads = Math.min(t.threads / t.rows, floorPow2(t.keys));
  const s = scoreRoles(t);
  const o = slotRoles(t);
  // With one query row per workgroup every K and V element is read once: staging them in workgroup
  // memory would only add copies and barriers, so the decode kernel reads them straight from storage.
  const direct = t.kernel === "decode";
  const kRead = (e: number) => direct ? `ld_k(kRow${e}, c)` : `kv[sKey${e} * KST + c]`;
  const vRead = (e: number) => direct ? `ld_v(vRow, oCol${e})` : `kv[vRow + oCol${e}]`;
  return /* wgsl */ `
${floatBinding(0, "q", false, vec)}
${floatBinding(1, "k", false, vec)}
${floatBinding(2, "v", false, vec)}
@group(0) @binding(3) var<storage, read> keyMask: array<u32>;
${floatBinding(4, "out", true, vec)}
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
struct P { Tq: u32, Tk: u32, kvRows: u32, qOffset: u32, heads: u32, kvHeads: u32, group: u32, scale: f32 }
@group(0) @binding(6) var<uniform> p: P;
${constants(t)}
const RT = ${rowThreads}u; // threads that reduce one row's maximum
var<workgroup> qs: array<vec4f, ${t.rows * Math.ceil(t.headDim / 4)}>;
${direct ? "" : `var<workgroup> kv: array<vec4f, ${t.keys * (Math.ceil(t.headDim / 4) + 1)}>;`}
var<workgroup> sc: array<f32, ${t.rows * t.keys}>;
var<workgroup> red: array<f32, NT>;
${t.split > 1 ? `var<workgroup> part: array<vec4f, SLOTS>;\nvar<workgroup> lpart: array<f32, SLOTS>;` : ""}
${loader("q", vec)}
${loader("k", vec)}
${loader("v", vec)}
${storer("out", vec)}

fn q_at(b: u32, i: u32, h: u32) -> u32 { return (b * p.Tq + i) * p.heads * D + h * D; }

fn emit(b: u32, g: u32, row: u32, c: u32, o: vec4f, l: f32, m: f32) {
  if (row >= p.Tq * p.group) { return; }
  let i = row / p.group;
  let h = g * p.group + row % p.group;
  let seen = l > 0.0;
  st_out(q_at(b, i, h), c, o * select(0.0, 1.0 / l, seen));
  if (c == 0u) { lse[(b * p.heads + h) * p.Tq + i] = select(EMPTY_LSE, m + log(l), seen); }
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let b = wid.y / p.kvHeads;
  let g = wid.y % p.kvHeads;
  let rowsPerItem = p.Tq * p.group;
  let row0 = wid.x * BQ;
  let kStride = p.kvHeads * D;
  let kBase = b * p.kvRows * kStride + g * D;
  let maskBase = b * p.kvRows;
  // The tile's last row has the furthest causal limit, so no key past it is needed by any row.
  let lastQuery = (min(row0 + BQ, rowsPerItem) - 1u) / p.group;
  let keyEnd = min(p.Tk, p.qOffset + lastQuery + 1u);

  ${
    tileLoad(
      "qs",
      "D4",
      "BQ",
      (r) =>
        `ld_q(q_at(b, (row0 + ${r}) / p.group, g * p.group + (row0 + ${r}) % p.group), e % D4) * p.scale`,
      "row0 + r < rowsPerItem",
    )
  }
${s.code}
${
    unroll(s.count, (e) =>
      `  let sEnd${e} = select(0u, min(p.Tk, p.qOffset + (row0 + sRow${e}) / p.group + 1u), row0 + sRow${e} < rowsPerItem);`)
  }
  let rRow = li / RT;
  let rLane = li % RT;
  let rActive = li < BQ * RT;
  var rMax = NEG;
${o.code}
${unroll(o.count, (e) => `  var o${e} = vec4f(0.0);\n  var l${e} = 0.0;\n  var m${e} = NEG;`)}

  let nTiles = (keyEnd + BK - 1u) / BK;
  for (var tile = 0u; tile < nTiles; tile++) {
    let j0 = tile * BK;
    workgroupBarrier();
${
    direct
      ? unroll(s.count, (e) => `    let kRow${e} = kBase + min(j0 + sKey${e}, p.Tk - 1u) * kStride;`)
      : `    ${
        tileLoad("kv", "KST", "BK", (r) => `ld_k(kBase + (j0 + ${r}) * kStride, e % D4)`, "j0 + r < p.Tk")
      }
    workgroupBarrier();`
  }
    {
${unroll(s.count, (e) => `      var a${e} = 0.0;`)}
      for (var c = 0u; c < D4; c++) {
${unroll(s.count, (e) => `        a${e} += dot(qs[sRow${e} * D4 + c], ${kRead(e)});`)}
      }
${
    unroll(s.count, (e) =>
      `      let key${e} = j0 + sKey${e};
      let vis${e} = key${e} < sEnd${e} && keyMask[maskBase + key${e}] != 0u;
      ${guardedWrite(s.guarded, e, t, `sc[sIdx${e}] = select(NEG, a${e}, vis${e});`)}`)
  }
    }
    workgroupBarrier();
    ${
    direct
      ? ""
      : tileLoad("kv", "KST", "BK", (r) => `ld_v(kBase + (j0 + ${r}) * kStride, e % D4)`, "j0 + r < p.Tk")
  }
    if (rActive) {
      var mx = rMax;
      for (var j = rLane; j < BK; j += RT) { mx = max(mx, sc[rRow * BK + j]); }
      red[li] = mx;
    }
    workgroupBarrier();
    for (var half = RT / 2u; half > 0u; half >>= 1u) {
      if (rActive && rLane < half) { red[li] = max(red[li], red[li + half]); }
      workgroupBarrier();
    }
    if (rActive) {
      rMax = red[rRow * RT];
      for (var j = rLane; j < BK; j += RT) {
        let x = sc[rRow * BK + j];
        sc[rRow * BK + j] = select(0.0, exp(x - rMax), x > VISIBLE_MIN);
      }
    }
    workgroupBarrier();
${
    unroll(o.count, (e) =>
      `    {
      let mNew = red[oOwn${e} * RT];
      let alpha = exp(m${e} - mNew);
      m${e} = mNew;
      o${e} *= alpha;
      l${e} *= alpha;
    }`)
  }
    // Keys past the tile's causal end have zero weight: skip them.
    let jEnd = min(BK, keyEnd - j0);
    for (var j = oPart; j < jEnd; j += KS) {
      let vRow = ${direct ? "kBase + (j0 + j) * kStride" : "j * KST"};
${
    unroll(o.count, (e) =>
      `      let w${e} = sc[oOwn${e} * BK + j];
      o${e} += w${e} * ${vRead(e)};
      l${e} += w${e};`)
  }
    }
  }
${
    t.split > 1
      ? `  workgroupBarrier();
  if (li < SLOTS) { part[li] = o0; lpart[li] = l0; }
  workgroupBarrier();
  if (li < SLOTS && oPart == 0u) {
    var oSum = o0;
    var lSum = l0;
    for (var share = 1u; share < KS; share++) { oSum += part[li + share * D4]; lSum += lpart[li + share * D4]; }
    emit(b, g, row0 + oOwn0, oCol0, oSum, lSum, m0);
  }`
      : unroll(o.count, (e) => {
        const call = `emit(b, g, row0 + oOwn${e}, oCol${e}, o${e}, l${e}, m${e});`;
        return o.guarded ? `  if (li + ${e * t.threads}u < SLOTS) { ${call} }` : `  ${call}`;
      })
  }
}`;
}

/** Adds the split shares of slot accumulators (KS > 1: one slot per thread) and runs `write(sum)`. */
function combineShares(t: AttentionTiles, parts: readonly { acc: string; shared: string }[], write: string) {
  if (t.split === 1) return "";
  const save = parts.map((x) => `${x.shared}[li] = ${x.acc}0;`).join(" ");
  const sums = parts.map((x) => `var ${x.acc}Sum = ${x.acc}0;`).join("\n    ");
  const adds = parts.map((x) => `${x.acc}Sum += ${x.shared}[li + share * D4];`).join(" ");
  return `  workgroupBarrier();
  if (li < SLOTS) { ${save} }
  workgroupBarrier();
  if (li < SLOTS && oPart == 0u) {
    ${sums}
    for (var share = 1u; share < KS; share++) { ${adds} }
    ${write}
  }`;
}

/** Reads of the saved per-row statistics (lse, D) into workgroup memory, zero for rows past the end. */
function statsLoad(first: string): string {
  return `if (li < BQ) {
      let row = ${first} + li;
      var st = vec2f(0.0);
      if (row < rowsPerItem) {
        let n = (b * p.heads + g * p.group + row % p.group) * p.T + row / p.group;
        st = vec2f(stats[2u * n], stats[2u * n + 1u]);
      }
      rowLse[li] = st.x;
      rowDelta[li] = st.y;
    }`;
}

/** Shared header of the two backward kernels (bindings 0–5, uniforms, tiles, loaders). */
function backwardHeader(t: AttentionTiles, vec: boolean, outputs: readonly string[]): string {
  const d4 = Math.ceil(t.headDim / 4);
  return `${floatBinding(0, "q", false, vec)}
${floatBinding(1, "k", false, vec)}
${floatBinding(2, "v", false, vec)}
${floatBinding(3, "dout", false, vec)}
@group(0) @binding(4) var<storage, read> stats: array<f32>;
@group(0) @binding(5) var<storage, read> keyMask: array<u32>;
${outputs.map((name, i) => floatBinding(6 + i, name, true, vec)).join("\n")}
struct P { T: u32, heads: u32, kvHeads: u32, group: u32, scale: f32 }
@group(0) @binding(${6 + outputs.length}) var<uniform> p: P;
${constants(t)}
var<workgroup> qs: array<vec4f, ${t.rows * d4}>;
var<workgroup> dos: array<vec4f, ${t.rows * d4}>;
var<workgroup> ks: array<vec4f, ${t.keys * (d4 + 1)}>;
var<workgroup> vs: array<vec4f, ${t.keys * (d4 + 1)}>;
var<workgroup> rowLse: array<f32, ${t.rows}>;
var<workgroup> rowDelta: array<f32, ${t.rows}>;
${loader("q", vec)}
${loader("k", vec)}
${loader("v", vec)}
${loader("dout", vec)}
${outputs.map((name) => storer(name, vec)).join("\n")}

fn q_at(b: u32, row: u32, g: u32) -> u32 {
  return (b * p.T + row / p.group) * p.heads * D + (g * p.group + row % p.group) * D;
}`;
}

/** The scores and dP dot products of one tile, unrolled over a thread's entries. */
function scoreDots(count: number): string {
  return `${unroll(count, (e) => `      var a${e} = 0.0;\n      var d${e} = 0.0;`)}
      for (var c = 0u; c < D4; c++) {
${
    unroll(count, (e) =>
      `        a${e} += dot(qs[sRow${e} * D4 + c], ks[sKey${e} * KST + c]);
        d${e} += dot(dos[sRow${e} * D4 + c], vs[sKey${e} * KST + c]);`)
  }
      }`;
}

/**
 * Backward kernel for dq (flash-attention 2): per query-row tile, loop over key tiles recomputing
 * P = exp(S − lse) and dS = P ∘ (dP − D), dq = scale · dS · K. Bindings: q, k, v, dout, stats, keyMask,
 * dq, uniforms; `stats` holds (lse, D) per row.
 *
 * @example
 * ```ts
 * const code = dqSource(chooseTiles("dq", 64, 32768));
 * ```
 */
export function dqSource(tiles: AttentionTiles): string {
  const t = tiles;
  const vec = t.headDim % 4 === 0;
  const s = scoreRoles(t);
  const o = slotRoles(t);
  const store = (e: string, acc: string) => `st_dq(q_at(b, row0 + oOwn${e}, g), oCol${e}, ${acc} * p.scale);`;
  const rowOk = (e: string) => `row0 + oOwn${e} < rowsPerItem`;
  return /* wgsl */ `
${backwardHeader(t, vec, ["dq"])}
var<workgroup> ds: array<f32, ${t.rows * t.keys}>;
${t.split > 1 ? "var<workgroup> part: array<vec4f, SLOTS>;" : ""}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let b = wid.y / p.kvHeads;
  let g = wid.y % p.kvHeads;
  let rowsPerItem = p.T * p.group;
  let row0 = wid.x * BQ;
  let kStride = p.kvHeads * D;
  let kBase = b * p.T * kStride + g * D;
  let maskBase = b * p.T;
  let keyEnd = (min(row0 + BQ, rowsPerItem) - 1u) / p.group + 1u;

  ${
    tileLoad("qs", "D4", "BQ", (r) =>
      `ld_q(q_at(b, row0 + ${r}, g), e % D4) * p.scale`, "row0 + r < rowsPerItem")
  }
  ${tileLoad("dos", "D4", "BQ", (r) => `ld_dout(q_at(b, row0 + ${r}, g), e % D4)`, "row0 + r < rowsPerItem")}
  ${statsLoad("row0")}
${s.code}
${
    unroll(s.count, (e) =>
      `  let sEnd${e} = select(0u, (row0 + sRow${e}) / p.group + 1u, row0 + sRow${e} < rowsPerItem);`)
  }
${o.code}
${unroll(o.count, (e) => `  var acc${e} = vec4f(0.0);`)}

  let nTiles = (keyEnd + BK - 1u) / BK;
  for (var tile = 0u; tile < nTiles; tile++) {
    let j0 = tile * BK;
    workgroupBarrier();
    ${tileLoad("ks", "KST", "BK", (r) => `ld_k(kBase + (j0 + ${r}) * kStride, e % D4)`, "j0 + r < p.T")}
    ${tileLoad("vs", "KST", "BK", (r) => `ld_v(kBase + (j0 + ${r}) * kStride, e % D4)`, "j0 + r < p.T")}
    workgroupBarrier();
    {
${scoreDots(s.count)}
${
    unroll(s.count, (e) =>
      `      let key${e} = j0 + sKey${e};
      let vis${e} = key${e} < sEnd${e} && keyMask[maskBase + key${e}] != 0u;
      let w${e} = select(0.0, exp(a${e} - rowLse[sRow${e}]), vis${e});
      ${guardedWrite(s.guarded, e, t, `ds[sIdx${e}] = w${e} * (d${e} - rowDelta[sRow${e}]);`)}`)
  }
    }
    workgroupBarrier();
    for (var j = oPart; j < BK; j += KS) {
      let kRow = j * KST;
${unroll(o.count, (e) => `      acc${e} += ds[oOwn${e} * BK + j] * ks[kRow + oCol${e}];`)}
    }
  }
${
    t.split > 1
      ? combineShares(t, [{ acc: "acc", shared: "part" }], `if (${rowOk("0")}) { ${store("0", "accSum")} }`)
      : unroll(o.count, (e) => {
        const cond = o.guarded ? `li + ${e * t.threads}u < SLOTS && ${rowOk(String(e))}` : rowOk(String(e));
        return `  if (${cond}) { ${store(String(e), `acc${e}`)} }`;
      })
  }
}`;
}

/**
 * Backward kernel for dk and dv (flash-attention 2): per key tile of one kv head, loop over the query rows
 * of every head in its group that can see the tile, dv += Pᵀ · dout and dk += scale · dSᵀ · q.
 * Bindings: q, k, v, dout, stats, keyMask, dk, dv, uniforms.
 *
 * @example
 * ```ts
 * const code = dkdvSource(chooseTiles("dkdv", 64, 32768));
 * ```
 */
export function dkdvSource(tiles: AttentionTiles): string {
  const t = tiles;
  const vec = t.headDim % 4 === 0;
  const s = scoreRoles(t);
  const o = slotRoles(t);
  const kAt = (e: string) => `kBase + (j0 + oOwn${e}) * kStride`;
  const store = (e: string, dk: string, dv: string) =>
    `st_dk(${kAt(e)}, oCol${e}, ${dk}); st_dv(${kAt(e)}, oCol${e}, ${dv});`;
  const keyOk = (e: string) => `j0 + oOwn${e} < p.T`;
  return /* wgsl */ `
${backwardHeader(t, vec, ["dk", "dv"])}
var<workgroup> ps: array<f32, ${t.rows * t.keys}>;
var<workgroup> ds: array<f32, ${t.rows * t.keys}>;
${t.split > 1 ? "var<workgroup> partK: array<vec4f, SLOTS>;\nvar<workgroup> partV: array<vec4f, SLOTS>;" : ""}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let b = wid.y / p.kvHeads;
  let g = wid.y % p.kvHeads;
  let rowsPerItem = p.T * p.group;
  let j0 = wid.x * BK;
  let kStride = p.kvHeads * D;
  let kBase = b * p.T * kStride + g * D;
  let maskBase = b * p.T;
  // Query i sees key j only when j <= i: rows before the tile's first key contribute nothing.
  let rowStart = j0 * p.group;

  ${tileLoad("ks", "KST", "BK", (r) => `ld_k(kBase + (j0 + ${r}) * kStride, e % D4)`, "j0 + r < p.T")}
  ${tileLoad("vs", "KST", "BK", (r) => `ld_v(kBase + (j0 + ${r}) * kStride, e % D4)`, "j0 + r < p.T")}
${s.code}
${
    unroll(s.count, (e) =>
      `  let key${e} = j0 + sKey${e};
  let keyOk${e} = key${e} < p.T && keyMask[maskBase + key${e}] != 0u;`)
  }
${o.code}
${unroll(o.count, (e) => `  var dk${e} = vec4f(0.0);\n  var dv${e} = vec4f(0.0);`)}

  let nTiles = (rowsPerItem - rowStart + BQ - 1u) / BQ;
  for (var tile = 0u; tile < nTiles; tile++) {
    let row0 = rowStart + tile * BQ;
    workgroupBarrier();
    ${
    tileLoad("qs", "D4", "BQ", (r) =>
      `ld_q(q_at(b, row0 + ${r}, g), e % D4) * p.scale`, "row0 + r < rowsPerItem")
  }
    ${
    tileLoad("dos", "D4", "BQ", (r) => `ld_dout(q_at(b, row0 + ${r}, g), e % D4)`, "row0 + r < rowsPerItem")
  }
    ${statsLoad("row0")}
    workgroupBarrier();
    {
${scoreDots(s.count)}
${
    unroll(s.count, (e) =>
      `      let qRow${e} = row0 + sRow${e};
      let vis${e} = keyOk${e} && qRow${e} < rowsPerItem && key${e} <= qRow${e} / p.group;
      let w${e} = select(0.0, exp(a${e} - rowLse[sRow${e}]), vis${e});
      ${
        guardedWrite(
          s.guarded,
          e,
          t,
          `ps[sIdx${e}] = w${e}; ds[sIdx${e}] = w${e} * (d${e} - rowDelta[sRow${e}]);`,
        )
      }`)
  }
    }
    workgroupBarrier();
    for (var r = oPart; r < BQ; r += KS) {
${
    unroll(o.count, (e) =>
      `      dv${e} += ps[r * BK + oOwn${e}] * dos[r * D4 + oCol${e}];
      dk${e} += ds[r * BK + oOwn${e}] * qs[r * D4 + oCol${e}];`)
  }
    }
  }
${
    t.split > 1
      ? combineShares(
        t,
        [{ acc: "dk", shared: "partK" }, { acc: "dv", shared: "partV" }],
        `if (${keyOk("0")}) { ${store("0", "dkSum", "dvSum")} }`,
      )
      : unroll(o.count, (e) => {
        const cond = o.guarded ? `li + ${e * t.threads}u < SLOTS && ${keyOk(String(e))}` : keyOk(String(e));
        return `  if (${cond}) { ${store(String(e), `dk${e}`, `dv${e}`)} }`;
      })
  }
}`;
}

/**
 * Threads per workgroup of the per-row statistics pass.
 *
 * @example
 * ```ts
 * gpu.dispatch(statsSource(64), [out, dout, lse, stats], grid(rows, STATS_THREADS), [rows, T, heads]);
 * ```
 */
export const STATS_THREADS = 64;

/**
 * The first backward pass: per query row, `stats[2n] = lse[n]` and `stats[2n + 1] = D = dout · out` over
 * the head. Keeping both in one buffer keeps the dk/dv kernel within 8 storage bindings. Bindings: out,
 * dout, lse, stats, uniforms `{ rows, T, heads }`; launched with `grid(rows, STATS_THREADS)`.
 *
 * @example
 * ```ts
 * const code = statsSource(64);
 * ```
 */
export function statsSource(headDim: number): string {
  const vec = headDim % 4 === 0;
  return /* wgsl */ `
${floatBinding(0, "out", false, vec)}
${floatBinding(1, "dout", false, vec)}
@group(0) @binding(2) var<storage, read> lse: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
struct P { rows: u32, T: u32, heads: u32 }
@group(0) @binding(4) var<uniform> p: P;
const D = ${headDim}u;
const D4 = ${Math.ceil(headDim / 4)}u;
${loader("out", vec)}
${loader("dout", vec)}
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${STATS_THREADS})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let n = flat_group(wid, nwg) * ${STATS_THREADS}u + li;
  if (n >= p.rows) { return; }
  let i = n % p.T;
  let h = (n / p.T) % p.heads;
  let b = n / (p.T * p.heads);
  let base = (b * p.T + i) * p.heads * D + h * D;
  var acc = 0.0;
  for (var c = 0u; c < D4; c++) { acc += dot(ld_out(base, c), ld_dout(base, c)); }
  stats[2u * n] = lse[n];
  stats[2u * n + 1u] = acc;
}`;
}
