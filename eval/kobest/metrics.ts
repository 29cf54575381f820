/**
 * KoBEST metrics as lm-evaluation-harness computes them: per-document predictions (`acc`, `acc_norm`),
 * the aggregations (mean, sklearn's macro F1), the standard error of a mean, and the size-weighted group
 * score with its pooled standard error.
 *
 * @module
 */

/**
 * The index of the first largest value, as `numpy.argmax` (inputs must not hold NaN).
 *
 * @example
 * ```ts
 * argmax([-2, -1, -1]); // 1
 * ```
 */
export function argmax(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("argmax of an empty list");
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/**
 * Length of a string in Unicode code points, as Python's `len` (JavaScript's `length` counts UTF-16 units).
 *
 * @example
 * ```ts
 * codePointLength("a😀b"); // 3
 * ```
 */
export function codePointLength(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** One document's outcome under lm-eval's multiple-choice rule. */
export interface ChoiceOutcome {
  /** argmax of the log-likelihoods. */
  pred: number;
  /** argmax of log-likelihood divided by the choice's length in characters. */
  predNorm: number;
  acc: number;
  accNorm: number;
}

/**
 * Scores one document: `pred` is the choice with the highest log-likelihood, `predNorm` the highest
 * log-likelihood per character of the choice text (lm-eval divides by `len(choice)`, the delimiter not
 * counted).
 *
 * @example
 * ```ts
 * scoreChoices([-3, -4], ["아니오", "예"], 1); // { pred: 0, predNorm: 0, acc: 0, accNorm: 0 }
 * ```
 */
export function scoreChoices(
  loglikelihoods: readonly number[],
  choices: readonly string[],
  gold: number,
): ChoiceOutcome {
  if (loglikelihoods.length !== choices.length) {
    throw new Error(`${loglikelihoods.length} log-likelihoods for ${choices.length} choices`);
  }
  const pred = argmax(loglikelihoods);
  const predNorm = argmax(loglikelihoods.map((ll, i) => ll / codePointLength(choices[i])));
  return { pred, predNorm, acc: pred === gold ? 1 : 0, accNorm: predNorm === gold ? 1 : 0 };
}

/**
 * Arithmetic mean (Python's `sum(xs) / len(xs)`, summed left to right).
 *
 * @example
 * ```ts
 * mean([1, 0, 1, 1]); // 0.75
 * ```
 */
export function mean(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("mean of an empty list");
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/**
 * Standard error of the mean as lm-eval's `mean_stderr`: sample standard deviation (n − 1) over √n.
 * "N/A" below two values, where it is undefined.
 *
 * @example
 * ```ts
 * meanStderr([1, 0, 1, 1]); // 0.25
 * ```
 */
export function meanStderr(values: readonly number[]): number | "N/A" {
  if (values.length < 2) return "N/A";
  const mu = mean(values);
  let ss = 0;
  for (const v of values) ss += (v - mu) ** 2;
  return Math.sqrt(ss / (values.length - 1)) / Math.sqrt(values.length);
}

/**
 * Macro F1 as scikit-learn's `f1_score(golds, preds, average="macro")`: the unweighted mean over every
 * label present in golds ∪ preds of 2·tp / (2·tp + fp + fn), so a class that is never predicted counts 0.
 *
 * @example
 * ```ts
 * macroF1([0, 0, 1, 1], [0, 0, 0, 0]); // (2/3 + 0) / 2: class 1 is never predicted
 * ```
 */
export function macroF1(golds: readonly number[], preds: readonly number[]): number {
  if (golds.length !== preds.length) {
    throw new Error(`macroF1: ${golds.length} golds but ${preds.length} predictions`);
  }
  if (golds.length === 0) throw new RangeError("macroF1 of an empty list");
  const labels = [...new Set([...golds, ...preds])].sort((a, b) => a - b);
  const f1s = labels.map((label) => {
    let tp = 0, fp = 0, fn = 0;
    for (let i = 0; i < golds.length; i++) {
      const isGold = golds[i] === label;
      const isPred = preds[i] === label;
      if (isGold && isPred) tp++;
      else if (isPred) fp++;
      else if (isGold) fn++;
    }
    const denominator = 2 * tp + fp + fn;
    return denominator === 0 ? 0 : (2 * tp) / denominator;
  });
  return mean(f1s);
}

/**
 * Size-weighted mean, as lm-eval's `aggregate_subtask_metrics(..., weight_by_size=True)`.
 *
 * @example
 * ```ts
 * weightedMean([0.5, 1], [100, 300]); // 0.875
 * ```
 */
export function weightedMean(values: readonly number[], sizes: readonly number[]): number {
  if (values.length !== sizes.length || values.length === 0) {
    throw new Error(`weightedMean: ${values.length} values and ${sizes.length} sizes`);
  }
  let num = 0, den = 0;
  values.forEach((v, i) => {
    num += v * sizes[i];
    den += sizes[i];
  });
  return num / den;
}

/**
 * The group's standard error from its subtasks' (lm-eval's `pooled_sample_stderr`): pooled sample variance
 * Σ (nᵢ − 1)·nᵢ·seᵢ² / (Σ nᵢ − k), over Σ nᵢ, square-rooted. "N/A" if any input is "N/A".
 *
 * @example
 * ```ts
 * pooledSampleStderr([0.01, 0.02], [1000, 500]);
 * ```
 */
export function pooledSampleStderr(
  stderrs: readonly (number | "N/A")[],
  sizes: readonly number[],
): number | "N/A" {
  if (stderrs.length !== sizes.length || stderrs.length === 0) {
    throw new Error(`pooledSampleStderr: ${stderrs.length} stderrs and ${sizes.length} sizes`);
  }
  let num = 0, total = 0;
  for (let i = 0; i < stderrs.length; i++) {
    const se = stderrs[i];
    if (se === "N/A") return "N/A";
    num += (sizes[i] - 1) * se ** 2 * sizes[i];
    total += sizes[i];
  }
  const dof = total - sizes.length;
  return dof <= 0 ? "N/A" : Math.sqrt(num / dof / total);
}
