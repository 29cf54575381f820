#!/usr/bin/env -S deno run --no-prompt --allow-read --allow-write --allow-run=chromium
/**
 * `deno task report --in <run dir | KoBEST results | win-rate summary/JSONL> … --out report.html`: one
 * self-contained HTML report with charts and tables (see `report/`). `--png DIR` also writes each chart as a
 * PNG, drawn by headless Chromium.
 * @module
 */
import { deniedPermissionLine, runTask } from "../io/cli.ts";
import { parseSettings, settingsHelp, type SettingsTable, withTableDefaults } from "../io/settings.ts";
import { CHROMIUM_INSTALL_HINT, DEFAULT_CHROMIUM } from "../report/chromium.ts";
import { writeReport, type WriteReportOptions } from "../report/write.ts";

/** The task's flags: one definition each of name, default and help. */
const SETTINGS = {
  inputs: {
    name: "in",
    kind: "list",
    metavar: "PATH",
    help: "inputs (repeatable), each told apart by its content (see above)",
  },
  out: {
    name: "out",
    kind: "string",
    metavar: "FILE",
    default: "report.html",
    help: "the HTML file to write",
  },
  png: {
    name: "png",
    kind: "string",
    metavar: "DIR",
    help:
      `also write each chart as DIR/<chart>.png, drawn by headless Chromium (\`${DEFAULT_CHROMIUM}\` on ` +
      `PATH: ${CHROMIUM_INSTALL_HINT})`,
  },
  title: {
    name: "title",
    kind: "string",
    metavar: "TEXT",
    defaultHelp: '"kotransfer report"',
    help: "the report's title",
  },
} satisfies SettingsTable;

const HELP = settingsHelp(SETTINGS, {
  usage: "Usage: deno task report --in PATH [--in PATH …] --out FILE [--png DIR] [--title TEXT]",
  intro: `Write a self-contained HTML report of training runs, KoBEST results and win rates.

Each --in is told apart by its content:
  a training run folder      deno task sft|dpo|orpo's --output_dir (metrics.jsonl or trainer_state.json,
                             training_args.json), or one that TRL or the Hugging Face Trainer wrote; its
                             metrics.jsonl or trainer_state.json means the same run
  KoBEST results             lm-evaluation-harness results JSON: one object per model and shot setting, or
                             an array of them
  win rates                  deno task winrate's *.summary.json, or its results JSONL`,
});

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
  const parsed = parseSettings(SETTINGS, args);
  if (parsed.help) return "help";
  const values = withTableDefaults(SETTINGS, parsed.values);
  if (!values.inputs || values.inputs.length === 0) throw new Error("give at least one --in (see --help)");
  return { inputs: values.inputs, out: values.out!, pngDir: values.png, title: values.title };
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
