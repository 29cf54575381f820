/**
 * The k most probable next tokens of each row, with their log-probabilities: what OpenAI's `logprobs` /
 * `top_logprobs` (and lm-eval's `is_greedy` check over them) report. One workgroup per row makes k passes
 * over the vocabulary; pass j keeps the best token that comes strictly after pass j−1's pick in the order
 * "larger value first, then lower id" (so ties come out lowest id first, as `torch.topk` on equal values
 * usually does and `torch.argmax` always does), reduced in workgroup memory. NaN never qualifies. No private
 * arrays and no sort: k is small (OpenAI allows 20) against a vocabulary of 32k–152k.
 *
 * Like `logprobs.ts` it works on one chunk of logits `[rows, vocab]` whose first row is `rowOffset` in the
 * full-length `lse` (written by `logprobsForward` for the same chunk) and in the outputs, which hold k
 * entries per row.
 *
 * When the vocabulary projection is split into row blocks (a vocabulary larger than one binding), the
 * logits come block by block: {@link topLogprobsBlock} writes each block's min(k, columns) best raw logits
 * and their vocabulary ids into a small candidate buffer `[rows, candidateColumns]` (layout:
 * {@link topkCandidateLayout}), and once `logprobsMerge` has written the rows' `lse`,
 * {@link topLogprobsMerge} makes the same k passes over the candidates. Every token of the whole row's top k
 * is among its own block's top k, and the order compares absolute ids, so the merge gives exactly what
 * {@link topLogprobs} gives over the whole row. All three passes are one generated kernel.
 * Reference: `topk_ref.ts`.
 * @module
 */
import { type Dispatch, type Gpu, grid, type Tensor, WGSL_FLAT_INDEX } from "../gpu/runtime.ts";
import { checkCount, checkDisjoint, checkTensor } from "./tensor_checks.ts";

const WG = 256;
const NONE = 0xffffffff;

/**
 * The selection kernel. It reads `width` values per row; a value's id is its column plus `first_column`
 * (logits) or, with `candidateIds`, the id stored beside it (candidates). With `subtractLse` it writes
 * value − lse (log-probs), else the raw value (candidates). Outputs go to row `row_offset + row`, `out_stride`
 * entries apart, from column `out_col`.
 */
function selectSource(v: { candidateIds: boolean; subtractLse: boolean }): string {
  const bindings = ["values", ...(v.candidateIds ? ["cand_ids"] : []), ...(v.subtractLse ? ["lse"] : [])];
  const read = (name: string, i: number) =>
    `@group(0) @binding(${i}) var<storage, read> ${name}: array<${name === "cand_ids" ? "u32" : "f32"}>;`;
  const n = bindings.length;
  return /* wgsl */ `
${bindings.map(read).join("\n")}
@group(0) @binding(${n}) var<storage, read_write> out_ids: array<u32>;
@group(0) @binding(${n + 1}) var<storage, read_write> out_values: array<f32>;
struct P { rows: u32, width: u32, row_offset: u32, k: u32, out_stride: u32, out_col: u32, first_column: u32 }
@group(0) @binding(${n + 2}) var<uniform> p: P;
var<workgroup> redf: array<f32, ${WG}>;
var<workgroup> redu: array<u32, ${WG}>;
${WGSL_FLAT_INDEX}
const NONE = ${NONE}u;

// a comes before b: larger value, then lower id; NONE never does.
fn before(av: f32, ai: u32, bv: f32, bi: u32) -> bool {
  if (ai == NONE) { return false; }
  if (bi == NONE) { return true; }
  return av > bv || (av == bv && ai < bi);
}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let row = flat_group(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.width;
  let g = p.row_offset + row;
  let out0 = g * p.out_stride + p.out_col;
  var prev_v = 0.0;
  var prev_i = NONE;
  for (var j = 0u; j < p.k; j++) {
    var best_v = 0.0;
    var best_i = NONE;
    // Once a pass finds nothing (fewer than k values that are not NaN) every later one writes NONE too.
    if (j == 0u || prev_i != NONE) {
      for (var i = li; i < p.width; i += ${WG}u) {
        let v = values[base + i];
        let id = ${v.candidateIds ? "cand_ids[base + i]" : "p.first_column + i"};
        // Only values after the previous pick (all of them in the first pass); NaN never qualifies.
        let after = j == 0u || before(prev_v, prev_i, v, id);
        if (v == v && after && before(v, id, best_v, best_i)) { best_v = v; best_i = id; }
      }
    }
    redf[li] = best_v;
    redu[li] = best_i;
    workgroupBarrier();
    for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
      if (li < s && before(redf[li + s], redu[li + s], redf[li], redu[li])) {
        redf[li] = redf[li + s];
        redu[li] = redu[li + s];
      }
      workgroupBarrier();
    }
    prev_v = redf[0];
    prev_i = redu[0];
    workgroupBarrier();
    if (li == 0u) {
      out_ids[out0 + j] = prev_i;
      out_values[out0 + j] = prev_v${v.subtractLse ? " - lse[g]" : ""};
    }
  }
}`;
}

const TOPK = selectSource({ candidateIds: false, subtractLse: true });
const BLOCK = selectSource({ candidateIds: false, subtractLse: false });
const MERGE = selectSource({ candidateIds: true, subtractLse: true });

/** Arguments of {@link topLogprobs}. */
export interface TopLogprobsArgs {
  /** Logits of this chunk, f32 `[rows, vocab]`; only read. */
  logits: Tensor;
  /** Log-sum-exp of every row (full length), as `logprobsForward` writes it. */
  lse: Tensor;
  /** u32 `[fullRows · k]`: row g's k best ids at `g·k …`, best first ({@link TOPK_NONE} past the vocabulary). */
  ids: Tensor;
  /** f32 `[fullRows · k]`: their log-probabilities (meaningless where the id is {@link TOPK_NONE}). */
  logp: Tensor;
  /** Rows in this chunk. */
  rows: number;
  /** Vocabulary size (columns of `logits`). */
  vocab: number;
  /** Row index in `lse`, `ids`/k and `logp`/k of the chunk's first row. */
  rowOffset: number;
  /** How many tokens per row, 1 ≤ k ≤ vocab. */
  k: number;
}

/**
 * The id written where a row has fewer than k tokens that are not NaN (never when k ≤ vocab and the
 * logits are numbers).
 * @example
 * ```ts
 * ids.filter((id) => id !== TOPK_NONE);
 * ```
 */
export const TOPK_NONE = NONE;

/**
 * Writes each row's k most probable ids and their log-probabilities, best first.
 * @example
 * ```ts
 * gpu.run([
 *   logprobsForward(gpu, { logits, targets, lse, logp, rows, vocab, rowOffset: 0 }),
 *   topLogprobs(gpu, { logits, lse, ids: topIds, logp: topLogp, rows, vocab, rowOffset: 0, k: 5 }),
 * ]);
 * ```
 */
export function topLogprobs(gpu: Gpu, a: TopLogprobsArgs): Dispatch {
  const kernel = "topLogprobs";
  checkCount(kernel, "rows", a.rows, 1);
  checkCount(kernel, "vocab", a.vocab, 1);
  checkCount(kernel, "rowOffset", a.rowOffset);
  checkCount(kernel, "k", a.k, 1);
  if (a.k > a.vocab) throw new RangeError(`${kernel}: "k" must be at most vocab (${a.vocab}), got ${a.k}`);
  checkTensor(kernel, "logits", a.logits, "f32", a.rows * a.vocab, `rows·vocab = ${a.rows}·${a.vocab}`);
  checkOutputs(kernel, a, { logits: a.logits });
  return gpu.dispatch(
    TOPK,
    [a.logits, a.lse, a.ids, a.logp],
    grid(a.rows, 1),
    [a.rows, a.vocab, a.rowOffset, a.k, a.k, 0, 0],
    "topk",
  );
}

/**
 * Where each vocabulary block's candidates go in a row of the candidate buffer: block b keeps
 * min(k, its columns) of them from `offsets[b]`, and a row holds `columns` in all (never more than the
 * vocabulary, so k up to the vocabulary works with blocks narrower than k).
 * @example
 * ```ts
 * topkCandidateLayout([74, 74, 68], 5); // { offsets: [0, 5, 10], columns: 15 }
 * topkCandidateLayout([74, 74, 68], 70); // { offsets: [0, 70, 140], columns: 208 }
 * ```
 */
export function topkCandidateLayout(
  blockColumns: readonly number[],
  k: number,
): { offsets: number[]; columns: number } {
  const offsets: number[] = [];
  let columns = 0;
  for (const cols of blockColumns) {
    offsets.push(columns);
    columns += Math.min(k, cols);
  }
  return { offsets, columns };
}

/** Arguments of {@link topLogprobsBlock}. */
export interface TopLogprobsBlockArgs {
  /** Logits of one vocabulary block for this chunk's rows, f32 `[rows, cols]`; only read. */
  logits: Tensor;
  /** f32 `[rows, candidateColumns]`: this block's raw logits written at `candidateColumn …`, best first. */
  candidateValues: Tensor;
  /** u32 `[rows, candidateColumns]`: their vocabulary ids ({@link TOPK_NONE} where a row runs out). */
  candidateIds: Tensor;
  /** Rows in this chunk. */
  rows: number;
  /** Columns of this block. */
  cols: number;
  /** The vocabulary id of the block's first column. */
  firstColumn: number;
  /** The k asked for; the block keeps min(k, cols). */
  k: number;
  /** Candidates per row over all blocks ({@link topkCandidateLayout}'s `columns`). */
  candidateColumns: number;
  /** This block's first candidate column ({@link topkCandidateLayout}'s `offsets[block]`). */
  candidateColumn: number;
}

/**
 * One vocabulary block's share of the top k: per row its min(k, cols) best logits (raw, not yet log-probs)
 * and their vocabulary ids, best first, into the candidate buffer. {@link topLogprobsMerge} picks the k
 * best of all blocks' candidates.
 * @example
 * ```ts
 * const { offsets, columns } = topkCandidateLayout(blocks.map((b) => b.rows), k);
 * blocks.forEach((b, i) => dispatches.push(
 *   topLogprobsBlock(gpu, { logits: b.logits, candidateValues, candidateIds, rows, cols: b.rows,
 *     firstColumn: b.row0, k, candidateColumns: columns, candidateColumn: offsets[i] }),
 * ));
 * ```
 */
export function topLogprobsBlock(gpu: Gpu, a: TopLogprobsBlockArgs): Dispatch {
  const K = "topLogprobsBlock";
  checkCount(K, "rows", a.rows, 1);
  checkCount(K, "cols", a.cols, 1);
  checkCount(K, "firstColumn", a.firstColumn);
  checkCount(K, "k", a.k, 1);
  checkCount(K, "candidateColumn", a.candidateColumn);
  const kept = Math.min(a.k, a.cols);
  if (a.candidateColumn + kept > a.candidateColumns) {
    throw new RangeError(
      `${K}: ${kept} candidates from column ${a.candidateColumn} run past "candidateColumns" ` +
        `(${a.candidateColumns})`,
    );
  }
  checkTensor(K, "logits", a.logits, "f32", a.rows * a.cols, `rows·cols = ${a.rows}·${a.cols}`);
  const need = a.rows * a.candidateColumns, how = `rows·candidateColumns = ${a.rows}·${a.candidateColumns}`;
  checkTensor(K, "candidateValues", a.candidateValues, "f32", need, how);
  checkTensor(K, "candidateIds", a.candidateIds, "u32", need, how);
  checkAllDisjoint(K, ["candidateValues", "candidateIds"], {
    logits: a.logits,
    candidateValues: a.candidateValues,
    candidateIds: a.candidateIds,
  });
  return gpu.dispatch(
    BLOCK,
    [a.logits, a.candidateIds, a.candidateValues],
    grid(a.rows, 1),
    [a.rows, a.cols, 0, kept, a.candidateColumns, a.candidateColumn, a.firstColumn],
    "topk.block",
  );
}

/** Arguments of {@link topLogprobsMerge}. */
export interface TopLogprobsMergeArgs {
  /** What {@link topLogprobsBlock} wrote for every block of this chunk's rows, f32 `[rows, candidateColumns]`. */
  candidateValues: Tensor;
  /** Their ids, u32 `[rows, candidateColumns]`. */
  candidateIds: Tensor;
  /** Candidates per row ({@link topkCandidateLayout}'s `columns`), at least k. */
  candidateColumns: number;
  /** Log-sum-exp of every row (full length), as `logprobsMerge` writes it. */
  lse: Tensor;
  /** As for {@link topLogprobs}: u32 `[fullRows · k]`. */
  ids: Tensor;
  /** As for {@link topLogprobs}: f32 `[fullRows · k]`. */
  logp: Tensor;
  /** Rows in this chunk. */
  rows: number;
  /** Row index in `lse`, `ids`/k and `logp`/k of the chunk's first row. */
  rowOffset: number;
  /** How many tokens per row, 1 ≤ k ≤ candidateColumns. */
  k: number;
}

/**
 * The k best of each row's candidates and their log-probabilities (value − lse), best first: what
 * {@link topLogprobs} writes over the whole row.
 * @example
 * ```ts
 * logprobsMerge(gpu, { stats, targets, lse, logp, rows, rowOffset, blocks, blockColumns, vocabSize });
 * topLogprobsMerge(gpu, { candidateValues, candidateIds, candidateColumns: columns, lse, ids: topIds,
 *   logp: topLogp, rows, rowOffset, k });
 * ```
 */
export function topLogprobsMerge(gpu: Gpu, a: TopLogprobsMergeArgs): Dispatch {
  const K = "topLogprobsMerge";
  checkCount(K, "rows", a.rows, 1);
  checkCount(K, "candidateColumns", a.candidateColumns, 1);
  checkCount(K, "rowOffset", a.rowOffset);
  checkCount(K, "k", a.k, 1);
  if (a.k > a.candidateColumns) {
    throw new RangeError(`${K}: "k" must be at most candidateColumns (${a.candidateColumns}), got ${a.k}`);
  }
  const need = a.rows * a.candidateColumns, how = `rows·candidateColumns = ${a.rows}·${a.candidateColumns}`;
  checkTensor(K, "candidateValues", a.candidateValues, "f32", need, how);
  checkTensor(K, "candidateIds", a.candidateIds, "u32", need, how);
  checkOutputs(K, a, { candidateValues: a.candidateValues, candidateIds: a.candidateIds });
  return gpu.dispatch(
    MERGE,
    [a.candidateValues, a.candidateIds, a.lse, a.ids, a.logp],
    grid(a.rows, 1),
    [a.rows, a.candidateColumns, a.rowOffset, a.k, a.k, 0, 0],
    "topk.merge",
  );
}

/** Checks `lse`, `ids` and `logp` (full length, k per row for the outputs) and that the outputs overlap nothing. */
function checkOutputs(
  kernel: string,
  a: { lse: Tensor; ids: Tensor; logp: Tensor; rows: number; rowOffset: number; k: number },
  inputs: Record<string, Tensor>,
): void {
  const end = a.rowOffset + a.rows;
  checkTensor(kernel, "lse", a.lse, "f32", end, `rowOffset + rows = ${a.rowOffset} + ${a.rows}`);
  checkTensor(kernel, "ids", a.ids, "u32", end * a.k, `(rowOffset + rows)·k = ${end}·${a.k}`);
  checkTensor(kernel, "logp", a.logp, "f32", end * a.k, `(rowOffset + rows)·k = ${end}·${a.k}`);
  checkAllDisjoint(kernel, ["ids", "logp"], { ...inputs, lse: a.lse, ids: a.ids, logp: a.logp });
}

/** Throws unless each of `written` is disjoint from every other bound tensor. */
function checkAllDisjoint(kernel: string, written: readonly string[], bound: Record<string, Tensor>): void {
  for (const w of written) {
    for (const [f, t] of Object.entries(bound)) if (f !== w) checkDisjoint(kernel, w, bound[w], f, t);
  }
}
