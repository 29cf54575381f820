/**
 * Answers to the win rates' questions: JSONL files with `{id, answer}`, `{id, output}` or FastChat's
 * `{question_id, choices: [{turns: [...]}]}` (first turn).
 *
 * @module
 */
import { idOf, parseJsonl, readText, type Row, WinRateInputError } from "./inputs.ts";

/**
 * The answer text of one answer record.
 *
 * @example
 * ```ts
 * answerText({ question_id: 81, choices: [{ turns: ["첫 답변", "둘째 답변"] }] }, "a.jsonl:1"); // "첫 답변"
 * ```
 */
export function answerText(row: Row, where: string): string {
  for (const field of ["answer", "output"]) {
    if (typeof row[field] === "string") return row[field] as string;
  }
  const turns = Array.isArray(row.choices) ? (row.choices[0] as Row | undefined)?.turns : undefined;
  if (Array.isArray(turns) && typeof turns[0] === "string") return turns[0];
  throw new WinRateInputError(
    `${where}: expected a string "answer" or "output", or "choices": [{"turns": [string, ...]}]`,
  );
}

/**
 * Reads an answers JSONL file into a map from question id to answer; ids must be unique.
 *
 * @example
 * ```ts
 * const answers = await readAnswers("runs/answers/ko-orpo.jsonl");
 * answers.get("user_oriented_task_0");
 * ```
 */
export async function readAnswers(path: string): Promise<Map<string, string>> {
  const answers = new Map<string, string>();
  for (const { line, row } of parseJsonl(await readText(path, "answers"), path)) {
    const where = `${path}:${line}`;
    const id = idOf(row, where);
    if (answers.has(id)) throw new WinRateInputError(`${where}: duplicate id ${JSON.stringify(id)}`);
    answers.set(id, answerText(row, where));
  }
  return answers;
}
