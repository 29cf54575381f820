/**
 * The Llama-family architecture (llama, mistral, qwen2) as Hugging Face checkpoints describe it, defined
 * once: the numbers that size a model ({@link LlamaDims}), its rotary embedding ({@link RopeConfig}), and
 * every parameter's name and shape in transformers' state-dict order ({@link llamaParamSpecs}).
 *
 * Config parsing (`hf_config.ts`) fills these types, folder reading and saving (`hf_model.ts`) check and
 * write these tensors, and the model (`model/`) allocates, initialises and runs them. It lives in io/
 * because the names and shapes are the schema of the checkpoint format, and io/ may not import model/.
 *
 * @module
 */

/**
 * The architecture numbers: what sizes the model's tensors and what its kernels need. A parsed
 * `config.json` (`ModelConfig`) is one, with more fields.
 *
 * @example
 * ```ts
 * const tiny: LlamaDims = {
 *   hiddenSize: 128, intermediateSize: 352, numLayers: 4, numHeads: 4, numKvHeads: 2, headDim: 32,
 *   vocabSize: 2048, rmsNormEps: 1e-5, tieWordEmbeddings: false,
 *   attentionBias: false, attentionOutputBias: false, mlpBias: false,
 * };
 * ```
 */
export interface LlamaDims {
  /** `hidden_size`: width of the residual stream. */
  hiddenSize: number;
  /** `intermediate_size`: width of the MLP's gate and up projections. */
  intermediateSize: number;
  /** `num_hidden_layers`: decoder layers. */
  numLayers: number;
  /** `num_attention_heads`: query heads. */
  numHeads: number;
  /** `num_key_value_heads`: key/value heads; divides `numHeads` (GQA/MQA when smaller). */
  numKvHeads: number;
  /** `head_dim`, or `hidden_size / num_attention_heads` when absent. */
  headDim: number;
  /** `vocab_size`: rows of the embedding and of the LM head. */
  vocabSize: number;
  /** `rms_norm_eps`: epsilon of every RMSNorm. */
  rmsNormEps: number;
  /** `tie_word_embeddings`: the LM head reuses the embedding matrix (no `lm_head.weight`). */
  tieWordEmbeddings: boolean;
  /** Biases on the q, k and v projections (qwen2 always; llama when `attention_bias`). */
  attentionBias: boolean;
  /** Bias on the output projection (llama's `attention_bias` covers it; qwen2 has none). */
  attentionOutputBias: boolean;
  /** Biases on gate, up and down projections (llama's `mlp_bias`). */
  mlpBias: boolean;
}

/**
 * RoPE frequency scaling as transformers applies it; absent for the default (unscaled) rotary embedding.
 *
 * @example
 * ```ts
 * // config.json: "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
 * //   "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
 * const scaling: RopeScaling = {
 *   type: "llama3", factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192,
 * };
 * ```
 */
export type RopeScaling =
  | { type: "linear"; factor: number }
  | {
    type: "llama3";
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalMaxPositionEmbeddings: number;
  };

/**
 * Rotary embedding parameters: what the RoPE tables depend on.
 *
 * @example
 * ```ts
 * const tinyLlama: RopeConfig = { headDim: 64, theta: 10000 };
 * ```
 */
export interface RopeConfig {
  /** Dimensions rotated per head (the whole head for this family); even. */
  headDim: number;
  /** Base of the inverse frequencies, `rope_theta`. */
  theta: number;
  /** Frequency scaling from `rope_scaling` / `rope_parameters`; absent for the plain rotary embedding. */
  scaling?: RopeScaling;
}

/**
 * One parameter: its Hugging Face name, shape, and whether weight decay applies to it.
 *
 * @example
 * ```ts
 * const norm: ParamSpec = { name: "model.norm.weight", shape: [2048], decay: false };
 * ```
 */
export interface ParamSpec {
  /** Hugging Face name, e.g. `model.layers.0.self_attn.q_proj.weight`. */
  name: string;
  /** Shape in Hugging Face's layout (`[out, in]` for linear weights). */
  shape: number[];
  /** Hugging Face's Trainer decays all weights except biases and norm weights. */
  decay: boolean;
}

/** Names of the linear layers of one decoder layer, in the order the forward pass uses them. */
export const LINEAR_NAMES = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
] as const;
/** One linear layer of a decoder layer, e.g. `q_proj`. */
export type LinearName = typeof LINEAR_NAMES[number];

/** The two RMSNorms of a decoder layer: before attention and before the MLP. */
export type LayerNormName = "input_layernorm" | "post_attention_layernorm";

/** Hugging Face name of linear `which` in layer `layer` (add `.weight` or `.bias`). */
export function linearName(layer: number, which: LinearName): string {
  const block = which === "gate_proj" || which === "up_proj" || which === "down_proj" ? "mlp" : "self_attn";
  return `model.layers.${layer}.${block}.${which}`;
}

/** Hugging Face name of norm `which`'s weight in layer `layer`. */
export function layerNormName(layer: number, which: LayerNormName): string {
  return `model.layers.${layer}.${which}.weight`;
}

/** The weight the vocabulary projection uses: the embedding table when the embeddings are tied. */
export function lmHeadName(d: LlamaDims): string {
  return d.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight";
}

/** Whether linear `which` has a bias in this architecture. */
export function hasBias(d: LlamaDims, which: LinearName): boolean {
  if (which === "q_proj" || which === "k_proj" || which === "v_proj") return d.attentionBias;
  if (which === "o_proj") return d.attentionOutputBias;
  return d.mlpBias;
}

/** [out, in] of each linear layer. */
export function linearShape(d: LlamaDims, which: LinearName): [number, number] {
  const D = d.hiddenSize, I = d.intermediateSize, q = d.numHeads * d.headDim, kv = d.numKvHeads * d.headDim;
  switch (which) {
    case "q_proj":
      return [q, D];
    case "k_proj":
    case "v_proj":
      return [kv, D];
    case "o_proj":
      return [D, q];
    case "gate_proj":
    case "up_proj":
      return [I, D];
    case "down_proj":
      return [D, I];
  }
}

/**
 * Every parameter of the model, in Hugging Face's names and transformers' state-dict order (which is also
 * the order `save_pretrained` fills shards in). `lm_head.weight` is absent when the embeddings are tied.
 *
 * @example
 * ```ts
 * llamaParamSpecs(dims).map((p) => p.name); // ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", …]
 * ```
 */
export function llamaParamSpecs(d: LlamaDims): ParamSpec[] {
  const D = d.hiddenSize;
  const specs: ParamSpec[] = [{ name: "model.embed_tokens.weight", shape: [d.vocabSize, D], decay: true }];
  for (let l = 0; l < d.numLayers; l++) {
    for (const w of LINEAR_NAMES) {
      const shape = linearShape(d, w);
      specs.push({ name: `${linearName(l, w)}.weight`, shape, decay: true });
      if (hasBias(d, w)) specs.push({ name: `${linearName(l, w)}.bias`, shape: [shape[0]], decay: false });
    }
    specs.push({ name: layerNormName(l, "input_layernorm"), shape: [D], decay: false });
    specs.push({ name: layerNormName(l, "post_attention_layernorm"), shape: [D], decay: false });
  }
  specs.push({ name: "model.norm.weight", shape: [D], decay: false });
  if (!d.tieWordEmbeddings) specs.push({ name: "lm_head.weight", shape: [d.vocabSize, D], decay: true });
  return specs;
}

/** Number of elements of a shape. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
