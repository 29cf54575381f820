import { learningRate, warmupSteps } from "../../train/schedule.ts";
import { assertAlmostEquals, assertEquals } from "../asserts.ts";

// Values computed with transformers' formulas (get_linear_schedule_with_warmup and
// get_cosine_schedule_with_warmup, num_cycles=0.5) by hand: lr · lambda(step).
Deno.test("schedule: linear warm-up then linear decay", () => {
  assertEquals(learningRate("linear", 1, 0, 4, 10), 0);
  assertEquals(learningRate("linear", 1, 2, 4, 10), 0.5);
  assertEquals(learningRate("linear", 1, 4, 4, 10), 1);
  assertAlmostEquals(learningRate("linear", 1, 7, 4, 10), 0.5, 1e-12);
  assertEquals(learningRate("linear", 1, 10, 4, 10), 0);
});

Deno.test("schedule: cosine", () => {
  assertEquals(learningRate("cosine", 2, 0, 0, 8), 2);
  assertAlmostEquals(learningRate("cosine", 2, 4, 0, 8), 1, 1e-12);
  assertAlmostEquals(learningRate("cosine", 2, 2, 0, 8), 1 + Math.SQRT1_2, 1e-12);
  assertAlmostEquals(learningRate("cosine", 2, 8, 0, 8), 0, 1e-12);
});

Deno.test("schedule: constants and warm-up ratio", () => {
  assertEquals(learningRate("constant", 3, 0, 5, 10), 3);
  assertEquals(learningRate("constant_with_warmup", 3, 1, 2, 10), 1.5);
  assertEquals(learningRate("constant_with_warmup", 3, 9, 2, 10), 3);
  assertEquals(warmupSteps(100, undefined, 0.03), 3);
  assertEquals(warmupSteps(100, 7, 0.5), 7);
  assertEquals(warmupSteps(100), 0);
});
