/**
 * Host memory while loading a BF16 checkpoint: a synthetic shard (random values, nothing downloaded) is
 * uploaded into an f16 frozen base or f32 trainable weights, streamed piece by piece as `loadLlama` does,
 * against the same run's baseline of converting each tensor whole (what loading did before). Each load runs
 * in its own process and reports its peak resident memory above where it started (sampled every 2 ms);
 * on the CPU adapter GPU buffers live in host memory too, so their bytes are reported beside it.
 *
 * ```sh
 * deno task bench:load                         # vocab 65536 × hidden 2048: one 256 MiB BF16 tensor
 * deno task bench:load --vocab 128256 --json load.json
 * ```
 *
 * @module
 */
import { f32ToF16 } from "../gpu/half.ts";
import { Gpu } from "../gpu/runtime.ts";
import { writeRows } from "../gpu/row_blocks.ts";
import { formatBytes } from "../io/bytes.ts";
import { parseModelConfig } from "../io/hf_config.ts";
import { openModelFolder, saveModelFolder } from "../io/hf_model.ts";
import { llamaParamSpecs, numel } from "../io/llama_architecture.ts";
import { normalGenerator } from "../model/init.ts";
import { paramDtype, uploadParams } from "../model/load.ts";
import { ParamSet } from "../model/params.ts";
import { adapterSummary, type BenchReport, writeReport } from "./report.ts";
import { parseSettings, settingsHelp, type SettingsTable, withTableDefaults } from "../io/settings.ts";
import { BENCH_OUTPUT_SETTINGS, SHAPE_SETTINGS } from "./shapes.ts";

/** The flags of bench:load (`--measure_dir` is internal: one measurement in a child process). */
const SETTINGS = {
  vocab: { ...SHAPE_SETTINGS.vocab, default: 65536, help: "rows of the tied embedding" },
  hidden: { ...SHAPE_SETTINGS.hidden, default: 2048, help: "columns of the tied embedding" },
  into: { name: "into", kind: "string", choices: ["f16", "f32"], defaultHelp: "both", help: "load into" },
  mode: {
    name: "mode",
    kind: "string",
    choices: ["stream", "whole"],
    defaultHelp: "both",
    help: "how to load",
  },
  json: BENCH_OUTPUT_SETTINGS.json,
  measureDir: {
    name: "measure_dir",
    kind: "string",
    metavar: "DIR",
    help: "internal: measure one load of DIR",
  },
} satisfies SettingsTable;

const USAGE = settingsHelp(SETTINGS, {
  usage:
    "usage: deno task bench:load [--vocab N] [--hidden N] [--into f16|f32] [--mode stream|whole] [--json FILE]",
  intro: "Writes a synthetic BF16 checkpoint (tied embeddings of vocab × hidden, one small layer) into a " +
    "temporary folder and measures the peak host memory of loading it into an f16 base and into f32 weights " +
    "(or only the one --into names), streamed and whole-tensor (or only the --mode named).",
});

/** One load, in this process: the peak resident bytes above the start, and the GPU bytes it allocated. */
async function measureOne(dir: string, into: "f16" | "f32", mode: "stream" | "whole") {
  const gpu = await Gpu.create();
  const folder = await openModelFolder(dir);
  const f16 = into === "f16";
  const params = ParamSet.create(gpu, llamaParamSpecs(folder.config), {
    trainable: false,
    dtypeOf: (s) => paramDtype(s, f16),
  });
  await gpu.sync();
  // Resident memory sampled every 2 ms (and at the end): reading /proc would need --allow-all.
  const before = Deno.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 2);
  const t0 = performance.now();
  try {
    if (mode === "stream") {
      await uploadParams(gpu, folder, params);
    } else {
      // The loader before streaming: each tensor read whole as f32, narrowed whole for an f16 base.
      for (const spec of params.specs) {
        const t = params.blocks(spec.name);
        const w = await folder.readF32(spec.name);
        writeRows(gpu, t, t.dtype === "f16" ? f32ToF16(w) : w);
      }
      gpu.run([]);
      await gpu.sync();
    }
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, Deno.memoryUsage().rss);
  const seconds = (performance.now() - t0) / 1000;
  return { peakAboveStart: peak - before, gpuBytes: gpu.liveBytes, seconds };
}

async function writeCheckpoint(dir: string, vocab: number, hidden: number): Promise<number> {
  const config = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: hidden,
    intermediate_size: 64,
    num_hidden_layers: 1,
    num_attention_heads: hidden / 64,
    num_key_value_heads: hidden / 64,
    vocab_size: vocab,
    max_position_embeddings: 128,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: true,
  };
  const specs = llamaParamSpecs(parseModelConfig(config, "the synthetic checkpoint's config"));
  const normal = normalGenerator(1);
  const noise = Float32Array.from({ length: 1 << 20 }, () => normal() * 0.02);
  // Written in pieces too, so the benchmark's own setup never holds a whole tensor.
  async function* pieces(n: number) {
    for (let at = 0; at < n; at += noise.length) yield noise.slice(0, Math.min(noise.length, n - at));
  }
  await saveModelFolder(dir, {
    config,
    dtype: "BF16",
    tensors: (name) => pieces(numel(specs.find((s) => s.name === name)!.shape)),
  });
  return Math.max(...specs.map((s) => numel(s.shape)));
}

async function main(): Promise<void> {
  const parsed = parseSettings(SETTINGS, Deno.args);
  if (parsed.help) return console.log(USAGE);
  const values = withTableDefaults(SETTINGS, parsed.values);
  if (values.measureDir) {
    const r = await measureOne(
      values.measureDir,
      values.into as "f16" | "f32",
      values.mode as "stream" | "whole",
    );
    console.log(JSON.stringify(r));
    return;
  }
  const vocab = values.vocab!, hidden = values.hidden!;
  const gpu = await Gpu.create();
  console.log(`adapter: ${gpu.describe()}`);
  const dir = await Deno.makeTempDir({ prefix: "bench-load-" });
  try {
    const largest = await writeCheckpoint(dir, vocab, hidden);
    console.log(
      `checkpoint: BF16, tied embedding ${vocab} × ${hidden} (${formatBytes(2 * largest)}; ` +
        `${formatBytes(4 * largest)} as f32), one small layer`,
    );
    const figures: Record<string, number> = {};
    const targets = values.into ? [values.into as "f16" | "f32"] : (["f16", "f32"] as const);
    const modes = values.mode ? [values.mode as "stream" | "whole"] : (["stream", "whole"] as const);
    for (const into of targets) {
      for (const mode of modes) {
        const out = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--allow-read",
            "--allow-write",
            "--allow-env",
            new URL(import.meta.url).pathname,
            "--measure_dir",
            dir,
            "--into",
            into,
            "--mode",
            mode,
          ],
          stderr: "inherit",
        }).output();
        if (!out.success) throw new Error(`the ${mode} load into ${into} failed`);
        const r = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
        const transient = r.peakAboveStart - r.gpuBytes;
        figures[`${into}_${mode}_peakBytes`] = r.peakAboveStart;
        figures[`${into}_${mode}_transientBytes`] = Math.max(transient, 1);
        figures[`${into}_${mode}_seconds`] = r.seconds;
        console.log(
          `into ${into}, ${mode === "stream" ? "streamed in pieces" : "whole tensors (before)"}: peak ` +
            `${formatBytes(r.peakAboveStart)} above the start, of which GPU buffers ${
              formatBytes(r.gpuBytes)
            }: ` +
            `${formatBytes(transient)} on top; ${r.seconds.toFixed(1)} s`,
        );
      }
    }
    if (values.json) {
      const report: BenchReport = {
        script: "load_memory",
        preset: `bf16-embedding-${vocab}x${hidden}`,
        shape: { vocab_size: vocab, hidden_size: hidden },
        adapter: adapterSummary(gpu),
        settings: { checkpoint: "BF16", largestTensorElements: largest },
        figures,
        ratios: modes.length < 2 ? {} : Object.fromEntries(
          targets.map((t) => [
            `${t}TransientWholeOverStream`,
            figures[`${t}_whole_transientBytes`] / figures[`${t}_stream_transientBytes`],
          ]),
        ),
        date: new Date().toISOString(),
      };
      await writeReport(values.json, report);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`bench:load: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
