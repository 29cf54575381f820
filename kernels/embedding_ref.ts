/**
 * CPU reference for the embedding lookup and its gradient, with the kernel's rule for ids outside the
 * table: skipped (the output row keeps its prior value; no gradient).
 * @module
 */

/**
 * `prior` [rows, dim] with row r replaced by table row `ids[r] − firstId` wherever the table holds it.
 *
 * @example
 * ```ts
 * embeddingForwardRef(new Uint32Array([1, 9]), new Float32Array([0, 0, 5, 6]), 2, new Float32Array(4));
 * // Float32Array [5, 6, 0, 0]: id 9 is outside the 2-row table
 * ```
 */
export function embeddingForwardRef(
  ids: Uint32Array,
  table: Float32Array,
  dim: number,
  prior: Float32Array,
  firstId = 0,
): Float32Array {
  const out = prior.slice();
  const tableRows = table.length / dim;
  ids.forEach((id, r) => {
    const local = id - firstId;
    if (local >= 0 && local < tableRows) out.set(table.subarray(local * dim, (local + 1) * dim), r * dim);
  });
  return out;
}

/**
 * The table gradient [tableRows, dim]: for each id, the f32 sum of its rows of `dout` in row order.
 *
 * @example
 * ```ts
 * embeddingBackwardRef(new Uint32Array([1, 1]), new Float32Array([1, 2, 3, 4]), 2, 2);
 * // Float32Array [0, 0, 4, 6]
 * ```
 */
export function embeddingBackwardRef(
  ids: Uint32Array,
  dout: Float32Array,
  tableRows: number,
  dim: number,
  firstId = 0,
): Float32Array {
  const dtable = new Float32Array(tableRows * dim);
  ids.forEach((id, r) => {
    const local = id - firstId;
    if (local < 0 || local >= tableRows) return;
    for (let c = 0; c < dim; c++) dtable[local * dim + c] += dout[r * dim + c];
  });
  return dtable;
}
