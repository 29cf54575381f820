import { ropeBackward, ropeForward } from "../../kernels/rope.ts";
import { ropeBackwardRef, ropeForwardRef } from "../../kernels/rope_ref.ts";
import { ropeTables } from "../../model/rope.ts";
import { assertAlmostEquals, assertThrows } from "../asserts.ts";
import { assertClose, GPU_TEST, randn, rng, testGpu } from "../helpers.ts";

const MAX_POS = 4096;

/** Positions out of order with repeats, a large one, and (when there is room) one past the table. */
function scrambledPositions(rows: number, seed: number): Uint32Array {
  const r = rng(seed);
  const pos = Uint32Array.from({ length: rows }, () => Math.floor(r() * MAX_POS));
  if (rows > 2) pos[1] = pos[rows - 1];
  if (rows > 3) pos[2] = MAX_POS - 1;
  if (rows > 4) pos[3] = MAX_POS + 77; // clamped to the last row
  return pos;
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

// [rows, heads, headDim]: one row, a tiny head (3 pairs), many rows with Llama-like heads.
for (const [rows, heads, headDim] of [[1, 1, 16], [7, 3, 6], [13, 5, 16]]) {
  Deno.test(
    `rope: forward and backward match the reference at rows=${rows} heads=${heads} headDim=${headDim}`,
    GPU_TEST,
    async () => {
      const gpu = await testGpu();
      const tables = ropeTables({ headDim, theta: 10000 }, MAX_POS);
      const positions = scrambledPositions(rows, rows * 31 + headDim);
      const n = rows * heads * headDim;
      const x = randn(n, 1, 2), dy = randn(n, 2);
      const ref = { positions, cos: tables.cos, sin: tables.sin, rows, heads, headDim };

      const args = {
        positions: gpu.upload(positions),
        cos: gpu.upload(tables.cos),
        sin: gpu.upload(tables.sin),
        rows,
        heads,
        headDim,
      };
      const tx = gpu.upload(x), tdy = gpu.upload(dy);
      gpu.run([ropeForward(gpu, { ...args, x: tx }), ropeBackward(gpu, { ...args, dx: tdy })]);
      const [y, dx] = (await gpu.readMany([tx, tdy])) as Float32Array[];
      assertClose(y, ropeForwardRef(x, ref), "rotated x");
      assertClose(dx, ropeBackwardRef(dy, ref), "dx");
      // The backward pass is the adjoint of the forward one: <R x, dy> = <x, Rᵀ dy>.
      assertAlmostEquals(dot(y, dy), dot(x, dx), 1e-4 * n, "<Rx, dy> vs <x, Rᵀdy>");

      gpu.run([ropeBackward(gpu, { ...args, dx: tx })]); // undoes the forward rotation
      assertClose(await gpu.read(tx), x, "x after rotating there and back");
    },
  );
}

Deno.test("rope: rejects odd head sizes, mismatched tables and non-u32 positions", GPU_TEST, async () => {
  const gpu = await testGpu();
  const x = gpu.tensor(2 * 2 * 6), positions = gpu.upload(new Uint32Array([0, 1]));
  const cos = gpu.tensor(10 * 3), sin = gpu.tensor(10 * 3);
  const ok = { x, positions, cos, sin, rows: 2, heads: 2, headDim: 6 };
  assertThrows(() => ropeForward(gpu, { ...ok, headDim: 5 }), RangeError, `"headDim" must be even`);
  assertThrows(
    () => ropeForward(gpu, { ...ok, sin: gpu.tensor(27) }),
    RangeError,
    "must both be [maxPositions, headDim/2 = 3]",
  );
  assertThrows(() => ropeForward(gpu, { ...ok, positions: gpu.tensor(2, "i32") }), TypeError, `"positions"`);
  assertThrows(() => ropeForward(gpu, { ...ok, x: gpu.tensor(23) }), RangeError, "rows·heads·headDim = 24");
  assertThrows(
    () => ropeBackward(gpu, { positions, cos, sin, dx: cos, rows: 2, heads: 1, headDim: 6 }),
    RangeError,
    `"dx" and "cos" share bytes`,
  );
});
