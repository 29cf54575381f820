/**
 * Matrix multiplication, `C[M,N] = alpha · op(A) · op(B) (+ C)`, in every transpose combination that
 * training needs: a linear layer's forward `y = x·Wᵀ` is NT, `dX = dY·W` is NN, `dW += dYᵀ·X` is TN.
 *
 * The WGSL is generated per tile shape ({@link MatmulConfig}, see `matmul_codegen.ts`). Each adapter gets
 * a default shape; {@link autotuneMatmul} times the candidates on the adapter at hand, remembers the
 * winner per transpose combination and shape class, and can keep that choice in a JSON file so a GPU
 * pays for tuning once.
 *
 * @module
 */
import { type Dispatch, f32, type Gpu, grid, type Tensor } from "../gpu/runtime.ts";
import {
  type MatmulConfig,
  matmulConfigProblem,
  matmulSharedBytes,
  matmulTile,
  type MatmulVariant,
  matmulWgsl,
  NAIVE_BLOCK,
  naiveMatmulWgsl,
} from "./matmul_codegen.ts";

export type { MatmulConfig } from "./matmul_codegen.ts";

/**
 * Arguments of {@link matmul} and {@link matmulNaive}.
 * @example
 * ```ts
 * // dW[out, in] += dY[tokens, out]ᵀ · X[tokens, in]
 * const args: MatmulArgs = { a: dy, b: x, c: dw, M: out, N: inDim, K: tokens, transA: true, accumulate: true };
 * ```
 */
export interface MatmulArgs {
  /** f32, stored [M, K], or [K, M] when `transA`. */
  a: Tensor;
  /** f32 or f16 (f16 needs `gpu.hasF16`), stored [K, N], or [N, K] when `transB`. */
  b: Tensor;
  /** f32 [M, N]: overwritten, or added to when `accumulate`. Must not share a buffer with `a` or `b`. */
  c: Tensor;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  /** Add the product to C instead of overwriting it (parameter gradients). */
  accumulate?: boolean;
  /** Scale of the product (default 1); the old C is added unscaled. */
  alpha?: number;
  /** Tile shape to use instead of the tuned or default one. */
  config?: MatmulConfig;
}

/**
 * What a kernel choice depends on: sizes, layouts and B's element type.
 * @example
 * ```ts
 * const decode: MatmulShape = { M: 1, N: 2048, K: 2048, transB: true, bF16: true };
 * ```
 */
export interface MatmulShape {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  /** B stored as f16. */
  bF16?: boolean;
}

/**
 * The candidate tile shapes. `reg*` are register-blocked without workgroup memory (the CPU adapter's
 * and one-token decoding's choice); `tile*` stage tiles in workgroup memory, after the design that
 * reached 23.6–31.5 TFLOP/s on an H100 (128×128 tiles, 256 threads, 8×8 outputs each).
 * @example
 * ```ts
 * const tiled = MATMUL_CONFIGS.filter((c) => c.tileK !== undefined);
 * ```
 */
export const MATMUL_CONFIGS: readonly MatmulConfig[] = [
  { name: "reg1x4", rowsPerThread: 1, vec4ColsPerThread: 1, workgroup: [64, 1] },
  { name: "reg4x4", rowsPerThread: 4, vec4ColsPerThread: 1, workgroup: [64, 1] },
  { name: "reg8x4", rowsPerThread: 8, vec4ColsPerThread: 1, workgroup: [64, 1] },
  { name: "reg8x8", rowsPerThread: 8, vec4ColsPerThread: 2, workgroup: [16, 4] },
  { name: "reg8x16", rowsPerThread: 8, vec4ColsPerThread: 4, workgroup: [8, 8] },
  { name: "tile64x64k8", rowsPerThread: 4, vec4ColsPerThread: 1, workgroup: [16, 16], tileK: 8 },
  { name: "tile128x128k8", rowsPerThread: 8, vec4ColsPerThread: 2, workgroup: [16, 16], tileK: 8 },
  tile128("tile128x128k8p", 8),
  tile128("tile128x128k16p", 16),
];

function tile128(name: string, tileK: number): MatmulConfig {
  return { name, rowsPerThread: 8, vec4ColsPerThread: 2, workgroup: [16, 16], tileK, prefetch: true };
}

function configNamed(name: string): MatmulConfig {
  const c = MATMUL_CONFIGS.find((x) => x.name === name);
  if (!c) throw new Error(`no matmul config named "${name}"`);
  return c;
}

/**
 * Why `config` cannot run on `gpu` (workgroup size or memory over the device's limits), or `undefined`.
 * @example
 * ```ts
 * const usable = MATMUL_CONFIGS.filter((c) => !matmulConfigUnfit(gpu, c));
 * ```
 */
export function matmulConfigUnfit(gpu: Gpu, config: MatmulConfig): string | undefined {
  const problem = matmulConfigProblem(config);
  if (problem) return problem;
  const [wx, wy] = config.workgroup;
  const l = gpu.limits;
  if (wx * wy > l.maxComputeInvocationsPerWorkgroup) {
    return `${wx * wy} threads per workgroup; this device allows ${l.maxComputeInvocationsPerWorkgroup}`;
  }
  if (wx > l.maxComputeWorkgroupSizeX || wy > l.maxComputeWorkgroupSizeY) {
    return `workgroup [${wx}, ${wy}] exceeds this device's [${l.maxComputeWorkgroupSizeX}, ${l.maxComputeWorkgroupSizeY}]`;
  }
  const shared = matmulSharedBytes(config);
  if (shared > l.maxComputeWorkgroupStorageSize) {
    return `${shared} B of workgroup memory; this device allows ${l.maxComputeWorkgroupStorageSize}`;
  }
  return undefined;
}

/**
 * The tile shape used when nothing was tuned. A few rows (decoding): one workgroup row with as many rows
 * per thread as there are rows, since taller tiles would recompute clamped rows. Otherwise register-blocked
 * 8×8 on the CPU adapter (workgroup-memory tiles measured slower there); on a GPU, 64×64 tiles while
 * 128×128 tiles would leave it short of workgroups, and prefetched 128×128×8 tiles beyond.
 *
 * @example
 * ```ts
 * defaultMatmulConfig(gpu, { M: 1, N: 2048, K: 2048, transB: true }).name; // "reg1x4"
 * ```
 */
export function defaultMatmulConfig(gpu: Gpu, shape: MatmulShape): MatmulConfig {
  if (shape.M <= 2) return configNamed("reg1x4");
  if (shape.M <= 4) return configNamed("reg4x4");
  if (shape.M <= 8) return configNamed("reg8x4");
  if (gpu.report.isFallback) return configNamed("reg8x8");
  const bigTiles = Math.ceil(shape.M / 128) * Math.ceil(shape.N / 128);
  const name = bigTiles >= 256 ? "tile128x128k8p" : "tile64x64k8";
  const config = configNamed(name);
  return matmulConfigUnfit(gpu, config) ? configNamed("reg8x8") : config;
}

// ---------------------------------------------------------------------------------------------------
// Tuning cache: adapter description → shape class → the winning config.

/**
 * One remembered autotuning decision.
 * @example
 * ```ts
 * const entry: MatmulTuningEntry = { config: MATMUL_CONFIGS[3], gflops: 21.5 };
 * ```
 */
export interface MatmulTuningEntry {
  config: MatmulConfig;
  /** Throughput the winner reached when tuned, for the record. */
  gflops: number;
}

const tuning = new Map<string, Map<string, MatmulTuningEntry>>();

function adapterKey(gpu: Gpu): string {
  return gpu.report.description;
}

const SIZE_CLASSES = [2, 8, 128, 1024];

function sizeClass(n: number): string {
  const bound = SIZE_CLASSES.find((b) => n <= b);
  return bound === undefined ? `gt${SIZE_CLASSES[SIZE_CLASSES.length - 1]}` : `le${bound}`;
}

/**
 * `NN`, `NT`, `TN` or `TT`: the transpose combination of A and B.
 * @example
 * ```ts
 * transposeName({ transB: true }); // "NT"
 * ```
 */
export function transposeName(shape: { transA?: boolean; transB?: boolean }): string {
  return `${shape.transA ? "T" : "N"}${shape.transB ? "T" : "N"}`;
}

/**
 * The key under which tuning results are kept: the transpose combination, B's type and a coarse size
 * class of M, N and K (≤2, ≤8, ≤128, ≤1024, larger), so one tuning run covers similar shapes.
 * @example
 * ```ts
 * matmulShapeClass({ M: 4096, N: 2048, K: 512, transB: true }); // "NT:gt1024.gt1024.le1024"
 * ```
 */
export function matmulShapeClass(shape: MatmulShape): string {
  const f16 = shape.bF16 ? "-f16" : "";
  return `${transposeName(shape)}${f16}:${sizeClass(shape.M)}.${sizeClass(shape.N)}.${sizeClass(shape.K)}`;
}

/**
 * The config {@link matmul} uses for `shape` on `gpu`: the tuned winner when there is one, else
 * {@link defaultMatmulConfig}.
 * @example
 * ```ts
 * console.log(matmulConfigFor(gpu, { M: 512, N: 512, K: 512 }).name);
 * ```
 */
export function matmulConfigFor(gpu: Gpu, shape: MatmulShape): MatmulConfig {
  return tuning.get(adapterKey(gpu))?.get(matmulShapeClass(shape))?.config ?? defaultMatmulConfig(gpu, shape);
}

/**
 * Forgets every tuning result held in memory (files are untouched).
 * @example
 * ```ts
 * clearMatmulTuning();
 * ```
 */
export function clearMatmulTuning(): void {
  tuning.clear();
}

/** On-disk form of the tuning cache. */
interface TuningFile {
  version: 1;
  adapters: Record<string, Record<string, MatmulTuningEntry>>;
}

/**
 * Writes every tuning result held in memory (all adapters) as JSON to `path`.
 * @example
 * ```ts
 * await saveMatmulTuning("runs/matmul-tuning.json");
 * ```
 */
export async function saveMatmulTuning(path: string): Promise<void> {
  const file: TuningFile = { version: 1, adapters: {} };
  for (const [adapter, entries] of tuning) file.adapters[adapter] = Object.fromEntries(entries);
  await Deno.writeTextFile(path, JSON.stringify(file, null, 2) + "\n");
}

/**
 * Reads tuning results saved by {@link saveMatmulTuning} from `path` and merges them into memory (entries
 * in the file win). Returns how many entries were read. Throws naming the file and field on bad JSON.
 * @example
 * ```ts
 * const n = await loadMatmulTuning("runs/matmul-tuning.json");
 * ```
 */
export async function loadMatmulTuning(path: string): Promise<number> {
  const text = await Deno.readTextFile(path);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(`${path}: not JSON (${(e as Error).message})`);
  }
  const parsed = parseTuningFile(raw, path);
  let count = 0;
  for (const [adapter, entries] of Object.entries(parsed.adapters)) {
    const map = tuning.get(adapter) ?? new Map<string, MatmulTuningEntry>();
    for (const [key, entry] of Object.entries(entries)) {
      map.set(key, entry);
      count++;
    }
    tuning.set(adapter, map);
  }
  return count;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseTuningFile(raw: unknown, path: string): TuningFile {
  if (!isRecord(raw) || raw.version !== 1 || !isRecord(raw.adapters)) {
    throw new TypeError(`${path}: expected {"version": 1, "adapters": {...}} as saveMatmulTuning writes`);
  }
  const adapters: TuningFile["adapters"] = {};
  for (const [adapter, entries] of Object.entries(raw.adapters)) {
    if (!isRecord(entries)) throw new TypeError(`${path}: adapters["${adapter}"]: expected an object`);
    adapters[adapter] = {};
    for (const [key, entry] of Object.entries(entries)) {
      const where = `${path}: adapters["${adapter}"]["${key}"]`;
      adapters[adapter][key] = parseTuningEntry(entry, where);
    }
  }
  return { version: 1, adapters };
}

function parseTuningEntry(entry: unknown, where: string): MatmulTuningEntry {
  if (!isRecord(entry) || typeof entry.gflops !== "number" || !isRecord(entry.config)) {
    throw new TypeError(`${where}: expected {"config": {...}, "gflops": number}`);
  }
  const c = entry.config;
  const wg = c.workgroup;
  if (
    typeof c.name !== "string" || typeof c.rowsPerThread !== "number" ||
    typeof c.vec4ColsPerThread !== "number" || !Array.isArray(wg) || wg.length !== 2 ||
    !wg.every((n) => typeof n === "number") ||
    (c.tileK !== undefined && typeof c.tileK !== "number") ||
    (c.prefetch !== undefined && typeof c.prefetch !== "boolean")
  ) {
    throw new TypeError(
      `${where}.config: expected {name, rowsPerThread, vec4ColsPerThread, workgroup: [x, y], tileK?, prefetch?}`,
    );
  }
  const config: MatmulConfig = {
    name: c.name,
    rowsPerThread: c.rowsPerThread,
    vec4ColsPerThread: c.vec4ColsPerThread,
    workgroup: [wg[0], wg[1]],
    ...(c.tileK !== undefined ? { tileK: c.tileK as number } : {}),
    ...(c.prefetch !== undefined ? { prefetch: c.prefetch as boolean } : {}),
  };
  const problem = matmulConfigProblem(config);
  if (problem) throw new RangeError(`${where}.config: ${problem}`);
  return { config, gflops: entry.gflops };
}

// ---------------------------------------------------------------------------------------------------
// Dispatch.

function checkDim(value: number, name: string, label: string): void {
  if (!Number.isInteger(value) || value < 1 || value > 0xffffffff) {
    throw new RangeError(`${label}: ${name} = ${value}; expected a positive integer`);
  }
}

function checkTensor(t: Tensor, name: string, need: number, dtypes: readonly string[], label: string): void {
  if (!dtypes.includes(t.dtype)) {
    throw new TypeError(
      `${label}: ${name} ("${t.label ?? "tensor"}") is ${t.dtype}; expected ${dtypes.join(" or ")}`,
    );
  }
  if (t.length < need) {
    throw new RangeError(
      `${label}: ${name} ("${t.label ?? "tensor"}") has ${t.length} elements; the shape needs ${need}`,
    );
  }
}

function validate(gpu: Gpu, args: MatmulArgs, label: string): void {
  checkDim(args.M, "M", label);
  checkDim(args.N, "N", label);
  checkDim(args.K, "K", label);
  if (args.M * args.N > 0xffffffff || args.M * args.K > 0xffffffff || args.K * args.N > 0xffffffff) {
    throw new RangeError(`${label}: ${args.M}x${args.N}x${args.K} has a matrix past 2^32 elements`);
  }
  checkTensor(args.a, args.transA ? "a [K, M]" : "a [M, K]", args.M * args.K, ["f32"], label);
  checkTensor(args.b, args.transB ? "b [N, K]" : "b [K, N]", args.K * args.N, ["f32", "f16"], label);
  checkTensor(args.c, "c [M, N]", args.M * args.N, ["f32"], label);
  if (args.b.dtype === "f16" && !gpu.hasF16) {
    throw new TypeError(`${label}: b is f16 but ${gpu.report.description} has no shader-f16`);
  }
  if (args.c.buffer === args.a.buffer || args.c.buffer === args.b.buffer) {
    // WebGPU forbids one buffer bound both read-only and writable in a dispatch, whatever the offsets.
    throw new RangeError(
      `${label}: c shares a GPU buffer with ${args.c.buffer === args.a.buffer ? "a" : "b"}`,
    );
  }
  if (args.alpha !== undefined && !Number.isFinite(args.alpha)) {
    throw new RangeError(`${label}: alpha = ${args.alpha}; expected a finite number`);
  }
}

/** The code variant for these arguments: vec4 loads wherever the contiguous axis allows them. */
function variantFor(config: MatmulConfig, args: MatmulArgs): MatmulVariant {
  const tiled = config.tileK !== undefined;
  const rowGroupOf4 = config.rowsPerThread % 4 === 0;
  return {
    transA: Boolean(args.transA),
    transB: Boolean(args.transB),
    bF16: args.b.dtype === "f16",
    vecA: !tiled && (args.transA ? rowGroupOf4 && args.M % 4 === 0 : args.K % 4 === 0),
    vecB: !tiled && (args.transB ? args.K % 4 === 0 : args.N % 4 === 0),
  };
}

function uniforms(args: MatmulArgs, tilesN: number) {
  return [args.M, args.N, args.K, tilesN, f32(args.alpha ?? 1), args.accumulate ? 1 : 0];
}

/**
 * Workgroups that cover an M×N output with `config`'s tiles (folded into 2-D past 65,535 tiles) and the
 * number of tiles per row of tiles, which the kernel needs to unfold them.
 * @example
 * ```ts
 * matmulLaunch(MATMUL_CONFIGS[0], 16384, 128256).workgroups; // every entry <= 65535
 * ```
 */
export function matmulLaunch(
  config: MatmulConfig,
  M: number,
  N: number,
): { workgroups: [number, number, number]; tilesN: number } {
  const { rows, cols } = matmulTile(config);
  const tilesN = Math.ceil(N / cols);
  return { workgroups: grid(Math.ceil(M / rows) * tilesN, 1), tilesN };
}

/**
 * Records `C = alpha · op(A) · op(B)` (`+ C` when `accumulate`) with the tuned, given or default tile
 * shape. Never submits: pass the result to `gpu.run`.
 *
 * @example
 * ```ts
 * // y[tokens, out] = x[tokens, in] · W[out, in]ᵀ
 * gpu.run([matmul(gpu, { a: x, b: w, c: y, M: tokens, N: out, K: inDim, transB: true })]);
 * ```
 */
export function matmul(gpu: Gpu, args: MatmulArgs): Dispatch {
  const label = `matmul ${transposeName(args)} ${args.M}x${args.N}x${args.K}`;
  validate(gpu, args, label);
  const shape = { ...args, bF16: args.b.dtype === "f16" };
  const config = args.config ?? matmulConfigFor(gpu, shape);
  const unfit = matmulConfigUnfit(gpu, config);
  if (unfit) throw new RangeError(`${label}: config "${config.name}": ${unfit}`);
  const { workgroups, tilesN } = matmulLaunch(config, args.M, args.N);
  return gpu.dispatch(
    matmulWgsl(config, variantFor(config, args)),
    [args.a, args.b, args.c],
    workgroups,
    uniforms(args, tilesN),
    `matmul.${config.name}.${transposeName(args)}`,
  );
}

/**
 * The same product with one output per thread and no blocking: the baseline that benchmarks compare
 * against. `config` is ignored.
 * @example
 * ```ts
 * gpu.run([matmulNaive(gpu, { a, b, c, M: 64, N: 64, K: 64 })]);
 * ```
 */
export function matmulNaive(gpu: Gpu, args: MatmulArgs): Dispatch {
  const label = `matmulNaive ${transposeName(args)} ${args.M}x${args.N}x${args.K}`;
  validate(gpu, args, label);
  const variant: MatmulVariant = {
    transA: Boolean(args.transA),
    transB: Boolean(args.transB),
    bF16: args.b.dtype === "f16",
    vecA: false,
    vecB: false,
  };
  const tilesN = Math.ceil(args.N / NAIVE_BLOCK);
  return gpu.dispatch(
    naiveMatmulWgsl(variant),
    [args.a, args.b, args.c],
    grid(Math.ceil(args.M / NAIVE_BLOCK) * tilesN, 1),
    uniforms(args, tilesN),
    `matmul.naive.${transposeName(args)}`,
  );
}

// ---------------------------------------------------------------------------------------------------
// Autotuning.

/**
 * Options of {@link autotuneMatmul}.
 * @example
 * ```ts
 * const opts: AutotuneOptions = { reps: 5, cacheFile: "runs/matmul-tuning.json", log: console.log };
 * ```
 */
export interface AutotuneOptions {
  /** Configs to time (default: every one of {@link MATMUL_CONFIGS} that fits the device). */
  candidates?: readonly MatmulConfig[];
  /** Timed runs per candidate (default: as {@link timeDispatch} chooses, about 0.2 s each). */
  reps?: number;
  /** Retime shape classes that already have a result. */
  force?: boolean;
  /** Load results from this JSON file first (when it exists) and save all results there afterwards. */
  cacheFile?: string;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/**
 * What {@link autotuneMatmul} decided for one shape.
 * @example
 * ```ts
 * for (const r of await autotuneMatmul(gpu, shapes)) console.log(r.shapeClass, r.config.name, r.gflops);
 * ```
 */
export interface AutotuneResult {
  shape: MatmulShape;
  shapeClass: string;
  config: MatmulConfig;
  gflops: number;
  /** Every candidate's throughput; empty when the result came from the cache. */
  timings: { config: string; gflops: number }[];
  cached: boolean;
}

/**
 * Times the candidate configs on `gpu` for each shape (one per shape class; later shapes of a class
 * already tuned reuse the result), remembers the fastest per transpose combination and shape class for
 * this adapter, and from then on {@link matmul} uses it.
 *
 * @example
 * ```ts
 * await autotuneMatmul(gpu, [{ M: 4096, N: 2048, K: 2048, transB: true }], { cacheFile: "runs/tune.json" });
 * ```
 */
export async function autotuneMatmul(
  gpu: Gpu,
  shapes: readonly MatmulShape[],
  opts: AutotuneOptions = {},
): Promise<AutotuneResult[]> {
  if (opts.cacheFile && await fileExists(opts.cacheFile)) await loadMatmulTuning(opts.cacheFile);
  const candidates = (opts.candidates ?? MATMUL_CONFIGS).filter((c) => !matmulConfigUnfit(gpu, c));
  if (candidates.length === 0) throw new RangeError("autotuneMatmul: no candidate config fits this device");
  const adapter = adapterKey(gpu);
  const entries = tuning.get(adapter) ?? new Map<string, MatmulTuningEntry>();
  tuning.set(adapter, entries);
  const results: AutotuneResult[] = [];
  for (const shape of shapes) {
    const shapeClass = matmulShapeClass(shape);
    const known = entries.get(shapeClass);
    if (known && !opts.force) {
      results.push({ shape, shapeClass, ...known, timings: [], cached: true });
      continue;
    }
    const timings = await timeCandidates(gpu, shape, candidates, opts.reps);
    const best = timings.reduce((x, y) => (y.gflops > x.gflops ? y : x));
    const config = candidates.find((c) => c.name === best.config)!;
    entries.set(shapeClass, { config, gflops: best.gflops });
    opts.log?.(
      `autotune ${shapeClass} (${shape.M}x${shape.N}x${shape.K}): ${best.config} ${best.gflops.toFixed(1)} ` +
        `GFLOP/s [${timings.map((t) => `${t.config} ${t.gflops.toFixed(1)}`).join(", ")}]`,
    );
    results.push({ shape, shapeClass, config, gflops: best.gflops, timings, cached: false });
  }
  if (opts.cacheFile) await saveMatmulTuning(opts.cacheFile);
  return results;
}

async function fileExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Fills `t` with small values that do not change a kernel's speed (a repeating pattern in [-0.5, 0.5);
 * 0.5 for f16), writing 1 Mi elements at a time so large operands need no full-size host copy.
 * @example
 * ```ts
 * const b = gpu.tensor(32000 * 2048, "f16");
 * fillForTiming(gpu, b);
 * ```
 */
export function fillForTiming(gpu: Gpu, t: Tensor): void {
  const chunk = Math.min(t.length, 1 << 20);
  const data = t.dtype === "f16"
    ? new Uint16Array(chunk).fill(0x3800)
    : Float32Array.from({ length: chunk }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  for (let at = 0; at < t.length; at += chunk) {
    gpu.write(t, data.subarray(0, Math.min(chunk, t.length - at)), at);
  }
}

/** Operands of `shape`, filled for timing. */
function tuningOperands(gpu: Gpu, shape: MatmulShape): { a: Tensor; b: Tensor; c: Tensor } {
  const a = gpu.tensor(shape.M * shape.K, "f32", "tune.a");
  const b = gpu.tensor(shape.K * shape.N, shape.bF16 ? "f16" : "f32", "tune.b");
  const c = gpu.tensor(shape.M * shape.N, "f32", "tune.c");
  fillForTiming(gpu, a);
  fillForTiming(gpu, b);
  return { a, b, c };
}

/** Measurements aim at this much GPU time each, so fast kernels repeat and slow ones run once. */
const TARGET_MS = 200;

/**
 * Milliseconds one run of `dispatch` takes. One warm-up and one timed run come first; unless `reps` is
 * given, a run of 200 ms or more stands as the result and faster kernels are timed again over
 * enough repetitions (2 to 50) to fill that time.
 * @example
 * ```ts
 * const ms = await timeDispatch(gpu, matmul(gpu, args));
 * ```
 */
export async function timeDispatch(gpu: Gpu, dispatch: Dispatch, reps?: number): Promise<number> {
  const first = await gpu.time([dispatch], 1, 1);
  if (reps === undefined && first >= TARGET_MS) return first;
  const n = reps ?? Math.min(50, Math.max(2, Math.ceil(TARGET_MS / Math.max(first, 1e-3))));
  return await gpu.time([dispatch], n, 0);
}

/**
 * Throughput in GFLOP/s (2·M·N·K floating-point operations) of a product that took `ms`.
 * @example
 * ```ts
 * gflops(1024, 1024, 1024, 100); // 21.47...
 * ```
 */
export function gflops(M: number, N: number, K: number, ms: number): number {
  return (2 * M * N * K) / (ms * 1e6);
}

async function timeCandidates(
  gpu: Gpu,
  shape: MatmulShape,
  candidates: readonly MatmulConfig[],
  reps: number | undefined,
): Promise<{ config: string; gflops: number }[]> {
  const { a, b, c } = tuningOperands(gpu, shape);
  try {
    const out: { config: string; gflops: number }[] = [];
    for (const config of candidates) {
      const d = matmul(gpu, { a, b, c, M: shape.M, N: shape.N, K: shape.K, ...flags(shape), config });
      const ms = await timeDispatch(gpu, d, reps);
      out.push({ config: config.name, gflops: gflops(shape.M, shape.N, shape.K, ms) });
    }
    return out;
  } finally {
    for (const t of [a, b, c]) t.buffer.destroy();
  }
}

function flags(shape: MatmulShape): { transA: boolean; transB: boolean } {
  return { transA: Boolean(shape.transA), transB: Boolean(shape.transB) };
}
