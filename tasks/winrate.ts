#!/usr/bin/env -S deno run --no-prompt --allow-net --allow-read --allow-write --allow-env=OPENAI_API_KEY,KOTRANSFER_*
/**
 * `deno task winrate --prompts FILE --pair a=A.jsonl,b=B.jsonl --judge_url URL --judge_model M`:
 * pairwise win rates with an LLM judge (see `eval/winrate/run.ts`; the flags are in `eval/winrate/cli.ts`).
 * Prints the Markdown table.
 * @module
 */
import { winRateConfigFromArgs, winRateUsage } from "../eval/winrate/cli.ts";
import { runWinRate } from "../eval/winrate/run.ts";
import { deniedPermissionLine, runTask } from "../io/cli.ts";

async function main(): Promise<number> {
  try {
    const config = winRateConfigFromArgs(Deno.args, (name) => Deno.env.get(name));
    if (config === "help") {
      console.log(winRateUsage());
    } else {
      const report = await runWinRate(config);
      console.log(report.table);
      console.error(`${report.judgeCalls} judge call(s), ${report.answerCalls} answer call(s) this run`);
      // Judgments without a verdict are retried by the next run; until then the rates are incomplete.
      if (report.noVerdict > 0) return 1;
    }
    return 0;
  } catch (e) {
    console.error(deniedPermissionLine("winrate", e) ?? `winrate: ${e instanceof Error ? e.message : e}`);
    return 2;
  }
}

if (import.meta.main) Deno.exit(await runTask("winrate", main));
