/**
 * CPU reference for RMSNorm as Hugging Face's LlamaRMSNorm computes it in fp32:
 * `y = x / sqrt(mean(x²) + eps) * w`.
 * @module
 */

/** Forward: returns `y` [rows, dim] and `rstd` [rows] = 1 / sqrt(mean(x²) + eps). */
export function rmsnormForwardRef(
  x: Float32Array,
  w: Float32Array,
  rows: number,
  dim: number,
  eps: number,
): { y: Float32Array; rstd: Float32Array } {
  const y = new Float32Array(rows * dim);
  const rstd = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r * dim + i] ** 2;
    const s = 1 / Math.sqrt(ss / dim + eps);
    rstd[r] = s;
    for (let i = 0; i < dim; i++) y[r * dim + i] = x[r * dim + i] * s * w[i];
  }
  return { y, rstd };
}

/**
 * Backward: given `dy`, returns `dx` and `dw` (dw summed over rows).
 * With n = x·rstd: dx = rstd · (dy·w − n · mean(dy·w·n)).
 */
export function rmsnormBackwardRef(
  dy: Float32Array,
  x: Float32Array,
  w: Float32Array,
  rstd: Float32Array,
  rows: number,
  dim: number,
): { dx: Float32Array; dw: Float32Array } {
  const dx = new Float32Array(rows * dim);
  const dw = new Float32Array(dim);
  for (let r = 0; r < rows; r++) {
    const s = rstd[r];
    let dot = 0;
    for (let i = 0; i < dim; i++) {
      const n = x[r * dim + i] * s;
      dot += dy[r * dim + i] * w[i] * n;
      dw[i] += dy[r * dim + i] * n;
    }
    const mean = dot / dim;
    for (let i = 0; i < dim; i++) {
      const n = x[r * dim + i] * s;
      dx[r * dim + i] = s * (dy[r * dim + i] * w[i] - n * mean);
    }
  }
  return { dx, dw };
}
