/**
 * The global sum of squared gradients over several flat chunks, for clipping by global norm. Deterministic:
 * a fixed two-pass tree reduction, no atomics, so the same gradients always give the same bits.
 *
 * Pass 1, one dispatch per chunk: each workgroup sums the squares of a strided share of the chunk into
 * one slot of a scratch tensor (allocated once, at build time). Pass 2: one workgroup sums the slots.
 * Reference: `gradnorm_ref.ts`.
 * @module
 */
import type { Dispatch, Gpu, Tensor } from "../gpu/runtime.ts";
import { checkCount, checkDisjoint, checkTensor } from "./tensor_checks.ts";

const WG = 256;
/** Workgroups per chunk at most; a chunk gets one per `WG · ITEMS_PER_THREAD` elements up to this. */
const MAX_GROUPS = 1024;
const ITEMS_PER_THREAD = 4;

const PARTIAL = /* wgsl */ `
@group(0) @binding(0) var<storage, read> grad: array<f32>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
struct P { n: u32, groups: u32, slot: u32 }
@group(0) @binding(2) var<uniform> p: P;
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  var acc = 0.0;
  for (var i = wid.x * ${WG}u + li; i < p.n; i += p.groups * ${WG}u) { let g = grad[i]; acc += g * g; }
  red[li] = acc;
  workgroupBarrier();
  for (var stride = ${WG / 2}u; stride > 0u; stride >>= 1u) {
    if (li < stride) { red[li] += red[li + stride]; }
    workgroupBarrier();
  }
  if (li == 0u) { partials[p.slot + wid.x] = red[0]; }
}`;

const FINAL = /* wgsl */ `
@group(0) @binding(0) var<storage, read> partials: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
struct P { count: u32 }
@group(0) @binding(2) var<uniform> p: P;
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32) {
  var acc = 0.0;
  for (var i = li; i < p.count; i += ${WG}u) { acc += partials[i]; }
  red[li] = acc;
  workgroupBarrier();
  for (var stride = ${WG / 2}u; stride > 0u; stride >>= 1u) {
    if (li < stride) { red[li] += red[li + stride]; }
    workgroupBarrier();
  }
  if (li == 0u) { out[0] = red[0]; }
}`;

/** Arguments of {@link gradNormSquared}. */
export interface GradNormArgs {
  /** Flat f32 gradient chunks (e.g. an arena's views); every element counts. */
  grads: readonly Tensor[];
  /** f32 `[1]`: overwritten with Σ g² over all chunks. */
  out: Tensor;
}

/**
 * Dispatches writing the sum of squares of every element of `grads` into `out[0]`.
 * @example
 * ```ts
 * const normSq = gpu.tensor(1);
 * gpu.run(gradNormSquared(gpu, { grads: gradArena.views(), out: normSq }));
 * ```
 */
export function gradNormSquared(gpu: Gpu, a: GradNormArgs): Dispatch[] {
  checkArgs(a);
  const groups = a.grads.map((g) =>
    Math.min(MAX_GROUPS, Math.max(1, Math.ceil(g.length / (WG * ITEMS_PER_THREAD))))
  );
  const count = groups.reduce((x, y) => x + y, 0);
  const partials = gpu.tensor(count, "f32", "gradnorm.partials");
  let slot = 0;
  const perChunk = a.grads.map((g, i) => {
    const d = gpu.dispatch(
      PARTIAL,
      [g, partials],
      [groups[i], 1, 1],
      [g.length, groups[i], slot],
      "gradnorm.partial",
    );
    slot += groups[i];
    return d;
  });
  return [...perChunk, gpu.dispatch(FINAL, [partials, a.out], [1, 1, 1], [count], "gradnorm.final")];
}

function checkArgs(a: GradNormArgs): void {
  const kernel = "gradNormSquared";
  if (a.grads.length === 0) throw new RangeError(`${kernel}: "grads" is empty; pass at least one chunk`);
  a.grads.forEach((g, i) => {
    checkTensor(kernel, `grads[${i}]`, g, "f32", 1, "1");
    checkCount(kernel, `grads[${i}].length`, g.length, 1);
    checkDisjoint(kernel, "out", a.out, `grads[${i}]`, g);
  });
  checkTensor(kernel, "out", a.out, "f32", 1, "1");
}
