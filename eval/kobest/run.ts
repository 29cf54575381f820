/**
 * `deno task kobest` as a library call: for each model (a folder, a Hub id, or a PEFT adapter folder over
 * its base model), load it on the GPU, score KoBEST at every shot setting, then write lm-evaluation-harness
 * results JSON, the requests dump, and return the Markdown table (the paper's Table 2). With `baseUrl` the
 * models are served names, scored through any OpenAI-compatible `/v1/completions` endpoint with
 * lm-evaluation-harness's `local-completions` protocol (`eval/remote_model.ts`), tokenized here.
 *
 * The context window is the model's own, as lm-eval's Hugging Face model takes it (`max_position_embeddings`;
 * a sliding window shorter than that bounds it, since attention here is full), unless `maxLength` is given.
 *
 * Everything a run can get wrong is checked before the first model is scored: the output paths, the data
 * (every split, and the shots against the train splits) and every model (folder or Hub id, config, weights'
 * headers, tokenizer; or the served name at the endpoint). The outputs are rewritten after each model, so a
 * later failure loses nothing scored.
 *
 * @module
 */
import { Gpu } from "../../gpu/runtime.ts";
import { checkWritableFile, writeJsonAtomic } from "../../io/atomic.ts";
import type { ModelConfig } from "../../io/hf_config.ts";
import { writeJsonlAtomic } from "../../io/jsonl.ts";
import { downloadFiles, HubError, type HubOptions } from "../../io/hub.ts";
import { type ModelSource, resolveModelSource, resolveTokenizerSource } from "../../io/model_source.ts";
import { OpenAIClient } from "../../io/openai_client.ts";
import { loadLlamaWithAdapters } from "../../model/adapters.ts";
import { loadTokenizer, type TextTokenizer } from "../../text/tokenizer.ts";
import { GpuLogprobModel } from "../gpu_model.ts";
import type { TokenLogprobModel } from "../loglikelihood.ts";
import { RemoteLogprobModel } from "../remote_model.ts";
import {
  KOBEST_HUB_REPO,
  KOBEST_TASKS,
  kobestDataDirOf,
  kobestDataHelp,
  kobestHubFiles,
  type KobestSplit,
  type KobestTask,
} from "./data.ts";
import { checkKobestData, evaluateKobest, KOBEST_BATCH_SIZE, type RequestRecord } from "./evaluate.ts";
import { kobestMarkdownTable, type LmEvalResults, type TableEntry } from "./results.ts";

/** Options of {@link runKobest}. */
export interface RunKobestOptions {
  /** Model folders, Hub ids or adapter folders, scored in order; with `baseUrl`, served model names. */
  models: string[];
  /** An OpenAI-compatible endpoint (`http://host:8000/v1`) that scores the models (see {@link RemoteKobest}). */
  remote?: RemoteKobest;
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
  /** Sequences per forward pass, or prompts per request with `remote` (default 16). */
  batchSize?: number;
  /** Few-shot seed (default 1234, lm-eval's). */
  seed?: number;
  /**
   * Longest input in tokens (default: the model's `max_position_embeddings`). With `remote`, lm-eval's API
   * `max_length`: prompt plus the one generated token (default: the endpoint's `max_model_len`, else the
   * tokenizer folder's `max_position_embeddings`, else 2048 as lm-eval's).
   */
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

/** Scoring through a served model (lm-eval's `local-completions`). */
export interface RemoteKobest {
  /** Base URL as OpenAI SDKs take it (`http://127.0.0.1:8000/v1`). */
  baseUrl: string;
  /** The tokenizer (folder or Hub id) requests are tokenized with; default: the model name. */
  tokenizer?: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Requests in flight at once (lm-eval's `num_concurrent`; default {@link REMOTE_CONCURRENCY}). */
  concurrency?: number;
  /** HTTP retries per request on 429/5xx/network errors (default 5). */
  retries?: number;
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
  if (o.dumpRequests) await checkWritableFile(o.dumpRequests, "--dump_requests");
  const tasks = o.tasks ?? [...KOBEST_TASKS];
  const shots = o.shots ?? [0];
  const split = o.split ?? "test";
  const splits: KobestSplit[] = shots.some((k) => k > 0) && split !== "train" ? [split, "train"] : [split];
  const dataDir = await kobestDataDir(o.dataDir, tasks, splits, o.hub);
  await checkKobestData(dataDir, tasks, split, shots, warn);
  const models: ModelToScore[] = [];
  for (const name of o.models) {
    models.push(o.remote ? await checkRemoteModel(name, o, warn) : await checkModel(name, o, warn));
  }
  const gpu = o.remote ? undefined : o.gpu ?? await Gpu.create();
  if (gpu) log(`[kobest] adapter: ${gpu.describe()}`);
  const entries: TableEntry[] = [];
  const dump: RequestRecord[] = [];
  for (const m of models) {
    const { scorer, batchSize, release } = await m.open(gpu);
    const model = m.name;
    const t0 = performance.now();
    let lastPrint = 0;
    try {
      const results = await evaluateKobest(scorer, m.tokenizer, {
        dataDir,
        tasks,
        shots,
        split,
        limit: o.limit,
        seed: o.seed,
        batchSize,
        modelName: model,
        modelArgs: m.modelArgs,
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
    } finally {
      release();
    }
    await writeOutputs(o, entries, dump);
  }
  return { table: kobestMarkdownTable(entries), results: entries };
}

/** A model checked and ready to be opened for scoring. */
interface ModelToScore {
  name: string;
  tokenizer: TextTokenizer;
  /** Recorded as the results' `model_args`, as lm-eval writes it. */
  modelArgs: string;
  /** Loads (or connects) the scorer; `release` frees it. */
  open(gpu: Gpu | undefined): Promise<{ scorer: TokenLogprobModel; batchSize: number; release: () => void }>;
}

/**
 * The context window lm-eval's Hugging Face model gives a model: `max_position_embeddings`, unless given;
 * a sliding window shorter than that bounds it (attention here is full), with a warning.
 */
function modelWindow(
  config: ModelConfig,
  asked: number | undefined,
  name: string,
  warn: (m: string) => void,
): number {
  if (asked !== undefined) return asked;
  const window = config.maxPositionEmbeddings;
  if (config.slidingWindow !== null && config.slidingWindow < window) {
    warn(
      `${name}: max_length is the sliding window (${config.slidingWindow}), not max_position_embeddings ` +
        `(${window}): this toolkit computes full attention`,
    );
    return config.slidingWindow;
  }
  return window;
}

/** Rows one batch of the local scorer holds per sequence: contexts past this run in smaller batches. */
const WORKSPACE_LENGTH = 2048;

/**
 * A model to score, checked without loading its weights: the folder (a Hub id is downloaded; an adapter's
 * base model is resolved), its config, the weights' headers against the config, and its tokenizer. Errors
 * name the model as given.
 */
async function checkModel(
  model: string,
  o: RunKobestOptions,
  warn: (m: string) => void,
): Promise<ModelToScore> {
  let source: ModelSource;
  let tokenizer: TextTokenizer;
  try {
    source = await resolveModelSource(model, o.hub);
    tokenizer = await loadTokenizer(source.tokenizerDir);
  } catch (e) {
    throw named(model, e);
  }
  const maxLength = modelWindow(source.config, o.maxLength, model, warn);
  const batchSize = o.batchSize ?? KOBEST_BATCH_SIZE;
  const pretrained = source.adapter
    ? `pretrained=${source.modelDir},peft=${source.adapter.dir}`
    : `pretrained=${source.modelDir}`;
  return {
    name: model,
    tokenizer,
    modelArgs: `${pretrained},max_length=${maxLength}`,
    open: async (gpu) => {
      const positions = Math.ceil(maxLength / 64) * 64;
      const { loaded, release } = await loadLlamaWithAdapters(
        gpu!,
        source.modelDir,
        source.adapter ? [source.adapter] : [],
        {
          maxTokens: batchSize * Math.min(positions, WORKSPACE_LENGTH),
          maxPositions: positions,
          ignoreUnusedWeights: o.ignoreUnusedWeights,
          warn,
        },
      );
      return { scorer: new GpuLogprobModel(gpu!, loaded, { maxLength }), batchSize, release };
    },
  };
}

/**
 * A served model to score: the endpoint lists it, and its tokenizer (folder or Hub id) loads. Errors name the
 * URL and the model.
 */
async function checkRemoteModel(
  model: string,
  o: RunKobestOptions,
  warn: (m: string) => void,
): Promise<ModelToScore> {
  const remote = o.remote!;
  const client = new OpenAIClient({
    baseUrl: remote.baseUrl,
    apiKey: remote.apiKey,
    retries: remote.retries,
  });
  let served: { id: string; maxModelLen?: number }[];
  try {
    served = await client.listModelCards();
  } catch (e) {
    throw new Error(`--base_url ${remote.baseUrl}: ${(e as Error).message}`, { cause: e });
  }
  const card = served.find((m) => m.id === model);
  if (!card) {
    throw new Error(
      `--model ${model}: ${client.baseUrl}/models does not list it (it serves ${
        served.map((m) => m.id).join(", ")
      })`,
    );
  }
  const tokenizerName = remote.tokenizer ?? model;
  let tokenizer: TextTokenizer;
  let config: ModelConfig | undefined;
  try {
    const found = await resolveTokenizerSource(tokenizerName, o.hub);
    tokenizer = await loadTokenizer(found.dir);
    config = found.config;
  } catch (e) {
    throw new Error(`--tokenizer ${tokenizerName}: ${(e as Error).message}`, { cause: e });
  }
  const maxLength = o.maxLength ?? card.maxModelLen ??
    (config ? modelWindow(config, undefined, model, warn) : API_DEFAULT_MAX_LENGTH);
  if (!(maxLength >= 3)) {
    throw new RangeError(`--max_length must be at least 3 with --base_url, got ${maxLength}`);
  }
  const requestBatch = o.batchSize ?? KOBEST_BATCH_SIZE;
  const concurrency = remote.concurrency ?? REMOTE_CONCURRENCY;
  return {
    name: model,
    tokenizer,
    modelArgs: `base_url=${client.baseUrl}/completions,model=${model},tokenizer=${tokenizerName},` +
      `max_length=${maxLength},batch_size=${requestBatch},num_concurrent=${concurrency}`,
    open: () => {
      // lm-eval's API models keep max_length − 1 prompt tokens for the one generated token.
      const scorer = new RemoteLogprobModel(client, {
        model,
        maxLength: maxLength - 2,
        requestBatch,
        concurrency,
      });
      return Promise.resolve({ scorer, batchSize: scorer.batchSize, release: () => {} });
    },
  };
}

/** Requests in flight at once through an endpoint unless told otherwise. */
export const REMOTE_CONCURRENCY = 4;

/** lm-eval's default `max_length` for API models. */
const API_DEFAULT_MAX_LENGTH = 2048;

function named(model: string, e: unknown): Error {
  const message = (e as Error).message;
  return new Error(message.includes(model) ? message : `--model ${model}: ${message}`, { cause: e });
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
