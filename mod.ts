/**
 * kotransfer: move English-centric Llama-family models to Korean with SFT, DPO and ORPO on WebGPU, and
 * measure the result on KoBEST and by pairwise win rates.
 *
 * The command-line tasks (`deno task orpo`, `kobest`, `serve`, `winrate`, `report`, …) are thin wrappers
 * around the functions exported here.
 *
 * @example Train, evaluate and serve from a script
 * ```ts
 * import { loadEngine, runKobest, startServer, train, withDefaults } from "./mod.ts";
 *
 * const run = await train(withDefaults("orpo", {
 *   model: "runs/tiny-base",
 *   data: ["data/ko_pref_tiny.jsonl"],
 *   out: "runs/orpo",
 *   maxSteps: 50,
 *   lr: 3e-3,
 * }));
 * const { table } = await runKobest({ models: [run.finalDir], dataDir: "data/kobest_tiny", shots: [0, 5] });
 * console.log(table);
 * const server = startServer(await loadEngine(run.finalDir, { maxConcurrent: 4 }), { port: 8080, maxQueue: 16, maxConcurrent: 4 });
 * ```
 *
 * @example Reproduce the paper's pipeline (resumable: a second run skips completed stages)
 * ```ts
 * import { presetSettings, reproduce } from "./mod.ts";
 *
 * const r = await reproduce(presetSettings("tiny", "runs/repro-tiny"));
 * console.log(r.table1 ?? r.table1Skipped, r.table2, r.report);
 * ```
 *
 * @module
 */

// GPU runtime
export { announceAdapter, Gpu, GpuLimitError, GpuUnavailableError, inferBackend } from "./gpu/runtime.ts";
export type {
  AdapterReport,
  Arena,
  BackendClues,
  Dispatch,
  DType,
  GpuBackend,
  GpuOptions,
  Tensor,
  TypedFor,
  UniformValue,
} from "./gpu/runtime.ts";
export type { RowBlock, RowBlocks } from "./gpu/row_blocks.ts";

// Models: Hugging Face folders in and out, the Hub
export { loadLlama, readParams, saveLlama, unloadLlama } from "./model/load.ts";
export type { LoadedLlama, LoadOptions } from "./model/load.ts";
export type {
  KvCacheView,
  Llama,
  LlamaOptions,
  LoraAdapter,
  StepBuffers,
  WeightSource,
} from "./model/llama.ts";
export type { ParamPart, ParamSet } from "./model/params.ts";
export type { RowGroup } from "./model/workspace.ts";
export { formatPlan, planMemory } from "./model/memory_plan.ts";
export type { MemoryPlan, PlanPart, PlanSettings } from "./model/memory_plan.ts";
export { BUNDLED_DATA, ensureTinyBase } from "./model/tiny.ts";
export { openModelFolder, saveModelFolder } from "./io/hf_model.ts";
export type { ModelFolder, SavedModel, SaveDType, SaveModelOptions } from "./io/hf_model.ts";
export { parseModelConfig } from "./io/hf_config.ts";
export type { GenerationConfig, ModelConfig, ModelType } from "./io/hf_config.ts";
export { LINEAR_NAMES } from "./io/llama_architecture.ts";
export type { LinearName, LlamaDims, ParamSpec, RopeConfig, RopeScaling } from "./io/llama_architecture.ts";
export { DTYPE_SIZES } from "./io/safetensors.ts";
export type { ElementRange, RawTensor, SafetensorsDType } from "./io/safetensors.ts";
export { downloadModel, resolveModelPath } from "./io/hub.ts";
export { resolveModelSource } from "./io/model_source.ts";
export type { ModelSource, ResolvedAdapter } from "./io/model_source.ts";
export { adaptedLinears, AdapterError, readPeftAdapter } from "./io/peft_adapter.ts";
export type { AdaptedLinear, PeftAdapter } from "./io/peft_adapter.ts";
export { loadLlamaWithAdapters, uploadAdapters } from "./model/adapters.ts";
export type { AdaptedLlama, AdapterWeights, GpuAdapters } from "./model/adapters.ts";
export { TokenScorer } from "./model/scorer.ts";
export type { ScoredQuery, ScoreOptions, ScoreQuery } from "./model/scorer.ts";
export type { DownloadModelOptions, DownloadProgress, HubOptions, RepoType } from "./io/hub.ts";
export { loadTokenizer, TextTokenizer } from "./text/tokenizer.ts";
// Two chat-message types: the tokenizer's takes any role a template knows, the engine's (exported below as
// `ChatMessage`) only OpenAI's three.
export type {
  ChatMessage as TemplateChatMessage,
  ChatTemplateOptions,
  DecodeOptions,
  DecodeStream,
  EncodeOptions,
  LoadTokenizerOptions,
} from "./text/tokenizer.ts";

// Training
export { train } from "./train/trainer.ts";
export type { TrainLogger, TrainOptions, TrainResult } from "./train/trainer.ts";
export { validateConfig, withDefaults } from "./train/config.ts";
export type { EvalStrategy, TrainConfig } from "./train/config.ts";
export type { DpoLossType, ObjectiveKind } from "./kernels/objective.ts";
export type { OrpoNll } from "./train/objectives.ts";
export { SCHEDULES } from "./train/schedule.ts";
export type { Schedule } from "./train/schedule.ts";
export { loadLoraAdapter, mergeLora, saveLoraAdapter } from "./train/lora.ts";
export type { LoraSpec, SaveLoraOptions } from "./train/lora.ts";
export { runParity } from "./train/parity.ts";
export type { ParityLine } from "./train/parity.ts";

// Evaluation
export { runKobest } from "./eval/kobest/run.ts";
export type { RemoteKobest, RunKobestOptions } from "./eval/kobest/run.ts";
export { RemoteLogprobModel } from "./eval/remote_model.ts";
export type { RemoteLogprobOptions } from "./eval/remote_model.ts";
export { evaluateKobest } from "./eval/kobest/evaluate.ts";
export type { EvaluateKobestOptions, RequestRecord } from "./eval/kobest/evaluate.ts";
export { KOBEST_SPLITS, KOBEST_TASKS } from "./eval/kobest/data.ts";
export type { KobestSplit, KobestTask } from "./eval/kobest/data.ts";
export type {
  LmEvalResults,
  MetricValue,
  ResultRow,
  RunConfig,
  TableEntry,
  TaskConfigDump,
} from "./eval/kobest/results.ts";
export type { LogprobQuery, TokenEncoder, TokenLogprobModel, TokenLogprobs } from "./eval/loglikelihood.ts";
export { GpuLogprobModel } from "./eval/gpu_model.ts";
export { runWinRate } from "./eval/winrate/run.ts";
export type { JudgeEndpoint, WinRateConfig, WinRateReport } from "./eval/winrate/run.ts";
export type { Verdict, VerdictRule } from "./eval/winrate/judge_prompt.ts";
export type { AnswerSource, ModelSpec, PairSpec, Question } from "./eval/winrate/inputs.ts";
export type { PairSummary, WinRateSummary } from "./eval/winrate/summary.ts";
export { planArena } from "./eval/winrate/human.ts";
export type { AnsweredPair, ArenaItem, ArenaPlan, HumanVote, PlannedQuestion } from "./eval/winrate/human.ts";
export { ArenaRequestError, ArenaSession } from "./eval/winrate/arena_session.ts";
export type { ArenaProgress, ArenaRequestCode, ArenaTables } from "./eval/winrate/arena_session.ts";
export { agreementLine, judgeAgreements } from "./eval/winrate/agreement.ts";
export type { AgreementCount, JudgeAgreement } from "./eval/winrate/agreement.ts";
export type { JudgmentRecord, OrderRule, Outcome } from "./eval/winrate/judgments.ts";
export { OpenAIClient } from "./io/openai_client.ts";
export type {
  ChatClient,
  ChatReply,
  ChatRequestBody,
  CompletionRequestBody,
  OpenAIClientOptions,
} from "./io/openai_client.ts";

// Generation and serving
export { Generator } from "./generate/generator.ts";
export type {
  GenerationOutput,
  GenerationRequest,
  GeneratorOptions,
  SamplingOptions,
} from "./generate/generator.ts";
export { loadEngine, TextEngine } from "./generate/engine.ts";
export type {
  ChatMessage,
  FinishReason,
  GenerateRequest,
  GenerateResult,
  GenerationEngine,
  LoadEngineOptions,
  ScoredTokens,
  ScoreRequest,
  TokenChoice,
  TokenScoring,
} from "./generate/engine_contract.ts";
export type { TextEngineParts } from "./generate/engine.ts";
export { exitOnSignals, startServer } from "./serve/server.ts";
export type { ServerHandle, ServerOptions } from "./serve/server.ts";
export { startArenaServer } from "./serve/arena.ts";
export type { ArenaServer, ArenaServerOptions, ArenaState } from "./serve/arena.ts";

// Reports
export { writeReport } from "./report/write.ts";
export type { WriteReportOptions, WrittenReport } from "./report/write.ts";
export type { ChartKind, ChartSpec, ReportChartConfig } from "./report/charts.ts";

// Reproducing the paper
export { reproduce } from "./pipeline/reproduce.ts";
export type { ReproduceOptions, ReproduceResult } from "./pipeline/reproduce.ts";
export type { PipelineWork } from "./pipeline/paper_stages.ts";
export type { StageOutcome } from "./pipeline/stages.ts";
export { KO_PROMPTS, KOBEST_TINY_DIR, presetSettings } from "./pipeline/settings.ts";
export type { JudgeSettings, Objective, ReproduceSettings, TrainingSettings } from "./pipeline/settings.ts";
export { RULE_JUDGE_MODEL, RuleJudgeClient } from "./eval/winrate/rule_judge.ts";
export { startRuleJudgeServer } from "./serve/rule_judge_server.ts";
export type { RuleJudgeEngine, RuleJudgeServer } from "./serve/rule_judge_server.ts";
