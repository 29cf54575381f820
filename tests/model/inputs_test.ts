import { NO_TARGET } from "../../kernels/logprobs.ts";
import { nextTokenTargets, writeBatch } from "../../model/inputs.ts";
import { loadLlama } from "../../model/load.ts";
import { assertEquals, assertThrows } from "../asserts.ts";
import { GPU_TEST, testGpu } from "../helpers.ts";
import { writeMicroModel } from "./micro_model.ts";

Deno.test("model inputs: a position's target is the next token of its row, none in the last column", () => {
  assertEquals([...nextTokenTargets([5, 6, 7, 8, 9, 10], 2, 3)], [6, 7, NO_TARGET, 9, 10, NO_TARGET]);
  assertEquals([...nextTokenTargets([4], 1, 1)], [NO_TARGET]);
});

Deno.test(
  "model inputs: writeBatch fills ids, positions, key mask and derived targets",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const dir = await writeMicroModel(`${await Deno.makeTempDir({ prefix: "inputs-" })}/model`);
    const { model } = await loadLlama(gpu, dir, { trainable: false, maxTokens: 8 });
    const io = model.allocStep();
    const read = async (t: typeof io.ids, n: number): Promise<number[]> => [
      ...(await gpu.read(t) as Uint32Array).subarray(0, n),
    ];
    writeBatch(gpu, io, { B: 2, T: 3, ids: [1, 5, 2, 7, 3, 0], attentionMask: [1, 1, 1, 1, 1, 0] });
    assertEquals(await read(io.ids, 6), [1, 5, 2, 7, 3, 0]);
    assertEquals(await read(io.positions, 6), [0, 1, 2, 0, 1, 2]);
    assertEquals(await read(io.keyMask, 6), [1, 1, 1, 1, 1, 0]);
    assertEquals(await read(io.targets, 6), [5, 2, NO_TARGET, 3, 0, NO_TARGET]);
    // Given targets and positions are written as they are.
    writeBatch(gpu, io, {
      B: 1,
      T: 2,
      ids: [4, 6],
      attentionMask: [1, 1],
      targets: [9, 8],
      positions: [3, 4],
    });
    assertEquals([...await read(io.targets, 2), ...await read(io.positions, 2)], [9, 8, 3, 4]);
    assertThrows(
      () => writeBatch(gpu, io, { B: 1, T: 2, ids: [1], attentionMask: [1, 1] }),
      RangeError,
      "1×2",
    );
    assertThrows(() => writeBatch(gpu, io, { B: 1, T: 1, ids: [-1], attentionMask: [1] }), RangeError, "-1");
  },
);
