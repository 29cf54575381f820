/**
 * The shell shared by one-thread-per-item kernels (elementwise ops, embedding rows, RoPE pairs): a 1-D
 * launch of {@link FLAT_WG}-thread workgroups, folded into 2-D by `grid()` when it needs more than 65,535
 * workgroups, so a kernel covers hundreds of millions of items with one dispatch.
 * @module
 */
import { grid, WGSL_FLAT_INDEX } from "../gpu/runtime.ts";

/**
 * Threads per workgroup of every flat kernel.
 *
 * @example
 * ```ts
 * const workgroups = Math.ceil(items / FLAT_WG); // before folding; flatGroups() folds past 65,535
 * ```
 */
export const FLAT_WG = 256;

/**
 * WGSL for a kernel that runs `body` once for every item index `i < count`. `declarations` holds the
 * bindings and helper functions; `count` is a WGSL expression (usually a uniform field such as `p.n`).
 *
 * @example
 * ```ts
 * const code = flatKernel(
 *   `@group(0) @binding(0) var<storage, read_write> x: array<f32>;
 *    struct P { n: u32 }
 *    @group(0) @binding(1) var<uniform> p: P;`,
 *   "p.n",
 *   "x[i] = 2.0 * x[i];",
 * );
 * gpu.dispatch(code, [x], flatGroups(n), [n]);
 * ```
 */
export function flatKernel(declarations: string, count: string, body: string): string {
  return /* wgsl */ `${declarations}
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${FLAT_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let i = flat_group(wid, nwg) * ${FLAT_WG}u + li;
  if (i >= ${count}) { return; }
  ${body}
}`;
}

/**
 * Workgroup counts for a flat kernel over `items` items.
 *
 * @example
 * ```ts
 * flatGroups(300_000_000); // [65105, 18, 1]: folded, since one dimension holds at most 65,535
 * ```
 */
export function flatGroups(items: number): [number, number, number] {
  return grid(items, FLAT_WG);
}
