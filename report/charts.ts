/**
 * Chart.js configurations for the report, as plain JSON (the page adds the few formatting callbacks by
 * chart kind): training curves, KoBEST macro-F1 bars and win/tie/loss bars. Each chart carries its title in
 * the canvas, so an exported PNG explains itself.
 *
 * @module
 */
import type { ChartConfiguration } from "./chartjs.ts";
import { KOBEST_TASKS, type KobestTask } from "../eval/kobest/data.ts";
import { weightedMean } from "../eval/kobest/metrics.ts";
import { lmEvalTaskName } from "../eval/kobest/results.ts";
import type { KobestEntry, MetricRecord, TrainingRun, WinRateSet } from "./inputs.ts";

/** Which formatting the page applies to a chart. */
export type ChartKind = "training" | "kobest" | "winrate";

/**
 * A Chart.js configuration (`ChartConfiguration` from the pinned chart.js), named here so the public API
 * documents it without re-exporting chart.js's whole type tree.
 */
export type ReportChartConfig = ChartConfiguration;

/** One chart of the report. */
export interface ChartSpec {
  /** The canvas's element id and the PNG file's name (without `.png`). */
  id: string;
  /** Which formatting callbacks the page adds. */
  kind: ChartKind;
  /** Shown in the canvas, so a PNG explains itself. */
  title: string;
  /** Height of the chart's box in CSS pixels. */
  height: number;
  /** The Chart.js configuration as plain JSON (no callbacks). */
  config: ReportChartConfig;
}

/** A training metric the report plots, with its heading. */
export interface TrainingMetric {
  key: string;
  title: string;
  /** The y axis's title. */
  axis: string;
}

/**
 * The training metrics plotted, in order; a chart is drawn for each that some run logged.
 *
 * @example
 * ```ts
 * TRAINING_METRICS.map((m) => m.key); // ["loss", "nll_loss", "log_odds_ratio", "rewards/margins", …]
 * ```
 */
export const TRAINING_METRICS: readonly TrainingMetric[] = [
  { key: "loss", title: "Loss", axis: "loss" },
  { key: "nll_loss", title: "NLL loss (chosen)", axis: "nll_loss" },
  { key: "log_odds_ratio", title: "Log odds ratio (mean log σ)", axis: "log_odds_ratio" },
  { key: "rewards/margins", title: "Reward margin (chosen − rejected)", axis: "rewards/margins" },
  { key: "mean_token_accuracy", title: "Mean token accuracy", axis: "mean_token_accuracy" },
  { key: "learning_rate", title: "Learning rate", axis: "learning_rate" },
  { key: "tokens_per_second", title: "Throughput", axis: "tokens / s" },
];

/** Tableau 10: distinct on screen and in print. */
const PALETTE = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [127, 127, 127],
  [188, 189, 34],
  [23, 190, 207],
] as const;

/**
 * The i-th colour of the palette as CSS `rgba()`.
 *
 * @example
 * ```ts
 * color(0); // "rgba(31, 119, 180, 1)"
 * ```
 */
export function color(i: number, alpha = 1): string {
  const [r, g, b] = PALETTE[i % PALETTE.length];
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

/**
 * The key the trainer logs a metric's evaluation under, as TRL does: `eval_` and the name.
 *
 * @example
 * ```ts
 * evalKey("rewards/margins"); // "eval_rewards/margins"
 * ```
 */
export function evalKey(metric: string): string {
  return `eval_${metric}`;
}

/**
 * A lowercase id made of letters, digits and dashes.
 *
 * @example
 * ```ts
 * slug("rewards/margins"); // "rewards-margins"
 * ```
 */
export function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "chart";
}

const TITLE = (text: string) => ({ display: true, text, font: { size: 15, weight: "bold" as const } });

// ---------------------------------------------------------------------------------------------------------
// Training curves

function points(records: readonly MetricRecord[], key: string): { x: number; y: number }[] {
  return records.filter((r) => typeof r[key] === "number").map((r) => ({ x: r.step, y: r[key] }));
}

/**
 * One line chart per training metric that some run logged, with one line per run and, where the run has
 * evaluation records for the metric, a dashed line of the same colour on the same axes.
 *
 * @example
 * ```ts
 * trainingCharts([run]).map((c) => c.id); // ["train-loss", "train-nll-loss", …]
 * ```
 */
export function trainingCharts(runs: readonly TrainingRun[]): ChartSpec[] {
  return TRAINING_METRICS.flatMap((metric) => {
    const datasets = runs.flatMap((run, i) => runDatasets(run, i, metric.key));
    if (datasets.length === 0) return [];
    const config: ChartConfiguration<"line", { x: number; y: number }[]> = {
      type: "line",
      data: { datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "nearest", intersect: false },
        scales: {
          x: { type: "linear", title: { display: true, text: "step" }, ticks: { precision: 0 } },
          y: { title: { display: true, text: metric.axis } },
        },
        plugins: {
          title: TITLE(metric.title),
          legend: { position: "bottom", labels: { boxWidth: 28, boxHeight: 2 } },
        },
      },
    };
    return [{
      id: `train-${slug(metric.key)}`,
      kind: "training" as const,
      title: metric.title,
      height: 320,
      config: config as unknown as ChartConfiguration,
    }];
  });
}

function runDatasets(run: TrainingRun, i: number, key: string) {
  const train = points(run.train, key);
  const evals = points(run.eval, evalKey(key));
  const line = { borderColor: color(i), backgroundColor: color(i), borderWidth: 2, pointRadius: 2 };
  return [
    ...(train.length > 0 ? [{ label: run.name, data: train, ...line }] : []),
    ...(evals.length > 0
      ? [{ label: `${run.name} (eval)`, data: evals, ...line, borderDash: [6, 4], pointRadius: 3 }]
      : []),
  ];
}

// ---------------------------------------------------------------------------------------------------------
// KoBEST

/**
 * KoBEST task names as the paper's tables print them.
 *
 * @example
 * ```ts
 * KOBEST_DISPLAY_NAMES.hellaswag; // "HellaSwag"
 * ```
 */
export const KOBEST_DISPLAY_NAMES: Record<KobestTask, string> = {
  boolq: "BoolQ",
  copa: "COPA",
  hellaswag: "HellaSwag",
  sentineg: "SentiNeg",
  wic: "WiC",
};

/**
 * The KoBEST tasks present in any entry, in lm-eval's order.
 *
 * @example
 * ```ts
 * kobestTasksPresent(entries); // ["boolq", "copa", …]
 * ```
 */
export function kobestTasksPresent(entries: readonly KobestEntry[]): KobestTask[] {
  return KOBEST_TASKS.filter((t) => entries.some((e) => e.results.results[lmEvalTaskName(t)]));
}

/**
 * An entry's macro-F1 per task (null where missing) and its size-weighted average over the tasks it has,
 * the average `kobestMarkdownTable` prints.
 *
 * @example
 * ```ts
 * kobestF1s(entry, ["boolq", "copa"]); // { perTask: [0.61, null], average: 0.61 }
 * ```
 */
export function kobestF1s(entry: KobestEntry, tasks: readonly KobestTask[]) {
  const rows = tasks.map((t) => ({
    row: entry.results.results[lmEvalTaskName(t)],
    n: entry.results["n-samples"][lmEvalTaskName(t)]?.effective,
  }));
  const perTask = rows.map(({ row }) => row ? row["f1,none"] as number : null);
  const have = rows.filter(({ row }) => row !== undefined);
  const average = have.length === 0
    ? null
    : weightedMean(have.map(({ row }) => row["f1,none"] as number), have.map(({ n }) => n));
  return { perTask, average };
}

/**
 * Grouped bars of macro-F1: tasks (and their average) along x, one bar per model and shot setting, a model's
 * shot settings in one colour from light (fewest shots) to solid (most).
 *
 * @example
 * ```ts
 * kobestChart(entries)?.id; // "kobest-f1"
 * ```
 */
export function kobestChart(entries: readonly KobestEntry[]): ChartSpec | undefined {
  if (entries.length === 0) return undefined;
  const tasks = kobestTasksPresent(entries);
  const models = [...new Set(entries.map((e) => e.model))];
  const datasets = entries.map((entry) => {
    const m = models.indexOf(entry.model);
    const shots = [...new Set(entries.filter((e) => e.model === entry.model).map((e) => e.shots))].sort((
      a,
      b,
    ) => a - b);
    const rank = shots.length === 1 ? 1 : shots.indexOf(entry.shots) / (shots.length - 1);
    const { perTask, average } = kobestF1s(entry, tasks);
    return {
      label: `${entry.model} · ${entry.shots}-shot`,
      data: [...perTask, average],
      backgroundColor: color(m, 0.3 + 0.7 * rank),
      borderColor: color(m),
      borderWidth: 1,
    };
  });
  const config: ChartConfiguration<"bar", (number | null)[]> = {
    type: "bar",
    data: { labels: [...tasks.map((t) => KOBEST_DISPLAY_NAMES[t]), "Avg"], datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      scales: { y: { min: 0, max: 1, title: { display: true, text: "macro-F1" } } },
      plugins: { title: TITLE("KoBEST macro-F1 by task"), legend: { position: "bottom" } },
    },
  };
  return {
    id: "kobest-f1",
    kind: "kobest",
    title: "KoBEST macro-F1 by task",
    height: 360,
    config: config as unknown as ChartConfiguration,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Win rates

/**
 * A fraction as a percentage with one decimal, or "–" for none.
 *
 * @example
 * ```ts
 * percent(0.625); // "62.5%"
 * ```
 */
export function percent(x: number | null): string {
  return x === null ? "–" : `${(x * 100).toFixed(1)}%`;
}

/**
 * Win / tie / loss as stacked horizontal bars in percent, one bar per pair, labelled with the tie-adjusted
 * win rate; one chart per judge.
 *
 * @example
 * ```ts
 * winRateCharts([set])[0].id; // "winrate-1"
 * ```
 */
export function winRateCharts(sets: readonly WinRateSet[]): ChartSpec[] {
  return sets.map((set, i) => {
    const pct = (x: number | null) => x === null ? 0 : Math.round(x * 1000) / 10;
    const outcome = (label: string, c: number, pick: (p: WinRateSet["pairs"][number]) => number | null) => ({
      label,
      data: set.pairs.map((p) => pct(pick(p))),
      backgroundColor: color(c, 0.85),
      borderColor: color(c),
      borderWidth: 1,
    });
    const title = `Win / tie / loss, judged by ${set.judge}`;
    const config: ChartConfiguration<"bar", number[]> = {
      type: "bar",
      data: {
        labels: set.pairs.map((p) => `${p.model_a} vs ${p.model_b} · win rate ${percent(p.win_rate)}`),
        datasets: [
          outcome("Win", 2, (p) => p.win),
          outcome("Tie", 7, (p) => p.tie),
          outcome("Loss", 3, (p) => p.loss),
        ],
      },
      options: {
        indexAxis: "y",
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          x: { stacked: true, min: 0, max: 100, title: { display: true, text: "% of judged questions" } },
          y: { stacked: true },
        },
        plugins: { title: TITLE(title), legend: { position: "bottom" } },
      },
    };
    return {
      id: `winrate-${i + 1}`,
      kind: "winrate" as const,
      title,
      height: 130 + 48 * set.pairs.length,
      config: config as unknown as ChartConfiguration,
    };
  });
}
