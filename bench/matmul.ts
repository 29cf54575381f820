/**
 * Matmul benchmark: GFLOP/s of the kernel `matmul` picks (default or tuned) against the naive
 * one-output-per-thread kernel, measured in the same run, for the transposes training uses.
 *
 * ```sh
 * deno task bench:matmul                                   # squares (and model shapes on a GPU)
 * deno task bench:matmul --sizes 512,4096x2048x2048 --reps 5 --json runs/matmul.json
 * deno task bench:matmul --autotune --tuning runs/matmul-tuning.json
 * ```
 *
 * @module
 */
import { Gpu, type Tensor } from "../gpu/runtime.ts";
import {
  autotuneMatmul,
  fillForTiming,
  gflops,
  loadMatmulTuning,
  matmul,
  type MatmulArgs,
  matmulConfigFor,
  matmulNaive,
  type MatmulShape,
  timeDispatch,
  transposeName,
} from "../kernels/matmul.ts";
import { parseSettings, settingsHelp, type SettingsTable } from "../io/settings.ts";
import { BENCH_OUTPUT_SETTINGS } from "./shapes.ts";

/** Token count × hidden sizes of a 1B Llama (TinyLlama): attention/MLP projections and the vocabulary. */
const MODEL_SHAPES: readonly Shape[] = [
  { M: 4096, N: 2048, K: 2048 },
  { M: 4096, N: 5632, K: 2048 },
  { M: 4096, N: 32000, K: 2048 },
];

interface Shape {
  M: number;
  N: number;
  K: number;
}

interface Options {
  shapes: Shape[];
  trans: { transA: boolean; transB: boolean }[];
  reps?: number;
  f16: boolean;
  naive: boolean;
  autotune: boolean;
  tuning?: string;
  json?: string;
}

/** One row of results. */
interface Row {
  M: number;
  N: number;
  K: number;
  trans: string;
  bDtype: "f32" | "f16";
  kernel: string;
  ms: number;
  gflops: number;
  naiveMs?: number;
  naiveGflops?: number;
  ratio?: number;
}

/** The flags of bench:matmul: the shared output flags, then its own. */
const SETTINGS = {
  sizes: {
    name: "sizes",
    kind: "string",
    metavar: "LIST",
    parse: (text: string) => text.split(",").map(parseShape),
    defaultHelp: "256,512,1024 on a CPU adapter; also 2048, 4096 and model shapes on a GPU",
    help: "comma-separated N (for N×N×N) or MxNxK, e.g. 512,1024,4096x5632x2048",
  },
  trans: {
    name: "trans",
    kind: "string",
    metavar: "LIST",
    parse: (text: string) => text.split(",").map(parseTrans),
    defaultHelp: "NT,NN,TN, the ones training uses",
    help: "transpose combinations",
  },
  reps: {
    name: "reps",
    kind: "int",
    range: { min: 1 },
    defaultHelp: "enough for about 0.2 s",
    help: "timed repetitions per measurement",
  },
  f16: { name: "f16", kind: "bool", default: false, help: "store B as f16 (frozen base weights)" },
  naive: {
    name: "naive",
    kind: "bool",
    default: true,
    help: "time the naive baseline too (--no_naive skips it)",
  },
  autotune: {
    name: "autotune",
    kind: "bool",
    default: false,
    help: "time every candidate config first and use the winners",
  },
  tuning: {
    ...BENCH_OUTPUT_SETTINGS.tuning,
    help: "load tuning results from FILE (when it exists); with --autotune, save them there",
  },
  json: BENCH_OUTPUT_SETTINGS.json,
} satisfies SettingsTable;

const USAGE = settingsHelp(SETTINGS, { usage: "usage: deno task bench:matmul [options]" });

function parseShape(text: string): Shape {
  const parts = text.split("x").map((p) => Number(p));
  const ok = parts.every((n) => Number.isInteger(n) && n > 0);
  if (!ok || (parts.length !== 1 && parts.length !== 3)) {
    throw new Error(`--sizes: "${text}" is neither N nor MxNxK with positive integers`);
  }
  const [M, N = M, K = M] = parts;
  return { M, N, K };
}

function parseTrans(text: string): { transA: boolean; transB: boolean } {
  if (!/^[NT]{2}$/.test(text)) throw new Error(`--trans: "${text}" is not one of NN, NT, TN, TT`);
  return { transA: text[0] === "T", transB: text[1] === "T" };
}

function defaultShapes(gpu: Gpu): Shape[] {
  const squares = gpu.report.isFallback ? [256, 512, 1024] : [256, 512, 1024, 2048, 4096];
  const shapes = squares.map((n) => ({ M: n, N: n, K: n }));
  return gpu.report.isFallback ? shapes : [...shapes, ...MODEL_SHAPES];
}

function parseOptions(args: string[], gpu: Gpu): Options | undefined {
  const { values, help } = parseSettings(SETTINGS, args);
  if (help) return undefined;
  if (values.f16 && !gpu.hasF16) throw new Error(`--f16: ${gpu.report.description} has no shader-f16`);
  return {
    shapes: values.sizes ?? defaultShapes(gpu),
    trans: values.trans ?? "NT,NN,TN".split(",").map(parseTrans),
    reps: values.reps,
    f16: values.f16 ?? false,
    naive: values.naive ?? true,
    autotune: values.autotune ?? false,
    tuning: values.tuning,
    json: values.json,
  };
}

/** The first kernel timed in a process reads low (facts.md): run one for about half a second first. */
async function warmUp(gpu: Gpu): Promise<void> {
  const n = gpu.report.isFallback ? 256 : 2048;
  const a = gpu.tensor(n * n), b = gpu.tensor(n * n), c = gpu.tensor(n * n);
  const d = matmul(gpu, { a, b, c, M: n, N: n, K: n });
  const start = performance.now();
  while (performance.now() - start < 500) await timeDispatch(gpu, d, 2);
  for (const t of [a, b, c]) t.buffer.destroy();
}

function allocate(gpu: Gpu, s: Shape, f16: boolean): { a: Tensor; b: Tensor; c: Tensor } {
  const a = gpu.tensor(s.M * s.K, "f32", "bench.a");
  const b = gpu.tensor(s.K * s.N, f16 ? "f16" : "f32", "bench.b");
  const c = gpu.tensor(s.M * s.N, "f32", "bench.c");
  fillForTiming(gpu, a);
  fillForTiming(gpu, b);
  return { a, b, c };
}

async function measure(gpu: Gpu, args: MatmulArgs, opts: Options): Promise<Row> {
  const shape: MatmulShape = { ...args, bF16: opts.f16 };
  const ms = await timeDispatch(gpu, matmul(gpu, args), opts.reps);
  const row: Row = {
    M: args.M,
    N: args.N,
    K: args.K,
    trans: transposeName(args),
    bDtype: opts.f16 ? "f16" : "f32",
    kernel: matmulConfigFor(gpu, shape).name,
    ms,
    gflops: gflops(args.M, args.N, args.K, ms),
  };
  if (opts.naive) {
    row.naiveMs = await timeDispatch(gpu, matmulNaive(gpu, args), opts.reps);
    row.naiveGflops = gflops(args.M, args.N, args.K, row.naiveMs);
    row.ratio = row.gflops / row.naiveGflops;
  }
  return row;
}

function formatRow(r: Row): string {
  const shape = `${r.M}x${r.N}x${r.K}`.padEnd(18);
  const naive = r.naiveGflops === undefined
    ? ""
    : `${r.naiveGflops.toFixed(2).padStart(10)} ${`${r.ratio!.toFixed(1)}x`.padStart(8)}`;
  return `${shape} ${r.trans}  ${r.kernel.padEnd(16)} ${r.gflops.toFixed(1).padStart(9)}${naive}`;
}

async function main(): Promise<void> {
  const gpu = await Gpu.create();
  const opts = parseOptions(Deno.args, gpu);
  if (!opts) {
    console.log(USAGE);
    return;
  }
  console.log(`adapter: ${gpu.describe()}`);
  if (opts.tuning && !opts.autotune) {
    console.log(`tuning: ${await loadMatmulTuning(opts.tuning)} results from ${opts.tuning}`);
  }
  await warmUp(gpu);
  const shapes = opts.shapes.flatMap((s) => opts.trans.map((t) => ({ ...s, ...t, bF16: opts.f16 })));
  if (opts.autotune) {
    await autotuneMatmul(gpu, shapes, {
      reps: opts.reps,
      cacheFile: opts.tuning,
      log: (l) => console.log(l),
    });
  }
  console.log(
    `${"shape".padEnd(18)} op   ${"kernel".padEnd(16)}   GFLOP/s${opts.naive ? "      naive    ratio" : ""}`,
  );
  const rows: Row[] = [];
  for (const s of opts.shapes) {
    const { a, b, c } = allocate(gpu, s, opts.f16);
    for (const t of opts.trans) {
      const row = await measure(gpu, { a, b, c, ...s, ...t }, opts);
      rows.push(row);
      console.log(formatRow(row));
    }
    for (const x of [a, b, c]) x.buffer.destroy();
  }
  if (opts.json) {
    const report = { adapter: gpu.report, describe: gpu.describe(), date: new Date().toISOString(), rows };
    await Deno.writeTextFile(opts.json, JSON.stringify(report, null, 2) + "\n");
    console.log(`wrote ${opts.json}`);
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`bench:matmul: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
