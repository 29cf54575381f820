/**
 * Hugging Face model folders for the Llama family (llama, mistral, qwen2): `config.json` parsed by
 * `hf_config.ts`, weights from `model.safetensors` or a sharded index checked against the parameters the
 * config implies (`llama_architecture.ts`), and saving in the layout `save_pretrained` writes, atomically.
 *
 * @module
 */
import { isFile } from "./fs.ts";
import { join } from "node:path";
import { makeTempSiblingDir, replaceDirAtomic, sortKeysDeep, writeJsonAtomic } from "./atomic.ts";
import {
  type GenerationConfig,
  isObject,
  type ModelConfig,
  ModelFolderError,
  parseGenerationConfig,
  parseModelConfig,
  show,
} from "./hf_config.ts";
import { llamaParamSpecs, numel } from "./llama_architecture.ts";
import {
  DTYPE_SIZES,
  type ElementRange,
  type RawTensor,
  type SafetensorsDType,
  SafetensorsFile,
  type TensorToWrite,
  writeSafetensors,
} from "./safetensors.ts";

// ---------------------------------------------------------------------------------------------------------
// Reading a folder

/**
 * The parameters a config implies, with their shapes, in the order transformers' state dict lists them
 * (which is also the order shards are filled in). `lm_head.weight` is absent when the embeddings are tied.
 *
 * @example
 * ```ts
 * expectedParameterShapes(cfg).get("model.layers.0.self_attn.k_proj.weight"); // [numKvHeads * headDim, hiddenSize]
 * ```
 */
export function expectedParameterShapes(cfg: ModelConfig): Map<string, number[]> {
  return new Map(llamaParamSpecs(cfg).map((p) => [p.name, p.shape]));
}

/** Where one tensor lives. */
interface TensorLocation {
  file: SafetensorsFile;
  /** Name of the shard file inside the folder. */
  shard: string;
}

/** An opened model folder: config, validated parameter list, and lazy access to each tensor. */
export interface ModelFolder {
  /** The folder's path. */
  readonly dir: string;
  /** `config.json`, normalized and validated. */
  readonly config: ModelConfig;
  /** From `generation_config.json` when the folder has one. */
  readonly generationConfig: GenerationConfig | undefined;
  /** Parameter names in state-dict order (no `lm_head.weight` when tied). */
  readonly tensorNames: readonly string[];
  /** Each parameter's shape (as the config implies and the files confirm). */
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  /** Tensors in the files that are not parameters (e.g. `rotary_emb.inv_freq`); ignored but readable. */
  readonly extraTensors: readonly string[];
  /** The dtype a tensor is stored in. */
  dtypeOf(name: string): SafetensorsDType;
  /** The safetensors file (relative to `dir`) holding a tensor. */
  fileOf(name: string): string;
  /** A tensor as f32 (F16/BF16 widened exactly). */
  readF32(name: string, range?: ElementRange): Promise<Float32Array>;
  /** A tensor as f16 bits (F32/BF16 rounded to nearest even), for frozen f16 weights. */
  readF16Bits(name: string, range?: ElementRange): Promise<Uint16Array>;
  /** A tensor's bytes as stored. */
  readRaw(name: string, range?: ElementRange): Promise<RawTensor>;
}

/** File names save_pretrained writes for weights. */
export const SINGLE_WEIGHTS_FILE = "model.safetensors";
/** The index of a sharded checkpoint. */
export const WEIGHTS_INDEX_FILE = "model.safetensors.index.json";

async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new ModelFolderError(`${path}: file not found`);
    throw e;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ModelFolderError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

function parseWeightMap(json: unknown, path: string): Map<string, string> {
  const map = isObject(json) ? json.weight_map : undefined;
  if (!isObject(map)) {
    throw new ModelFolderError(`${path}: weight_map must be an object of tensor name → shard file`);
  }
  const out = new Map<string, string>();
  for (const [name, shard] of Object.entries(map)) {
    // A shard name must stay inside the folder: the index comes from the network as often as not.
    if (typeof shard !== "string" || shard === "" || shard.includes("..") || shard.startsWith("/")) {
      throw new ModelFolderError(
        `${path}: weight_map["${name}"] must be a file name in the folder, got ${show(shard)}`,
      );
    }
    out.set(name, shard);
  }
  return out;
}

async function openShards(
  dir: string,
  shards: Iterable<string>,
  indexPath: string,
): Promise<Map<string, SafetensorsFile>> {
  const out = new Map<string, SafetensorsFile>();
  for (const shard of new Set(shards)) {
    const path = join(dir, shard);
    if (!(await isFile(path))) {
      throw new ModelFolderError(`${indexPath} names shard ${shard}, but ${path} does not exist`);
    }
    out.set(shard, await SafetensorsFile.open(path));
  }
  return out;
}

async function locateTensors(dir: string): Promise<Map<string, TensorLocation>> {
  const locations = new Map<string, TensorLocation>();
  const single = join(dir, SINGLE_WEIGHTS_FILE);
  if (await isFile(single)) {
    const file = await SafetensorsFile.open(single);
    for (const name of file.names()) locations.set(name, { file, shard: SINGLE_WEIGHTS_FILE });
    return locations;
  }
  const indexPath = join(dir, WEIGHTS_INDEX_FILE);
  if (!(await isFile(indexPath))) {
    const hasBin = await isFile(join(dir, "pytorch_model.bin")) ||
      await isFile(join(dir, "pytorch_model.bin.index.json"));
    throw new ModelFolderError(
      `${dir}: no ${SINGLE_WEIGHTS_FILE} or ${WEIGHTS_INDEX_FILE}` +
        (hasBin ? " (it has PyTorch .bin weights: convert them to safetensors first)" : ""),
    );
  }
  const weightMap = parseWeightMap(await readJsonFile(indexPath), indexPath);
  const files = await openShards(dir, weightMap.values(), indexPath);
  for (const [name, shard] of weightMap) {
    const file = files.get(shard)!;
    if (!file.has(name)) {
      throw new ModelFolderError(
        `${file.path}: has no tensor "${name}", which ${WEIGHTS_INDEX_FILE} places there`,
      );
    }
    locations.set(name, { file, shard });
  }
  return locations;
}

const FLOAT_DTYPES: ReadonlySet<SafetensorsDType> = new Set(["F32", "F16", "BF16", "F64"]);

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function checkParameters(
  dir: string,
  expected: Map<string, number[]>,
  locations: Map<string, TensorLocation>,
): void {
  const missing = [...expected.keys()].filter((n) => !locations.has(n));
  if (missing.length > 0) {
    const first = missing[0];
    const more = missing.length > 1
      ? ` (and ${missing.length - 1} more: ${missing.slice(1, 4).join(", ")}…)`
      : "";
    throw new ModelFolderError(
      `${dir}: tensor "${first}" (expected shape [${expected.get(first)!.join(", ")}]) is missing from the ` +
        `safetensors files${more}`,
    );
  }
  for (const [name, shape] of expected) {
    const { file } = locations.get(name)!;
    const info = file.info(name);
    if (!sameShape(info.shape, shape)) {
      throw new ModelFolderError(
        `${file.path}: tensor "${name}" has shape [${info.shape.join(", ")}], but config.json implies ` +
          `[${shape.join(", ")}]`,
      );
    }
    if (!FLOAT_DTYPES.has(info.dtype)) {
      throw new ModelFolderError(
        `${file.path}: tensor "${name}" is ${info.dtype}; expected F32, F16, BF16 or F64`,
      );
    }
  }
}

/**
 * Opens a Hugging Face model folder: parses `config.json` (and `generation_config.json` if present), finds
 * the weights (`model.safetensors`, else the sharded index) and checks that every parameter the config
 * implies is there with the right shape. Only headers are read; tensors are read on demand.
 *
 * @example
 * ```ts
 * const m = await openModelFolder("models/llama-tiny");
 * const embed = await m.readF32("model.embed_tokens.weight");
 * ```
 */
export async function openModelFolder(dir: string): Promise<ModelFolder> {
  const configPath = join(dir, "config.json");
  const config = parseModelConfig(await readJsonFile(configPath), configPath);
  const genPath = join(dir, "generation_config.json");
  const generationConfig = await isFile(genPath)
    ? parseGenerationConfig(await readJsonFile(genPath), genPath)
    : undefined;
  const expected = expectedParameterShapes(config);
  const locations = await locateTensors(dir);
  checkParameters(dir, expected, locations);
  const locate = (name: string): TensorLocation => {
    const loc = locations.get(name);
    if (!loc) {
      throw new ModelFolderError(`${dir}: no tensor named "${name}" in this model's safetensors files`);
    }
    return loc;
  };
  return {
    dir,
    config,
    generationConfig,
    tensorNames: [...expected.keys()],
    shapes: expected,
    extraTensors: [...locations.keys()].filter((n) => !expected.has(n)),
    dtypeOf: (name) => locate(name).file.info(name).dtype,
    fileOf: (name) => locate(name).shard,
    readF32: (name, range) => locate(name).file.readF32(name, range),
    readF16Bits: (name, range) => locate(name).file.readF16Bits(name, range),
    readRaw: (name, range) => locate(name).file.readRaw(name, range),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Saving a folder

/**
 * The tokenizer files that travel with a model, and that TRL saves beside an adapter
 * (`processing_class.save_pretrained(output_dir)`).
 */
export const TOKENIZER_FILES: readonly string[] = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "chat_template.jinja",
  "chat_template.json",
  "tokenizer.model",
  "added_tokens.json",
  "vocab.json",
  "merges.txt",
];

/** Files copied by `copyFrom`: the tokenizer files and the generation settings. */
export const COMPANION_FILES: readonly string[] = [...TOKENIZER_FILES, "generation_config.json"];

/** The weight dtypes a model can be saved in. */
export type SaveDType = "F32" | "F16" | "BF16";

/** Options for {@link saveModelFolder}. */
export interface SaveModelOptions {
  /** The config JSON to write (usually `ModelConfig.raw`, updated); its dtype field is set to `dtype`. */
  config: Record<string, unknown>;
  /**
   * Every parameter as f32, or a function producing one at a time (so a large model streams to disk),
   * whole or as consecutive pieces of its row-major values.
   */
  tensors:
    | ReadonlyMap<string, Float32Array>
    | ((name: string) => Float32Array | Promise<Float32Array> | AsyncIterable<Float32Array>);
  /** Element type the weights are stored in. */
  dtype: SaveDType;
  /** Largest shard in bytes (default 5 GB as transformers); a larger model is split into shards. */
  maxShardBytes?: number;
  /** A folder to copy tokenizer files, chat template and generation config from ({@link COMPANION_FILES}). */
  copyFrom?: string;
  /** Written as `generation_config.json`, replacing one copied by `copyFrom`. */
  generationConfig?: Record<string, unknown>;
}

/** What {@link saveModelFolder} wrote. */
export interface SavedModel {
  /** Weight files, in shard order. */
  weightFiles: string[];
  /** Bytes of tensor data (the index's `metadata.total_size`). */
  totalSize: number;
  /** Companion files copied from `copyFrom`. */
  copied: string[];
}

const TORCH_DTYPE_NAMES: Record<SaveDType, string> = { F32: "float32", F16: "float16", BF16: "bfloat16" };

/** Default `max_shard_size` of transformers' save_pretrained: "5GB" in decimal units. */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

/**
 * Groups tensors into shards as huggingface_hub's `split_torch_state_dict_into_shards` does: fill in order,
 * start a new shard when the next tensor would overflow, and give an oversized tensor a shard of its own.
 * @example
 * ```ts
 * planShards(new Map([["a", 4], ["big", 20], ["b", 4], ["c", 3]]), 10); // [["big"], ["a", "b"], ["c"]]
 * ```
 */
export function planShards(sizes: ReadonlyMap<string, number>, maxShardBytes: number): string[][] {
  const shards: string[][] = [];
  let current: string[] = [];
  let currentBytes = 0;
  for (const [name, bytes] of sizes) {
    if (bytes > maxShardBytes) {
      shards.push([name]);
      continue;
    }
    if (currentBytes + bytes > maxShardBytes && current.length > 0) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(name);
    currentBytes += bytes;
  }
  if (current.length > 0) shards.push(current);
  return shards;
}

function shardFileName(i: number, n: number): string {
  return n === 1
    ? SINGLE_WEIGHTS_FILE
    : `model-${String(i + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`;
}

function configWithDtype(config: Record<string, unknown>, dtype: SaveDType): Record<string, unknown> {
  const out = { ...config };
  const name = TORCH_DTYPE_NAMES[dtype];
  const keys = ["dtype", "torch_dtype"].filter((k) => out[k] !== undefined);
  // transformers 4 reads torch_dtype and 5 reads both, so a config with neither gets the older key.
  for (const k of keys.length > 0 ? keys : ["torch_dtype"]) out[k] = name;
  return out;
}

function tensorSource(
  tensors: SaveModelOptions["tensors"],
  expected: Map<string, number[]>,
  cfg: ModelConfig,
): (name: string) => Promise<Float32Array | AsyncIterable<Float32Array>> {
  if (typeof tensors === "function") return async (name) => await tensors(name);
  for (const name of tensors.keys()) {
    if (!expected.has(name) && !(name === "lm_head.weight" && cfg.tieWordEmbeddings)) {
      throw new ModelFolderError(
        `saveModelFolder: "${name}" is not a parameter of this ${cfg.modelType} config`,
      );
    }
  }
  for (const name of expected.keys()) {
    if (!tensors.has(name)) throw new ModelFolderError(`saveModelFolder: tensor "${name}" is missing`);
  }
  return (name) => Promise.resolve(tensors.get(name)!);
}

function checkedData(name: string, shape: number[], data: Float32Array): Float32Array {
  const count = numel(shape);
  if (!(data instanceof Float32Array) || data.length !== count) {
    throw new ModelFolderError(
      `saveModelFolder: tensor "${name}" must be a Float32Array of ${count} values (shape [${
        shape.join(", ")
      }]), ` +
        `got ${data instanceof Float32Array ? data.length + " values" : show(data).slice(0, 40)}`,
    );
  }
  return data;
}

async function writeShards(
  tmp: string,
  expected: Map<string, number[]>,
  read: (name: string) => Promise<Float32Array | AsyncIterable<Float32Array>>,
  dtype: SaveDType,
  maxShardBytes: number,
): Promise<{ files: string[]; totalSize: number; weightMap: Record<string, string> }> {
  const sizes = new Map(
    [...expected].map(([n, s]) => [n, numel(s) * DTYPE_SIZES[dtype]]),
  );
  const plan = planShards(sizes, maxShardBytes);
  const files: string[] = [];
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < plan.length; i++) {
    const file = shardFileName(i, plan.length);
    const tensors: Record<string, TensorToWrite> = {};
    for (const name of plan[i]) {
      const shape = expected.get(name)!;
      tensors[name] = {
        dtype,
        shape,
        data: async () => {
          const data = await read(name);
          // Pieces are counted as they are written; a whole tensor is checked here.
          return Symbol.asyncIterator in data ? data : checkedData(name, shape, data);
        },
      };
      weightMap[name] = file;
    }
    await writeSafetensors(join(tmp, file), tensors, { format: "pt" });
    files.push(file);
  }
  return { files, totalSize: [...sizes.values()].reduce((a, b) => a + b, 0), weightMap };
}

/**
 * Copies those of `names` that `from` holds into `to`, each through a temporary name (a killed copy leaves no
 * half file), and returns the names copied.
 * @example
 * ```ts
 * await copyCompanionFiles("runs/tiny-base", "runs/sft-lora", TOKENIZER_FILES);
 * ```
 */
export async function copyCompanionFiles(
  from: string,
  to: string,
  names: readonly string[] = COMPANION_FILES,
): Promise<string[]> {
  const copied: string[] = [];
  for (const name of names) {
    if (await isFile(join(from, name))) {
      const tmp = join(to, `.${name}.tmp`);
      await Deno.copyFile(join(from, name), tmp);
      await Deno.rename(tmp, join(to, name));
      copied.push(name);
    }
  }
  return copied;
}

/**
 * Saves a model folder as transformers' `save_pretrained` lays it out: `config.json` (keys sorted), weights
 * in one `model.safetensors` or in `model-0000i-of-0000n.safetensors` shards with
 * `model.safetensors.index.json`, plus companion files copied from `copyFrom`. Everything is written into
 * a temporary sibling folder and swapped in with {@link replaceDirAtomic}, so an interrupted save never
 * leaves a half-written model under `dir`. The config is validated and each tensor's size checked.
 *
 * @example
 * ```ts
 * await saveModelFolder("runs/a", {
 *   config: cfg.raw, tensors: params, dtype: "BF16", copyFrom: "models/base",
 * });
 * ```
 */
export async function saveModelFolder(dir: string, options: SaveModelOptions): Promise<SavedModel> {
  const config = configWithDtype(options.config, options.dtype);
  const cfg = parseModelConfig(config, "saveModelFolder config");
  if (!Object.hasOwn(TORCH_DTYPE_NAMES, options.dtype)) {
    throw new ModelFolderError(`saveModelFolder: dtype must be F32, F16 or BF16, got ${show(options.dtype)}`);
  }
  const maxShardBytes = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(maxShardBytes > 0)) throw new ModelFolderError(`saveModelFolder: maxShardBytes must be positive`);
  const expected = expectedParameterShapes(cfg);
  const read = tensorSource(options.tensors, expected, cfg);
  const tmp = await makeTempSiblingDir(dir);
  try {
    const { files, totalSize, weightMap } = await writeShards(
      tmp,
      expected,
      read,
      options.dtype,
      maxShardBytes,
    );
    if (files.length > 1) {
      const index = { metadata: { total_size: totalSize }, weight_map: sortKeysDeep(weightMap) };
      await writeJsonAtomic(join(tmp, WEIGHTS_INDEX_FILE), index, { sortKeys: true });
    }
    await writeJsonAtomic(join(tmp, "config.json"), config, { sortKeys: true });
    const copied = options.copyFrom ? await copyCompanionFiles(options.copyFrom, tmp) : [];
    if (options.generationConfig) {
      await writeJsonAtomic(join(tmp, "generation_config.json"), options.generationConfig, {
        sortKeys: true,
      });
    }
    await replaceDirAtomic(tmp, dir);
    return { weightFiles: files, totalSize, copied };
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}
