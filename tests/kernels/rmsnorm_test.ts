import { rmsnormBackward, rmsnormForward } from "../../kernels/rmsnorm.ts";
import { rmsnormBackwardRef, rmsnormForwardRef } from "../../kernels/rmsnorm_ref.ts";
import { assertClose, GPU_TEST, randn, testGpu } from "../helpers.ts";

// Awkward sizes: a dim that is not a multiple of the workgroup, a single row, a dim smaller than a workgroup.
for (const [rows, dim] of [[7, 301], [1, 64], [13, 5]]) {
  Deno.test(`rmsnorm: forward and backward match the reference at ${rows}x${dim}`, GPU_TEST, async () => {
    const gpu = await testGpu();
    const x = randn(rows * dim, 1, 2);
    const w = randn(dim, 2);
    const dy = randn(rows * dim, 3);
    const ref = rmsnormForwardRef(x, w, rows, dim, 1e-5);
    const refB = rmsnormBackwardRef(dy, x, w, ref.rstd, rows, dim);

    const tx = gpu.upload(x), tw = gpu.upload(w), tdy = gpu.upload(dy);
    const y = gpu.tensor(rows * dim), rstd = gpu.tensor(rows);
    const dx = gpu.upload(new Float32Array(rows * dim).fill(1)); // overwritten (accumulate off)
    const dw = gpu.upload(new Float32Array(dim).fill(0.5)); // accumulated into
    gpu.run([
      rmsnormForward(gpu, { x: tx, weight: tw, y, rstd, rows, dim, eps: 1e-5 }),
      ...rmsnormBackward(gpu, { dy: tdy, x: tx, weight: tw, rstd, dx, dweight: dw, rows, dim }),
    ]);
    const [gy, gr, gdx, gdw] = await gpu.readMany([y, rstd, dx, dw]);
    assertClose(gy as Float32Array, ref.y, "y");
    assertClose(gr as Float32Array, ref.rstd, "rstd");
    assertClose(gdx as Float32Array, refB.dx, "dx");
    assertClose(gdw as Float32Array, refB.dw.map((v) => v + 0.5), "dw (accumulated)");
  });
}
