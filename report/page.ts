/**
 * The report as one self-contained HTML file: sections for training runs, KoBEST and win rates (each left
 * out when no input of its kind was given), with Chart.js inlined and a Content-Security-Policy that allows
 * no network at all, so the file opens anywhere, offline, as it was written.
 *
 * @module
 */
import { type ChartSpec, kobestChart, trainingCharts, winRateCharts } from "./charts.ts";
import { CHART_JS_VERSION, chartJsSource } from "./chartjs.ts";
import { escapeHtml, inlineScript, scriptJson } from "./html.ts";
import type { ReportInputs } from "./inputs.ts";
import { CHART_BOOTSTRAP_SCRIPT, ERROR_CAPTURE_SCRIPT } from "./page_scripts.ts";
import {
  configTable,
  judgesTable,
  kobestTable,
  runSummaryTable,
  textTableHtml,
  winRateTable,
} from "./tables.ts";

/**
 * Korean fonts the page asks for, first found wins; the page records which of them the browser has.
 *
 * @example
 * ```ts
 * KOREAN_FONTS[0]; // "NanumGothic" (Debian's fonts-nanum)
 * ```
 */
export const KOREAN_FONTS = [
  "NanumGothic",
  "Nanum Gothic",
  "Noto Sans KR",
  "Apple SD Gothic Neo",
  "Malgun Gothic",
];

/**
 * The page's font stack (CSS and charts alike): Korean fonts first, then the generic family.
 *
 * @example
 * ```ts
 * FONT_STACK; // '"NanumGothic", "Nanum Gothic", "Noto Sans KR", …, sans-serif'
 * ```
 */
export const FONT_STACK = [...KOREAN_FONTS.map((f) => `"${f}"`), "sans-serif"].join(", ");

/** Options of {@link buildReport}. */
export interface ReportOptions {
  /** The page's heading and `<title>` (default "kotransfer report"). */
  title?: string;
  /** Shown in the header (default now). */
  generatedAt?: Date;
}

/** A built report: the HTML and the charts in it, in page order. */
export interface BuiltReport {
  html: string;
  charts: ChartSpec[];
}

/** The data the page's script reads from `#chart-data`. */
export interface PageData {
  font: string;
  koreanFonts: string[];
  charts: ChartSpec[];
}

const STYLE = `
:root { color-scheme: light; }
body { font-family: ${FONT_STACK}; margin: 0; color: #1d1d1f; background: #f6f7f9; line-height: 1.45; }
header, section, footer { max-width: 1200px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; }
h1 { font-size: 1.7rem; margin: 0 0 4px; }
h2 { font-size: 1.3rem; margin: 36px 0 12px; border-bottom: 2px solid #d9dce1; padding-bottom: 4px; }
h3 { font-size: 1.05rem; margin: 24px 0 8px; }
.meta, .note, footer { color: #5b6270; font-size: 0.9rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; }
figure { margin: 0; background: #fff; border: 1px solid #e1e4e8; border-radius: 8px; padding: 12px; }
.charts.wide { grid-template-columns: 1fr; }
.chart-box { position: relative; width: 100%; }
.table-wrap { overflow-x: auto; background: #fff; border: 1px solid #e1e4e8; border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { padding: 6px 10px; border-bottom: 1px solid #eceef1; text-align: left; white-space: nowrap; }
th { background: #f0f2f5; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.differs td { background: #fff8e1; }
.table-wrap.compact { display: inline-block; max-width: 100%; }
table.compact { width: auto; font-size: 0.82rem; }
table.compact td, table.compact th { padding: 3px 12px; }
#page-errors { white-space: pre-wrap; background: #fdecea; color: #8a1c1c; border: 1px solid #f5c2c0;
  border-radius: 8px; padding: 12px; margin: 16px 24px; }
footer { padding-top: 32px; padding-bottom: 32px; }
`;

function figure(chart: ChartSpec): string {
  return `<figure><div class="chart-box" style="height: ${chart.height}px">` +
    `<canvas id="${escapeHtml(chart.id)}" role="img" aria-label="${escapeHtml(chart.title)}"></canvas>` +
    `</div></figure>`;
}

function chartGrid(charts: readonly ChartSpec[], wide = false): string {
  if (charts.length === 0) return "";
  return `<div class="charts${wide ? " wide" : ""}">${charts.map(figure).join("")}</div>`;
}

function tableBlock(html: string, compact = false): string {
  return `<div class="table-wrap${compact ? " compact" : ""}">${html}</div>`;
}

function trainingSection(inputs: ReportInputs, charts: readonly ChartSpec[]): string {
  if (inputs.runs.length === 0) return "";
  const parts = [`<section id="training"><h2>Training</h2>`, chartGrid(charts)];
  parts.push(`<h3>Runs</h3>`, tableBlock(textTableHtml(runSummaryTable(inputs.runs), 2)));
  const config = configTable(inputs.runs);
  if (config.rows.length > 0) {
    const note = config.header.length > 2
      ? `<p class="note">Highlighted: settings that differ between runs.</p>`
      : "";
    parts.push(
      `<h3>Configuration (training_args.json)</h3>`,
      note,
      tableBlock(
        textTableHtml(config, config.header.length, {
          className: "compact",
          rowClasses: config.differs.map((d) => d ? "differs" : ""),
        }),
        true,
      ),
    );
  }
  parts.push(`</section>`);
  return parts.join("");
}

function kobestSection(inputs: ReportInputs, chart: ChartSpec | undefined): string {
  if (inputs.kobest.length === 0) return "";
  return `<section id="kobest"><h2>KoBEST</h2>${chart ? chartGrid([chart], true) : ""}` +
    `<h3>Macro-F1 (accuracy)</h3>${tableBlock(textTableHtml(kobestTable(inputs.kobest), 2))}` +
    `<p class="note">Scored as lm-evaluation-harness does; Avg is weighted by each task's number of ` +
    `documents.</p></section>`;
}

function winRateSection(inputs: ReportInputs, charts: readonly ChartSpec[]): string {
  if (inputs.winRates.length === 0) return "";
  const blocks = inputs.winRates.map((set, i) => {
    const table = winRateTable(set);
    return `<h3>Judge: ${escapeHtml(set.judge)}</h3>${chartGrid([charts[i]], true)}` +
      tableBlock(textTableHtml(table, 2)) + `<p class="note">${escapeHtml(table.note)}</p>`;
  });
  return `<section id="winrate"><h2>Pairwise win rates</h2>${judgesBlock(inputs)}${
    blocks.join("")
  }</section>`;
}

/** A person's win rates beside the LLM judges', with their agreement, when the inputs hold both. */
function judgesBlock(inputs: ReportInputs): string {
  const table = judgesTable(inputs.winRates);
  if (!table) return "";
  const agreement = table.agreement.length === 0
    ? `<p class="note">Give the results JSONL (not only the summaries) to see how often the judges agree.</p>`
    : `<p class="note">Agreement, counted as FastChat's compute_agreement counts it (a person's votes all ` +
      `together as "human"):</p><ul class="note" id="judge-agreement">${
        table.agreement.map((l) => `<li>${escapeHtml(l)}</li>`).join("")
      }</ul>`;
  return `<h3>People and LLM judges side by side</h3>` + tableBlock(textTableHtml(table, 2), true) +
    `<p class="note">Win rate (wins/ties/losses) from model A's side; each judge's own rule, as its table ` +
    `below says.</p>${agreement}`;
}

function header(inputs: ReportInputs, title: string, generatedAt: Date): string {
  const sources = inputs.sources.map((s) => `<li><code>${escapeHtml(s)}</code></li>`).join("");
  return `<header><h1>${escapeHtml(title)}</h1><p class="meta">Generated ${
    escapeHtml(generatedAt.toISOString().replace("T", " ").slice(0, 19))
  } UTC from ${inputs.sources.length} input(s).</p><details class="meta"><summary>Inputs</summary><ul>${sources}</ul>` +
    `</details></header>`;
}

/**
 * Builds the report page for gathered inputs.
 *
 * @example
 * ```ts
 * const { html, charts } = await buildReport(await readReportInputs(["runs/orpo-tiny"]), { title: "ORPO 실험" });
 * await Deno.writeTextFile("report.html", html);
 * ```
 */
export async function buildReport(inputs: ReportInputs, options: ReportOptions = {}): Promise<BuiltReport> {
  if (inputs.runs.length + inputs.kobest.length + inputs.winRates.length === 0) {
    throw new Error("nothing to report: no training run, KoBEST result or win rate among the inputs");
  }
  const title = options.title ?? "kotransfer report";
  const training = trainingCharts(inputs.runs);
  const kobest = kobestChart(inputs.kobest);
  const winRates = winRateCharts(inputs.winRates);
  const charts = [...training, ...(kobest ? [kobest] : []), ...winRates];
  const pageData: PageData = { font: FONT_STACK, koreanFonts: KOREAN_FONTS, charts };
  const html = [
    `<!doctype html>`,
    `<html lang="ko"><head><meta charset="utf-8">`,
    `<meta name="viewport" content="width=device-width, initial-scale=1">`,
    // No network: the page must look the same offline, and a report never phones home.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; ` +
    `style-src 'unsafe-inline'; img-src data:">`,
    `<title>${escapeHtml(title)}</title>`,
    `<script>${inlineScript(ERROR_CAPTURE_SCRIPT)}</script>`,
    `<style>${STYLE}</style></head><body>`,
    header(inputs, title, options.generatedAt ?? new Date()),
    `<div id="page-errors" hidden></div>`,
    trainingSection(inputs, training),
    kobestSection(inputs, kobest),
    winRateSection(inputs, winRates),
    `<footer>Charts drawn by Chart.js ${escapeHtml(CHART_JS_VERSION)}, inlined in this file.</footer>`,
    `<script type="application/json" id="chart-data">${scriptJson(pageData)}</script>`,
    `<script type="application/json" id="render-result"></script>`,
    `<script>${inlineScript(await chartJsSource())}</script>`,
    `<script>${inlineScript(CHART_BOOTSTRAP_SCRIPT)}</script>`,
    `</body></html>`,
    ``,
  ].join("\n");
  return { html, charts };
}
