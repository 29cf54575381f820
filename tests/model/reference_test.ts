import { wholeTensor } from "../../gpu/row_blocks.ts";
import { parseModelConfig } from "../../io/hf_config.ts";
import { openModelFolder } from "../../io/hf_model.ts";
import { SafetensorsFile, type TensorToWrite } from "../../io/safetensors.ts";
import { normalGenerator } from "../../model/init.ts";
import type { LoraAdapter } from "../../model/llama.ts";
import { loadLlama } from "../../model/load.ts";
import {
  LINEAR_NAMES,
  linearName,
  linearShape,
  type LlamaDims,
  type RopeConfig,
} from "../../io/llama_architecture.ts";
import {
  referenceBackward,
  type ReferenceBatch,
  referenceForward,
  referenceGreedy,
  type ReferenceLora,
} from "../../model/reference.ts";
import { parseAdamwConvention } from "../../train/parity.ts";
import { writeBatch } from "../../model/inputs.ts";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../asserts.ts";
import { assertClose, GPU_TEST, testGpu } from "../helpers.ts";
import {
  type FixtureBatch,
  oracleTensors,
  type SyntheticVariant,
  syntheticWeights,
  variantConfig,
  variantDims,
  variantRope,
} from "./synthetic_fixture.ts";
import { FIXTURE_PATH } from "../kernels/fixture_reader.ts";

const PUBLIC = FIXTURE_PATH;

// ---------------------------------------------------------------------------------------------------------
// Against transformers: every quantity of the public fixture, recomputed from its inputs.

async function publicInputs() {
  const folder = await openModelFolder(`${PUBLIC}/model`);
  const weights = new Map<string, Float32Array>();
  for (const name of folder.tensorNames) weights.set(name, await folder.readF32(name));
  const exp = await SafetensorsFile.open(`${PUBLIC}/expected.safetensors`);
  const meta = JSON.parse(await Deno.readTextFile(`${PUBLIC}/meta.json`));
  const batch = async (ids: string, attention: string, labels: string): Promise<FixtureBatch> => {
    const [B, T] = exp.info(ids).shape;
    return {
      B,
      T,
      ids: await exp.readI32(ids),
      attentionMask: await exp.readI32(attention),
      labelMask: await exp.readI32(labels),
    };
  };
  const genOut = exp.info("gen.output_ids").shape[1];
  const prompt = Array.from(await exp.readI32("gen.prompt_ids"));
  return {
    exp,
    inputs: {
      dims: folder.config,
      rope: folder.config.rope,
      weights,
      sft: await batch("sft.input_ids", "sft.attention_mask", "sft.label_mask"),
      adamw: parseAdamwConvention(meta.conventions.adamw),
      pref: {
        chosen: await batch("pref.chosen_ids", "pref.chosen_attention_mask", "pref.chosen_label_mask"),
        rejected: await batch(
          "pref.rejected_ids",
          "pref.rejected_attention_mask",
          "pref.rejected_label_mask",
        ),
        refChosenLogps: await exp.readF32("pref.ref_chosen_logps"),
        refRejectedLogps: await exp.readF32("pref.ref_rejected_logps"),
        beta: (await exp.readF32("dpo.beta"))[0],
        lambda: (await exp.readF32("orpo.lambda"))[0],
      },
      gen: { promptIds: prompt, newTokens: genOut - prompt.length },
    },
  };
}

/** The README's tolerances: absolute on logits and log-probs, relative on losses, grads and parameters. */
function tolerance(name: string): { atol: number; rtol: number } {
  if (/^(sft|gen)\.logits$|token_logps$/.test(name)) return { atol: 1e-4, rtol: 0 };
  if (/\.(loss|nll)$/.test(name)) return { atol: 0, rtol: 1e-4 };
  if (/\.grad\.|^adamw\./.test(name)) return { atol: 0, rtol: 1e-3 };
  return { atol: 1e-3, rtol: 0 }; // per-pair sums and averages
}

function data(t: TensorToWrite): Float32Array | Int32Array {
  return t.data as Float32Array | Int32Array;
}

Deno.test("reference: reproduces every tensor of the transformers public fixture", async () => {
  const { exp, inputs } = await publicInputs();
  const ours = oracleTensors(inputs);
  assertEquals(Object.keys(ours).sort(), exp.names().sort(), "same tensor names as the public fixture");
  for (const name of exp.names()) {
    assertEquals(ours[name].shape, exp.info(name).shape, `${name}: shape`);
    assertEquals(ours[name].dtype, exp.info(name).dtype, `${name}: dtype`);
    if (exp.info(name).dtype === "I32") {
      assertEquals(Array.from(data(ours[name])), Array.from(await exp.readI32(name)), name);
    } else {
      const { atol, rtol } = tolerance(name);
      assertClose(data(ours[name]), await exp.readF32(name), name, atol, rtol);
    }
  }
});

// ---------------------------------------------------------------------------------------------------------
// Against itself: finite differences on a tiny model with every feature on.

/** Tied, GQA 3:1, biases on q/k/v/o and the MLP, llama3 RoPE scaling, an explicit head_dim. */
const TINY: SyntheticVariant = {
  name: "tiny-everything",
  family: "llama",
  configStyle: "transformers4",
  attentionBias: true,
  mlpBias: true,
  hiddenSize: 10,
  intermediateSize: 7,
  numLayers: 2,
  numHeads: 3,
  numKvHeads: 1,
  headDim: 4,
  vocabSize: 13,
  tieWordEmbeddings: true,
  ropeTheta: 10000,
  llama3: { factor: 4, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8 },
  maxPositionEmbeddings: 32,
  sft: { T: 7, promptLen: 2, pads: [0] },
  pref: { T: 7, promptLen: 2, chosenPads: [0], rejectedPads: [0], side: "right" },
  gen: { promptLen: 2, newTokens: 1 },
  seed: 5,
};

/** Row 0 full, row 1 right-padded, row 2 left-padded (its first query rows see no key at all). */
const TINY_BATCH: ReferenceBatch = {
  B: 3,
  T: 6,
  ids: [4, 9, 1, 12, 3, 7, 5, 5, 2, 11, 0, 0, 0, 0, 8, 6, 10, 3],
  attentionMask: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1],
};

function randomArray(n: number, seed: number, std: number): Float32Array {
  const normal = normalGenerator(seed);
  return Float32Array.from({ length: n }, () => std * normal());
}

/** Rank-2 adapters on every linear of layer 0 and on q_proj and down_proj of layer 1, B non-zero. */
function tinyLora(dims: LlamaDims): ReferenceLora {
  const weights = new Map<string, Float32Array>();
  let seed = 100;
  for (let l = 0; l < dims.numLayers; l++) {
    for (const which of LINEAR_NAMES) {
      if (l === 1 && which !== "q_proj" && which !== "down_proj") continue;
      const [outF, inF] = linearShape(dims, which);
      weights.set(`${linearName(l, which)}.lora_A`, randomArray(2 * inF, seed++, 0.5));
      weights.set(`${linearName(l, which)}.lora_B`, randomArray(outF * 2, seed++, 0.5));
    }
  }
  return { scale: 1.5, weights };
}

function tinySetup() {
  const dims = variantDims(TINY), rope = variantRope(TINY);
  const weights = syntheticWeights(dims, TINY.seed);
  const lora = tinyLora(dims);
  // Random per-row coefficients make Σ c·logp a loss whose gradient reaches every path, padding rows too.
  const dlogp = randomArray(TINY_BATCH.B * TINY_BATCH.T, 77, 1);
  return { dims, rope, weights, lora, dlogp };
}

function lossOf(
  dims: LlamaDims,
  rope: RopeConfig,
  weights: Map<string, Float32Array>,
  lora: ReferenceLora,
  c: Float32Array,
): number {
  const { logp } = referenceForward(dims, rope, weights, TINY_BATCH, lora);
  let loss = 0;
  for (let r = 0; r < logp.length; r++) loss += c[r] * logp[r];
  return loss;
}

Deno.test("reference: gradients of every parameter and adapter match finite differences", () => {
  const { dims, rope, weights, lora, dlogp } = tinySetup();
  const { cache } = referenceForward(dims, rope, weights, TINY_BATCH, lora);
  const grads = referenceBackward(cache, dlogp);
  const tensors = new Map([...weights, ...lora.weights]);
  assertEquals(
    [...grads.keys()].sort(),
    [...tensors.keys()].sort(),
    "one gradient per parameter and adapter",
  );
  let seed = 1000;
  for (const [name, w] of tensors) {
    const g = grads.get(name)!;
    // One direction per tensor probes every element at once; it leans towards the gradient so that no
    // tensor's derivative along it is lost in the loss's f32 rounding noise. Richardson's extrapolation of two
    // central differences, (8·F(h/2) − F(h))/3 with F(h) = L(w + h·u) − L(w − h·u), cancels the O(h²) term
    // that this deliberately nonlinear model makes large.
    const rms = Math.sqrt(g.reduce((a, v) => a + v * v, 0) / g.length) || 1;
    const u = randomArray(w.length, seed++, 1).map((r, i) => r + g[i] / rms);
    const h = 1e-3;
    const at = (step: number) => {
      const v = w.map((x, i) => x + step * u[i]);
      const isLora = lora.weights.has(name);
      const ws = isLora ? weights : new Map(weights).set(name, v);
      const ls = isLora ? { scale: lora.scale, weights: new Map(lora.weights).set(name, v) } : lora;
      return lossOf(dims, rope, ws, ls, dlogp);
    };
    const F = (step: number) => at(step) - at(-step);
    const measured = (8 * F(h / 2) - F(h)) / 3;
    let predicted = 0;
    for (let i = 0; i < w.length; i++) predicted += 2 * h * g[i] * u[i];
    const err = Math.abs(measured - predicted);
    assert(
      err <= 1e-3 * Math.abs(predicted) + 1e-5,
      `${name}: finite difference ${measured.toExponential(6)} vs gradient ${predicted.toExponential(6)}`,
    );
  }
});

Deno.test("reference: tied embeddings get the lm_head gradient added to the embedding's", () => {
  const dims = variantDims(TINY), rope = variantRope(TINY);
  const weights = syntheticWeights(dims, TINY.seed);
  const untiedDims = { ...dims, tieWordEmbeddings: false };
  const untied = new Map(weights).set("lm_head.weight", weights.get("model.embed_tokens.weight")!);
  const dlogp = randomArray(TINY_BATCH.B * TINY_BATCH.T, 78, 1);
  const tied = referenceForward(dims, rope, weights, TINY_BATCH);
  const apart = referenceForward(untiedDims, rope, untied, TINY_BATCH);
  assertClose(tied.logits, apart.logits, "logits", 0, 0);
  const gt = referenceBackward(tied.cache, dlogp), ga = referenceBackward(apart.cache, dlogp);
  assert(!gt.has("lm_head.weight"), "a tied model has no lm_head gradient of its own");
  const sum = ga.get("model.embed_tokens.weight")!.map((v, i) => v + ga.get("lm_head.weight")![i]);
  assertClose(gt.get("model.embed_tokens.weight")!, sum, "embedding gradient", 1e-6, 1e-6);
});

Deno.test("reference: left padding only shifts positions; padded queries see no key", () => {
  const dims = variantDims(TINY), rope = variantRope(TINY);
  const weights = syntheticWeights(dims, TINY.seed);
  const V = dims.vocabSize;
  const seq = [8, 6, 10, 3];
  const alone = referenceForward(dims, rope, weights, { B: 1, T: 4, ids: seq, attentionMask: [1, 1, 1, 1] });
  // The same tokens after two pads, with positions 0..3 on the real tokens, give the same logits.
  const padded = referenceForward(dims, rope, weights, {
    B: 1,
    T: 6,
    ids: [0, 0, ...seq],
    attentionMask: [0, 0, 1, 1, 1, 1],
    positions: [0, 0, 0, 1, 2, 3],
  });
  assertClose(padded.logits.subarray(2 * V), alone.logits, "logits after left padding", 1e-6, 1e-5);
});

Deno.test("reference: greedy decoding appends the argmax of each step's last row", () => {
  const dims = variantDims(TINY), rope = variantRope(TINY);
  const weights = syntheticWeights(dims, TINY.seed);
  const V = dims.vocabSize;
  const tokens = referenceGreedy(dims, rope, weights, [4, 9], 3);
  assertEquals(tokens.length, 5);
  for (let t = 2; t < 5; t++) {
    const { logits } = referenceForward(dims, rope, weights, {
      B: 1,
      T: t,
      ids: tokens.slice(0, t),
      attentionMask: tokens.slice(0, t).map(() => 1),
    });
    const last = Array.from(logits.subarray((t - 1) * V));
    assertEquals(tokens[t], last.indexOf(Math.max(...last)), `token ${t}`);
  }
});

Deno.test("reference: bad inputs are refused with the offending name", () => {
  const dims = variantDims(TINY), rope = variantRope(TINY);
  const weights = syntheticWeights(dims, TINY.seed);
  const missing = new Map(weights);
  missing.delete("model.layers.1.mlp.up_proj.bias");
  assertThrows(
    () => referenceForward(dims, rope, missing, TINY_BATCH),
    Error,
    `"model.layers.1.mlp.up_proj.bias" (shape [7])`,
  );
  const badId = { ...TINY_BATCH, ids: Array.from(TINY_BATCH.ids, (v, i) => (i === 4 ? 13 : v)) };
  assertThrows(() => referenceForward(dims, rope, weights, badId), RangeError, "ids[4] = 13");
  const stray: ReferenceLora = {
    scale: 1,
    weights: new Map([["model.layers.0.mlp.gate.lora_A", new Float32Array(2)]]),
  };
  const e = assertThrows(() => referenceForward(dims, rope, weights, TINY_BATCH, stray), Error);
  assertStringIncludes(e.message, "model.layers.0.mlp.gate.lora_A");
  const half = { ...tinyLora(dims) };
  const oneSided = new Map(half.weights);
  oneSided.delete("model.layers.0.self_attn.v_proj.lora_B");
  assertThrows(
    () => referenceForward(dims, rope, weights, TINY_BATCH, { scale: 1, weights: oneSided }),
    Error,
    `"model.layers.0.self_attn.v_proj" has lora_A but not the other`,
  );
  assertThrows(
    () => referenceBackward(referenceForward(dims, rope, weights, TINY_BATCH).cache, [1]),
    RangeError,
  );
});

// ---------------------------------------------------------------------------------------------------------
// The GPU model with LoRA against the reference (no transformers fixture covers adapters).

Deno.test(
  "reference: the WGSL model with LoRA adapters matches it (log-probs, every gradient)",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const { dims, weights, lora, dlogp } = tinySetup();
    // Plain RoPE here: scaled tables are parity_synthetic_test.ts's concern, adapters are this test's.
    const config = parseModelConfig(variantConfig({ ...TINY, llama3: undefined }), "tiny config");
    const rope = config.rope;
    const adapters = new Map<string, LoraAdapter>();
    for (let l = 0; l < dims.numLayers; l++) {
      for (const which of LINEAR_NAMES) {
        const name = linearName(l, which);
        const a = lora.weights.get(`${name}.lora_A`), b = lora.weights.get(`${name}.lora_B`);
        if (!a || !b) continue;
        adapters.set(name, {
          a: gpu.upload(a, `${name}.lora_A`),
          b: gpu.upload(b, `${name}.lora_B`),
          gradA: gpu.tensor(a.length, "f32", `${name}.lora_A.grad`),
          gradB: gpu.tensor(b.length, "f32", `${name}.lora_B.grad`),
          rank: a.length / linearShape(dims, which)[1],
          scale: lora.scale,
        });
      }
    }
    const N = TINY_BATCH.B * TINY_BATCH.T;
    const loaded = await loadLlama(gpu, { config, weights }, {
      trainable: true,
      maxTokens: N,
      maxPositions: TINY_BATCH.T,
      lora: (linear) => adapters.get(linear),
    });
    const io = loaded.model.allocStep();
    writeBatch(gpu, io, TINY_BATCH);
    gpu.write(io.dlogp, dlogp);
    const { B, T } = TINY_BATCH;
    gpu.run([...loaded.model.forward(B, T, io), ...loaded.model.backward(B, T, io)]);

    const ref = referenceForward(dims, rope, weights, TINY_BATCH, lora);
    const refGrads = referenceBackward(ref.cache, dlogp);
    const names = [...refGrads.keys()];
    const tensors = names.map((n) => {
      const m = n.match(/^(.*)\.lora_([AB])$/);
      if (m) return m[2] === "A" ? adapters.get(m[1])!.gradA! : adapters.get(m[1])!.gradB!;
      return wholeTensor(loaded.params.blocks(n, "grad"));
    });
    const [logp, ...got] = await gpu.readMany([io.logp, ...tensors]);
    assertClose(logp as Float32Array, ref.logp, "logp", 1e-4, 0);
    names.forEach((n, i) => assertClose(got[i] as Float32Array, refGrads.get(n)!, n, 0, 1e-3));
  },
);
