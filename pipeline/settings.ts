/**
 * What one reproduction runs: the base model, the training sets and hyper-parameters of each objective, the
 * KoBEST and win-rate settings, the judge — and the named presets that fill them in. Flags of
 * `deno task reproduce` override preset values (pipeline/cli.ts).
 *
 * The paper's exact hyper-parameters are not recorded in this repository. The real-model presets use TRL's
 * documented defaults (SFT lr 2e-5, DPO lr 1e-6 with β 0.1, ORPO lr 1e-6 with λ 0.1 and the NLL over the
 * whole chosen sequence, as TRL computes it), one epoch, an effective batch of 16 sequences or pairs; the
 * LoRA presets use ten times those learning rates (a common rule of thumb for adapters, not the paper's).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { type TrainConfig, validateConfig, withDefaults } from "../train/config.ts";
import { parseLoraTargets } from "../train/lora.ts";

/** The three training objectives of the study. */
export type Objective = "sft" | "orpo" | "dpo";

/** A training run's hyper-parameters: a TrainConfig without the paths the pipeline fills in. */
export type TrainingSettings = Omit<
  Partial<TrainConfig>,
  "objective" | "model" | "data" | "out" | "resume" | "overwriteOutputDir" | "chatTemplate" | "evalData"
>;

/** Who judges the pairwise comparisons of Table 1. */
export type JudgeSettings =
  | { kind: "rule" }
  | { kind: "llm"; url: string; model: string; keyEnv?: string }
  | { kind: "none" };

/** Everything a reproduction needs. */
export interface ReproduceSettings {
  /** The preset these settings started from (recorded, and shown in the report's title). */
  preset: string;
  /** The base model (PT): a Hugging Face folder or a Hub id (`org/name[@revision]`). */
  model: string;
  /** Build the toolkit's tiny base model in `model` when it is missing (the tiny preset). */
  buildTinyBase: boolean;
  /** The run folder: every output of every stage lands under it. */
  out: string;
  /** SFT data files; absent: derived from the KoBEST train splits. */
  sftData?: string[];
  /** Preference data files (ORPO, DPO); absent: derived from the KoBEST train splits. */
  prefData?: string[];
  /** Documents per task taken from the KoBEST train splits for the derived sets (all when absent). */
  trainDocs?: number;
  /** KoBEST in the v1.0 TSV or Hub jsonl layout; absent: downloaded from the Hub (skt/kobest_v1). */
  kobestDir?: string;
  /** First N test documents per task (all when absent). */
  kobestLimit?: number;
  /** KoBEST shot settings scored for every model (the paper: 0 and 5). */
  shots: number[];
  /** Sequences per forward pass when scoring KoBEST. */
  kobestBatchSize: number;
  /** Longest KoBEST input in tokens (default: min(model context, 2048)). */
  kobestMaxLength?: number;
  /** The Korean prompt set of the win rates (JSONL, eval/winrate/inputs.ts formats). */
  prompts: string;
  /** First N prompts. */
  promptsLimit: number;
  /** Longest generated answer, in tokens. */
  answerMaxTokens: number;
  /** Context (prompt + answer) the answer generator allocates, in tokens. */
  answerContext: number;
  /** A Jinja chat template file for models without one (training chat rows and answer prompts). */
  chatTemplate?: string;
  /** Also train DPO from the SFT model on the preference set. */
  dpo: boolean;
  /** Who judges Table 1's comparisons; `none` leaves Table 1 out. */
  judge: JudgeSettings;
  /** Hyper-parameters of each training run. */
  train: Record<Objective, TrainingSettings>;
  /** What the preset needs from the machine, shown by --help and recorded. */
  needs: string;
}

/** A named starting point for {@link ReproduceSettings}. */
export interface Preset {
  name: string;
  summary: string;
  /** GPU, memory and time it needs (estimates unless stated). */
  needs: string;
  /** Settings without `out`; `model` may be empty when the preset needs --model. */
  settings: Omit<ReproduceSettings, "out" | "preset" | "needs">;
}

const repoFile = (rel: string) => fileURLToPath(new URL(`../${rel}`, import.meta.url));

/**
 * The bundled KoBEST subset (first 120 train and 40 test records per task).
 * @example
 * ```ts
 * await runKobest({ models: ["runs/tiny-base"], dataDir: KOBEST_TINY_DIR, limit: 4 });
 * ```
 */
export const KOBEST_TINY_DIR: string = repoFile("data/kobest_tiny");
/**
 * The bundled Korean prompt set (KULLM's translation of Self-Instruct's user-oriented instructions).
 * @example
 * ```ts
 * const questions = await readQuestions(KO_PROMPTS, 20);
 * ```
 */
export const KO_PROMPTS: string = repoFile("data/ko_user_oriented_instructions.jsonl");

const TINY_TRAINING: TrainingSettings = {
  maxLength: 256,
  batchSize: 8,
  maxSteps: 80,
  lr: 3e-3,
  schedule: "cosine",
  warmupRatio: 0.05,
  weightDecay: 0.01,
  saveEvery: 10,
  saveTotalLimit: 1,
  // Pinned where TRL's defaults would differ: every step logged (the report's curves), nothing recomputed.
  logEvery: 1,
  gradientCheckpointing: false,
};

const FULL_TRAINING: TrainingSettings = {
  maxLength: 512,
  batchSize: 4,
  gradAccum: 4,
  epochs: 1,
  schedule: "linear",
  saveEvery: 200,
  saveTotalLimit: 2,
  saveDtype: "BF16",
  // The needs stated below were planned without recomputation (TRL's default turns it on).
  gradientCheckpointing: false,
};

const LORA_TRAINING: TrainingSettings = {
  ...FULL_TRAINING,
  lora: { r: 16, alpha: 32, targets: parseLoraTargets("all-linear"), rslora: false },
  f16Base: true,
  merge: true,
};

/** LoRA on a 7–8B base: the activations of 32 wide layers are recomputed rather than kept. */
const LARGE_LORA_TRAINING: TrainingSettings = { ...LORA_TRAINING, gradientCheckpointing: true };

/** Settings shared by the real-model presets: all of KoBEST from the Hub, all prompts, no judge by default. */
function realDefaults(model: string, train: Record<Objective, TrainingSettings>): Preset["settings"] {
  return {
    model,
    buildTinyBase: false,
    shots: [0, 5],
    kobestBatchSize: 16,
    prompts: KO_PROMPTS,
    promptsLimit: 252,
    answerMaxTokens: 1024,
    answerContext: 2048,
    dpo: false,
    judge: { kind: "none" },
    train,
  };
}

function fullTraining(): Record<Objective, TrainingSettings> {
  return {
    sft: { ...FULL_TRAINING, lr: 2e-5 },
    orpo: { ...FULL_TRAINING, lr: 1e-6, beta: 0.1, orpoNll: "whole" },
    dpo: { ...FULL_TRAINING, lr: 1e-6, beta: 0.1 },
  };
}

function loraTraining(base: TrainingSettings = LORA_TRAINING): Record<Objective, TrainingSettings> {
  return {
    sft: { ...base, lr: 2e-4 },
    orpo: { ...base, lr: 1e-5, beta: 0.1, orpoNll: "whole" },
    dpo: { ...base, lr: 1e-5, beta: 0.1 },
  };
}

const FULL_NEEDS = (params: string, gb: string) =>
  `full fine-tuning of ${params}: f32 weights, gradients and AdamW moments take 16 bytes per parameter ` +
  `(${gb}) plus activations at 4 × 512 tokens per micro-batch — one 40–80 GB GPU (A100/H100 class); ` +
  `estimated, not measured`;

/**
 * The presets, by name.
 * @example
 * ```ts
 * PRESETS.tinyllama.settings.model; // "TinyLlama/TinyLlama_v1.1"
 * ```
 */
export const PRESETS: Record<string, Preset> = {
  tiny: {
    name: "tiny",
    summary:
      "the whole pipeline in minutes on the CPU adapter: the toolkit's random tiny base, the bundled " +
      "KoBEST subset, a few dozen steps, 20 prompts and the rule judge (proves the pipeline, not the paper)",
    needs:
      "no GPU: runs on the CPU adapter (Mesa lavapipe) in about 5 minutes on 2 cores (measured 5 min 9 s, " +
      "9 min of CPU time), about 0.5 GB of memory",
    settings: {
      model: "runs/tiny-base",
      buildTinyBase: true,
      trainDocs: 120,
      kobestDir: KOBEST_TINY_DIR,
      kobestLimit: 16,
      shots: [0, 5],
      kobestBatchSize: 16,
      prompts: KO_PROMPTS,
      promptsLimit: 20,
      answerMaxTokens: 64,
      answerContext: 512,
      dpo: false,
      judge: { kind: "rule" },
      train: {
        sft: { ...TINY_TRAINING },
        orpo: { ...TINY_TRAINING, batchSize: 4, maxSteps: 60, beta: 0.1, orpoNll: "whole" },
        dpo: { ...TINY_TRAINING, batchSize: 4, maxSteps: 40, lr: 5e-4, beta: 0.1 },
      },
    },
  },
  full: {
    name: "full",
    summary:
      "full fine-tuning of the --model you give, with TRL's default hyper-parameters, all of KoBEST, " +
      "all 252 prompts",
    needs: "16 bytes per parameter for weights, gradients and AdamW moments plus activations: about 30 GB " +
      "for a 1B model (one 40–80 GB GPU); estimated, not measured",
    settings: realDefaults("", fullTraining()),
  },
  tinyllama: {
    name: "tinyllama",
    summary: "full fine-tuning of TinyLlama/TinyLlama_v1.1 (1.1B, Llama 2 architecture, 32k vocabulary)",
    needs: FULL_NEEDS("1.1B parameters", "≈ 18 GB"),
    settings: realDefaults("TinyLlama/TinyLlama_v1.1", fullTraining()),
  },
  lora: {
    name: "lora",
    summary:
      "LoRA (r 16, α 32, all linear layers, f16 frozen base, merged for evaluation) on the --model you give",
    needs: "f16 base weights (2 bytes per parameter) plus activations: about 12–20 GB for a 1–1.5B model " +
      "(one 24 GB GPU); estimated, not measured",
    settings: realDefaults("", loraTraining()),
  },
  "llama-3.2-1b-lora": {
    name: "llama-3.2-1b-lora",
    summary: "LoRA on meta-llama/Llama-3.2-1B (gated on the Hub: accept the licence, set HF_TOKEN)",
    needs:
      "about 12 GB (f16 base 2.5 GB, 128k-vocabulary logits in chunks, activations): one 16–24 GB GPU; " +
      "estimated, not measured",
    settings: realDefaults("meta-llama/Llama-3.2-1B", loraTraining()),
  },
  "llama-2-7b-lora": {
    name: "llama-2-7b-lora",
    summary: "LoRA (r 16, α 32, all linear layers, f16 frozen base, gradient checkpointing, merged for " +
      "evaluation) on meta-llama/Llama-2-7b-hf, the paper's base family (gated on the Hub: accept the " +
      "licence, set HF_TOKEN)",
    needs: "training planned by --dry-run for an H100 (2 GiB bindings): SFT 15.37 GiB at 4 × 512 tokens, " +
      "ORPO and DPO 17.34 GiB at 4 pairs × 512 (f16 base 12.55 GiB, activations kept per layer input); " +
      "evaluation loads each merged model in f32 (25.1 GiB of weights): one 40–80 GB GPU; planned, not " +
      "measured",
    settings: realDefaults("meta-llama/Llama-2-7b-hf", loraTraining(LARGE_LORA_TRAINING)),
  },
  "llama-3.1-8b-lora": {
    name: "llama-3.1-8b-lora",
    summary: "LoRA (r 16, α 32, all linear layers, f16 frozen base, gradient checkpointing, merged for " +
      "evaluation) on meta-llama/Llama-3.1-8B (128k vocabulary; gated on the Hub: accept the licence, " +
      "set HF_TOKEN)",
    needs: "training planned by --dry-run for an H100 (2 GiB bindings): SFT 17.86 GiB at 4 × 512 tokens, " +
      "ORPO and DPO 19.89 GiB at 4 pairs × 512 (f16 base 14.96 GiB, a 1002 MiB embedding); evaluation " +
      "loads each merged model in f32 (29.9 GiB of weights): one 40–80 GB GPU; planned, not measured",
    settings: realDefaults("meta-llama/Llama-3.1-8B", loraTraining(LARGE_LORA_TRAINING)),
  },
  "qwen2.5-1.5b-lora": {
    name: "qwen2.5-1.5b-lora",
    summary: "LoRA on Qwen/Qwen2.5-1.5B (28 layers, 152k vocabulary)",
    needs: "about 16–20 GB (f16 base 3 GB, activations of 28 layers): one 24 GB GPU; estimated, not measured",
    settings: realDefaults("Qwen/Qwen2.5-1.5B", loraTraining()),
  },
};

/**
 * The settings of a preset for a run folder (a deep copy: callers may change it).
 *
 * @example
 * ```ts
 * const s = presetSettings("tiny", "runs/repro-tiny");
 * s.judge; // { kind: "rule" }
 * ```
 */
export function presetSettings(name: string, out: string): ReproduceSettings {
  const preset = PRESETS[name];
  if (!preset) {
    throw new Error(`--preset: expected one of ${Object.keys(PRESETS).join(", ")}, got "${name}"`);
  }
  return structuredClone({ ...preset.settings, preset: name, out, needs: preset.needs });
}

/**
 * Throws an error naming the first invalid setting by its flag.
 *
 * @example
 * ```ts
 * validateSettings({ ...presetSettings("tiny", "runs/x"), promptsLimit: 0 }); // Error: --prompts_limit: …
 * ```
 */
export function validateSettings(s: ReproduceSettings): void {
  const fail = (flag: string, expected: string, got: unknown): never => {
    throw new Error(`--${flag}: expected ${expected}, got ${JSON.stringify(got)}`);
  };
  const positiveInt = (flag: string, v: number | undefined) => {
    if (v !== undefined && !(Number.isSafeInteger(v) && v > 0)) fail(flag, "an integer ≥ 1", v);
  };
  if (!s.model) {
    fail("model_name_or_path", `a base model folder or Hub id (preset "${s.preset}" has none)`, s.model);
  }
  if (!s.out) fail("output_dir", "a run folder", s.out);
  if (s.shots.length === 0) fail("shots", "at least one shot count, e.g. 0,5", s.shots);
  for (const k of s.shots) if (!(Number.isSafeInteger(k) && k >= 0)) fail("shots", "integers ≥ 0", s.shots);
  positiveInt("train_docs", s.trainDocs);
  positiveInt("kobest_limit", s.kobestLimit);
  positiveInt("kobest_batch_size", s.kobestBatchSize);
  positiveInt("kobest_max_length", s.kobestMaxLength);
  positiveInt("prompts_limit", s.promptsLimit);
  positiveInt("answer_max_tokens", s.answerMaxTokens);
  positiveInt("answer_context", s.answerContext);
  if (s.answerContext < 64 || s.answerContext % 64 !== 0) {
    fail("answer_context", "a multiple of 64 (the generator's bucket)", s.answerContext);
  }
  if (s.answerMaxTokens >= s.answerContext) {
    fail("answer_max_tokens", `fewer than --answer_context (${s.answerContext})`, s.answerMaxTokens);
  }
  if (s.judge.kind === "llm" && !(s.judge.url && s.judge.model)) {
    fail("judge_model", "a model name with --judge_url", s.judge.model);
  }
  for (const objective of trainedObjectives(s)) {
    // The trainer would reject these only when the stage starts, possibly hours in: check them now.
    try {
      validateConfig(stageTrainConfig(s, objective, ["-"]));
    } catch (e) {
      throw new Error(`${objective} training: ${(e as Error).message}`);
    }
  }
}

/**
 * The objectives a reproduction trains: SFT and ORPO, and DPO when asked.
 * @example
 * ```ts
 * trainedObjectives(presetSettings("tiny", "runs/x")); // ["sft", "orpo"]
 * ```
 */
export function trainedObjectives(s: ReproduceSettings): Objective[] {
  return ["sft", "orpo", ...(s.dpo ? ["dpo" as const] : [])];
}

/**
 * The training configuration of one stage, on `data` (the stage fills in the real files and folder).
 * @example
 * ```ts
 * const cfg = stageTrainConfig(settings, "orpo", ["runs/x/data/preference.jsonl"]);
 * ```
 */
export function stageTrainConfig(s: ReproduceSettings, objective: Objective, data: string[]): TrainConfig {
  return withDefaults(objective, {
    ...s.train[objective],
    model: s.model,
    data,
    out: `${s.out}/${objective}`,
  });
}
