#!/usr/bin/env -S deno run --no-prompt --allow-read --allow-write --allow-run=chromium
/**
 * `deno task report --in <run dir | KoBEST results | win-rate summary/JSONL> … --out report.html`: one
 * self-contained HTML report with charts and tables (see `report/`). `--png DIR` also writes each chart as a
 * PNG, drawn by headless Chromium.
 * @module
 */
import { parseArgs } from "node:util";
import { deniedPermissionLine, runTask } from "../io/cli.ts";
import { CHROMIUM_INSTALL_HINT, DEFAULT_CHROMIUM } from "../report/chromium.ts";
import { writeReport, type WriteReportOptions } from "../report/write.ts";

const HELP = `Write a self-contained HTML report of training runs, KoBEST results and win rates.

Usage: deno task report --in PATH [--in PATH …] --out FILE [--png DIR] [--title TEXT]

Each --in is told apart by its content:
  a training run folder      train_config.json and metrics.jsonl from deno task sft|dpo|orpo (or that metrics.jsonl)
  KoBEST results             lm-evaluation-harness results JSON: one object per model and shot setting, or an array
  win rates                  deno task winrate's *.summary.json, or its results JSONL

Options:
  --in PATH        an input (repeatable)
  --out FILE       the HTML file to write (default report.html)
  --png DIR        also write each chart as DIR/<chart>.png, drawn by headless Chromium
                   (\`${DEFAULT_CHROMIUM}\` on PATH: ${CHROMIUM_INSTALL_HINT})
  --title TEXT     the report's title (default "kotransfer report")
  -h, --help       show this help
`;

/**
 * Turns command-line arguments into report options, or `"help"`.
 *
 * @example
 * ```ts
 * reportOptionsFromArgs(["--in", "runs/orpo-tiny", "--out", "runs/orpo-tiny/report.html"]);
 * // { inputs: ["runs/orpo-tiny"], out: "runs/orpo-tiny/report.html", pngDir: undefined, title: undefined }
 * ```
 */
export function reportOptionsFromArgs(args: string[]): WriteReportOptions | "help" {
  const { values } = parseArgs({
    args,
    options: {
      in: { type: "string", multiple: true },
      out: { type: "string", default: "report.html" },
      png: { type: "string" },
      title: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return "help";
  if (!values.in || values.in.length === 0) throw new Error("give at least one --in (see --help)");
  return { inputs: values.in, out: values.out, pngDir: values.png, title: values.title };
}

async function main(): Promise<number> {
  try {
    const options = reportOptionsFromArgs(Deno.args);
    if (options === "help") {
      console.log(HELP);
    } else {
      const written = await writeReport(options);
      console.log(`report: wrote ${written.out} (${written.charts.length} chart(s))`);
      if (written.pngs.length > 0) console.log(`charts: ${written.pngs.join(" ")}`);
    }
    return 0;
  } catch (e) {
    console.error(deniedPermissionLine("report", e) ?? `report: ${e instanceof Error ? e.message : e}`);
    return 2;
  }
}

if (import.meta.main) Deno.exit(await runTask("report", main));
