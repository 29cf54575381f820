/**
 * The KoBEST evaluation driver: loads the splits, builds every lm-eval request (context with its shots,
 * one continuation per choice), scores them all with one call of `scoreRequests` (so batches fill across
 * tasks and shot settings), and returns one lm-eval results object per shot setting.
 *
 * @module
 */
import {
  KOBEST_TASKS,
  type KobestDocMap,
  type KobestSplit,
  type KobestTask,
  limitedCount,
  loadKobestSplit,
} from "./data.ts";
import { DEFAULT_FEWSHOT_SEED, FewshotSampler, TARGET_DELIMITER } from "./fewshot.ts";
import { kobestPrompt } from "./prompts.ts";
import { buildLmEvalResults, type DocScore, type LmEvalResults, scoreTask } from "./results.ts";
import {
  type LoglikelihoodRequest,
  scoreRequests,
  type TokenEncoder,
  type TokenLogprobModel,
} from "../loglikelihood.ts";

/** Sequences per model call unless told otherwise (lm-eval's results record it as `batch_size`). */
export const KOBEST_BATCH_SIZE = 16;

/** One scored request, as `--dump_requests` writes it (one JSON object per line). */
export interface RequestRecord {
  /** The task the document belongs to. */
  task: KobestTask;
  /** Few-shot examples in the context. */
  shots: number;
  /** Index of the document in the scored split. */
  docIndex: number;
  /** Index of the choice this request scores. */
  choiceIndex: number;
  /** Index of the correct choice. */
  gold: number;
  /** The full context string, shots included, before the trailing-space move. */
  context: string;
  /** The continuation: target delimiter + choice. */
  continuation: string;
  /** Summed log-probability of the continuation's tokens (natural log). */
  loglikelihood: number;
  /** Whether every continuation token was the model's argmax, as lm-eval's `is_greedy`. */
  isGreedy: boolean;
}

/** Options of {@link evaluateKobest}. */
export interface EvaluateKobestOptions {
  /** Folder in the TSV or Hub jsonl layout (see `data.ts`). */
  dataDir: string;
  /** Tasks to score (default: all five). */
  tasks?: readonly KobestTask[];
  /** Shot settings; one results object each (default [0]). */
  shots?: readonly number[];
  /** Split scored (default "test", as lm-eval). Shots always come from train. */
  split?: KobestSplit;
  /** First N documents per task, or a fraction in (0, 1) of them rounded up, as lm-eval's --limit. */
  limit?: number;
  /** Few-shot seed (default 1234). */
  seed?: number;
  /** Sequences per model call (default {@link KOBEST_BATCH_SIZE}). */
  batchSize?: number;
  /** Passed to the tokenizer; undefined keeps its default special tokens (current lm-eval). */
  addSpecialTokens?: boolean;
  /** Recorded as `config.model` / `config.model_args` in the results. */
  modelName?: string;
  /** Recorded as `config.model_args`, e.g. `pretrained=DIR,max_length=2048`. */
  modelArgs?: string;
  /** Receives every scored request once scoring is done, in task, shots, document, choice order. */
  dumpRequests?: (record: RequestRecord) => void;
  /** Progress over all requests of all tasks and shot settings. */
  onProgress?: (progress: { done: number; total: number; documents: number }) => void;
  /**
   * Receives warnings with counts: TSV rows dropped for an empty field, and documents whose context was cut
   * to the model's window (so a k-shot setting kept fewer than k whole shots). Silent when absent.
   */
  onWarning?: (message: string) => void;
}

/** The requests of one (task, shots) run, with where each came from. */
interface TaskRun {
  task: KobestTask;
  shots: number;
  originalSize: number;
  docs: { gold: number; choices: string[]; first: number }[];
}

interface Loaded<T extends KobestTask> {
  evalDocs: KobestDocMap[T][];
  trainDocs: KobestDocMap[T][];
}

async function loadTask<T extends KobestTask>(
  dataDir: string,
  task: T,
  split: KobestSplit,
  shots: readonly number[],
  warn?: (message: string) => void,
): Promise<Loaded<T>> {
  const evalDocs = await loadKobestSplit(dataDir, task, split, warn);
  const most = Math.max(0, ...shots);
  const trainDocs = most > 0
    ? (split === "train" ? evalDocs : await loadKobestSplit(dataDir, task, "train", warn))
    : [];
  if (most > trainDocs.length && most > 0) {
    throw new RangeError(
      `${task}: ${most} shots asked, but the train split has ${trainDocs.length} documents`,
    );
  }
  return { evalDocs, trainDocs };
}

/**
 * Loads every split a run needs and checks the shot settings against the train splits, so that bad data
 * or `--shots` is found before a model is loaded. `warn` receives the counts of dropped rows.
 *
 * @example
 * ```ts
 * await checkKobestData("data/kobest_tiny", ["copa", "wic"], "test", [0, 5], console.warn);
 * ```
 */
export async function checkKobestData(
  dataDir: string,
  tasks: readonly KobestTask[],
  split: KobestSplit,
  shots: readonly number[],
  warn?: (message: string) => void,
): Promise<void> {
  checkShots(shots);
  for (const task of tasks) await loadTask(dataDir, task, split, shots, warn);
}

function checkShots(shots: readonly number[]): void {
  for (const k of shots) {
    if (!(Number.isInteger(k) && k >= 0)) throw new RangeError(`shots must be integers ≥ 0, got ${k}`);
  }
}

/** Appends the requests of one task at one shot setting to `requests`; returns how to read them back. */
function buildTaskRun<T extends KobestTask>(
  task: T,
  shots: number,
  loaded: Loaded<T>,
  options: EvaluateKobestOptions,
  requests: LoglikelihoodRequest[],
): TaskRun {
  const sampler = new FewshotSampler(task, loaded.trainDocs, options.seed ?? DEFAULT_FEWSHOT_SEED);
  const count = limitedCount(loaded.evalDocs.length, options.limit);
  const run: TaskRun = { task, shots, originalSize: loaded.evalDocs.length, docs: [] };
  for (let i = 0; i < count; i++) {
    const doc = loaded.evalDocs[i];
    const { choices, gold } = kobestPrompt(task, doc);
    const context = sampler.context(doc, shots);
    run.docs.push({ gold, choices, first: requests.length });
    for (const choice of choices) {
      requests.push({ context, continuation: TARGET_DELIMITER + choice, group: `${shots}/${task}/${i}` });
    }
  }
  return run;
}

/**
 * Scores a model on KoBEST exactly as lm-evaluation-harness does and returns one results object per shot
 * setting (in the order of `shots`).
 *
 * @example
 * ```ts
 * const [zero, five] = await evaluateKobest(model, tokenizer, { dataDir: "data/kobest", shots: [0, 5] });
 * zero.results.kobest_copa["f1,none"];
 * ```
 */
export async function evaluateKobest(
  model: TokenLogprobModel,
  tokenizer: TokenEncoder,
  options: EvaluateKobestOptions,
): Promise<LmEvalResults[]> {
  const tasks = options.tasks ?? KOBEST_TASKS;
  const shotList = options.shots ?? [0];
  const split = options.split ?? "test";
  checkShots(shotList);
  const requests: LoglikelihoodRequest[] = [];
  const runs: TaskRun[] = [];
  for (const task of tasks) {
    const loaded = await loadTask(options.dataDir, task, split, shotList, options.onWarning);
    for (const shots of shotList) runs.push(buildTaskRun(task, shots, loaded, options, requests));
  }
  const cut = new Set<number>();
  const scored = await scoreRequests(model, tokenizer, requests, {
    batchSize: options.batchSize,
    addSpecialTokens: options.addSpecialTokens,
    onProgress: options.onProgress &&
      ((p) => options.onProgress!({ ...p, documents: runs.reduce((n, r) => n + r.docs.length, 0) })),
    onTruncated: (request) => cut.add(request),
  });
  if (cut.size > 0 && options.onWarning) warnTruncated(runs, cut, model.maxLength, options.onWarning);
  if (options.dumpRequests) dumpRuns(runs, requests, scored, options.dumpRequests);
  const date = Date.now() / 1000;
  return shotList.map((shots) => {
    const ofShots = runs.filter((r) => r.shots === shots);
    return buildLmEvalResults({
      scores: ofShots.map((run) => scoreTask(run.task, docScores(run, scored))),
      shots,
      originalSizes: Object.fromEntries(ofShots.map((r) => [r.task, r.originalSize])),
      config: {
        model: options.modelName ?? "kotransfer",
        model_args: options.modelArgs ?? "",
        batch_size: options.batchSize ?? KOBEST_BATCH_SIZE,
        limit: options.limit ?? null,
        bootstrap_iters: 100000,
        fewshot_seed: options.seed ?? DEFAULT_FEWSHOT_SEED,
        split,
        add_special_tokens: options.addSpecialTokens ?? "default",
      },
      date,
    });
  });
}

/** One warning per shot setting: how many documents lost the start of their context, by task. */
function warnTruncated(
  runs: TaskRun[],
  cut: ReadonlySet<number>,
  maxLength: number,
  warn: (message: string) => void,
): void {
  for (const shots of new Set(runs.map((r) => r.shots))) {
    const ofShots = runs.filter((r) => r.shots === shots);
    const byTask = ofShots.map((r) => {
      const n = r.docs.filter((d) => d.choices.some((_, c) => cut.has(d.first + c))).length;
      return { task: r.task, n, of: r.docs.length };
    }).filter((t) => t.n > 0);
    if (byTask.length === 0) continue;
    const total = byTask.reduce((a, t) => a + t.n, 0);
    const documents = ofShots.reduce((a, r) => a + r.docs.length, 0);
    warn(
      `${shots}-shot: ${total} of ${documents} documents (${
        byTask.map((t) => `${t.task} ${t.n}/${t.of}`).join(", ")
      }) are longer than max_length ${maxLength} tokens and lost the start of their context` +
        (shots > 0 ? `, so fewer than ${shots} whole shots (lm-eval cuts them the same way)` : ""),
    );
  }
}

function docScores(run: TaskRun, scored: { loglikelihood: number }[]): DocScore[] {
  return run.docs.map((d) => ({
    gold: d.gold,
    choices: d.choices,
    loglikelihoods: d.choices.map((_, c) => scored[d.first + c].loglikelihood),
  }));
}

function dumpRuns(
  runs: TaskRun[],
  requests: LoglikelihoodRequest[],
  scored: { loglikelihood: number; isGreedy: boolean }[],
  dump: (record: RequestRecord) => void,
): void {
  for (const run of runs) {
    run.docs.forEach((d, docIndex) => {
      d.choices.forEach((_, choiceIndex) => {
        const r = d.first + choiceIndex;
        dump({
          task: run.task,
          shots: run.shots,
          docIndex,
          choiceIndex,
          gold: d.gold,
          context: requests[r].context,
          continuation: requests[r].continuation,
          loglikelihood: scored[r].loglikelihood,
          isGreedy: scored[r].isGreedy,
        });
      });
    });
  }
}
