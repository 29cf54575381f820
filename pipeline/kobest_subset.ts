/**
 * Cuts a small KoBEST subset out of the v1.0 TSV files, record for record: the header and the first N
 * records of each file are copied byte for byte (line ends, quoting and all), never re-serialised. This is
 * how `data/kobest_tiny/` was made; the tiny preset of `deno task reproduce` evaluates on it offline.
 *
 * Record boundaries come from io/delimited.ts, so a quoted field spanning lines is never split, and the cut
 * is checked by parsing it again: it must give exactly the first records of the whole file.
 *
 * @module
 */
import { parseDelimited } from "../io/delimited.ts";
import { isDeepStrictEqual } from "node:util";
import { KOBEST_TASKS, type KobestSplit, kobestTsvPath } from "../eval/kobest/data.ts";

/**
 * Character offset where 1-based physical line `line` starts, counting `\r\n`, `\n` and a lone `\r` as one
 * line break each (as the delimited reader counts them outside quotes).
 */
function lineStartOffset(text: string, line: number): number {
  let current = 1;
  for (let i = 0; i < text.length && current < line; i++) {
    const c = text[i];
    if (c === "\r" && text[i + 1] === "\n") i++;
    if (c === "\r" || c === "\n") current++;
    if (current === line) return i + 1;
  }
  if (current === line) return 0;
  throw new RangeError(`line ${line} is past the end of the text (${current} lines)`);
}

/** The text without one trailing line break (`\r\n`, `\n` or `\r`). */
function withoutFinalBreak(text: string): string {
  if (text.endsWith("\r\n")) return text.slice(0, -2);
  if (text.endsWith("\n") || text.endsWith("\r")) return text.slice(0, -1);
  return text;
}

/**
 * The header and the first `records` records of a delimited file, as the exact text they occupy. The cut
 * ends the way the whole file ends: with a final line break only if the file has one.
 *
 * @example
 * ```ts
 * firstRecords('ID\tText\r\n1\t"a\r\nb"\r\n2\tc\r\n3\td', 2, "\t"); // 'ID\tText\r\n1\t"a\r\nb"\r\n2\tc'
 * ```
 */
export function firstRecords(text: string, records: number, delimiter: string, file = "<input>"): string {
  if (!(Number.isInteger(records) && records >= 0)) {
    throw new RangeError(`${file}: records must be an integer ≥ 0, got ${records}`);
  }
  const all = parseDelimited(text, { delimiter, file });
  if (all.length === 0) throw new RangeError(`${file}: no header record`);
  if (all.length <= records + 1) return text;
  const body = text.slice(0, lineStartOffset(text, all[records + 1].line));
  const endsWithBreak = /[\r\n]$/.test(text);
  const cut = endsWithBreak ? body : withoutFinalBreak(body);
  const again = parseDelimited(cut, { delimiter, file });
  if (!isDeepStrictEqual(again, all.slice(0, records + 1))) {
    throw new Error(`${file}: cutting after record ${records} did not keep the first records intact`);
  }
  return cut;
}

/** How many records of each split a subset keeps. */
export type SubsetSizes = Partial<Record<KobestSplit, number>>;

/**
 * The subset bundled as data/kobest_tiny: the first 120 train and 40 test records of every task.
 * @example
 * ```ts
 * await writeKobestSubset("kobest_v1.0", "data/kobest_tiny", KOBEST_TINY_SIZES);
 * ```
 */
export const KOBEST_TINY_SIZES: Readonly<SubsetSizes> = { train: 120, test: 40 };

/**
 * Writes the subset of every KoBEST task from a v1.0 TSV folder into `outDir` (same layout), returning the
 * relative paths written.
 *
 * @example
 * ```ts
 * await writeKobestSubset("/data/kobest_v1.0", "data/kobest_tiny", KOBEST_TINY_SIZES);
 * // ["BoolQ/train.tsv", "BoolQ/test.tsv", "COPA/train.tsv", …]
 * ```
 */
export async function writeKobestSubset(
  sourceDir: string,
  outDir: string,
  sizes: SubsetSizes,
): Promise<string[]> {
  const written: string[] = [];
  for (const task of KOBEST_TASKS) {
    for (const [split, count] of Object.entries(sizes) as [KobestSplit, number][]) {
      const rel = kobestTsvPath(task, split);
      const source = `${sourceDir}/${rel}`;
      const cut = firstRecords(await Deno.readTextFile(source), count, "\t", source);
      const target = `${outDir}/${rel}`;
      await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
      await Deno.writeTextFile(target, cut);
      written.push(rel);
    }
  }
  return written;
}
