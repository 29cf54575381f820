import { decodeAdvance, kvScatter } from "../../kernels/kvcache.ts";
import { decodeAdvanceRef, type DecodeState, kvScatterRef } from "../../kernels/kvcache_ref.ts";
import { assertEquals } from "../asserts.ts";
import { GPU_TEST, randn, testGpu } from "../helpers.ts";

Deno.test("kvcache: scatter of a prefill and of decode rows matches the reference", GPU_TEST, async () => {
  const gpu = await testGpu();
  const width = 12, kvRows = 9;
  for (
    const [rows, T, positions] of [[5, 5, [0, 1, 2, 3, 4]], [3, 1, [4, 0, 8]], [4, 2, [2, 3, 7, 9]]] as const
  ) {
    const batch = rows / T;
    const src = randn(rows * width, rows);
    const cache = randn(batch * kvRows * width, 7);
    const pos = Uint32Array.from(positions);
    const tCache = gpu.upload(cache);
    gpu.run([
      kvScatter(gpu, {
        src: gpu.upload(src),
        positions: gpu.upload(pos),
        cache: tCache,
        rows,
        T,
        kvRows,
        width,
      }),
    ]);
    assertEquals(
      await gpu.read(tCache),
      kvScatterRef(src, cache, pos, rows, T, kvRows, width),
      `rows ${rows} T ${T}`,
    );
  }
});

Deno.test(
  "kvcache: decode advance updates ids, positions, key mask and the output ring",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const slots = 3, kvRows = 5, maxNew = 2;
    let state: DecodeState = {
      ids: new Uint32Array([7, 8, 9]),
      positions: new Uint32Array([1, 3, 4]),
      keyMask: new Uint32Array(slots * kvRows),
      produced: new Uint32Array([0, 1, 2]),
      out: new Uint32Array(slots * maxNew),
    };
    const active = new Uint32Array([1, 0, 1]);
    const t = {
      ids: gpu.upload(state.ids),
      positions: gpu.upload(state.positions),
      keyMask: gpu.upload(state.keyMask),
      produced: gpu.upload(state.produced),
      out: gpu.upload(state.out),
    };
    const sampled = gpu.tensor(slots, "u32");
    const step = decodeAdvance(gpu, { sampled, active: gpu.upload(active), ...t, slots, kvRows, maxNew });
    for (const draw of [[11, 12, 13], [21, 22, 23], [31, 32, 33]]) {
      gpu.write(sampled, Uint32Array.from(draw));
      gpu.run([step]);
      state = decodeAdvanceRef(state, Uint32Array.from(draw), active, slots, kvRows, maxNew);
    }
    const got = await gpu.readMany([t.ids, t.positions, t.keyMask, t.produced, t.out]);
    assertEquals(got, [state.ids, state.positions, state.keyMask, state.produced, state.out]);
    assertEquals(state.positions, new Uint32Array([4, 3, 4])); // slot 2 stopped at kvRows − 1
    assertEquals(state.out, new Uint32Array([11, 21, 0, 0, 0, 0])); // slot 0 filled its two outputs
  },
);
