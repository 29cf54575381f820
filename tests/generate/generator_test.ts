import { Generator } from "../../generate/generator.ts";
import { Gpu } from "../../gpu/runtime.ts";
import { loadLlama } from "../../model/load.ts";
import { assert, assertEquals, assertRejects } from "../asserts.ts";
import { GPU_TEST, testGpu } from "../helpers.ts";
import { FIXTURE_DIR, FIXTURE_PATH, readFixture } from "../kernels/fixture_reader.ts";

async function fixtureGenerator(slots = 4, stepsPerSubmit = 5, gpu?: Gpu) {
  gpu ??= await testGpu();
  const loaded = await loadLlama(gpu, `${FIXTURE_PATH}/model`, {
    trainable: false,
    maxTokens: 128,
    maxPositions: 128,
  });
  return new Generator(gpu, loaded, { slots, contextTokens: 128, stepsPerSubmit });
}

Deno.test(
  "generator: greedy decoding with the KV cache reproduces the oracle's tokens",
  GPU_TEST,
  async () => {
    const expected = await readFixture(new URL("expected.safetensors", FIXTURE_DIR));
    const prompt = Array.from(expected.get("gen.prompt_ids")!.data);
    const output = Array.from(expected.get("gen.output_ids")!.data);
    const gen = await fixtureGenerator();
    const r = await gen.generate({ promptIds: prompt, maxNewTokens: output.length - prompt.length });
    assertEquals(r.ids, output.slice(prompt.length));
    assertEquals([r.finishReason, r.promptTokens], ["length", prompt.length]);
  },
);

Deno.test(
  "generator: with the vocabulary projection split into row blocks (bindings of 100,000 bytes) it still does",
  GPU_TEST,
  async () => {
    const expected = await readFixture(new URL("expected.safetensors", FIXTURE_DIR));
    const prompt = Array.from(expected.get("gen.prompt_ids")!.data);
    const output = Array.from(expected.get("gen.output_ids")!.data);
    const gpu = await Gpu.create({ maxBindingBytes: 100000 });
    try {
      const gen = await fixtureGenerator(4, 5, gpu);
      assertEquals(gen.model.weights.value("lm_head.weight").blocks.length, 2);
      const r = await gen.generate({ promptIds: prompt, maxNewTokens: output.length - prompt.length });
      assertEquals(r.ids, output.slice(prompt.length));
    } finally {
      gpu.destroy();
    }
  },
);

Deno.test(
  "generator: sequences decoded together equal the same sequences decoded alone",
  GPU_TEST,
  async () => {
    const gen = await fixtureGenerator(3, 4);
    const prompts = [[5, 9, 200, 3], [77], [
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8,
      9,
      10,
      11,
      12,
      13,
      14,
      15,
      16,
      17,
      18,
      19,
      20,
    ]];
    const alone = [];
    for (const p of prompts) alone.push((await gen.generate({ promptIds: p, maxNewTokens: 9 })).ids);
    // Five at once on three slots: two wait for a free slot.
    const together = await Promise.all(
      [...prompts, prompts[0], prompts[2]].map((p) => gen.generate({ promptIds: p, maxNewTokens: 9 })),
    );
    assertEquals(together.map((r) => r.ids), [...alone, alone[0], alone[2]]);
  },
);

Deno.test("generator: seeded sampling is reproducible and the seed matters", GPU_TEST, async () => {
  const gen = await fixtureGenerator();
  const req = (seed: number) => ({
    promptIds: [5, 9, 200],
    maxNewTokens: 16,
    temperature: 1.5,
    topP: 0.95,
    topK: 50,
    seed,
  });
  const [a, b, c] = await Promise.all([gen.generate(req(7)), gen.generate(req(7)), gen.generate(req(8))]);
  assertEquals(a.ids, b.ids);
  assert(a.ids.join() !== c.ids.join(), "two seeds gave the same 16 tokens");
});

Deno.test("generator: stop ids, token callbacks and aborts end sequences", GPU_TEST, async () => {
  const gen = await fixtureGenerator();
  const greedy = (await gen.generate({ promptIds: [5, 9, 200], maxNewTokens: 12 })).ids;
  const stopAt = greedy[4];
  const stopped = await gen.generate({ promptIds: [5, 9, 200], maxNewTokens: 12, stopIds: [stopAt] });
  assertEquals(stopped.finishReason, "stop");
  assertEquals(stopped.ids, greedy.slice(0, greedy.indexOf(stopAt)));
  const seen: number[] = [];
  const cut = await gen.generate({
    promptIds: [5, 9, 200],
    maxNewTokens: 12,
    onTokens: (ids) => {
      seen.push(...ids);
      return seen.length < 3;
    },
  });
  assertEquals(cut.finishReason, "stop");
  assertEquals(cut.ids, seen);
  assert(seen.length >= 3 && seen.length < 12, `callback saw ${seen.length} tokens`);
  const controller = new AbortController();
  controller.abort();
  const aborted = await gen.generate({ promptIds: [5, 9, 200], maxNewTokens: 12, signal: controller.signal });
  assertEquals(aborted.finishReason, "abort");
  await assertRejects(() => gen.generate({ promptIds: [], maxNewTokens: 3 }), RangeError, "empty");
  await assertRejects(() => gen.generate({ promptIds: [9999], maxNewTokens: 3 }), RangeError, "vocabulary");
});
