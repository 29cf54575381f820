/**
 * Merges one comparison run (bench/gpu_compare.sh) into a single JSON: the card, PyTorch's reference
 * figures, every benchmark's report, the step timings, and all ratios side by side — ours over PyTorch's
 * (matmul over cuBLAS SGEMM, training tokens/s over HF transformers) and the batching gains.
 *
 * ```sh
 * deno run --allow-read --allow-write bench/merge_results.ts --parts /tmp/parts --torch /tmp/parts/torch.txt \
 *   --card "NVIDIA H100 80GB HBM3" --out bench/results/2026-11-20-nvidia-h100-80gb-hbm3.json
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { BenchReport } from "./report.ts";
import { parseTorchReference, type TorchReference } from "./torch_reference.ts";

const USAGE =
  `usage: deno run --allow-read --allow-write bench/merge_results.ts --parts DIR --out FILE [options]
  --parts DIR     folder of the run's JSON files: benchmark reports (named by file) and bench:matmul's output
  --out FILE      the merged JSON to write
  --torch FILE    captured output of torch_reference.py
  --tuning FILE   the matmul tuning file to embed
  --timings FILE  tab-separated step, seconds, exit status lines written by gpu_compare.sh
  --card NAME     the card's name (nvidia-smi); default: the adapter of the first report
  --help`;

/** bench:matmul's JSON. */
interface MatmulReport {
  describe: string;
  rows: { M: number; N: number; K: number; trans: string; bDtype: string; kernel: string; gflops: number }[];
}

/** One line of the timings file. */
interface StepTiming {
  step: string;
  seconds: number;
  status: number;
}

/**
 * The merged file.
 * @example
 * ```ts
 * const merged = JSON.parse(await Deno.readTextFile("bench/results/2026-11-20-nvidia-h100.json")) as MergedResults;
 * merged.ratios["train_fp32.vsTorchFp32"];
 * ```
 */
export interface MergedResults {
  date: string;
  card: string;
  adapter: BenchReport["adapter"] | null;
  torch: TorchReference | null;
  matmul: MatmulReport | null;
  tuning: unknown;
  runs: Record<string, BenchReport>;
  steps: StepTiming[];
  /** `<run>.<ratio>` for every report's ratios, and `matmul.<M>x<N>x<K>.<op>.vsCublasSgemm`. */
  ratios: Record<string, number>;
}

function isBenchReport(x: unknown): x is BenchReport {
  const r = x as BenchReport;
  return typeof r === "object" && r !== null && typeof r.script === "string" && typeof r.figures === "object";
}

function isMatmulReport(x: unknown): x is MatmulReport {
  const r = x as MatmulReport;
  return typeof r === "object" && r !== null && Array.isArray(r.rows) && typeof r.describe === "string";
}

async function readJson(path: string): Promise<unknown> {
  const text = await Deno.readTextFile(path);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not JSON (${(e as Error).message})`);
  }
}

/** Reports by run name (the file name without `.json`) and the matmul report, from `dir`. */
async function readParts(
  dir: string,
): Promise<{ runs: Record<string, BenchReport>; matmul: MatmulReport | null }> {
  const runs: Record<string, BenchReport> = {};
  let matmul: MatmulReport | null = null;
  const names = [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.endsWith(".json")).map((e) =>
    e.name
  );
  for (const name of names.sort()) {
    const json = await readJson(`${dir}/${name}`);
    if (isBenchReport(json)) runs[name.slice(0, -".json".length)] = json;
    else if (isMatmulReport(json)) matmul = json;
  }
  return { runs, matmul };
}

function parseTimings(text: string, file: string): StepTiming[] {
  return text.split("\n").filter((l) => l.trim()).map((line, i) => {
    const [step, seconds, status] = line.split("\t");
    const t = { step, seconds: Number(seconds), status: Number(status) };
    if (!step || !Number.isFinite(t.seconds) || !Number.isInteger(t.status)) {
      throw new Error(
        `${file}:${i + 1}: expected "step<TAB>seconds<TAB>status", got ${JSON.stringify(line)}`,
      );
    }
    return t;
  });
}

/**
 * Every ratio of the run under one flat namespace: each report's own ratios, and our square matmuls over
 * cuBLAS SGEMM (TF32 off, the fair f32 comparison) at the same size.
 * @example
 * ```ts
 * collectRatios(runs, matmul, torch)["train_fp32.vsTorchFp32"]; // 0.41
 * ```
 */
export function collectRatios(
  runs: Record<string, BenchReport>,
  matmul: MatmulReport | null,
  torch: TorchReference | null,
): Record<string, number> {
  const ratios: Record<string, number> = {};
  for (const [run, report] of Object.entries(runs)) {
    for (const [name, value] of Object.entries(report.ratios)) ratios[`${run}.${name}`] = value;
  }
  for (const row of matmul?.rows ?? []) {
    const sgemm = torch?.matmul.find((t) => t.n === row.M && !t.tf32 && t.dtype === "torch.float32");
    if (!sgemm || row.M !== row.N || row.N !== row.K || row.bDtype !== "f32") continue;
    ratios[`matmul.${row.M}x${row.N}x${row.K}.${row.trans}.vsCublasSgemm`] = row.gflops / 1000 / sgemm.tflops;
  }
  return ratios;
}

/**
 * Builds the merged results from their parts.
 * @example
 * ```ts
 * const merged = await mergeResults({ parts: "/tmp/parts", torch: "/tmp/parts/torch.txt" });
 * ```
 */
export async function mergeResults(
  o: { parts: string; torch?: string; tuning?: string; timings?: string; card?: string },
): Promise<MergedResults> {
  const { runs, matmul } = await readParts(o.parts);
  const torch = o.torch ? parseTorchReference(await Deno.readTextFile(o.torch), o.torch) : null;
  const first = Object.values(runs)[0];
  const card = o.card || first?.adapter.description || matmul?.describe || "unknown";
  return {
    date: new Date().toISOString(),
    card,
    adapter: first?.adapter ?? null,
    torch,
    matmul,
    tuning: o.tuning ? await readJson(o.tuning).catch(() => null) : null,
    runs,
    steps: o.timings ? parseTimings(await Deno.readTextFile(o.timings), o.timings) : [],
    ratios: collectRatios(runs, matmul, torch),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      parts: { type: "string" },
      out: { type: "string" },
      torch: { type: "string" },
      tuning: { type: "string" },
      timings: { type: "string" },
      card: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (!values.parts || !values.out) throw new Error(`--parts and --out are required\n${USAGE}`);
  const merged = await mergeResults({ ...values, parts: values.parts });
  await Deno.writeTextFile(values.out, JSON.stringify(merged, null, 2) + "\n");
  console.log(`card: ${merged.card}; runs: ${Object.keys(merged.runs).join(", ") || "none"}`);
  for (const [name, value] of Object.entries(merged.ratios)) {
    console.log(`  ${name.padEnd(48)} ${value.toFixed(3)}`);
  }
  console.log(`wrote ${values.out}`);
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`merge_results: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
