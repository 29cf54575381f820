/**
 * From input paths to a report file on disk (and, when asked, one PNG per chart): what
 * `deno task report` does, as a function.
 *
 * @module
 */
import { writeFileAtomic } from "../io/atomic.ts";
import type { ChartSpec } from "./charts.ts";
import { writeChartPngs } from "./chromium.ts";
import { readReportInputs } from "./inputs.ts";
import { buildReport } from "./page.ts";

/** Options of {@link writeReport}. */
export interface WriteReportOptions {
  /** Run folders, KoBEST results JSON files, win-rate summaries or results JSONL files. */
  inputs: readonly string[];
  /** The HTML file to write. */
  out: string;
  /** Also write each chart as `<pngDir>/<chart id>.png` (needs headless Chromium). */
  pngDir?: string;
  /** The page's heading and `<title>` (default "kotransfer report"). */
  title?: string;
  /** The browser for the PNG export (default `chromium` on PATH). */
  chromium?: string;
}

/** What {@link writeReport} wrote. */
export interface WrittenReport {
  /** The HTML file written. */
  out: string;
  /** The charts on the page, in order. */
  charts: ChartSpec[];
  /** PNG files, one per chart, when `pngDir` was given. */
  pngs: string[];
}

/**
 * Reads the inputs, writes the report (atomically: a reader never sees half a file) and the PNGs.
 *
 * @example
 * ```ts
 * const written = await writeReport({ inputs: ["runs/orpo-tiny"], out: "runs/orpo-tiny/report.html" });
 * console.log(`report: ${written.out}`);
 * ```
 */
export async function writeReport(options: WriteReportOptions): Promise<WrittenReport> {
  const inputs = await readReportInputs(options.inputs);
  const { html, charts } = await buildReport(inputs, { title: options.title });
  await writeFileAtomic(options.out, html);
  const pngs = options.pngDir === undefined
    ? []
    : await writeChartPngs(options.out, options.pngDir, { chromium: options.chromium });
  return { out: options.out, charts, pngs };
}
