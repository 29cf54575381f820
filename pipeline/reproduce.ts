/**
 * The paper's whole pipeline in one call: from a base model (PT), train SFT and ORPO (and DPO from SFT when
 * asked) on Korean data, score PT, SFT and ORPO on KoBEST at 0 and 5 shots (Table 2), compare SFT with PT
 * and SFT with ORPO pairwise on Korean prompts (Table 1), and write the report. Every stage is resumable
 * and skipped when its outputs are complete (pipeline/stages.ts); pipeline.json records what each did.
 *
 * @module
 */
import type { Gpu } from "../gpu/runtime.ts";
import {
  answersStage,
  baseStage,
  dataStage,
  kobestStage,
  type ModelLabel,
  outputPaths,
  type PipelineWork,
  reportStage,
  type StageEnv,
  table2Stage,
  trainingStage,
  winRateDisabled,
  winRateStage,
} from "./paper_stages.ts";
import { fileDigest, folderDigest } from "./files.ts";
import { type Objective, type ReproduceSettings, validateSettings } from "./settings.ts";
import { type Json, runStages, type Stage, type StageOutcome } from "./stages.ts";

/** Options of {@link reproduce}. */
export interface ReproduceOptions {
  /** One GPU for every stage (tests); by default each GPU stage creates its own and destroys it after. */
  gpu?: Gpu;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

/** What {@link reproduce} produced. */
export interface ReproduceResult {
  /** What happened to each stage, in pipeline order. */
  outcomes: StageOutcome[];
  /** Table 1 as Markdown (title, judge note, table), or undefined when it was not produced. */
  table1?: string;
  /** Why Table 1 was not produced. */
  table1Skipped?: string;
  /** Table 2 as Markdown. */
  table2: string;
  /** Path of the HTML report. */
  report: string;
  /** Path of the pipeline manifest (`pipeline.json`), which makes the next run resume. */
  manifest: string;
  /** What this invocation did; all zero when every stage was skipped. */
  work: PipelineWork;
  /** Wall-clock time of this invocation. */
  seconds: number;
}

/**
 * The paper's pairwise comparisons (model A, model B), plus DPO vs SFT when DPO is trained.
 * @example
 * ```ts
 * comparisons(true); // [["SFT", "PT"], ["SFT", "ORPO"], ["DPO", "SFT"]]
 * ```
 */
export function comparisons(dpo: boolean): [ModelLabel, ModelLabel][] {
  return [["SFT", "PT"], ["SFT", "ORPO"], ...(dpo ? [["DPO", "SFT"] as [ModelLabel, ModelLabel]] : [])];
}

async function digestsOf(
  s: ReproduceSettings,
): Promise<{ digests: StageEnv["digests"]; templateText?: string }> {
  const files = (paths: string[] | undefined, flag: string) =>
    paths ? Promise.all(paths.map((p) => fileDigest(p, flag))) : Promise.resolve(undefined);
  const templateText = s.chatTemplate === undefined
    ? undefined
    : await readFlagFile(s.chatTemplate, "--chat-template");
  return {
    digests: {
      kobest: s.kobestDir ? await folderDigest(s.kobestDir, "--kobest-dir") : "hub:skt/kobest_v1",
      prompts: await fileDigest(s.prompts, "--prompts"),
      sftData: await files(s.sftData, "--sft-data"),
      prefData: await files(s.prefData, "--pref-data"),
      chatTemplate: s.chatTemplate === undefined
        ? undefined
        : await fileDigest(s.chatTemplate, "--chat-template"),
    },
    templateText,
  };
}

async function readFlagFile(path: string, flag: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`${flag} ${path}: cannot read it (${(e as Error).message})`);
  }
}

/**
 * The stages of one reproduction, in the order they run.
 *
 * @example
 * ```ts
 * const stages = paperStages(env);
 * stages.map((s) => s.name); // ["base", "data", "sft", "orpo", "kobest-pt", …, "report"]
 * ```
 */
export function paperStages(env: StageEnv): Stage[] {
  const s = env.settings;
  const objectives: Objective[] = ["sft", "orpo", ...(s.dpo ? ["dpo" as const] : [])];
  const labels: ModelLabel[] = ["PT", "SFT", "ORPO", ...(s.dpo ? ["DPO" as const] : [])];
  const needsData = !s.sftData || !s.prefData;
  const judged = winRateDisabled(s.judge) === undefined;
  return [
    baseStage(env),
    ...(needsData ? [dataStage(env)] : []),
    ...objectives.map((o) => trainingStage(env, o)),
    ...labels.map((m) => kobestStage(env, m)),
    table2Stage(env, labels),
    ...labels.map((m) => answersStage(env, m)),
    winRateStage(env, comparisons(s.dpo)),
    reportStage(env, objectives, labels, judged),
  ];
}

/** What pipeline.json records about the invocation (no secrets). */
function about(s: ReproduceSettings): Json {
  return {
    preset: s.preset,
    model: s.model,
    out: s.out,
    judge: s.judge.kind === "llm" ? `${s.judge.model} at ${s.judge.url}` : s.judge.kind,
    dpo: s.dpo,
    needs: s.needs,
  };
}

/**
 * Runs (or resumes) the whole reproduction and returns both tables and where everything went.
 *
 * @example
 * ```ts
 * const r = await reproduce(presetSettings("tiny", "runs/repro-tiny"));
 * console.log(r.table1 ?? r.table1Skipped, r.table2, r.report);
 * ```
 */
export async function reproduce(s: ReproduceSettings, opts: ReproduceOptions = {}): Promise<ReproduceResult> {
  validateSettings(s);
  const started = performance.now();
  const log = opts.log ?? ((l: string) => console.error(l));
  await Deno.mkdir(s.out, { recursive: true });
  const { digests, templateText } = await digestsOf(s);
  const work: PipelineWork = { trainingSteps: 0, kobestModels: 0, answersGenerated: 0, judgeCalls: 0 };
  const env: StageEnv = { settings: s, digests, chatTemplateText: templateText, gpu: opts.gpu, log, work };
  const paths = outputPaths(s.out);
  const outcomes = await runStages(paperStages(env), { manifestPath: paths.manifest, about: about(s), log });
  const skipped = winRateDisabled(s.judge);
  return {
    outcomes,
    table1: skipped ? undefined : await Deno.readTextFile(paths.table1),
    table1Skipped: skipped,
    table2: await Deno.readTextFile(paths.table2),
    report: paths.report,
    manifest: paths.manifest,
    work,
    seconds: (performance.now() - started) / 1000,
  };
}
