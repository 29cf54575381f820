/**
 * What a report is made of, read from the files the other commands write, with the kind of each input
 * told apart by its content:
 *
 * - a training run folder (`deno task sft|dpo|orpo --output_dir DIR`): `training_args.json` and the log,
 *   `metrics.jsonl` (streamed while training), else `trainer_state.json`'s `log_history` (at the root, or
 *   of the newest `checkpoint-N/`: a folder the Hugging Face Trainer or TRL wrote reads the same way); its
 *   `metrics.jsonl` or `trainer_state.json` given as a file means the same run. A folder of the layout before
 *   TRL's (`train_config.json`, `eval_rewards_margins`) still reads, its evaluation keys renamed as TRL
 *   names them (`eval_rewards/margins`);
 * - KoBEST results in lm-evaluation-harness's layout (`eval/kobest/results.ts`): a JSON file holding one
 *   results object (one model at one shot setting) or an array of them; real lm-eval `results_*.json`
 *   files read the same way, other tasks in them are ignored;
 * - win rates from `deno task winrate` (`eval/winrate/`): the JSON summary (`{judge, pairs}`), or the
 *   results JSONL (one judged question per line), summarised here as the summary does, with no count of
 *   missing answers (the JSONL does not record them). A person's votes from `deno task arena` are read the
 *   same way (judge `human:<name>`, its own summary JSON or its lines in the results JSONL); from the JSONL
 *   each judge's lines are kept too, for the judges' agreement.
 *
 * Errors name the file (and line or field) and what was expected.
 *
 * @module
 */
import { basename, dirname } from "node:path";
import { KOBEST_TASKS, type KobestTask } from "../eval/kobest/data.ts";
import { type LmEvalResults, lmEvalTaskName } from "../eval/kobest/results.ts";
import { type JudgmentRecord, type OrderRule, parseJudgment } from "../eval/winrate/judgments.ts";
import { type JsonlRow, parseJsonl } from "../io/jsonl.ts";
import { type PairSummary, summarizePair } from "../eval/winrate/summary.ts";
import { listCheckpoints, RUN_FILES } from "../train/checkpoint.ts";

/**
 * Thrown for an input that cannot be read or is of no known kind; the message names the file.
 *
 * @example
 * ```ts
 * await readReportInput("notes.txt"); // ReportInputError: notes.txt: not a report input. Expected …
 * ```
 */
export class ReportInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ReportInputError";
  }
}

/** One `log_history` entry (a line of `metrics.jsonl`): the step and the numbers logged for it. */
export type MetricRecord = Readonly<Record<string, number>>;

/** A training run folder's settings and logged metrics. */
export interface TrainingRun {
  /** Shown in legends and tables: the folder's name, or its path where two runs share a name. */
  name: string;
  dir: string;
  /** `training_args.json` (or an older run's `train_config.json`), when the folder has one. */
  config?: Record<string, unknown>;
  /** Training steps in step order (one record per step; a step logged twice keeps its last record). */
  train: MetricRecord[];
  /** Evaluation records (`eval_*` keys) in step order. */
  eval: MetricRecord[];
  /** The Trainer's closing entry (`train_runtime`, `train_loss`, …), when the run finished. */
  summary?: MetricRecord;
}

/** KoBEST results of one model at one shot setting. */
export interface KobestEntry {
  /** Shown in legends and tables (see {@link kobestModelName}). */
  model: string;
  shots: number;
  results: LmEvalResults;
  /** The file (and array index) it came from. */
  source: string;
}

/** The pairs one judge compared. */
export interface WinRateSet {
  judge: string;
  pairs: PairSummary[];
  source: string;
  /** How a person's questions were shown (absent: both orders, as an LLM judge plays). */
  orders?: OrderRule;
  /** The judge's last line per pair and question, when read from a results JSONL (for the agreement). */
  records?: JudgmentRecord[];
}

/** One input file or folder, read and recognised. */
export type ReportInput =
  | { kind: "run"; run: TrainingRun }
  | { kind: "kobest"; entries: KobestEntry[] }
  | { kind: "winrate"; sets: WinRateSet[] };

/** Everything a report shows, gathered from all inputs. */
export interface ReportInputs {
  runs: TrainingRun[];
  kobest: KobestEntry[];
  winRates: WinRateSet[];
  /** The paths given, in order. */
  sources: string[];
}

const EXPECTED_KINDS = "a training run folder (metrics.jsonl or trainer_state.json, training_args.json), a " +
  "KoBEST results JSON " +
  '(lm-evaluation-harness layout: "results", "n-shot"; one object or an array), a win-rate summary JSON ' +
  '("judge", "pairs") or a win-rate results JSONL (lines with "model_a", "model_b", "outcome")';

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

// ---------------------------------------------------------------------------------------------------------
// Reading any input

/**
 * Reads one input and tells its kind from its content.
 *
 * @example
 * ```ts
 * const input = await readReportInput("runs/orpo-tiny");
 * if (input.kind === "run") console.log(input.run.train.length, "steps logged");
 * ```
 */
export async function readReportInput(path: string): Promise<ReportInput> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new ReportInputError(`${path}: no such file or folder`);
    throw new ReportInputError(`${path}: cannot read it (${(e as Error).message})`);
  }
  if (info.isDirectory) return { kind: "run", run: await readTrainingRun(path) };
  return await readInputFile(path);
}

async function readInputFile(path: string): Promise<ReportInput> {
  const text = await readText(path);
  const whole = tryParseJson(text);
  if (whole.ok && isObject(whole.value) && Array.isArray(whole.value.log_history)) {
    return { kind: "run", run: await readTrainingRun(dirname(path)) };
  }
  if (whole.ok) {
    const kind = jsonKind(whole.value);
    if (kind === "kobest") return { kind, entries: parseKobestResults(whole.value, path) };
    if (kind === "summary") return { kind: "winrate", sets: [parseWinRateSummary(whole.value, path)] };
  }
  // A one-line JSONL file is also a JSON document, so the JSONL kinds are checked after the JSON ones.
  const first = firstJsonlValue(text);
  if (isJudgment(first)) return { kind: "winrate", sets: parseJudgments(text, path) };
  if (isObject(first) && typeof first.step === "number") {
    return { kind: "run", run: await readTrainingRun(dirname(path)) };
  }
  const found = whole.ok ? describeJson(whole.value) : first === undefined ? "no JSON" : describeJson(first);
  throw new ReportInputError(`${path}: not a report input (found ${found}). Expected ${EXPECTED_KINDS}`);
}

function describeJson(value: unknown): string {
  if (Array.isArray(value)) return `a JSON array of ${value.length}`;
  if (isObject(value)) {
    const keys = Object.keys(value);
    return `a JSON object with keys ${keys.slice(0, 6).join(", ")}${keys.length > 6 ? ", ..." : ""}`;
  }
  return `JSON ${show(value)}`;
}

async function readText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new ReportInputError(`${path}: cannot read it (${(e as Error).message})`);
  }
}

function tryParseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

function firstJsonlValue(text: string): unknown {
  const line = text.split("\n").find((l) => l.trim() !== "");
  if (line === undefined) return undefined;
  const parsed = tryParseJson(line);
  return parsed.ok ? parsed.value : undefined;
}

function isLmEvalResults(value: unknown): boolean {
  return isObject(value) && isObject(value.results) && isObject(value["n-shot"]);
}

function jsonKind(value: unknown): "kobest" | "summary" | undefined {
  if (isLmEvalResults(value)) return "kobest";
  if (Array.isArray(value) && value.length > 0 && value.every(isLmEvalResults)) return "kobest";
  if (isObject(value) && typeof value.judge === "string" && Array.isArray(value.pairs)) return "summary";
  return undefined;
}

function isJudgment(value: unknown): boolean {
  return isObject(value) && typeof value.model_a === "string" && typeof value.model_b === "string" &&
    typeof value.outcome === "string";
}

/**
 * Reads every input and merges them: run names are made unique (a run's path replaces its folder name
 * where names collide), KoBEST models whose (name, shots) collide across files are told apart by file name,
 * and win rates are grouped by judge, a (judge, model A, model B) pair given twice keeping its first
 * appearance.
 *
 * @example
 * ```ts
 * const inputs = await readReportInputs(["runs/orpo-tiny", "runs/kobest.json", "runs/winrate/judgments.summary.json"]);
 * inputs.runs.length; // 1
 * ```
 */
export async function readReportInputs(paths: readonly string[]): Promise<ReportInputs> {
  if (paths.length === 0) throw new ReportInputError(`no inputs: give at least one of ${EXPECTED_KINDS}`);
  const inputs: ReportInputs = { runs: [], kobest: [], winRates: [], sources: [...paths] };
  for (const path of paths) {
    const input = await readReportInput(path);
    if (input.kind === "run") inputs.runs.push(input.run);
    else if (input.kind === "kobest") inputs.kobest.push(...input.entries);
    else inputs.winRates.push(...input.sets);
  }
  inputs.runs = uniqueRunNames(inputs.runs);
  inputs.kobest = distinctKobestModels(inputs.kobest);
  inputs.winRates = mergeByJudge(inputs.winRates);
  return inputs;
}

// ---------------------------------------------------------------------------------------------------------
// Training runs

/**
 * Reads a run folder's settings (`training_args.json`, or an older run's `train_config.json`) and its log:
 * `metrics.jsonl` (a run still training is fine: a last line cut short is skipped), else the `log_history`
 * of `trainer_state.json` at the root or in the newest checkpoint.
 *
 * @example
 * ```ts
 * const run = await readTrainingRun("runs/orpo-tiny");
 * run.train.at(-1)?.loss;
 * ```
 */
export async function readTrainingRun(dir: string): Promise<TrainingRun> {
  let configPath = `${dir}/${RUN_FILES.args}`;
  let configText = await readOptional(configPath);
  if (configText === undefined) {
    configPath = `${dir}/${OLD_CONFIG}`;
    configText = await readOptional(configPath);
  }
  const metricsPath = `${dir}/${RUN_FILES.metrics}`;
  const metricsText = await readOptional(metricsPath);
  const run: TrainingRun = { name: basename(dir), dir, train: [], eval: [] };
  if (configText !== undefined) run.config = parseTrainConfig(configText, configPath);
  if (metricsText !== undefined) Object.assign(run, parseMetricsJsonl(metricsText, metricsPath));
  else {
    const statePath = await trainerStatePath(dir);
    if (statePath !== undefined) Object.assign(run, parseLogHistory(await readText(statePath), statePath));
    else if (configText === undefined) {
      throw new ReportInputError(
        `${dir}: a folder, but not a training run (it has none of ${RUN_FILES.metrics}, ${RUN_FILES.state}, ` +
          `${RUN_FILES.args})`,
      );
    }
  }
  return run;
}

/** What runs before TRL's layout called their settings file. */
const OLD_CONFIG = "train_config.json";

/** `trainer_state.json` at the root of a run folder, else in its newest checkpoint. */
async function trainerStatePath(dir: string): Promise<string | undefined> {
  const root = `${dir}/${RUN_FILES.state}`;
  if (await readOptional(root) !== undefined) return root;
  const newest = (await listCheckpoints(dir)).at(-1);
  return newest ? `${newest.dir}/${RUN_FILES.state}` : undefined;
}

/** The records of a `trainer_state.json`'s `log_history`. */
function parseLogHistory(text: string, file: string): Pick<TrainingRun, "train" | "eval" | "summary"> {
  const parsed = tryParseJson(text);
  if (!parsed.ok || !isObject(parsed.value) || !Array.isArray(parsed.value.log_history)) {
    throw new ReportInputError(
      `${file}: expected the Trainer's state, a JSON object with a "log_history" list`,
    );
  }
  const history = parsed.value.log_history as unknown[];
  return splitRecords(history.map((entry, i) => {
    if (!isObject(entry)) throw new ReportInputError(`${file}: log_history[${i}]: expected an object`);
    return metricRecord(entry, `${file}: log_history[${i}]`);
  }));
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new ReportInputError(`${path}: cannot read it (${(e as Error).message})`);
  }
}

function parseTrainConfig(text: string, file: string): Record<string, unknown> {
  const parsed = tryParseJson(text);
  if (!parsed.ok || !isObject(parsed.value)) {
    throw new ReportInputError(`${file}: expected a JSON object (the run's settings)`);
  }
  return parsed.value;
}

/**
 * Splits `metrics.jsonl` text into training and evaluation records, each sorted by step, and the closing
 * summary. Every value must be a number and `step` a positive integer.
 *
 * @example
 * ```ts
 * parseMetricsJsonl('{"step":1,"loss":2}\n{"step":1,"eval_loss":2.5}\n', "metrics.jsonl");
 * // { train: [{ step: 1, loss: 2 }], eval: [{ step: 1, eval_loss: 2.5 }] }
 * ```
 */
export function parseMetricsJsonl(
  text: string,
  file: string,
): Pick<TrainingRun, "train" | "eval" | "summary"> {
  return splitRecords(logRows(text, file).map(({ value, where }) => metricRecord(value, where)));
}

/**
 * Training, evaluation and summary records: a step logged again (a run resumed from an earlier checkpoint)
 * replaces the earlier record. Evaluation keys of runs before TRL's names (`eval_rewards_margins`) are read as
 * TRL names them (`eval_rewards/margins`).
 */
function splitRecords(records: MetricRecord[]): Pick<TrainingRun, "train" | "eval" | "summary"> {
  const train = new Map<number, MetricRecord>();
  const evals = new Map<number, MetricRecord>();
  let summary: MetricRecord | undefined;
  for (const record of records) {
    if (record.train_runtime !== undefined) {
      summary = record;
      continue;
    }
    const isEval = Object.keys(record).some((k) => k.startsWith("eval_"));
    (isEval ? evals : train).set(record.step, isEval ? trlEvalNames(record) : record);
  }
  const byStep = (m: Map<number, MetricRecord>) => [...m.values()].sort((a, b) => a.step - b.step);
  return { train: byStep(train), eval: byStep(evals), ...(summary ? { summary } : {}) };
}

/** `eval_rewards_margins` → `eval_rewards/margins`, as older runs of this toolkit wrote them. */
function trlEvalNames(record: MetricRecord): MetricRecord {
  return Object.fromEntries(
    Object.entries(record).map((
      [k, v],
    ) => [k.replace(/^eval_(rewards|logps|logits)_(\w+)$/, "eval_$1/$2"), v]),
  );
}

function metricRecord(row: Json, where: string): MetricRecord & { step: number } {
  if (!(Number.isSafeInteger(row.step) && (row.step as number) > 0)) {
    throw new ReportInputError(`${where}: "step": expected a positive integer, got ${show(row.step)}`);
  }
  for (const [key, value] of Object.entries(row)) {
    if (typeof value !== "number") {
      throw new ReportInputError(`${where}: "${key}": expected a number, got ${show(value)}`);
    }
  }
  return row as MetricRecord & { step: number };
}

/**
 * The objects of a log's JSONL text (metrics, judgments). A last line cut short is a write in progress (a
 * run still training, a judge still judging) and is left out with a warning; any other bad line is an error.
 */
function logRows(text: string, file: string): JsonlRow[] {
  return parseJsonl(text, file, { log: true, error: reportError });
}

function reportError(message: string): ReportInputError {
  return new ReportInputError(message);
}

function uniqueRunNames(runs: TrainingRun[]): TrainingRun[] {
  const seenDirs = new Set<string>();
  for (const run of runs) {
    if (seenDirs.has(run.dir)) throw new ReportInputError(`${run.dir}: the same run folder is given twice`);
    seenDirs.add(run.dir);
  }
  const count = (name: string) => runs.filter((r) => r.name === name).length;
  return runs.map((run) => count(run.name) > 1 ? { ...run, name: run.dir } : run);
}

// ---------------------------------------------------------------------------------------------------------
// KoBEST results

/** `config.model` values that name an lm-eval backend rather than the model itself. */
const LM_EVAL_BACKENDS = new Set([
  "hf",
  "hf-auto",
  "huggingface",
  "vllm",
  "sglang",
  "gguf",
  "ggml",
  "openai-completions",
  "openai-chat-completions",
  "local-completions",
  "local-chat-completions",
]);

/**
 * The name a results object goes by: lm-eval's top-level `model_name`, else `config.model` unless it is a
 * backend name like `hf`, else `pretrained=…` from `config.model_args`, else `config.model`.
 *
 * @example
 * ```ts
 * kobestModelName({ config: { model: "hf", model_args: "pretrained=EleutherAI/polyglot-ko-1.3b,dtype=float16" } });
 * // "EleutherAI/polyglot-ko-1.3b"
 * ```
 */
export function kobestModelName(results: Json): string | undefined {
  if (typeof results.model_name === "string" && results.model_name !== "") return results.model_name;
  const config = isObject(results.config) ? results.config : {};
  const model = typeof config.model === "string" && config.model !== "" ? config.model : undefined;
  if (model !== undefined && !LM_EVAL_BACKENDS.has(model)) return model;
  const args = typeof config.model_args === "string" ? config.model_args : "";
  const pretrained = /(?:^|,)\s*pretrained=([^,]+)/.exec(args)?.[1]?.trim();
  return pretrained || model;
}

/**
 * Checks lm-eval results (one object, or an array of them) for what the report reads, and returns one
 * entry per object.
 *
 * @example
 * ```ts
 * const entries = parseKobestResults(JSON.parse(await Deno.readTextFile("kobest.json")), "kobest.json");
 * entries[0].shots; // 0
 * ```
 */
export function parseKobestResults(value: unknown, file: string): KobestEntry[] {
  const objects = Array.isArray(value) ? value : [value];
  return objects.map((obj, i) => kobestEntry(obj, Array.isArray(value) ? `${file}[${i}]` : file));
}

function kobestEntry(value: unknown, where: string): KobestEntry {
  if (!isLmEvalResults(value)) {
    throw new ReportInputError(`${where}: expected an lm-eval results object with "results" and "n-shot"`);
  }
  const results = value as Json & { results: Json; "n-shot": Json };
  const tasks = KOBEST_TASKS.filter((t) => lmEvalTaskName(t) in results.results);
  if (tasks.length === 0) {
    throw new ReportInputError(
      `${where}: no kobest_* task in "results" (found ${describeJson(results.results)})`,
    );
  }
  for (const task of tasks) checkKobestTask(results, task, where);
  const model = kobestModelName(results);
  if (model === undefined) {
    throw new ReportInputError(
      `${where}: no model name (expected "model_name", "config.model" or "pretrained=…" in "config.model_args")`,
    );
  }
  return {
    model,
    shots: shotsOf(results, tasks, where),
    results: results as unknown as LmEvalResults,
    source: where,
  };
}

function checkKobestTask(results: Json & { results: Json }, task: KobestTask, where: string): void {
  const name = lmEvalTaskName(task);
  const row = results.results[name];
  if (!isObject(row)) throw new ReportInputError(`${where}: results.${name}: expected an object`);
  for (const metric of ["f1,none", "acc,none"]) {
    if (typeof row[metric] !== "number") {
      throw new ReportInputError(
        `${where}: results.${name}["${metric}"]: expected a number, got ${show(row[metric])}`,
      );
    }
  }
  const samples = isObject(results["n-samples"]) ? results["n-samples"][name] : undefined;
  if (!isObject(samples) || !(Number.isSafeInteger(samples.effective) && (samples.effective as number) > 0)) {
    throw new ReportInputError(
      `${where}: "n-samples".${name}.effective: expected a positive integer (the documents scored), ` +
        `got ${show(isObject(samples) ? samples.effective : samples)}`,
    );
  }
}

function shotsOf(results: { "n-shot": Json }, tasks: readonly KobestTask[], where: string): number {
  const shots = tasks.map((t) => results["n-shot"][lmEvalTaskName(t)]);
  shots.forEach((s, i) => {
    if (!(Number.isSafeInteger(s) && (s as number) >= 0)) {
      throw new ReportInputError(
        `${where}: "n-shot".${lmEvalTaskName(tasks[i])}: expected an integer ≥ 0, got ${show(s)}`,
      );
    }
  });
  if (new Set(shots).size > 1) {
    const listed = tasks.map((t, i) => `${lmEvalTaskName(t)} ${shots[i]}`).join(", ");
    throw new ReportInputError(
      `${where}: "n-shot" mixes shot settings (${listed}); write one results object per shot setting`,
    );
  }
  return shots[0] as number;
}

function distinctKobestModels(entries: KobestEntry[]): KobestEntry[] {
  const key = (e: KobestEntry) => JSON.stringify([e.model, e.shots]);
  const colliding = new Set<string>();
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(key(e))) colliding.add(e.model);
    seen.add(key(e));
  }
  const renamed = entries.map((e) =>
    colliding.has(e.model) ? { ...e, model: `${e.model} (${fileOf(e.source)})` } : e
  );
  const final = new Map<string, KobestEntry>();
  for (const e of renamed) {
    const other = final.get(key(e));
    if (other) {
      throw new ReportInputError(
        `${e.source}: ${e.model} at ${e.shots} shots is also in ${other.source}; give each result once`,
      );
    }
    final.set(key(e), e);
  }
  return renamed;
}

function fileOf(source: string): string {
  return basename(source.replace(/\[\d+\]$/, ""));
}

// ---------------------------------------------------------------------------------------------------------
// Win rates

const COUNT_FIELDS = ["questions", "missing", "wins", "ties", "losses", "errors", "judged"] as const;
const RATE_FIELDS = ["win", "tie", "loss", "win_rate"] as const;

/**
 * Checks a win-rate summary (`deno task winrate`'s `*.summary.json`).
 *
 * @example
 * ```ts
 * const set = parseWinRateSummary(JSON.parse(text), "judgments.summary.json");
 * set.pairs[0].win_rate;
 * ```
 */
export function parseWinRateSummary(value: unknown, file: string): WinRateSet {
  if (!isObject(value) || typeof value.judge !== "string" || !Array.isArray(value.pairs)) {
    throw new ReportInputError(
      `${file}: expected a win-rate summary with a string "judge" and a "pairs" array`,
    );
  }
  const pairs = value.pairs.map((p, i) => checkPair(p, `${file}: pairs[${i}]`));
  if (value.orders !== undefined && value.orders !== "once" && value.orders !== "both") {
    throw new ReportInputError(`${file}: "orders": expected "once" or "both", got ${show(value.orders)}`);
  }
  return { judge: value.judge, pairs, source: file, ...(value.orders ? { orders: value.orders } : {}) };
}

function checkPair(value: unknown, where: string): PairSummary {
  if (!isObject(value)) throw new ReportInputError(`${where}: expected an object`);
  for (const f of ["model_a", "model_b"]) {
    if (typeof value[f] !== "string") {
      throw new ReportInputError(`${where}.${f}: expected a string, got ${show(value[f])}`);
    }
  }
  for (const f of [...COUNT_FIELDS, ...(value.pending === undefined ? [] : ["pending" as const])]) {
    if (!(Number.isSafeInteger(value[f]) && (value[f] as number) >= 0)) {
      throw new ReportInputError(`${where}.${f}: expected an integer ≥ 0, got ${show(value[f])}`);
    }
  }
  for (const f of RATE_FIELDS) {
    const v = value[f];
    if (!(v === null || (typeof v === "number" && v >= 0 && v <= 1))) {
      throw new ReportInputError(`${where}.${f}: expected a fraction in [0, 1] or null, got ${show(v)}`);
    }
  }
  const p = value as unknown as PairSummary;
  if (p.judged !== p.wins + p.ties + p.losses) {
    throw new ReportInputError(
      `${where}: judged is ${p.judged} but wins + ties + losses is ${p.wins + p.ties + p.losses}`,
    );
  }
  return p;
}

/**
 * Summarises a win-rate results JSONL as `deno task winrate` does, one set per judge. A question judged
 * more than once for a pair (answers regenerated, judged again) counts with its last line.
 *
 * @example
 * ```ts
 * const [set] = parseJudgments(await Deno.readTextFile("judgments.jsonl"), "judgments.jsonl");
 * set.pairs[0].wins;
 * ```
 */
export function parseJudgments(text: string, file: string): WinRateSet[] {
  const byJudge = new Map<string, Map<string, { a: string; b: string; byId: Map<string, JudgmentRecord> }>>();
  for (const row of logRows(text, file)) {
    const rec = parseJudgment(row, reportError);
    const pairs = byJudge.get(rec.judge) ?? new Map();
    byJudge.set(rec.judge, pairs);
    const pairKey = JSON.stringify([rec.model_a, rec.model_b]);
    const pair = pairs.get(pairKey) ?? { a: rec.model_a, b: rec.model_b, byId: new Map() };
    pairs.set(pairKey, pair);
    pair.byId.set(rec.id, rec);
  }
  if (byJudge.size === 0) throw new ReportInputError(`${file}: no judgments in it`);
  return [...byJudge].map(([judge, pairs]) => {
    const records = [...pairs.values()].flatMap((p) => [...p.byId.values()]);
    const orders = records.findLast((r) => r.orders !== undefined)?.orders;
    return {
      judge,
      pairs: [...pairs.values()].map((p) => summarizePair(p.a, p.b, [...p.byId.values()], 0)),
      source: file,
      ...(orders ? { orders } : {}),
      records,
    };
  });
}

/**
 * One set per judge (its pairs from every file, in order); a pair given twice keeps its first appearance, and
 * a judge with no pairs is left out.
 */
function mergeByJudge(sets: WinRateSet[]): WinRateSet[] {
  const merged = new Map<string, WinRateSet>();
  for (const set of sets) {
    const into: WinRateSet = merged.get(set.judge) ?? { judge: set.judge, pairs: [], source: set.source };
    if (merged.has(set.judge) && !into.source.split(", ").includes(set.source)) {
      into.source += `, ${set.source}`;
    }
    merged.set(set.judge, into);
    into.orders ??= set.orders;
    if (set.records) into.records = [...into.records ?? [], ...set.records];
    for (const p of set.pairs) {
      if (!into.pairs.some((q) => q.model_a === p.model_a && q.model_b === p.model_b)) into.pairs.push(p);
    }
  }
  return [...merged.values()].filter((set) => set.pairs.length > 0);
}
