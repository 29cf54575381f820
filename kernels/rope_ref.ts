/**
 * CPU reference for rotate_half RoPE (Hugging Face Llama's `apply_rotary_pos_emb`:
 * `q·cos + rotate_half(q)·sin` with cos/sin repeated over both halves) and its gradient.
 * @module
 */

/**
 * Tables and sizes shared by both directions.
 *
 * @example
 * ```ts
 * const { cos, sin } = ropeTables({ headDim: 6, theta: 10000 }, 64);
 * const t: RopeRefTables = { positions: new Uint32Array([5, 0]), cos, sin, rows: 2, heads: 3, headDim: 6 };
 * ```
 */
export interface RopeRefTables {
  positions: Uint32Array;
  /** [maxPositions, headDim/2]. */
  cos: Float32Array;
  /** [maxPositions, headDim/2]. */
  sin: Float32Array;
  rows: number;
  heads: number;
  headDim: number;
}

/**
 * `x` [rows, heads·headDim] with every head's pairs (i, i + headDim/2) rotated by its row's angle.
 *
 * @example
 * ```ts
 * const y = ropeForwardRef(x, { positions, cos, sin, rows: 7, heads: 3, headDim: 6 });
 * ```
 */
export function ropeForwardRef(x: Float32Array, t: RopeRefTables): Float32Array {
  return rotateRef(x, t, 1);
}

/**
 * The gradient with respect to the input of {@link ropeForwardRef}: `dy` rotated by the opposite angle.
 *
 * @example
 * ```ts
 * const dx = ropeBackwardRef(dy, { positions, cos, sin, rows: 7, heads: 3, headDim: 6 });
 * ```
 */
export function ropeBackwardRef(dy: Float32Array, t: RopeRefTables): Float32Array {
  return rotateRef(dy, t, -1);
}

/** Rotation by ±angle; positions past the table use its last row, as the kernel does. */
function rotateRef(x: Float32Array, t: RopeRefTables, sinSign: 1 | -1): Float32Array {
  const half = t.headDim / 2;
  const maxPos = t.cos.length / half;
  const out = new Float32Array(x.length);
  for (let r = 0; r < t.rows; r++) {
    const pos = Math.min(t.positions[r], maxPos - 1);
    for (let h = 0; h < t.heads; h++) {
      const base = (r * t.heads + h) * t.headDim;
      for (let i = 0; i < half; i++) {
        const c = t.cos[pos * half + i], s = sinSign * t.sin[pos * half + i];
        const a = x[base + i], b = x[base + i + half];
        out[base + i] = a * c - b * s;
        out[base + i + half] = b * c + a * s;
      }
    }
  }
  return out;
}
