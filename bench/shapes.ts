/**
 * The model shapes benchmarks run: named shapes (the toolkit's tiny model, TinyLlama-1.1B, Llama-7B) and
 * the flags that change one field of them. Only the architecture matters: weights are random.
 *
 * @module
 */
import { type ModelConfig, parseModelConfig } from "../io/hf_config.ts";
import { type LlamaDims, llamaParamSpecs, numel } from "../io/llama_architecture.ts";
import { TINY_ARCHITECTURE, TINY_VOCAB } from "../model/tiny.ts";
import { checkValue, type SettingsTable, type SettingValues } from "../io/settings.ts";

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

/** The config.json field each per-field flag sets. */
const SHAPE_FIELDS = {
  hidden: "hidden_size",
  mlp: "intermediate_size",
  layers: "num_hidden_layers",
  heads: "num_attention_heads",
  kvHeads: "num_key_value_heads",
  vocab: "vocab_size",
  positions: "max_position_embeddings",
} as const;

const SHAPE = "model shape (random weights, nothing is downloaded)";

const field = (name: string, what: string) =>
  ({ name, kind: "int", range: { min: 1 }, group: SHAPE, help: `override the preset's ${what}` }) as const;

/**
 * The shape flags every benchmark of a model takes (`--preset` and the per-field overrides), as a settings
 * table (io/settings.ts): a script's own table spreads it.
 * @example
 * ```ts
 * const TABLE = { ...SHAPE_SETTINGS, ...BENCH_OUTPUT_SETTINGS, steps: { name: "steps", kind: "int", help: "steps" } };
 * ```
 */
export const SHAPE_SETTINGS = {
  preset: {
    name: "preset",
    kind: "string",
    choices: Object.keys(MODEL_SHAPES),
    defaultHelp: "tiny",
    group: SHAPE,
    help: "tiny (hidden 128, 4 layers), tinyllama (1.1B, the shape of torch_reference.py) or llama7b",
  },
  hidden: field("hidden", "hidden_size"),
  mlp: field("mlp", "intermediate_size"),
  layers: field("layers", "num_hidden_layers"),
  heads: field("heads", "num_attention_heads"),
  kvHeads: field("kv_heads", "num_key_value_heads"),
  vocab: field("vocab", "vocab_size"),
  positions: field("positions", "max_position_embeddings"),
} satisfies SettingsTable;

/**
 * Flags every timing benchmark shares: the matmul tuning to use, the quick run, the JSON report.
 * @example
 * ```ts
 * const TABLE = { ...SHAPE_SETTINGS, ...BENCH_OUTPUT_SETTINGS };
 * ```
 */
export const BENCH_OUTPUT_SETTINGS = {
  tuning: {
    name: "tuning",
    kind: "string",
    metavar: "FILE",
    group: "output",
    help: "matmul tuning results to use (from bench:matmul --autotune --tuning FILE)",
  },
  quick: {
    name: "quick",
    kind: "bool",
    default: false,
    group: "output",
    help: "the smallest meaningful run",
  },
  json: {
    name: "json",
    kind: "string",
    metavar: "FILE",
    group: "output",
    help: "also write the results as JSON",
  },
} satisfies SettingsTable;

/**
 * A benchmark's model shape: the preset it starts from, its name (`+` when flags changed it) and config.
 * @example
 * ```ts
 * const shape: BenchShape = shapeFromFlags({ preset: "tinyllama", layers: 2 }); // name "tinyllama+"
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
 * const { values } = parseSettings(SHAPE_SETTINGS, Deno.args);
 * const shape = shapeFromFlags(values); // { preset: "tiny", name: "tiny", config: { hiddenSize: 128, … } }
 * ```
 */
export function shapeFromFlags(values: SettingValues<typeof SHAPE_SETTINGS>): BenchShape {
  const preset = values.preset ?? "tiny";
  if (!(preset in MODEL_SHAPES)) {
    throw new Error(`--preset: expected ${Object.keys(MODEL_SHAPES).join(" | ")}, got "${preset}"`);
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
  for (const [key, name] of Object.entries(SHAPE_FIELDS)) {
    const n = values[key as keyof typeof SHAPE_FIELDS];
    if (n === undefined) continue;
    checkValue(
      SHAPE_SETTINGS[key as keyof typeof SHAPE_FIELDS],
      n,
      `--${SHAPE_SETTINGS[key as keyof typeof SHAPE_FIELDS].name}`,
    );
    fields[name] = n;
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
