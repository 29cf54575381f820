/**
 * Bad requests to the library's {@link Generator}: each is refused at once, alone, and leaves the generator
 * serving the requests beside it.
 */
import { Generator } from "../../generate/generator.ts";
import { loadLlama } from "../../model/load.ts";
import { assert, assertEquals, assertRejects } from "../asserts.ts";
import { GPU_TEST, settlesWithin, testGpu } from "../helpers.ts";
import { writeMicroModel } from "../model/micro_model.ts";

let model: Promise<string> | undefined;
function microModel(): Promise<string> {
  model ??= (async () => writeMicroModel(`${await Deno.makeTempDir({ prefix: "gen-errors-" })}/model`))();
  return model;
}

async function microGenerator(slots = 2): Promise<Generator> {
  const gpu = await testGpu();
  const loaded = await loadLlama(gpu, await microModel(), {
    trainable: false,
    maxTokens: 64,
    maxPositions: 64,
  });
  return new Generator(gpu, loaded, { slots, contextTokens: 64, stepsPerSubmit: 4 });
}

Deno.test(
  "generator: an out-of-range sampling setting is refused at once, naming the field",
  GPU_TEST,
  async () => {
    const gen = await microGenerator();
    const bad: [Record<string, number>, string][] = [
      [{ temperature: -1 }, '"temperature" must be'],
      [{ seed: -1 }, '"seed" must be an integer in [0, 2^32)'],
      [{ seed: 2 ** 32 }, '"seed"'],
      [{ topP: 1.5 }, '"topP"'],
      [{ topK: 0.5 }, '"topK"'],
      [{ repetitionPenalty: 0 }, '"repetitionPenalty"'],
      [{ temperature: NaN }, '"temperature" must be a finite number'],
    ];
    for (const [settings, message] of bad) {
      await assertRejects(
        () =>
          settlesWithin(
            gen.generate({ promptIds: [1, 5], maxNewTokens: 4, ...settings }),
            5000,
            "generate()",
          ),
        RangeError,
        message,
      );
    }
    await assertRejects(
      () => settlesWithin(gen.generate({ promptIds: [1, 5], maxNewTokens: 0 }), 5000, "generate()"),
      RangeError,
      "maxNewTokens",
    );
    // The generator still serves: a normal request after the bad ones completes.
    const ok = await settlesWithin(
      gen.generate({ promptIds: [1, 5], maxNewTokens: 4 }),
      20_000,
      "a normal request",
    );
    assertEquals(ok.ids.length, 4);
    gen.close();
  },
);

Deno.test(
  "generator: a request that fails after admission fails alone and frees its slot",
  GPU_TEST,
  async () => {
    const gen = await microGenerator(2);
    const prompt = [1, 40, 41, 42];
    const alone = (await gen.generate({ promptIds: prompt, maxNewTokens: 12 })).ids;
    // One request's token callback throws while another decodes beside it in the same batch.
    const failing = gen.generate({
      promptIds: [1, 7],
      maxNewTokens: 12,
      onTokens: () => {
        throw new Error("the client's callback broke");
      },
    });
    const beside = gen.generate({ promptIds: prompt, maxNewTokens: 12 });
    await assertRejects(() => settlesWithin(failing, 20_000, "the failing request"), Error, "callback broke");
    const other = await settlesWithin(beside, 20_000, "the request beside it");
    assertEquals(other.ids, alone, "the request beside the failure is unaffected");
    // Both slots are free again: two more requests run to completion.
    const after = await settlesWithin(
      Promise.all([
        gen.generate({ promptIds: prompt, maxNewTokens: 6 }),
        gen.generate({ promptIds: prompt, maxNewTokens: 6 }),
      ]),
      20_000,
      "requests after the failure",
    );
    assert(after.every((r) => r.ids.join() === alone.slice(0, 6).join()), "later requests decode as before");
    gen.close();
  },
);
