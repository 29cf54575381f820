/**
 * KoBEST v1.0 splits, read from a folder in either of the two published layouts and mapped to the
 * documents the Hugging Face Hub dataset `skt/kobest_v1` gives lm-evaluation-harness:
 *
 * - the original TSV layout (GitHub SKT-LSL/KoBEST_datarepo `v1.0/`): `BoolQ/train.tsv`, `COPA/dev.tsv`, …
 *   (the dev split is the Hub's `validation`);
 * - the Hub layout (what `skt/kobest_v1` stores since March 2024): `boolq/train.jsonl`,
 *   `copa/validation.jsonl`, … (one JSON object per line, Hub field names).
 *
 * The TSV mapping follows the Hub loader: rows with an empty field are dropped, booleans compare
 * case-insensitively (the files mix TRUE/True/FALSE/False), COPA's answer 1/2 becomes label 0/1, and
 * SentiNeg's columns are found by name because their order differs per split (its test split is scored on
 * the negated `Text`/`Label`, not `Text_origin`/`Label_origin`).
 *
 * @module
 */
import { isFile, readUtf8File } from "../../io/fs.ts";
import { parseTable } from "../../io/delimited.ts";
import { parseJsonl } from "../../io/jsonl.ts";

/** The five KoBEST tasks, in the order lm-evaluation-harness lists them. */
export const KOBEST_TASKS = ["boolq", "copa", "hellaswag", "sentineg", "wic"] as const;
/** One KoBEST task name (the Hub config name). */
export type KobestTask = typeof KOBEST_TASKS[number];

/**
 * A comma-separated task list as `--tasks` takes it: these names or lm-evaluation-harness's (`kobest_boolq`,
 * …), and `kobest` for all five; duplicates are dropped, the order kept. Errors name `where`.
 * @example
 * ```ts
 * parseKobestTasks("kobest_copa,wic"); // ["copa", "wic"]
 * parseKobestTasks("kobest"); // all five
 * ```
 */
export function parseKobestTasks(text: string, where = "--tasks"): KobestTask[] {
  const out: KobestTask[] = [];
  const names = text.split(",").map((t) => t.trim()).filter((t) => t !== "");
  const expected = `kobest or some of ${KOBEST_TASKS.join(", ")}, with or without kobest_`;
  if (names.length === 0) throw new Error(`${where}: expected ${expected}, got ${JSON.stringify(text)}`);
  for (const raw of names) {
    const tasks = raw === "kobest" ? [...KOBEST_TASKS] : [raw.replace(/^kobest_/, "") as KobestTask];
    for (const t of tasks) {
      if (!KOBEST_TASKS.includes(t)) {
        throw new Error(`${where}: unknown task "${raw}" (expected ${expected})`);
      }
      if (!out.includes(t)) out.push(t);
    }
  }
  return out;
}

/** The Hub's split names. The TSV layout calls `validation` `dev`. */
export const KOBEST_SPLITS = ["train", "validation", "test"] as const;
/** One split name. */
export type KobestSplit = typeof KOBEST_SPLITS[number];

/** The Hub dataset that holds KoBEST in the jsonl layout. */
export const KOBEST_HUB_REPO = "skt/kobest_v1";

/** KB-BoolQ: does the paragraph answer the yes/no question with yes (label 1)? */
export interface BoolqDoc {
  paragraph: string;
  question: string;
  label: number;
}

/** KB-COPA: which alternative is the cause (원인) or effect (결과) of the premise; label 0 or 1. */
export interface CopaDoc {
  premise: string;
  question: string;
  alternative_1: string;
  alternative_2: string;
  label: number;
}

/** KB-HellaSwag: which of four endings continues the context; label 0–3. */
export interface HellaswagDoc {
  context: string;
  ending_1: string;
  ending_2: string;
  ending_3: string;
  ending_4: string;
  label: number;
}

/** KB-SentiNeg: is the sentence positive (1) or negative (0)? */
export interface SentinegDoc {
  sentence: string;
  label: number;
}

/** KB-WiC: is the word used in the same sense in both contexts (1)? */
export interface WicDoc {
  word: string;
  context_1: string;
  context_2: string;
  label: number;
}

/** The document type of each task. */
export interface KobestDocMap {
  boolq: BoolqDoc;
  copa: CopaDoc;
  hellaswag: HellaswagDoc;
  sentineg: SentinegDoc;
  wic: WicDoc;
}

/** A document of any task. */
export type KobestDoc = KobestDocMap[KobestTask];

/**
 * Thrown for data that does not fit a KoBEST layout; the message starts with `file:line: field:`.
 *
 * @example
 * ```ts
 * try {
 *   parseKobestTsv(text, "wic", "WiC/dev.tsv");
 * } catch (e) {
 *   if (e instanceof KobestDataError) console.error(e.message); // "WiC/dev.tsv:2: ANSWER: expected a boolean …"
 * }
 * ```
 */
export class KobestDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KobestDataError";
  }
}

type FieldKind = "text" | "bool" | { min: number; max: number; offset?: number };

/** How one Hub field is read from a TSV column. */
interface ColumnSpec {
  field: string;
  column: string;
  kind: FieldKind;
}

/** Hub field → TSV column for each task (and the folder name in the TSV layout). */
const TSV_LAYOUT: Record<KobestTask, { folder: string; columns: ColumnSpec[] }> = {
  boolq: {
    folder: "BoolQ",
    columns: [
      { field: "paragraph", column: "Text", kind: "text" },
      { field: "question", column: "Question", kind: "text" },
      { field: "label", column: "Answer", kind: "bool" },
    ],
  },
  copa: {
    folder: "COPA",
    columns: [
      { field: "premise", column: "sentence", kind: "text" },
      { field: "question", column: "question", kind: "text" },
      { field: "alternative_1", column: "1", kind: "text" },
      { field: "alternative_2", column: "2", kind: "text" },
      { field: "label", column: "Answer", kind: { min: 1, max: 2, offset: -1 } },
    ],
  },
  hellaswag: {
    folder: "HellaSwag",
    columns: [
      { field: "context", column: "context", kind: "text" },
      { field: "ending_1", column: "choice1", kind: "text" },
      { field: "ending_2", column: "choice2", kind: "text" },
      { field: "ending_3", column: "choice3", kind: "text" },
      { field: "ending_4", column: "choice4", kind: "text" },
      { field: "label", column: "label", kind: { min: 0, max: 3 } },
    ],
  },
  sentineg: {
    folder: "SentiNeg",
    columns: [
      { field: "sentence", column: "Text", kind: "text" },
      { field: "label", column: "Label", kind: { min: 0, max: 1 } },
    ],
  },
  wic: {
    folder: "WiC",
    columns: [
      { field: "word", column: "Target", kind: "text" },
      { field: "context_1", column: "SENTENCE1", kind: "text" },
      { field: "context_2", column: "SENTENCE2", kind: "text" },
      { field: "label", column: "ANSWER", kind: "bool" },
    ],
  },
};

/** Labels of each task as the Hub stores them: the largest valid label. */
const MAX_LABEL: Record<KobestTask, number> = { boolq: 1, copa: 1, hellaswag: 3, sentineg: 1, wic: 1 };

/**
 * Relative path of a split in the TSV layout.
 *
 * @example
 * ```ts
 * kobestTsvPath("boolq", "validation"); // "BoolQ/dev.tsv"
 * ```
 */
export function kobestTsvPath(task: KobestTask, split: KobestSplit): string {
  return `${TSV_LAYOUT[task].folder}/${split === "validation" ? "dev" : split}.tsv`;
}

/**
 * Relative path of a split in the Hub layout.
 *
 * @example
 * ```ts
 * kobestJsonlPath("boolq", "validation"); // "boolq/validation.jsonl"
 * ```
 */
export function kobestJsonlPath(task: KobestTask, split: KobestSplit): string {
  return `${task}/${split}.jsonl`;
}

function parseBool(value: string, where: string): number {
  const v = value.trim().toLowerCase();
  if (v === "true") return 1;
  if (v === "false") return 0;
  throw new KobestDataError(
    `${where}: expected a boolean (TRUE/True/FALSE/False), got ${JSON.stringify(value)}`,
  );
}

function parseLabel(
  value: string,
  range: { min: number; max: number; offset?: number },
  where: string,
): number {
  const v = value.trim();
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= range.min && n <= range.max)) {
    throw new KobestDataError(
      `${where}: expected an integer from ${range.min} to ${range.max}, got ${JSON.stringify(value)}`,
    );
  }
  return n + (range.offset ?? 0);
}

function checkCopaQuestion(question: string, where: string): void {
  const q = question.trim();
  if (q !== "원인" && q !== "결과") {
    throw new KobestDataError(`${where}: expected 원인 or 결과, got ${JSON.stringify(question)}`);
  }
}

/**
 * Parses one split in the TSV layout. Columns are found by header name; a row with any empty field is
 * dropped, as the Hub loader drops it, and `warn` (when given) receives how many were dropped and where.
 *
 * @example
 * ```ts
 * const docs = parseKobestTsv("ID\tText\tLabel\r\n1\t좋다\t1", "sentineg", "SentiNeg/train.tsv");
 * // [{ sentence: "좋다", label: 1 }]
 * ```
 */
export function parseKobestTsv<T extends KobestTask>(
  text: string,
  task: T,
  file: string,
  warn?: (message: string) => void,
): KobestDocMap[T][] {
  const table = parseTable(text, { delimiter: "\t", file });
  const specs = TSV_LAYOUT[task].columns;
  const missing = specs.filter((s) => !table.header.includes(s.column)).map((s) => s.column);
  if (missing.length > 0) {
    throw new KobestDataError(
      `${file}:1: header: missing column(s) ${missing.join(", ")} for ${task}; found ${
        table.header.join(", ")
      }`,
    );
  }
  const docs: KobestDocMap[T][] = [];
  const dropped: number[] = [];
  for (const row of table.rows) {
    if (Object.values(row.values).some((v) => v === "")) {
      dropped.push(row.line);
      continue;
    }
    const doc: Record<string, string | number> = {};
    for (const spec of specs) {
      const value = row.values[spec.column];
      const where = `${file}:${row.line}: ${spec.column}`;
      if (spec.kind === "text") doc[spec.field] = value;
      else if (spec.kind === "bool") doc[spec.field] = parseBool(value, where);
      else doc[spec.field] = parseLabel(value, spec.kind, where);
    }
    if (task === "copa") checkCopaQuestion(String(doc.question), `${file}:${row.line}: question`);
    docs.push(doc as unknown as KobestDocMap[T]);
  }
  if (dropped.length > 0) {
    const lines = dropped.slice(0, 5).join(", ") + (dropped.length > 5 ? ", …" : "");
    warn?.(
      `${file}: dropped ${dropped.length} of ${table.rows.length} row(s) with an empty field (line ${lines}), ` +
        "as the Hub's loader drops them",
    );
  }
  return docs;
}

/** A JSON label: an integer, a boolean (boolq, wic) or a string holding either. */
function jsonLabel(value: unknown, max: number, where: string): number {
  let n: number = NaN;
  if (typeof value === "number") n = value;
  else if (typeof value === "boolean") n = value ? 1 : 0;
  else if (typeof value === "string") {
    const v = value.trim().toLowerCase();
    n = v === "true" ? 1 : v === "false" ? 0 : /^\d+$/.test(v) ? Number(v) : NaN;
  }
  if (!(Number.isInteger(n) && n >= 0 && n <= max)) {
    throw new KobestDataError(
      `${where}: expected an integer label from 0 to ${max}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/**
 * Parses one split in the Hub's jsonl layout (fields named as the Hub names them; extra fields ignored).
 *
 * @example
 * ```ts
 * const docs = parseKobestJsonl('{"sentence": "좋다", "label": 1}\n', "sentineg", "sentineg/train.jsonl");
 * // [{ sentence: "좋다", label: 1 }]
 * ```
 */
export function parseKobestJsonl<T extends KobestTask>(
  text: string,
  task: T,
  file: string,
): KobestDocMap[T][] {
  const fields = TSV_LAYOUT[task].columns.map((s) => s.field);
  const docs: KobestDocMap[T][] = [];
  for (const { where, value: values } of parseJsonl(text, file, { error: (m) => new KobestDataError(m) })) {
    const doc: Record<string, string | number> = {};
    for (const field of fields) {
      const value = values[field];
      if (field === "label") doc.label = jsonLabel(value, MAX_LABEL[task], `${where}: label`);
      else if (typeof value === "string") doc[field] = value;
      else throw new KobestDataError(`${where}: ${field}: expected a string, got ${JSON.stringify(value)}`);
    }
    if (task === "copa") checkCopaQuestion(String(doc.question), `${where}: question`);
    docs.push(doc as unknown as KobestDocMap[T]);
  }
  return docs;
}

/**
 * Number of documents lm-eval scores from a split of `size` under `--limit`: the first `limit` documents,
 * or a fraction in (0, 1) of them rounded up.
 *
 * @example
 * ```ts
 * limitedCount(1404, 100); // 100
 * limitedCount(1404, 0.1); // 141
 * ```
 */
export function limitedCount(size: number, limit: number | undefined): number {
  if (limit === undefined) return size;
  if (!(limit > 0)) throw new RangeError(`limit must be positive, got ${limit}`);
  if (limit < 1) return Math.ceil(size * limit);
  if (!Number.isInteger(limit)) throw new RangeError(`limit above 1 must be an integer, got ${limit}`);
  return Math.min(size, limit);
}

/**
 * Loads one split of one task from `dataDir`, in whichever layout the folder holds (the Hub's jsonl first,
 * then the TSV layout). `warn` receives a count of the TSV rows dropped for an empty field.
 *
 * @example
 * ```ts
 * const test = await loadKobestSplit("data/kobest", "copa", "test");
 * test[0].premise; // the first test premise
 * ```
 */
export async function loadKobestSplit<T extends KobestTask>(
  dataDir: string,
  task: T,
  split: KobestSplit,
  warn?: (message: string) => void,
): Promise<KobestDocMap[T][]> {
  const jsonl = `${dataDir}/${kobestJsonlPath(task, split)}`;
  if (await isFile(jsonl)) return parseKobestJsonl(await readUtf8File(jsonl), task, jsonl);
  const tsv = `${dataDir}/${kobestTsvPath(task, split)}`;
  if (await isFile(tsv)) return parseKobestTsv(await readUtf8File(tsv), task, tsv, warn);
  throw new KobestDataError(
    `${dataDir}: no ${task} ${split} split: expected ${kobestJsonlPath(task, split)} (Hub layout) or ` +
      `${kobestTsvPath(task, split)} (KoBEST v1.0 TSV layout)\n${kobestDataHelp([task], [split])}`,
  );
}

/**
 * The files of `skt/kobest_v1` (Hub layout) that the given tasks and splits need, as paths inside the
 * dataset repository; hand them to a downloader and pass the folder it fills as the data dir.
 *
 * @example
 * ```ts
 * kobestHubFiles(["boolq"], ["train", "test"]); // ["boolq/train.jsonl", "boolq/test.jsonl"]
 * ```
 */
export function kobestHubFiles(tasks: readonly KobestTask[], splits: readonly KobestSplit[]): string[] {
  return tasks.flatMap((task) => splits.map((split) => kobestJsonlPath(task, split)));
}

/**
 * The data dir to pass to {@link loadKobestSplit} after a download: the folder that holds `hubFile` at its
 * repository-relative path, given where `hubFile` was saved (e.g. a Hub cache snapshot folder).
 *
 * @example
 * ```ts
 * kobestDataDirOf("/cache/datasets--skt--kobest_v1/snapshots/abc/boolq/test.jsonl", "boolq/test.jsonl");
 * // "/cache/datasets--skt--kobest_v1/snapshots/abc"
 * ```
 */
export function kobestDataDirOf(localPath: string, hubFile: string): string {
  const normalized = localPath.replaceAll("\\", "/");
  if (!normalized.endsWith(`/${hubFile}`)) {
    throw new KobestDataError(`${localPath}: expected a path ending in /${hubFile} (the repository layout)`);
  }
  return normalized.slice(0, -(hubFile.length + 1));
}

/**
 * A message for when no data folder is given: which files are needed and where to get them.
 *
 * @example
 * ```ts
 * console.error(kobestDataHelp(["boolq"], ["train", "test"]));
 * ```
 */
export function kobestDataHelp(
  tasks: readonly KobestTask[],
  splits: readonly KobestSplit[],
  revision = "main",
): string {
  const base = `https://huggingface.co/datasets/${KOBEST_HUB_REPO}/resolve/${revision}`;
  const files = kobestHubFiles(tasks, splits);
  return [
    `KoBEST data is needed: pass a folder holding these files of the Hub dataset ${KOBEST_HUB_REPO}:`,
    ...files.map((f) => `  ${f}  (${base}/${f})`),
    "or the KoBEST v1.0 TSV layout (GitHub SKT-LSL/KoBEST_datarepo, folder v1.0):",
    ...tasks.flatMap((t) => splits.map((s) => `  ${kobestTsvPath(t, s)}`)),
  ].join("\n");
}
