/**
 * Argument checks for kernel bindings. A kernel that reads past a tensor's end gets zeros or garbage from
 * WebGPU's robust buffer access instead of an error, so sizes and dtypes are checked in TypeScript, when the
 * dispatch is recorded, with messages that name the kernel, the argument and what was expected.
 * @module
 */
import { type DType, DTYPE_BYTES, type Tensor } from "../gpu/runtime.ts";

/** Largest count a WGSL `u32` index can hold. */
const U32_MAX = 0xffffffff;

/**
 * Throws unless `value` is an integer in [`min`, 2³²−1].
 *
 * @example
 * ```ts
 * checkCount("swigluForward", "n", n); // RangeError: swigluForward: "n" must be an integer >= 0, got -1
 * ```
 */
export function checkCount(kernel: string, field: string, value: number, min = 0): void {
  if (!Number.isInteger(value) || value < min || value > U32_MAX) {
    throw new RangeError(`${kernel}: "${field}" must be an integer >= ${min} (and < 2^32), got ${value}`);
  }
}

/**
 * Throws unless `t` holds one of `dtypes` and at least `need` elements; `how` explains `need` in the
 * message (e.g. `"rows·dim = 7·33"`).
 *
 * @example
 * ```ts
 * checkTensor("addBias", "bias", bias, "f32", cols, "cols");
 * ```
 */
export function checkTensor(
  kernel: string,
  field: string,
  t: Tensor,
  dtypes: DType | readonly DType[],
  need: number,
  how: string,
): void {
  const allowed: readonly DType[] = typeof dtypes === "string" ? [dtypes] : dtypes;
  const label = t.label ? ` (tensor "${t.label}")` : "";
  if (!allowed.includes(t.dtype)) {
    throw new TypeError(`${kernel}: "${field}"${label} is ${t.dtype}; expected ${allowed.join(" or ")}`);
  }
  if (t.length < need) {
    throw new RangeError(
      `${kernel}: "${field}"${label} holds ${t.length} elements; it needs at least ${how} = ${need}`,
    );
  }
}

/**
 * How two tensors' bound bytes relate. WebGPU rejects a dispatch where a writable binding overlaps another
 * binding of the same buffer, so a kernel that allows in-place use binds the shared tensor once; that is
 * only correct when both start at the same byte ("same": element i of one is element i of the other).
 * Any other overlap is "partial".
 *
 * @example
 * ```ts
 * bindingOverlap(x, x); // "same"
 * ```
 */
export function bindingOverlap(a: Tensor, b: Tensor): "same" | "disjoint" | "partial" {
  if (a.buffer !== b.buffer) return "disjoint";
  const [a0, a1] = boundBytes(a);
  const [b0, b1] = boundBytes(b);
  if (a1 <= b0 || b1 <= a0) return "disjoint";
  return a0 === b0 && a.dtype === b.dtype ? "same" : "partial";
}

/**
 * Throws unless `a` and `b` are bound to disjoint bytes.
 *
 * @example
 * ```ts
 * checkDisjoint("copy", "src", src, "dst", dst);
 * ```
 */
export function checkDisjoint(kernel: string, fieldA: string, a: Tensor, fieldB: string, b: Tensor): void {
  if (bindingOverlap(a, b) !== "disjoint") {
    throw new RangeError(
      `${kernel}: "${fieldA}" and "${fieldB}" share bytes of one buffer; WebGPU forbids a writable binding ` +
        `that overlaps another, so pass separate tensors`,
    );
  }
}

/** The byte range `gpu.dispatch` binds for `t` (lengths round up to 4 bytes, empty tensors bind 1 element). */
function boundBytes(t: Tensor): [number, number] {
  const bytes = Math.ceil((Math.max(t.length, 1) * DTYPE_BYTES[t.dtype]) / 4) * 4;
  return [t.offset, t.offset + bytes];
}
