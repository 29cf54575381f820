#!/usr/bin/env -S deno run --no-prompt --allow-read --allow-write --allow-env=DENO_WEBGPU_BACKEND,HF_*,HUGGING*,XDG_CACHE_HOME,HOME,USERPROFILE --allow-net
/**
 * `deno task sft`: SFT training on WebGPU. With no arguments it trains the embedded default (a tiny Korean
 * Llama on the bundled data); `--help` lists the flags. The work is in train/cli.ts and train/trainer.ts.
 * @module
 */
import { runTask } from "../io/cli.ts";
import { runTrainingTask } from "../train/cli.ts";

if (import.meta.main) Deno.exit(await runTask("sft", () => runTrainingTask("sft", Deno.args)));
