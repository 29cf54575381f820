/**
 * From data files (or Hub datasets, split as `datasets` splits them) to tokenized training and evaluation
 * examples for one objective: read and validate rows, check they suit the objective, take the evaluation set
 * (held-out files, a share of the training rows, or the dataset's test split), tokenize with masks and
 * truncation.
 *
 * @module
 */
import { datasetSplitFiles } from "../io/dataset_repo.ts";
import { type DatasetRow, loadDataset, type PreferenceRow, type SftRow, splitEval } from "../io/datasets.ts";
import type { ObjectiveKind } from "../kernels/objective.ts";
import type { TextTokenizer } from "../text/tokenizer.ts";
import {
  buildPreferenceExamples,
  buildSftExamples,
  type ExampleStats,
  type PreferenceExample,
  type SftExample,
} from "./examples.ts";
import type { TrainConfig } from "./config.ts";
import { OBJECTIVES } from "./objectives.ts";

/** Tokenized examples of a run. */
export type PreparedData =
  | { kind: "sft"; train: SftExample[]; eval: SftExample[]; stats: ExampleStats; skippedRows: number }
  | {
    kind: "preference";
    train: PreferenceExample[];
    eval: PreferenceExample[];
    stats: ExampleStats;
    skippedRows: number;
  };

/** Rows of every file, each validated and of the family the objective trains on. */
async function readRows(
  files: string[],
  objective: ObjectiveKind,
  skipBadRows: boolean,
): Promise<{ rows: DatasetRow[]; skipped: number }> {
  const rows: DatasetRow[] = [];
  let skipped = 0;
  for (const file of files) {
    const ds = await loadDataset(file, { skipBadRows, expect: OBJECTIVES[objective].data });
    rows.push(...ds.rows);
    skipped += ds.skipped;
  }
  return { rows, skipped };
}

/** The local files of one split of every dataset named, saying where a folder's or a Hub dataset's came from. */
async function splitFiles(
  names: readonly string[],
  cfg: TrainConfig,
  split: string,
  say: (message: string) => void,
): Promise<string[]> {
  const files: string[] = [];
  for (const name of names) {
    const found = await datasetSplitFiles(name, { split, config: cfg.datasetConfig });
    if (found.length !== 1 || found[0] !== name) {
      say(`${name}: split "${split}" from ${found.length} file(s)`);
    }
    files.push(...found);
  }
  return files;
}

/**
 * Reads, validates, splits and tokenizes the run's data. `say` hears where a Hub dataset's splits came from.
 * @example
 * ```ts
 * const data = await prepareData(cfg, tokenizer);
 * console.log(data.train.length, "examples");
 * ```
 */
export async function prepareData(
  cfg: TrainConfig,
  tok: TextTokenizer,
  say: (message: string) => void = () => {},
): Promise<PreparedData> {
  const trainFiles = await splitFiles(cfg.data, cfg, cfg.datasetTrainSplit, say);
  const { rows, skipped } = await readRows(trainFiles, cfg.objective, cfg.skipBadRows);
  if (rows.length === 0) throw new Error(`no rows in ${cfg.data.join(", ")}`);
  let trainRows = rows, evalRows: DatasetRow[] = [];
  if (cfg.evalData.length > 0) {
    evalRows = (await readRows(cfg.evalData, cfg.objective, cfg.skipBadRows)).rows;
  } else if (cfg.evalFraction > 0) {
    const split = splitEval(rows, { evalFraction: cfg.evalFraction, seed: cfg.seed });
    trainRows = split.train;
    evalRows = split.eval;
  } else if (cfg.evalStrategy !== "no") {
    // As TRL's scripts do: the dataset's test split is evaluated when evaluation is on.
    const testFiles = await splitFiles(cfg.data, cfg, cfg.datasetTestSplit, say).catch((e) => {
      throw new Error(
        `--eval_strategy ${cfg.evalStrategy}: no evaluation data: ${(e as Error).message}`,
      );
    });
    evalRows = (await readRows(testFiles, cfg.objective, cfg.skipBadRows)).rows;
  }
  const limits = {
    maxLength: cfg.maxLength,
    maxPromptLength: cfg.maxPromptLength,
    encoding: cfg.legacyEncoding ? "legacy" as const : "trl" as const,
  };
  if (OBJECTIVES[cfg.objective].data === "sft") {
    const opts = {
      ...limits,
      completionOnlyLoss: cfg.completionOnlyLoss,
      assistantOnlyLoss: cfg.assistantOnlyLoss,
    };
    const train = buildSftExamples(trainRows as SftRow[], tok, opts);
    const ev = buildSftExamples(evalRows as SftRow[], tok, opts);
    if (train.examples.length === 0) {
      throw new Error("no training example survived tokenization and truncation");
    }
    return {
      kind: "sft",
      train: train.examples,
      eval: ev.examples,
      stats: train.stats,
      skippedRows: skipped,
    };
  }
  const pairs = { ...limits, objective: cfg.objective === "orpo" ? "orpo" as const : "dpo" as const };
  const train = buildPreferenceExamples(trainRows as PreferenceRow[], tok, pairs);
  const ev = buildPreferenceExamples(evalRows as PreferenceRow[], tok, pairs);
  if (train.examples.length === 0) throw new Error("no training pair survived tokenization and truncation");
  return {
    kind: "preference",
    train: train.examples,
    eval: ev.examples,
    stats: train.stats,
    skippedRows: skipped,
  };
}

/** The largest token id of the examples (to check against the model's vocabulary). */
export function maxTokenId(data: PreparedData): number {
  let m = 0;
  const see = (ids: number[]) => {
    for (const id of ids) if (id > m) m = id;
  };
  if (data.kind === "sft") { for (const e of [...data.train, ...data.eval]) see(e.ids); }
  else for (const e of [...data.train, ...data.eval]) see([...e.promptIds, ...e.chosenIds, ...e.rejectedIds]);
  return m;
}
