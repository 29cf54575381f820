import { Gpu } from "../../gpu/runtime.ts";
import { type LoadedLlama, loadLlama } from "../../model/load.ts";
import { writeBatch } from "../../model/inputs.ts";
import { type ScoredQuery, TokenScorer } from "../../model/scorer.ts";
import { assert, assertEquals } from "../asserts.ts";
import { assertClose, GPU_TEST, rng, testGpu } from "../helpers.ts";
import { FIXTURE_PATH } from "../kernels/fixture_reader.ts";

const MODEL = `${FIXTURE_PATH}/model`;
/** 24 positions: with 20,000-byte bindings (activation blocks of 28 rows) one sequence fits a group. */
const T = 24;

/** Three queries of random ids (one predicting past its end), the fixture's greedy continuation first. */
function queries(vocab: number) {
  const r = rng(11);
  const ids = (n: number) => Array.from({ length: n }, () => Math.floor(r() * vocab));
  return [
    { ids: [337, 188, 18, 351, 250, 283, 49, 154, 99, 99, 99, 460], scoreFrom: 6 },
    { ids: [1, ...ids(T)], scoreFrom: 3 },
    { ids: [1, ...ids(15)], scoreFrom: 0, next: true },
  ];
}

async function load(gpu: Gpu): Promise<LoadedLlama> {
  // Two sequences per batch: the scorer's [maxTokens · k] outputs for k = 100 then still fit one binding.
  return await loadLlama(gpu, MODEL, { trainable: false, maxTokens: 2 * T, maxPositions: T });
}

/** Each scored row's argmax over the whole-vocabulary logits (forwardLogits), query by query. */
async function argmaxes(
  gpu: Gpu,
  loaded: LoadedLlama,
  q: { ids: number[]; scoreFrom: number; next?: boolean },
) {
  const V = loaded.config.vocabSize, model = loaded.model;
  const n = q.ids.length - (q.next ? 0 : 1);
  const io = model.allocStep();
  writeBatch(gpu, io, { B: 1, T: n, ids: q.ids.slice(0, n), attentionMask: new Array(n).fill(1) });
  const out: number[] = [];
  for (let r0 = q.scoreFrom; r0 < n; r0 += model.fullLogitsRows) {
    const R = Math.min(model.fullLogitsRows, n - r0);
    gpu.run([...model.forwardHidden(1, n, io), ...model.forwardLogits(r0, R)]);
    const logits = await gpu.readF32(model.logitsBuffer);
    for (let r = 0; r < R; r++) {
      const row = logits.subarray(r * V, (r + 1) * V);
      out.push(row.indexOf(Math.max(...row)));
    }
  }
  return out;
}

Deno.test(
  "scorer: top-k over an LM head in 7 row blocks equals the unsplit model's, and top-1 is the argmax",
  GPU_TEST,
  async () => {
    const whole = await load(await testGpu());
    const qs = queries(whole.config.vocabSize);
    // k = 1 (is_greedy), 5, 20 (OpenAI's most) and 100, wider than a vocabulary block (74 columns).
    const ks = [1, 5, 20, 100];
    const run = async (loaded: LoadedLlama) => {
      const scorer = new TokenScorer(loaded.model.gpu, loaded, { maxLength: T });
      const out: ScoredQuery[][] = [];
      for (const topK of ks) out.push(await scorer.score(qs, { topK }));
      scorer.close();
      return out;
    };
    const want = await run(whole);
    const gpu = await Gpu.create({ maxBindingBytes: 20000 });
    try {
      const split = await load(gpu);
      assertEquals(split.params.blocks("lm_head.weight").blocks.length, 7);
      const got = await run(split);
      ks.forEach((k, ki) =>
        qs.forEach((q, qi) => {
          const [g, w] = [got[ki][qi], want[ki][qi]];
          const what = `k=${k} query ${qi}`;
          assertEquals(g.topIds!.length, (q.ids.length - (q.next ? 0 : 1) - q.scoreFrom) * k, what);
          assertEquals([...g.topIds!], [...w.topIds!], `${what} top ids`);
          assertClose(g.topLogprobs!, w.topLogprobs!, `${what} top log-probs`, 1e-5);
          assertClose(
            g.logprobs.filter((x) => !Number.isNaN(x)),
            w.logprobs.filter((x) => !Number.isNaN(x)),
            what,
          );
          assertEquals([...g.greedy], [...w.greedy], `${what} greedy`);
          // Best first: log-probs never increase along a row's k entries.
          for (let i = 1; i < g.topLogprobs!.length; i++) {
            if (i % k !== 0) assert(g.topLogprobs![i] <= g.topLogprobs![i - 1], `${what} order at ${i}`);
          }
        })
      );
      // Top-1 is the argmax of the whole-vocabulary logits, and greedy is 1 exactly where the target is it.
      for (const [qi, q] of qs.entries()) {
        const arg = await argmaxes(gpu, split, q);
        const s = got[0][qi];
        assertEquals([...s.topIds!], arg, `query ${qi} top-1 = argmax`);
        const targets = q.ids.slice(q.scoreFrom + 1);
        assertEquals([...s.greedy].slice(0, targets.length), targets.map((t, i) => (t === arg[i] ? 1 : 0)));
      }
      // The fixture's greedy continuation is greedy at every step.
      assertEquals([...got[0][0].greedy], [1, 1, 1, 1, 1]);
    } finally {
      gpu.destroy();
    }
  },
);
