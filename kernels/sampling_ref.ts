/**
 * CPU reference for `sampling.ts`, written the way Hugging Face's processors read: sort, cut, draw.
 * Penalties and temperature are computed in f32 as the kernel does them; the kept set and the Gumbel keys in
 * float64. The random generator (pcg4d) is bit-exact with the kernel's, so for the same seed, stream and step
 * the reference picks the same token; `margin` says how far the pick was from a float-rounding tie.
 * @module
 */
import { resolveSampling, type SamplingSettings, SEEN_IN_PROMPT } from "./sampling.ts";

/**
 * pcg4d (Jarzynski & Olano 2020) on four u32 words, bit-exact with the kernel's `pcg4d`.
 * @example
 * ```ts
 * const [x] = pcg4d(token, step, seed, stream); // the kernel's random word for this token
 * ```
 */
export function pcg4d(a: number, b: number, c: number, d: number): [number, number, number, number] {
  let x = (Math.imul(a, 1664525) + 1013904223) >>> 0;
  let y = (Math.imul(b, 1664525) + 1013904223) >>> 0;
  let z = (Math.imul(c, 1664525) + 1013904223) >>> 0;
  let w = (Math.imul(d, 1664525) + 1013904223) >>> 0;
  for (let round = 0; round < 2; round++) {
    x = (x + Math.imul(y, w)) >>> 0;
    y = (y + Math.imul(z, x)) >>> 0;
    z = (z + Math.imul(x, y)) >>> 0;
    w = (w + Math.imul(y, z)) >>> 0;
    if (round === 0) {
      x = (x ^ (x >>> 16)) >>> 0;
      y = (y ^ (y >>> 16)) >>> 0;
      z = (z ^ (z >>> 16)) >>> 0;
      w = (w ^ (w >>> 16)) >>> 0;
    }
  }
  return [x, y, z, w];
}

/**
 * The uniform in (0, 1) the kernel draws for `token` at `step`: 23 bits of pcg4d, centred in their cell.
 * @example
 * ```ts
 * const u = uniformRef(42, 0, 0, 17); // seed 42, stream 0, step 0, token 17
 * ```
 */
export function uniformRef(seed: number, stream: number, step: number, token: number): number {
  const [bits] = pcg4d(token, step >>> 0, seed, stream);
  return ((bits >>> 9) + 0.5) / 2 ** 23;
}

/**
 * The kernel's order-preserving u32 key of an f32 value (−0 counts as +0).
 * @example
 * ```ts
 * orderedKey(-1) < orderedKey(-0) && orderedKey(-0) === orderedKey(0) && orderedKey(0) < orderedKey(1); // true
 * ```
 */
export function orderedKey(x: number): number {
  F32[0] = x;
  const b = U32[0] === 0x80000000 ? 0 : U32[0];
  return (b & 0x80000000) !== 0 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
}
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/**
 * Penalties then (when sampling) temperature, in f32 as the kernel computes them. `seen` entries are the
 * kernel's: bit 31 marks a prompt token, the low 31 bits count the token in the output. A token in the prompt
 * or the output gets `x < 0 ? x·rep : x/rep`; one the output holds `c > 0` times then `x − (freq·c +
 * presence)`; then `x / temperature`.
 * @example
 * ```ts
 * processLogitsRef([2, -1], [1, 1], { repetitionPenalty: 2, temperature: 0 }); // [1, -2]
 * ```
 */
export function processLogitsRef(
  logits: ArrayLike<number>,
  seen: ArrayLike<number>,
  settings: SamplingSettings,
): Float32Array {
  const s = resolveSampling(settings);
  const f = Math.fround;
  const out = new Float32Array(logits.length);
  for (let i = 0; i < logits.length; i++) {
    let x = f(logits[i]);
    const c = seen[i];
    if (c !== 0) x = x < 0 ? f(x * f(s.repetitionPenalty)) : f(x / f(s.repetitionPenalty));
    const output = c % SEEN_IN_PROMPT;
    if (output !== 0) x = f(x - f(f(f(s.frequencyPenalty) * f(output)) + f(s.presencePenalty)));
    out[i] = s.temperature > 0 ? f(x / f(s.temperature)) : x;
  }
  return out;
}

/** What {@link keptSetRef} returns: 1 per kept token, and 1 per token whose fate float rounding could flip. */
export interface KeptSet {
  kept: Uint8Array;
  borderline: Uint8Array;
}

/**
 * Which tokens survive top-k, then top-p, then min-p, given processed values (as Hugging Face's warpers
 * run). Top-k keeps values ≥ the k-th largest. Top-p walks groups of equal values from the top and keeps a
 * group while the mass of the larger groups is below `topP` of the total (the first group always).
 * Min-p keeps tokens with `exp(v − max) ≥ minP`. A decision within `tolerance` (relative to the total mass,
 * or absolute for min-p) of its boundary is flagged in `borderline`.
 * @example
 * ```ts
 * keptSetRef(new Float32Array([3, 1, 3, 2]), { topK: 1 }).kept; // [1, 0, 1, 0]: both tied maxima stay
 * ```
 */
export function keptSetRef(values: ArrayLike<number>, settings: SamplingSettings, tolerance = 0): KeptSet {
  const s = resolveSampling(settings);
  const n = values.length;
  const kept = new Uint8Array(n).fill(1);
  const borderline = new Uint8Array(n);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
    values[a] > values[b] ? -1 : values[a] < values[b] ? 1 : a - b
  );
  if (s.topK > 0 && s.topK < n) {
    const kth = values[order[s.topK - 1]];
    for (let i = 0; i < n; i++) if (values[i] < kth) kept[i] = 0;
  }
  const max = values[order[0]];
  const mass = (i: number) => Math.exp(values[i] - max);
  if (s.topP < 1) {
    const survivors = order.filter((i) => kept[i]);
    const total = survivors.reduce((sum, i) => sum + mass(i), 0);
    const goal = s.topP * total;
    let above = 0;
    for (let g = 0; g < survivors.length;) {
      let end = g;
      while (end < survivors.length && values[survivors[end]] === values[survivors[g]]) end++;
      const group = survivors.slice(g, end);
      const keep = g === 0 || above < goal;
      const close = g > 0 && Math.abs(above - goal) <= tolerance * total;
      for (const i of group) {
        kept[i] = keep ? 1 : 0;
        borderline[i] = close ? 1 : 0;
      }
      above += group.reduce((sum, i) => sum + mass(i), 0);
      g = end;
    }
  }
  if (s.minP > 0) {
    for (let i = 0; i < n; i++) {
      if (mass(i) < s.minP) kept[i] = 0;
      if (Math.abs(mass(i) - s.minP) <= tolerance) borderline[i] = 1;
    }
  }
  return { kept, borderline };
}

/** The reference's pick for one row. */
export interface SampleRef {
  token: number;
  /** Gap between the best and second-best Gumbel keys (Infinity for greedy or a single kept token). */
  margin: number;
  /** The processed values (before filtering). */
  values: Float32Array;
  /** Tokens kept by top-k/top-p/min-p (all for greedy rows). */
  kept: Uint8Array;
}

/**
 * One row's token at random step `step`: greedy argmax (lowest index among ties) at temperature 0, else
 * the kept token with the largest `v − log(−log u)`, u from {@link uniformRef}.
 * @example
 * ```ts
 * const { token } = sampleRef(logits, seenCounts, { temperature: 0.7, topP: 0.9, seed: 1 }, 0);
 * ```
 */
export function sampleRef(
  logits: ArrayLike<number>,
  seen: ArrayLike<number>,
  settings: SamplingSettings,
  step: number,
): SampleRef {
  const s = resolveSampling(settings);
  const values = processLogitsRef(logits, seen, s);
  if (s.temperature === 0) {
    let token = 0;
    for (let i = 1; i < values.length; i++) if (values[i] > values[token]) token = i;
    return { token, margin: Infinity, values, kept: new Uint8Array(values.length).fill(1) };
  }
  const { kept } = keptSetRef(values, s);
  let token = -1, best = -Infinity, second = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (!kept[i]) continue;
    const key = values[i] - Math.log(exponentialRef(uniformRef(s.seed, s.stream, step, i)));
    if (token < 0 || key > best) {
      second = best;
      best = key;
      token = i;
    } else if (key > second) second = key;
  }
  return { token, margin: best - second, values, kept };
}

/**
 * −log(u) in float64, precise near u = 1 too: the Exp(1) variate the kernel's `exponential` computes.
 * @example
 * ```ts
 * exponentialRef(uniformRef(42, 0, 0, 17)); // the exponential race time of token 17 at step 0
 * ```
 */
export function exponentialRef(u: number): number {
  return u <= 0.5 ? -Math.log(u) : -Math.log1p(-(1 - u));
}

/**
 * One dispatch of the kernel over `rows` rows: samples each row and updates `seen` and `counter` in place
 * as the kernel does. `logits` and `seen` are `[rows, vocab]`.
 * @example
 * ```ts
 * const picks = sampleStepRef(logits, [{ temperature: 0 }, { seed: 3 }], seen, counter, vocab);
 * ```
 */
export function sampleStepRef(
  logits: Float32Array,
  settings: readonly SamplingSettings[],
  seen: Uint32Array,
  counter: Uint32Array,
  vocab: number,
): SampleRef[] {
  return settings.map((s, r) => {
    const row = logits.subarray(r * vocab, (r + 1) * vocab);
    const pick = sampleRef(row, seen.subarray(r * vocab, (r + 1) * vocab), s, counter[r]);
    seen[r * vocab + pick.token]++;
    counter[r] = (counter[r] + 1) >>> 0;
    return pick;
  });
}
