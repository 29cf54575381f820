/**
 * The JSON report every benchmark script writes with `--json`, and the adapter summary it holds.
 *
 * @module
 */
import type { Gpu } from "../gpu/runtime.ts";

/**
 * What every script's `--json` file holds.
 * @example
 * ```ts
 * const r = JSON.parse(await Deno.readTextFile("train.json")) as BenchReport;
 * console.log(r.adapter.description, r.figures.tokensPerSec, r.ratios.vsTorchFp32);
 * ```
 */
export interface BenchReport {
  /** `train_step`, `eval_throughput` or `generate`. */
  script: string;
  /** The preset's name (`tinyllama`; `tinyllama+` when flags changed the shape). */
  preset: string;
  shape: Record<string, number>;
  adapter: {
    description: string;
    isFallback: boolean;
    vendor: string;
    architecture: string;
    backend: string;
    /** `gpu.describe()`: the line printed first. */
    line: string;
  };
  /** The run's settings (batch, steps, …). */
  settings: Record<string, unknown>;
  /** Measured figures (`…Ms`, `…PerSec`, `…Bytes`); every one positive. */
  figures: Record<string, number>;
  /** Our figure over a baseline's (> 1: we are faster). */
  ratios: Record<string, number>;
  /** Anything else worth keeping (the baseline's own numbers, notes). */
  extra?: Record<string, unknown>;
  /** ISO time the run ended. */
  date: string;
}

/**
 * The adapter part of a report.
 * @example
 * ```ts
 * adapterSummary(gpu).isFallback; // true on the CPU adapter
 * ```
 */
export function adapterSummary(gpu: Gpu): BenchReport["adapter"] {
  const r = gpu.report;
  return {
    description: r.description,
    isFallback: r.isFallback,
    vendor: r.vendor,
    architecture: r.architecture,
    backend: r.backend,
    line: gpu.describe(),
  };
}

/**
 * Writes `report` as JSON (creating the folder) and says so.
 * @example
 * ```ts
 * await writeReport("bench/results/train.json", report);
 * ```
 */
export async function writeReport(path: string, report: BenchReport): Promise<void> {
  for (const [name, value] of Object.entries(report.figures)) {
    if (!(Number.isFinite(value) && value > 0)) {
      throw new Error(`figure ${name} is ${value}, not a positive number`);
    }
  }
  const dir = path.replace(/[^/]*$/, "");
  if (dir) await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(path, JSON.stringify(report, null, 2) + "\n");
  console.log(`wrote ${path}`);
}
