/**
 * The report's tables as HTML. The KoBEST and win-rate tables take their cells from the Markdown tables the
 * evaluators print (`kobestMarkdownTable`, `renderTable`), so the page and the terminal never disagree;
 * model names are swapped for placeholders while the Markdown is made (a `|` in a name would split a cell)
 * and put back, escaped, afterwards.
 *
 * @module
 */
import { kobestMarkdownTable, lmEvalTaskName } from "../eval/kobest/results.ts";
import { agreementLine, judgeAgreements } from "../eval/winrate/agreement.ts";
import { isHumanJudge, type PairSummary, renderTable } from "../eval/winrate/summary.ts";
import { kobestTasksPresent, percent } from "./charts.ts";
import { escapeHtml, htmlTable } from "./html.ts";
import type { KobestEntry, TrainingRun, WinRateSet } from "./inputs.ts";

/** A table as text cells (not yet escaped). */
export interface TextTable {
  header: string[];
  rows: string[][];
}

function markdownCells(line: string): string[] {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());
}

/**
 * The KoBEST comparison table: the cells of `kobestMarkdownTable` (macro-F1 with accuracy in parentheses,
 * and the size-weighted average), one row per entry.
 *
 * @example
 * ```ts
 * kobestTable(entries).header; // ["Model", "Shots", "BoolQ F1 (acc)", …, "Avg F1 (acc)"]
 * ```
 */
export function kobestTable(entries: readonly KobestEntry[]): TextTable {
  const tasks = new Set(kobestTasksPresent(entries).map(lmEvalTaskName));
  const markdown = kobestMarkdownTable(entries.map((e, i) => ({
    model: `m${i}`,
    // Only the KoBEST tasks' shot counts: a full lm-eval file may list other tasks at other settings.
    results: {
      ...e.results,
      "n-shot": Object.fromEntries(Object.entries(e.results["n-shot"]).filter(([t]) => tasks.has(t))),
    },
  })));
  const [header, , ...rows] = markdown.split("\n").map(markdownCells);
  return { header, rows: rows.map((cells, i) => [entries[i].model, ...cells.slice(1)]) };
}

/**
 * The pairs of one judge as the paper's Table 1 (the cells of `renderTable`) and its footnote.
 *
 * @example
 * ```ts
 * winRateTable(set).rows[0]; // ["orpo", "base", "45.0% (9)", "20.0% (4)", "35.0% (7)", "55.0%", "20", "0", "0"]
 * ```
 */
export function winRateTable(set: WinRateSet): TextTable & { note: string } {
  const anonymous = set.pairs.map((p, i) => ({ ...p, model_a: `a${i}`, model_b: `b${i}` }));
  const lines = renderTable(anonymous, set.judge, set.orders).split("\n");
  const header = markdownCells(lines[0]);
  const rows = lines.slice(2, 2 + set.pairs.length).map(markdownCells).map((cells, i) => [
    set.pairs[i].model_a,
    set.pairs[i].model_b,
    ...cells.slice(2),
  ]);
  return { header, rows, note: lines[lines.length - 1] };
}

/**
 * A person's win rates beside the LLM judges': one row per pair of models (named as the first judge that
 * compared them names them; a judge that compared them the other way round is turned to match), one column
 * per judge, LLM judges first, each cell the win rate with its wins/ties/losses; undefined unless the sets
 * hold both a person's votes and another judge's verdicts. `agreement` holds FastChat's agreement lines
 * where the judges' lines were given (results JSONL).
 *
 * @example
 * ```ts
 * judgesTable(inputs.winRates)?.rows[0]; // ["SFT", "PT", "62.5% (5/0/3)", "75.0% (6/0/2)"]
 * ```
 */
export function judgesTable(sets: readonly WinRateSet[]): (TextTable & { agreement: string[] }) | undefined {
  const people = sets.filter((s) => isHumanJudge(s.judge));
  const judges = [...sets.filter((s) => !isHumanJudge(s.judge)), ...people];
  if (people.length === 0 || people.length === judges.length) return undefined;
  const pairs: [string, string][] = [];
  for (const p of judges.flatMap((s) => s.pairs)) {
    if (
      !pairs.some(([a, b]) => (a === p.model_a && b === p.model_b) || (a === p.model_b && b === p.model_a))
    ) {
      pairs.push([p.model_a, p.model_b]);
    }
  }
  const cell = (set: WinRateSet, a: string, b: string) => {
    const same = set.pairs.find((p) => p.model_a === a && p.model_b === b);
    const turned = set.pairs.find((p) => p.model_a === b && p.model_b === a);
    const p: PairSummary | undefined = same ?? (turned && {
      ...turned,
      win: turned.loss,
      loss: turned.win,
      wins: turned.losses,
      losses: turned.wins,
      win_rate: turned.win_rate === null ? null : 1 - turned.win_rate,
    });
    return p ? `${percent(p.win_rate)} (${p.wins}/${p.ties}/${p.losses})` : "–";
  };
  return {
    header: ["Model A", "Model B", ...judges.map((s) => s.judge)],
    rows: pairs.map(([a, b]) => [a, b, ...judges.map((s) => cell(s, a, b))]),
    agreement: judgeAgreements(sets.flatMap((s) => s.records ?? [])).map(agreementLine),
  };
}

/**
 * A setting's value as one line of text.
 *
 * @example
 * ```ts
 * formatSetting(["a.jsonl", "b.jsonl"]); // "a.jsonl, b.jsonl"
 * ```
 */
export function formatSetting(value: unknown): string {
  if (value === undefined) return "–";
  if (Array.isArray(value) && value.every((v) => typeof v !== "object" || v === null)) {
    return value.length === 0 ? "[]" : value.map(String).join(", ");
  }
  if (typeof value === "object" && value !== null) return JSON.stringify(value);
  return String(value);
}

/**
 * Every run's `training_args.json` (an older run's `train_config.json`) side by side: one row per setting (in
 * the order the files list them), one column per run; `differs` marks the settings whose values are not all
 * the same.
 *
 * @example
 * ```ts
 * configTable(runs).rows.find((r) => r[0] === "learning_rate"); // ["learning_rate", "0.003", "0.0005"]
 * ```
 */
export function configTable(runs: readonly TrainingRun[]): TextTable & { differs: boolean[] } {
  const withConfig = runs.filter((r) => r.config);
  const keys = [...new Set(withConfig.flatMap((r) => Object.keys(r.config!)))];
  const rows = keys.map((k) => [k, ...withConfig.map((r) => formatSetting(r.config![k]))]);
  return {
    header: ["setting", ...withConfig.map((r) => r.name)],
    rows,
    differs: rows.map((r) => new Set(r.slice(1)).size > 1),
  };
}

function formatSeconds(s: number | undefined): string {
  if (s === undefined) return "–";
  const m = Math.floor(s / 60);
  return m > 0 ? `${m} min ${Math.round(s % 60)} s` : `${s.toFixed(1)} s`;
}

/**
 * One row per run: objective, steps logged, the last training and evaluation losses, tokens and time.
 *
 * @example
 * ```ts
 * runSummaryTable(runs).rows[0]; // ["orpo-tiny", "orpo", "8", "7.1234", "7.2001", "4,512", "9.3 s"]
 * ```
 */
export function runSummaryTable(runs: readonly TrainingRun[]): TextTable {
  const rows = runs.map((run) => {
    const last = run.train.at(-1);
    const lastEval = run.eval.at(-1);
    // num_tokens counts every token so far (TRL); older runs logged each step's `tokens`.
    const tokens = last?.num_tokens ?? run.train.reduce((sum, r) => sum + (r.tokens ?? 0), 0);
    return [
      run.name,
      formatSetting(run.config?.objective),
      last ? String(last.step) : "–",
      last?.loss !== undefined ? last.loss.toFixed(4) : "–",
      lastEval?.eval_loss !== undefined ? lastEval.eval_loss.toFixed(4) : "–",
      tokens > 0 ? tokens.toLocaleString("en-US") : "–",
      formatSeconds(run.summary?.train_runtime ?? last?.elapsed_s),
    ];
  });
  return { header: ["Run", "Objective", "Steps", "Last loss", "Last eval loss", "Tokens", "Time"], rows };
}

/**
 * A text table as escaped HTML; columns from `numericFrom` on are right-aligned.
 *
 * @example
 * ```ts
 * textTableHtml(kobestTable(entries), 1);
 * ```
 */
export function textTableHtml(
  table: TextTable,
  numericFrom: number,
  options: { className?: string; rowClasses?: readonly string[] } = {},
): string {
  return htmlTable(table.header.map(escapeHtml), table.rows.map((r) => r.map(escapeHtml)), {
    numericFrom,
    ...options,
  });
}
