/**
 * A very small model folder for training tests: a byte-level BPE tokenizer trained on the bundled Korean
 * data and a 2-layer Llama with GQA, so a training step takes milliseconds on the CPU adapter.
 * @module
 */
import { loadDataset, rowTexts } from "../../io/datasets.ts";
import { openModelFolder, saveModelFolder } from "../../io/hf_model.ts";
import type { LoraSpec } from "../../io/peft_adapter.ts";
import { loadLoraAdapter, loraParamSpecs, mergeLora, saveLoraAdapter } from "../../train/lora.ts";
import { randn } from "../helpers.ts";
import { initLlamaWeights } from "../../model/init.ts";
import { BUNDLED_DATA } from "../../model/tiny.ts";
import { trainBpeTokenizer, writeTokenizerFiles } from "../../text/bpe_train.ts";

let tokenizerTexts: Promise<string[]> | undefined;

/** Writes a micro Llama (hidden 32, 2 layers, 2 heads, 1 KV head, vocab 384) into `dir`. */
export async function writeMicroModel(
  dir: string,
  opts: { seed?: number; tied?: boolean } = {},
): Promise<string> {
  tokenizerTexts ??= (async () => {
    const texts: string[] = [];
    for (const url of Object.values(BUNDLED_DATA)) {
      for (const row of (await loadDataset(url.pathname)).rows) texts.push(...rowTexts(row));
    }
    return texts;
  })();
  const vocab = 384;
  const tokenizer = trainBpeTokenizer(await tokenizerTexts, { vocabSize: vocab });
  const config = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: 32,
    intermediate_size: 48,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    head_dim: 16,
    vocab_size: vocab,
    max_position_embeddings: 256,
    rope_theta: 10000,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: Boolean(opts.tied),
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: 0,
  };
  const weights = initLlamaWeights({
    hiddenSize: 32,
    intermediateSize: 48,
    numLayers: 2,
    numHeads: 2,
    numKvHeads: 1,
    headDim: 16,
    vocabSize: vocab,
    rmsNormEps: 1e-5,
    tieWordEmbeddings: Boolean(opts.tied),
    attentionBias: false,
    attentionOutputBias: false,
    mlpBias: false,
  }, { seed: opts.seed ?? 1, initializerRange: 0.1 });
  const staging = await Deno.makeTempDir();
  await writeTokenizerFiles(staging, tokenizer);
  await saveModelFolder(dir, { config, tensors: weights, dtype: "F32", copyFrom: staging });
  await Deno.remove(staging, { recursive: true });
  return dir;
}

/**
 * Writes a PEFT adapter over the micro model at `baseDir` with random (non-zero) A and B, so it changes the
 * model's outputs, and returns its folder. `spec` defaults to rank 4 on q, v and down projections with a
 * rank pattern and an alpha pattern, so those paths are exercised.
 */
export async function writeMicroAdapter(
  dir: string,
  baseDir: string,
  opts: { seed?: number; spec?: LoraSpec } = {},
): Promise<string> {
  const spec: LoraSpec = opts.spec ?? {
    r: 4,
    alpha: 8,
    targets: ["q_proj", "v_proj", "down_proj"],
    rankPattern: { "layers.1.mlp.down_proj": 6 },
    alphaPattern: { v_proj: 12 },
  };
  const dims = (await openModelFolder(baseDir)).config;
  const seed = opts.seed ?? 5;
  const weights = new Map(
    loraParamSpecs(dims, spec).map((p, i) => [p.name, randn(p.shape[0] * p.shape[1], seed * 100 + i, 0.3)]),
  );
  await saveLoraAdapter(dir, weights, spec, baseDir, { dims, tokenizerFrom: baseDir });
  return dir;
}

/** Writes the merged model (base + adapter folded in) of {@link writeMicroAdapter}'s adapter into `dir`. */
export async function writeMergedModel(dir: string, baseDir: string, adapterDir: string): Promise<string> {
  const folder = await openModelFolder(baseDir);
  const base = new Map<string, Float32Array>();
  for (const name of folder.tensorNames) base.set(name, await folder.readF32(name));
  const { spec, weights } = await loadLoraAdapter(adapterDir);
  await saveModelFolder(dir, {
    config: folder.config.raw,
    tensors: mergeLora(base, weights, spec, folder.config),
    dtype: "F32",
    copyFrom: baseDir,
  });
  return dir;
}
