/**
 * The model shapes benchmarks run: named shapes (the toolkit's tiny model, TinyLlama-1.1B, Llama-7B) and
 * the flags that change one field of them. Only the architecture matters: weights are random.
 *
 * @module
 */
import { type ModelConfig, parseModelConfig } from "../io/hf_config.ts";
import { type LlamaDims, llamaParamSpecs, numel } from "../io/llama_architecture.ts";
import { TINY_ARCHITECTURE, TINY_VOCAB } from "../model/tiny.ts";
import { positiveInt } from "./measure.ts";

/**
 * Names of the built-in model shapes.
 * @example
 * ```ts
 * const preset: ShapeName = "tinyllama";
 * ```
 */
export type ShapeName = "tiny" | "tinyllama" | "llama7b";

/**
 * config.json fields of each preset; weights are random, so only the architecture matters.
 * @example
 * ```ts
 * MODEL_SHAPES.tinyllama.hidden_size; // 2048
 * ```
 */
export const MODEL_SHAPES: Readonly<Record<ShapeName, Readonly<Record<string, number>>>> = {
  // The toolkit's tiny default model, with room for longer sequences than its own 512 positions.
  tiny: {
    hidden_size: TINY_ARCHITECTURE.hidden_size,
    intermediate_size: TINY_ARCHITECTURE.intermediate_size,
    num_hidden_layers: TINY_ARCHITECTURE.num_hidden_layers,
    num_attention_heads: TINY_ARCHITECTURE.num_attention_heads,
    num_key_value_heads: TINY_ARCHITECTURE.num_key_value_heads,
    vocab_size: TINY_VOCAB,
    max_position_embeddings: 2048,
  },
  // The shape torch_reference.py trains (TinyLlama-1.1B).
  tinyllama: {
    hidden_size: 2048,
    intermediate_size: 5632,
    num_hidden_layers: 22,
    num_attention_heads: 32,
    num_key_value_heads: 4,
    vocab_size: 32000,
    max_position_embeddings: 2048,
  },
  // Llama-2-7B.
  llama7b: {
    hidden_size: 4096,
    intermediate_size: 11008,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 32,
    vocab_size: 32000,
    max_position_embeddings: 4096,
  },
};

/** Flags that override one field of the preset, and the config.json field each sets. */
const SHAPE_FLAGS = {
  hidden: "hidden_size",
  mlp: "intermediate_size",
  layers: "num_hidden_layers",
  heads: "num_attention_heads",
  "kv-heads": "num_key_value_heads",
  vocab: "vocab_size",
  positions: "max_position_embeddings",
} as const;

/**
 * `parseArgs` option entries of the shape flags (`--preset` and the per-field overrides).
 * @example
 * ```ts
 * const { values } = parseArgs({ args: Deno.args, options: { ...SHAPE_OPTIONS, json: { type: "string" } } });
 * ```
 */
export const SHAPE_OPTIONS = {
  preset: { type: "string" },
  hidden: { type: "string" },
  mlp: { type: "string" },
  layers: { type: "string" },
  heads: { type: "string" },
  "kv-heads": { type: "string" },
  vocab: { type: "string" },
  positions: { type: "string" },
} as const;

/**
 * Usage lines of {@link SHAPE_OPTIONS}, for each script's `--help`.
 * @example
 * ```ts
 * const USAGE = `usage: deno task bench:train [options]\n${SHAPE_USAGE}`;
 * ```
 */
export const SHAPE_USAGE =
  `  --preset NAME   model shape: tiny (hidden 128, 4 layers; the default), tinyllama (1.1B, the shape of
                  torch_reference.py) or llama7b; random weights, nothing is downloaded
  --hidden N --mlp N --layers N --heads N --kv-heads N --vocab N --positions N
                  override one field of the preset`;

/**
 * A benchmark's model shape: the preset it starts from, its name (`+` when flags changed it) and config.
 * @example
 * ```ts
 * const shape: BenchShape = shapeFromFlags({ preset: "tinyllama", layers: "2" }); // name "tinyllama+"
 * ```
 */
export interface BenchShape {
  preset: ShapeName;
  name: string;
  config: ModelConfig;
}

/**
 * The model shape named by `--preset` (default `tiny`) with any per-field flags applied.
 * @example
 * ```ts
 * const { values } = parseArgs({ args: Deno.args, options: { ...SHAPE_OPTIONS } });
 * const shape = shapeFromFlags(values); // { preset: "tiny", name: "tiny", config: { hiddenSize: 128, … } }
 * ```
 */
export function shapeFromFlags(values: Partial<Record<keyof typeof SHAPE_OPTIONS, string>>): BenchShape {
  const preset = values.preset ?? "tiny";
  if (!(preset in MODEL_SHAPES)) {
    throw new Error(`--preset: "${preset}" is not one of ${Object.keys(MODEL_SHAPES).join(", ")}`);
  }
  const fields: Record<string, unknown> = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_act: "silu",
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
    ...MODEL_SHAPES[preset as ShapeName],
  };
  let changed = false;
  for (const [flag, field] of Object.entries(SHAPE_FLAGS)) {
    const text = values[flag as keyof typeof SHAPE_FLAGS];
    if (text === undefined) continue;
    fields[field] = positiveInt(`--${flag}`, text);
    changed = true;
  }
  const name = changed ? `${preset}+` : preset;
  return { preset: preset as ShapeName, name, config: parseModelConfig(fields, `--preset ${name}`) };
}

/** The architecture numbers a report records, in config.json's names. */
export function shapeSummary(config: ModelConfig): Record<string, number> {
  return {
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    head_dim: config.headDim,
    vocab_size: config.vocabSize,
  };
}

/**
 * Number of parameters of a model of `dims` (as `sum(p.numel() for p in model.parameters())` counts them).
 * @example
 * ```ts
 * countParams(shapeFromFlags({ preset: "tinyllama" }).config); // 1100048384
 * ```
 */
export function countParams(dims: LlamaDims): number {
  return llamaParamSpecs(dims).reduce((s, p) => s + numel(p.shape), 0);
}
