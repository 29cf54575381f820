import { logprobsForward, NO_TARGET } from "../../kernels/logprobs.ts";
import { topLogprobs } from "../../kernels/topk.ts";
import { topLogprobsRef } from "../../kernels/topk_ref.ts";
import { assertEquals, assertThrows } from "../asserts.ts";
import { assertClose, GPU_TEST, randn, testGpu } from "../helpers.ts";

// Awkward vocabularies (below, at and off the 256-thread workgroup), k from 1 to 20, a chunk placed at a
// row offset inside longer outputs, and rows with ties (the lower index comes first) and −1e30 values.
for (const [rows, vocab, k, rowOffset] of [[1, 5, 5, 0], [3, 257, 7, 2], [5, 1000, 20, 1], [2, 33, 1, 0]]) {
  Deno.test(`topk: matches the reference at rows=${rows} vocab=${vocab} k=${k}`, GPU_TEST, async () => {
    const gpu = await testGpu();
    const logits = randn(rows * vocab, vocab + k, 3);
    // Ties: row 0 repeats its first value three times further on.
    for (const i of [1, vocab - 1, Math.floor(vocab / 2)]) if (i < vocab) logits[i] = logits[0];
    if (rows > 1) logits[vocab + 3 % vocab] = -1e30;
    const total = rowOffset + rows + 1;
    const lse = gpu.tensor(total), logpAll = gpu.tensor(total);
    const ids = gpu.upload(new Uint32Array(total * k).fill(7));
    const logp = gpu.upload(new Float32Array(total * k).fill(7));
    const t = gpu.upload(logits);
    const targets = gpu.upload(new Uint32Array(total).fill(NO_TARGET));
    gpu.run([
      logprobsForward(gpu, { logits: t, targets, lse, logp: logpAll, rows, vocab, rowOffset }),
      topLogprobs(gpu, { logits: t, lse, ids, logp, rows, vocab, rowOffset, k }),
    ]);
    const [gIds, gLogp] = await gpu.readMany([ids, logp]) as [Uint32Array, Float32Array];
    const ref = topLogprobsRef(logits, rows, vocab, k);
    const from = rowOffset * k, to = (rowOffset + rows) * k;
    assertEquals([...gIds.subarray(from, to)], [...ref.ids]);
    assertClose(gLogp.subarray(from, to), ref.logp, "logp", 1e-5);
    // Rows outside the chunk are left alone.
    assertEquals([...gIds.subarray(0, from), ...gIds.subarray(to)], Array(total * k - (to - from)).fill(7));
  });
}

Deno.test(
  "topk: k beyond the vocabulary and short outputs are refused, naming the field",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const args = {
      logits: gpu.tensor(20),
      lse: gpu.tensor(2),
      ids: gpu.tensor(6, "u32"),
      logp: gpu.tensor(6),
      rows: 2,
      vocab: 10,
      rowOffset: 0,
      k: 3,
    };
    assertThrows(() => topLogprobs(gpu, { ...args, k: 11 }), RangeError, `"k"`);
    assertThrows(() => topLogprobs(gpu, { ...args, ids: gpu.tensor(5, "u32") }), RangeError, `"ids"`);
    assertThrows(() => topLogprobs(gpu, { ...args, logp: gpu.tensor(6, "u32") }), TypeError, `"logp"`);
  },
);
