/**
 * The command line shared by `deno task sft|dpo|orpo`: TRL's flags (config.ts's SETTINGS and LORA_SETTINGS,
 * read by io/settings.ts: snake_case or kebab-case, `--config FILE`), the generated help, and the embedded
 * default run used when neither `--model_name_or_path` nor `--dataset_name` is given.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import type { ObjectiveKind } from "../kernels/objective.ts";
import { BUNDLED_DATA, ensureTinyBase } from "../model/tiny.ts";
import { parseByteSize } from "../io/bytes.ts";
import { parseSettings, settingsHelp, type SettingsTable, type SettingValues } from "../io/settings.ts";
import { reportHint } from "./report_hint.ts";
import {
  LORA_SETTINGS,
  TRAIN_GROUPS,
  type TrainConfig,
  trainSettings,
  validateConfig,
  withDefaults,
} from "./config.ts";
import { RUN_FILES } from "./checkpoint.ts";
import { dryRun, type DryRunOptions } from "./dry_run.ts";
import { OBJECTIVES } from "./objectives.ts";
import { parseLoraTargets } from "./lora.ts";
import { train, type TrainResult } from "./trainer.ts";

const bytes = (text: string, where: string) => parseByteSize(text, where);

/** Flags of a dry run: plan the memory instead of training (train/dry_run.ts); not training settings. */
export const DRY_RUN_SETTINGS = {
  dryRun: {
    name: "dry_run",
    kind: "bool",
    default: false,
    group: "memory",
    help:
      "read the model's config only (a folder, or config.json from the Hub), print the GPU memory plan part " +
      "by part against the adapter's limits, say whether it fits (exit 1 if not), and train nothing",
  },
  gpuMemory: {
    name: "gpu_memory",
    kind: "string",
    metavar: "SIZE",
    parse: bytes,
    group: "memory",
    help: "with --dry_run: the adapter's memory, e.g. 80GB (WebGPU does not report it)",
  },
  maxBinding: {
    name: "max_binding",
    kind: "string",
    metavar: "SIZE",
    parse: bytes,
    group: "memory",
    help: "with --dry_run: plan for another adapter's binding limit (e.g. 2GiB for an H100)",
  },
} satisfies SettingsTable;

/** The LoRA settings under the keys the command line reads them by. */
const LORA_FLAGS = {
  loraR: LORA_SETTINGS.r,
  loraAlpha: LORA_SETTINGS.alpha,
  loraDropout: LORA_SETTINGS.dropout,
  loraTargets: LORA_SETTINGS.targets,
  loraRslora: LORA_SETTINGS.rslora,
};

/**
 * Every flag a training task of `objective` accepts, by key: its settings, LoRA's and the dry run's.
 * @example
 * ```ts
 * trainTable("dpo").lossType.name; // "loss_type"
 * ```
 */
export function trainTable(objective: ObjectiveKind) {
  return { ...trainSettings(objective), ...LORA_FLAGS, ...DRY_RUN_SETTINGS };
}

/** What the training tasks' defaults leave as TRL has them, and where (and why) they differ. */
const DIFFERENCES = `Defaults are TRL's (SFTConfig, DPOConfig, ORPOConfig and ModelConfig) except:
  --lora_dropout 0            TRL: 0.05; the toolkit has no dropout on the adapters' path, so other values are
                              refused rather than ignored
  --pad_to_multiple_of 8      TRL: none (pad to the longest row); a multiple keeps the number of GPU programs
                              small
  --output_dir                required with --model_name_or_path (TRL: trainer_output)
  --eval_strategy             steps, not no, when --eval_data or --eval_fraction asks for evaluation`;

/** Help text of one objective's task. */
export function trainUsage(objective: ObjectiveKind): string {
  const { title, data: rows } = OBJECTIVES[objective];
  const e = embeddedDefault(objective);
  const data = rows === "sft"
    ? "rows with `text`, `prompt`/`completion` or `messages`"
    : "rows with `prompt`/`chosen`/`rejected` (text or chat lists)";
  const pinned = Object.entries(e).filter(([k]) => !["model", "data", "out"].includes(k))
    .map(([k, v]) => `--${(trainSettings(objective) as Record<string, { name: string }>)[k].name} ${v}`);
  return settingsHelp(trainTable(objective), {
    usage: `deno task ${objective} [flags]  — ${title} on WebGPU, with TRL's arguments`,
    intro:
      `Trains on ${data} from files or a Hub dataset, and leaves --output_dir as the Hugging Face Trainer does:
the model (or PEFT adapter) at its root, ${RUN_FILES.checkpoint}N/, ${RUN_FILES.state} (log_history), ${RUN_FILES.args}
(these settings by TRL's names) and ${RUN_FILES.metrics} (the log, line by line as it is written).

With neither --model_name_or_path nor --dataset_name it trains the embedded default: a tiny Korean Llama (built
on first use in ${e.model}) on the bundled data, into ${e.out}, with its own settings: ${pinned.join(" ")}.
Other flags still apply.`,
    groups: TRAIN_GROUPS,
    footer: DIFFERENCES,
  });
}

/** Settings of the embedded default run of each objective (small model, bundled data, about two minutes). */
export function embeddedDefault(
  objective: ObjectiveKind,
): Partial<TrainConfig> & { model: string; data: string[]; out: string } {
  return {
    model: "runs/tiny-base",
    data: [fileURLToPath(objective === "sft" ? BUNDLED_DATA.sft : BUNDLED_DATA.preference)],
    out: `runs/${objective}-tiny`,
    evalFraction: 0.1,
    maxLength: 128,
    batchSize: 8,
    epochs: 3,
    lr: objective === "dpo" ? 5e-4 : 3e-3,
    schedule: "cosine",
    warmupRatio: 0.05,
    weightDecay: 0.01,
    // Every step logged (a curve worth looking at), and no recomputation: the tiny model needs no memory saving.
    logEvery: 1,
    evalEvery: 10,
    saveEvery: 20,
    saveTotalLimit: 2,
    gradientCheckpointing: false,
  };
}

type TrainValues = SettingValues<ReturnType<typeof trainTable>>;

/** The `lora` setting: `--use_peft` turns LoRA on; its other flags without it are a mistake TRL would ignore. */
function loraFromFlags(
  values: TrainValues,
  sources: Record<string, string | undefined>,
): TrainConfig["lora"] {
  const given = (Object.keys(LORA_FLAGS) as (keyof typeof LORA_FLAGS)[]).filter((k) =>
    values[k] !== undefined
  );
  if (!values.lora) {
    if (given.length > 0) {
      throw new Error(
        `${
          sources[given[0]]
        } needs --use_peft (without it TRL ignores the LoRA settings and trains every weight)`,
      );
    }
    return undefined;
  }
  const names = (values.loraTargets ?? LORA_SETTINGS.targets.default).flatMap((t) => t.split(","));
  let targets;
  try {
    targets = parseLoraTargets(names.join(","));
  } catch (e) {
    throw new Error(`${sources.loraTargets ?? "--lora_target_modules"}: ${(e as Error).message}`);
  }
  return {
    r: values.loraR ?? LORA_SETTINGS.r.default,
    alpha: values.loraAlpha ?? LORA_SETTINGS.alpha.default,
    targets,
    rslora: values.loraRslora ?? false,
  };
}

/**
 * Parses a task's arguments into a run configuration; `undefined` means help was asked for.
 * @example
 * ```ts
 * const cfg = parseTrainArgs("orpo", ["--model_name_or_path", "m", "--dataset_name", "d.jsonl", "--output_dir", "runs/x"]);
 * ```
 */
export function parseTrainArgs(
  objective: ObjectiveKind,
  args: string[],
): { config: TrainConfig; embedded: boolean; dryRun?: DryRunOptions } | undefined {
  const table = trainTable(objective);
  const parsed = parseSettings(table, args);
  if (parsed.help) return undefined;
  const values = parsed.values;
  const sources = parsed.sources as Record<string, string | undefined>;
  const embedded = values.model === undefined && values.data === undefined;
  if (!embedded && (values.model === undefined || values.data === undefined || values.out === undefined)) {
    throw new Error(
      "--model_name_or_path, --dataset_name and --output_dir go together (or give none of the first two for " +
        "the embedded default run)",
    );
  }
  const p: Record<string, unknown> = embedded ? { ...embeddedDefault(objective) } : {};
  const skip = new Set([...Object.keys(LORA_FLAGS), ...Object.keys(DRY_RUN_SETTINGS), "lora"]);
  for (const [key, v] of Object.entries(values)) if (!skip.has(key) && v !== undefined) p[key] = v;
  const lora = loraFromFlags(values, sources);
  if (lora) p.lora = lora;
  // The embedded default run owns runs/<objective>-tiny: running it again replaces it, unless resuming.
  if (embedded && values.out === undefined && !values.resume) p.overwriteOutputDir = true;
  if (!values.dryRun && (values.gpuMemory !== undefined || values.maxBinding !== undefined)) {
    throw new Error("--gpu_memory and --max_binding go with --dry_run");
  }
  const dry = values.dryRun
    ? { memoryBytes: values.gpuMemory, maxBindingBytes: values.maxBinding, tinyIfMissing: embedded }
    : undefined;
  const config = withDefaults(
    objective,
    p as Partial<TrainConfig> & { model: string; data: string[]; out: string },
  );
  validateConfig(config);
  return { config, embedded, ...(dry ? { dryRun: dry } : {}) };
}

/**
 * The whole of `tasks/sft.ts`, `tasks/dpo.ts` and `tasks/orpo.ts`: parse, build the tiny base when the
 * embedded default runs, train, report. Returns the process exit code.
 */
export async function runTrainingTask(objective: ObjectiveKind, args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseTrainArgs(objective, args);
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n(deno task ${objective} --help lists the flags)`);
    return 2;
  }
  if (!parsed) {
    console.log(trainUsage(objective));
    return 0;
  }
  const { config, embedded } = parsed;
  if (parsed.dryRun) {
    try {
      const { lines, fits } = await dryRun(config, parsed.dryRun);
      console.log(lines.join("\n"));
      return fits ? 0 : 1;
    } catch (e) {
      console.error(`error: ${(e as Error).message}`);
      return 1;
    }
  }
  if (embedded && await ensureTinyBase(config.model)) {
    console.error(`[${objective}] built the tiny base model in ${config.model}`);
  }
  let result: TrainResult;
  try {
    result = await train(config);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return 1;
  }
  const change = result.firstLoss !== undefined && result.lastLoss !== undefined
    ? ` (loss ${result.firstLoss.toFixed(4)} → ${result.lastLoss.toFixed(4)})`
    : "";
  console.log(`${objective}: ${result.steps}/${result.totalSteps} steps${change}`);
  console.log(`model: ${result.finalDir}${result.mergedDir ? `\nmerged: ${result.mergedDir}` : ""}`);
  console.log(`metrics: ${result.metricsFile}`);
  console.log(reportHint(config.out));
  return 0;
}
