/**
 * The pairwise judge prompt: FastChat's MT-Bench `pair-v2` judge (system prompt and single-turn template)
 * translated into Korean, with one added criterion — that a Korean question deserves natural, correct
 * Korean. The judge explains, then ends with exactly `[[A]]`, `[[B]]` or `[[C]]` (tie).
 * @module
 */

/** A judge's decision in one game: assistant A better, B better, or a tie. */
export type Verdict = "A" | "B" | "C";

/**
 * Changes whenever the prompt text changes, and is part of each judgment's fingerprint, so resumed runs
 * re-judge instead of mixing verdicts from two prompts.
 */
export const JUDGE_PROMPT_VERSION = "ko-pair-v2.1";

/** The judge's system prompt (FastChat `pair-v2`, in Korean). */
export const JUDGE_SYSTEM_PROMPT = [
  "당신은 공정한 심판입니다. 아래에 표시된 사용자 질문에 대해 두 AI 어시스턴트가 한 답변의 품질을 평가해 주세요.",
  "사용자의 지시를 더 잘 따르고 질문에 더 잘 답한 어시스턴트를 골라야 합니다.",
  "답변의 유용성, 관련성, 정확성, 깊이, 창의성, 상세함을 고려하세요.",
  "질문이 한국어라면 답변이 자연스럽고 올바른 한국어로 쓰였는지도 고려하세요.",
  "먼저 두 답변을 비교하여 짧게 설명하세요.",
  "위치에 따른 편향을 피하고, 답변이 제시된 순서가 판단에 영향을 주지 않도록 하세요.",
  "답변의 길이가 평가에 영향을 주지 않도록 하세요.",
  "어시스턴트의 이름 때문에 어느 한쪽을 편애하지 마세요.",
  "최대한 객관적으로 판단하세요.",
  '설명을 마친 뒤에는 다음 형식을 엄격히 지켜 최종 판정을 출력하세요: 어시스턴트 A가 더 나으면 "[[A]]", ' +
  '어시스턴트 B가 더 나으면 "[[B]]", 비슷하면(무승부) "[[C]]".',
].join(" ");

/**
 * The user message showing the question and both answers.
 *
 * @example
 * ```ts
 * const text = judgeUserPrompt("김치찌개 끓이는 법을 알려 주세요.", "답변 하나", "답변 둘");
 * // "[사용자 질문]\n김치찌개 끓이는 법을 알려 주세요.\n\n[어시스턴트 A의 답변 시작]\n답변 하나\n..."
 * ```
 */
export function judgeUserPrompt(question: string, answerA: string, answerB: string): string {
  return [
    `[사용자 질문]\n${question}`,
    `[어시스턴트 A의 답변 시작]\n${answerA}\n[어시스턴트 A의 답변 끝]`,
    `[어시스턴트 B의 답변 시작]\n${answerB}\n[어시스턴트 B의 답변 끝]`,
  ].join("\n\n");
}

/**
 * The judge's chat messages for one game (A shown first).
 *
 * @example
 * ```ts
 * const messages = judgeMessages(question, answerOfModelX, answerOfModelY);
 * // [{ role: "system", content: JUDGE_SYSTEM_PROMPT }, { role: "user", content: "[사용자 질문]\n..." }]
 * ```
 */
export function judgeMessages(
  question: string,
  answerA: string,
  answerB: string,
): { role: "system" | "user"; content: string }[] {
  return [
    { role: "system", content: JUDGE_SYSTEM_PROMPT },
    { role: "user", content: judgeUserPrompt(question, answerA, answerB) },
  ];
}

/**
 * How a verdict can be read from the judge's text: `fastchat` as FastChat's `run_judge_pair` reads it
 * (`[[A]]` anywhere wins, then `[[B]]`, then `[[C]]`), or `last`, the last marker in the text (judges often
 * quote the format while explaining before they give the verdict).
 * @example
 * ```ts
 * VERDICT_RULES.includes("last"); // true
 * ```
 */
export const VERDICT_RULES: readonly VerdictRule[] = ["fastchat", "last"];

/** One of {@link VERDICT_RULES}. */
export type VerdictRule = "fastchat" | "last";

/**
 * The verdict in the judge's text by `rule` (default FastChat's), or null when there is none.
 *
 * @example
 * ```ts
 * parseVerdict('형식은 "[[C]]"처럼 씁니다. B가 더 정확합니다. [[B]]'); // "B": no [[A]], so [[B]] comes first
 * parseVerdict('"[[A]]" 또는 "[[B]]"로 답합니다. [[B]]'); // "A", as FastChat reads it
 * parseVerdict('"[[A]]" 또는 "[[B]]"로 답합니다. [[B]]', "last"); // "B"
 * parseVerdict("판단할 수 없습니다."); // null
 * ```
 */
export function parseVerdict(text: string, rule: VerdictRule = "fastchat"): Verdict | null {
  if (rule === "fastchat") {
    for (const v of ["A", "B", "C"] as const) if (text.includes(`[[${v}]]`)) return v;
    return null;
  }
  let last: Verdict | null = null;
  for (const m of text.matchAll(/\[\[([ABC])\]\]/g)) last = m[1] as Verdict;
  return last;
}
