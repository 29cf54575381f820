/**
 * A batch's inputs as the model reads them: token ids, positions, the key mask and the next-token targets,
 * written into the model's step buffers. Training, evaluation and the parity check all feed the model this
 * way; what a batch means to an objective (loss masks, pairs) stays with them.
 *
 * @module
 */
import type { Gpu } from "../gpu/runtime.ts";
import { NO_TARGET } from "../kernels/logprobs.ts";
import type { StepBuffers } from "./llama.ts";

/** A right-padded batch of B sequences of T tokens, batch-major (train/batching.ts's `Batch` fits). */
export interface TokenBatch {
  /** Rows (sequences). */
  B: number;
  /** Columns (tokens per row, padding included). */
  T: number;
  /** Token ids, B·T of them. */
  ids: ArrayLike<number>;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: ArrayLike<number>;
  /** Next-token targets per row; {@link nextTokenTargets} of `ids` when absent. */
  targets?: ArrayLike<number>;
  /** Position of each token; default `t` (right padding keeps positions 0..len−1). */
  positions?: ArrayLike<number>;
}

/**
 * The token each position predicts: for r = b·T + t, `ids[r + 1]` while t + 1 < T, else `NO_TARGET` (the
 * last column has no next token; padding's targets are masked by whoever scores them).
 *
 * @example
 * ```ts
 * nextTokenTargets([5, 6, 7, 8], 2, 2); // Uint32Array [6, NO_TARGET, 8, NO_TARGET]
 * ```
 */
export function nextTokenTargets(ids: ArrayLike<number>, B: number, T: number): Uint32Array {
  const targets = new Uint32Array(B * T).fill(NO_TARGET);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) targets[b * T + t] = ids[b * T + t + 1];
  }
  return targets;
}

/**
 * Writes a batch's ids, positions, key mask and next-token targets into the model's step buffers (queued
 * before the next submit).
 * @example
 * ```ts
 * writeBatch(gpu, io, { B: 1, T: 3, ids: [1, 5, 2], attentionMask: [1, 1, 1] });
 * gpu.run(model.forward(1, 3, io));
 * ```
 */
export function writeBatch(gpu: Gpu, io: StepBuffers, b: TokenBatch): void {
  const N = b.B * b.T;
  if (b.ids.length !== N || b.attentionMask.length !== N) {
    throw new RangeError(
      `batch of ${b.B}×${b.T} needs ${N} ids and mask values, got ${b.ids.length}/${b.attentionMask.length}`,
    );
  }
  const ids = Uint32Array.from(b.ids, (id, r) => {
    if (!(id >= 0)) throw new RangeError(`token id ${id} at row ${r} is not a token id`);
    return id;
  });
  gpu.write(io.ids, ids);
  gpu.write(
    io.positions,
    b.positions ? Uint32Array.from(b.positions) : Uint32Array.from({ length: N }, (_, r) => r % b.T),
  );
  gpu.write(io.keyMask, Uint32Array.from(b.attentionMask, (m) => (m ? 1 : 0)));
  gpu.write(io.targets, b.targets ? Uint32Array.from(b.targets) : nextTokenTargets(ids, b.B, b.T));
}
