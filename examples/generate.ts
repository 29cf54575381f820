#!/usr/bin/env -S deno run --no-prompt --allow-read --allow-write --allow-env=DENO_WEBGPU_BACKEND
/**
 * Load a model folder and continue a Korean prompt, greedily, on WebGPU.
 *
 *   ./examples/generate.ts [MODEL_DIR] [PROMPT]
 *
 * Without MODEL_DIR it builds the tiny Korean Llama (random weights, a tokenizer trained on the bundled
 * text) in runs/example-tiny-base first, so the text is gibberish in Korean letters: what matters is that a
 * script imports the toolkit by path and runs it. Give a trained folder (e.g. runs/orpo-tiny from
 * `deno task orpo`) for something better. About 10 s on a 2-core CPU.
 * @module
 */
import { parseArgs } from "node:util";
import { ensureTinyBase, loadEngine } from "../mod.ts";

const { positionals } = parseArgs({ args: Deno.args, allowPositionals: true });
const [modelDir = "runs/example-tiny-base", prompt = "한국의 수도는"] = positionals;

// A folder that is not there yet is taken to mean "build the tiny base here".
if (await ensureTinyBase(modelDir)) console.error(`built the tiny base model in ${modelDir}`);

// loadEngine reads the tokenizer and weights and allocates a KV cache on the GPU (it prints the backend).
const engine = await loadEngine(modelDir, { maxConcurrent: 1, maxContextTokens: 128 });
const result = await engine.generate(
  // Greedy decoding: temperature 0, no top-p/top-k filtering, no repetition penalty.
  { prompt, maxTokens: 24, temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1, stop: [] },
  () => {}, // streamed pieces of text; the whole text comes back in `result` as well
  new AbortController().signal,
);
console.log(`${prompt}${result.text}`);
console.log(`(${result.completionTokens} tokens, finish: ${result.finishReason})`);
engine.close();
