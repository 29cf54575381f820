/**
 * Generation throughput with the toolkit's `Generator` (KV cache, continuous batching, sampling on the GPU):
 * prefill tokens/s of one prompt into one slot, and decode tokens/s of S slots producing M tokens each,
 * greedy, with `--steps-per-submit` decode steps per submission. The baseline in the same run decodes with
 * one step per submission, a readback per token, so the ratio shows what batching steps buys.
 *
 * ```sh
 * deno task bench:generate                                        # tiny shape, CPU-sized
 * deno task bench:generate --preset tinyllama --slots 16 --prompt 512 --new 128 --steps-per-submit 16
 * ```
 *
 * @module
 */
import { Gpu } from "../gpu/runtime.ts";
import { type GenerationOutput, Generator } from "../generate/generator.ts";
import { uniformGenerator } from "../model/init.ts";
import { formatBytes, formatCount, loadTuningIfPresent, median, wallMs } from "./measure.ts";
import { createRandomLlama } from "./random_model.ts";
import { adapterSummary, type BenchReport, writeReport } from "./report.ts";
import {
  BENCH_OUTPUT_SETTINGS,
  type BenchShape,
  SHAPE_SETTINGS,
  shapeFromFlags,
  shapeSummary,
} from "./shapes.ts";
import { parseSettings, settingsHelp, type SettingsTable } from "../io/settings.ts";

/** The flags of bench:generate: the shared shape and output flags, then its own. */
const SETTINGS = {
  ...SHAPE_SETTINGS,
  slots: {
    name: "slots",
    kind: "int",
    range: { min: 1 },
    defaultHelp: "16; tiny: 8",
    help: "sequences decoded together",
  },
  prompt: {
    name: "prompt",
    kind: "int",
    range: { min: 2 },
    defaultHelp: "512; tiny: 256",
    help: "prompt tokens of the prefill measurement (2 at least: one to prefill, one to decode)",
  },
  new: {
    name: "new",
    kind: "int",
    range: { min: 1 },
    defaultHelp: "128; tiny: 64",
    help: "tokens each slot decodes",
  },
  stepsPerSubmit: {
    name: "steps_per_submit",
    kind: "int",
    range: { min: 1 },
    default: 8,
    help: "decode steps per submission and readback (the generator's default)",
  },
  reps: {
    name: "reps",
    kind: "int",
    range: { min: 1 },
    defaultHelp: "3; quick: 1",
    help: "timed repetitions of each measurement after one warm-up",
  },
  ...BENCH_OUTPUT_SETTINGS,
  quick: {
    ...BENCH_OUTPUT_SETTINGS.quick,
    help: "the smallest meaningful run (2 slots, 64-token prompt, 16 new tokens unless given)",
  },
} satisfies SettingsTable;

const USAGE = settingsHelp(SETTINGS, { usage: "usage: deno task bench:generate [options]" });

/** Prompt length of each decoding slot: short, so the decode figure is not a prefill figure. */
const DECODE_PROMPT = 8;
const FIRST_WORD_ID = 3;

interface Options {
  shape: BenchShape;
  slots: number;
  prompt: number;
  newTokens: number;
  stepsPerSubmit: number;
  reps: number;
  tuning?: string;
  quick: boolean;
  json?: string;
}

function parseOptions(args: string[]): Options | undefined {
  const { values, help } = parseSettings(SETTINGS, args);
  if (help) return undefined;
  const shape = shapeFromFlags(values);
  const tiny = shape.preset === "tiny";
  const quick = values.quick ?? false;
  const d = quick
    ? { slots: 2, prompt: 64, newTokens: 16, reps: 1 }
    : tiny
    ? { slots: 8, prompt: 256, newTokens: 64, reps: 3 }
    : { slots: 16, prompt: 512, newTokens: 128, reps: 3 };
  return {
    shape,
    slots: values.slots ?? d.slots,
    prompt: values.prompt ?? d.prompt,
    newTokens: values.new ?? d.newTokens,
    stepsPerSubmit: values.stepsPerSubmit ?? 8,
    reps: values.reps ?? d.reps,
    tuning: values.tuning,
    quick,
    json: values.json,
  };
}

function randomIds(n: number, vocab: number, seed: number): number[] {
  const uniform = uniformGenerator(seed);
  return Array.from({ length: n }, () => FIRST_WORD_ID + Math.floor(uniform() * (vocab - FIRST_WORD_ID)));
}

/** Positions each slot needs: the prefill prompt, or a short prompt plus the new tokens and the overrun of a submission. */
function contextTokens(o: Options): number {
  const need = Math.max(o.prompt + 2, DECODE_PROMPT + o.newTokens + 2 * o.stepsPerSubmit + 2);
  return Math.ceil(need / 64) * 64;
}

/**
 * Milliseconds until the first token of a prompt of `n` tokens: the median of at least three runs after one
 * warm-up, since the prefill figure is a difference of two such times and one outlier would swing it.
 */
async function timeToFirstToken(gen: Generator, n: number, vocab: number, reps: number): Promise<number> {
  const once = () => gen.generate({ promptIds: randomIds(n, vocab, n), maxNewTokens: 1, seed: 0 });
  await once();
  const times: number[] = [];
  for (let i = 0; i < Math.max(3, reps); i++) times.push(await wallMs(once));
  return median(times);
}

/** Decodes `newTokens` in every slot at once; checks each slot produced them all. */
async function decodeAll(gen: Generator, o: Options, vocab: number): Promise<void> {
  const outputs: GenerationOutput[] = await Promise.all(
    Array.from(
      { length: o.slots },
      (_, s) =>
        gen.generate({
          promptIds: randomIds(DECODE_PROMPT, vocab, 100 + s),
          maxNewTokens: o.newTokens,
          seed: s,
        }),
    ),
  );
  outputs.forEach((out, s) => {
    if (out.ids.length !== o.newTokens || out.finishReason !== "length") {
      throw new Error(
        `slot ${s} produced ${out.ids.length} tokens (${out.finishReason}), expected ${o.newTokens}`,
      );
    }
  });
}

/** Decode tokens/s (all slots together): median time of `reps` runs after one warm-up run. */
async function decodeRate(
  gen: Generator,
  o: Options,
  vocab: number,
): Promise<{ ms: number; tokensPerSec: number }> {
  await decodeAll(gen, o, vocab);
  const times: number[] = [];
  for (let i = 0; i < o.reps; i++) times.push(await wallMs(() => decodeAll(gen, o, vocab)));
  const ms = median(times);
  return { ms, tokensPerSec: (o.slots * o.newTokens) / (ms / 1000) };
}

async function main(): Promise<void> {
  const opts = parseOptions(Deno.args);
  if (!opts) {
    console.log(USAGE);
    return;
  }
  const gpu = await Gpu.create();
  console.log(`adapter: ${gpu.describe()}`);
  if (opts.tuning) console.log(await loadTuningIfPresent(opts.tuning));
  const config = opts.shape.config;
  const vocab = config.vocabSize;
  const context = contextTokens(opts);
  const m = await createRandomLlama(gpu, config, {
    trainable: false,
    maxTokens: Math.max(opts.slots, context),
    maxPositions: context,
  });
  const batched = new Generator(gpu, m.loaded, {
    slots: opts.slots,
    contextTokens: context,
    stepsPerSubmit: opts.stepsPerSubmit,
  });
  const single = new Generator(gpu, m.loaded, {
    slots: opts.slots,
    contextTokens: context,
    stepsPerSubmit: 1,
  });
  console.log(
    `model: ${opts.shape.name}, ${formatCount(m.parameters)} parameters; ${opts.slots} slots of ${context} ` +
      `positions; GPU memory ${formatBytes(gpu.liveBytes)}`,
  );

  const ttftPrompt = await timeToFirstToken(single, opts.prompt, vocab, opts.reps);
  const ttftOne = await timeToFirstToken(single, 1, vocab, opts.reps);
  const prefillMs = ttftPrompt - ttftOne;
  if (!(prefillMs > 0)) {
    throw new Error(
      `a ${opts.prompt}-token prompt took no longer (${ttftPrompt.toFixed(1)} ms) than a 1-token one ` +
        `(${ttftOne.toFixed(1)} ms): give a longer --prompt or more --reps`,
    );
  }
  const prefillTokensPerSec = (opts.prompt - 1) / (prefillMs / 1000);
  console.log(
    `prefill: ${opts.prompt}-token prompt, first token after ${ttftPrompt.toFixed(1)} ms ` +
      `(1-token prompt: ${ttftOne.toFixed(1)} ms) → ${prefillTokensPerSec.toFixed(0)} tokens/s`,
  );
  const fast = await decodeRate(batched, opts, vocab);
  console.log(
    `decode: ${opts.slots} slots × ${opts.newTokens} tokens, ${opts.stepsPerSubmit} steps per submit: ` +
      `${fast.ms.toFixed(1)} ms → ${fast.tokensPerSec.toFixed(1)} tokens/s`,
  );
  const slow = await decodeRate(single, opts, vocab);
  console.log(
    `decode baseline, 1 step per submit: ${slow.ms.toFixed(1)} ms → ${slow.tokensPerSec.toFixed(1)} tokens/s`,
  );
  const gain = fast.tokensPerSec / slow.tokensPerSec;
  console.log(`steps per submit ${opts.stepsPerSubmit} vs 1: ${gain.toFixed(2)}x`);
  if (opts.json) {
    const report: BenchReport = {
      script: "generate",
      preset: opts.shape.name,
      shape: shapeSummary(config),
      adapter: adapterSummary(gpu),
      settings: {
        slots: opts.slots,
        prompt: opts.prompt,
        decodePrompt: DECODE_PROMPT,
        newTokens: opts.newTokens,
        stepsPerSubmit: opts.stepsPerSubmit,
        contextTokens: context,
        reps: opts.reps,
        sampling: "greedy",
        quick: opts.quick,
      },
      figures: {
        prefillTokensPerSec,
        timeToFirstTokenMs: ttftPrompt,
        decodeTokensPerSec: fast.tokensPerSec,
        decodeMs: fast.ms,
        baselineDecodeTokensPerSec: slow.tokensPerSec,
        baselineDecodeMs: slow.ms,
        peakBytes: gpu.peakBytes,
      },
      ratios: { stepsPerSubmitGain: gain },
      extra: { timeToFirstTokenOneTokenMs: ttftOne, parameters: m.parameters },
      date: new Date().toISOString(),
    };
    await writeReport(opts.json, report);
  }
  m.destroy();
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`bench:generate: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
