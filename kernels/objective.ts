/**
 * The training objectives — SFT, DPO (sigmoid, IPO, hinge) and ORPO — as the only place where they
 * differ. From per-token log-probs `logp` and masks of a micro-batch of `sequences` sequences of length `T`
 * (row `s·T + t`), three passes compute the loss, add the metrics TRL logs into `metrics`, and write
 * `dlogp = d(loss)/d(logp)` per token for `logprobsBackward`:
 *
 * 1. per-sequence sums of `mask·logp`, `mask`, `nllMask·logp`, `nllMask` (one workgroup per sequence);
 * 2. pair losses, metrics and one gradient coefficient per sequence (one small workgroup, deterministic);
 * 3. `dlogp[r] = coef[s]·mask[r] (+ nllCoef[s]·nllMask[r])` per token.
 *
 * Preference kinds use TRL's concatenated layout: sequences `0..P−1` are the chosen completions and
 * `P..2P−1` the rejected ones of the same pairs. A pair whose chosen or rejected mask is empty is padding:
 * it adds nothing to the loss, metrics or gradients (normalisers should count real pairs only).
 *
 * Values that change per step (normalisers, β or λ) are read from the small f32 tensor `hyper`
 * ({@link OBJECTIVE_HYPER}), so recorded dispatches stay valid. Reference: `objective_ref.ts`.
 * @module
 */
import { type Dispatch, type Gpu, grid, type Tensor, WGSL_FLAT_INDEX } from "../gpu/runtime.ts";
import { checkCount, checkDisjoint, checkTensor } from "./tensor_checks.ts";

/** Which objective to optimise. */
export type ObjectiveKind = "sft" | "dpo" | "orpo";

/** DPO loss variants (TRL's `loss_type`). */
export type DpoLossType = "sigmoid" | "ipo" | "hinge";

/**
 * Metric names in slot order of the `metrics` tensor, per kind. Each slot receives this micro-batch's sum
 * divided by the global normaliser, so the slots summed over micro-batches are the batch means TRL logs.
 * @example
 * ```ts
 * const values = await gpu.read(metrics);
 * const logged = Object.fromEntries(OBJECTIVE_METRICS.dpo.map((name, i) => [name, values[i]]));
 * ```
 */
export const OBJECTIVE_METRICS: { readonly [K in ObjectiveKind]: readonly string[] } = {
  sft: ["loss", "mean_token_accuracy"],
  dpo: [
    "loss",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/margins",
    "rewards/accuracies",
    "logps/chosen",
    "logps/rejected",
  ],
  orpo: [
    "loss",
    "nll_loss",
    "log_odds_ratio",
    "log_odds_chosen",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/margins",
    "rewards/accuracies",
    "logps/chosen",
    "logps/rejected",
  ],
};

/**
 * Slots of the f32 `hyper` tensor. `coefficient` is β for DPO and λ for ORPO (TRL calls both `beta`).
 * `normTokens` is the batch's number of target tokens (SFT), `normPairs` its number of real pairs,
 * `normNllTokens` the number of tokens in the ORPO NLL mask over the whole batch.
 * @example
 * ```ts
 * gpu.write(hyper, new Float32Array([0.05]), OBJECTIVE_HYPER.coefficient); // change β alone
 * ```
 */
export const OBJECTIVE_HYPER = { normTokens: 0, normPairs: 1, normNllTokens: 2, coefficient: 3 } as const;

/**
 * Number of f32 elements of the `hyper` tensor.
 * @example
 * ```ts
 * const hyper = gpu.tensor(OBJECTIVE_HYPER_LENGTH, "f32", "objective.hyper");
 * ```
 */
export const OBJECTIVE_HYPER_LENGTH = 4;

/** Values for {@link objectiveHyper}; which ones are required depends on the kind. */
export interface ObjectiveHyperValues {
  /** SFT: target tokens in the whole (accumulated) batch. */
  normTokens?: number;
  /** DPO, ORPO: real pairs in the whole batch. */
  normPairs?: number;
  /** ORPO: tokens of `nllMask` over the chosen sequences of the whole batch. */
  normNllTokens?: number;
  /** DPO: β. */
  beta?: number;
  /** ORPO: λ. */
  lambda?: number;
}

const REQUIRED: { readonly [K in ObjectiveKind]: readonly (keyof ObjectiveHyperValues)[] } = {
  sft: ["normTokens"],
  dpo: ["normPairs", "beta"],
  orpo: ["normPairs", "normNllTokens", "lambda"],
};

/**
 * Packs the per-step values of `kind` into the `hyper` layout, checking the ones the kind needs are
 * finite and positive. Unused slots are 1.
 * @example
 * ```ts
 * gpu.write(hyper, objectiveHyper("dpo", { normPairs: 8, beta: 0.1 }));
 * ```
 */
export function objectiveHyper(kind: ObjectiveKind, v: ObjectiveHyperValues): Float32Array {
  checkKind(kind);
  for (const name of REQUIRED[kind]) {
    const x = v[name];
    if (typeof x !== "number" || !Number.isFinite(x) || x <= 0) {
      throw new RangeError(`objective "${kind}": ${name} must be a finite number > 0, got ${x}`);
    }
  }
  const out = new Float32Array(OBJECTIVE_HYPER_LENGTH);
  out[OBJECTIVE_HYPER.normTokens] = v.normTokens ?? 1;
  out[OBJECTIVE_HYPER.normPairs] = v.normPairs ?? 1;
  out[OBJECTIVE_HYPER.normNllTokens] = v.normNllTokens ?? 1;
  out[OBJECTIVE_HYPER.coefficient] = (kind === "orpo" ? v.lambda : v.beta) ?? 1;
  return out;
}

/**
 * Cap on a completion's mean log-prob before ORPO takes its log odds (value and gradient both use the
 * capped mean): a completion whose every token log-prob rounds to 0 has infinite odds, where TRL yields NaN.
 * Means below the cap, i.e. every realistic one, are untouched.
 * @example
 * ```ts
 * const a = Math.min(meanLogp, MAX_MEAN_LOGP); // as the ORPO pass does before taking log odds
 * ```
 */
export const MAX_MEAN_LOGP: number = -1e-7;

const WG_SEQ = 128;
const WG_PAIR = 64;
const WG_TOKEN = 256;

// WGSL lacks log1p and expm1, and GPU `log` is only accurate to an absolute 2⁻²¹ near 1 (Vulkan's
// precision rules), so compensated tricks built on log(1 + x) fail there. Both use series instead over the
// ranges the objectives need: log1p through atanh, log1p(x) = 2·atanh(x / (2 + x)), with |u| ≤ 1/3 for
// x in [−0.5, 1] (terms to u¹⁷ < 1e-8); expm1 through its Taylor series to x¹² for |x| < ln 2 (< 2e-12).
const WGSL_MATH = /* wgsl */ `
fn log1p_(x: f32) -> f32 {
  if (x < -0.5 || x > 1.0) { return log(1.0 + x); }
  let u = x / (2.0 + x);
  let u2 = u * u;
  let series = 1.0 + u2 * (1.0 / 3.0 + u2 * (1.0 / 5.0 + u2 * (1.0 / 7.0 + u2 * (1.0 / 9.0 + u2 * (1.0 / 11.0
    + u2 * (1.0 / 13.0 + u2 * (1.0 / 15.0 + u2 * (1.0 / 17.0))))))));
  return 2.0 * u * series;
}
fn expm1_(x: f32) -> f32 {
  if (abs(x) >= 0.6931472) { return exp(x) - 1.0; }
  return x * (1.0 + x * (1.0 / 2.0 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0 + x * (1.0 / 720.0
    + x * (1.0 / 5040.0 + x * (1.0 / 40320.0 + x * (1.0 / 362880.0 + x * (1.0 / 3628800.0
    + x * (1.0 / 39916800.0 + x * (1.0 / 479001600.0))))))))))));
}
fn softplus(x: f32) -> f32 { return max(x, 0.0) + log1p_(exp(-abs(x))); }
fn sigmoid(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
// log(1 − eᵃ) for a < 0, switching form at −ln 2 as Mächler recommends.
fn log1m_exp(a: f32) -> f32 {
  if (a < -0.6931472) { return log1p_(-exp(a)); }
  return log(-expm1_(a));
}
`;

function statsShader(withNll: boolean, withGreedy: boolean): string {
  let b = 0;
  return /* wgsl */ `
@group(0) @binding(${b++}) var<storage, read> logp: array<f32>;
@group(0) @binding(${b++}) var<storage, read> mask: array<f32>;
${withNll ? `@group(0) @binding(${b++}) var<storage, read> nll_mask: array<f32>;` : ""}
${withGreedy ? `@group(0) @binding(${b++}) var<storage, read> greedy: array<u32>;` : ""}
@group(0) @binding(${b++}) var<storage, read_write> stats: array<f32>;
struct P { sequences: u32, T: u32 }
@group(0) @binding(${b++}) var<uniform> p: P;
var<workgroup> partial: array<vec4f, ${WG_SEQ}>;
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${WG_SEQ})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let s = flat_group(wid, nwg);
  if (s >= p.sequences) { return; }
  let base = s * p.T;
  var acc = vec4f(0.0);
  for (var t = li; t < p.T; t += ${WG_SEQ}u) {
    let lp = logp[base + t];
    let m = mask[base + t];
    acc += vec4f(m * lp, m, 0.0, 0.0);
    ${withNll ? "let n = nll_mask[base + t]; acc += vec4f(0.0, 0.0, n * lp, n);" : ""}
    ${withGreedy ? "acc.z += m * f32(min(greedy[base + t], 1u));" : ""}
  }
  partial[li] = acc;
  workgroupBarrier();
  for (var stride = ${WG_SEQ / 2}u; stride > 0u; stride >>= 1u) {
    if (li < stride) { partial[li] += partial[li + stride]; }
    workgroupBarrier();
  }
  if (li == 0u) {
    let r = partial[0];
    stats[4u * s] = r.x;
    stats[4u * s + 1u] = r.y;
    stats[4u * s + 2u] = r.z;
    stats[4u * s + 3u] = r.w;
  }
}`;
}

/** The per-item body of the reduction pass: reads `stats`, writes `coef`, adds into `acc[k]`. */
function pairBody(kind: ObjectiveKind, lossType: DpoLossType): string {
  if (kind === "sft") {
    return /* wgsl */ `
  let inv_tokens = 1.0 / hyper[${OBJECTIVE_HYPER.normTokens}];
  for (var s = li; s < p.sequences; s += ${WG_PAIR}u) {
    acc[0] += -stats[4u * s] * inv_tokens;
    acc[1] += stats[4u * s + 2u] * inv_tokens;
    coef[2u * s] = -inv_tokens;
    coef[2u * s + 1u] = 0.0;
  }`;
  }
  const pairLoop = /* wgsl */ `
  let pairs = p.sequences / 2u;
  let inv_pairs = 1.0 / hyper[${OBJECTIVE_HYPER.normPairs}];
  let k = hyper[${OBJECTIVE_HYPER.coefficient}];
  for (var q = li; q < pairs; q += ${WG_PAIR}u) {
    let c = q;
    let r = q + pairs;
    coef[2u * c] = 0.0;
    coef[2u * c + 1u] = 0.0;
    coef[2u * r] = 0.0;
    coef[2u * r + 1u] = 0.0;
    let nc = stats[4u * c + 1u];
    let nr = stats[4u * r + 1u];
    if (nc == 0.0 || nr == 0.0) { continue; }`;
  if (kind === "dpo") {
    const ipo = lossType === "ipo";
    const loss = {
      sigmoid: "let loss = softplus(-k * delta);\n    let dd = -k * sigmoid(-k * delta);",
      hinge: "let h = 1.0 - k * delta;\n    let loss = max(h, 0.0);\n    let dd = select(0.0, -k, h > 0.0);",
      ipo: "let e = delta - 1.0 / (2.0 * k);\n    let loss = e * e;\n    let dd = 2.0 * e;",
    }[lossType];
    return /* wgsl */ `${pairLoop}
    // IPO works on length-averaged log-probs (policy and reference alike), as TRL's concatenated_forward.
    let wc = ${ipo ? "1.0 / nc" : "1.0"};
    let wr = ${ipo ? "1.0 / nr" : "1.0"};
    let pc = stats[4u * c] * wc;
    let pr = stats[4u * r] * wr;
    let chosen_ratio = pc - ref_logp[c] * wc;
    let rejected_ratio = pr - ref_logp[r] * wr;
    let delta = chosen_ratio - rejected_ratio;
    ${loss}
    coef[2u * c] = dd * inv_pairs * wc;
    coef[2u * r] = -dd * inv_pairs * wr;
    let rc = k * chosen_ratio;
    let rr = k * rejected_ratio;
    acc[0] += loss * inv_pairs;
    acc[1] += rc * inv_pairs;
    acc[2] += rr * inv_pairs;
    acc[3] += (rc - rr) * inv_pairs;
    acc[4] += select(0.0, inv_pairs, rc > rr);
    acc[5] += pc * inv_pairs;
    acc[6] += pr * inv_pairs;
  }`;
  }
  return /* wgsl */ `${pairLoop}
    let inv_nll = 1.0 / hyper[${OBJECTIVE_HYPER.normNllTokens}];
    let ac = min(stats[4u * c] / nc, ${MAX_MEAN_LOGP});
    let ar = min(stats[4u * r] / nr, ${MAX_MEAN_LOGP});
    let z = (ac - log1m_exp(ac)) - (ar - log1m_exp(ar));
    let ratio = -softplus(-z);
    let dz = -k * inv_pairs * sigmoid(-z);
    // d(log odds)/da = 1 / (1 − eᵃ) = −1 / expm1(a)
    coef[2u * c] = dz * (-1.0 / expm1_(ac)) / nc;
    coef[2u * c + 1u] = -inv_nll;
    coef[2u * r] = -dz * (-1.0 / expm1_(ar)) / nr;
    let nll = -stats[4u * c + 2u] * inv_nll;
    acc[0] += nll - k * ratio * inv_pairs;
    acc[1] += nll;
    acc[2] += ratio * inv_pairs;
    acc[3] += z * inv_pairs;
    acc[4] += k * ac * inv_pairs;
    acc[5] += k * ar * inv_pairs;
    acc[6] += k * (ac - ar) * inv_pairs;
    acc[7] += select(0.0, inv_pairs, ac > ar);
    acc[8] += ac * inv_pairs;
    acc[9] += ar * inv_pairs;
  }`;
}

function pairShader(kind: ObjectiveKind, lossType: DpoLossType): string {
  const nm = OBJECTIVE_METRICS[kind].length;
  const withRef = kind === "dpo";
  let b = 0;
  return /* wgsl */ `
@group(0) @binding(${b++}) var<storage, read> stats: array<f32>;
${withRef ? `@group(0) @binding(${b++}) var<storage, read> ref_logp: array<f32>;` : ""}
@group(0) @binding(${b++}) var<storage, read> hyper: array<f32>;
@group(0) @binding(${b++}) var<storage, read_write> metrics: array<f32>;
@group(0) @binding(${b++}) var<storage, read_write> coef: array<f32>;
struct P { sequences: u32 }
@group(0) @binding(${b++}) var<uniform> p: P;
var<workgroup> red: array<f32, ${nm * WG_PAIR}>;
${WGSL_MATH}
@compute @workgroup_size(${WG_PAIR})
fn main(@builtin(local_invocation_index) li: u32) {
  var acc: array<f32, ${nm}>;
  ${pairBody(kind, lossType)}
  for (var m = 0u; m < ${nm}u; m++) { red[m * ${WG_PAIR}u + li] = acc[m]; }
  workgroupBarrier();
  for (var stride = ${WG_PAIR / 2}u; stride > 0u; stride >>= 1u) {
    if (li < stride) {
      for (var m = 0u; m < ${nm}u; m++) { red[m * ${WG_PAIR}u + li] += red[m * ${WG_PAIR}u + li + stride]; }
    }
    workgroupBarrier();
  }
  if (li == 0u) {
    for (var m = 0u; m < ${nm}u; m++) { metrics[m] += red[m * ${WG_PAIR}u]; }
  }
}`;
}

function tokenShader(withNll: boolean): string {
  let b = 0;
  return /* wgsl */ `
@group(0) @binding(${b++}) var<storage, read> coef: array<f32>;
@group(0) @binding(${b++}) var<storage, read> mask: array<f32>;
${withNll ? `@group(0) @binding(${b++}) var<storage, read> nll_mask: array<f32>;` : ""}
@group(0) @binding(${b++}) var<storage, read_write> dlogp: array<f32>;
struct P { rows: u32, T: u32 }
@group(0) @binding(${b++}) var<uniform> p: P;
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${WG_TOKEN})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let r = flat_group(wid, nwg) * ${WG_TOKEN}u + li;
  if (r >= p.rows) { return; }
  let s = r / p.T;
  var d = coef[2u * s] * mask[r];
  ${withNll ? "d += coef[2u * s + 1u] * nll_mask[r];" : ""}
  dlogp[r] = d;
}`;
}

/** Arguments of {@link objectiveDispatches}. */
export interface ObjectiveArgs {
  /** Which objective; the only thing that changes between SFT, DPO and ORPO training. */
  kind: ObjectiveKind;
  /** DPO only; default `sigmoid`. */
  lossType?: DpoLossType;
  /** Per-token log-probs, f32 `[sequences·T]` (row `s·T + t` predicts token `t + 1`). */
  logp: Tensor;
  /** 1 where the token predicted at that row is a target, f32 `[sequences·T]`. */
  mask: Tensor;
  /** ORPO only: the NLL's mask, f32 `[sequences·T]`; only its chosen half is read. */
  nllMask?: Tensor;
  /** DPO only: the reference model's summed completion log-probs, f32 `[sequences]`. */
  refLogp?: Tensor;
  /**
   * SFT only: u32 `[sequences·T]`, 1 where the row's target is the argmax of its logits (the model's forward
   * writes it); `mean_token_accuracy` is their share of the masked rows, as TRL's.
   */
  greedy?: Tensor;
  /** f32 `[OBJECTIVE_HYPER_LENGTH]`, written with {@link objectiveHyper}. */
  hyper: Tensor;
  /** f32, at least `OBJECTIVE_METRICS[kind].length`; added to. */
  metrics: Tensor;
  /** d(loss)/d(logp), f32 `[sequences·T]`; overwritten. */
  dlogp: Tensor;
  /** Sequences in this micro-batch (even for DPO and ORPO: chosen, then rejected). */
  sequences: number;
  /** Rows per sequence. */
  T: number;
}

/**
 * Dispatches computing the objective's loss and metrics (added into `metrics`) and `dlogp`. Allocates two
 * small scratch tensors (per-sequence sums and coefficients) once, at build time.
 * @example
 * ```ts
 * gpu.write(hyper, objectiveHyper("orpo", { normPairs: 4, normNllTokens: 512, lambda: 0.1 }));
 * gpu.run(objectiveDispatches(gpu, { kind: "orpo", logp, mask, nllMask, hyper, metrics, dlogp, sequences: 8, T: 256 }));
 * ```
 */
export function objectiveDispatches(gpu: Gpu, a: ObjectiveArgs): Dispatch[] {
  checkArgs(a);
  const lossType = a.lossType ?? "sigmoid";
  const S = a.sequences, rows = S * a.T;
  const withNll = a.kind === "orpo";
  const nllMask = withNll ? [a.nllMask as Tensor] : [];
  const refLogp = a.kind === "dpo" ? [a.refLogp as Tensor] : [];
  const greedy = a.kind === "sft" ? [a.greedy as Tensor] : [];
  const stats = gpu.tensor(4 * S, "f32", `objective.${a.kind}.stats`);
  const coef = gpu.tensor(2 * S, "f32", `objective.${a.kind}.coef`);
  return [
    gpu.dispatch(
      statsShader(withNll, greedy.length > 0),
      [a.logp, a.mask, ...nllMask, ...greedy, stats],
      grid(S, 1),
      [S, a.T],
      "objective.stats",
    ),
    gpu.dispatch(
      pairShader(a.kind, lossType),
      [stats, ...refLogp, a.hyper, a.metrics, coef],
      [1, 1, 1],
      [S],
      `objective.${a.kind}${a.kind === "dpo" ? `.${lossType}` : ""}`,
    ),
    gpu.dispatch(
      tokenShader(withNll),
      [coef, a.mask, ...nllMask, a.dlogp],
      grid(rows, WG_TOKEN),
      [rows, a.T],
      "objective.dlogp",
    ),
  ];
}

function checkKind(kind: string): asserts kind is ObjectiveKind {
  if (!(kind in OBJECTIVE_METRICS)) {
    throw new RangeError(`objective kind "${kind}" is unknown; expected one of sft, dpo, orpo`);
  }
}

function checkArgs(a: ObjectiveArgs): void {
  checkKind(a.kind);
  const kernel = `objectiveDispatches(${a.kind})`;
  checkCount(kernel, "sequences", a.sequences, 1);
  checkCount(kernel, "T", a.T, 1);
  checkCount(kernel, "sequences·T", a.sequences * a.T, 1);
  if (a.kind !== "sft" && a.sequences % 2 !== 0) {
    throw new RangeError(
      `${kernel}: "sequences" must be even (chosen then rejected halves), got ${a.sequences}`,
    );
  }
  if (a.lossType !== undefined && (a.kind !== "dpo" || !["sigmoid", "ipo", "hinge"].includes(a.lossType))) {
    throw new RangeError(`${kernel}: lossType "${a.lossType}" applies to dpo only (sigmoid, ipo, hinge)`);
  }
  const rows = `sequences·T = ${a.sequences}·${a.T}`;
  const n = a.sequences * a.T;
  const need: [string, Tensor | undefined, number, string][] = [
    ["logp", a.logp, n, rows],
    ["mask", a.mask, n, rows],
    ["dlogp", a.dlogp, n, rows],
    ["hyper", a.hyper, OBJECTIVE_HYPER_LENGTH, "OBJECTIVE_HYPER_LENGTH"],
    ["metrics", a.metrics, OBJECTIVE_METRICS[a.kind].length, `OBJECTIVE_METRICS.${a.kind}.length`],
  ];
  if (a.kind === "orpo") need.push(["nllMask", a.nllMask, n, rows]);
  if (a.kind === "dpo") need.push(["refLogp", a.refLogp, a.sequences, "sequences"]);
  for (const [field, t, count, how] of need) {
    if (!t) throw new TypeError(`${kernel}: "${field}" is required`);
    checkTensor(kernel, field, t, "f32", count, how);
  }
  if (a.kind === "sft") {
    if (!a.greedy) throw new TypeError(`${kernel}: "greedy" is required (the forward's argmax matches)`);
    checkTensor(kernel, "greedy", a.greedy, "u32", n, rows);
  } else if (a.greedy) throw new TypeError(`${kernel}: "greedy" applies to sft only`);
  for (const [field, t] of need) {
    if (field !== "dlogp" && field !== "metrics") checkDisjoint(kernel, "dlogp", a.dlogp, field, t as Tensor);
    if (field !== "metrics") checkDisjoint(kernel, "metrics", a.metrics, field, t as Tensor);
  }
}
