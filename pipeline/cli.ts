/**
 * The command line of `deno task reproduce`: a preset, then flags that override its values, the help text
 * (with each preset's GPU needs), and the final printout of both tables and the report's path.
 *
 * @module
 */
import {
  HTTP_URL,
  parseSettings,
  settingsHelp,
  type SettingsTable,
  type SettingValues,
  wrapText,
} from "../io/settings.ts";
import { parseShots } from "../eval/kobest/cli.ts";
import { DRY_RUN_SETTINGS } from "../train/cli.ts";
import { LORA_SETTINGS, SETTINGS } from "../train/config.ts";
import { parseLoraTargets } from "../train/lora.ts";
import { reproduce, type ReproduceResult } from "./reproduce.ts";
import {
  PRESETS,
  presetSettings,
  type ReproduceSettings,
  stageTrainConfig,
  trainedObjectives,
  type TrainingSettings,
  validateSettings,
} from "./settings.ts";
import { Gpu } from "../gpu/runtime.ts";
import { dryRun, type DryRunOptions, readModelConfig } from "../train/dry_run.ts";
import { formatBytes } from "../io/bytes.ts";
import { llamaParamSpecs, numel } from "../io/llama_architecture.ts";

const WHERE = "where things go";
const INPUTS = "inputs (override the preset)";
const EVALUATION = "evaluation";
const JUDGE = "judge (Table 1)";
const TRAINING = "training (every objective; each default is the preset's)";

/** A training setting of the training tasks, for every objective of the pipeline: the preset's default. */
function fromTraining<S extends { name: string; help: string }>(s: S, help = s.help, defaultHelp?: string) {
  return { ...s, default: undefined, defaultHelp, group: TRAINING, help };
}

/**
 * Every flag of `deno task reproduce`, by key: the pipeline's own, and the training tasks' settings (their
 * one definition in train/config.ts) where they apply to every objective.
 * @example
 * ```ts
 * REPRODUCE_SETTINGS.maxSteps.name; // "max_steps"
 * ```
 */
export const REPRODUCE_SETTINGS = {
  preset: {
    name: "preset",
    kind: "string",
    metavar: "NAME",
    choices: Object.keys(PRESETS),
    defaultHelp: "full when --model_name_or_path is given, else tiny",
    group: WHERE,
    help: "the starting point (see presets above)",
  },
  out: {
    name: "output_dir",
    aliases: ["out"],
    kind: "string",
    metavar: "DIR",
    defaultHelp: "runs/repro-<preset>",
    group: WHERE,
    help:
      "run folder: data/, sft/, orpo/, dpo/ (training run folders, the model at each one's root), kobest/ " +
      "(results JSON per model, table2.md), winrate/ (answers, judgments, table1.md), report.html, pipeline.json",
  },
  model: { ...SETTINGS.model, group: INPUTS },
  sftData: {
    name: "sft_data",
    kind: "list",
    metavar: "FILE",
    group: INPUTS,
    help: "SFT data (default: KoBEST train splits → prompt/completion rows)",
  },
  prefData: {
    name: "pref_data",
    kind: "list",
    metavar: "FILE",
    group: INPUTS,
    help: "preference data for ORPO and DPO (default: KoBEST-derived pairs)",
  },
  trainDocs: {
    name: "train_docs",
    kind: "int",
    range: { min: 1 },
    group: INPUTS,
    help: "documents per task taken from the KoBEST train splits for the derived sets",
  },
  kobestDir: {
    name: "kobest_dir",
    kind: "string",
    metavar: "DIR",
    group: INPUTS,
    help: "KoBEST in the v1.0 TSV or Hub jsonl layout (default: downloaded from the Hub)",
  },
  prompts: {
    name: "prompts",
    kind: "string",
    metavar: "FILE",
    group: INPUTS,
    help: "Korean prompts for the win rates (default: data/ko_user_oriented_instructions.jsonl)",
  },
  chatTemplate: {
    name: "chat_template_path",
    aliases: ["chat_template"],
    kind: "string",
    metavar: "FILE",
    group: INPUTS,
    help: "Jinja chat template for models without one (else a plain 질문/답변 layout)",
  },
  kobestLimit: {
    name: "kobest_limit",
    kind: "int",
    range: { min: 1 },
    group: EVALUATION,
    help: "first N test documents per task",
  },
  shots: {
    name: "shots",
    kind: "string",
    metavar: "LIST",
    parse: parseShots,
    group: EVALUATION,
    help: "KoBEST shot settings, e.g. 0,5",
  },
  kobestBatchSize: {
    name: "kobest_batch_size",
    kind: "int",
    range: { min: 1 },
    group: EVALUATION,
    help: "sequences per forward pass",
  },
  kobestMaxLength: {
    name: "kobest_max_length",
    kind: "int",
    range: { min: 1 },
    group: EVALUATION,
    help: "longest KoBEST input in tokens",
  },
  promptsLimit: {
    name: "prompts_limit",
    kind: "int",
    range: { min: 1 },
    group: EVALUATION,
    help: "first N prompts",
  },
  answerMaxTokens: {
    name: "answer_max_tokens",
    kind: "int",
    range: { min: 1 },
    group: EVALUATION,
    help: "longest greedy answer, in tokens",
  },
  answerContext: {
    name: "answer_context",
    kind: "int",
    range: { min: 1 },
    group: EVALUATION,
    help: "prompt + answer tokens the generator allocates (a multiple of 64)",
  },
  judgeUrl: {
    name: "judge_url",
    kind: "string",
    metavar: "URL",
    group: JUDGE,
    help: "an OpenAI-compatible endpoint (…/v1); without it only the tiny preset has a judge (the rule " +
      "judge, a heuristic); other presets skip Table 1 and say so",
    check: HTTP_URL,
  },
  judgeModel: {
    name: "judge_model",
    kind: "string",
    metavar: "NAME",
    group: JUDGE,
    help: "the judge's model name",
  },
  judgeKeyEnv: {
    name: "judge_key_env",
    kind: "string",
    metavar: "VAR",
    group: JUDGE,
    help: "environment variable holding the judge's API key (the task may read OPENAI_API_KEY and " +
      "KOTRANSFER_*; for another VAR add --allow-env=VAR to its flags)",
  },
  dpo: {
    name: "dpo",
    kind: "bool",
    default: false,
    group: TRAINING,
    help: "also train DPO from the SFT model on the preference set (joins both tables)",
  },
  maxSteps: fromTraining(SETTINGS.maxSteps),
  epochs: fromTraining(SETTINGS.epochs),
  batchSize: fromTraining(SETTINGS.batchSize),
  gradAccum: fromTraining(SETTINGS.gradAccum),
  maxLength: fromTraining(SETTINGS.maxLength),
  seed: fromTraining(SETTINGS.seed),
  sftLr: {
    name: "sft_lr",
    kind: "float",
    metavar: "X",
    range: { min: 0 },
    group: TRAINING,
    help: "SFT's learning rate",
  },
  orpoLr: {
    name: "orpo_lr",
    kind: "float",
    metavar: "X",
    range: { min: 0 },
    group: TRAINING,
    help: "ORPO's learning rate",
  },
  dpoLr: {
    name: "dpo_lr",
    kind: "float",
    metavar: "X",
    range: { min: 0 },
    group: TRAINING,
    help: "DPO's learning rate",
  },
  loraR: fromTraining(LORA_SETTINGS.r, "LoRA rank: LoRA on all linear layers, merged for evaluation"),
  loraAlpha: fromTraining(LORA_SETTINGS.alpha, "LoRA alpha (with --lora_r)", "2 × r"),
  f16Base: fromTraining(SETTINGS.f16Base, "with --lora_r: hold the frozen base's linear weights in f16"),
  gradientCheckpointing: fromTraining(SETTINGS.gradientCheckpointing),
  ...DRY_RUN_SETTINGS,
} satisfies SettingsTable;

function presetHelp(): string {
  const pad = " ".repeat(21);
  return Object.values(PRESETS).map((p) =>
    `  ${p.name.padEnd(19)}${wrapText(p.summary, 21)}\n${pad}${wrapText(`needs: ${p.needs}`, 21)}${
      p.settings.model ? `\n${pad}model: ${p.settings.model}` : ""
    }`
  ).join("\n");
}

/**
 * The help text of `deno task reproduce`.
 * @example
 * ```ts
 * console.log(reproduceUsage());
 * ```
 */
export function reproduceUsage(): string {
  return settingsHelp(REPRODUCE_SETTINGS, {
    usage:
      "deno task reproduce [--preset NAME] [--model_name_or_path DIR|ORG/NAME] [--output_dir DIR] [flags]",
    intro:
      `Reruns the study's pipeline on a base model (PT): trains SFT and ORPO (and DPO with --dpo) on Korean data,
scores PT, SFT and ORPO on KoBEST at 0 and 5 shots (Table 2), compares SFT vs PT and SFT vs ORPO pairwise on
Korean prompts (Table 1), and writes an HTML report. Every stage is resumable: a rerun skips the stages
whose outputs are complete; pipeline.json in --output_dir records each stage's status, settings and outputs.

presets
${presetHelp()}`,
    groups: [WHERE, INPUTS, EVALUATION, JUDGE, TRAINING, "memory"],
  });
}

type Values = SettingValues<typeof REPRODUCE_SETTINGS>;

/** Training flags that apply to every objective. */
function sharedTraining(values: Values): TrainingSettings {
  const t: TrainingSettings = {};
  for (
    const key of ["maxSteps", "batchSize", "gradAccum", "maxLength", "seed", "gradientCheckpointing"] as const
  ) {
    if (values[key] !== undefined) (t as Record<string, unknown>)[key] = values[key];
  }
  if (values.epochs !== undefined) {
    Object.assign(t, { epochs: values.epochs, maxSteps: values.maxSteps ?? -1 });
  }
  const r = values.loraR;
  if (r !== undefined) {
    t.lora = { r, alpha: values.loraAlpha ?? 2 * r, targets: parseLoraTargets("all-linear"), rslora: false };
    t.merge = true;
  } else if (values.loraAlpha !== undefined || values.f16Base) {
    throw new Error(`${values.f16Base ? "--f16_base" : "--lora_alpha"} needs --lora_r`);
  }
  if (values.f16Base) t.f16Base = true;
  return t;
}

function judgeOf(values: Values, s: ReproduceSettings): ReproduceSettings["judge"] {
  const url = values.judgeUrl, model = values.judgeModel, keyEnv = values.judgeKeyEnv;
  if (url === undefined) {
    if (model !== undefined || keyEnv !== undefined) {
      throw new Error("--judge_model and --judge_key_env need --judge_url");
    }
    return s.judge;
  }
  if (!model) throw new Error("--judge_url needs --judge_model (the judge's model name)");
  return { kind: "llm", url, model, ...(keyEnv ? { keyEnv } : {}) };
}

/**
 * Settings from the command line: the preset's values, then every flag given. `undefined` means --help.
 *
 * @example
 * ```ts
 * const s = parseReproduceArgs(["--preset", "tiny", "--max_steps", "5"]);
 * s?.train.sft.maxSteps; // 5
 * ```
 */
export function parseReproduceArgs(args: string[]): ReproduceSettings | undefined {
  return parseReproduceCommand(args)?.settings;
}

/** The settings and, with `--dry_run`, what the plan is for. `undefined` means --help. */
function parseReproduceCommand(
  args: string[],
): { settings: ReproduceSettings; dryRun?: DryRunOptions } | undefined {
  const { values, help } = parseSettings(REPRODUCE_SETTINGS, args);
  if (help) return undefined;
  const preset = values.preset ?? (values.model === undefined ? "tiny" : "full");
  const s = presetSettings(preset, values.out ?? `runs/repro-${preset}`);
  if (values.model !== undefined) Object.assign(s, { model: values.model, buildTinyBase: false });
  if (values.sftData) s.sftData = values.sftData;
  if (values.prefData) s.prefData = values.prefData;
  const take = [
    "trainDocs",
    "kobestDir",
    "kobestLimit",
    "kobestBatchSize",
    "kobestMaxLength",
    "shots",
    "prompts",
    "promptsLimit",
    "answerMaxTokens",
    "answerContext",
    "chatTemplate",
  ] as const;
  for (const key of take) {
    if (values[key] !== undefined) (s as unknown as Record<string, unknown>)[key] = values[key];
  }
  if (values.dpo) s.dpo = true;
  s.judge = judgeOf(values, s);
  const shared = sharedTraining(values);
  for (const objective of ["sft", "orpo", "dpo"] as const) {
    const lr = values[`${objective}Lr`];
    s.train[objective] = { ...s.train[objective], ...shared, ...(lr !== undefined ? { lr } : {}) };
  }
  validateSettings(s);
  if (!values.dryRun) {
    if (values.gpuMemory !== undefined || values.maxBinding !== undefined) {
      throw new Error("--gpu_memory and --max_binding go with --dry_run");
    }
    return { settings: s };
  }
  const dryRun = { memoryBytes: values.gpuMemory, maxBindingBytes: values.maxBinding };
  return { settings: s, dryRun: { ...dryRun, tinyIfMissing: s.buildTinyBase } };
}

/**
 * `--dry-run`: the memory plan of every training stage (SFT, ORPO, and DPO with --dpo) from the base
 * model's config alone; nothing runs. Returns the lines to print and whether every stage fits.
 *
 * @example
 * ```ts
 * const { lines, fits } = await reproduceDryRun(presetSettings("llama-3.1-8b-lora", "runs/l8"), { memoryBytes: 80e9 });
 * ```
 */
export async function reproduceDryRun(
  s: ReproduceSettings,
  opts: DryRunOptions,
): Promise<{ lines: string[]; fits: boolean }> {
  const gpu = opts.gpu ?? await Gpu.create();
  try {
    const lines: string[] = [];
    let fits = true;
    for (const objective of trainedObjectives(s)) {
      const stage = await dryRun(stageTrainConfig(s, objective, ["-"]), { ...opts, gpu });
      lines.push(...stage.lines);
      fits &&= stage.fits;
    }
    const config = await readModelConfig(s.model, opts);
    const f32Weights = llamaParamSpecs(config).reduce((sum, p) => sum + 4 * numel(p.shape), 0);
    lines.push(
      `[evaluation] KoBEST and the answers load each model in f32: ${formatBytes(f32Weights)} of weights ` +
        `plus inference activations (not planned)`,
    );
    return { lines, fits };
  } finally {
    if (!opts.gpu) gpu.destroy();
  }
}

/**
 * The closing printout: both tables (or why Table 1 is missing), the report, and what ran.
 *
 * @example
 * ```ts
 * console.log(formatResult(await reproduce(settings)));
 * ```
 */
export function formatResult(r: ReproduceResult): string {
  const ran = r.outcomes.filter((o) => o.action === "ran").map((o) => o.name);
  return [
    r.table1 ?? `# Table 1 — not produced\n\n${r.table1Skipped}.\n`,
    r.table2,
    `report: ${r.report}`,
    `pipeline: ${r.manifest}`,
    ran.length === 0
      ? `every stage was complete; nothing ran (${r.seconds.toFixed(1)} s)`
      : `ran ${ran.length} of ${r.outcomes.length} stages in ${r.seconds.toFixed(1)} s: ${ran.join(", ")}`,
  ].join("\n");
}

/**
 * The whole of tasks/reproduce.ts: parse, run, print. Returns the process exit code.
 *
 * @example
 * ```ts
 * Deno.exit(await runReproduceTask(["--preset", "tiny"]));
 * ```
 */
export async function runReproduceTask(args: string[]): Promise<number> {
  let command: ReturnType<typeof parseReproduceCommand>;
  try {
    command = parseReproduceCommand(args);
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n\n${reproduceUsage()}`);
    return 2;
  }
  if (!command) {
    console.log(reproduceUsage());
    return 0;
  }
  const settings = command.settings;
  if (command.dryRun) {
    try {
      const { lines, fits } = await reproduceDryRun(settings, command.dryRun);
      console.log(`preset ${settings.preset}, base ${settings.model}\n${lines.join("\n")}`);
      return fits ? 0 : 1;
    } catch (e) {
      console.error(`error: ${(e as Error).message}`);
      return 1;
    }
  }
  console.error(`[reproduce] preset ${settings.preset}, base ${settings.model}, out ${settings.out}`);
  console.error(`[reproduce] needs: ${settings.needs}`);
  try {
    console.log(formatResult(await reproduce(settings)));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return 1;
  }
  return 0;
}
