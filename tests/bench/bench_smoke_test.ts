/**
 * Keeps the benchmark scripts working: each runs as a subprocess with `--quick --json` on the CPU adapter,
 * and its JSON must name the adapter, hold positive figures and the ratios the script exists for. The GPU
 * comparison script runs end to end at the same scale (GPU_COMPARE_QUICK=1) with a captured torch log.
 * Needs --allow-run (the project's `deno task test` grants it).
 */
import { assert, assertAlmostEquals, assertEquals, assertStringIncludes } from "../asserts.ts";
import type { BenchReport } from "../../bench/report.ts";
import type { MergedResults } from "../../bench/merge_results.ts";
import { f16Capability, testNeeding } from "../helpers.ts";

const F16 = await f16Capability();

const ROOT = new URL("../../", import.meta.url).pathname;
const PERMISSIONS = ["--allow-read", "--allow-write", "--allow-env"];

/**
 * torch_reference.py's output format, with the tiny shape's parameter count (1.26 M without adapters,
 * 1.41 M with r=16 ones; the script rounds both to 1M) so our quick runs find their match.
 */
const TORCH_LOG = `torch 2.5.1 NVIDIA H100 80GB HBM3
RESULT torch matmul n=64 dtype=torch.float32 tf32=False ms=0.010 TFLOPs=0.05
RESULT torch matmul n=64 dtype=torch.float32 tf32=True ms=0.005 TFLOPs=0.10
RESULT torch train tinyllama-1.1b mode=fp32 params=1M bs=2 seq=64 step_ms=100.0 tok_s=1280 mem_GB=0.1
RESULT torch train tinyllama-1.1b mode=amp params=1M bs=2 seq=64 step_ms=50.0 tok_s=2560 mem_GB=0.1
RESULT torch train tinyllama-1.1b mode=lora params=1M bs=2 seq=64 step_ms=40.0 tok_s=3200 mem_GB=0.1
`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(command: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const out = await new Deno.Command(command, {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

function runBench(script: string, args: string[]): Promise<Run> {
  return run(Deno.execPath(), ["run", ...PERMISSIONS, `bench/${script}`, ...args]);
}

/** Runs `script --quick --json <tmp> …args`, checks it succeeded and printed the adapter first; returns the report. */
async function quickReport(script: string, args: string[] = []): Promise<BenchReport> {
  const dir = await Deno.makeTempDir({ prefix: "bench-smoke-" });
  try {
    const json = `${dir}/report.json`;
    const r = await runBench(script, ["--quick", "--json", json, ...args]);
    assertEquals(r.code, 0, `${script} failed:\n${r.stdout}\n${r.stderr}`);
    assert(r.stdout.startsWith("adapter: "), `${script} must print the adapter first, printed:\n${r.stdout}`);
    return JSON.parse(await Deno.readTextFile(json)) as BenchReport;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function checkReport(report: BenchReport, script: string, ratios: string[]): void {
  assertEquals(report.script, script);
  assertEquals(report.preset, "tiny");
  assertEquals(report.shape.hidden_size, 128);
  assert(report.adapter.description.length > 0, "the adapter is named");
  assertEquals(typeof report.adapter.isFallback, "boolean");
  assertEquals(report.settings.quick, true);
  assert(Object.keys(report.figures).length > 0, "figures were measured");
  for (const [name, value] of Object.entries(report.figures)) {
    assert(Number.isFinite(value) && value > 0, `figure ${name} = ${value} must be positive`);
  }
  assertEquals(Object.keys(report.ratios).sort(), [...ratios].sort(), "ratios");
  for (const [name, value] of Object.entries(report.ratios)) {
    assert(Number.isFinite(value) && value > 0, `ratio ${name} = ${value} must be positive`);
  }
  assert(Date.now() - Date.parse(report.date) < 10 * 60_000, `date ${report.date} is this run's`);
}

async function withTorchLog<T>(fn: (path: string) => Promise<T>): Promise<T> {
  const path = await Deno.makeTempFile({ prefix: "torch-", suffix: ".txt" });
  try {
    await Deno.writeTextFile(path, TORCH_LOG);
    return await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("bench:train --quick: full fine-tuning, memory and the ratios to torch fp32 and bf16", async () => {
  const report = await withTorchLog((torch) => quickReport("train_step.ts", ["--torch", torch]));
  checkReport(report, "train_step", ["vsTorchFp32", "vsTorchBf16", "planOverPeak"]);
  const f = report.figures;
  // The memory plan --dry-run prints is the measured peak, within 10 %.
  assertAlmostEquals(report.ratios.planOverPeak, f.planBytes / f.peakBytes, 1e-9);
  assert(Math.abs(report.ratios.planOverPeak - 1) <= 0.1, `plan/peak ${report.ratios.planOverPeak}`);
  assertAlmostEquals(
    f.tokensPerSec,
    (2 * 64) / (f.stepMs / 1000),
    1e-6 * f.tokensPerSec,
    "tokens/s from step ms",
  );
  assertAlmostEquals(report.ratios.vsTorchFp32, f.tokensPerSec / 1280, 1e-9);
  assertAlmostEquals(report.ratios.vsTorchBf16, f.tokensPerSec / 2560, 1e-9);
  assertEquals(f.trainableParameters, f.parameters);
  // Values, gradients and both AdamW moments are f32 copies of every parameter.
  assert(f.allocatedBytes >= 16 * f.parameters, `allocated ${f.allocatedBytes} B < 16 B × ${f.parameters}`);
  assert(f.peakBytes >= f.allocatedBytes, "the peak is at least what stays allocated");
});

testNeeding(
  F16,
  "bench:train --quick --lora 16 --f16-base: adapters only, the ratio to torch LoRA",
  {},
  async () => {
    const report = await withTorchLog((torch) =>
      quickReport("train_step.ts", ["--lora", "16", "--f16-base", "--torch", torch])
    );
    checkReport(report, "train_step", ["vsTorchLora", "planOverPeak"]);
    const f = report.figures;
    assert(f.trainableParameters < f.parameters / 5, `${f.trainableParameters} of ${f.parameters} trainable`);
    // Frozen f16 linear weights plus f32 embeddings: well under f32 values with gradients and moments.
    assert(f.allocatedBytes < 16 * f.parameters, `allocated ${f.allocatedBytes} B`);
    assertEquals(report.settings.f16Base, true);
  },
);

Deno.test("bench:eval --quick: batched and one-by-one scoring agree; the batching gain", async () => {
  const report = await quickReport("eval_throughput.ts");
  checkReport(report, "eval_throughput", ["batchingGain"]);
  const f = report.figures;
  assertAlmostEquals(report.ratios.batchingGain, f.requestsPerSec / f.baselineRequestsPerSec, 1e-9);
  assert(f.requestsPerSec > f.documentsPerSec, "every document has at least two requests");
  const extra = report.extra as { maxLoglikelihoodDifference: number; meanTokenLogprob: number };
  assert(extra.maxLoglikelihoodDifference < 1e-2, "padding changes no score");
  assertAlmostEquals(extra.meanTokenLogprob, -Math.log(2048), 1, "random weights predict about uniformly");
});

Deno.test("bench:generate --quick: prefill, decode and the steps-per-submit gain", async () => {
  const report = await quickReport("generate.ts", ["--steps-per-submit", "4"]);
  checkReport(report, "generate", ["stepsPerSubmitGain"]);
  const f = report.figures;
  assertEquals(report.settings.stepsPerSubmit, 4);
  assertAlmostEquals(
    report.ratios.stepsPerSubmitGain,
    f.decodeTokensPerSec / f.baselineDecodeTokensPerSec,
    1e-9,
  );
  assertAlmostEquals(f.decodeTokensPerSec, (2 * 16) / (f.decodeMs / 1000), 1e-6 * f.decodeTokensPerSec);
});

Deno.test("bench scripts: --help needs no GPU; bad flags fail naming the flag", async () => {
  for (const script of ["train_step.ts", "eval_throughput.ts", "generate.ts"]) {
    const help = await runBench(script, ["--help"]);
    assertEquals(help.code, 0, script);
    assertStringIncludes(help.stdout, "--preset");
    assertStringIncludes(help.stdout, "--json FILE");
    const bad = await runBench(script, ["--preset", "gpt5"]);
    assertEquals(bad.code, 1, script);
    assertStringIncludes(bad.stderr, '--preset: expected tiny | tinyllama | llama7b, got "gpt5"');
  }
  const zero = await runBench("train_step.ts", ["--batch", "0"]);
  assertStringIncludes(zero.stderr, "--batch: expected an integer ≥ 1, got 0");
  const f16 = await runBench("train_step.ts", ["--f16-base"]);
  assertStringIncludes(f16.stderr, "--f16_base: the base is only frozen under --lora");
});

testNeeding(
  F16,
  "gpu_compare.sh at the quick scale: every step runs and merges into one JSON",
  {},
  async () => {
    const out = await Deno.makeTempDir({ prefix: "gpu-compare-" });
    try {
      await withTorchLog(async (torch) => {
        const path = `${Deno.execPath().replace(/\/[^/]*$/, "")}:${Deno.env.get("PATH") ?? ""}`;
        const r = await run("bash", ["bench/gpu_compare.sh"], {
          OUT: out,
          GPU_COMPARE_QUICK: "1",
          TORCH_OUTPUT: torch,
          PATH: path,
        });
        assertEquals(r.code, 0, `gpu_compare.sh failed:\n${r.stdout}\n${r.stderr}`);
      });
      const files = [...Deno.readDirSync(out)].map((e) => e.name).sort();
      const stem = files.find((f) => f.endsWith("-quick-unknown-card.json"))?.slice(0, -".json".length);
      assert(stem, `no merged JSON among ${files.join(", ")}`);
      assertEquals(files, [`${stem}-matmul-tuning.json`, `${stem}-torch.txt`, `${stem}.json`, `${stem}.log`]);
      const merged = JSON.parse(await Deno.readTextFile(`${out}/${stem}.json`)) as MergedResults;
      assertEquals(Object.keys(merged.runs).sort(), [
        "eval",
        "generate",
        "train_fp32",
        "train_llama7b_lora16_f16",
        "train_lora16",
      ]);
      assertEquals(merged.steps.map((s) => [s.step, s.status]), [
        ["matmul", 0],
        ["train_fp32", 0],
        ["train_lora16", 0],
        ["train_llama7b_lora16_f16", 0],
        ["eval", 0],
        ["generate", 0],
      ]);
      for (
        const key of [
          "train_fp32.vsTorchFp32",
          "train_fp32.vsTorchBf16",
          "train_lora16.vsTorchLora",
          "eval.batchingGain",
          "generate.stepsPerSubmitGain",
          "matmul.64x64x64.NT.vsCublasSgemm",
        ]
      ) assert(merged.ratios[key] > 0, `ratio ${key} = ${merged.ratios[key]}`);
      assertEquals(merged.torch?.header, "torch 2.5.1 NVIDIA H100 80GB HBM3");
      assert(
        merged.matmul && merged.matmul.rows.length === 6,
        "two sizes × three transposes of bench:matmul",
      );
      assertEquals(merged.card, merged.adapter?.description, "without nvidia-smi the adapter names the card");
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
);
