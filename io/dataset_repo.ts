/**
 * Where a dataset named as TRL's `--dataset_name` takes it lives, split by split: a data file (its only split
 * is `train`), a local folder, or a Hugging Face Hub dataset repo (downloaded through io/hub.ts into the
 * shared cache). A folder or repo is split as `datasets.load_dataset` splits one without a loading script:
 *
 * 1. the `configs:` of its README.md's YAML header (`config_name`, `data_files` by split with globs,
 *    `data_dir`, `default: true`), the configuration chosen by name (`--dataset_config`);
 * 2. otherwise its data files (the most common of .parquet, .jsonl, .json, .csv, .tsv; inside the folder
 *    `<config>/` when a configuration is named), split by name: `data/<split>-00000-of-00001.*` as
 *    `push_to_hub` writes them, else files or folders named after a split (`train`/`training`,
 *    `validation`/`valid`/`dev`/`val`, `test`/`testing`/`eval`/`evaluation`, followed or preceded by
 *    `-._ ` or a digit), else every file is `train`.
 *
 * @module
 */
import { parseYaml } from "./yaml.ts";
import { downloadFiles, type HubOptions, isRepoId, listRepoFiles } from "./hub.ts";

/** File extensions a dataset's data files may have, most preferred first when counts tie. */
const DATA_EXTENSIONS = ["parquet", "jsonl", "json", "csv", "tsv"] as const;

/** Split names and the words that name them in file and folder names, as `datasets` has them. */
const SPLIT_KEYWORDS: Record<string, readonly string[]> = {
  train: ["train", "training"],
  validation: ["validation", "valid", "dev", "val"],
  test: ["test", "testing", "eval", "evaluation"],
};

const SEP = "[-._ 0-9]";

/** Options of {@link datasetSplitFiles}. */
export interface DatasetSplitOptions {
  /** The split wanted (`train`, `test`, …). */
  split: string;
  /** The configuration (subset) to read, when the dataset has several. */
  config?: string;
  /** Hub options (endpoint, token, cache, offline); the repo type is always `dataset`. */
  hub?: HubOptions;
}

/**
 * The local paths of one split's data files: a file for `train`, a folder's or a Hub dataset's files
 * (downloaded when needed) for any split the dataset has. Errors name the dataset, the split asked for and
 * the splits (or configurations) it has.
 *
 * @example
 * ```ts
 * const files = await datasetSplitFiles("trl-lib/ultrafeedback_binarized", { split: "train" });
 * ```
 */
export async function datasetSplitFiles(name: string, options: DatasetSplitOptions): Promise<string[]> {
  let info: Deno.FileInfo | undefined;
  try {
    info = await Deno.stat(name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (info?.isFile) {
    if (options.split !== "train") {
      throw new Error(
        `${name}: a data file holds one split, "train", not "${options.split}"; give held-out data with ` +
          "--eval_data or --eval_fraction",
      );
    }
    return [name];
  }
  if (info?.isDirectory) {
    const files = await listFolder(name);
    const readme = files.includes("README.md") ? await Deno.readTextFile(`${name}/README.md`) : undefined;
    return pickSplit(name, splitDataFiles(name, files, readme, options.config), options.split)
      .map((f) => `${name}/${f}`);
  }
  const [repoId, revision] = name.split("@", 2);
  if (!repoId.includes("/") || !isRepoId(repoId)) {
    throw new Error(`"${name}" is neither a data file, a folder, nor a Hub dataset id like org/name`);
  }
  const hub: HubOptions = { ...options.hub, repoType: "dataset", ...(revision ? { revision } : {}) };
  const { files } = await listRepoFiles(repoId, hub);
  const readme = files.includes("README.md")
    ? await Deno.readTextFile((await downloadFiles(repoId, ["README.md"], hub))[0])
    : undefined;
  const wanted = pickSplit(name, splitDataFiles(name, files, readme, options.config), options.split);
  return await downloadFiles(repoId, wanted, hub);
}

/** Every file under a folder, as paths relative to it. */
async function listFolder(root: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(prefix ? `${root}/${prefix}` : root)) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory) {
      if (!e.name.startsWith(".")) out.push(...await listFolder(root, rel));
    } else out.push(rel);
  }
  return out.sort();
}

function pickSplit(name: string, splits: Map<string, string[]>, split: string): string[] {
  const files = splits.get(split);
  if (files && files.length > 0) return files;
  const have = [...splits.keys()].map((s) => `"${s}"`).join(", ") || "none";
  throw new Error(
    `${name}: no "${split}" split (it has ${have}); choose one with --dataset_train_split / --dataset_test_split`,
  );
}

/**
 * A dataset's data files by split, from its file list (paths relative to its root) and README.md text, as
 * `datasets` resolves them (see the module documentation).
 *
 * @example
 * ```ts
 * splitDataFiles("org/set", ["README.md", "data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet"]);
 * // Map { "train" => ["data/train-00000-of-00001.parquet"], "test" => ["data/test-00000-of-00001.parquet"] }
 * ```
 */
export function splitDataFiles(
  name: string,
  files: readonly string[],
  readme?: string,
  config?: string,
): Map<string, string[]> {
  const configs = readmeConfigs(name, readme);
  if (configs.length > 0) return configSplits(name, files, configs, config);
  const root = config === undefined ? "" : `${config.replace(/\/+$/, "")}/`;
  const candidates = files.filter((f) => f.startsWith(root) && !hidden(f));
  const data = dataFiles(candidates.map((f) => f.slice(root.length)));
  if (data.length === 0) {
    throw new Error(
      config === undefined
        ? `${name}: no data files (${DATA_EXTENSIONS.map((e) => `.${e}`).join(", ")})`
        : `${name}: no data files under ${root} (--dataset_config ${config}); its README.md declares no configs`,
    );
  }
  return new Map([...splitByName(data)].map(([split, list]) => [split, list.map((f) => root + f)]));
}

/** Hidden files and folders, and the repo's own files, which are never data. */
function hidden(path: string): boolean {
  return path.split("/").some((p) => p.startsWith(".") || p.startsWith("__"));
}

/** The data files among `files`: those of the most common data extension. */
function dataFiles(files: readonly string[]): string[] {
  const byExt = DATA_EXTENSIONS.map((ext) => files.filter((f) => f.toLowerCase().endsWith(`.${ext}`)));
  const most = byExt.reduce((best, list) => list.length > best.length ? list : best, [] as string[]);
  return most;
}

/** Files split by their names, in `datasets`' order of patterns. */
function splitByName(files: readonly string[]): Map<string, string[]> {
  const sharded = new Map<string, string[]>();
  for (const f of files) {
    const m = /^(?:.*\/)?data\/(\w+?)-\d{5}-of-\d{5}[^/]*$/.exec(f) ?? /^(\w+?)-\d{5}-of-\d{5}[^/]*$/.exec(f);
    if (m) sharded.set(m[1], [...sharded.get(m[1]) ?? [], f]);
  }
  if (sharded.size > 0) return sharded;
  for (const where of ["file", "folder"] as const) {
    const found = new Map<string, string[]>();
    for (const [split, words] of Object.entries(SPLIT_KEYWORDS)) {
      const re = keywordPattern(words, where);
      const list = files.filter((f) => re.test(f));
      if (list.length > 0) found.set(split, list);
    }
    if (found.size > 0) return found;
  }
  return new Map([["train", [...files]]]);
}

/** A file whose name (or a folder on whose path) is one of `words`, alone or between separators. */
function keywordPattern(words: readonly string[], where: "file" | "folder"): RegExp {
  const w = `(?:${words.join("|")})`;
  return where === "file"
    ? new RegExp(`(?:^|/)(?:[^/]*${SEP})?${w}${SEP}[^/]*$`)
    : new RegExp(`(?:^|/)(?:[^/]*${SEP})?${w}(?:${SEP}[^/]*)?/`);
}

/** One configuration of a README's `configs:`. */
interface ReadmeConfig {
  config_name: string;
  data_files?: unknown;
  data_dir?: string;
  default?: boolean;
}

/** The `configs:` of a dataset card's YAML header (none without a header). */
function readmeConfigs(name: string, readme: string | undefined): ReadmeConfig[] {
  const header = readme === undefined ? undefined : /^---\r?\n([\s\S]*?)\r?\n---/.exec(readme)?.[1];
  if (header === undefined) return [];
  let doc: unknown;
  try {
    doc = parseYaml(header);
  } catch (e) {
    throw new Error(`${name}: README.md's YAML header is not valid YAML: ${(e as Error).message}`);
  }
  const configs = (doc as Record<string, unknown> | null)?.configs;
  if (configs === undefined) return [];
  if (!Array.isArray(configs) || !configs.every((c) => typeof c?.config_name === "string")) {
    throw new Error(`${name}: README.md's configs: expected a list of entries with a config_name`);
  }
  return configs as ReadmeConfig[];
}

function configSplits(
  name: string,
  files: readonly string[],
  configs: readonly ReadmeConfig[],
  wanted: string | undefined,
): Map<string, string[]> {
  const names = configs.map((c) => c.config_name);
  const chosen = wanted !== undefined
    ? configs.find((c) => c.config_name === wanted)
    : configs.find((c) => c.default) ?? configs.find((c) => c.config_name === "default") ??
      (configs.length === 1 ? configs[0] : undefined);
  if (!chosen) {
    throw new Error(
      wanted !== undefined
        ? `${name}: no configuration "${wanted}" (it has ${names.join(", ")})`
        : `${name}: it has several configurations (${names.join(", ")}); choose one with --dataset_config`,
    );
  }
  const where = `${name}: README.md configs "${chosen.config_name}"`;
  const dir = chosen.data_dir ? `${chosen.data_dir.replace(/\/+$/, "")}/` : "";
  const patterns = dataFilePatterns(chosen.data_files, where);
  if (patterns === undefined) {
    const inDir = files.filter((f) => f.startsWith(dir) && !hidden(f)).map((f) => f.slice(dir.length));
    return new Map([...splitByName(dataFiles(inDir))].map(([s, l]) => [s, l.map((f) => dir + f)]));
  }
  const out = new Map<string, string[]>();
  for (const [split, globs] of patterns) {
    const res = globs.map((g) => globRegExp(dir + g));
    const matched = files.filter((f) => res.some((re) => re.test(f)));
    if (matched.length === 0) {
      throw new Error(`${where}: split "${split}" matches no file (${globs.join(", ")})`);
    }
    out.set(split, matched);
  }
  return out;
}

/** `data_files` in any of its forms, as split → globs; undefined when absent. */
function dataFilePatterns(value: unknown, where: string): Map<string, string[]> | undefined {
  if (value === undefined || value === null) return undefined;
  const list = (v: unknown): string[] => {
    if (typeof v === "string") return [v];
    if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v;
    throw new Error(`${where}: data_files: expected a path or a list of paths, got ${JSON.stringify(v)}`);
  };
  if (typeof value === "string" || (Array.isArray(value) && value.every((v) => typeof v === "string"))) {
    return new Map([["train", list(value)]]);
  }
  if (Array.isArray(value)) {
    const out = new Map<string, string[]>();
    for (const entry of value) {
      if (typeof entry?.split !== "string") throw new Error(`${where}: data_files: an entry has no split`);
      out.set(entry.split, [...out.get(entry.split) ?? [], ...list(entry.path)]);
    }
    return out;
  }
  if (typeof value === "object") {
    return new Map(Object.entries(value as Record<string, unknown>).map(([split, v]) => [split, list(v)]));
  }
  throw new Error(`${where}: data_files: expected a path, a list or a mapping by split`);
}

/**
 * A glob as `datasets` matches data files: `*` within a path part, `**` across parts, `?` one character,
 * `[…]` a class.
 * @example
 * ```ts
 * globRegExp("data/train-*").test("data/train-00000-of-00001.parquet"); // true
 * ```
 */
export function globRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      const slash = glob[i + 2] === "/";
      re += slash ? "(?:.*/)?" : ".*";
      i += slash ? 2 : 1;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = glob.indexOf("]", i);
      if (end < 0) re += "\\[";
      else {
        re += `[${glob.slice(i + 1, end).replace(/^!/, "^")}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}
