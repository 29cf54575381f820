#!/usr/bin/env -S deno run --no-prompt --allow-read --allow-write --allow-env=DENO_WEBGPU_BACKEND
/**
 * Train a model with ORPO on a preference file, then print the paper's Table 2 (KoBEST, macro-F1 with
 * accuracy in parentheses) for the base model and the tuned one.
 *
 *   ./examples/orpo_table2.ts [--data FILE] [--base DIR] [--out DIR] [--steps N] [--limit N]
 *
 * Defaults: the bundled preference pairs (data/ko_pref_tiny.jsonl), the tiny Korean Llama as the base
 * (built in OUT/base on first use), OUT = runs/example-orpo, 40 optimizer steps, the first 20 test
 * documents of each KoBEST task (bundled subset), 0-shot. About 1 minute on a 2-core CPU. The tiny base is
 * random, so its scores are chance level; the pipeline is the point. Give --base a real Llama folder (and
 * more steps) on a GPU for real numbers.
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import {
  BUNDLED_DATA,
  ensureTinyBase,
  Gpu,
  KOBEST_TINY_DIR,
  runKobest,
  train,
  withDefaults,
} from "../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    data: { type: "string", default: fileURLToPath(BUNDLED_DATA.preference) },
    base: { type: "string" },
    out: { type: "string", default: "runs/example-orpo" },
    steps: { type: "string", default: "40" },
    limit: { type: "string", default: "20" },
  },
});
const base = values.base ?? `${values.out}/base`;
if (!values.base && await ensureTinyBase(base)) console.error(`built the tiny base model in ${base}`);

// One device for training and scoring (each would otherwise open its own).
const gpu = await Gpu.create();

// TRL's ORPO settings, with a learning rate and sequence length that suit the tiny model.
const run = await train(
  withDefaults("orpo", {
    model: base,
    data: [values.data],
    out: `${values.out}/orpo`,
    maxSteps: Number(values.steps),
    lr: 3e-3,
    maxLength: 128,
    batchSize: 8,
    // The tiny model needs no memory saving: no recomputation (TRL turns gradient checkpointing on).
    gradientCheckpointing: false,
  }),
  { gpu },
);
console.log(
  `orpo: loss ${run.firstLoss?.toFixed(3)} → ${run.lastLoss?.toFixed(3)}, model in ${run.finalDir}`,
);

// KoBEST scored as lm-evaluation-harness scores it; one table row per model.
const { table } = await runKobest({
  models: [base, run.finalDir],
  dataDir: KOBEST_TINY_DIR,
  shots: [0],
  limit: Number(values.limit),
  gpu,
});
console.log(table);
