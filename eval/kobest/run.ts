/**
 * `deno task kobest` as a library call: for each model folder, load it on the GPU, score KoBEST at every
 * shot setting, then write lm-evaluation-harness results JSON, the requests dump, and return the Markdown
 * table (the paper's Table 2).
 *
 * Everything a run can get wrong is checked before the first model is scored: the output paths, the data
 * (every split, and the shots against the train splits) and every model (folder or Hub id, config, weights'
 * headers, tokenizer). The outputs are rewritten after each model, so a later failure loses nothing scored.
 *
 * @module
 */
import { Gpu } from "../../gpu/runtime.ts";
import { checkWritableFile, writeJsonAtomic } from "../../io/atomic.ts";
import { openModelFolder } from "../../io/hf_model.ts";
import { writeJsonlAtomic } from "../../io/jsonl.ts";
import { downloadFiles, HubError, type HubOptions, resolveModelPath } from "../../io/hub.ts";
import { loadLlama, unloadLlama } from "../../model/load.ts";
import { loadTokenizer } from "../../text/tokenizer.ts";
import { GpuLogprobModel } from "../gpu_model.ts";
import {
  KOBEST_HUB_REPO,
  KOBEST_TASKS,
  kobestDataDirOf,
  kobestDataHelp,
  kobestHubFiles,
  type KobestSplit,
  type KobestTask,
} from "./data.ts";
import { checkKobestData, evaluateKobest, type RequestRecord } from "./evaluate.ts";
import { kobestMarkdownTable, type LmEvalResults, type TableEntry } from "./results.ts";

/** Options of {@link runKobest}. */
export interface RunKobestOptions {
  /** Model folders or Hub ids, scored in order. */
  models: string[];
  /** Tasks to score (default: all five). */
  tasks?: KobestTask[];
  /** Shot settings (default [0]). */
  shots?: number[];
  /** Split scored (default `test`). */
  split?: KobestSplit;
  /** First N documents per task, or a fraction in (0, 1), as lm-eval's `--limit`. */
  limit?: number;
  /** KoBEST files (TSV v1.0 or Hub jsonl layout); downloaded from the Hub into its cache when absent. */
  dataDir?: string;
  /** Results JSON to write: one lm-eval results object, or an array when there are several. */
  out?: string;
  /** JSONL file receiving every scored request ({@link RequestRecord} plus `model`). */
  dumpRequests?: string;
  /** Sequences per forward pass (default 16). */
  batchSize?: number;
  /** Few-shot seed (default 1234, lm-eval's). */
  seed?: number;
  /** Longest input in tokens (default: min(model context, 2048)). */
  maxLength?: number;
  /** Where the Hub is and its cache (default: HF_ENDPOINT, HF_HOME). */
  hub?: HubOptions;
  /** Device to use (default: a new one). */
  gpu?: Gpu;
  /** Receives progress lines and warnings (default: stderr). */
  log?: (line: string) => void;
  /** Load models whose files hold tensors their config does not use, with a warning (otherwise an error). */
  ignoreUnusedWeights?: boolean;
}

/** Where the KoBEST files are: the given folder, or the Hub's files fetched into the Hugging Face cache. */
export async function kobestDataDir(
  dataDir: string | undefined,
  tasks: readonly KobestTask[],
  splits: readonly KobestSplit[],
  hub: HubOptions = {},
): Promise<string> {
  if (dataDir) return dataDir;
  const files = kobestHubFiles(tasks, splits);
  try {
    const paths = await downloadFiles(KOBEST_HUB_REPO, files, { ...hub, repoType: "dataset" });
    return kobestDataDirOf(paths[0], files[0]);
  } catch (e) {
    if (e instanceof HubError) throw new Error(`${e.message}\n${kobestDataHelp(tasks, splits)}`);
    throw e;
  }
}

/**
 * Scores every model and writes the outputs; returns the Markdown table and all results.
 * @example
 * ```ts
 * const { table } = await runKobest({ models: ["runs/orpo-tiny"], dataDir: "kobest", shots: [0, 5], limit: 20 });
 * console.log(table);
 * ```
 */
export async function runKobest(o: RunKobestOptions): Promise<{ table: string; results: TableEntry[] }> {
  const log = o.log ?? ((l: string) => console.error(l));
  const warned = new Set<string>();
  const warn = (message: string) => {
    if (!warned.has(message)) log(`[kobest] warning: ${message}`);
    warned.add(message);
  };
  if (o.out) await checkWritableFile(o.out, "--out");
  if (o.dumpRequests) await checkWritableFile(o.dumpRequests, "--dump-requests");
  const tasks = o.tasks ?? [...KOBEST_TASKS];
  const shots = o.shots ?? [0];
  const split = o.split ?? "test";
  const splits: KobestSplit[] = shots.some((k) => k > 0) && split !== "train" ? [split, "train"] : [split];
  const dataDir = await kobestDataDir(o.dataDir, tasks, splits, o.hub);
  await checkKobestData(dataDir, tasks, split, shots, warn);
  const models: { name: string; dir: string; maxPositions: number }[] = [];
  for (const name of o.models) models.push({ name, ...await checkModel(name, o.hub) });

  const gpu = o.gpu ?? await Gpu.create();
  log(`[kobest] adapter: ${gpu.describe()}`);
  const batchSize = o.batchSize ?? 16;
  const entries: TableEntry[] = [];
  const dump: RequestRecord[] = [];
  for (const { name: model, dir, maxPositions } of models) {
    const maxLength = Math.min(o.maxLength ?? 2048, maxPositions);
    const bucket = Math.ceil(maxLength / 64) * 64;
    const loaded = await loadLlama(gpu, dir, {
      trainable: false,
      maxTokens: batchSize * bucket,
      maxPositions: bucket,
      ignoreUnusedWeights: o.ignoreUnusedWeights,
      warn,
    });
    const tokenizer = await loadTokenizer(dir);
    const scorer = new GpuLogprobModel(gpu, loaded, { maxLength });
    const t0 = performance.now();
    let lastPrint = 0;
    const results = await evaluateKobest(scorer, tokenizer, {
      dataDir,
      tasks,
      shots,
      split,
      limit: o.limit,
      seed: o.seed,
      batchSize,
      modelName: model,
      modelArgs: `pretrained=${dir},max_length=${maxLength}`,
      dumpRequests: o.dumpRequests ? (r) => dump.push({ ...r, model } as RequestRecord) : undefined,
      onWarning: (message) => warn(`${model}: ${message}`),
      onProgress: ({ done, total, documents }) => {
        const now = performance.now();
        if (now - lastPrint < 1000 && done < total) return;
        lastPrint = now;
        const seconds = (now - t0) / 1000, rate = done / seconds;
        const docRate = (done / total) * documents / seconds;
        log(
          `[kobest] ${model}: ${done}/${total} requests of ${documents} documents, ${
            docRate.toFixed(1)
          } docs/s ` +
            `(${rate.toFixed(1)} req/s), ETA ${((total - done) / Math.max(rate, 1e-9)).toFixed(0)} s`,
        );
      },
    });
    for (const r of results) entries.push({ model, results: r });
    unloadLlama(loaded);
    await writeOutputs(o, entries, dump);
  }
  return { table: kobestMarkdownTable(entries), results: entries };
}

/**
 * A model to score, checked without loading its weights: the folder (a Hub id is downloaded), its config,
 * the weights' headers against the config, and its tokenizer. Errors name the model as given.
 */
async function checkModel(model: string, hub: HubOptions | undefined) {
  try {
    const dir = await resolveModelPath(model, hub);
    const config = (await openModelFolder(dir)).config;
    await loadTokenizer(dir);
    return { dir, maxPositions: config.maxPositionEmbeddings };
  } catch (e) {
    const message = (e as Error).message;
    throw new Error(message.includes(model) ? message : `--model ${model}: ${message}`, { cause: e });
  }
}

/** Writes what has been scored so far: the results JSON (one object, or an array) and the requests dump. */
async function writeOutputs(
  o: RunKobestOptions,
  entries: TableEntry[],
  dump: RequestRecord[],
): Promise<void> {
  if (o.out) {
    const all: LmEvalResults[] = entries.map((e) => e.results);
    await writeJsonAtomic(o.out, all.length === 1 ? all[0] : all, { indent: 2 });
  }
  if (o.dumpRequests) {
    await writeJsonlAtomic(o.dumpRequests, dump);
  }
}
