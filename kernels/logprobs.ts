/**
 * Per-token log-probabilities of the target ids over the whole vocabulary, and their gradient with respect to
 * the logits (the fused softmax cross-entropy backward).
 *
 * The vocabulary projection runs chunk by chunk over rows, so both passes work on one chunk of logits
 * `[rows, vocab]` whose first row is `rowOffset` in the full-length `targets`, `lse`, `logp` and `dlogp`.
 * One workgroup handles one row: an online max/sum-of-exponentials per thread, then a tree merge in
 * workgroup memory, so no probability is ever formed without subtracting the row's maximum.
 *
 * When the vocabulary projection's weight is split into row blocks (a 128k vocabulary larger than one
 * binding), the logits come block by block, `[rows, blockColumns]` each: {@link logprobsBlockStats} keeps
 * each block's maximum, sum of exponentials, argmax and target logit, {@link logprobsMerge} combines them
 * into the same `lse`, `logp` and `greedy`, and {@link logprobsBackward} takes the block's first column.
 * Reference: `logprobs_ref.ts`.
 * @module
 */
import { type Dispatch, type Gpu, grid, type Tensor, WGSL_FLAT_INDEX } from "../gpu/runtime.ts";
import { checkCount, checkDisjoint, checkTensor } from "./tensor_checks.ts";

/**
 * Target id meaning "nothing to predict here" (the last position of a sequence, padding).
 * @example
 * ```ts
 * targets[b * T + T - 1] = NO_TARGET;
 * ```
 */
export const NO_TARGET = 0xffffffff;

const WG = 256;

/**
 * Values {@link logprobsBlockStats} keeps per row and block: maximum, sum of exp(logit − maximum), the
 * target's logit (0 when the target is in another block) and the first argmax as u32 bits.
 * @example
 * ```ts
 * const stats = gpu.tensor(rows * blocks * LOGPROBS_STAT_FIELDS, "f32", "logits.stats");
 * ```
 */
export const LOGPROBS_STAT_FIELDS = 4;
const STAT_FIELDS = LOGPROBS_STAT_FIELDS;

// A NaN the shader compiler cannot fold into a constant (a constant NaN is a shader-creation error):
// out-of-range targets poison their row so the loss shows the bad input instead of training on it.
const WGSL_NAN = /* wgsl */ `
fn runtime_nan(seed: u32) -> f32 { return bitcast<f32>(0x7fc00000u | (seed & 0u)); }
`;

/**
 * The forward kernel. With `greedy`, each thread also keeps the first index of its maximum and the tree
 * merge keeps the lower index among equal maxima, as `torch.argmax` does; without it the text is the plain
 * kernel, so callers that do not ask pay nothing.
 */
function forwardSource(greedy: boolean): string {
  const ifGreedy = (code: string) => (greedy ? code : "");
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<u32>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<storage, read_write> logp: array<f32>;${
    ifGreedy(`
@group(0) @binding(4) var<storage, read_write> greedy: array<u32>;
var<workgroup> widx: array<u32, ${WG}>;`)
  }
struct P { rows: u32, vocab: u32, row_offset: u32 }
@group(0) @binding(${greedy ? 5 : 4}) var<uniform> p: P;
var<workgroup> wmax: array<f32, ${WG}>;
var<workgroup> wsum: array<f32, ${WG}>;
${WGSL_FLAT_INDEX}
${WGSL_NAN}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let row = flat_group(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.vocab;
  // Online softmax: keep the running maximum m and the sum s of exp(x - m); one exp per element unless a
  // new maximum arrives, when the old sum is rescaled instead.
  var m = -3.402823e38;
  var s = 0.0;${
    ifGreedy(`
  var idx = ${NO_TARGET}u;`)
  }
  for (var i = li; i < p.vocab; i += ${WG}u) {
    let x = logits[base + i];
    if (x > m) { s = s * exp(m - x) + 1.0; m = x;${ifGreedy(" idx = i;")} } else { s += exp(x - m); }
  }
  wmax[li] = m;
  wsum[li] = s;${
    ifGreedy(`
  widx[li] = idx;`)
  }
  workgroupBarrier();
  for (var stride = ${WG / 2}u; stride > 0u; stride >>= 1u) {
    if (li < stride) {
      let m2 = wmax[li + stride];
      let mm = max(m, m2);${
    ifGreedy(`
      let i2 = widx[li + stride];
      if (m2 > m || (m2 == m && i2 < idx)) { idx = i2; }
      widx[li] = idx;`)
  }
      s = s * exp(m - mm) + wsum[li + stride] * exp(m2 - mm);
      m = mm;
      wmax[li] = m;
      wsum[li] = s;
    }
    workgroupBarrier();
  }
  if (li == 0u) {
    let g = p.row_offset + row;
    let row_lse = m + log(s);
    lse[g] = row_lse;
    let t = targets[g];${
    ifGreedy(`
    greedy[g] = select(0u, 1u, t == idx && t < p.vocab);`)
  }
    if (t == ${NO_TARGET}u) {
      logp[g] = 0.0;
    } else if (t >= p.vocab) {
      logp[g] = runtime_nan(t);
    } else {
      logp[g] = logits[base + t] - row_lse;
    }
  }
}`;
}

const FORWARD = forwardSource(false);
const FORWARD_GREEDY = forwardSource(true);

const BACKWARD = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<u32>;
@group(0) @binding(2) var<storage, read> lse: array<f32>;
@group(0) @binding(3) var<storage, read> dlogp: array<f32>;
struct P { rows: u32, vocab: u32, row_offset: u32, first_column: u32, vocab_size: u32 }
@group(0) @binding(4) var<uniform> p: P;
${WGSL_FLAT_INDEX}
${WGSL_NAN}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let row = flat_group(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.vocab;
  let g = p.row_offset + row;
  let t = targets[g];
  var d = 0.0;
  if (t != ${NO_TARGET}u) { d = dlogp[g]; }
  if (t != ${NO_TARGET}u && t >= p.vocab_size) { d = runtime_nan(t); }
  // Rows with nothing to learn (prompt tokens, padding) skip the exponentials.
  if (d == 0.0) {
    for (var i = li; i < p.vocab; i += ${WG}u) { logits[base + i] = 0.0; }
    return;
  }
  let row_lse = lse[g];
  // The target's column in this chunk (wraps past the end when the target lies in another block).
  let tc = t - p.first_column;
  for (var i = li; i < p.vocab; i += ${WG}u) {
    let prob = exp(logits[base + i] - row_lse);
    logits[base + i] = d * (select(0.0, 1.0, i == tc) - prob);
  }
}`;

// One workgroup per row of one vocabulary block: the block's maximum, sum of exp(x − max) and first argmax
// (as the forward computes them), and the target's logit when the target falls in this block.
const BLOCK_STATS = /* wgsl */ `
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<u32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
struct P { rows: u32, cols: u32, row_offset: u32, first_column: u32, block: u32, blocks: u32 }
@group(0) @binding(3) var<uniform> p: P;
var<workgroup> wmax: array<f32, ${WG}>;
var<workgroup> wsum: array<f32, ${WG}>;
var<workgroup> widx: array<u32, ${WG}>;
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let row = flat_group(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var m = -3.402823e38;
  var s = 0.0;
  var idx = ${NO_TARGET}u;
  for (var i = li; i < p.cols; i += ${WG}u) {
    let x = logits[base + i];
    if (x > m) { s = s * exp(m - x) + 1.0; m = x; idx = i; } else { s += exp(x - m); }
  }
  wmax[li] = m;
  wsum[li] = s;
  widx[li] = idx;
  workgroupBarrier();
  for (var stride = ${WG / 2}u; stride > 0u; stride >>= 1u) {
    if (li < stride) {
      let m2 = wmax[li + stride];
      let mm = max(m, m2);
      let i2 = widx[li + stride];
      if (m2 > m || (m2 == m && i2 < idx)) { idx = i2; }
      widx[li] = idx;
      s = s * exp(m - mm) + wsum[li + stride] * exp(m2 - mm);
      m = mm;
      wmax[li] = m;
      wsum[li] = s;
    }
    workgroupBarrier();
  }
  if (li == 0u) {
    let at = (row * p.blocks + p.block) * ${STAT_FIELDS}u;
    let tc = targets[p.row_offset + row] - p.first_column;
    stats[at] = m;
    stats[at + 1u] = s;
    stats[at + 2u] = select(0.0, logits[base + min(tc, p.cols - 1u)], tc < p.cols);
    stats[at + 3u] = bitcast<f32>(p.first_column + idx);
  }
}`;

// One thread per row: the blocks' statistics merged as the forward's tree merges its threads', in block
// order so the first maximal column wins ties, as torch.argmax does.
const MERGE = /* wgsl */ `
@group(0) @binding(0) var<storage, read> stats: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<u32>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<storage, read_write> logp: array<f32>;
@group(0) @binding(4) var<storage, read_write> greedy: array<u32>;
struct P { rows: u32, row_offset: u32, blocks: u32, block_columns: u32, vocab_size: u32, with_greedy: u32 }
@group(0) @binding(5) var<uniform> p: P;
${WGSL_FLAT_INDEX}
${WGSL_NAN}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let row = flat_group(wid, nwg) * ${WG}u + li;
  if (row >= p.rows) { return; }
  let g = p.row_offset + row;
  let first = row * p.blocks * ${STAT_FIELDS}u;
  var m = stats[first];
  var s = stats[first + 1u];
  var idx = bitcast<u32>(stats[first + 3u]);
  for (var b = 1u; b < p.blocks; b++) {
    let at = first + b * ${STAT_FIELDS}u;
    let m2 = stats[at];
    let mm = max(m, m2);
    if (m2 > m) { idx = bitcast<u32>(stats[at + 3u]); }
    s = s * exp(m - mm) + stats[at + 1u] * exp(m2 - mm);
    m = mm;
  }
  let row_lse = m + log(s);
  lse[g] = row_lse;
  let t = targets[g];
  if (p.with_greedy != 0u) { greedy[g] = select(0u, 1u, t == idx && t < p.vocab_size); }
  if (t == ${NO_TARGET}u) {
    logp[g] = 0.0;
  } else if (t >= p.vocab_size) {
    logp[g] = runtime_nan(t);
  } else {
    logp[g] = stats[first + (t / p.block_columns) * ${STAT_FIELDS}u + 2u] - row_lse;
  }
}`;

/** Arguments of {@link logprobsForward}. */
export interface LogprobsForwardArgs {
  /** Logits of this chunk, f32 `[rows, vocab]`; only read. */
  logits: Tensor;
  /** Target id of every row of the full micro-batch, u32; {@link NO_TARGET} where there is none. */
  targets: Tensor;
  /** Log-sum-exp of every row's logits, f32, full length; rows `rowOffset..rowOffset+rows-1` written. */
  lse: Tensor;
  /** `logits[target] - lse` per row (0 for {@link NO_TARGET}), f32, full length; same rows written. */
  logp: Tensor;
  /**
   * Optional u32, full length; same rows written: 1 where the target is the row's argmax (the first maximal
   * index, as lm-eval's `is_greedy` compares with `torch.argmax`), else 0 (and 0 for {@link NO_TARGET}).
   */
  greedy?: Tensor;
  /** Rows in this chunk. */
  rows: number;
  /** Vocabulary size (columns of `logits`). */
  vocab: number;
  /** Index in `targets`/`lse`/`logp` of the chunk's first row. */
  rowOffset: number;
}

/**
 * Writes the log-sum-exp and the target's log-probability for each row of a logits chunk, and with `greedy`
 * whether the target is the argmax. A target id at or above `vocab` (other than {@link NO_TARGET}) gives NaN,
 * so a bad batch cannot train silently.
 * @example
 * ```ts
 * gpu.run([logprobsForward(gpu, { logits, targets, lse, logp, rows: 64, vocab: 128256, rowOffset: 128 })]);
 * gpu.run([logprobsForward(gpu, { logits, targets, lse, logp, greedy, rows, vocab, rowOffset: 0 })]);
 * ```
 */
export function logprobsForward(gpu: Gpu, a: LogprobsForwardArgs): Dispatch {
  const shape = [a.rows, a.vocab, a.rowOffset];
  if (a.greedy) {
    checkChunk("logprobsForward", a, { lse: a.lse, logp: a.logp }, ["lse", "logp", "greedy"], a.greedy);
    return gpu.dispatch(
      FORWARD_GREEDY,
      [a.logits, a.targets, a.lse, a.logp, a.greedy],
      grid(a.rows, 1),
      shape,
      "logprobs.fwd.greedy",
    );
  }
  checkChunk("logprobsForward", a, { lse: a.lse, logp: a.logp }, ["lse", "logp"]);
  return gpu.dispatch(FORWARD, [a.logits, a.targets, a.lse, a.logp], grid(a.rows, 1), shape, "logprobs.fwd");
}

/** Arguments of {@link logprobsBackward}. */
export interface LogprobsBackwardArgs {
  /** The same logits chunk `[rows, vocab]` the forward read; overwritten with d(loss)/d(logits). */
  logits: Tensor;
  /** Target ids (full length), as given to the forward. */
  targets: Tensor;
  /** The log-sum-exp the forward wrote (full length). */
  lse: Tensor;
  /** d(loss)/d(logp) per row (full length), as the objective writes it. */
  dlogp: Tensor;
  /** Rows in this chunk. */
  rows: number;
  /** Columns of `logits`: the whole vocabulary, or one block of it. */
  vocab: number;
  /** Index in `targets`/`lse`/`dlogp` of the chunk's first row. */
  rowOffset: number;
  /** The vocabulary id of `logits`' first column when it holds one block (default 0). */
  firstColumn?: number;
  /** The whole vocabulary (default `firstColumn + vocab`): targets at or above it give NaN. */
  vocabSize?: number;
}

/**
 * Overwrites the logits chunk in place with `dlogp[r] · (onehot(target) − softmax(logits[r]))`; rows with
 * {@link NO_TARGET} (or a zero `dlogp`) become zero. With `firstColumn`, `logits` is one vocabulary block
 * and the softmax uses the `lse` of the whole row, so each block's gradient is the whole row's, sliced.
 * @example
 * ```ts
 * gpu.run([logprobsBackward(gpu, { logits, targets, lse, dlogp, rows: 64, vocab: 128256, rowOffset: 128 })]);
 * // the second of two 64128-column blocks:
 * logprobsBackward(gpu, { logits: block, targets, lse, dlogp, rows: 64, vocab: 64128, rowOffset: 128,
 *   firstColumn: 64128, vocabSize: 128256 });
 * ```
 */
export function logprobsBackward(gpu: Gpu, a: LogprobsBackwardArgs): Dispatch {
  checkChunk("logprobsBackward", a, { lse: a.lse, dlogp: a.dlogp }, ["logits"]);
  const firstColumn = a.firstColumn ?? 0;
  const vocabSize = a.vocabSize ?? firstColumn + a.vocab;
  checkColumns("logprobsBackward", firstColumn, a.vocab, vocabSize);
  return gpu.dispatch(
    BACKWARD,
    [a.logits, a.targets, a.lse, a.dlogp],
    grid(a.rows, 1),
    [a.rows, a.vocab, a.rowOffset, firstColumn, vocabSize],
    "logprobs.bwd",
  );
}

/** Arguments of {@link logprobsBlockStats}. */
export interface LogprobsBlockStatsArgs {
  /** Logits of one vocabulary block for this chunk's rows, f32 `[rows, cols]`; only read. */
  logits: Tensor;
  /** Target id of every row of the full micro-batch, u32 (as for {@link logprobsForward}). */
  targets: Tensor;
  /** f32 `[rows, blocks, LOGPROBS_STAT_FIELDS]` for this chunk's rows: this block's slots are written. */
  stats: Tensor;
  rows: number;
  /** Columns of this block. */
  cols: number;
  /** Index in `targets` of the chunk's first row. */
  rowOffset: number;
  /** The vocabulary id of the block's first column. */
  firstColumn: number;
  /** This block's index and the number of blocks. */
  block: number;
  blocks: number;
}

/**
 * One vocabulary block's share of the log-softmax: per row its maximum, sum of exponentials, first argmax
 * and, when the target falls in the block, the target's logit. {@link logprobsMerge} combines the blocks.
 * @example
 * ```ts
 * blocks.forEach((b, i) => dispatches.push(
 *   logprobsBlockStats(gpu, { logits: b.logits, targets, stats, rows, cols: b.cols, rowOffset, firstColumn: b.first, block: i, blocks: blocks.length }),
 * ));
 * ```
 */
export function logprobsBlockStats(gpu: Gpu, a: LogprobsBlockStatsArgs): Dispatch {
  const K = "logprobsBlockStats";
  checkCount(K, "rows", a.rows, 1);
  checkCount(K, "cols", a.cols, 1);
  checkCount(K, "blocks", a.blocks, 1);
  if (!(Number.isInteger(a.block) && a.block >= 0 && a.block < a.blocks)) {
    throw new RangeError(`${K}: "block" ${a.block} is not in [0, ${a.blocks})`);
  }
  checkCount(K, "rowOffset", a.rowOffset);
  checkCount(K, "firstColumn", a.firstColumn);
  checkTensor(K, "logits", a.logits, "f32", a.rows * a.cols, `rows·cols = ${a.rows}·${a.cols}`);
  const end = a.rowOffset + a.rows;
  checkTensor(K, "targets", a.targets, "u32", end, `rowOffset + rows = ${end}`);
  checkTensor(K, "stats", a.stats, "f32", a.rows * a.blocks * STAT_FIELDS, "rows·blocks·4");
  checkDisjoint(K, "stats", a.stats, "logits", a.logits);
  checkDisjoint(K, "stats", a.stats, "targets", a.targets);
  return gpu.dispatch(
    BLOCK_STATS,
    [a.logits, a.targets, a.stats],
    grid(a.rows, 1),
    [a.rows, a.cols, a.rowOffset, a.firstColumn, a.block, a.blocks],
    "logprobs.block",
  );
}

/** Arguments of {@link logprobsMerge}. */
export interface LogprobsMergeArgs {
  /** What {@link logprobsBlockStats} wrote for every block of this chunk's rows, `[rows, blocks, 4]`. */
  stats: Tensor;
  targets: Tensor;
  /** Full length, as for {@link logprobsForward}; rows `rowOffset..` written. */
  lse: Tensor;
  logp: Tensor;
  /** Optional, as for {@link logprobsForward}. */
  greedy?: Tensor;
  rows: number;
  rowOffset: number;
  blocks: number;
  /** Columns of every block but the last (block i starts at column i · blockColumns). */
  blockColumns: number;
  /** The whole vocabulary. */
  vocabSize: number;
}

/**
 * Merges the blocks' statistics into what {@link logprobsForward} writes for the whole row: `lse`, `logp`
 * (0 for {@link NO_TARGET}, NaN for a target at or past `vocabSize`) and optionally `greedy`.
 * @example
 * ```ts
 * logprobsMerge(gpu, { stats, targets, lse, logp, rows: 64, rowOffset: 0, blocks: 8, blockColumns: 16032, vocabSize: 128256 });
 * ```
 */
export function logprobsMerge(gpu: Gpu, a: LogprobsMergeArgs): Dispatch {
  const K = "logprobsMerge";
  checkCount(K, "rows", a.rows, 1);
  checkCount(K, "blocks", a.blocks, 1);
  checkCount(K, "blockColumns", a.blockColumns, 1);
  checkCount(K, "vocabSize", a.vocabSize, 1);
  checkCount(K, "rowOffset", a.rowOffset);
  if ((a.blocks - 1) * a.blockColumns >= a.vocabSize || a.blocks * a.blockColumns < a.vocabSize) {
    throw new RangeError(
      `${K}: ${a.blocks} blocks of ${a.blockColumns} columns do not cover a vocabulary of ${a.vocabSize}`,
    );
  }
  const end = a.rowOffset + a.rows;
  const need = `rowOffset + rows = ${end}`;
  checkTensor(K, "stats", a.stats, "f32", a.rows * a.blocks * STAT_FIELDS, "rows·blocks·4");
  checkTensor(K, "targets", a.targets, "u32", end, need);
  checkTensor(K, "lse", a.lse, "f32", end, need);
  checkTensor(K, "logp", a.logp, "f32", end, need);
  if (a.greedy) checkTensor(K, "greedy", a.greedy, "u32", end, need);
  // Every binding the WGSL declares must be bound: without `greedy`, a one-element scratch stands in.
  const greedy = a.greedy ?? unusedGreedy(gpu);
  const all: Record<string, Tensor> = {
    stats: a.stats,
    targets: a.targets,
    lse: a.lse,
    logp: a.logp,
    greedy,
  };
  for (const w of ["lse", "logp", "greedy"]) {
    for (const [field, t] of Object.entries(all)) if (field !== w) checkDisjoint(K, w, all[w], field, t);
  }
  return gpu.dispatch(
    MERGE,
    [a.stats, a.targets, a.lse, a.logp, greedy],
    grid(a.rows, WG),
    [a.rows, a.rowOffset, a.blocks, a.blockColumns, a.vocabSize, a.greedy ? 1 : 0],
    "logprobs.merge",
  );
}

/** One unread u32 per device, bound where the merge writes no greedy flags. */
const unusedGreedyScratch = new WeakMap<Gpu, Tensor>();

function unusedGreedy(gpu: Gpu): Tensor {
  let t = unusedGreedyScratch.get(gpu);
  if (!t) unusedGreedyScratch.set(gpu, t = gpu.tensor(1, "u32", "logprobs.merge.unused"));
  return t;
}

function checkColumns(kernel: string, firstColumn: number, cols: number, vocabSize: number): void {
  checkCount(kernel, "firstColumn", firstColumn);
  if (firstColumn + cols > vocabSize) {
    throw new RangeError(
      `${kernel}: columns [${firstColumn}, ${firstColumn + cols}) run past the vocabulary (${vocabSize})`,
    );
  }
}

interface ChunkShape {
  logits: Tensor;
  targets: Tensor;
  rows: number;
  vocab: number;
  rowOffset: number;
}

/**
 * Checks sizes and types, and that each written tensor shares no bytes with any other binding. `greedy` is
 * the optional u32 per-row output of the forward.
 */
function checkChunk(
  kernel: string,
  a: ChunkShape,
  perRow: Record<string, Tensor>,
  written: string[],
  greedy?: Tensor,
): void {
  checkCount(kernel, "rows", a.rows, 1);
  checkCount(kernel, "vocab", a.vocab, 1);
  checkCount(kernel, "rowOffset", a.rowOffset);
  checkCount(kernel, "rows·vocab", a.rows * a.vocab, 1);
  checkTensor(kernel, "logits", a.logits, "f32", a.rows * a.vocab, `rows·vocab = ${a.rows}·${a.vocab}`);
  const end = a.rowOffset + a.rows;
  const perRowNeed = `rowOffset + rows = ${a.rowOffset} + ${a.rows}`;
  checkTensor(kernel, "targets", a.targets, "u32", end, perRowNeed);
  for (const [field, t] of Object.entries(perRow)) checkTensor(kernel, field, t, "f32", end, perRowNeed);
  if (greedy) checkTensor(kernel, "greedy", greedy, "u32", end, perRowNeed);
  const all: Record<string, Tensor> = { logits: a.logits, targets: a.targets, ...perRow };
  if (greedy) all.greedy = greedy;
  for (const w of written) {
    for (const [field, t] of Object.entries(all)) if (field !== w) checkDisjoint(kernel, w, all[w], field, t);
  }
}
