/**
 * The command line of `deno task reproduce`: a preset, then flags that override its values, the help text
 * (with each preset's GPU needs), and the final printout of both tables and the report's path.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { numberFlag } from "../train/cli.ts";
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
import { formatBytes, parseByteSize } from "../io/bytes.ts";
import { llamaParamSpecs, numel } from "../io/llama_architecture.ts";

const OPTIONS = {
  help: { type: "boolean", short: "h" },
  preset: { type: "string" },
  model: { type: "string" },
  out: { type: "string" },
  "sft-data": { type: "string", multiple: true },
  "pref-data": { type: "string", multiple: true },
  "train-docs": { type: "string" },
  "kobest-dir": { type: "string" },
  "kobest-limit": { type: "string" },
  "kobest-batch-size": { type: "string" },
  "kobest-max-length": { type: "string" },
  shots: { type: "string" },
  prompts: { type: "string" },
  "prompts-limit": { type: "string" },
  "answer-max-tokens": { type: "string" },
  "answer-context": { type: "string" },
  "chat-template": { type: "string" },
  dpo: { type: "boolean" },
  "judge-url": { type: "string" },
  "judge-model": { type: "string" },
  "judge-key-env": { type: "string" },
  "max-steps": { type: "string" },
  epochs: { type: "string" },
  "batch-size": { type: "string" },
  "grad-accum": { type: "string" },
  "max-length": { type: "string" },
  "sft-lr": { type: "string" },
  "orpo-lr": { type: "string" },
  "dpo-lr": { type: "string" },
  "lora-r": { type: "string" },
  "lora-alpha": { type: "string" },
  "f16-base": { type: "boolean" },
  "gradient-checkpointing": { type: "boolean" },
  seed: { type: "string" },
  "dry-run": { type: "boolean" },
  "gpu-memory": { type: "string" },
  "max-binding": { type: "string" },
} as const;

/** Words of `text` in lines of at most `width` characters, every line but the first indented by `indent`. */
function wrap(text: string, indent: number, width = 110): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && indent + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines.join(`\n${" ".repeat(indent)}`);
}

function presetHelp(): string {
  const pad = " ".repeat(21);
  return Object.values(PRESETS).map((p) =>
    `  ${p.name.padEnd(19)}${wrap(p.summary, 21)}\n${pad}${wrap(`needs: ${p.needs}`, 21)}${
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
  return `deno task reproduce [--preset NAME] [--model DIR|ORG/NAME] [--out runs/NAME] [flags]

Reruns the study's pipeline on a base model (PT): trains SFT and ORPO (and DPO with --dpo) on Korean data,
scores PT, SFT and ORPO on KoBEST at 0 and 5 shots (Table 2), compares SFT vs PT and SFT vs ORPO pairwise on
Korean prompts (Table 1), and writes an HTML report. Every stage is resumable: a rerun skips the stages
whose outputs are complete; pipeline.json in --out records each stage's status, settings and outputs.

presets (default: full when --model is given, else tiny)
${presetHelp()}

where things go
  --out DIR                run folder (default runs/repro-<preset>): data/, sft/, orpo/, dpo/, kobest/
                           (results JSON per model, table2.md), winrate/ (answers, judgments, table1.md),
                           report.html, pipeline.json

inputs (override the preset)
  --model DIR|ORG/NAME     base model: a Hugging Face folder or Hub id (org/name[@revision])
  --sft-data FILE          SFT data (repeatable; default: KoBEST train splits → prompt/completion rows)
  --pref-data FILE         preference data for ORPO and DPO (repeatable; default: KoBEST-derived pairs)
  --train-docs N           documents per task taken from the KoBEST train splits for the derived sets
  --kobest-dir DIR         KoBEST in the v1.0 TSV or Hub jsonl layout (default: downloaded from the Hub)
  --prompts FILE           Korean prompts for the win rates
                           (default: data/ko_user_oriented_instructions.jsonl)
  --chat-template FILE     Jinja chat template for models without one (else a plain 질문/답변 layout)

evaluation
  --kobest-limit N         first N test documents per task      --shots LIST      e.g. 0,5
  --kobest-batch-size N    sequences per forward pass           --kobest-max-length N
  --prompts-limit N        first N prompts                      --answer-max-tokens N (answer length)
  --answer-context N       prompt + answer tokens the generator allocates (a multiple of 64)

judge (Table 1)
  --judge-url URL          an OpenAI-compatible endpoint (…/v1); without it only the tiny preset has a judge
                           (the rule judge, a heuristic); other presets skip Table 1 and say so
  --judge-model NAME       the judge's model name
  --judge-key-env VAR      environment variable holding the judge's API key (the task may read
                           OPENAI_API_KEY and KOTRANSFER_*; for another VAR add --allow-env=VAR to its flags)

training (every objective unless named)
  --dpo                    also train DPO from the SFT model on the preference set (joins both tables)
  --max-steps N | --epochs N, --batch-size N, --grad-accum N, --max-length N, --seed N
  --sft-lr X, --orpo-lr X, --dpo-lr X
  --lora-r N [--lora-alpha X] [--f16-base]   LoRA on all linear layers, merged for evaluation
  --gradient-checkpointing keep only each layer's input, recompute the layer in the backward pass

memory
  --dry-run                plan each training stage's GPU memory from the base model's config alone
                           (config.json from the Hub for a repo id), say whether it fits, run nothing
  --gpu-memory SIZE        the GPU's memory for --dry-run, e.g. 80GB (WebGPU does not report it)
  --max-binding SIZE       plan for another adapter's binding limit, e.g. 2GiB for an H100
`;
}

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>["values"];

function parseShots(text: string): number[] {
  return text.split(",").map((part) => {
    const n = Number(part.trim());
    if (part.trim() === "" || !Number.isSafeInteger(n) || n < 0) {
      throw new Error(
        `--shots: expected comma-separated integers ≥ 0 such as 0,5, got ${JSON.stringify(text)}`,
      );
    }
    return n;
  });
}

/** Training flags that apply to every objective. */
function sharedTraining(values: Values): TrainingSettings {
  const t: TrainingSettings = {};
  const set = <K extends keyof TrainingSettings>(key: K, v: TrainingSettings[K] | undefined) => {
    if (v !== undefined) t[key] = v;
  };
  const maxSteps = numberFlag(values, "max-steps");
  set("maxSteps", maxSteps);
  const epochs = numberFlag(values, "epochs");
  if (epochs !== undefined) Object.assign(t, { epochs, maxSteps: maxSteps ?? 0 });
  set("batchSize", numberFlag(values, "batch-size"));
  set("gradAccum", numberFlag(values, "grad-accum"));
  set("maxLength", numberFlag(values, "max-length"));
  set("seed", numberFlag(values, "seed"));
  const r = numberFlag(values, "lora-r");
  if (r !== undefined) {
    t.lora = {
      r,
      alpha: numberFlag(values, "lora-alpha") ?? 2 * r,
      targets: parseLoraTargets("all-linear"),
      rslora: false,
    };
    t.merge = true;
  } else if (values["lora-alpha"] !== undefined) throw new Error("--lora-alpha needs --lora-r");
  if (values["f16-base"]) t.f16Base = true;
  if (values["gradient-checkpointing"]) t.gradientCheckpointing = true;
  return t;
}

function judgeOf(values: Values, s: ReproduceSettings): ReproduceSettings["judge"] {
  const url = values["judge-url"], model = values["judge-model"], keyEnv = values["judge-key-env"];
  if (url === undefined) {
    if (model !== undefined || keyEnv !== undefined) {
      throw new Error("--judge-model and --judge-key-env need --judge-url");
    }
    return s.judge;
  }
  if (!/^https?:\/\//.test(url)) {
    throw new Error(`--judge-url: expected an http(s):// URL, got ${JSON.stringify(url)}`);
  }
  if (!model) throw new Error("--judge-url needs --judge-model (the judge's model name)");
  return { kind: "llm", url, model, ...(keyEnv ? { keyEnv } : {}) };
}

/**
 * Settings from the command line: the preset's values, then every flag given. `undefined` means --help.
 *
 * @example
 * ```ts
 * const s = parseReproduceArgs(["--preset", "tiny", "--max-steps", "5"]);
 * s?.train.sft.maxSteps; // 5
 * ```
 */
export function parseReproduceArgs(args: string[]): ReproduceSettings | undefined {
  return parseReproduceCommand(args)?.settings;
}

/** The settings and, with `--dry-run`, what the plan is for. `undefined` means --help. */
function parseReproduceCommand(
  args: string[],
): { settings: ReproduceSettings; dryRun?: DryRunOptions } | undefined {
  const { values, positionals } = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  if (values.help) return undefined;
  if (positionals.length) {
    throw new Error(`unexpected argument ${JSON.stringify(positionals[0])}; flags start with --`);
  }
  const preset = values.preset ?? (values.model === undefined ? "tiny" : "full");
  const s = presetSettings(preset, values.out ?? `runs/repro-${preset}`);
  if (values.model !== undefined) Object.assign(s, { model: values.model, buildTinyBase: false });
  if (values["sft-data"]) s.sftData = values["sft-data"];
  if (values["pref-data"]) s.prefData = values["pref-data"];
  s.trainDocs = numberFlag(values, "train-docs") ?? s.trainDocs;
  if (values["kobest-dir"]) s.kobestDir = values["kobest-dir"];
  s.kobestLimit = numberFlag(values, "kobest-limit") ?? s.kobestLimit;
  s.kobestBatchSize = numberFlag(values, "kobest-batch-size") ?? s.kobestBatchSize;
  s.kobestMaxLength = numberFlag(values, "kobest-max-length") ?? s.kobestMaxLength;
  if (values.shots !== undefined) s.shots = parseShots(values.shots);
  if (values.prompts) s.prompts = values.prompts;
  s.promptsLimit = numberFlag(values, "prompts-limit") ?? s.promptsLimit;
  s.answerMaxTokens = numberFlag(values, "answer-max-tokens") ?? s.answerMaxTokens;
  s.answerContext = numberFlag(values, "answer-context") ?? s.answerContext;
  if (values["chat-template"]) s.chatTemplate = values["chat-template"];
  if (values.dpo) s.dpo = true;
  s.judge = judgeOf(values, s);
  const shared = sharedTraining(values);
  for (const objective of ["sft", "orpo", "dpo"] as const) {
    const lr = numberFlag(values, `${objective}-lr`);
    s.train[objective] = { ...s.train[objective], ...shared, ...(lr !== undefined ? { lr } : {}) };
  }
  validateSettings(s);
  const bytes = (flag: "gpu-memory" | "max-binding") =>
    values[flag] === undefined ? undefined : parseByteSize(values[flag]!, `--${flag}`);
  if (!values["dry-run"]) {
    if (values["gpu-memory"] !== undefined || values["max-binding"] !== undefined) {
      throw new Error("--gpu-memory and --max-binding go with --dry-run");
    }
    return { settings: s };
  }
  const dryRun = { memoryBytes: bytes("gpu-memory"), maxBindingBytes: bytes("max-binding") };
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
