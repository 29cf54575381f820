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
 * @module
 */

// GPU runtime
export { Gpu, GpuLimitError, GpuUnavailableError } from "./gpu/runtime.ts";
export type { AdapterReport, Dispatch, Tensor } from "./gpu/runtime.ts";

// Models: Hugging Face folders in and out, the Hub
export { dimsOf, loadLlama, readParams, saveLlama, unloadLlama } from "./model/load.ts";
export type { LoadedLlama, LoadOptions } from "./model/load.ts";
export { ensureTinyBase } from "./model/tiny.ts";
export { openModelFolder, parseModelConfig, saveModelFolder } from "./io/hf_model.ts";
export type { ModelConfig, ModelFolder } from "./io/hf_model.ts";
export { downloadModel, resolveModelPath } from "./io/hub.ts";
export { loadTokenizer, TextTokenizer } from "./text/tokenizer.ts";

// Training
export { train } from "./train/trainer.ts";
export type { TrainOptions, TrainResult } from "./train/trainer.ts";
export { validateConfig, withDefaults } from "./train/config.ts";
export type { TrainConfig } from "./train/config.ts";
export { loadLoraAdapter, mergeLora, saveLoraAdapter } from "./train/lora.ts";
export type { LoraSpec } from "./train/lora.ts";
export { runParity } from "./train/parity.ts";

// Evaluation
export { runKobest } from "./eval/kobest/run.ts";
export { evaluateKobest } from "./eval/kobest/evaluate.ts";
export { GpuLogprobModel } from "./eval/gpu_model.ts";
export { runWinRate } from "./eval/winrate.ts";
export type { WinRateConfig, WinRateReport } from "./eval/winrate.ts";

// Generation and serving
export { Generator } from "./generate/generator.ts";
export type { GenerationOutput, GenerationRequest } from "./generate/generator.ts";
export { loadEngine, TextEngine } from "./generate/engine.ts";
export { startServer } from "./serve/server.ts";

// Reports
export { writeReport } from "./report/write.ts";
