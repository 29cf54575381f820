/**
 * CPU references of the KV-cache kernels: scattering new K/V rows into a cache and advancing decode state.
 * @module
 */

/** cache[(row / T)·kvRows + positions[row]] ← src[row] for every row (rows of `width` elements). */
export function kvScatterRef(
  src: Float32Array,
  cache: Float32Array,
  positions: Uint32Array,
  rows: number,
  T: number,
  kvRows: number,
  width: number,
): Float32Array {
  const out = cache.slice();
  for (let r = 0; r < rows; r++) {
    const dst = Math.floor(r / T) * kvRows + positions[r];
    if (positions[r] >= kvRows) continue;
    out.set(src.subarray(r * width, (r + 1) * width), dst * width);
  }
  return out;
}

/** State of {@link decodeAdvanceRef}. */
export interface DecodeState {
  ids: Uint32Array;
  positions: Uint32Array;
  keyMask: Uint32Array;
  produced: Uint32Array;
  out: Uint32Array;
}

/**
 * One decode step's bookkeeping per active slot b: the sampled id becomes the next input, is appended to
 * `out[b·maxNew + produced[b]]`, the position moves on (up to kvRows−1) and the new position's key is
 * marked visible.
 */
export function decodeAdvanceRef(
  s: DecodeState,
  sampled: Uint32Array,
  active: Uint32Array,
  slots: number,
  kvRows: number,
  maxNew: number,
): DecodeState {
  const r = {
    ids: s.ids.slice(),
    positions: s.positions.slice(),
    keyMask: s.keyMask.slice(),
    produced: s.produced.slice(),
    out: s.out.slice(),
  };
  for (let b = 0; b < slots; b++) {
    if (!active[b]) continue;
    const tok = sampled[b];
    r.ids[b] = tok;
    if (r.produced[b] < maxNew) {
      r.out[b * maxNew + r.produced[b]] = tok;
      r.produced[b]++;
    }
    if (r.positions[b] + 1 < kvRows) {
      r.positions[b]++;
      r.keyMask[b * kvRows + r.positions[b]] = 1;
    }
  }
  return r;
}
