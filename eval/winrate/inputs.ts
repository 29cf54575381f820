/**
 * The win rates' inputs: the questions file, and the `--pair` specifications that name each model's answers
 * (a JSONL file, or an OpenAI-compatible endpoint to generate them with).
 *
 * Questions: JSONL, one object per line with `id` (or `question_id`) and either `instruction` (+ optional
 * `instances[0].input`), `question`, `prompt`, or `turns[0]`. For the Self-Instruct style
 * (`ko_user_oriented_instructions.jsonl`) the question text is the instruction, then a blank line and the
 * first instance's input when that input is not blank.
 *
 * @module
 */
import { decodeUtf8 } from "../../io/fs.ts";
import { type JsonObject, parseJsonl } from "../../io/jsonl.ts";

/** One question to answer and judge. */
export interface Question {
  /** The question's id (`id` or FastChat's `question_id`). */
  id: string;
  /** The text asked. */
  text: string;
  /** MT-Bench's `category` (writing, math, …), when the record has one: it picks the answer temperature. */
  category?: string;
}

/** Where a model's answers come from. */
export type AnswerSource = { kind: "file"; path: string } | { kind: "url"; url: string };

/** A model in a comparison; a URL source without a name takes the first id its `/models` lists. */
export interface ModelSpec {
  /** The model's name in results and tables. */
  name?: string;
  /** A JSONL file of answers, or an OpenAI-compatible endpoint that generates them. */
  source: AnswerSource;
}

/** Two models to compare; rates are reported from `a`'s side. */
export interface PairSpec {
  /** The model whose side the rates are reported from. */
  a: ModelSpec;
  /** The model it is compared against. */
  b: ModelSpec;
}

/**
 * Thrown for malformed input files; the message names the file, line and field.
 *
 * @example
 * ```ts
 * await readAnswers("bad.jsonl"); // WinRateInputError: bad.jsonl:3: expected a string "answer" or "output", ...
 * ```
 */
export class WinRateInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WinRateInputError";
  }
}

/** Makes the error for a bad line of an input file. */
export function inputError(message: string): WinRateInputError {
  return new WinRateInputError(message);
}

/** The UTF-8 text of an input file; a missing or undecodable file is a {@link WinRateInputError}. */
export async function readText(path: string, what: string): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new WinRateInputError(`cannot read the ${what} file ${path}: ${(e as Error).message}`);
  }
  try {
    return decodeUtf8(bytes, path);
  } catch (e) {
    throw new WinRateInputError((e as Error).message);
  }
}

/**
 * A record's `id` (or FastChat's `question_id`) as a string.
 *
 * @example
 * ```ts
 * idOf({ question_id: 81 }, "a.jsonl:1"); // "81"
 * ```
 */
export function idOf(row: JsonObject, where: string): string {
  const id = row.id ?? row.question_id;
  if (typeof id === "string" && id !== "") return id;
  if (typeof id === "number" && Number.isFinite(id)) return String(id);
  throw new WinRateInputError(`${where}: expected a string or number "id" (or "question_id")`);
}

/**
 * The question text of one prompt record (see the module notes for the accepted fields).
 *
 * @example
 * ```ts
 * questionText({ instruction: "다음 문장을 요약하세요.", instances: [{ input: "긴 문장" }] }, "p.jsonl:1");
 * // "다음 문장을 요약하세요.\n\n긴 문장"
 * ```
 */
export function questionText(row: JsonObject, where: string): string {
  if (typeof row.instruction === "string") {
    const instances = row.instances;
    const input = Array.isArray(instances) ? (instances[0] as JsonObject | undefined)?.input : undefined;
    if (input !== undefined && typeof input !== "string") {
      throw new WinRateInputError(`${where}: instances[0].input must be a string`);
    }
    return input && input.trim() !== "" ? `${row.instruction}\n\n${input}` : row.instruction;
  }
  for (const field of ["question", "prompt"]) {
    if (typeof row[field] === "string") return row[field] as string;
  }
  if (Array.isArray(row.turns) && typeof row.turns[0] === "string") return row.turns[0];
  throw new WinRateInputError(
    `${where}: expected a string "instruction", "question" or "prompt", or "turns": [string, ...]`,
  );
}

/**
 * Reads a questions JSONL file; ids must be unique.
 *
 * @example
 * ```ts
 * const questions = await readQuestions("data/prompts/ko_user_oriented_instructions.jsonl", 50);
 * ```
 */
export async function readQuestions(path: string, limit?: number): Promise<Question[]> {
  const seen = new Set<string>();
  const rows = parseJsonl(await readText(path, "prompts"), path, { error: inputError });
  const questions = rows.map(({ where, value: row }) => {
    const id = idOf(row, where);
    if (seen.has(id)) throw new WinRateInputError(`${where}: duplicate id ${JSON.stringify(id)}`);
    seen.add(id);
    const category = typeof row.category === "string" ? row.category : undefined;
    return { id, text: questionText(row, where), ...(category ? { category } : {}) };
  });
  if (questions.length === 0) throw new WinRateInputError(`${path}: no questions`);
  return limit === undefined ? questions : questions.slice(0, limit);
}

/**
 * Parses `--pair` values: `nameA=SOURCE,nameB=SOURCE`, where a source is an answers JSONL path or an
 * `http(s)://` base URL of an OpenAI-compatible endpoint to generate answers with.
 *
 * @example
 * ```ts
 * parsePairSpec("orpo=runs/orpo.jsonl,base=http://127.0.0.1:8080/v1");
 * // { a: { name: "orpo", source: { kind: "file", path: "runs/orpo.jsonl" } },
 * //   b: { name: "base", source: { kind: "url", url: "http://127.0.0.1:8080/v1" } } }
 * ```
 */
export function parsePairSpec(text: string, where = "--pair"): PairSpec {
  const parts = text.split(",");
  if (parts.length !== 2) {
    throw new WinRateInputError(`${where} ${JSON.stringify(text)}: expected nameA=answersA,nameB=answersB`);
  }
  const [a, b] = parts.map((part) => {
    const eq = part.indexOf("=");
    const name = part.slice(0, eq).trim();
    const source = part.slice(eq + 1).trim();
    if (eq <= 0 || name === "" || source === "") {
      throw new WinRateInputError(
        `${where} ${JSON.stringify(text)}: ${JSON.stringify(part)} is not name=source`,
      );
    }
    return { name, source: sourceOf(source) };
  });
  if (a.name === b.name) {
    throw new WinRateInputError(`${where} ${JSON.stringify(text)}: the two names are equal`);
  }
  return { a, b };
}

/**
 * An answers path, or a URL to generate answers from.
 *
 * @example
 * ```ts
 * sourceOf("http://127.0.0.1:8080/v1"); // { kind: "url", url: "http://127.0.0.1:8080/v1" }
 * sourceOf("answers.jsonl"); // { kind: "file", path: "answers.jsonl" }
 * ```
 */
export function sourceOf(value: string): AnswerSource {
  return /^https?:\/\//i.test(value) ? { kind: "url", url: value } : { kind: "file", path: value };
}
