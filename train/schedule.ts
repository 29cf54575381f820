/**
 * Learning-rate schedules as Hugging Face's `get_scheduler` defines them: the rate used by optimizer step
 * `s` (0-based, the number of steps already taken) for `total` steps with `warmup` warm-up steps.
 *
 * @module
 */

/** Schedules the trainer accepts (`--schedule`). */
export const SCHEDULES = ["linear", "cosine", "constant", "constant_with_warmup"] as const;
/** One learning-rate schedule, as `get_scheduler` names it. */
export type Schedule = typeof SCHEDULES[number];

/**
 * The learning rate of 0-based step `step`.
 * Warm-up rises linearly from 0 (`lr·step/warmup`, so the first step of a warm-up uses 0, as transformers
 * does); then `linear` decays to 0 at `total`, `cosine` follows half a cosine to 0, and the constants stay.
 *
 * @example
 * ```ts
 * learningRate("linear", 2e-4, 5, 10, 100); // 2e-4 · 95/90
 * ```
 */
export function learningRate(
  schedule: Schedule,
  peak: number,
  step: number,
  warmup: number,
  total: number,
): number {
  if (schedule === "constant") return peak;
  if (step < warmup) return (peak * step) / Math.max(1, warmup);
  if (schedule === "constant_with_warmup") return peak;
  const progress = (step - warmup) / Math.max(1, total - warmup);
  if (schedule === "linear") return peak * Math.max(0, 1 - progress);
  return peak * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** Warm-up steps from an explicit count, or a ratio of the total as transformers' `warmup_ratio` (ceil). */
export function warmupSteps(total: number, steps?: number, ratio?: number): number {
  if (steps !== undefined && steps > 0) return steps;
  return ratio ? Math.ceil(total * ratio) : 0;
}
