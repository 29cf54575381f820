/**
 * JSON Lines: the one reader, the one append log and the one whole-file writer every JSONL file of the
 * toolkit goes through, with one rule for lines that are not what they should be.
 *
 * Every non-blank line must be a JSON object; any line that is not is an error naming `file:line`. The one
 * exception is a **log** — a file a program appends to line by line (win-rate judgments, answer caches,
 * training metrics): there a last line without its newline that is not valid JSON is what a writer stopped
 * mid-line leaves (or one still writing). It is dropped with a warning that names it, and {@link JsonlLog}
 * cuts it off the file before appending, so the next line starts clean and a rerun redoes that one record.
 * In an input file (datasets, KoBEST, questions) nothing of ours appends, so such a line is damage and an
 * error like any other. Blank lines are skipped; a UTF-8 byte-order mark and CRLF line ends are accepted.
 *
 * @module
 */
import { writeFileAtomic } from "./atomic.ts";
import { decodeUtf8 } from "./fs.ts";

/** A JSON object, as one line holds it. */
export type JsonObject = Record<string, unknown>;

/** One object read from a JSONL text, with where it came from. */
export interface JsonlRow {
  /** 1-based line number. */
  line: number;
  /** `file:line`, for messages. */
  where: string;
  /** The line's object. */
  value: JsonObject;
  /** The line as written (without its line end). */
  text: string;
}

/** One line that is not a JSON object: where, and why (`file:line: …`). */
export interface JsonlBadLine {
  /** 1-based line number. */
  line: number;
  /** `file:line`, for messages. */
  where: string;
  /** The message: `file:line: not valid JSON (…)` or `file:line: expected a JSON object, got …`. */
  error: string;
}

/** How a JSONL text is read; see the module notes for the rule. */
export interface JsonlOptions {
  /** The text is a log that is appended to: a cut last line is dropped with a warning, not an error. */
  log?: boolean;
  /** Receives the warning about a dropped last line (default: `console.warn`). */
  warn?: (message: string) => void;
  /** Makes the error thrown for a bad line from its `file:line: …` message (default: a {@link JsonlError}). */
  error?: (message: string) => Error;
}

/**
 * A JSONL line that is not a JSON object; the message names the file and line.
 *
 * @example
 * ```ts
 * parseJsonl('{"id": 1}\n[2]\n', "a.jsonl"); // throws JsonlError: a.jsonl:2: expected a JSON object, got list
 * ```
 */
export class JsonlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JsonlError";
  }
}

/**
 * Every line of a JSONL text, in order: its objects and its bad lines (blank lines left out). In a log
 * (`options.log`) a cut last line is neither: it is dropped, with a warning naming it.
 *
 * @example
 * ```ts
 * const lines = jsonlLines('{"a": 1}\n\n{"a": \n', "x.jsonl");
 * // [{ line: 1, where: "x.jsonl:1", value: { a: 1 }, text: '{"a": 1}' },
 * //  { line: 3, where: "x.jsonl:3", error: "x.jsonl:3: not valid JSON (…)" }]
 * ```
 */
export function jsonlLines(
  text: string,
  file: string,
  options: JsonlOptions = {},
): (JsonlRow | JsonlBadLine)[] {
  return readLines(text, file, options, "left out");
}

/** {@link jsonlLines}, saying what became of a dropped last line. */
function readLines(
  text: string,
  file: string,
  options: JsonlOptions,
  cutAction: string,
): (JsonlRow | JsonlBadLine)[] {
  const lines = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).split("\n");
  const out: (JsonlRow | JsonlBadLine)[] = [];
  lines.forEach((raw, i) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "") return;
    const where = `${file}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      if (options.log && i === lines.length - 1) {
        (options.warn ?? console.warn)(
          `${where}: a last line cut short (no newline at its end, not valid JSON) is ${cutAction}: its ` +
            "writer was stopped mid-line, or is still writing",
        );
        return;
      }
      out.push({ line: i + 1, where, error: `${where}: not valid JSON (${(e as Error).message})` });
      return;
    }
    out.push(
      isJsonObject(value)
        ? { line: i + 1, where, value, text: line }
        : { line: i + 1, where, error: `${where}: expected a JSON object, got ${jsonTypeName(value)}` },
    );
  });
  return out;
}

/** The rows of `lines`; the first bad one throws as `options.error` makes it. */
function rowsOrThrow(lines: (JsonlRow | JsonlBadLine)[], options: JsonlOptions): JsonlRow[] {
  return lines.map((l) => {
    if ("error" in l) throw (options.error ?? ((m: string) => new JsonlError(m)))(l.error);
    return l;
  });
}

/**
 * The objects of a JSONL text; the first bad line throws (see {@link JsonlOptions.error}).
 *
 * @example
 * ```ts
 * parseJsonl('{"step": 1}\n{"step": 2}\n{"st', "metrics.jsonl", { log: true }).map((r) => r.value.step);
 * // [1, 2], and a warning: metrics.jsonl:3 was cut short
 * ```
 */
export function parseJsonl(text: string, file: string, options: JsonlOptions = {}): JsonlRow[] {
  return rowsOrThrow(readLines(text, file, options, "left out"), options);
}

/**
 * A JSONL log on disk: the rows already in it, and appends that never interleave. Opening it applies the
 * module's rule: a last line cut short by a killed writer is cut off the file, with a warning, so the next
 * append starts on a line of its own; a whole last line without its newline gets one before the next row.
 *
 * @example
 * ```ts
 * const log = await JsonlLog.open("runs/winrate/answers/sft.jsonl");
 * const done = new Set(log.rows.map((r) => r.value.id));
 * await log.append({ id: "q7", answer: "네" });
 * ```
 */
export class JsonlLog {
  /** The file appended to. */
  readonly path: string;
  /** The rows the file held when opened (those `keep` kept). */
  readonly rows: readonly JsonlRow[];
  #needsNewline: boolean;
  #writes: Promise<void> = Promise.resolve();

  private constructor(path: string, rows: JsonlRow[], needsNewline: boolean) {
    this.path = path;
    this.rows = rows;
    this.#needsNewline = needsNewline;
  }

  /**
   * Opens a log (a missing file is an empty one, created by the first append). `keep` drops rows from the
   * file — a resumed run drops what it is about to redo — rewriting it atomically when any is dropped.
   */
  static async open(
    path: string,
    options: Omit<JsonlOptions, "log"> & { keep?: (row: JsonlRow) => boolean } = {},
  ): Promise<JsonlLog> {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return new JsonlLog(path, [], false);
      throw e;
    }
    // A writer stopped mid-line may also have stopped mid-character: only the whole lines must be UTF-8.
    const wholeLines = bytes.lastIndexOf(0x0a) + 1;
    const head = decodeUtf8(bytes.subarray(0, wholeLines), path);
    const tail = new TextDecoder().decode(bytes.subarray(wholeLines));
    let cut = false;
    const warn = (message: string) => {
      cut = true;
      (options.warn ?? console.warn)(message);
    };
    const rows = rowsOrThrow(
      readLines(head + tail, path, { log: true, warn }, "removed from the file"),
      options,
    );
    const kept = options.keep ? rows.filter(options.keep) : rows;
    if (kept.length < rows.length) {
      await writeFileAtomic(path, kept.map((r) => r.text + "\n").join(""));
      return new JsonlLog(path, kept, false);
    }
    if (cut) await Deno.truncate(path, wholeLines);
    return new JsonlLog(path, kept, !cut && tail.trim() !== "");
  }

  /** Appends `value` as one line; appends are written in call order, one at a time. */
  append(value: unknown): Promise<void> {
    const line = (this.#needsNewline ? "\n" : "") + JSON.stringify(value) + "\n";
    this.#needsNewline = false;
    this.#writes = this.#writes.then(() => Deno.writeTextFile(this.path, line, { append: true }));
    return this.#writes;
  }
}

/**
 * Writes `rows` as a whole JSONL file, one object a line, through a temporary name and a rename: readers
 * never see half a file.
 *
 * @example
 * ```ts
 * await writeJsonlAtomic("runs/data/sft.jsonl", [{ prompt: "질문", completion: "답" }]);
 * ```
 */
export function writeJsonlAtomic(path: string, rows: readonly unknown[]): Promise<void> {
  return writeFileAtomic(path, rows.map((r) => JSON.stringify(r) + "\n").join(""));
}

/**
 * Whether `value` is a JSON object (not null, not a list).
 *
 * @example
 * ```ts
 * isJsonObject({ a: 1 }); // true
 * isJsonObject([1]); // false
 * ```
 */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * How messages name a JSON value's type.
 *
 * @example
 * ```ts
 * jsonTypeName([]); // "empty list"
 * jsonTypeName("x"); // "string"
 * ```
 */
export function jsonTypeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return value.length === 0 ? "empty list" : "list";
  if (typeof value === "string") return value.length === 0 ? "empty string" : "string";
  return typeof value;
}
