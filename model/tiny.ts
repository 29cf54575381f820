/**
 * The toolkit's tiny default model: a small Llama with a byte-level BPE tokenizer trained on the bundled
 * Korean data and weights initialised as transformers does. Built on first use (no download) and
 * deterministic, so `deno task orpo` with no arguments trains something real on any machine.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { writeJsonAtomic } from "../io/atomic.ts";
import { loadDataset, rowTexts } from "../io/datasets.ts";
import { isFile } from "../io/fs.ts";
import { parseModelConfig } from "../io/hf_config.ts";
import { saveModelFolder } from "../io/hf_model.ts";
import { trainBpeTokenizer, writeTokenizerFiles } from "../text/bpe_train.ts";
import { initLlamaWeights } from "./init.ts";

/**
 * The bundled Korean data files (in the repository's data/), read for the tiny model's tokenizer and used as
 * the embedded default training data.
 * @example
 * ```ts
 * const rows = (await loadDataset(fileURLToPath(BUNDLED_DATA.preference))).rows; // 200 preference pairs
 * ```
 */
export const BUNDLED_DATA: { readonly preference: URL; readonly sft: URL } = {
  preference: new URL("../data/ko_pref_tiny.jsonl", import.meta.url),
  sft: new URL("../data/ko_sft_tiny.jsonl", import.meta.url),
};

/** Architecture of the tiny model (config.json fields). */
export const TINY_ARCHITECTURE = {
  hidden_size: 128,
  intermediate_size: 352,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 32,
  max_position_embeddings: 512,
  rope_theta: 10000.0,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: false,
} as const;

/** Tokenizer vocabulary of the tiny model (specials and 256 bytes included). */
export const TINY_VOCAB = 2048;

/**
 * The tiny model's `config.json`, as {@link ensureTinyBase} writes it.
 * @example
 * ```ts
 * tinyConfig().vocab_size; // 2048
 * ```
 */
export function tinyConfig(): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    ...TINY_ARCHITECTURE,
    vocab_size: TINY_VOCAB,
    hidden_act: "silu",
    attention_bias: false,
    attention_dropout: 0.0,
    mlp_bias: false,
    initializer_range: 0.02,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: 0,
    torch_dtype: "float32",
    use_cache: true,
  };
}

/**
 * Makes sure `dir` holds the tiny base model (config, weights, tokenizer), building it when missing.
 * Returns true when it was built now.
 * @example
 * ```ts
 * await ensureTinyBase("runs/tiny-base");
 * ```
 */
export async function ensureTinyBase(dir: string, seed = 0): Promise<boolean> {
  if (await isFile(`${dir}/config.json`) && await isFile(`${dir}/tokenizer.json`)) return false;
  const texts: string[] = [];
  for (const url of Object.values(BUNDLED_DATA)) {
    const ds = await loadDataset(fileURLToPath(url));
    for (const row of ds.rows) texts.push(...rowTexts(row));
  }
  const tokenizer = trainBpeTokenizer(texts, { vocabSize: TINY_VOCAB });
  const config = tinyConfig();
  const dims = parseModelConfig(config, "the tiny model's config");
  const weights = initLlamaWeights(dims, { seed, initializerRange: config.initializer_range as number });
  // Tokenizer files go into a staging folder that saveModelFolder copies from, so the model folder
  // appears complete or not at all.
  const staging = `${dir}.tokenizer-staging`;
  await Deno.mkdir(staging, { recursive: true });
  try {
    await writeTokenizerFiles(staging, tokenizer);
    await writeJsonAtomic(`${staging}/generation_config.json`, {
      bos_token_id: 1,
      eos_token_id: 2,
      pad_token_id: 0,
    });
    await saveModelFolder(dir, { config, tensors: weights, dtype: "F32", copyFrom: staging });
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
  return true;
}
