/**
 * What a `--model` argument names: a model folder, a Hub id, or a PEFT adapter folder (or adapter repo) over
 * a base model, resolved the way transformers resolves them: a folder holding `adapter_config.json` is the
 * base model `base_model_name_or_path` names (a folder, or a Hub id, downloaded) plus that adapter. The
 * tokenizer is the adapter folder's when it has one (TRL saves it there), else the base model's.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { isFile } from "./fs.ts";
import { type ModelConfig, parseModelConfig } from "./hf_config.ts";
import { openModelFolder } from "./hf_model.ts";
import {
  downloadFiles,
  type DownloadModelOptions,
  HubError,
  type HubOptions,
  isRepoId,
  listRepoFiles,
  MODEL_SIDE_FILES,
  resolveModelPath,
} from "./hub.ts";
import {
  type AdaptedLinear,
  ADAPTER_CONFIG_FILE,
  AdapterError,
  checkAdapterFits,
  isAdapterFolder,
  type PeftAdapter,
  readPeftAdapter,
} from "./peft_adapter.ts";

/** A PEFT adapter over its base model, checked against the base's config. */
export interface ResolvedAdapter extends PeftAdapter {
  /** `base_model_name_or_path` as stored. */
  baseModel: string;
  /** The linears it adapts, each with its rank and scale. */
  layout: AdaptedLinear[];
}

/** A resolved `--model`: the base model folder, where the tokenizer is, and the adapter if any. */
export interface ModelSource {
  /** The argument as given. */
  given: string;
  /** The folder of the full model (the base model of an adapter). */
  modelDir: string;
  /** The base model's config. */
  config: ModelConfig;
  /** Where the tokenizer files are: the adapter folder when it has `tokenizer.json`, else `modelDir`. */
  tokenizerDir: string;
  /** The adapter applied over `modelDir`, when `given` names one. */
  adapter?: ResolvedAdapter;
}

/**
 * Resolves a model folder, Hub id or adapter folder. Errors name what was given and, for an adapter, its
 * `adapter_config.json` field.
 *
 * @example
 * ```ts
 * const src = await resolveModelSource("runs/sft-lora/final");
 * src.modelDir; // the base model's folder; src.adapter?.spec.r is the adapter's rank
 * ```
 */
export async function resolveModelSource(
  pathOrRepoId: string,
  options: DownloadModelOptions = {},
): Promise<ModelSource> {
  const dir = await resolveModelPath(pathOrRepoId, options);
  if (!(await isAdapterFolder(dir))) {
    return {
      given: pathOrRepoId,
      modelDir: dir,
      config: (await openModelFolder(dir)).config,
      tokenizerDir: dir,
    };
  }
  const adapter = await readPeftAdapter(dir);
  const cfgPath = join(dir, ADAPTER_CONFIG_FILE);
  if (!adapter.baseModel) {
    throw new AdapterError(
      `${cfgPath}: base_model_name_or_path is missing; it must name the base model (a folder or a Hub id)`,
    );
  }
  let modelDir: string;
  try {
    modelDir = await resolveModelPath(adapter.baseModel, options);
  } catch (e) {
    throw new AdapterError(
      `${cfgPath}: base_model_name_or_path ${JSON.stringify(adapter.baseModel)} ` +
        `(a relative path is read from the working directory, as PEFT reads it): ${(e as Error).message}`,
    );
  }
  if (await isAdapterFolder(modelDir)) {
    throw new AdapterError(
      `${cfgPath}: base_model_name_or_path ${JSON.stringify(adapter.baseModel)} is itself an adapter; ` +
        "merge it into its base model first",
    );
  }
  const config = (await openModelFolder(modelDir)).config;
  const layout = checkAdapterFits(adapter, config);
  const tokenizerDir = await isFile(join(dir, "tokenizer.json")) ? dir : modelDir;
  return {
    given: pathOrRepoId,
    modelDir,
    config,
    tokenizerDir,
    adapter: { ...adapter, baseModel: adapter.baseModel, layout },
  };
}

/**
 * Where to read a tokenizer named like a `--model`: a folder (an adapter folder without its own tokenizer
 * gives its base model's), or a Hub id, of which only the tokenizer files and `config.json` are downloaded.
 * The model's config comes along when there is one (a tokenizer-only folder has none).
 *
 * @example
 * ```ts
 * const { dir, config } = await resolveTokenizerSource("Qwen/Qwen2.5-0.5B");
 * ```
 */
export async function resolveTokenizerSource(
  pathOrRepoId: string,
  options: HubOptions = {},
): Promise<{ dir: string; config?: ModelConfig }> {
  if (await isDirectory(pathOrRepoId)) {
    if (await isAdapterFolder(pathOrRepoId)) {
      const source = await resolveModelSource(pathOrRepoId, options);
      return { dir: source.tokenizerDir, config: source.config };
    }
    return { dir: pathOrRepoId, config: await configIn(pathOrRepoId) };
  }
  const [repoId, revision] = pathOrRepoId.split("@", 2);
  if (!isRepoId(repoId)) {
    throw new HubError(
      "input",
      `"${pathOrRepoId}" is neither an existing folder nor a Hub repo id like org/name`,
      pathOrRepoId,
    );
  }
  const hub = revision ? { ...options, revision } : options;
  const { files } = await listRepoFiles(repoId, hub);
  const wanted = MODEL_SIDE_FILES.filter((f) => files.includes(f));
  if (!wanted.includes("tokenizer.json")) {
    throw new HubError("not-found", `${repoId} has no tokenizer.json`, repoId);
  }
  const paths = await downloadFiles(repoId, wanted, hub);
  const dir = dirname(paths[wanted.indexOf("tokenizer.json")]);
  return { dir, config: await configIn(dir) };
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function configIn(dir: string): Promise<ModelConfig | undefined> {
  const path = join(dir, "config.json");
  if (!(await isFile(path))) return undefined;
  return parseModelConfig(JSON.parse(await Deno.readTextFile(path)), path);
}
