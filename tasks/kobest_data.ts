#!/usr/bin/env -S deno run --no-prompt --allow-read --allow-write
/**
 * Writes KoBEST-derived training data: `sft.jsonl` (prompt, completion) and `preference.jsonl` (prompt,
 * chosen, rejected) from one split of the chosen tasks. Each file is written to a temporary name and
 * renamed, so a reader never sees half a file.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  KOBEST_SPLITS,
  KOBEST_TASKS,
  kobestDataHelp,
  type KobestSplit,
  type KobestTask,
} from "../eval/kobest/data.ts";
import { writeKobestTrainingData } from "../eval/kobest/training.ts";
import { deniedPermissionLine, runTask } from "../io/cli.ts";

const HELP = `Usage: deno task kobest-data --data-dir DIR --out DIR [options]

Builds training data from KoBEST documents: the 0-shot context as prompt, the gold answer as completion
(sft.jsonl) and the gold answer chosen over a wrong one (preference.jsonl).

Options:
  --data-dir DIR   KoBEST folder: Hub layout (boolq/train.jsonl, ...) or v1.0 TSV layout (BoolQ/train.tsv, ...)
  --out DIR        output folder (created if missing)
  --tasks LIST     comma-separated tasks (default: ${KOBEST_TASKS.join(",")})
  --split NAME     ${KOBEST_SPLITS.join(" | ")} (default: train)
  --limit N        first N documents of each task
  -h, --help       this text`;

/** Parsed command line. */
interface Args {
  dataDir: string;
  out: string;
  tasks: KobestTask[];
  split: KobestSplit;
  limit?: number;
}

function fail(message: string): never {
  console.error(`kobest_data: ${message}`);
  Deno.exit(2);
}

function parseTasks(value: string | undefined): KobestTask[] {
  if (value === undefined) return [...KOBEST_TASKS];
  const names = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const bad = names.filter((n) => !(KOBEST_TASKS as readonly string[]).includes(n));
  if (bad.length > 0 || names.length === 0) {
    fail(
      `--tasks: unknown task(s) ${bad.join(", ") || "(none given)"}; expected some of ${
        KOBEST_TASKS.join(", ")
      }`,
    );
  }
  return names as KobestTask[];
}

function parseCli(argv: string[]): Args | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      "data-dir": { type: "string" },
      out: { type: "string" },
      tasks: { type: "string" },
      split: { type: "string", default: "train" },
      limit: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const tasks = parseTasks(values.tasks);
  const split = values.split as string;
  if (!(KOBEST_SPLITS as readonly string[]).includes(split)) {
    fail(`--split: expected one of ${KOBEST_SPLITS.join(", ")}, got ${JSON.stringify(split)}`);
  }
  if (values["data-dir"] === undefined) {
    fail(`--data-dir is required.\n${kobestDataHelp(tasks, [split as KobestSplit])}`);
  }
  if (values.out === undefined) {
    fail("--out is required (the folder to write sft.jsonl and preference.jsonl to)");
  }
  let limit: number | undefined;
  if (values.limit !== undefined) {
    limit = Number(values.limit);
    if (!(Number.isInteger(limit) && limit > 0)) {
      fail(`--limit: expected a positive integer, got ${values.limit}`);
    }
  }
  return { dataDir: values["data-dir"], out: values.out, tasks, split: split as KobestSplit, limit };
}

async function main(): Promise<void> {
  let args: Args | undefined;
  try {
    args = parseCli(Deno.args);
  } catch (e) {
    fail(`${(e as Error).message}\n\n${HELP}`);
  }
  if (!args) {
    console.log(HELP);
    return;
  }
  const counts = await writeKobestTrainingData({
    dataDir: args.dataDir,
    outDir: args.out,
    tasks: args.tasks,
    split: args.split,
    limit: args.limit,
  });
  for (const [task, n] of Object.entries(counts)) console.log(`${task}: ${n} documents from ${args.split}`);
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  console.log(`wrote ${total} rows each to ${args.out}/sft.jsonl and ${args.out}/preference.jsonl`);
}

if (import.meta.main) {
  await runTask("kobest_data", async () => {
    try {
      await main();
    } catch (e) {
      const denied = deniedPermissionLine("kobest_data", e);
      if (denied === undefined) fail((e as Error).message);
      console.error(denied);
      Deno.exit(2);
    }
  });
}
