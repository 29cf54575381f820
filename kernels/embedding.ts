/**
 * Token embedding lookup and its gradient.
 *
 * Ids outside the table are skipped: the forward pass leaves their output row as it was and the backward
 * pass adds nothing for them, so a bad id can never write out of bounds. `firstId` lets a table be split
 * into shards (a 128k × 4096 f32 table is close to the 2 GiB binding limit): each shard's dispatch fills the
 * rows whose ids it holds.
 *
 * The backward pass is deterministic without float atomics (WGSL has none): a first pass links every row
 * to the next row with the same id and marks the first occurrence; a second pass, one thread per (first
 * occurrence, column), walks that chain in row order, sums the gradients, and adds the sum to the table
 * row. Each table element has exactly one writer, and the summation order is fixed. A gradient held in
 * row blocks (`gpu/row_blocks.ts`) is linked once and summed block by block.
 * Reference: `embedding_ref.ts`.
 * @module
 */
import type { Dispatch, Gpu, Tensor } from "../gpu/runtime.ts";
import type { RowBlocks } from "../gpu/row_blocks.ts";
import { flatGroups, flatKernel } from "./flat.ts";
import { checkCount, checkDisjoint, checkTensor } from "./tensor_checks.ts";

// Ids are shifted by `first_id` and compared unsigned, so ids below the shard wrap around and fail the same
// bounds test as ids above it.
const FORWARD = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
struct P { n: u32, dim: u32, table_rows: u32, first_id: u32 }
@group(0) @binding(3) var<uniform> p: P;`,
  "p.n",
  /* wgsl */ `let row = i / p.dim;
  let local = ids[row] - p.first_id;
  if (local >= p.table_rows) { return; }
  out[i] = table[local * p.dim + (i - row * p.dim)];`,
);

// A frozen table held as f16 (LoRA over an f16 base: a 128k × 4096 table is 1 GiB instead of 2): read as
// u32 words of two halves, unpacked with the core `unpack2x16float`, so no `shader-f16` is needed.
const FORWARD_F16 = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
struct P { n: u32, dim: u32, table_rows: u32, first_id: u32 }
@group(0) @binding(3) var<uniform> p: P;`,
  "p.n",
  /* wgsl */ `let row = i / p.dim;
  let local = ids[row] - p.first_id;
  if (local >= p.table_rows) { return; }
  let e = local * p.dim + (i - row * p.dim);
  out[i] = unpack2x16float(table[e / 2u])[e % 2u];`,
);

/** Marks the first row of each id's chain (bit 31 of a link) and the end of a chain (all other bits set). */
const HEAD_BIT = 0x80000000;
const CHAIN_END = 0x7fffffff;

// One thread per row: scan earlier rows (is this the first occurrence?) and later rows (where does the
// chain continue?). Ids repeat rarely and rows number thousands, so the quadratic scan over a small,
// cached array costs far less than the gradient pass.
const LINK = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read_write> links: array<u32>;
struct P { rows: u32, table_rows: u32, first_id: u32 }
@group(0) @binding(2) var<uniform> p: P;`,
  "p.rows",
  /* wgsl */ `let id = ids[i];
  var head = id - p.first_id < p.table_rows;
  for (var j = 0u; head && j < i; j++) { if (ids[j] == id) { head = false; } }
  var next = ${CHAIN_END}u;
  for (var j = i + 1u; j < p.rows; j++) { if (ids[j] == id) { next = j; break; } }
  links[i] = select(0u, ${HEAD_BIT}u, head) | next;`,
);

const ACCUMULATE = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> links: array<u32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> dtable: array<f32>;
struct P { n: u32, dim: u32, first_id: u32, table_rows: u32 }
@group(0) @binding(4) var<uniform> p: P;`,
  "p.n",
  /* wgsl */ `let row = i / p.dim;
  if ((links[row] & ${HEAD_BIT}u) == 0u || ids[row] - p.first_id >= p.table_rows) { return; }
  let col = i - row * p.dim;
  var sum = 0.0;
  var r = row;
  loop {
    sum += dout[r * p.dim + col];
    r = links[r] & ${CHAIN_END}u;
    if (r == ${CHAIN_END}u) { break; }
  }
  dtable[(ids[row] - p.first_id) * p.dim + col] += sum;`,
);

/** Arguments of {@link embeddingForward}. */
export interface EmbeddingForwardArgs {
  /** u32 [rows] token ids. */
  ids: Tensor;
  /**
   * f32 or f16 [tableRows, dim]: rows `firstId .. firstId + tableRows − 1` of the embedding matrix (f16 for a
   * frozen table; the output is f32 either way).
   */
  table: Tensor;
  /** f32 [rows, dim]; rows whose id is outside the table are left unchanged. */
  out: Tensor;
  rows: number;
  dim: number;
  /** The id of the table's first row (default 0), for a table split into shards. */
  firstId?: number;
}

/**
 * `out[r] = table[ids[r] − firstId]` for every row whose id the table holds.
 *
 * @example
 * ```ts
 * gpu.run([embeddingForward(gpu, { ids, table: embedTokens, out: hidden, rows: tokens, dim: 2048 })]);
 * ```
 */
export function embeddingForward(gpu: Gpu, args: EmbeddingForwardArgs): Dispatch {
  const { ids, table, out, rows, dim } = args;
  const K = "embeddingForward";
  const tableRows = checkEmbeddingArgs(K, ids, table, "table", rows, dim, args.firstId ?? 0, ["f32", "f16"]);
  checkTensor(K, "out", out, "f32", rows * dim, "rows·dim");
  checkDisjoint(K, "out", out, "table", table);
  const n = rows * dim;
  // The f16 kernel reads whole u32 words: view the table's bytes as u32 (an odd element count rounds up,
  // and the binding is already padded to 4 bytes).
  const source = table.dtype === "f16"
    ? { ...table, buffer: table.buffer, dtype: "u32" as const, length: Math.ceil(table.length / 2) }
    : table;
  return gpu.dispatch(
    table.dtype === "f16" ? FORWARD_F16 : FORWARD,
    [ids, source, out],
    flatGroups(n),
    [n, dim, tableRows, args.firstId ?? 0],
    "embedding.fwd",
  );
}

/** Arguments of {@link embeddingBackward}. */
export interface EmbeddingBackwardArgs {
  /** u32 [rows] token ids, as given to the forward pass. */
  ids: Tensor;
  /** f32 [rows, dim]: the gradient of the forward output. */
  dout: Tensor;
  /**
   * f32 [tableRows, dim], always added to (a parameter gradient); or the whole gradient as row blocks, each
   * block receiving the rows of the ids it holds.
   */
  dtable: Tensor | RowBlocks;
  rows: number;
  dim: number;
  /** The id of the table's first row (default 0; with row blocks, each block's own is used). */
  firstId?: number;
}

/**
 * `dtable[id] += Σ dout[r]` over the rows `r` with that id, summed in row order; deterministic and free of
 * races. Allocates a u32 [rows] scratch tensor, so record it once and replay the returned dispatches.
 *
 * @example
 * ```ts
 * gpu.run(embeddingBackward(gpu, { ids, dout: dhidden, dtable: embedGrad, rows: tokens, dim: 2048 }));
 * ```
 */
export function embeddingBackward(gpu: Gpu, args: EmbeddingBackwardArgs): Dispatch[] {
  const { ids, dout, rows, dim } = args;
  const K = "embeddingBackward";
  const firstId = args.firstId ?? 0;
  const shards = "blocks" in args.dtable
    ? args.dtable.blocks.map((b) => ({ tensor: b.tensor, firstId: firstId + b.row0 }))
    : [{ tensor: args.dtable, firstId }];
  const tableRows = shards.map((s) => checkEmbeddingArgs(K, ids, s.tensor, "dtable", rows, dim, s.firstId));
  checkTensor(K, "dout", dout, "f32", rows * dim, "rows·dim");
  for (const s of shards) checkDisjoint(K, "dtable", s.tensor, "dout", dout);
  const links = gpu.tensor(Math.max(rows, 1), "u32", "embedding.bwd.links");
  const n = rows * dim;
  const covered = tableRows.reduce((a, b) => a + b, 0);
  // One chain per id over every block's rows; each block then sums the chains of the ids it holds.
  return [
    gpu.dispatch(LINK, [ids, links], flatGroups(rows), [rows, covered, firstId], "embedding.bwd.link"),
    ...shards.map((s, i) =>
      gpu.dispatch(
        ACCUMULATE,
        [ids, links, dout, s.tensor],
        flatGroups(n),
        [n, dim, s.firstId, tableRows[i]],
        "embedding.bwd.sum",
      )
    ),
  ];
}

/** Checks what both passes share and returns the table's row count. */
function checkEmbeddingArgs(
  kernel: string,
  ids: Tensor,
  table: Tensor,
  tableField: string,
  rows: number,
  dim: number,
  firstId: number,
  dtypes: ("f32" | "f16")[] = ["f32"],
): number {
  checkCount(kernel, "rows", rows);
  checkCount(kernel, "dim", dim, 1);
  checkCount(kernel, "firstId", firstId);
  checkTensor(kernel, "ids", ids, "u32", rows, "rows");
  checkTensor(kernel, tableField, table, dtypes, dim, "dim");
  if (table.length % dim !== 0) {
    throw new RangeError(
      `${kernel}: "${tableField}" holds ${table.length} elements, not a whole number of rows of dim = ${dim}`,
    );
  }
  if (rows > CHAIN_END) throw new RangeError(`${kernel}: "rows" ${rows} exceeds ${CHAIN_END}`);
  return table.length / dim;
}
