/**
 * Next-token sampling on the GPU, with Hugging Face `generate()`'s logits processing, so that decode steps
 * can follow one another without a readback.
 *
 * One workgroup handles one row (one sequence's last-position logits) and applies, in Hugging Face's order:
 * the repetition penalty (`RepetitionPenaltyLogitsProcessor`: multiplicative, on every token of the prompt
 * and of the output so far), OpenAI's frequency and presence penalties (additive, on the output's tokens
 * only, as OpenAI defines them and vLLM applies them: `x − frequency·count − presence·[count > 0]`; no
 * Hugging Face counterpart; 0 disables them), then, when sampling, temperature, top-k, top-p and min-p
 * (`TemperatureLogitsWarper`, `TopKLogitsWarper`, `TopPLogitsWarper`, `MinPLogitsWarper`), and samples from
 * the softmax of what is left. Temperature 0 is greedy decoding: the argmax of the penalised logits, the
 * lowest index among ties (as `torch.argmax`).
 *
 * How it avoids sorting a 152k vocabulary:
 * - Values are compared as order-preserving u32 keys (see `okey`), so a threshold is a key.
 * - The top-k and top-p thresholds are "the largest key t with F(t) ≥ target", F(t) being the count (top-k)
 *   or the probability mass (top-p) of tokens whose key is ≥ t. A 16-way search over the 32-bit key space
 *   evaluates F at 16 thresholds per pass (four `vec4` accumulators, no private arrays) and keeps the
 *   bracket that holds the answer: 8 passes find the exact key whatever the values.
 * - Ties: a token is kept when its value is ≥ the k-th largest value, so every token tied with the k-th is
 *   kept — Hugging Face's rule (`scores < topk(...)[-1]` is what it removes). Top-p keeps a token when the
 *   mass of the strictly larger tokens is below `topP` of the total, so a tie group is kept or removed as a
 *   whole; Hugging Face keeps part of a group in whatever order `torch.sort` returns it (so with
 *   `topP = 0` every token tied at the maximum stays, where Hugging Face keeps one).
 * - The sample is drawn with the Gumbel-max trick: the kept token with the largest `value − log(E)`, where
 *   `E = −log(u)` is an exponential variate from a counter-based hash (pcg4d of token, step, seed, stream).
 *   This needs no normalisation or prefix sum, and since only comparisons decide, the CPU reference picks
 *   the same token unless two keys differ by float rounding. The row index is not hashed: a sequence draws
 *   the same numbers in whatever batch slot it runs, so rows that must differ need different seeds or streams.
 * - Cost per row: one pass over the vocabulary (penalties, temperature, max), 8 more for top-k, 8 for top-p,
 *   one to filter and draw; greedy rows stop after the first.
 *
 * `seen[row, id]` tells both penalties what the sequence holds: bit 31 ({@link SEEN_IN_PROMPT}) marks a
 * prompt token ({@link seenFromTokens} sets it), the low 31 bits count the token's occurrences in the output.
 *
 * After the kernel, each row of `logits` holds the processed scores Hugging Face's processors would return
 * (penalised, divided by the temperature, −inf where filtered; greedy rows are only penalised), the sampled
 * id is in `out[row]`, its output count in `seen[row, id]` has been incremented and `counter[row]` has
 * advanced by one.
 * Reference: `sampling_ref.ts`.
 * @module
 */
import { type Dispatch, type Gpu, grid, type Tensor, WGSL_FLAT_INDEX } from "../gpu/runtime.ts";
import { flatGroups, flatKernel } from "./flat.ts";
import { checkCount, checkDisjoint, checkTensor } from "./tensor_checks.ts";

/**
 * Layout of one row of the `params` tensor (f32): the field offsets and the row stride. `seed` and `stream`
 * hold u32 bit patterns, not float values; {@link samplingParams} writes a row correctly.
 *
 * @example
 * ```ts
 * const params = gpu.tensor(rows * SAMPLE_PARAMS.stride, "f32", "sampling.params");
 * gpu.write(params, samplingParams({ temperature: 0.7, topP: 0.9, seed: 42 }), row * SAMPLE_PARAMS.stride);
 * ```
 */
export const SAMPLE_PARAMS = {
  temperature: 0,
  topK: 1,
  topP: 2,
  minP: 3,
  repetitionPenalty: 4,
  frequencyPenalty: 5,
  presencePenalty: 6,
  seed: 7,
  stream: 8,
  stride: 9,
} as const;

/** Sampling settings of one sequence; every field is optional. */
export interface SamplingSettings {
  /** Divides the logits before sampling (default 1); 0 means greedy decoding. */
  temperature?: number;
  /** `false` means greedy decoding whatever the temperature (Hugging Face's `do_sample`; default true). */
  doSample?: boolean;
  /** Keep the tokens whose value is ≥ the k-th largest (default 0: no top-k). */
  topK?: number;
  /** Keep the smallest set of most probable tokens whose mass reaches `topP` (default 1: no top-p). */
  topP?: number;
  /** Drop tokens less probable than `minP` times the most probable one (default 0: off). */
  minP?: number;
  /** Hugging Face's repetition penalty on tokens already in the prompt or the output (default 1: off). */
  repetitionPenalty?: number;
  /** OpenAI's frequency penalty: subtracted once per occurrence in the output (default 0). */
  frequencyPenalty?: number;
  /** OpenAI's presence penalty: subtracted once from every token the output holds (default 0). */
  presencePenalty?: number;
  /** u32 seed of the random stream (default 0). */
  seed?: number;
  /**
   * u32 second seed word (default 0). Rows with the same seed and stream draw the same random numbers, so a
   * request reproduces in whatever batch slot it lands; give the `n` choices of one request distinct streams.
   */
  stream?: number;
}

/** {@link SamplingSettings} with defaults applied and values checked; greedy rows have temperature 0. */
export type ResolvedSampling = Required<Omit<SamplingSettings, "doSample">>;

/** Largest vocabulary: counts are summed in f32, exact up to 2²⁴. */
const MAX_VOCAB = 2 ** 24;

/** The values a numeric setting accepts: finite, within the bounds, an integer when `integer` is set. */
export interface NumberRange {
  /** Smallest accepted value (inclusive unless `minExclusive`). */
  min?: number;
  /** Largest accepted value (inclusive unless `maxExclusive`). */
  max?: number;
  minExclusive?: boolean;
  maxExclusive?: boolean;
  integer?: boolean;
  /** What a special value means, for error messages: "0 is greedy". */
  note?: string;
}

/**
 * The one definition of what each sampling setting accepts. The sampler ({@link resolveSampling}), the
 * {@link Generator} in `generate/` and the HTTP API (serve/openai_types.ts, which may only narrow a range,
 * as OpenAI's temperature ≤ 2) all check against these, so a value one layer accepts never fails in a
 * deeper one.
 *
 * @example
 * ```ts
 * inRange(-1, SAMPLING_RANGES.seed); // false
 * rangeText(SAMPLING_RANGES.seed); // "an integer in [0, 2^32)"
 * ```
 */
export const SAMPLING_RANGES: Readonly<Record<keyof ResolvedSampling, NumberRange>> = {
  temperature: { min: 0, note: "0 is greedy" },
  topK: { min: 0, integer: true, note: "0 disables it" },
  topP: { min: 0, max: 1 },
  minP: { min: 0, max: 1 },
  repetitionPenalty: { min: 0, minExclusive: true, note: "1 disables it" },
  frequencyPenalty: {},
  presencePenalty: {},
  seed: { min: 0, max: 2 ** 32, maxExclusive: true, integer: true },
  stream: { min: 0, max: 2 ** 32, maxExclusive: true, integer: true },
};

/**
 * Whether `v` is a finite number within `range`.
 *
 * @example
 * ```ts
 * inRange(0.5, { min: 0, max: 1 }); // true
 * inRange(2.5, { min: 0, integer: true }); // false
 * ```
 */
export function inRange(v: unknown, range: NumberRange): v is number {
  if (typeof v !== "number" || !Number.isFinite(v)) return false;
  if (range.integer && !Number.isInteger(v)) return false;
  if (range.min !== undefined && (range.minExclusive ? v <= range.min : v < range.min)) return false;
  if (range.max !== undefined && (range.maxExclusive ? v >= range.max : v > range.max)) return false;
  return true;
}

/** 2^32 reads better than 4294967296. */
function bound(x: number): string {
  return x >= 2 ** 20 && Number.isInteger(Math.log2(x)) ? `2^${Math.log2(x)}` : String(x);
}

/**
 * A range in words, for "… must be {rangeText}, got …".
 *
 * @example
 * ```ts
 * rangeText({ min: 0, max: 1, minExclusive: true }); // "in (0, 1]"
 * rangeText(SAMPLING_RANGES.seed); // "an integer in [0, 2^32)"
 * rangeText(SAMPLING_RANGES.temperature); // ">= 0 (0 is greedy)"
 * ```
 */
export function rangeText(range: NumberRange): string {
  const head = range.integer ? "an integer " : "";
  const note = range.note ? ` (${range.note})` : "";
  const { min, max } = range;
  if (min !== undefined && max !== undefined) {
    const open = range.minExclusive ? "(" : "[", close = range.maxExclusive ? ")" : "]";
    return `${head}in ${open}${bound(min)}, ${bound(max)}${close}${note}`;
  }
  if (min !== undefined) return `${head}${range.minExclusive ? ">" : ">="} ${bound(min)}${note}`;
  if (max !== undefined) return `${head}${range.maxExclusive ? "<" : "<="} ${bound(max)}${note}`;
  return range.integer ? `an integer${note}` : `a finite number${note}`;
}

/**
 * Applies the defaults and checks every field against {@link SAMPLING_RANGES}, naming it (and `what`) in
 * the error.
 *
 * @example
 * ```ts
 * resolveSampling({ temperature: 0.7, doSample: false }).temperature; // 0: greedy
 * resolveSampling({ topP: 1.5 }); // RangeError: sampling settings: "topP" must be in [0, 1], got 1.5
 * ```
 */
export function resolveSampling(s: SamplingSettings, what = "sampling settings"): ResolvedSampling {
  const get = (field: keyof ResolvedSampling, fallback: number): number => {
    const v = s[field] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new RangeError(`${what}: "${field}" must be a finite number, got ${v}`);
    }
    if (!inRange(v, SAMPLING_RANGES[field])) {
      throw new RangeError(`${what}: "${field}" must be ${rangeText(SAMPLING_RANGES[field])}, got ${v}`);
    }
    return v;
  };
  const temperature = get("temperature", 1);
  return {
    temperature: s.doSample === false ? 0 : temperature,
    topK: get("topK", 0),
    topP: get("topP", 1),
    minP: get("minP", 0),
    repetitionPenalty: get("repetitionPenalty", 1),
    frequencyPenalty: get("frequencyPenalty", 0),
    presencePenalty: get("presencePenalty", 0),
    seed: get("seed", 0),
    stream: get("stream", 0),
  };
}

/**
 * One row of the `params` tensor ({@link SAMPLE_PARAMS}.stride floats), to `gpu.write` at
 * `row · SAMPLE_PARAMS.stride`.
 *
 * @example
 * ```ts
 * gpu.write(params, samplingParams({ temperature: 0.8, topK: 50, seed: 7 }), slot * SAMPLE_PARAMS.stride);
 * ```
 */
export function samplingParams(s: SamplingSettings, what = "sampling settings"): Float32Array {
  const r = resolveSampling(s, what);
  const row = new Float32Array(SAMPLE_PARAMS.stride);
  const bits = new Uint32Array(row.buffer);
  row[SAMPLE_PARAMS.temperature] = r.temperature;
  // f32 holds integers exactly up to 2^24; larger k keep every token anyway (the kernel clamps to vocab).
  row[SAMPLE_PARAMS.topK] = Math.min(r.topK, MAX_VOCAB);
  row[SAMPLE_PARAMS.topP] = r.topP;
  row[SAMPLE_PARAMS.minP] = r.minP;
  row[SAMPLE_PARAMS.repetitionPenalty] = r.repetitionPenalty;
  row[SAMPLE_PARAMS.frequencyPenalty] = r.frequencyPenalty;
  row[SAMPLE_PARAMS.presencePenalty] = r.presencePenalty;
  bits[SAMPLE_PARAMS.seed] = r.seed;
  bits[SAMPLE_PARAMS.stream] = r.stream;
  return row;
}

/**
 * The `params` tensor for several rows at once; errors name the row.
 *
 * @example
 * ```ts
 * const params = gpu.upload(packSamplingParams([{ temperature: 0 }, { temperature: 0.7, topP: 0.9, seed: 1 }]));
 * ```
 */
export function packSamplingParams(rows: readonly SamplingSettings[]): Float32Array {
  const out = new Float32Array(rows.length * SAMPLE_PARAMS.stride);
  rows.forEach((s, r) =>
    out.set(samplingParams(s, `sampling settings of row ${r}`), r * SAMPLE_PARAMS.stride)
  );
  return out;
}

const WG = 256;
/**
 * The bit of a `seen` entry marking a prompt token; the low 31 bits count the token in the output.
 *
 * @example
 * ```ts
 * const outputCount = seen[i] & ~SEEN_IN_PROMPT; const inPrompt = (seen[i] & SEEN_IN_PROMPT) !== 0;
 * ```
 */
export const SEEN_IN_PROMPT = 0x80000000;
/** Passes of the 16-way threshold search: 4 bits of the 32-bit key each. */
const SEARCH_PASSES = 8;
const NONE = 0xffffffff;

/**
 * WGSL of the sampler's random variates: `pcg4d` (Jarzynski & Olano, "Hash Functions for GPU Rendering",
 * JCGT 2020), `uniform_open` (a uniform in (0, 1) from its bits) and `exponential` (−log u, an Exp(1)
 * variate). `sampling_ref.ts` implements the same: pcg4d and the uniform bit-exactly.
 *
 * @example
 * ```ts
 * const code = `${WGSL_SAMPLING_RNG}
 * @compute @workgroup_size(1) fn main() { let e = exponential(uniform_open(pcg4d(vec4u(7u, 0u, 42u, 0u)).x)); }`;
 * ```
 */
export const WGSL_SAMPLING_RNG = /* wgsl */ `
fn pcg4d(seed: vec4u) -> vec4u {
  var v = seed * 1664525u + 1013904223u;
  v.x += v.y * v.w; v.y += v.z * v.x; v.z += v.x * v.y; v.w += v.y * v.z;
  v ^= v >> vec4u(16u);
  v.x += v.y * v.w; v.y += v.z * v.x; v.z += v.x * v.y; v.w += v.y * v.z;
  return v;
}
// 23 random bits centred in their cell: exactly representable, never 0 or 1.
fn uniform_open(bits: u32) -> f32 { return (f32(bits >> 9u) + 0.5) * (1.0 / 8388608.0); }
// −log(u) with full relative precision: near u = 1 the builtin log is only accurate in absolute terms, so
// there it is 2·atanh(z), z = d / (2 − d), d = 1 − u (exact), by its series (z ≤ 1/3).
fn exponential(u: f32) -> f32 {
  if (u <= 0.5) { return -log(u); }
  let d = 1.0 - u;
  let z = d / (2.0 - d);
  let z2 = z * z;
  let series = 1.0 + z2 * (1.0 / 3.0 + z2 * (1.0 / 5.0 + z2 * (1.0 / 7.0 + z2 * (1.0 / 9.0
    + z2 * (1.0 / 11.0 + z2 * (1.0 / 13.0 + z2 * (1.0 / 15.0)))))));
  return 2.0 * z * series;
}
`;

const SAMPLE = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> seen: array<u32>;
@group(0) @binding(3) var<storage, read_write> counter: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;
struct P { rows: u32, vocab: u32 }
@group(0) @binding(5) var<uniform> p: P;
var<workgroup> red4: array<vec4f, ${WG}>;
var<workgroup> redf: array<f32, ${WG}>;
var<workgroup> redu: array<u32, ${WG}>;
${WGSL_FLAT_INDEX}
${WGSL_SAMPLING_RNG}
const NONE = ${NONE}u;

// Order-preserving map of f32 onto u32 (−0 taken as +0, so equal values have equal keys).
fn okey(x: f32) -> u32 {
  let b0 = bitcast<u32>(x);
  let b = select(b0, 0u, b0 == 0x80000000u);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// −inf built at run time: a constant infinity is a shader-creation error.
fn runtime_neg_inf(seed: u32) -> f32 { return bitcast<f32>(0xff800000u | (seed & 0u)); }

struct Best { v: f32, i: u32 }

// Larger value wins, then the lower index; NONE never wins.
fn beats(a: Best, b: Best) -> bool {
  if (a.i == NONE) { return false; }
  if (b.i == NONE) { return true; }
  return a.v > b.v || (a.v == b.v && a.i < b.i);
}

fn reduce_best(li: u32, mine: Best) -> Best {
  redf[li] = mine.v;
  redu[li] = mine.i;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) {
      let other = Best(redf[li + s], redu[li + s]);
      if (beats(other, Best(redf[li], redu[li]))) { redf[li] = other.v; redu[li] = other.i; }
    }
    workgroupBarrier();
  }
  let all = Best(redf[0], redu[0]);
  workgroupBarrier();
  return all;
}

fn reduce_sum4(li: u32, mine: vec4f) -> vec4f {
  red4[li] = mine;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { red4[li] += red4[li + s]; }
    workgroupBarrier();
  }
  let all = red4[0];
  workgroupBarrier();
  return all;
}

// The largest key t in [lo0, hi0) with F(t) >= goal, F(t) being the count (use_mass false) or the mass
// exp(v − vmax) of the row's tokens with key ≥ t. The caller guarantees F(lo0) >= goal > F(hi0). With
// use_mass the goal is frac · F(lo0), known after the first pass; otherwise it is count.
fn search(li: u32, base: u32, lo0: u32, hi0: u32, use_mass: bool, vmax: f32, frac: f32, count: f32) -> u32 {
  var lo = lo0;
  var hi = hi0;
  var goal = count;
  for (var round = 0u; round < ${SEARCH_PASSES}u; round++) {
    let width = hi - lo;
    let step = (width + 15u) / 16u;
    let t0 = vec4u(lo) + min(vec4u(0u, 1u, 2u, 3u) * step, vec4u(width));
    let t1 = vec4u(lo) + min(vec4u(4u, 5u, 6u, 7u) * step, vec4u(width));
    let t2 = vec4u(lo) + min(vec4u(8u, 9u, 10u, 11u) * step, vec4u(width));
    let t3 = vec4u(lo) + min(vec4u(12u, 13u, 14u, 15u) * step, vec4u(width));
    var a0 = vec4f(0.0);
    var a1 = vec4f(0.0);
    var a2 = vec4f(0.0);
    var a3 = vec4f(0.0);
    for (var i = li; i < p.vocab; i += ${WG}u) {
      let v = logits[base + i];
      let k = okey(v);
      if (k >= lo) {
        let w = select(1.0, exp(v - vmax), use_mass);
        let kv = vec4u(k);
        a0 += select(vec4f(0.0), vec4f(w), kv >= t0);
        a1 += select(vec4f(0.0), vec4f(w), kv >= t1);
        a2 += select(vec4f(0.0), vec4f(w), kv >= t2);
        a3 += select(vec4f(0.0), vec4f(w), kv >= t3);
      }
    }
    let f0 = reduce_sum4(li, a0);
    let f1 = reduce_sum4(li, a1);
    let f2 = reduce_sum4(li, a2);
    let f3 = reduce_sum4(li, a3);
    if (round == 0u && use_mass) { goal = frac * f0.x; }
    // F falls as the threshold rises, so the thresholds that reach the goal are a prefix.
    let tv = vec4f(goal);
    let one = vec4f(1.0);
    let zero = vec4f(0.0);
    let reached = dot(select(zero, one, f0 >= tv), one) + dot(select(zero, one, f1 >= tv), one)
      + dot(select(zero, one, f2 >= tv), one) + dot(select(zero, one, f3 >= tv), one);
    // Thresholds at hi are never candidates (F(hi) < goal, unless the goal is 0, as with top_p = 0).
    let j = min(max(u32(reached), 1u) - 1u, (width - 1u) / step);
    let next_lo = lo + min(j * step, width);
    hi = lo + min((j + 1u) * step, width);
    lo = next_lo;
  }
  return lo;
}

fn finish(row: u32, base: u32, token: u32) {
  out[row] = token;
  seen[base + token] += 1u;
  counter[row] += 1u;
}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let row = flat_group(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.vocab;
  let pr = row * ${SAMPLE_PARAMS.stride}u;
  let temperature = params[pr + ${SAMPLE_PARAMS.temperature}u];
  let top_k = u32(params[pr + ${SAMPLE_PARAMS.topK}u]);
  let top_p = params[pr + ${SAMPLE_PARAMS.topP}u];
  let min_p = params[pr + ${SAMPLE_PARAMS.minP}u];
  let rep = params[pr + ${SAMPLE_PARAMS.repetitionPenalty}u];
  let freq = params[pr + ${SAMPLE_PARAMS.frequencyPenalty}u];
  let pres = params[pr + ${SAMPLE_PARAMS.presencePenalty}u];
  let seed = bitcast<u32>(params[pr + ${SAMPLE_PARAMS.seed}u]);
  let stream = bitcast<u32>(params[pr + ${SAMPLE_PARAMS.stream}u]);
  let sampling = temperature > 0.0;

  // Penalties, then temperature; the processed values replace the logits for the passes below.
  var best = Best(0.0, NONE);
  for (var i = li; i < p.vocab; i += ${WG}u) {
    var x = logits[base + i];
    let c = seen[base + i];
    if (c != 0u) { x = select(x / rep, x * rep, x < 0.0); }
    let output_count = c & ${(0x7fffffff).toString()}u;
    if (output_count != 0u) { x = x - (freq * f32(output_count) + pres); }
    if (sampling) { x = x / temperature; }
    logits[base + i] = x;
    if (beats(Best(x, i), best)) { best = Best(x, i); }
  }
  let top = reduce_best(li, best);
  if (!sampling) {
    if (li == 0u) { finish(row, base, top.i); }
    return;
  }

  let vmax = top.v;
  let hi = okey(vmax) + 1u;
  var threshold = 0u;
  if (top_k > 0u && top_k < p.vocab) {
    threshold = search(li, base, 0u, hi, false, vmax, 0.0, f32(top_k));
  }
  if (top_p < 1.0) {
    threshold = search(li, base, threshold, hi, true, vmax, top_p, 0.0);
  }

  // Filter (HF's −inf) and draw: Gumbel-max over the kept tokens.
  let step = counter[row];
  let neg_inf = runtime_neg_inf(step);
  var pick = Best(0.0, NONE);
  for (var i = li; i < p.vocab; i += ${WG}u) {
    let v = logits[base + i];
    if (okey(v) >= threshold && exp(v - vmax) >= min_p) {
      let u = uniform_open(pcg4d(vec4u(i, step, seed, stream)).x);
      let g = Best(v - log(exponential(u)), i);
      if (beats(g, pick)) { pick = g; }
    } else {
      logits[base + i] = neg_inf;
    }
  }
  let drawn = reduce_best(li, pick);
  if (li == 0u) { finish(row, base, select(drawn.i, top.i, drawn.i == NONE)); }
}`;

/** Arguments of {@link sampleDispatch}. */
export interface SampleArgs {
  /** f32 `[rows, vocab]`: each row's next-token logits; overwritten with the processed scores. */
  logits: Tensor;
  /** f32 `[rows · SAMPLE_PARAMS.stride]`, rows written by {@link samplingParams}. */
  params: Tensor;
  /**
   * u32 `[rows, vocab]`: what each row's sequence holds so far: {@link SEEN_IN_PROMPT} for a prompt token,
   * plus the token's count in the output.
   */
  seen: Tensor;
  /** u32 `[rows]`: the random stream's step per row; incremented by each dispatch. */
  counter: Tensor;
  /** u32 `[rows]`: the sampled ids. */
  out: Tensor;
  rows: number;
  vocab: number;
}

/**
 * Samples one token per row (see the module comment for the processing order and the tie rules).
 * @example
 * ```ts
 * gpu.run([...forward, ...sampleDispatch(gpu, { logits, params, seen, counter, out: nextIds, rows: 4, vocab })]);
 * ```
 */
export function sampleDispatch(gpu: Gpu, a: SampleArgs): Dispatch[] {
  const kernel = "sampleDispatch";
  checkCount(kernel, "rows", a.rows, 1);
  checkCount(kernel, "vocab", a.vocab, 1);
  if (a.vocab > MAX_VOCAB) {
    throw new RangeError(`${kernel}: "vocab" must be at most ${MAX_VOCAB}, got ${a.vocab}`);
  }
  const cells = `rows·vocab = ${a.rows}·${a.vocab}`;
  checkTensor(kernel, "logits", a.logits, "f32", a.rows * a.vocab, cells);
  checkTensor(
    kernel,
    "params",
    a.params,
    "f32",
    a.rows * SAMPLE_PARAMS.stride,
    `rows·${SAMPLE_PARAMS.stride}`,
  );
  checkTensor(kernel, "seen", a.seen, "u32", a.rows * a.vocab, cells);
  checkTensor(kernel, "counter", a.counter, "u32", a.rows, "rows");
  checkTensor(kernel, "out", a.out, "u32", a.rows, "rows");
  const bound: Record<string, Tensor> = {
    logits: a.logits,
    params: a.params,
    seen: a.seen,
    counter: a.counter,
    out: a.out,
  };
  const names = Object.keys(bound);
  names.forEach((x, i) => names.slice(i + 1).forEach((y) => checkDisjoint(kernel, x, bound[x], y, bound[y])));
  return [
    gpu.dispatch(
      SAMPLE,
      [a.logits, a.params, a.seen, a.counter, a.out],
      grid(a.rows, 1),
      [a.rows, a.vocab],
      "sample",
    ),
  ];
}

const CLEAR_ROW = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> seen: array<u32>;
struct P { vocab: u32, row: u32 }
@group(0) @binding(1) var<uniform> p: P;`,
  "p.vocab",
  "seen[p.row * p.vocab + i] = 0u;",
);

const SCATTER = flatKernel(
  /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> seen: array<atomic<u32>>;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
struct P { count: u32, offset: u32, vocab: u32, row: u32 }
@group(0) @binding(2) var<uniform> p: P;`,
  "p.count",
  // Ids outside the vocabulary (padding, NO_TARGET) are skipped.
  `let id = tokens[p.offset + i];
  if (id < p.vocab) { atomicOr(&seen[p.row * p.vocab + id], ${SEEN_IN_PROMPT}u); }`,
);

/** Arguments of {@link seenFromTokens}. */
export interface SeenFromTokensArgs {
  /** u32 `[rows, vocab]`, as given to {@link sampleDispatch}. */
  seen: Tensor;
  /** u32 token ids; `count` of them from `tokenOffset` are counted. */
  tokens: Tensor;
  count: number;
  /** First id read from `tokens` (default 0). */
  tokenOffset?: number;
  /** Row of `seen` to fill. */
  row: number;
  vocab: number;
  /** Zero the row first (default true), as when a new sequence takes the slot. */
  clear?: boolean;
}

/**
 * Marks token ids (a prompt) with {@link SEEN_IN_PROMPT} in one row of `seen` on the GPU, so the host never
 * uploads a `rows × vocab` array; output counts already there are kept. Ids ≥ `vocab` are skipped.
 * @example
 * ```ts
 * gpu.run(seenFromTokens(gpu, { seen, tokens: promptIds, count: promptLength, row: slot, vocab }));
 * ```
 */
export function seenFromTokens(gpu: Gpu, a: SeenFromTokensArgs): Dispatch[] {
  const kernel = "seenFromTokens";
  const offset = a.tokenOffset ?? 0;
  checkCount(kernel, "vocab", a.vocab, 1);
  checkCount(kernel, "row", a.row);
  checkCount(kernel, "count", a.count);
  checkCount(kernel, "tokenOffset", offset);
  checkTensor(
    kernel,
    "seen",
    a.seen,
    "u32",
    (a.row + 1) * a.vocab,
    `(row + 1)·vocab = ${a.row + 1}·${a.vocab}`,
  );
  checkTensor(
    kernel,
    "tokens",
    a.tokens,
    "u32",
    offset + a.count,
    `tokenOffset + count = ${offset} + ${a.count}`,
  );
  checkDisjoint(kernel, "seen", a.seen, "tokens", a.tokens);
  const out: Dispatch[] = [];
  if (a.clear ?? true) {
    out.push(gpu.dispatch(CLEAR_ROW, [a.seen], flatGroups(a.vocab), [a.vocab, a.row], "seen.clear"));
  }
  if (a.count > 0) {
    out.push(
      gpu.dispatch(
        SCATTER,
        [a.seen, a.tokens],
        flatGroups(a.count),
        [a.count, offset, a.vocab, a.row],
        "seen.scatter",
      ),
    );
  }
  return out;
}
