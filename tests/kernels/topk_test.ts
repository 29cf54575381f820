import { logprobsForward, NO_TARGET } from "../../kernels/logprobs.ts";
import { topkCandidateLayout, topLogprobs, topLogprobsBlock, topLogprobsMerge } from "../../kernels/topk.ts";
import { logSumExpRef, topLogprobsBlockRef, topLogprobsRef } from "../../kernels/topk_ref.ts";
import { assert, assertEquals, assertThrows } from "../asserts.ts";
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

// The vocabulary in blocks: blocks of uneven width, k wider than some blocks (and than all but one), one
// block, and ties that straddle block boundaries. Each block's candidates must match the reference, and
// the merged top k must equal what the single-block kernel gives over the whole row, id for id.
const NONE = 0xffffffff;
for (
  const [rows, widths, k, rowOffset] of [
    [3, [74, 74, 68], 4, 1],
    [2, [3, 300, 1, 7], 20, 0],
    [4, [257, 256, 100], 300, 2],
    [2, [40, 40], 1, 0],
    [1, [9], 9, 0],
    [2, [5, 6], 11, 0],
  ] as [number, number[], number, number][]
) {
  const vocab = widths.reduce((s, w) => s + w, 0);
  Deno.test(
    `topk: vocabulary in blocks [${widths}] (k=${k}, rows=${rows}) merges to the whole row's top k`,
    GPU_TEST,
    async () => {
      const gpu = await testGpu();
      const logits = randn(rows * vocab, vocab * 7 + k, 2);
      const firsts = widths.map((_, b) => widths.slice(0, b).reduce((s, w) => s + w, 0));
      // Row 0: the maximum repeated at the last column of each block and the first of the next (ties across
      // every boundary, more of them than k when k is small), and a lower value tied across blocks too.
      const top = Math.max(...logits.subarray(0, vocab)) + 1;
      for (const f of firsts) {
        logits[f] = top;
        if (f > 0) logits[f - 1] = top;
      }
      logits[vocab - 1] =
        logits[Math.floor(vocab / 3)] =
          logits[firsts.at(-1)! + Math.floor(widths.at(-1)! / 2)];
      // Row 1: NaN at the would-be maximum and across the whole of the narrowest block (it then has fewer
      // candidates than it keeps), and −1e30 values.
      if (rows > 1) {
        const b = widths.indexOf(Math.min(...widths));
        logits.fill(NaN, vocab + firsts[b], vocab + firsts[b] + widths[b]);
        logits[vocab + (firsts.at(-1)! + 1) % vocab] = NaN;
        logits[vocab + vocab - 1] = -1e30;
      }
      const lseRef = logSumExpRef(logits, rows, vocab);
      // Row 1's NaNs make its lse NaN; a finite stand-in keeps its log-probs comparable.
      const lseIn = new Float32Array(rowOffset + rows + 1).fill(7);
      lseRef.forEach((x, r) => lseIn[rowOffset + r] = Number.isNaN(x) ? 3.5 : x);
      const lse = gpu.upload(lseIn);
      const { offsets, columns } = topkCandidateLayout(widths, k);
      const candidateValues = gpu.upload(new Float32Array(rows * columns).fill(7));
      const candidateIds = gpu.upload(new Uint32Array(rows * columns).fill(7));
      const total = rowOffset + rows + 1;
      const out = () => ({
        ids: gpu.upload(new Uint32Array(total * k).fill(7)),
        logp: gpu.upload(new Float32Array(total * k).fill(7)),
      });
      const split = out(), whole = out();
      const blockLogits = widths.map((w, b) =>
        Float32Array.from(
          { length: rows * w },
          (_, i) => logits[Math.floor(i / w) * vocab + firsts[b] + i % w],
        )
      );
      gpu.run([
        ...widths.map((w, b) =>
          topLogprobsBlock(gpu, {
            logits: gpu.upload(blockLogits[b]),
            candidateValues,
            candidateIds,
            rows,
            cols: w,
            firstColumn: firsts[b],
            k,
            candidateColumns: columns,
            candidateColumn: offsets[b],
          })
        ),
        topLogprobsMerge(gpu, {
          candidateValues,
          candidateIds,
          candidateColumns: columns,
          lse,
          ...split,
          rows,
          rowOffset,
          k,
        }),
        topLogprobs(gpu, { logits: gpu.upload(logits), lse, ...whole, rows, vocab, rowOffset, k }),
      ]);
      const [cValues, cIds, sIds, sLogp, wIds, wLogp] = await gpu.readMany([
        candidateValues,
        candidateIds,
        split.ids,
        split.logp,
        whole.ids,
        whole.logp,
      ]) as [Float32Array, Uint32Array, Uint32Array, Float32Array, Uint32Array, Float32Array];
      // Each block's candidates, in its own columns of the candidate buffer.
      widths.forEach((w, b) => {
        const ref = topLogprobsBlockRef(blockLogits[b], rows, w, firsts[b], k);
        const kept = Math.min(k, w);
        for (let r = 0; r < rows; r++) {
          const at = r * columns + offsets[b];
          const refIds = [...ref.ids.subarray(r * kept, (r + 1) * kept)];
          assertEquals([...cIds.subarray(at, at + kept)], refIds, `block ${b} row ${r} candidate ids`);
          const live = refIds.filter((id) => id !== NONE).length;
          assertEquals(
            [...cValues.subarray(at, at + live)],
            [...ref.values.subarray(r * kept, r * kept + live)],
            `block ${b} row ${r} candidate values`,
          );
        }
      });
      // The merge: the whole row's reference, and the single-block kernel's output exactly.
      const ref = topLogprobsRef(logits, rows, vocab, k);
      const from = rowOffset * k, to = (rowOffset + rows) * k;
      assertEquals([...sIds.subarray(from, to)], [...ref.ids], "merged ids");
      assertEquals(
        [...sIds],
        [...wIds],
        "merged ids = single-block ids (and rows outside the chunk untouched)",
      );
      assertEquals([...sLogp], [...wLogp], "merged log-probs = single-block log-probs");
      const live = [...ref.ids.keys()].filter((i) => ref.ids[i] !== NONE);
      assertClose(
        live.map((i) => sLogp[from + i]),
        live.map((i) =>
          logits[Math.floor(i / k) * vocab + ref.ids[i]] - lseIn[rowOffset + Math.floor(i / k)]
        ),
        "merged log-probs",
        1e-5,
      );
      if (rows > 1) {
        assert(
          ref.ids.subarray(k, 2 * k).every((id) => id === NONE || !Number.isNaN(logits[vocab + id])),
          "NaN",
        );
      }
      if (k <= 2 * widths.length - 1) {
        // Row 0's ties across the boundaries come out lowest id first.
        assertEquals(
          [...sIds.subarray(from, from + k)],
          [...firsts, ...firsts.slice(1).map((f) => f - 1)]
            .sort((a, b) => a - b).slice(0, k),
        );
      }
    },
  );
}

Deno.test("topk: the block and merge passes refuse bad layouts, naming the field", GPU_TEST, async () => {
  const gpu = await testGpu();
  const block = {
    logits: gpu.tensor(2 * 10),
    candidateValues: gpu.tensor(2 * 8),
    candidateIds: gpu.tensor(2 * 8, "u32"),
    rows: 2,
    cols: 10,
    firstColumn: 10,
    k: 4,
    candidateColumns: 8,
    candidateColumn: 4,
  };
  topLogprobsBlock(gpu, block);
  assertThrows(
    () => topLogprobsBlock(gpu, { ...block, candidateColumn: 5 }),
    RangeError,
    `"candidateColumns"`,
  );
  assertThrows(
    () => topLogprobsBlock(gpu, { ...block, candidateIds: gpu.tensor(16) }),
    TypeError,
    `"candidateIds"`,
  );
  assertThrows(() => topLogprobsBlock(gpu, { ...block, logits: gpu.tensor(19) }), RangeError, `"logits"`);
  assertThrows(
    () => topLogprobsBlock(gpu, { ...block, candidateValues: block.logits }),
    RangeError,
    `"candidateValues"`,
  );
  const merge = {
    candidateValues: block.candidateValues,
    candidateIds: block.candidateIds,
    candidateColumns: 8,
    lse: gpu.tensor(3),
    ids: gpu.tensor(3 * 4, "u32"),
    logp: gpu.tensor(3 * 4),
    rows: 2,
    rowOffset: 1,
    k: 4,
  };
  topLogprobsMerge(gpu, merge);
  assertThrows(() => topLogprobsMerge(gpu, { ...merge, k: 9 }), RangeError, `"k"`);
  assertThrows(() => topLogprobsMerge(gpu, { ...merge, lse: gpu.tensor(2) }), RangeError, `"lse"`);
  assertThrows(() => topLogprobsMerge(gpu, { ...merge, logp: gpu.tensor(11) }), RangeError, `"logp"`);
  assertEquals(topkCandidateLayout([74, 74, 68], 70), { offsets: [0, 70, 140], columns: 208 });
});
