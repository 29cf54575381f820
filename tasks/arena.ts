#!/usr/bin/env -S deno run --no-prompt --allow-net --allow-read --allow-write --allow-env=OPENAI_API_KEY,KOTRANSFER_*
/**
 * `deno task arena --pair A=SRC,B=SRC --prompts FILE --judge_name NAME [--out DIR]`: a page where a person
 * judges two models' answers side by side, votes landing in the win rates' results JSONL as `human:NAME`
 * (see `serve/arena_cli.ts`, `serve/arena.ts` and `eval/winrate/human.ts`). Ctrl+C (or `--no_serve`) prints
 * Table 1 from the votes and the agreement with the other judges of the same file.
 * @module
 */
import { deniedPermissionLine, runTask } from "../io/cli.ts";
import { arenaConfigFromArgs, arenaUsage, runArena } from "../serve/arena_cli.ts";

async function main(): Promise<number> {
  try {
    const config = arenaConfigFromArgs(Deno.args, (name) => Deno.env.get(name));
    if (config === "help") console.log(arenaUsage());
    else await runArena(config);
    return 0;
  } catch (e) {
    console.error(deniedPermissionLine("arena", e) ?? `arena: ${e instanceof Error ? e.message : e}`);
    return 2;
  }
}

if (import.meta.main) Deno.exit(await runTask("arena", main));
