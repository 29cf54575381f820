/**
 * KoBEST-derived training data for the paper's pipeline: supervised rows (prompt → gold answer) and
 * preference rows (gold answer chosen over a wrong one), built from the same 0-shot contexts and choices
 * that the evaluation scores.
 *
 * prompt + completion is exactly the string lm-eval scores (context + " " + choice), split where lm-eval
 * splits it: the context's trailing whitespace moves onto the completion (BoolQ's "답변: " + " 예" becomes
 * "답변:" + "  예"), so training and scoring see the same token boundary.
 *
 * @module
 */
import {
  type KobestDocMap,
  type KobestSplit,
  type KobestTask,
  limitedCount,
  loadKobestSplit,
} from "./data.ts";
import { writeJsonlAtomic } from "../../io/jsonl.ts";
import { TARGET_DELIMITER } from "./fewshot.ts";
import { kobestPrompt } from "./prompts.ts";
import { splitTrailingSpace } from "../loglikelihood.ts";

/** A prompt/completion row for supervised fine-tuning. */
export interface SftRow {
  prompt: string;
  completion: string;
}

/** A prompt with a preferred and a dispreferred completion (DPO, ORPO). */
export interface PreferenceRow {
  prompt: string;
  chosen: string;
  rejected: string;
}

/**
 * One SFT row per document: the 0-shot context as prompt, the gold choice as completion.
 *
 * @example
 * ```ts
 * kobestToSft("sentineg", [{ sentence: "좋다", label: 1 }]);
 * // [{ prompt: "문장: 좋다 긍부정:", completion: " 긍정" }]
 * ```
 */
export function kobestToSft<T extends KobestTask>(task: T, docs: readonly KobestDocMap[T][]): SftRow[] {
  return docs.map((doc) => {
    const { context, choices, gold } = kobestPrompt(task, doc);
    const [prompt, completion] = splitTrailingSpace(context, TARGET_DELIMITER + choices[gold]);
    return { prompt, completion };
  });
}

/**
 * The wrong choice paired with the gold one: the other choice of a two-way task; for HellaSwag one of the
 * three wrong endings, rotating with the document's index so every position is used and reruns agree.
 */
function rejectedChoice(choices: string[], gold: number, docIndex: number): string {
  const wrong = choices.filter((_, i) => i !== gold);
  return wrong[docIndex % wrong.length];
}

/**
 * One preference row per document: the gold choice chosen, a wrong choice rejected (for HellaSwag the
 * wrong ending at position `docIndex mod 3` among the wrong ones).
 *
 * @example
 * ```ts
 * kobestToPreference("sentineg", [{ sentence: "좋다", label: 1 }]);
 * // [{ prompt: "문장: 좋다 긍부정:", chosen: " 긍정", rejected: " 부정" }]
 * ```
 */
export function kobestToPreference<T extends KobestTask>(
  task: T,
  docs: readonly KobestDocMap[T][],
): PreferenceRow[] {
  return docs.map((doc, docIndex) => {
    const { context, choices, gold } = kobestPrompt(task, doc);
    const [prompt, chosen] = splitTrailingSpace(context, TARGET_DELIMITER + choices[gold]);
    const [, rejected] = splitTrailingSpace(
      context,
      TARGET_DELIMITER + rejectedChoice(choices, gold, docIndex),
    );
    return { prompt, chosen, rejected };
  });
}

/** Options of {@link writeKobestTrainingData}. */
export interface TrainingDataOptions {
  dataDir: string;
  /** Folder for sft.jsonl and preference.jsonl (created if missing). */
  outDir: string;
  tasks: readonly KobestTask[];
  split: KobestSplit;
  /** First N documents of each task. */
  limit?: number;
}

/**
 * Loads a split of each task and writes `sft.jsonl` and `preference.jsonl` (tasks in the order given,
 * documents in file order). Returns the number of documents used per task.
 *
 * @example
 * ```ts
 * const counts = await writeKobestTrainingData({
 *   dataDir: "data/kobest", outDir: "data/kobest_train", tasks: ["boolq", "copa"], split: "train",
 * });
 * // { boolq: 3665, copa: 3076 }
 * ```
 */
export async function writeKobestTrainingData(
  options: TrainingDataOptions,
): Promise<Partial<Record<KobestTask, number>>> {
  const sft: SftRow[] = [];
  const preference: PreferenceRow[] = [];
  const counts: Partial<Record<KobestTask, number>> = {};
  for (const task of options.tasks) {
    const all = await loadKobestSplit(options.dataDir, task, options.split);
    const docs = all.slice(0, limitedCount(all.length, options.limit));
    sft.push(...kobestToSft(task, docs));
    preference.push(...kobestToPreference(task, docs));
    counts[task] = docs.length;
  }
  await Deno.mkdir(options.outDir, { recursive: true });
  await writeJsonlAtomic(`${options.outDir}/sft.jsonl`, sft);
  await writeJsonlAtomic(`${options.outDir}/preference.jsonl`, preference);
  return counts;
}
