/**
 * KoBEST scores in lm-evaluation-harness's results layout (one object per model and shot setting, the
 * shape of its `results_*.json`), and a Markdown table comparing several of them like Table 2 of the paper
 * (rows: model × shots; columns: each task's macro-F1 with accuracy, and the size-weighted average).
 *
 * @module
 */
import { KOBEST_TASKS, type KobestSplit, type KobestTask } from "./data.ts";
import { macroF1, mean, meanStderr, pooledSampleStderr, scoreChoices, weightedMean } from "./metrics.ts";

/** What one scored document contributes: the gold index, each choice's log-likelihood, the choice texts. */
export interface DocScore {
  gold: number;
  loglikelihoods: number[];
  choices: string[];
}

/** A metric value or lm-eval's "N/A" for a standard error it does not compute. */
export type MetricValue = number | "N/A";

/** Aggregated scores of one task. */
export interface TaskScore {
  task: KobestTask;
  /** Documents scored. */
  n: number;
  acc: number;
  accStderr: MetricValue;
  f1: number;
  /** HellaSwag only: accuracy of the per-character-normalised prediction. */
  accNorm?: number;
  accNormStderr?: MetricValue;
}

/** Tasks whose lm-eval config lists `acc_norm`. */
const HAS_ACC_NORM: ReadonlySet<KobestTask> = new Set(["hellaswag"]);

/**
 * Aggregates per-document scores as lm-eval does for one KoBEST task: acc and acc_norm are means with
 * `mean_stderr`; f1 is the macro F1 of (gold, argmax) pairs, whose stderr lm-eval does not compute.
 *
 * @example
 * ```ts
 * scoreTask("boolq", [{ gold: 1, loglikelihoods: [-2, -1], choices: ["아니오", "예"] }]).acc; // 1
 * ```
 */
export function scoreTask(task: KobestTask, docs: readonly DocScore[]): TaskScore {
  if (docs.length === 0) throw new RangeError(`${task}: no documents to score`);
  const outcomes = docs.map((d) => scoreChoices(d.loglikelihoods, d.choices, d.gold));
  const accs = outcomes.map((o) => o.acc);
  const score: TaskScore = {
    task,
    n: docs.length,
    acc: mean(accs),
    accStderr: meanStderr(accs),
    f1: macroF1(docs.map((d) => d.gold), outcomes.map((o) => o.pred)),
  };
  if (HAS_ACC_NORM.has(task)) {
    const norms = outcomes.map((o) => o.accNorm);
    score.accNorm = mean(norms);
    score.accNormStderr = meanStderr(norms);
  }
  return score;
}

/** The group of all KoBEST tasks, as lm-eval names it. */
export const KOBEST_GROUP = "kobest";

/**
 * lm-eval's task name for a KoBEST task.
 *
 * @example
 * ```ts
 * lmEvalTaskName("boolq"); // "kobest_boolq"
 * ```
 */
export function lmEvalTaskName(task: KobestTask): string {
  return `kobest_${task}`;
}

/** One row of `results` / `groups`: metric keys like `"acc,none"` plus `alias`. */
export type ResultRow = { alias: string } & Record<string, MetricValue | string>;

/** The config lm-eval records for each task (its YAML, with functions named). */
export interface TaskConfigDump {
  /** lm-eval's task name, e.g. `kobest_boolq`. */
  task: string;
  /** Group tags (`kobest`). */
  tag: string[];
  /** Hub dataset id, `skt/kobest_v1`. */
  dataset_path: string;
  /** Hub config name: the KoBEST task. */
  dataset_name: string;
  /** Split the shots come from. */
  training_split: string;
  /** Validation split name. */
  validation_split: string;
  /** Split scored. */
  test_split: string;
  /** Prompt template (Jinja) or Python function name, as in the task's YAML. */
  doc_to_text: string;
  /** Gold-index template or function name. */
  doc_to_target: string;
  /** The choices, or a template or function name that yields them. */
  doc_to_choice: string | string[];
  /** Text before the first shot (empty for KoBEST). */
  description: string;
  /** Between context and continuation (`" "`). */
  target_delimiter: string;
  /** Between shots (`"\n\n"`). */
  fewshot_delimiter: string;
  /** Shots per context at this setting. */
  num_fewshot: number;
  /** Metrics reported, with how each aggregates and which direction is better. */
  metric_list: { metric: string; aggregation: string; higher_is_better: boolean }[];
  /** Scoring mode: log-likelihood of each choice. */
  output_type: "multiple_choice";
  /** Times each request is repeated (1). */
  repeats: number;
  /** Always false for KoBEST. */
  should_decontaminate: boolean;
  /** Task version from the YAML. */
  metadata: { version: number };
}

/** Run settings recorded under `config`. */
export interface RunConfig {
  /** Model name (`--model` as given). */
  model: string;
  /** How the model was loaded, e.g. `pretrained=DIR,max_length=2048`. */
  model_args: string;
  /** Sequences per model call. */
  batch_size: number;
  /** `--limit` (documents or fraction per task), null for all. */
  limit: number | null;
  /** Bootstrap iterations for the standard errors. */
  bootstrap_iters: number;
  /** Seed of the few-shot sampler. */
  fewshot_seed: number;
  /** Split scored. */
  split: KobestSplit;
  /** Tokenizer's `add_special_tokens`, or `default` when left to the tokenizer. */
  add_special_tokens: boolean | "default";
}

/** lm-evaluation-harness's results object for one model at one shot setting. */
export interface LmEvalResults {
  /** Metrics per task, keyed by lm-eval task name. */
  results: Record<string, ResultRow>;
  /** The `kobest` group's row when more than one task was scored (also in `results`). */
  groups: Record<string, ResultRow>;
  /** Tasks of each group, in lm-eval's order. */
  group_subtasks: Record<string, string[]>;
  /** Each task's configuration. */
  configs: Record<string, TaskConfigDump>;
  /** Task versions (`N/A` for the group). */
  versions: Record<string, number | "N/A">;
  /** Shots per task. */
  "n-shot": Record<string, number>;
  /** Per task and metric, whether higher is better. */
  higher_is_better: Record<string, Record<string, boolean>>;
  /** Documents per task: in the split, and scored after `--limit`. */
  "n-samples": Record<string, { original: number; effective: number }>;
  /** How the run was set up. */
  config: RunConfig;
  /** Unix time in seconds, as lm-eval's `time.time()`. */
  date: number;
}

/** The templates of lm_eval/tasks/kobest/*.yaml; `utils.*` entries are Python functions there. */
const TEMPLATES: Record<KobestTask, Pick<TaskConfigDump, "doc_to_text" | "doc_to_target" | "doc_to_choice">> =
  {
    boolq: {
      doc_to_text: "{{paragraph}} 질문: {{question}} 답변: ",
      doc_to_target: "{{label}}",
      doc_to_choice: ["아니오", "예"],
    },
    copa: {
      doc_to_text: "utils.copa_doc_to_text",
      doc_to_target: "utils.copa_doc_to_target",
      doc_to_choice: "utils.copa_doc_to_choice",
    },
    hellaswag: { doc_to_text: "{{query}}", doc_to_target: "{{label}}", doc_to_choice: "choices" },
    sentineg: {
      doc_to_text: "utils.sentineg_doc_to_text",
      doc_to_target: "{{label}}",
      doc_to_choice: ["부정", "긍정"],
    },
    wic: {
      doc_to_text: "utils.wic_doc_to_text",
      doc_to_target: "{{label}}",
      doc_to_choice: ["아니오", "예"],
    },
  };

function taskConfig(task: KobestTask, shots: number, split: KobestSplit): TaskConfigDump {
  const metrics = ["acc", ...(HAS_ACC_NORM.has(task) ? ["acc_norm"] : []), "f1"];
  return {
    task: lmEvalTaskName(task),
    tag: [KOBEST_GROUP],
    dataset_path: "skt/kobest_v1",
    dataset_name: task,
    training_split: "train",
    validation_split: "validation",
    test_split: split,
    ...TEMPLATES[task],
    description: "",
    target_delimiter: " ",
    fewshot_delimiter: "\n\n",
    num_fewshot: shots,
    metric_list: metrics.map((metric) => ({
      metric,
      aggregation: metric === "f1" ? "utils.macro_f1_score" : "mean",
      higher_is_better: true,
    })),
    output_type: "multiple_choice",
    repeats: 1,
    should_decontaminate: false,
    metadata: { version: 1.0 },
  };
}

function taskRow(score: TaskScore): ResultRow {
  const row: ResultRow = {
    alias: lmEvalTaskName(score.task),
    "acc,none": score.acc,
    "acc_stderr,none": score.accStderr,
  };
  if (score.accNorm !== undefined) {
    row["acc_norm,none"] = score.accNorm;
    row["acc_norm_stderr,none"] = score.accNormStderr ?? "N/A";
  }
  row["f1,none"] = score.f1;
  row["f1_stderr,none"] = "N/A";
  return row;
}

/**
 * The group row: each metric averaged over the tasks that report it, weighted by their document counts,
 * with lm-eval's pooled standard error.
 *
 * @example
 * ```ts
 * groupRow([boolqScore, copaScore])["f1,none"]; // (f1_b·n_b + f1_c·n_c) / (n_b + n_c)
 * ```
 */
export function groupRow(scores: readonly TaskScore[]): ResultRow {
  const row: ResultRow = { alias: KOBEST_GROUP };
  const metrics: [string, (s: TaskScore) => number | undefined, (s: TaskScore) => MetricValue | undefined][] =
    [
      ["acc", (s) => s.acc, (s) => s.accStderr],
      ["acc_norm", (s) => s.accNorm, (s) => s.accNormStderr],
      ["f1", (s) => s.f1, () => "N/A"],
    ];
  for (const [name, value, stderr] of metrics) {
    const having = scores.filter((s) => value(s) !== undefined);
    if (having.length === 0) continue;
    const sizes = having.map((s) => s.n);
    row[`${name},none`] = weightedMean(having.map((s) => value(s) as number), sizes);
    row[`${name}_stderr,none`] = pooledSampleStderr(having.map((s) => stderr(s) ?? "N/A"), sizes);
  }
  return row;
}

/** Inputs of {@link buildLmEvalResults}. */
export interface BuildResultsInput {
  scores: readonly TaskScore[];
  shots: number;
  /** Documents in each task's scored split before `limit` (defaults to the scored count). */
  originalSizes?: Partial<Record<KobestTask, number>>;
  config: RunConfig;
  /** Unix seconds; defaults to now. */
  date?: number;
}

/**
 * Assembles lm-eval's results object for one model at one shot setting. With more than one task the
 * `kobest` group row is added to both `results` and `groups`, as lm-eval 0.4 does for an evaluated group.
 *
 * @example
 * ```ts
 * const out = buildLmEvalResults({ scores, shots: 5, config });
 * out.results.kobest_boolq["f1,none"];
 * ```
 */
export function buildLmEvalResults(input: BuildResultsInput): LmEvalResults {
  const ordered = KOBEST_TASKS.flatMap((t) => input.scores.filter((s) => s.task === t));
  const out: LmEvalResults = {
    results: {},
    groups: {},
    group_subtasks: {},
    configs: {},
    versions: {},
    "n-shot": {},
    higher_is_better: {},
    "n-samples": {},
    config: input.config,
    date: input.date ?? Date.now() / 1000,
  };
  if (ordered.length > 1) {
    const group = groupRow(ordered);
    out.results[KOBEST_GROUP] = group;
    out.groups[KOBEST_GROUP] = group;
    out.group_subtasks[KOBEST_GROUP] = ordered.map((s) => lmEvalTaskName(s.task));
    out.versions[KOBEST_GROUP] = "N/A";
    out["n-shot"][KOBEST_GROUP] = input.shots;
  }
  for (const score of ordered) {
    const name = lmEvalTaskName(score.task);
    out.results[name] = taskRow(score);
    out.configs[name] = taskConfig(score.task, input.shots, input.config.split);
    out.versions[name] = 1.0;
    out["n-shot"][name] = input.shots;
    out.higher_is_better[name] = Object.fromEntries(
      ["acc", ...(score.accNorm !== undefined ? ["acc_norm"] : []), "f1"].map((m) => [m, true]),
    );
    out["n-samples"][name] = { original: input.originalSizes?.[score.task] ?? score.n, effective: score.n };
  }
  return out;
}

const DISPLAY_NAMES: Record<KobestTask, string> = {
  boolq: "BoolQ",
  copa: "COPA",
  hellaswag: "HellaSwag",
  sentineg: "SentiNeg",
  wic: "WiC",
};

function shotsOf(results: LmEvalResults): number {
  const values = new Set(Object.values(results["n-shot"]));
  if (values.size !== 1) throw new Error(`results mix shot settings: ${[...values].join(", ")}`);
  return [...values][0];
}

/** One row of the comparison table: a label for the model and its results at one shot setting. */
export interface TableEntry {
  /** Label of the model's row. */
  model: string;
  /** The model's results at one shot setting. */
  results: LmEvalResults;
}

/**
 * A Markdown table of macro-F1 (accuracy in parentheses) per task and the size-weighted average, one row
 * per model × shot setting, like the paper's Table 2. Tasks missing from an entry show "–".
 *
 * @example
 * ```ts
 * console.log(kobestMarkdownTable([{ model: "base", results: zeroShot }, { model: "base", results: fiveShot }]));
 * // | Model | Shots | BoolQ F1 (acc) | … | Avg F1 (acc) |
 * ```
 */
export function kobestMarkdownTable(entries: readonly TableEntry[], digits = 3): string {
  const present = KOBEST_TASKS.filter((t) => entries.some((e) => e.results.results[lmEvalTaskName(t)]));
  const cell = (f1: number, acc: number) => `${f1.toFixed(digits)} (${acc.toFixed(digits)})`;
  const header = ["Model", "Shots", ...present.map((t) => `${DISPLAY_NAMES[t]} F1 (acc)`), "Avg F1 (acc)"];
  const lines = [
    `| ${header.join(" | ")} |`,
    `|${header.map((_, i) => (i < 2 ? "---" : "---:")).join("|")}|`,
  ];
  for (const { model, results } of entries) {
    const scores: TaskScore[] = [];
    const cells = present.map((t) => {
      const row = results.results[lmEvalTaskName(t)];
      if (!row) return "–";
      const f1 = row["f1,none"] as number;
      const acc = row["acc,none"] as number;
      scores.push({
        task: t,
        n: results["n-samples"][lmEvalTaskName(t)].effective,
        acc,
        accStderr: "N/A",
        f1,
      });
      return cell(f1, acc);
    });
    const sizes = scores.map((s) => s.n);
    const avg = scores.length === 0
      ? "–"
      : cell(weightedMean(scores.map((s) => s.f1), sizes), weightedMean(scores.map((s) => s.acc), sizes));
    lines.push(`| ${[model, String(shotsOf(results)), ...cells, avg].join(" | ")} |`);
  }
  return lines.join("\n");
}
