/**
 * A quote-aware reader for CSV and TSV text (RFC 4180 quoting, CRLF or LF line ends, optional final
 * newline, UTF-8 BOM), keeping the line number where each record starts so errors can name it.
 *
 * KoBEST's TSV files need exactly this: most have CRLF ends and no final newline, and some fields start
 * with a double quote and are CSV-quoted (`"a ""b"" c"` reads as `a "b" c`), which a naive split gets wrong.
 *
 * @module
 */

/** One record: its fields and the 1-based line of the file where it starts. */
export interface DelimitedRecord {
  line: number;
  fields: string[];
}

/** Options for {@link parseDelimited}. */
export interface DelimitedOptions {
  /** Field separator: `,` for CSV, `\t` for TSV. */
  delimiter: string;
  /** File name used in error messages. */
  file?: string;
}

/** Thrown for malformed delimited text; the message names the file and line. */
export class DelimitedSyntaxError extends Error {
  constructor(file: string, line: number, detail: string) {
    super(`${file}:${line}: ${detail}`);
    this.name = "DelimitedSyntaxError";
  }
}

/**
 * Splits delimited text into records. A field is quoted only when it starts with `"`; inside it, `""` is a
 * quote and delimiters and line breaks are literal. Blank lines are skipped.
 *
 * @example
 * ```ts
 * const recs = parseDelimited('a\tb\r\n"x ""y"""\t2', { delimiter: "\t" });
 * // [{ line: 1, fields: ["a", "b"] }, { line: 2, fields: ['x "y"', "2"] }]
 * ```
 */
export function parseDelimited(text: string, options: DelimitedOptions): DelimitedRecord[] {
  const file = options.file ?? "<input>";
  const d = options.delimiter;
  if (d.length !== 1 || d === '"' || d === "\n" || d === "\r") {
    throw new Error(
      `delimiter must be one character other than a quote or line break, got ${JSON.stringify(d)}`,
    );
  }
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const records: DelimitedRecord[] = [];
  let fields: string[] = [];
  let line = 1;
  let recordLine = 1;
  let i = 0;
  const n = src.length;
  let atRecordStart = true;

  const endRecord = () => {
    // A record made of one empty field is a blank line: skip it.
    if (!(fields.length === 1 && fields[0] === "")) records.push({ line: recordLine, fields });
    fields = [];
    atRecordStart = true;
  };

  while (i <= n) {
    if (atRecordStart) {
      recordLine = line;
      atRecordStart = false;
    }
    if (i === n) {
      // End of input: close the last field unless the text ended with a line break.
      if (fields.length > 0 || (n > 0 && src[n - 1] !== "\n" && src[n - 1] !== "\r")) {
        fields.push("");
        endRecord();
      }
      break;
    }
    let value: string;
    if (src[i] === '"') {
      const startLine = line;
      let out = "";
      i++;
      for (;;) {
        if (i >= n) throw new DelimitedSyntaxError(file, startLine, "quoted field is never closed");
        const c = src[i];
        if (c === '"') {
          if (src[i + 1] === '"') {
            out += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (c === "\n") line++;
        out += c;
        i++;
      }
      // Text after a closing quote up to the delimiter is kept, as Python's csv module does.
      let j = i;
      while (j < n && src[j] !== d && src[j] !== "\n" && src[j] !== "\r") j++;
      value = out + src.slice(i, j);
      i = j;
    } else {
      let j = i;
      while (j < n && src[j] !== d && src[j] !== "\n" && src[j] !== "\r") j++;
      value = src.slice(i, j);
      i = j;
    }
    fields.push(value);
    if (i >= n) {
      endRecord();
      break;
    }
    const c = src[i];
    if (c === d) {
      i++;
      if (i === n) {
        fields.push("");
        endRecord();
        break;
      }
      continue;
    }
    // Line break: \r\n, \n or a lone \r.
    i += c === "\r" && src[i + 1] === "\n" ? 2 : 1;
    line++;
    endRecord();
  }
  return records;
}

/** A table read with a header row: each row maps column names to values and keeps its line number. */
export interface DelimitedTable {
  header: string[];
  rows: { line: number; values: Record<string, string> }[];
}

/**
 * Parses delimited text whose first record is a header. Rows with a different number of fields than the
 * header are an error naming the line.
 *
 * @example
 * ```ts
 * const t = parseTable("ID,Text\n1,안녕", { delimiter: ",", file: "a.csv" });
 * t.rows[0].values.Text; // "안녕"
 * ```
 */
export function parseTable(text: string, options: DelimitedOptions): DelimitedTable {
  const file = options.file ?? "<input>";
  const records = parseDelimited(text, options);
  if (records.length === 0) throw new DelimitedSyntaxError(file, 1, "no header row: the file is empty");
  const header = records[0].fields.map((h) => h.trim());
  const rows = records.slice(1).map((r) => {
    if (r.fields.length !== header.length) {
      throw new DelimitedSyntaxError(
        file,
        r.line,
        `expected ${header.length} fields (${header.join(", ")}), found ${r.fields.length}`,
      );
    }
    const values: Record<string, string> = {};
    header.forEach((h, k) => (values[h] = r.fields[k]));
    return { line: r.line, values };
  });
  return { header, rows };
}
