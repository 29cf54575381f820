/**
 * Training throughput: optimizer steps of full fine-tuning or LoRA on a Llama shape with random weights,
 * timed as the trainer runs them (one submission per micro-batch, one readback of the metrics per step),
 * with the step time, tokens/s, the GPU memory the toolkit allocated and, given torch_reference.py's
 * output, the ratio to PyTorch's tokens/s for the same model.
 *
 * It also prints the memory plan (`model/memory_plan.ts`) beside the peak it measures, and fails when the
 * two differ by more than 10 %: the plan `--dry-run` prints is checked against every run.
 *
 * ```sh
 * deno task bench:train                                          # tiny shape, CPU-sized
 * deno task bench:train --preset tinyllama --batch 4 --seq 1024 --torch torch.txt --json train.json
 * deno task bench:train --preset llama7b --lora 16 --f16-base --batch 1 --seq 1024
 * deno task bench:train --preset tinyllama --layers 4 --lora 16 --f16-base --seq 512 --gradient-checkpointing
 * ```
 *
 * @module
 */
import { Gpu } from "../gpu/runtime.ts";
import { parseByteSize } from "../io/bytes.ts";
import type { ModelConfig } from "../io/hf_config.ts";
import { formatPlan, type MemoryPlan, planMemory } from "../model/memory_plan.ts";
import { describeLayout } from "../model/load.ts";
import { loraParamSpecs } from "../train/lora.ts";
import { collateSft } from "../train/batching.ts";
import { uniformGenerator } from "../model/init.ts";
import { microBatch } from "../train/objectives.ts";
import { StepRunner } from "../train/runner.ts";
import { AdamW } from "../train/optimizer.ts";
import { formatBytes, formatCount, loadTuningIfPresent, mean, wallMs } from "./measure.ts";
import { parseSettings, settingsHelp, type SettingsTable } from "../io/settings.ts";
import { createRandomLlama, loraSpecFor } from "./random_model.ts";
import { adapterSummary, type BenchReport, writeReport } from "./report.ts";
import {
  BENCH_OUTPUT_SETTINGS,
  type BenchShape,
  countParams,
  SHAPE_SETTINGS,
  shapeFromFlags,
  type ShapeName,
  shapeSummary,
} from "./shapes.ts";

const steps = { kind: "int", range: { min: 1 } } as const;
import { parseTorchReference, sameModel, type TorchTrainResult } from "./torch_reference.ts";

/** The flags of bench:train: the shared shape and output flags, then its own. */
const SETTINGS = {
  ...SHAPE_SETTINGS,
  batch: { name: "batch", ...steps, defaultHelp: "4; llama7b: 1", help: "sequences per step" },
  seq: { name: "seq", ...steps, defaultHelp: "1024; tiny: 256", help: "tokens per sequence" },
  steps: { name: "steps", ...steps, defaultHelp: "5; tiny: 10", help: "measured steps" },
  warmup: {
    name: "warmup",
    kind: "int",
    range: { min: 0 },
    defaultHelp: "2; llama7b: 1",
    help: "untimed steps first",
  },
  lora: {
    name: "lora",
    ...steps,
    metavar: "R",
    help: "train rank-R LoRA adapters on every linear layer (alpha 2R) instead of every weight",
  },
  f16Base: {
    name: "f16_base",
    kind: "bool",
    default: false,
    help: "with --lora: hold the frozen base's linear weights in f16",
  },
  gradientCheckpointing: {
    name: "gradient_checkpointing",
    kind: "bool",
    default: false,
    help: "keep only each layer's input and recompute the layer in the backward pass",
  },
  maxBinding: {
    name: "max_binding",
    kind: "string",
    metavar: "BYTES",
    parse: parseByteSize,
    help: "hold every GPU binding to at most BYTES (tensors split as on a smaller adapter)",
  },
  torch: {
    name: "torch",
    kind: "string",
    metavar: "FILE",
    help: "captured output of torch_reference.py: print our tokens/s over PyTorch's (same model only)",
  },
  ...BENCH_OUTPUT_SETTINGS,
  quick: {
    ...BENCH_OUTPUT_SETTINGS.quick,
    help: "the smallest meaningful run (batch 2 × 64 tokens, 1 warm-up + 2 steps unless given)",
  },
} satisfies SettingsTable;

const USAGE = settingsHelp(SETTINGS, { usage: "usage: deno task bench:train [options]" });

/** What one run measures. */
interface Options {
  shape: BenchShape;
  batch: number;
  seq: number;
  steps: number;
  warmup: number;
  lora?: number;
  f16Base: boolean;
  gradientCheckpointing: boolean;
  maxBinding?: number;
  torch?: string;
  tuning?: string;
  quick: boolean;
  json?: string;
}

/** Sizes when no flag gives them: CPU-sized for tiny, the torch reference's batch for the big shapes. */
function defaults(
  preset: ShapeName,
  quick: boolean,
): { batch: number; seq: number; steps: number; warmup: number } {
  if (quick) return { batch: 2, seq: 64, steps: 2, warmup: 1 };
  if (preset === "tiny") return { batch: 4, seq: 256, steps: 10, warmup: 2 };
  if (preset === "llama7b") return { batch: 1, seq: 1024, steps: 3, warmup: 1 };
  return { batch: 4, seq: 1024, steps: 5, warmup: 2 };
}

function parseOptions(args: string[]): Options | undefined {
  const { values, help } = parseSettings(SETTINGS, args);
  if (help) return undefined;
  const shape = shapeFromFlags(values);
  const quick = values.quick ?? false;
  const d = defaults(shape.preset, quick);
  if (values.f16Base && values.lora === undefined) {
    throw new Error("--f16_base: the base is only frozen under --lora; full fine-tuning updates it in f32");
  }
  return {
    shape,
    batch: values.batch ?? d.batch,
    seq: values.seq ?? d.seq,
    steps: values.steps ?? d.steps,
    warmup: values.warmup ?? d.warmup,
    lora: values.lora,
    f16Base: values.f16Base ?? false,
    gradientCheckpointing: values.gradientCheckpointing ?? false,
    maxBinding: values.maxBinding,
    torch: values.torch,
    tuning: values.tuning,
    quick,
    json: values.json,
  };
}

/** B random sequences of T tokens, every token a target (SFT on whole texts, as torch's labels=ids). */
function randomBatch(B: number, T: number, vocab: number, seed: number) {
  const uniform = uniformGenerator(seed);
  const examples = Array.from({ length: B }, (_, b) => ({
    ids: Array.from({ length: T }, () => 3 + Math.floor(uniform() * (vocab - 3))),
    labelMask: new Array(T).fill(1),
    source: `random:${b}`,
  }));
  return collateSft(examples, examples.map((_, i) => i), { padId: 0 });
}

/** The torch result our run compares with, by mode, when it trained the same model. */
function torchMatches(
  results: TorchTrainResult[],
  parameters: number,
  lora: boolean,
): Record<string, TorchTrainResult> {
  const wanted: Record<string, string> = lora
    ? { vsTorchLora: "lora" }
    : { vsTorchFp32: "fp32", vsTorchBf16: "amp" };
  const out: Record<string, TorchTrainResult> = {};
  for (const [ratio, mode] of Object.entries(wanted)) {
    const r = results.find((x) => x.mode === mode && sameModel(x.paramsM, parameters));
    if (r) out[ratio] = r;
  }
  return out;
}

function describeRun(o: Options, parameters: number, trainable: number): string {
  const c = o.shape.config;
  const what = o.lora === undefined
    ? "full fine-tuning"
    : `LoRA r=${o.lora} on every linear layer (${formatCount(trainable)} trainable)${
      o.f16Base ? ", f16 base" : ""
    }`;
  return `model: ${o.shape.name}, ${
    formatCount(parameters)
  } parameters (hidden ${c.hiddenSize}, ${c.numLayers} ` +
    `layers, ${c.numHeads}/${c.numKvHeads} heads, MLP ${c.intermediateSize}, vocab ${c.vocabSize}); ${what}`;
}

/** The plan `--dry-run` would print for this run. */
export function benchPlan(
  config: ModelConfig,
  o: { batch: number; seq: number; lora?: number; f16Base?: boolean; gradientCheckpointing?: boolean },
  gpu: Gpu,
): MemoryPlan {
  return planMemory(config, {
    sequences: o.batch,
    seqLength: o.seq,
    lora: o.lora === undefined
      ? undefined
      : { rank: o.lora, specs: loraParamSpecs(config, loraSpecFor(o.lora)) },
    f16Base: o.f16Base,
    gradientCheckpointing: o.gradientCheckpointing,
    maxBinding: gpu.maxBinding,
    maxBuffer: gpu.maxBuffer,
  });
}

/** What {@link measureTrainSteps} measured. */
export interface TrainMeasurement {
  /** Wall time of each measured step, ms. */
  stepTimesMs: number[];
  /** Loss of the last step. */
  loss: number;
  /** Bytes allocated once the model and optimizer were built, and at the peak of the steps. */
  allocatedBytes: number;
  peakBytes: number;
  parameters: number;
  trainableParameters: number;
}

/**
 * Builds the model and optimizer, runs `warmup` then `steps` optimizer steps on one random batch, and
 * measures the step times and the peak GPU memory of the steps (the peak counter starts after building,
 * so the random weights' upload buffers do not count). `log` receives progress lines.
 * @example
 * ```ts
 * const m = await measureTrainSteps(gpu, config, { batch: 1, seq: 64, steps: 1, warmup: 0, f16Base: false });
 * ```
 */
export async function measureTrainSteps(
  gpu: Gpu,
  config: ModelConfig,
  o: {
    batch: number;
    seq: number;
    steps: number;
    warmup: number;
    lora?: number;
    f16Base: boolean;
    gradientCheckpointing?: boolean;
  },
  log: (line: string) => void = () => {},
): Promise<TrainMeasurement> {
  const { batch: B, seq: T } = o;
  const built = performance.now();
  const m = await createRandomLlama(gpu, config, {
    trainable: o.lora === undefined,
    maxTokens: B * T,
    maxPositions: T,
    lora: o.lora === undefined ? undefined : loraSpecFor(o.lora),
    f16Base: o.f16Base,
    gradientCheckpointing: o.gradientCheckpointing,
  });
  try {
    gpu.resetPeakBytes();
    const opt = new AdamW(gpu, m.trainableSets, { weightDecay: 0.01, decayAll: true });
    const settings = { objective: "sft" as const, beta: 0.1 };
    const runner = new StepRunner(gpu, m.loaded.model, opt, settings, B);
    const mb = microBatch(randomBatch(B, T, config.vocabSize, 1), settings);
    const allocated = gpu.liveBytes;
    log(`layout: ${describeLayout(m.loaded)}`);
    log(
      `built in ${((performance.now() - built) / 1000).toFixed(1)} s; GPU memory allocated ${
        formatBytes(allocated)
      }`,
    );
    log(`batch ${B} × ${T} tokens; ${o.warmup} warm-up + ${o.steps} measured steps`);
    let step = 0;
    for (let i = 0; i < o.warmup; i++) {
      const ms = await wallMs(() => runner.step([mb], 1e-5, ++step));
      log(`warm-up step ${i + 1}: ${ms.toFixed(1)} ms`);
    }
    const times: number[] = [];
    let loss = NaN;
    for (let i = 0; i < o.steps; i++) {
      const t0 = performance.now();
      const r = await runner.step([mb], 1e-5, ++step);
      times.push(performance.now() - t0);
      loss = r.values.loss;
      log(`step ${i + 1}: ${times[i].toFixed(1)} ms (loss ${loss.toFixed(4)})`);
    }
    return {
      stepTimesMs: times,
      loss,
      allocatedBytes: allocated,
      peakBytes: gpu.peakBytes,
      parameters: m.parameters,
      trainableParameters: m.trainableParameters,
    };
  } finally {
    m.destroy();
  }
}

/** How far the plan may be from the measured peak before the benchmark fails. */
export const PLAN_TOLERANCE = 0.1;

async function main(): Promise<void> {
  const opts = parseOptions(Deno.args);
  if (!opts) {
    console.log(USAGE);
    return;
  }
  const torch = opts.torch ? parseTorchReference(await Deno.readTextFile(opts.torch), opts.torch) : undefined;
  const gpu = await Gpu.create({ maxBindingBytes: opts.maxBinding });
  console.log(`adapter: ${gpu.describe()}`);
  if (opts.tuning) console.log(await loadTuningIfPresent(opts.tuning));
  const { batch: B, seq: T } = opts;
  const config = opts.shape.config;
  const plan = benchPlan(config, opts, gpu);
  console.log(`memory plan:\n${formatPlan(plan, { maxBinding: gpu.maxBinding }).join("\n")}`);
  const measured = await measureTrainSteps(gpu, config, opts, (line) => console.log(line));
  console.log(describeRun(opts, measured.parameters, measured.trainableParameters));
  const times = measured.stepTimesMs, loss = measured.loss, allocated = measured.allocatedBytes;
  if (!Number.isFinite(loss)) throw new Error(`the loss is ${loss}: the step computed nothing meaningful`);
  const stepMs = mean(times);
  const tokensPerSec = (B * T) / (stepMs / 1000);
  const planOverPeak = plan.totalBytes / measured.peakBytes;
  console.log(`step: ${stepMs.toFixed(1)} ms (mean of ${times.length}); ${tokensPerSec.toFixed(0)} tokens/s`);
  console.log(
    `GPU memory: ${formatBytes(allocated)} allocated, ${formatBytes(measured.peakBytes)} at the peak; ` +
      `plan ${formatBytes(plan.totalBytes)} (plan/peak ${planOverPeak.toFixed(3)})`,
  );
  const ratios: Record<string, number> = {};
  const matched = torch ? torchMatches(torch.train, measured.parameters, opts.lora !== undefined) : {};
  for (const [name, r] of Object.entries(matched)) {
    ratios[name] = tokensPerSec / r.tokS;
    const sameBatch = r.bs === B && r.seq === T ? "" : ` (torch ran ${r.bs} × ${r.seq})`;
    console.log(
      `vs torch ${r.mode}: ${r.tokS} tokens/s, ${r.memGB} GB peak → ratio ${
        ratios[name].toFixed(3)
      }${sameBatch}`,
    );
  }
  if (torch && Object.keys(matched).length === 0) {
    console.log(
      `torch: no ${opts.lora === undefined ? "fp32/amp" : "lora"} result for a ` +
        `${formatCount(countParams(config))}-parameter model in ${opts.torch}; no ratio`,
    );
  }
  if (opts.json) {
    const report: BenchReport = {
      script: "train_step",
      preset: opts.shape.name,
      shape: shapeSummary(config),
      adapter: adapterSummary(gpu),
      settings: {
        batch: B,
        seq: T,
        steps: opts.steps,
        warmup: opts.warmup,
        mode: opts.lora === undefined ? "full" : "lora",
        loraRank: opts.lora ?? null,
        f16Base: opts.f16Base,
        optimizer: "AdamW (weight decay 0.01 on every parameter, no clipping), lr 1e-5",
        quick: opts.quick,
        gradientCheckpointing: opts.gradientCheckpointing,
        maxBinding: gpu.maxBinding,
      },
      figures: {
        stepMs,
        tokensPerSec,
        parameters: measured.parameters,
        trainableParameters: measured.trainableParameters,
        allocatedBytes: allocated,
        peakBytes: measured.peakBytes,
        planBytes: plan.totalBytes,
      },
      ratios: { ...ratios, planOverPeak },
      extra: {
        stepTimesMs: times,
        finalLoss: loss,
        plan: plan.parts,
        torch: matched,
        torchHeader: torch?.header ?? null,
      },
      date: new Date().toISOString(),
    };
    await writeReport(opts.json, report);
  }
  if (Math.abs(planOverPeak - 1) > PLAN_TOLERANCE) {
    throw new Error(
      `the memory plan (${formatBytes(plan.totalBytes)}) is off the measured peak ` +
        `(${formatBytes(measured.peakBytes)}) by more than ${
          PLAN_TOLERANCE * 100
        } %: model/memory_plan.ts no ` +
        `longer describes what the model allocates`,
    );
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`bench:train: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
