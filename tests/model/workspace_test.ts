import {
  activationBlockRows,
  chooseLogitsRows,
  rowChunks,
  rowGroups,
  widestRow,
} from "../../model/workspace.ts";
import { shapeFromFlags } from "../../bench/shapes.ts";
import { assertEquals, assertThrows } from "../asserts.ts";

Deno.test("workspace: passes split into groups of whole sequences, one sequence at least", () => {
  assertEquals(rowGroups(5, 24, 200), [{ index: 0, s0: 0, B: 5, r0: 0, N: 120 }]);
  assertEquals(rowGroups(5, 24, 50).map((g) => [g.s0, g.B, g.r0, g.N]), [
    [0, 2, 0, 48],
    [2, 2, 48, 48],
    [4, 1, 96, 24],
  ]);
  assertThrows(() => rowGroups(2, 24, 23), RangeError, "one sequence of 24 tokens");
  assertEquals(rowChunks(5, 2), [{ r0: 0, R: 2 }, { r0: 2, R: 2 }, { r0: 4, R: 1 }]);
});

Deno.test("workspace: activation blocks hold every row that fits one binding of the widest buffer", () => {
  const dims = shapeFromFlags({ preset: "tinyllama" }).config; // widest row: the MLP's 5632
  assertEquals(widestRow(dims), 5632);
  assertEquals(widestRow(dims, 8192), 8192);
  assertEquals(activationBlockRows(dims, 4096, 2 ** 31), 4096);
  assertEquals(activationBlockRows(dims, 8192, 128 * 2 ** 20), Math.floor(2 ** 27 / (4 * 5632)));
});

Deno.test("workspace: logits rows come in 64-row tiles, or aligned steps when 64 rows do not fit", () => {
  assertEquals(chooseLogitsRows(2 ** 31, 128256, 4096, 8192), 512);
  assertEquals(chooseLogitsRows(2 ** 31, 32000, 2048, 96), 128); // one 64-row tile past the rows needed
  assertEquals(chooseLogitsRows(2 ** 31, 32000, 2048, 8192, 100), 64); // asked: at most 100
  // 20,000-byte bindings, 74-column vocabulary blocks of a 64-wide model: 67 rows fit, one tile of 64 is used.
  assertEquals(chooseLogitsRows(19968, 74, 64, 96, undefined, 7), 64);
  // 16,000 bytes: 54 rows fit, fewer than a tile; any row of a 64-wide buffer is aligned.
  assertEquals(chooseLogitsRows(16000, 74, 64, 96, undefined, 7), 54);
  // Hidden 100: rows stay 256-byte aligned only in steps of 16.
  assertEquals(chooseLogitsRows(30 * 400, 100, 100, 512), 16);
  assertThrows(() => chooseLogitsRows(1000, 100, 100, 512), RangeError, "exceed one binding");
});
