/**
 * What the benchmark scripts share: model shapes (presets and flags), a Llama with random weights built
 * straight on the GPU (no download, no multi-gigabyte arrays in JavaScript), timing and formatting helpers,
 * the JSON report every script writes, and the parser of `torch_reference.py`'s `RESULT torch …` lines.
 *
 * @module
 */
import type { Gpu, Tensor } from "../gpu/runtime.ts";
import { formatBytes } from "../io/bytes.ts";

export { formatBytes };
import { type ModelConfig, parseModelConfig } from "../io/hf_config.ts";
import { loadMatmulTuning } from "../kernels/matmul.ts";
import { f32ToF16 } from "../gpu/half.ts";
import { normalGenerator } from "../model/init.ts";
import { Llama } from "../model/llama.ts";
import { LINEAR_NAMES, type LlamaDims, llamaParamSpecs, numel } from "../io/llama_architecture.ts";
import { type LoadedLlama, paramDtype, weightSource } from "../model/load.ts";
import { ParamSet } from "../model/params.ts";
import { ropeTables } from "../model/rope.ts";
import { TINY_ARCHITECTURE, TINY_VOCAB } from "../model/tiny.ts";
import { initLora, loraAdapters, loraParamSpecs, type LoraSpec } from "../train/lora.ts";

// ---------------------------------------------------------------------------------------------------
// Shapes

/**
 * Names of the built-in model shapes.
 * @example
 * ```ts
 * const preset: PresetName = "tinyllama";
 * ```
 */
export type PresetName = "tiny" | "tinyllama" | "llama7b";

/**
 * config.json fields of each preset; weights are random, so only the architecture matters.
 * @example
 * ```ts
 * PRESETS.tinyllama.hidden_size; // 2048
 * ```
 */
export const PRESETS: Readonly<Record<PresetName, Readonly<Record<string, number>>>> = {
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
  preset: PresetName;
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
  if (!(preset in PRESETS)) {
    throw new Error(`--preset: "${preset}" is not one of ${Object.keys(PRESETS).join(", ")}`);
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
    ...PRESETS[preset as PresetName],
  };
  let changed = false;
  for (const [flag, field] of Object.entries(SHAPE_FLAGS)) {
    const text = values[flag as keyof typeof SHAPE_FLAGS];
    if (text === undefined) continue;
    fields[field] = positiveInt(`--${flag}`, text);
    changed = true;
  }
  const name = changed ? `${preset}+` : preset;
  return { preset: preset as PresetName, name, config: parseModelConfig(fields, `--preset ${name}`) };
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

// ---------------------------------------------------------------------------------------------------
// A model with random weights

/**
 * How {@link createRandomLlama} builds the model.
 * @example
 * ```ts
 * const opts: RandomLlamaOptions = { trainable: false, maxTokens: 1024, maxPositions: 1024, lora: loraSpecFor(16) };
 * ```
 */
export interface RandomLlamaOptions {
  /** Full fine-tuning: gradients and AdamW moments for every parameter. */
  trainable: boolean;
  /** Most rows (batch × length) one pass processes. */
  maxTokens: number;
  /** RoPE table length (at most the config's max_position_embeddings). */
  maxPositions: number;
  /** Trainable LoRA adapters beside a frozen base (excludes `trainable`). */
  lora?: LoraSpec;
  /** Hold the frozen base's matrices in f16 (needs `shader-f16`; with `lora` or for inference). */
  f16Base?: boolean;
  /** Keep only each layer's input for the backward pass and recompute the layer there. */
  gradientCheckpointing?: boolean;
  seed?: number;
}

/**
 * A model with random weights and what a benchmark needs to train or free it.
 * @example
 * ```ts
 * const m: RandomLlama = await createRandomLlama(gpu, config, { trainable: true, maxTokens: 256, maxPositions: 256 });
 * const opt = new AdamW(gpu, m.trainableSets);
 * ```
 */
export interface RandomLlama {
  loaded: LoadedLlama;
  /** Parameter sets the optimizer updates (the base when fully trainable, else the adapters; none for inference). */
  trainableSets: ParamSet[];
  /** Parameters of the model, adapters included. */
  parameters: number;
  /** Parameters the optimizer updates. */
  trainableParameters: number;
  /** Releases every GPU buffer of the model. */
  destroy(): void;
}

/** Distinct values repeated through every weight: not a power of two, so rows of a matrix do not line up. */
const PATTERN_LENGTH = (1 << 20) - 2;

/**
 * Builds a Llama of `config`'s shape with weights drawn as transformers initialises them (N(0, 0.02²), norm
 * weights 1). A few million random values are uploaded once and copied through every tensor on the GPU, so
 * a 7B model is ready in seconds; the values repeat, which changes nothing a timing measures.
 * @example
 * ```ts
 * const m = await createRandomLlama(gpu, shapeFromFlags({ preset: "tiny" }).config, {
 *   trainable: true, maxTokens: 512, maxPositions: 128,
 * });
 * m.destroy();
 * ```
 */
export async function createRandomLlama(
  gpu: Gpu,
  config: ModelConfig,
  opts: RandomLlamaOptions,
): Promise<RandomLlama> {
  if (opts.trainable && opts.lora) {
    throw new Error("a model is either fully trainable or trains LoRA adapters");
  }
  if (opts.f16Base && opts.trainable) throw new Error("--f16-base holds a frozen base: use it with LoRA");
  if (opts.f16Base && !gpu.hasF16) throw new Error(`--f16-base: ${gpu.report.description} has no shader-f16`);
  if (opts.maxPositions > config.maxPositionEmbeddings) {
    throw new RangeError(
      `${opts.maxPositions} positions exceed the shape's max_position_embeddings ` +
        `(${config.maxPositionEmbeddings}); raise it with --positions`,
    );
  }
  const seed = opts.seed ?? 0;
  const base = ParamSet.create(gpu, llamaParamSpecs(config), {
    trainable: opts.trainable,
    label: "params",
    dtypeOf: (s) => paramDtype(s, Boolean(opts.f16Base)),
  });
  await fillRandom(gpu, base, seed);
  const adapters = opts.lora ? createLora(gpu, config, opts.lora, seed + 1) : undefined;
  const tables = ropeTables(config.rope, opts.maxPositions);
  const rope = {
    cos: gpu.upload(tables.cos, "rope.cos"),
    sin: gpu.upload(tables.sin, "rope.sin"),
    maxPositions: opts.maxPositions,
  };
  const lora = adapters && opts.lora ? loraAdapters(adapters, opts.lora) : undefined;
  const model = new Llama(gpu, config, weightSource(base, lora), rope, {
    maxTokens: opts.maxTokens,
    trainable: opts.trainable || Boolean(opts.lora),
    gradientCheckpointing: opts.gradientCheckpointing,
  });
  const trainableSets = opts.trainable ? [base] : adapters ? [adapters] : [];
  return {
    loaded: { config, params: base, model },
    trainableSets,
    parameters: base.size + (adapters?.size ?? 0),
    trainableParameters: trainableSets.reduce((s, p) => s + p.size, 0),
    destroy() {
      model.destroy();
      base.destroy();
      adapters?.destroy();
    },
  };
}

function createLora(gpu: Gpu, dims: LlamaDims, spec: LoraSpec, seed: number): ParamSet {
  const set = ParamSet.create(gpu, loraParamSpecs(dims, spec), { trainable: true, label: "lora" });
  for (const [name, data] of initLora(dims, spec, seed)) gpu.write(set.value(name), data);
  return set;
}

/** Fills every value tensor of `set`: norm weights with 1, the rest by repeating one random pattern. */
async function fillRandom(gpu: Gpu, set: ParamSet, seed: number): Promise<void> {
  const normal = normalGenerator(seed);
  // The pattern is a tensor too: on an adapter with small bindings it is shorter.
  const length = Math.min(PATTERN_LENGTH, Math.floor(gpu.maxBinding / 4) - 2);
  const pattern = Float32Array.from({ length }, () => normal() * 0.02);
  const sources = { f32: gpu.upload(pattern, "fill.f32"), f16: gpu.upload(f32ToF16(pattern), "fill.f16") };
  const patternBytes = { f32: length * 4, f16: length * 2 };
  gpu.run([], (encoder) => {
    for (const spec of set.specs) {
      for (const { tensor: t } of set.blocks(spec.name).blocks) {
        if (spec.name.endsWith("norm.weight")) {
          gpu.write(t, new Float32Array(t.length).fill(1));
          continue;
        }
        const kind = t.dtype === "f16" ? "f16" : "f32";
        copyRepeated(encoder, sources[kind], patternBytes[kind], t);
      }
    }
  });
  await gpu.sync();
  for (const s of Object.values(sources)) s.buffer.destroy();
}

/** Copies `src` (`srcBytes` long) end to end into `dst` until it is full. */
function copyRepeated(encoder: GPUCommandEncoder, src: Tensor, srcBytes: number, dst: Tensor): void {
  const bytes = dst.length * (dst.dtype === "f16" ? 2 : 4);
  for (let at = 0; at < bytes; at += srcBytes) {
    // Copies move whole 4-byte words; an odd f16 tail spills into the tensor's 256-byte alignment padding.
    const n = Math.ceil(Math.min(srcBytes, bytes - at) / 4) * 4;
    encoder.copyBufferToBuffer(src.buffer, 0, dst.buffer, dst.offset + at, n);
  }
}

/**
 * The LoRA setting of torch_reference.py: rank `r`, alpha 2r, every linear layer.
 * @example
 * ```ts
 * loraSpecFor(16); // { r: 16, alpha: 32, targets: ["q_proj", …, "down_proj"] }
 * ```
 */
export function loraSpecFor(r: number): LoraSpec {
  return { r, alpha: 2 * r, targets: [...LINEAR_NAMES] };
}

// ---------------------------------------------------------------------------------------------------
// Flags, timing and formatting

/**
 * Parses a flag's value as a positive integer; the error names the flag.
 * @example
 * ```ts
 * positiveInt("--steps", "5"); // 5
 * ```
 */
export function positiveInt(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: "${text}" is not a positive integer`);
  return n;
}

/**
 * Parses an optional integer flag: `fallback` when absent, else a positive integer.
 * @example
 * ```ts
 * intFlag("--batch", values.batch, 4);
 * ```
 */
export function intFlag(flag: string, text: string | undefined, fallback: number): number {
  return text === undefined ? fallback : positiveInt(flag, text);
}

/**
 * Milliseconds `fn` takes, wall clock, awaited.
 * @example
 * ```ts
 * const ms = await wallMs(() => runner.step(mbs, 1e-5, 1));
 * ```
 */
export async function wallMs(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/**
 * Arithmetic mean (throws for an empty list: a benchmark that measured nothing must not print a figure).
 * @example
 * ```ts
 * mean([2, 4]); // 3
 * ```
 */
export function mean(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError("mean of no measurements");
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/**
 * Median (the middle of the sorted values; the mean of the two middle ones for an even count).
 * @example
 * ```ts
 * median([5, 1, 3]); // 3
 * ```
 */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError("median of no measurements");
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * A count with a metric suffix for printing.
 * @example
 * ```ts
 * formatCount(1_100_048_384); // "1.10 B"
 * ```
 */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/**
 * Loads matmul tuning results (from `bench:matmul --autotune --tuning FILE`) when the file exists; returns
 * a line to print.
 * @example
 * ```ts
 * if (values.tuning) console.log(await loadTuningIfPresent(values.tuning));
 * ```
 */
export async function loadTuningIfPresent(path: string): Promise<string> {
  try {
    return `tuning: ${await loadMatmulTuning(path)} results from ${path}`;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return `tuning: ${path} does not exist; default kernels`;
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------
// Reports

/**
 * What every script's `--json` file holds.
 * @example
 * ```ts
 * const r = JSON.parse(await Deno.readTextFile("train.json")) as BenchReport;
 * console.log(r.adapter.description, r.figures.tokensPerSec, r.ratios.vsTorchFp32);
 * ```
 */
export interface BenchReport {
  /** `train_step`, `eval_throughput` or `generate`. */
  script: string;
  /** The preset's name (`tinyllama`; `tinyllama+` when flags changed the shape). */
  preset: string;
  shape: Record<string, number>;
  adapter: {
    description: string;
    isFallback: boolean;
    vendor: string;
    architecture: string;
    backend: string;
    /** `gpu.describe()`: the line printed first. */
    line: string;
  };
  /** The run's settings (batch, steps, …). */
  settings: Record<string, unknown>;
  /** Measured figures (`…Ms`, `…PerSec`, `…Bytes`); every one positive. */
  figures: Record<string, number>;
  /** Our figure over a baseline's (> 1: we are faster). */
  ratios: Record<string, number>;
  /** Anything else worth keeping (the baseline's own numbers, notes). */
  extra?: Record<string, unknown>;
  /** ISO time the run ended. */
  date: string;
}

/**
 * The adapter part of a report.
 * @example
 * ```ts
 * adapterSummary(gpu).isFallback; // true on the CPU adapter
 * ```
 */
export function adapterSummary(gpu: Gpu): BenchReport["adapter"] {
  const r = gpu.report;
  return {
    description: r.description,
    isFallback: r.isFallback,
    vendor: r.vendor,
    architecture: r.architecture,
    backend: r.backend,
    line: gpu.describe(),
  };
}

/**
 * Writes `report` as JSON (creating the folder) and says so.
 * @example
 * ```ts
 * await writeReport("bench/results/train.json", report);
 * ```
 */
export async function writeReport(path: string, report: BenchReport): Promise<void> {
  for (const [name, value] of Object.entries(report.figures)) {
    if (!(Number.isFinite(value) && value > 0)) {
      throw new Error(`figure ${name} is ${value}, not a positive number`);
    }
  }
  const dir = path.replace(/[^/]*$/, "");
  if (dir) await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(path, JSON.stringify(report, null, 2) + "\n");
  console.log(`wrote ${path}`);
}

// ---------------------------------------------------------------------------------------------------
// torch_reference.py's output

/**
 * One `RESULT torch train …` line.
 * @example
 * ```ts
 * const fp32: TorchTrainResult | undefined = parseTorchReference(text, "torch.txt").train.find((r) => r.mode === "fp32");
 * ```
 */
export interface TorchTrainResult {
  name: string;
  /** `fp32`, `amp` (bf16 autocast) or `lora` (bf16 base, r=16 adapters). */
  mode: string;
  /** Parameters in millions, as the script rounds them (adapters included for LoRA). */
  paramsM: number;
  bs: number;
  seq: number;
  stepMs: number;
  tokS: number;
  memGB: number;
}

/**
 * One `RESULT torch matmul …` line.
 * @example
 * ```ts
 * const sgemm: TorchMatmulResult | undefined = parseTorchReference(text, "torch.txt").matmul.find((r) => !r.tf32);
 * ```
 */
export interface TorchMatmulResult {
  n: number;
  dtype: string;
  tf32: boolean;
  ms: number;
  tflops: number;
}

/**
 * Everything parsed from torch_reference.py's output.
 * @example
 * ```ts
 * const ref: TorchReference = parseTorchReference(await Deno.readTextFile("torch.txt"), "torch.txt");
 * ```
 */
export interface TorchReference {
  /** Its first line: `torch <version> <device name>`. */
  header?: string;
  train: TorchTrainResult[];
  matmul: TorchMatmulResult[];
  /** `FAIL …` lines (a mode that ran out of memory, say). */
  failures: string[];
}

/**
 * Parses the captured output of `torch_reference.py`. Lines that are not results are skipped; a result
 * line with a missing or malformed field throws naming the line number and field.
 * @example
 * ```ts
 * const ref = parseTorchReference(await Deno.readTextFile("torch.txt"), "torch.txt");
 * ref.train.find((r) => r.mode === "fp32")?.tokS; // 5917
 * ```
 */
export function parseTorchReference(text: string, file: string): TorchReference {
  const out: TorchReference = { train: [], matmul: [], failures: [] };
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    const where = `${file}:${i + 1}`;
    if (line.startsWith("torch ") && out.header === undefined) out.header = line;
    else if (line.startsWith("FAIL ")) out.failures.push(line);
    else if (line.startsWith("RESULT torch train ")) out.train.push(parseTrainLine(line, where));
    else if (line.startsWith("RESULT torch matmul ")) out.matmul.push(parseMatmulLine(line, where));
  });
  return out;
}

function keyValues(line: string): Map<string, string> {
  const kv = new Map<string, string>();
  for (const m of line.matchAll(/(\w+)=(\S+)/g)) kv.set(m[1], m[2]);
  return kv;
}

function numberField(kv: Map<string, string>, key: string, where: string, suffix = ""): number {
  const text = kv.get(key);
  const value = text !== undefined && text.endsWith(suffix)
    ? Number(text.slice(0, text.length - suffix.length))
    : NaN;
  if (!Number.isFinite(value)) {
    throw new Error(
      `${where}: field ${key} should be a number${suffix ? ` ending in ${suffix}` : ""}, got ${text}`,
    );
  }
  return value;
}

function parseTrainLine(line: string, where: string): TorchTrainResult {
  const kv = keyValues(line);
  const name = line.split(/\s+/)[3];
  const mode = kv.get("mode");
  if (!mode) throw new Error(`${where}: field mode is missing`);
  return {
    name,
    mode,
    paramsM: numberField(kv, "params", where, "M"),
    bs: numberField(kv, "bs", where),
    seq: numberField(kv, "seq", where),
    stepMs: numberField(kv, "step_ms", where),
    tokS: numberField(kv, "tok_s", where),
    memGB: numberField(kv, "mem_GB", where),
  };
}

function parseMatmulLine(line: string, where: string): TorchMatmulResult {
  const kv = keyValues(line);
  const dtype = kv.get("dtype");
  const tf32 = kv.get("tf32");
  if (!dtype) throw new Error(`${where}: field dtype is missing`);
  if (tf32 !== "True" && tf32 !== "False") throw new Error(`${where}: field tf32 should be True or False`);
  return {
    n: numberField(kv, "n", where),
    dtype,
    tf32: tf32 === "True",
    ms: numberField(kv, "ms", where),
    tflops: numberField(kv, "TFLOPs", where),
  };
}

/**
 * Whether a torch result trained the same model: its rounded parameter count (in millions, as the script
 * prints it) matches ours within rounding and 1 %.
 * @example
 * ```ts
 * sameModel(1100, 1_100_048_384); // true
 * ```
 */
export function sameModel(paramsM: number, parameters: number): boolean {
  const ours = parameters / 1e6;
  return Math.abs(ours - paramsM) <= Math.max(0.5, 0.01 * paramsM);
}
