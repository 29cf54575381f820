/**
 * Few-shot contexts as lm-evaluation-harness builds them for KoBEST (its default `ContextSampler`):
 *
 * - one `random.Random(seed)` per task (seed 1234 by default), advancing from document to document in the
 *   order the documents are scored;
 * - for each document, `rnd.sample(train_docs, k)`, leaving out a drawn shot equal to the document itself
 *   (only possible when train and scored docs overlap; lm-eval then uses fewer shots, and so do we);
 * - each shot rendered `context + " " + gold_choice + "\n\n"`, then the document's own context.
 *
 * 0-shot contexts are the bare context, and no random draw is made for them.
 *
 * @module
 */
import type { KobestDocMap, KobestTask } from "./data.ts";
import { PyRandom } from "../pyrandom.ts";
import { kobestPrompt } from "./prompts.ts";

/** lm-eval's `target_delimiter`: between a context and its answer. */
export const TARGET_DELIMITER = " ";
/** lm-eval's `fewshot_delimiter`: after each shot. */
export const FEWSHOT_DELIMITER = "\n\n";
/** lm-eval's default `fewshot_random_seed`. */
export const DEFAULT_FEWSHOT_SEED = 1234;

/**
 * One shot: the document's context, the target delimiter, its gold choice and the few-shot delimiter.
 *
 * @example
 * ```ts
 * renderShot("sentineg", { sentence: "좋다", label: 1 }); // "문장: 좋다 긍부정: 긍정\n\n"
 * ```
 */
export function renderShot<T extends KobestTask>(task: T, doc: KobestDocMap[T]): string {
  const { context, choices, gold } = kobestPrompt(task, doc);
  return context + TARGET_DELIMITER + choices[gold] + FEWSHOT_DELIMITER;
}

/** Python's `dict.__eq__` on two documents of one task: every field equal. */
function sameDoc(a: object, b: object): boolean {
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keys = Object.keys(ra);
  return keys.length === Object.keys(rb).length && keys.every((k) => ra[k] === rb[k]);
}

/**
 * Draws shots from the train split with one generator that advances with every call, as lm-eval's
 * sampler does over the documents of one task and one evaluation run.
 *
 * @example
 * ```ts
 * const sampler = new FewshotSampler("copa", trainDocs);
 * const contexts = testDocs.map((doc) => sampler.context(doc, 5)); // in scoring order
 * ```
 */
export class FewshotSampler<T extends KobestTask> {
  readonly #rnd: PyRandom;

  constructor(
    readonly task: T,
    readonly trainDocs: readonly KobestDocMap[T][],
    seed: number = DEFAULT_FEWSHOT_SEED,
  ) {
    this.#rnd = new PyRandom(seed);
  }

  /** The k train documents used as shots for `doc` (fewer if `doc` itself was drawn). Advances the generator. */
  shots(doc: KobestDocMap[T], k: number): KobestDocMap[T][] {
    if (!(Number.isInteger(k) && k >= 0)) {
      throw new RangeError(`${this.task}: shots must be an integer ≥ 0, got ${k}`);
    }
    if (k === 0) return [];
    if (k > this.trainDocs.length) {
      throw new RangeError(
        `${this.task}: ${k} shots asked, but the train split has ${this.trainDocs.length} documents`,
      );
    }
    return this.#rnd.sample(this.trainDocs, k).filter((shot) => !sameDoc(shot, doc)).slice(0, k);
  }

  /** The full scored context of `doc` with k shots. Advances the generator when k > 0. */
  context(doc: KobestDocMap[T], k: number): string {
    const shots = this.shots(doc, k).map((shot) => renderShot(this.task, shot)).join("");
    return shots + kobestPrompt(this.task, doc).context;
  }
}
