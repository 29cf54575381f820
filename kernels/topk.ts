/**
 * The k most probable next tokens of each row, with their log-probabilities: what OpenAI's `logprobs` /
 * `top_logprobs` (and lm-eval's `is_greedy` check over them) report. One workgroup per row makes k passes
 * over the vocabulary; pass j keeps the best token that comes strictly after pass j−1's pick in the order
 * "larger value first, then lower index" (so ties come out lowest index first, as `torch.topk` on equal
 * values usually does and `torch.argmax` always does), reduced in workgroup memory. No private arrays and
 * no sort: k is small (OpenAI allows 20) against a vocabulary of 32k–152k.
 *
 * Like `logprobs.ts` it works on one chunk of logits `[rows, vocab]` whose first row is `rowOffset` in the
 * full-length `lse` (written by `logprobsForward` for the same chunk) and in the outputs, which hold k
 * entries per row. Reference: `topk_ref.ts`.
 * @module
 */
import { type Dispatch, type Gpu, grid, type Tensor, WGSL_FLAT_INDEX } from "../gpu/runtime.ts";
import { checkCount, checkDisjoint, checkTensor } from "./tensor_checks.ts";

const WG = 256;
const NONE = 0xffffffff;

const TOPK = /* wgsl */ `
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> lse: array<f32>;
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> logp: array<f32>;
struct P { rows: u32, vocab: u32, row_offset: u32, k: u32 }
@group(0) @binding(4) var<uniform> p: P;
var<workgroup> redf: array<f32, ${WG}>;
var<workgroup> redu: array<u32, ${WG}>;
${WGSL_FLAT_INDEX}
const NONE = ${NONE}u;

// a comes before b: larger value, then lower index; NONE never does.
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
  let base = row * p.vocab;
  let g = p.row_offset + row;
  var prev_v = 0.0;
  var prev_i = NONE;
  for (var j = 0u; j < p.k; j++) {
    var best_v = 0.0;
    var best_i = NONE;
    for (var i = li; i < p.vocab; i += ${WG}u) {
      let v = logits[base + i];
      // Only tokens after the previous pick (all of them in the first pass); NaN never qualifies.
      let after = prev_i == NONE || before(prev_v, prev_i, v, i);
      if (v == v && after && before(v, i, best_v, best_i)) { best_v = v; best_i = i; }
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
      ids[g * p.k + j] = prev_i;
      logp[g * p.k + j] = prev_v - lse[g];
    }
    if (prev_i == NONE) { break; }
  }
}`;

/** Arguments of {@link topLogprobs}. */
export interface TopLogprobsArgs {
  /** Logits of this chunk, f32 `[rows, vocab]`; only read. */
  logits: Tensor;
  /** Log-sum-exp of every row (full length), as `logprobsForward` writes it. */
  lse: Tensor;
  /** u32 `[fullRows · k]`: row g's k best ids at `g·k …`, best first ({@link TOPK_NONE} past the vocabulary). */
  ids: Tensor;
  /** f32 `[fullRows · k]`: their log-probabilities. */
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
 * The id written where a row has fewer than k tokens (never when k ≤ vocab).
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
  const end = a.rowOffset + a.rows;
  checkTensor(kernel, "lse", a.lse, "f32", end, `rowOffset + rows = ${a.rowOffset} + ${a.rows}`);
  checkTensor(kernel, "ids", a.ids, "u32", end * a.k, `(rowOffset + rows)·k = ${end}·${a.k}`);
  checkTensor(kernel, "logp", a.logp, "f32", end * a.k, `(rowOffset + rows)·k = ${end}·${a.k}`);
  const bound: Record<string, Tensor> = { logits: a.logits, lse: a.lse, ids: a.ids, logp: a.logp };
  for (const w of ["ids", "logp"]) {
    for (const [f, t] of Object.entries(bound)) if (f !== w) checkDisjoint(kernel, w, bound[w], f, t);
  }
  return gpu.dispatch(
    TOPK,
    [a.logits, a.lse, a.ids, a.logp],
    grid(a.rows, 1),
    [a.rows, a.vocab, a.rowOffset, a.k],
    "topk",
  );
}
