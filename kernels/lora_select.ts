/**
 * Several LoRA adapters over one base model in one batch, each row with its own adapter (multi-LoRA serving,
 * as vLLM's `--lora-modules`). The adapters of a linear layer are stacked along the rank: A [ΣR, in] holds
 * every adapter's A one under another and B [out, ΣR] every adapter's B side by side, so `x·Aᵀ` and then
 * `(x·Aᵀ)·Bᵀ` stay two plain matmuls. Between them this kernel keeps, in each row of `x·Aᵀ`, only the
 * columns of that row's adapter, each multiplied by its adapter's scale (alpha/r), and zeroes the rest:
 *
 * `xa[r, c] ← colAdapter[c] == rowAdapter[r] ? xa[r, c] · colScale[c] : 0`
 *
 * Row adapter 0 means "no adapter" (no column carries it), so base-model rows ride in the same batch.
 * Reference: `lora_select_ref.ts`.
 * @module
 */
import type { Dispatch, Gpu, Tensor } from "../gpu/runtime.ts";
import { flatGroups, flatKernel } from "./flat.ts";
import { checkCount, checkDisjoint, checkTensor } from "./tensor_checks.ts";

const SELECT = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> xa: array<f32>;
@group(0) @binding(1) var<storage, read> row_adapter: array<u32>;
@group(0) @binding(2) var<storage, read> col_adapter: array<u32>;
@group(0) @binding(3) var<storage, read> col_scale: array<f32>;
struct P { n: u32, rank: u32 }
@group(0) @binding(4) var<uniform> p: P;`,
  "p.n",
  `let r = i / p.rank;
  let c = i - r * p.rank;
  xa[i] = select(0.0, xa[i] * col_scale[c], col_adapter[c] == row_adapter[r]);`,
);

/** Arguments of {@link loraSelect}. */
export interface LoraSelectArgs {
  /** f32 `[rows, rank]`: x·Aᵀ of the stacked adapters; overwritten in place. */
  xa: Tensor;
  /** u32 `[rows]`: each row's adapter (0: none). */
  rowAdapter: Tensor;
  /** u32 `[rank]`: the adapter each stacked column belongs to (1 and up). */
  colAdapter: Tensor;
  /** f32 `[rank]`: each column's adapter scale. */
  colScale: Tensor;
  rows: number;
  /** Columns of `xa`: the stacked rank ΣR. */
  rank: number;
}

/**
 * Keeps each row's own adapter columns (scaled) and zeroes the others.
 * @example
 * ```ts
 * gpu.run([loraSelect(gpu, { xa, rowAdapter, colAdapter, colScale, rows: 4, rank: 24 })]);
 * ```
 */
export function loraSelect(gpu: Gpu, a: LoraSelectArgs): Dispatch {
  const kernel = "loraSelect";
  checkCount(kernel, "rows", a.rows, 1);
  checkCount(kernel, "rank", a.rank, 1);
  checkCount(kernel, "rows·rank", a.rows * a.rank, 1);
  checkTensor(kernel, "xa", a.xa, "f32", a.rows * a.rank, `rows·rank = ${a.rows}·${a.rank}`);
  checkTensor(kernel, "rowAdapter", a.rowAdapter, "u32", a.rows, "rows");
  checkTensor(kernel, "colAdapter", a.colAdapter, "u32", a.rank, "rank");
  checkTensor(kernel, "colScale", a.colScale, "f32", a.rank, "rank");
  for (
    const [field, t] of [["rowAdapter", a.rowAdapter], ["colAdapter", a.colAdapter], ["colScale", a.colScale]]
  ) {
    checkDisjoint(kernel, "xa", a.xa, field as string, t as Tensor);
  }
  const n = a.rows * a.rank;
  return gpu.dispatch(
    SELECT,
    [a.xa, a.rowAdapter, a.colAdapter, a.colScale],
    flatGroups(n),
    [n, a.rank],
    "lora.select",
  );
}
