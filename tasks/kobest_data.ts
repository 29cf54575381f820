#!/usr/bin/env -S deno run --no-prompt --allow-read --allow-write
/**
 * Writes KoBEST-derived training data: `sft.jsonl` (prompt, completion) and `preference.jsonl` (prompt,
 * chosen, rejected) from one split of the chosen tasks. Each file is written to a temporary name and
 * renamed, so a reader never sees half a file.
 *
 * @module
 */
import {
  KOBEST_SPLITS,
  KOBEST_TASKS,
  kobestDataHelp,
  type KobestSplit,
  type KobestTask,
  parseKobestTasks,
} from "../eval/kobest/data.ts";
import { writeKobestTrainingData } from "../eval/kobest/training.ts";
import { deniedPermissionLine, runTask } from "../io/cli.ts";
import { parseSettings, settingsHelp, type SettingsTable, withTableDefaults } from "../io/settings.ts";

/** The task's flags: one definition each of name, default, range and help. */
const SETTINGS = {
  dataDir: {
    name: "data_dir",
    kind: "string",
    metavar: "DIR",
    help: "KoBEST folder: Hub layout (boolq/train.jsonl, ...) or v1.0 TSV layout (BoolQ/train.tsv, ...)",
  },
  out: {
    name: "output_dir",
    aliases: ["out"],
    kind: "string",
    metavar: "DIR",
    help: "output folder (created if missing)",
  },
  tasks: {
    name: "tasks",
    kind: "string",
    metavar: "LIST",
    parse: parseKobestTasks,
    defaultHelp: KOBEST_TASKS.join(","),
    help: "comma-separated tasks, in lm-eval's names too (kobest_boolq, …; kobest for all five)",
  },
  split: { name: "split", kind: "string", choices: KOBEST_SPLITS, default: "train", help: "the split read" },
  limit: { name: "limit", kind: "int", range: { min: 1 }, help: "first N documents of each task" },
} satisfies SettingsTable;

const HELP = settingsHelp(SETTINGS, {
  usage: "Usage: deno task kobest-data --data_dir DIR --output_dir DIR [options]",
  intro: "Builds training data from KoBEST documents: the 0-shot context as prompt, the gold answer as " +
    "completion (sft.jsonl) and the gold answer chosen over a wrong one (preference.jsonl).",
});

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

function parseCli(argv: string[]): Args | undefined {
  const parsed = parseSettings(SETTINGS, argv);
  if (parsed.help) return undefined;
  const values = withTableDefaults(SETTINGS, parsed.values);
  const tasks = values.tasks ?? [...KOBEST_TASKS];
  const split = values.split as KobestSplit;
  if (values.dataDir === undefined) {
    fail(`--data_dir is required.\n${kobestDataHelp(tasks, [split])}`);
  }
  if (values.out === undefined) {
    fail("--output_dir is required (the folder to write sft.jsonl and preference.jsonl to)");
  }
  return { dataDir: values.dataDir, out: values.out, tasks, split, limit: values.limit };
}

async function main(): Promise<void> {
  let args: Args | undefined;
  try {
    args = parseCli(Deno.args);
  } catch (e) {
    fail(`${(e as Error).message} (--help lists the flags)`);
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
