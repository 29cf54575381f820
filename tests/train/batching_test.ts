import type { PreferenceExample, SftExample } from "../../train/examples.ts";
import { buildSftExamples } from "../../train/examples.ts";
import {
  batchesPerEpoch,
  type BatchingOptions,
  collatePreference,
  collateSft,
  NO_TARGET,
  planEpoch,
  preferenceBatches,
  sftBatches,
} from "../../train/batching.ts";
import { loadDataset, type SftRow } from "../../io/datasets.ts";
import { assert, assertEquals, assertNotEquals, assertThrows } from "../asserts.ts";
import { tinyTokenizer } from "../text/fixtures.ts";

const N = NO_TARGET;
const lengthsOf = (n: number) => Array.from({ length: n }, (_, i) => 1 + ((i * 37) % 23));

Deno.test("batching: an epoch plan is a deterministic partition of the examples", () => {
  const lengths = lengthsOf(103);
  const opts: BatchingOptions = { batchSize: 8, seed: 5, padId: 0, windowBatches: 4 };
  const plan = planEpoch(lengths, 0, opts);
  assertEquals(plan, planEpoch(lengths, 0, opts));
  assertEquals(plan.flat().sort((a, b) => a - b), lengths.map((_, i) => i));
  assertEquals(plan.length, batchesPerEpoch(103, opts));
  assertEquals(plan.map((b) => b.length).sort((a, b) => a - b)[0], 103 % 8);
  assertNotEquals(plan, planEpoch(lengths, 1, opts), "each epoch has its own order");
  assertNotEquals(plan, planEpoch(lengths, 0, { ...opts, seed: 6 }), "the seed changes the order");
  const dropLast = planEpoch(lengths, 0, { ...opts, dropLast: true });
  assertEquals([dropLast.length, batchesPerEpoch(103, { ...opts, dropLast: true })], [12, 12]);
  assert(dropLast.every((b) => b.length === 8));
});

Deno.test("batching: batches from one window do not overlap in length", () => {
  const lengths = lengthsOf(96);
  const plan = planEpoch(lengths, 0, { batchSize: 8, seed: 1, padId: 0, windowBatches: 100 });
  const ranges = plan.map((b) => b.map((i) => lengths[i])).map((ls) => [Math.min(...ls), Math.max(...ls)]);
  ranges.sort((a, b) => b[1] - a[1]);
  for (let k = 1; k < ranges.length; k++) {
    assert(ranges[k][1] <= ranges[k - 1][0], `overlap: ${ranges[k - 1]} / ${ranges[k]}`);
  }
  // Batch order is shuffled, not longest first.
  const maxima = plan.map((b) => Math.max(...b.map((i) => lengths[i])));
  assertNotEquals(maxima, [...maxima].sort((a, b) => b - a));
});

Deno.test("batching: SFT collation pads right and aligns targets and loss mask", () => {
  const examples: SftExample[] = [
    { ids: [5, 6, 7], labelMask: [0, 1, 1], source: "a:1" },
    { ids: [8, 9], labelMask: [1, 1], source: "a:2" },
  ];
  const b = collateSft(examples, [3, 9], { padId: 0, padMultiple: 4 });
  assertEquals([b.B, b.T, b.tokens, b.lossTokens, b.exampleIndices], [2, 4, 5, 3, [3, 9]]);
  assertEquals([...b.ids], [5, 6, 7, 0, 8, 9, 0, 0]);
  assertEquals([...b.attentionMask], [1, 1, 1, 0, 1, 1, 0, 0]);
  assertEquals([...b.labelMask], [0, 1, 1, 0, 1, 1, 0, 0]);
  assertEquals([...b.targets], [6, 7, 0, N, 9, 0, 0, N]);
  assertEquals([...b.lossMask], [1, 1, 0, 0, 1, 0, 0, 0]);
  assertEquals(b.ids.constructor, Int32Array);
  assertEquals(collateSft(examples, [0, 1], { padId: 2 }).T, 3);
  assertThrows(
    () => collateSft([{ ids: [1, 2], labelMask: [1], source: "x" }], [0], { padId: 0 }),
    RangeError,
    "row 0 has 2 ids",
  );
});

Deno.test("batching: preference collation puts all chosen rows first, then all rejected, at one T", () => {
  const pairs: PreferenceExample[] = [
    { promptIds: [1, 10], chosenIds: [11, 2], rejectedIds: [12, 13, 14, 2], source: "p:1" },
    { promptIds: [1], chosenIds: [21, 2], rejectedIds: [22, 2], source: "p:2" },
  ];
  const b = collatePreference(pairs, [0, 1], { padId: 0 });
  assertEquals([b.pairs, b.B, b.T, b.tokens], [2, 4, 6, 4 + 3 + 6 + 3]);
  assertEquals([...b.ids], [
    ...[1, 10, 11, 2, 0, 0],
    ...[1, 21, 2, 0, 0, 0],
    ...[1, 10, 12, 13, 14, 2],
    ...[1, 22, 2, 0, 0, 0],
  ]);
  assertEquals([...b.labelMask], [0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 1, 0, 0, 0]);
  assertEquals([...b.lossMask], [0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0]);
  assertEquals([...b.targets.subarray(0, 6)], [10, 11, 2, 0, 0, N]);
});

Deno.test("batching: iterators resume at an (epoch, batch) position with the same data order", () => {
  const examples: SftExample[] = lengthsOf(37).map((n, i) => ({
    ids: new Array(n).fill(i),
    labelMask: new Array(n).fill(1),
    source: `x:${i}`,
  }));
  const opts: BatchingOptions = {
    batchSize: 4,
    seed: 11,
    padId: 0,
    padMultiple: 8,
    epochs: 3,
    windowBatches: 3,
  };
  const all = [...sftBatches(examples, opts)];
  assertEquals(all.length, 3 * 10);
  assertEquals(all.map((x) => x.position).slice(9, 11), [{ epoch: 0, batch: 9 }, { epoch: 1, batch: 0 }]);
  assert(all.every((x) => x.batch.T % 8 === 0));
  const resumed = [...sftBatches(examples, opts, { epoch: 1, batch: 3 })];
  assertEquals(resumed.map((x) => x.position), all.slice(13).map((x) => x.position));
  assertEquals(resumed.map((x) => [...x.batch.ids]), all.slice(13).map((x) => [...x.batch.ids]));
  assertEquals([...sftBatches(examples, opts, { epoch: 2, batch: 10 })], []);
  assertThrows(() => [...sftBatches(examples, opts, { epoch: 0, batch: 11 })], RangeError, "resume position");

  const pairs: PreferenceExample[] = examples.map((e) => ({
    promptIds: e.ids.slice(0, 1),
    chosenIds: e.ids,
    rejectedIds: [7],
    source: e.source,
  }));
  const p = [...preferenceBatches(pairs, { ...opts, epochs: 1 })];
  assertEquals(p.length, 10);
  assertEquals(p.flatMap((x) => x.batch.exampleIndices).sort((a, b) => a - b), examples.map((_, i) => i));
  assertEquals(
    [...preferenceBatches(pairs, { ...opts, epochs: 1 }, { epoch: 0, batch: 4 })].map((
      x,
    ) => [...x.batch.ids]),
    p.slice(4).map((x) => [...x.batch.ids]),
  );
});

Deno.test("batching: length grouping cuts padding on the bundled SFT data", async () => {
  const tok = await tinyTokenizer();
  const ds = await loadDataset(new URL("../../data/ko_sft_tiny.jsonl", import.meta.url).pathname, {
    expect: "sft",
  });
  const { examples } = buildSftExamples(ds.rows as SftRow[], tok, { maxLength: 256 });
  const padding = (windowBatches: number) => {
    let pad = 0;
    for (
      const { batch } of sftBatches(examples, {
        batchSize: 8,
        seed: 3,
        padId: tok.padId!,
        padMultiple: 8,
        windowBatches,
      })
    ) {
      pad += batch.B * batch.T - batch.tokens;
    }
    return pad;
  };
  const grouped = padding(50), ungrouped = padding(1);
  console.log(`batching: padding tokens grouped ${grouped} vs ungrouped ${ungrouped}`);
  assert(grouped < ungrouped / 2, `grouping saved too little: ${grouped} vs ${ungrouped}`);
});
