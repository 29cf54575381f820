import { GpuLogprobModel } from "../../eval/gpu_model.ts";
import { Gpu } from "../../gpu/runtime.ts";
import { loadLlama } from "../../model/load.ts";
import { writeBatch } from "../../model/inputs.ts";
import { assertEquals } from "../asserts.ts";
import { assertClose, GPU_TEST, testGpu } from "../helpers.ts";
import { FIXTURE_PATH } from "../kernels/fixture_reader.ts";

const MODEL = `${FIXTURE_PATH}/model`;

Deno.test("gpu model: scored log-probs and greedy flags equal a direct forward pass", GPU_TEST, async () => {
  const gpu = await testGpu();
  const loaded = await loadLlama(gpu, MODEL, { trainable: false, maxTokens: 4 * 64, maxPositions: 64 });
  const V = loaded.config.vocabSize;
  const queries = [
    { ids: [1, 17, 300, 45, 45, 2, 9, 88], scoreFrom: 4 },
    { ids: [1, 5, 6], scoreFrom: 0 },
    { ids: [1, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411], scoreFrom: 11 },
  ];
  const scorer = new GpuLogprobModel(gpu, loaded, { maxLength: 64 });
  const got = await scorer.tokenLogprobs(queries);
  // Reference: each query alone, the full logits, log-softmax on the CPU.
  const io = loaded.model.allocStep();
  for (const [qi, q] of queries.entries()) {
    const T = q.ids.length - 1;
    writeBatch(gpu, io, { B: 1, T, ids: q.ids.slice(0, T), attentionMask: new Array(T).fill(1) });
    gpu.run([...loaded.model.forwardHidden(1, T, io), ...loaded.model.forwardLogits(0, T)]);
    const logits = await gpu.readF32(loaded.model.logitsBuffer);
    const want: number[] = [], greedy: number[] = [];
    for (let t = q.scoreFrom; t < T; t++) {
      const row = logits.subarray(t * V, (t + 1) * V);
      let max = -Infinity, arg = 0;
      row.forEach((x, v) => {
        if (x > max) [max, arg] = [x, v];
      });
      const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
      want.push(row[q.ids[t + 1]] - lse);
      greedy.push(arg === q.ids[t + 1] ? 1 : 0);
    }
    assertClose(got[qi].logprobs, want, `query ${qi} log-probs`, 1e-5, 1e-5);
    assertEquals(Array.from(got[qi].greedy), greedy, `query ${qi} greedy flags`);
  }
  // The fixture's greedy continuation is, by construction, greedy at every step.
  const [g] = await scorer.tokenLogprobs([{
    ids: [337, 188, 18, 351, 250, 283, 49, 154, 99, 99, 99, 460],
    scoreFrom: 6,
  }]);
  assertEquals(Array.from(g.greedy), [1, 1, 1, 1, 1]);
});

Deno.test(
  "gpu model: scoring over a split vocabulary projection and one sequence per group gives the same results",
  GPU_TEST,
  async () => {
    const queries = [
      { ids: [1, 17, 300, 45, 45, 2, 9, 88], scoreFrom: 4 },
      { ids: [337, 188, 18, 351, 250, 283, 49, 154, 99, 99, 99, 460], scoreFrom: 6 },
      { ids: [1, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411], scoreFrom: 2 },
    ];
    const score = async (gpu: Gpu) => {
      const loaded = await loadLlama(gpu, MODEL, { trainable: false, maxTokens: 4 * 64, maxPositions: 64 });
      return {
        loaded,
        scores: await new GpuLogprobModel(gpu, loaded, { maxLength: 64 }).tokenLogprobs(queries),
      };
    };
    const whole = await score(await testGpu());
    // 50,000-byte bindings: one 64-token sequence per group, the LM head in three vocabulary blocks.
    const gpu = await Gpu.create({ maxBindingBytes: 50000 });
    try {
      const split = await score(gpu);
      assertEquals(split.loaded.params.blocks("lm_head.weight").blocks.length, 3);
      assertEquals(split.loaded.model.passGroups.length, 3);
      split.scores.forEach((s, i) => {
        assertClose(s.logprobs, whole.scores[i].logprobs, `query ${i} log-probs`, 1e-5, 1e-5);
        assertEquals(Array.from(s.greedy), Array.from(whole.scores[i].greedy), `query ${i} greedy`);
      });
    } finally {
      gpu.destroy();
    }
  },
);
