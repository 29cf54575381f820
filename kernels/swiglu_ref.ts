/**
 * CPU reference for SwiGLU (`silu(gate) · up`, as Llama's MLP computes `act_fn(gate_proj(x)) * up_proj(x)`)
 * and its gradient, in double precision.
 * @module
 */

/** σ(x), written so that exp never overflows. */
function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/**
 * `silu(gate) · up` elementwise.
 *
 * @example
 * ```ts
 * swigluForwardRef(new Float32Array([0, 1]), new Float32Array([5, 2])); // [0, 1.4621…]
 * ```
 */
export function swigluForwardRef(gate: Float32Array, up: Float32Array): Float32Array {
  return gate.map((g, i) => g * sigmoid(g) * up[i]);
}

/**
 * Gradients with respect to `gate` and `up` given the output gradient `dout`.
 *
 * @example
 * ```ts
 * const { dgate, dup } = swigluBackwardRef(dout, gate, up);
 * ```
 */
export function swigluBackwardRef(
  dout: Float32Array,
  gate: Float32Array,
  up: Float32Array,
): { dgate: Float32Array; dup: Float32Array } {
  const dgate = new Float32Array(gate.length);
  const dup = new Float32Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i], s = sigmoid(g);
    dup[i] = dout[i] * g * s;
    dgate[i] = dout[i] * up[i] * s * (1 + g * (1 - s));
  }
  return { dgate, dup };
}
