/**
 * Training data readers: JSONL, JSON (an array, an object holding a `data` or `train` array, or JSON Lines
 * named `.json` as `datasets` reads them), CSV, TSV and Parquet, with every row validated against TRL's
 * dataset formats and kept with its source position (`file:line`, or `file:row N` in a Parquet file).
 *
 * Formats, detected from a row's fields as TRL does:
 * - language modelling: `{"text": "..."}`
 * - prompt-completion: `{"prompt": ..., "completion": ...}`, both strings or both message lists
 * - conversational: `{"messages": [{"role": "user", "content": "..."}, ...]}`
 * - preference: `{"prompt": ..., "chosen": ..., "rejected": ...}`, strings or message lists; without
 *   `prompt` (TRL's implicit prompt) the shared start of `chosen` and `rejected` becomes the prompt.
 *
 * The first row decides the dataset's format. The three SFT formats may be mixed in one file (each row is
 * turned into tokens on its own); preference rows and SFT rows may not. A bad row stops reading with an
 * error naming the file, line and field, unless `skipBadRows` is set, in which case it is counted and its
 * message kept.
 *
 * @module
 */
import { parseDelimited } from "./delimited.ts";
import { decodeUtf8 } from "./fs.ts";
import { isJsonObject, jsonlLines, jsonTypeName } from "./jsonl.ts";
import { parquetRows } from "./parquet.ts";

/**
 * Message roles accepted in chat data.
 *
 * @example
 * ```ts
 * ROLES.includes("assistant"); // true
 * ```
 */
export const ROLES = ["system", "user", "assistant", "tool"] as const;

/**
 * A chat message role.
 *
 * @example
 * ```ts
 * const role: Role = "assistant";
 * ```
 */
export type Role = typeof ROLES[number];

/**
 * One chat message.
 *
 * @example
 * ```ts
 * const m: Message = { role: "user", content: "수도는?" };
 * ```
 */
export interface Message {
  role: Role;
  content: string;
}

/**
 * A prompt or completion: plain text, or chat messages (TRL's conversational form).
 *
 * @example
 * ```ts
 * const prompt: TextOrChat = [{ role: "user", content: "수도는?" }];
 * ```
 */
export type TextOrChat = string | Message[];

/**
 * The dataset formats TRL defines that SFT, DPO and ORPO use.
 *
 * @example
 * ```ts
 * if (ds.format === "preference") console.log("DPO or ORPO data");
 * ```
 */
export type RowKind = "language-modeling" | "prompt-completion" | "conversational" | "preference";

/**
 * A plain-text row for language modelling (loss on every token).
 *
 * @example
 * ```ts
 * const row: LanguageModelingRow = { kind: "language-modeling", source: "a.jsonl:1", text: "안녕하세요." };
 * ```
 */
export interface LanguageModelingRow {
  kind: "language-modeling";
  source: string;
  text: string;
}

/**
 * A prompt and its completion (SFT's default loss is on the completion only).
 *
 * @example
 * ```ts
 * const row: PromptCompletionRow = { kind: "prompt-completion", source: "a.jsonl:1", prompt: "1+1은?", completion: "2" };
 * ```
 */
export interface PromptCompletionRow {
  kind: "prompt-completion";
  source: string;
  prompt: TextOrChat;
  completion: TextOrChat;
}

/**
 * A whole chat.
 *
 * @example
 * ```ts
 * const row: ConversationalRow = { kind: "conversational", source: "a.jsonl:1", messages: [{ role: "user", content: "안녕" }] };
 * ```
 */
export interface ConversationalRow {
  kind: "conversational";
  source: string;
  messages: Message[];
}

/**
 * A preference pair. `implicitPrompt` is true when the prompt was taken from the shared start of the pair.
 *
 * @example
 * ```ts
 * const pairs = ds.rows.filter((r): r is PreferenceRow => r.kind === "preference");
 * ```
 */
export interface PreferenceRow {
  kind: "preference";
  source: string;
  prompt: TextOrChat;
  chosen: TextOrChat;
  rejected: TextOrChat;
  implicitPrompt: boolean;
}

/**
 * Rows SFT can train on.
 *
 * @example
 * ```ts
 * const rows = ds.rows as SftRow[]; // after loadDataset(path, { expect: "sft" })
 * ```
 */
export type SftRow = LanguageModelingRow | PromptCompletionRow | ConversationalRow;

/**
 * Any validated row.
 *
 * @example
 * ```ts
 * for (const row of ds.rows as DatasetRow[]) console.log(row.source, row.kind);
 * ```
 */
export type DatasetRow = SftRow | PreferenceRow;

/**
 * File syntaxes the readers understand.
 *
 * @example
 * ```ts
 * parseDataset(text, "upload", { fileType: "csv" as FileType });
 * ```
 */
export type FileType = "jsonl" | "json" | "csv" | "tsv" | "parquet";

/**
 * A row as read from the file, before validation: a JSON object, or the error that made it unreadable.
 *
 * @example
 * ```ts
 * for (const raw of readRawRows(text, "a.jsonl", "jsonl")) if (raw.error) console.error(raw.error);
 * ```
 */
export interface RawRow {
  /** `file:line` of the row's first line. */
  source: string;
  value?: Record<string, unknown>;
  error?: string;
}

/**
 * Options for {@link parseDataset} and {@link loadDataset}.
 *
 * @example
 * ```ts
 * await loadDataset("data/ko_pref_tiny.jsonl", { expect: "preference", skipBadRows: true });
 * ```
 */
export interface DatasetOptions {
  /** Skip invalid rows (counted in {@link Dataset.skipped}) instead of stopping at the first. */
  skipBadRows?: boolean;
  /** The file's syntax; by default from its extension. */
  fileType?: FileType;
  /** Which family the caller can train on; a dataset of the other family is an error naming the file. */
  expect?: "sft" | "preference";
}

/**
 * A validated dataset.
 *
 * @example
 * ```ts
 * const ds: Dataset = await loadDataset("data/ko_sft_tiny.jsonl"); console.log(ds.rows.length, ds.skipped);
 * ```
 */
export interface Dataset {
  file: string;
  /** The format detected from the first valid row. */
  format: RowKind;
  rows: DatasetRow[];
  /** Rows left out because `skipBadRows` was set. */
  skipped: number;
  /** Messages for the skipped rows, in file order (at most {@link MAX_KEPT_ERRORS}). */
  errors: string[];
}

/**
 * How many skipped-row messages a {@link Dataset} keeps.
 *
 * @example
 * ```ts
 * if (ds.skipped > MAX_KEPT_ERRORS) console.log("only the first messages were kept");
 * ```
 */
export const MAX_KEPT_ERRORS = 100;

/**
 * Thrown for unreadable files and invalid rows; the message starts with `file:line`.
 *
 * @example
 * ```ts
 * try { await loadDataset("bad.jsonl"); } catch (e) { if (e instanceof DatasetError) console.error(e.message); }
 * ```
 */
export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DatasetError";
  }
}

/**
 * The file type for a path's extension: `.jsonl`/`.ndjson`, `.json`, `.csv`, `.tsv`/`.tab`, `.parquet`.
 *
 * @example
 * ```ts
 * fileTypeOf("data/ko_pref_tiny.jsonl"); // "jsonl"
 * ```
 */
export function fileTypeOf(path: string): FileType {
  const ext = path.toLowerCase().match(/\.([a-z]+)$/)?.[1];
  switch (ext) {
    case "jsonl":
    case "ndjson":
      return "jsonl";
    case "json":
      return "json";
    case "csv":
      return "csv";
    case "tsv":
    case "tab":
      return "tsv";
    case "parquet":
      return "parquet";
  }
  throw new DatasetError(
    `${path}: unknown dataset file type; expected .jsonl, .json, .csv, .tsv or .parquet (or pass fileType)`,
  );
}

/**
 * Yields the rows of a dataset file as JSON objects with their `file:line`, without validating fields.
 * CSV/TSV rows map header names to cell text; a `messages` cell must hold a JSON list, and a
 * prompt/completion/chosen/rejected cell holding a JSON list of messages is read as one. Empty cells count
 * as missing fields.
 *
 * @example
 * ```ts
 * for (const row of readRawRows('{"text": "안녕"}\n', "a.jsonl", "jsonl")) console.log(row.source); // a.jsonl:1
 * ```
 */
export function* readRawRows(text: string, file: string, fileType: FileType): Generator<RawRow> {
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  switch (fileType) {
    case "jsonl":
      yield* readJsonLines(src, file);
      return;
    case "json":
      yield* readJsonDocument(src, file);
      return;
    case "csv":
    case "tsv":
      yield* readDelimitedRows(src, file, fileType === "csv" ? "," : "\t");
      return;
    case "parquet":
      throw new DatasetError(`${file}: a Parquet file is binary: read it with loadDataset`);
  }
}

/** JSONL rows through the toolkit's one JSONL reader (an input file: every bad line is a row error). */
function* readJsonLines(text: string, file: string): Generator<RawRow> {
  for (const line of jsonlLines(text, file)) {
    yield "error" in line
      ? { source: line.where, error: line.error }
      : { source: line.where, value: line.value };
  }
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function* readJsonDocument(text: string, file: string): Generator<RawRow> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    // `datasets` reads a .json file of one object per line as JSON Lines; so does this reader.
    const first = text.split("\n").find((l) => l.trim() !== "");
    if (first !== undefined && /^\s*\{/.test(first) && isJsonObject(tryJson(first))) {
      yield* readJsonLines(text, file);
      return;
    }
    throw new DatasetError(`${file}: invalid JSON: ${(e as Error).message}`);
  }
  let key: "data" | "train" | undefined;
  let items: unknown;
  if (Array.isArray(doc)) {
    items = doc;
  } else if (isJsonObject(doc) && (Array.isArray(doc.data) || Array.isArray(doc.train))) {
    key = Array.isArray(doc.data) ? "data" : "train";
    items = doc[key];
  } else {
    throw new DatasetError(
      `${file}: expected a JSON list of rows or an object with a "data" or "train" list, got ${
        jsonTypeName(doc)
      }` +
        (isJsonObject(doc) ? ` with keys ${Object.keys(doc).join(", ") || "(none)"}` : ""),
    );
  }
  const lines = arrayElementLines(text, key);
  const list = items as unknown[];
  for (let i = 0; i < list.length; i++) {
    const source = `${file}:${lines[i] ?? 1}`;
    const value = list[i];
    yield isJsonObject(value)
      ? { source, value }
      : { source, error: `${source}: expected a JSON object, got ${jsonTypeName(value)}` };
  }
}

/**
 * 1-based line of each element of the row list: the top-level array, or the array under `key` in the
 * top-level object. The text is known to be valid JSON, so a scan that skips strings and tracks depth will do.
 */
function arrayElementLines(text: string, key: "data" | "train" | undefined): number[] {
  let line = 1;
  let depth = 0;
  let i = 0;
  let listDepth = key === undefined ? 1 : -1;
  let lastKey: string | undefined;
  let expectValue = false;
  const lines: number[] = [];
  while (i < text.length) {
    const c = text[i];
    if (c === "\n") line++;
    if (c === '"') {
      const end = stringEnd(text, i);
      const str = text.slice(i, end + 1);
      if (depth === listDepth && expectValue) {
        lines.push(line);
        expectValue = false;
      } else if (depth === 1 && key !== undefined && listDepth < 0) {
        lastKey = JSON.parse(str);
      }
      i = end + 1;
      continue;
    }
    if (c === "[" || c === "{") {
      if (depth === listDepth && expectValue) {
        lines.push(line);
        expectValue = false;
      }
      depth++;
      if (c === "[" && depth === 2 && key !== undefined && listDepth < 0 && lastKey === key) listDepth = 2;
      if (depth === listDepth && c === "[") expectValue = true;
    } else if (c === "]" || c === "}") {
      if (depth === listDepth) return lines;
      depth--;
    } else if (c === ",") {
      if (depth === listDepth) expectValue = true;
    } else if (c !== ":" && c !== " " && c !== "\t" && c !== "\r" && c !== "\n") {
      if (depth === listDepth && expectValue) {
        lines.push(line);
        expectValue = false;
      }
    }
    i++;
  }
  return lines;
}

/** Index of the closing quote of the JSON string starting at `start`. */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
  return i;
}

const CHAT_FIELDS = new Set(["prompt", "completion", "chosen", "rejected"]);

function* readDelimitedRows(text: string, file: string, delimiter: string): Generator<RawRow> {
  let records;
  try {
    records = parseDelimited(text, { delimiter, file });
  } catch (e) {
    throw new DatasetError((e as Error).message);
  }
  if (records.length === 0) throw new DatasetError(`${file}:1: no header row: the file is empty`);
  const header = records[0].fields.map((h) => h.trim());
  for (const record of records.slice(1)) {
    const source = `${file}:${record.line}`;
    if (record.fields.length !== header.length) {
      yield {
        source,
        error: `${source}: expected ${header.length} fields (${
          header.join(", ")
        }), found ${record.fields.length}`,
      };
      continue;
    }
    const value: Record<string, unknown> = {};
    let error: string | undefined;
    header.forEach((name, k) => {
      const cell = record.fields[k];
      if (cell === "") return;
      const parsed = parseCell(name, cell);
      if (parsed.error && !error) error = `${source}: field "${name}": ${parsed.error}`;
      value[name] = parsed.value;
    });
    yield error ? { source, error } : { source, value };
  }
}

/** A cell's value: JSON for `messages`, a message list where one is written, else the text itself. */
function parseCell(name: string, cell: string): { value: unknown; error?: string } {
  const looksLikeList = cell.trimStart().startsWith("[");
  if (name === "messages" || (CHAT_FIELDS.has(name) && looksLikeList)) {
    try {
      const value = JSON.parse(cell);
      if (Array.isArray(value)) return { value };
    } catch (e) {
      if (name === "messages") {
        return { value: cell, error: `expected a JSON list of messages: ${(e as Error).message}` };
      }
    }
  }
  return { value: cell };
}

/**
 * Reads and validates a dataset from text. See the module documentation for the formats.
 *
 * @example
 * ```ts
 * const ds = parseDataset('{"prompt": "1+1은?", "completion": "2입니다."}\n', "a.jsonl");
 * ds.format; // "prompt-completion"
 * ```
 */
export function parseDataset(text: string, file: string, options: DatasetOptions = {}): Dataset {
  const fileType = options.fileType ?? fileTypeOf(file);
  return datasetOf(readRawRows(text, file, fileType), file, options);
}

/** Validates raw rows into a dataset (the format from the first valid row). */
function datasetOf(raws: Iterable<RawRow>, file: string, options: DatasetOptions): Dataset {
  const rows: DatasetRow[] = [];
  const errors: string[] = [];
  let skipped = 0;
  let first: { kind: RowKind; source: string } | undefined;
  for (const raw of raws) {
    try {
      if (raw.error !== undefined) throw new DatasetError(raw.error);
      const value = raw.value!;
      first ??= { kind: detectFirstKind(value, raw.source, options.expect), source: raw.source };
      rows.push(validateRow(value, raw.source, first.kind));
    } catch (e) {
      if (!(e instanceof DatasetError) || !options.skipBadRows) throw e;
      skipped++;
      if (errors.length < MAX_KEPT_ERRORS) errors.push(e.message);
    }
  }
  if (first === undefined || rows.length === 0) {
    const why = skipped > 0 ? `all ${skipped} rows are invalid; the first: ${errors[0]}` : "it holds no rows";
    throw new DatasetError(`${file}: no usable rows: ${why}`);
  }
  return { file, format: first.kind, rows, skipped, errors };
}

/**
 * Reads and validates a dataset file (needs `--allow-read`).
 *
 * @example
 * ```ts
 * const ds = await loadDataset("data/ko_pref_tiny.jsonl", { expect: "preference" });
 * console.log(ds.rows.length, ds.skipped);
 * ```
 */
export async function loadDataset(path: string, options: DatasetOptions = {}): Promise<Dataset> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new DatasetError(`${path}: cannot read the dataset: ${(e as Error).message}`);
  }
  if ((options.fileType ?? fileTypeOf(path)) === "parquet") {
    let objects: Record<string, unknown>[];
    try {
      objects = await parquetRows(bytes, path);
    } catch (e) {
      throw new DatasetError((e as Error).message);
    }
    return datasetOf(objects.map((value, i) => ({ source: `${path}:row ${i + 1}`, value })), path, options);
  }
  let text: string;
  try {
    text = decodeUtf8(bytes, path);
  } catch (e) {
    throw new DatasetError((e as Error).message);
  }
  return parseDataset(text, path, options);
}

const FORMAT_HELP = 'expected "text", "prompt" + "completion", "messages", or "chosen" + "rejected" ' +
  '(with an optional "prompt")';

/** The format a row's fields name, or undefined when they name none completely. */
function kindOfFields(value: Record<string, unknown>): RowKind | undefined {
  const has = (k: string) => value[k] !== undefined;
  if (has("chosen") || has("rejected")) return "preference";
  if (has("messages")) return "conversational";
  if (has("prompt") && has("completion")) return "prompt-completion";
  if (has("text")) return "language-modeling";
  return undefined;
}

function familyOf(kind: RowKind): "sft" | "preference" {
  return kind === "preference" ? "preference" : "sft";
}

function detectFirstKind(
  value: Record<string, unknown>,
  source: string,
  expect?: "sft" | "preference",
): RowKind {
  const kind = kindOfFields(value);
  if (kind === undefined) {
    const fields = Object.keys(value).join(", ") || "none";
    const promptOnly = value.prompt !== undefined
      ? ' (a "prompt" alone is TRL\'s prompt-only format, for online methods, which this toolkit does not train on)'
      : "";
    throw new DatasetError(
      `${source}: cannot tell the dataset format from the fields (${fields}): ${FORMAT_HELP}${promptOnly}`,
    );
  }
  if (expect !== undefined && familyOf(kind) !== expect) {
    const want = expect === "sft"
      ? 'SFT needs "text", "prompt" + "completion" or "messages" rows'
      : 'DPO and ORPO need "chosen" + "rejected" rows';
    throw new DatasetError(`${source}: the first row is a "${kind}" row, but ${want}`);
  }
  return kind;
}

/** Validates one row against the dataset's format (detected from the first row). */
function validateRow(value: Record<string, unknown>, source: string, datasetKind: RowKind): DatasetRow {
  const own = kindOfFields(value);
  if (own !== undefined && familyOf(own) !== familyOf(datasetKind)) {
    throw new DatasetError(
      `${source}: a "${own}" row in a "${datasetKind}" dataset (format detected from the first row); ` +
        `preference rows and SFT rows cannot be mixed`,
    );
  }
  const ctx = { source, format: datasetKind };
  switch (own ?? datasetKind) {
    case "language-modeling":
      return { kind: "language-modeling", source, text: requireText(value, "text", ctx) };
    case "prompt-completion":
      return validatePromptCompletion(value, ctx);
    case "conversational":
      return { kind: "conversational", source, messages: requireMessages(value.messages, "messages", ctx) };
    case "preference":
      return validatePreference(value, ctx);
  }
}

/** Where a field error happened: the row and the dataset's format. */
interface FieldContext {
  source: string;
  format: RowKind;
}

function fieldError(ctx: FieldContext, field: string, expected: string, value: unknown): DatasetError {
  const got = value === undefined ? "missing" : `expected ${expected}, got ${jsonTypeName(value)}`;
  return new DatasetError(
    `${ctx.source}: field "${field}": ${got} (format "${ctx.format}", detected from the first row)`,
  );
}

function requireText(value: Record<string, unknown>, field: string, ctx: FieldContext): string {
  const v = value[field];
  if (typeof v !== "string" || v.length === 0) throw fieldError(ctx, field, "a non-empty string", v);
  return v;
}

const TEXT_OR_CHAT = "a non-empty string or a list of {role, content} messages";

function requireTextOrChat(value: Record<string, unknown>, field: string, ctx: FieldContext): TextOrChat {
  const v = value[field];
  if (typeof v === "string" && v.length > 0) return v;
  if (Array.isArray(v) && v.length > 0) return requireMessages(v, field, ctx);
  throw fieldError(ctx, field, TEXT_OR_CHAT, v);
}

function requireMessages(v: unknown, field: string, ctx: FieldContext): Message[] {
  if (!Array.isArray(v) || v.length === 0) {
    throw fieldError(ctx, field, "a non-empty list of {role, content} messages", v);
  }
  return v.map((m, i) => {
    const path = `${field}[${i}]`;
    if (!isJsonObject(m)) throw fieldError(ctx, path, "a {role, content} message", m);
    if (typeof m.role !== "string" || !(ROLES as readonly string[]).includes(m.role)) {
      const got = typeof m.role === "string" ? JSON.stringify(m.role) : jsonTypeName(m.role);
      throw new DatasetError(
        `${ctx.source}: field "${path}.role": expected one of ${ROLES.join(", ")}, got ${got} ` +
          `(format "${ctx.format}", detected from the first row)`,
      );
    }
    if (typeof m.content !== "string" || m.content.length === 0) {
      throw fieldError(ctx, `${path}.content`, "a non-empty string", m.content);
    }
    return { role: m.role as Role, content: m.content };
  });
}

/** Both parts must be text or both chats, as TRL requires. */
function requireSameForm(
  a: TextOrChat,
  b: TextOrChat,
  aField: string,
  bField: string,
  ctx: FieldContext,
): void {
  if (typeof a === typeof b) return;
  const form = (x: TextOrChat) => typeof x === "string" ? "a string" : "a list of messages";
  throw new DatasetError(
    `${ctx.source}: field "${bField}": expected ${form(a)} like "${aField}", got ${form(b)} ` +
      `(format "${ctx.format}", detected from the first row)`,
  );
}

function validatePromptCompletion(value: Record<string, unknown>, ctx: FieldContext): PromptCompletionRow {
  const prompt = requireTextOrChat(value, "prompt", ctx);
  const completion = requireTextOrChat(value, "completion", ctx);
  requireSameForm(prompt, completion, "prompt", "completion", ctx);
  return { kind: "prompt-completion", source: ctx.source, prompt, completion };
}

function validatePreference(value: Record<string, unknown>, ctx: FieldContext): PreferenceRow {
  const chosen = requireTextOrChat(value, "chosen", ctx);
  const rejected = requireTextOrChat(value, "rejected", ctx);
  requireSameForm(chosen, rejected, "chosen", "rejected", ctx);
  if (value.prompt !== undefined) {
    const prompt = requireTextOrChat(value, "prompt", ctx);
    requireSameForm(prompt, chosen, "prompt", "chosen", ctx);
    return { kind: "preference", source: ctx.source, prompt, chosen, rejected, implicitPrompt: false };
  }
  return splitImplicitPrompt(chosen, rejected, ctx);
}

/**
 * TRL's implicit prompt: the longest shared start of chosen and rejected (for text, a space just before the
 * point where they differ stays with the completions). Both completions must keep something.
 */
function splitImplicitPrompt(chosen: TextOrChat, rejected: TextOrChat, ctx: FieldContext): PreferenceRow {
  let n = 0;
  if (typeof chosen === "string" && typeof rejected === "string") {
    while (n < chosen.length && n < rejected.length && chosen[n] === rejected[n]) n++;
    if (n > 0 && chosen[n - 1] === " " && n < Math.min(chosen.length, rejected.length)) n--;
  } else {
    const c = chosen as Message[], r = rejected as Message[];
    while (n < c.length && n < r.length && c[n].role === r[n].role && c[n].content === r[n].content) n++;
  }
  const problem = n === 0
    ? 'and "chosen" and "rejected" share no start to take it from'
    : n >= chosen.length || n >= rejected.length
    ? 'and the shared start of "chosen" and "rejected" would leave one of them empty'
    : undefined;
  if (problem !== undefined) {
    throw new DatasetError(
      `${ctx.source}: field "prompt": missing (TRL's implicit prompt), ${problem} ` +
        `(format "${ctx.format}", detected from the first row)`,
    );
  }
  return {
    kind: "preference",
    source: ctx.source,
    prompt: chosen.slice(0, n) as TextOrChat,
    chosen: chosen.slice(n) as TextOrChat,
    rejected: rejected.slice(n) as TextOrChat,
    implicitPrompt: true,
  };
}

/**
 * Every piece of text in a row (prompts, completions, message contents), e.g. to train a tokenizer on.
 *
 * @example
 * ```ts
 * const texts = ds.rows.flatMap(rowTexts);
 * ```
 */
export function rowTexts(row: DatasetRow): string[] {
  const of = (x: TextOrChat) => typeof x === "string" ? [x] : x.map((m) => m.content);
  switch (row.kind) {
    case "language-modeling":
      return [row.text];
    case "prompt-completion":
      return [...of(row.prompt), ...of(row.completion)];
    case "conversational":
      return of(row.messages);
    case "preference":
      return [...of(row.prompt), ...of(row.chosen), ...of(row.rejected)];
  }
}

/**
 * A small seeded generator (mulberry32) returning numbers in [0, 1): the same seed, the same sequence.
 *
 * @example
 * ```ts
 * const rand = seededRandom(42);
 * rand(); // always the same first value for seed 42
 * ```
 */
export function seededRandom(seed: number): () => number {
  let a = Math.trunc(seed) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A shuffled copy of `items` (Fisher-Yates with `rand`).
 *
 * @example
 * ```ts
 * shuffled([1, 2, 3, 4], seededRandom(7));
 * ```
 */
export function shuffled<T>(items: readonly T[], rand: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * Options for {@link splitEval}.
 *
 * @example
 * ```ts
 * splitEval(ds.rows, { evalFraction: 0.05, seed: 42 } satisfies EvalSplitOptions);
 * ```
 */
export interface EvalSplitOptions {
  /** Share of rows held out for evaluation, in [0, 1). At least one row is held out when it is above 0. */
  evalFraction: number;
  /** Seed of the shuffle that picks the held-out rows. */
  seed: number;
}

/**
 * Splits rows into training and evaluation sets, deterministically for a seed. Both keep file order.
 *
 * @example
 * ```ts
 * const { train, eval: held } = splitEval(ds.rows, { evalFraction: 0.1, seed: 0 });
 * ```
 */
export function splitEval<T>(rows: readonly T[], options: EvalSplitOptions): { train: T[]; eval: T[] } {
  const { evalFraction, seed } = options;
  if (!(evalFraction >= 0 && evalFraction < 1)) {
    throw new RangeError(`evalFraction: expected a number in [0, 1), got ${evalFraction}`);
  }
  if (evalFraction === 0) return { train: rows.slice(), eval: [] };
  const count = Math.max(1, Math.round(rows.length * evalFraction));
  if (count >= rows.length) {
    throw new RangeError(
      `evalFraction ${evalFraction} of ${rows.length} rows leaves no training rows; use a smaller fraction or more data`,
    );
  }
  const picked = new Set(shuffled(rows.map((_, i) => i), seededRandom(seed)).slice(0, count));
  return {
    train: rows.filter((_, i) => !picked.has(i)),
    eval: rows.filter((_, i) => picked.has(i)),
  };
}
