#!/usr/bin/env -S deno run --allow-read --allow-write --allow-env --allow-net
/**
 * `deno task sft`: SFT training on WebGPU. With no arguments it trains the embedded default (a tiny Korean
 * Llama on the bundled data); `--help` lists the flags. The work is in train/cli.ts and train/trainer.ts.
 * @module
 */
import { runTrainingTask } from "../train/cli.ts";

if (import.meta.main) Deno.exit(await runTrainingTask("sft", Deno.args));
