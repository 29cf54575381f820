/**
 * Batches for the trainer: length-grouped, deterministic for a seed, right-padded, with the loss-aligned
 * targets and masks the model's loss needs, and resumable from any (epoch, batch) position.
 *
 * Order of one epoch (the same for the same seed, epoch and example lengths):
 * 1. shuffle the examples;
 * 2. within windows of `windowBatches × batchSize` examples, sort by length (longest first), so that
 *    neighbours have similar lengths and little padding;
 * 3. cut into batches of `batchSize`;
 * 4. shuffle the batch order, so lengths do not trend through the epoch.
 *
 * Layout of a batch: `B` rows of `T` tokens, row-major (`r = b·T + t`). `T` is the longest row rounded up to
 * `padMultiple`, so a few sizes recur and GPU programs can be reused. Rows are padded on the right with
 * `padId`. For preference batches the rows are all the chosen sequences first, then all the rejected ones
 * (TRL's concatenated forward), each a prompt followed by its completion.
 *
 * Loss alignment: the model at row r predicts the token at r + 1, so `targets[r] = ids[r+1]` while
 * `t + 1 < T`, else {@link NO_TARGET}; `lossMask[r] = labelMask[r+1] && attentionMask[r+1]`.
 *
 * @module
 */
import { seededRandom, shuffled } from "../io/datasets.ts";
import { NO_TARGET } from "../kernels/logprobs.ts";
import { nextTokenTargets } from "../model/inputs.ts";
import type { PreferenceExample, SftExample } from "./examples.ts";

/**
 * `targets` value where a position has no next token (the last column): the log-prob kernels' marker.
 *
 * @example
 * ```ts
 * if (batch.targets[r] === NO_TARGET) continue; // last column
 * ```
 */
export { NO_TARGET };

/**
 * One padded batch, ready to upload. All arrays have `B·T` elements.
 *
 * @example
 * ```ts
 * const batch: Batch = collateSft(examples, [0, 1], { padId: 0 }); gpu.write(idsTensor, batch.ids);
 * ```
 */
export interface Batch {
  /** Token ids, pad where `attentionMask` is 0. */
  ids: Int32Array;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: Uint32Array;
  /** 1 where the token is a target (from the example's label mask). */
  labelMask: Uint32Array;
  /** The next token of each position, or {@link NO_TARGET} in the last column. */
  targets: Uint32Array;
  /** 1 where `targets` counts in the loss: the next token is a real target token. */
  lossMask: Uint32Array;
  /** Rows. */
  B: number;
  /** Columns (padded length). */
  T: number;
  /** Real (non-pad) tokens. */
  tokens: number;
  /** Positions that count in the loss (sum of `lossMask`). */
  lossTokens: number;
  /** Indices of the examples in this batch, in row order (for a preference batch: once per pair). */
  exampleIndices: number[];
}

/**
 * A preference batch: rows `0..pairs-1` are the chosen sequences, rows `pairs..2·pairs-1` the rejected ones.
 *
 * @example
 * ```ts
 * const { batch } = preferenceBatches(pairs, opts).next().value!; const chosenRows = batch.pairs;
 * ```
 */
export interface PreferenceBatch extends Batch {
  pairs: number;
}

/**
 * Options for batching.
 *
 * @example
 * ```ts
 * const opts: BatchingOptions = { batchSize: 8, seed: 1, padId: 0, padMultiple: 64, epochs: 3 };
 * ```
 */
export interface BatchingOptions {
  /** Examples per batch (pairs per batch for preference data). */
  batchSize: number;
  /** Seed of the example and batch shuffles. */
  seed: number;
  /** Id written into padding. */
  padId: number;
  /** Round `T` up to a multiple of this (default 1). */
  padMultiple?: number;
  /** Batches per length-sorting window (default 50). */
  windowBatches?: number;
  /** Shuffle examples and batches (default true); false keeps file order apart from the length grouping. */
  shuffle?: boolean;
  /** Leave out a last, smaller batch (default false). */
  dropLast?: boolean;
  /** Epochs the iterators run (default 1). */
  epochs?: number;
}

/**
 * Where an iterator is: the epoch and the index of the next batch within it, both from 0.
 *
 * @example
 * ```ts
 * for (const { position } of sftBatches(examples, opts, { epoch: 1, batch: 40 })) saved = position;
 * ```
 */
export interface BatchPosition {
  epoch: number;
  batch: number;
}

/**
 * The batches of one epoch as lists of example indices, for examples of the given lengths.
 *
 * @example
 * ```ts
 * const plan = planEpoch(examples.map((e) => e.ids.length), 0, { batchSize: 8, seed: 1, padId: 0 });
 * ```
 */
export function planEpoch(lengths: readonly number[], epoch: number, options: BatchingOptions): number[][] {
  checkOptions(options);
  const shuffle = options.shuffle ?? true;
  const rand = seededRandom(epochSeed(options.seed, epoch));
  const indices = lengths.map((_, i) => i);
  const order = shuffle ? shuffled(indices, rand) : indices;
  const window = (options.windowBatches ?? 50) * options.batchSize;
  const grouped: number[] = [];
  for (let start = 0; start < order.length; start += window) {
    const chunk = order.slice(start, start + window);
    // Stable sort: equal lengths keep their shuffled order.
    chunk.sort((a, b) => lengths[b] - lengths[a]);
    grouped.push(...chunk);
  }
  const batches: number[][] = [];
  for (let start = 0; start < grouped.length; start += options.batchSize) {
    const batch = grouped.slice(start, start + options.batchSize);
    if (batch.length < options.batchSize && options.dropLast) break;
    batches.push(batch);
  }
  return shuffle ? shuffled(batches, rand) : batches;
}

/**
 * Number of batches in each epoch.
 *
 * @example
 * ```ts
 * batchesPerEpoch(100, { batchSize: 8, seed: 0, padId: 0 }); // 13
 * ```
 */
export function batchesPerEpoch(exampleCount: number, options: BatchingOptions): number {
  checkOptions(options);
  return options.dropLast
    ? Math.floor(exampleCount / options.batchSize)
    : Math.ceil(exampleCount / options.batchSize);
}

/**
 * SFT batches over `epochs`, starting at `from` (default the beginning). A run restarted with the same
 * examples, options and the position of its next batch sees exactly the batches it would have seen.
 *
 * @example
 * ```ts
 * for (const { position, batch } of sftBatches(examples, { batchSize: 8, seed: 1, padId: tok.padId! })) {
 *   // train on batch; save position to resume
 * }
 * ```
 */
export function* sftBatches(
  examples: readonly SftExample[],
  options: BatchingOptions,
  from: BatchPosition = { epoch: 0, batch: 0 },
): Generator<{ position: BatchPosition; batch: Batch }> {
  const lengths = examples.map((e) => e.ids.length);
  for (const { position, indices } of positions(lengths, options, from)) {
    yield { position, batch: collateSft(indices.map((i) => examples[i]), indices, options) };
  }
}

/**
 * Preference batches over `epochs`, starting at `from`; grouped by the longer side of each pair.
 *
 * @example
 * ```ts
 * const it = preferenceBatches(pairs, { batchSize: 4, seed: 1, padId: 0, padMultiple: 64 }, { epoch: 0, batch: 10 });
 * ```
 */
export function* preferenceBatches(
  examples: readonly PreferenceExample[],
  options: BatchingOptions,
  from: BatchPosition = { epoch: 0, batch: 0 },
): Generator<{ position: BatchPosition; batch: PreferenceBatch }> {
  const lengths = examples.map((e) =>
    e.promptIds.length + Math.max(e.chosenIds.length, e.rejectedIds.length)
  );
  for (const { position, indices } of positions(lengths, options, from)) {
    yield { position, batch: collatePreference(indices.map((i) => examples[i]), indices, options) };
  }
}

function* positions(
  lengths: readonly number[],
  options: BatchingOptions,
  from: BatchPosition,
): Generator<{ position: BatchPosition; indices: number[] }> {
  const epochs = options.epochs ?? 1;
  const count = batchesPerEpoch(lengths.length, options);
  if (
    !Number.isInteger(from.epoch) || !Number.isInteger(from.batch) || from.epoch < 0 || from.batch < 0 ||
    from.batch > count
  ) {
    throw new RangeError(
      `resume position: expected epoch ≥ 0 and batch in [0, ${count}], got ${JSON.stringify(from)}`,
    );
  }
  for (let epoch = from.epoch; epoch < epochs; epoch++) {
    const plan = planEpoch(lengths, epoch, options);
    for (let batch = epoch === from.epoch ? from.batch : 0; batch < plan.length; batch++) {
      yield { position: { epoch, batch }, indices: plan[batch] };
    }
  }
}

/**
 * Pads SFT examples into one batch (rows in the given order).
 *
 * @example
 * ```ts
 * const batch = collateSft(examples.slice(0, 4), [0, 1, 2, 3], { padId: 0, padMultiple: 8 });
 * ```
 */
export function collateSft(
  examples: readonly SftExample[],
  indices: readonly number[],
  options: Pick<BatchingOptions, "padId" | "padMultiple">,
): Batch {
  const rows = examples.map((e) => ({ ids: e.ids, labelMask: e.labelMask }));
  return collateRows(rows, indices, options);
}

/**
 * Pads preference pairs into one batch: chosen rows (prompt + chosen) first, then rejected rows, all to one T.
 *
 * @example
 * ```ts
 * const batch = collatePreference(pairs, [0, 1], { padId: 0 }); // batch.B === 4, batch.pairs === 2
 * ```
 */
export function collatePreference(
  examples: readonly PreferenceExample[],
  indices: readonly number[],
  options: Pick<BatchingOptions, "padId" | "padMultiple">,
): PreferenceBatch {
  const side = (e: PreferenceExample, completion: number[]) => ({
    ids: [...e.promptIds, ...completion],
    labelMask: [...e.promptIds.map(() => 0), ...completion.map(() => 1)],
  });
  const rows = [...examples.map((e) => side(e, e.chosenIds)), ...examples.map((e) => side(e, e.rejectedIds))];
  return { ...collateRows(rows, indices, options), pairs: examples.length };
}

function collateRows(
  rows: readonly { ids: readonly number[]; labelMask: readonly number[] }[],
  indices: readonly number[],
  options: Pick<BatchingOptions, "padId" | "padMultiple">,
): Batch {
  if (rows.length === 0) throw new RangeError("collate: a batch needs at least one example");
  const multiple = options.padMultiple ?? 1;
  const longest = Math.max(...rows.map((r) => r.ids.length));
  const T = Math.max(1, Math.ceil(longest / multiple) * multiple);
  const B = rows.length;
  const ids = new Int32Array(B * T).fill(options.padId);
  const attentionMask = new Uint32Array(B * T);
  const labelMask = new Uint32Array(B * T);
  rows.forEach((row, b) => {
    if (row.labelMask.length !== row.ids.length) {
      throw new RangeError(
        `collate: row ${b} has ${row.ids.length} ids but ${row.labelMask.length} label mask entries`,
      );
    }
    ids.set(row.ids, b * T);
    attentionMask.fill(1, b * T, b * T + row.ids.length);
    labelMask.set(row.labelMask, b * T);
  });
  const { targets, lossMask } = lossAlignedMasks(ids, attentionMask, labelMask, B, T);
  return {
    ids,
    attentionMask,
    labelMask,
    targets,
    lossMask,
    B,
    T,
    tokens: rows.reduce((n, r) => n + r.ids.length, 0),
    lossTokens: lossMask.reduce((n, v) => n + v, 0),
    exampleIndices: [...indices],
  };
}

/**
 * The next-token targets and loss mask of a padded batch: for r = b·T + t, `targets[r] = ids[r+1]` when
 * t + 1 < T, else {@link NO_TARGET}; `lossMask[r] = labelMask[r+1] && attentionMask[r+1]` (0 in the last column).
 *
 * @example
 * ```ts
 * const { targets, lossMask } = lossAlignedMasks(ids, attentionMask, labelMask, B, T);
 * ```
 */
export function lossAlignedMasks(
  ids: Int32Array,
  attentionMask: Uint32Array,
  labelMask: Uint32Array,
  B: number,
  T: number,
): { targets: Uint32Array; lossMask: Uint32Array } {
  const lossMask = new Uint32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      const r = b * T + t;
      lossMask[r] = labelMask[r + 1] && attentionMask[r + 1] ? 1 : 0;
    }
  }
  return { targets: nextTokenTargets(ids, B, T), lossMask };
}

function checkOptions(options: BatchingOptions): void {
  const positive = (name: string, v: number | undefined) => {
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) {
      throw new RangeError(`${name}: expected a positive integer, got ${v}`);
    }
  };
  positive("batchSize", options.batchSize);
  positive("padMultiple", options.padMultiple);
  positive("windowBatches", options.windowBatches);
  if (!Number.isInteger(options.padId) || options.padId < 0) {
    throw new RangeError(`padId: expected a token id, got ${options.padId}`);
  }
  if (options.epochs !== undefined && !(Number.isInteger(options.epochs) && options.epochs >= 0)) {
    throw new RangeError(`epochs: expected a non-negative integer, got ${options.epochs}`);
  }
}

/** A well-mixed 32-bit seed per (seed, epoch), so consecutive epochs get unrelated orders. */
function epochSeed(seed: number, epoch: number): number {
  let h = Math.imul((Math.trunc(seed) >>> 0) ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ Math.trunc(epoch), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
