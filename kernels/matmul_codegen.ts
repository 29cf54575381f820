/**
 * WGSL generation for the matmul family. Every kernel computes `C = alpha · op(A) · op(B) (+ C)` with
 * its accumulators in named `vec4<f32>` registers and every inner loop unrolled at generation time: a
 * private array indexed by a loop counter goes to local memory on NVIDIA and costs 16x (facts.md).
 *
 * Two shapes of kernel come out of here:
 * - register-blocked, no workgroup memory: each thread streams its rows of A and columns of B straight
 *   from storage, four k at a time. Fastest on the CPU adapter, and the decode (M = 1) choice anywhere.
 * - workgroup-memory tiles: the workgroup stages a BM×BK slice of A and a BK×BN slice of B in shared
 *   memory (optionally prefetching the next slice into registers while it computes on this one).
 *
 * Thread layout, shared by both: a thread owns `rowsPerThread` rows, in groups of 4 consecutive rows
 * spaced `workgroupY · 4` apart (or one contiguous block when fewer than 4), and `vec4ColsPerThread`
 * groups of 4 consecutive columns spaced `workgroupX · 4` apart, so neighbouring threads touch
 * neighbouring memory.
 *
 * @module
 */
import { WGSL_FLAT_INDEX } from "../gpu/runtime.ts";

/**
 * One tile shape of the matmul kernel. Without `tileK` the kernel is register-blocked; with it the
 * workgroup stages tiles of depth `tileK` in workgroup memory.
 *
 * @example
 * ```ts
 * const cfg: MatmulConfig = { name: "reg8x4", rowsPerThread: 8, vec4ColsPerThread: 1, workgroup: [8, 8] };
 * ```
 */
export interface MatmulConfig {
  /** Unique name; tuning caches refer to configs by it. */
  readonly name: string;
  /** Output rows per thread: 1, 2, 3, or a multiple of 4. */
  readonly rowsPerThread: number;
  /** Output columns per thread, in groups of 4. */
  readonly vec4ColsPerThread: number;
  /** Threads per workgroup along N (x) and along M (y). */
  readonly workgroup: readonly [number, number];
  /** Depth (BK) of the workgroup-memory tiles; absent for the register-blocked kernel. */
  readonly tileK?: number;
  /** Load the next tiles into registers while computing on the current ones (tiled kernel only). */
  readonly prefetch?: boolean;
}

/**
 * What besides the config changes the generated code: layouts, B's element type, vector loads.
 * @example
 * ```ts
 * const nt: MatmulVariant = { transA: false, transB: true, bF16: false, vecA: true, vecB: true };
 * ```
 */
export interface MatmulVariant {
  /** A is stored [K, M] instead of [M, K]. */
  readonly transA: boolean;
  /** B is stored [N, K] instead of [K, N]. */
  readonly transB: boolean;
  /** B holds f16 (needs `shader-f16`); A and C stay f32. */
  readonly bF16: boolean;
  /** Read A as `vec4` along its contiguous axis (that axis' length is a multiple of 4). */
  readonly vecA: boolean;
  /** Read B as `vec4` along its contiguous axis (that axis' length is a multiple of 4). */
  readonly vecB: boolean;
}

/**
 * Rows (BM) and columns (BN) of C that one workgroup of `config` produces.
 * @example
 * ```ts
 * matmulTile({ name: "r", rowsPerThread: 8, vec4ColsPerThread: 2, workgroup: [16, 4] }); // { rows: 32, cols: 128 }
 * ```
 */
export function matmulTile(config: MatmulConfig): { rows: number; cols: number } {
  return {
    rows: config.workgroup[1] * config.rowsPerThread,
    cols: config.workgroup[0] * config.vec4ColsPerThread * 4,
  };
}

/**
 * Workgroup memory in bytes that `config` declares (0 for the register-blocked kernel).
 * @example
 * ```ts
 * matmulSharedBytes({ name: "t", rowsPerThread: 8, vec4ColsPerThread: 2, workgroup: [16, 16], tileK: 8 }); // 8448
 * ```
 */
export function matmulSharedBytes(config: MatmulConfig): number {
  if (!config.tileK) return 0;
  return 16 * config.tileK * (tileStride(config, "A") + tileStride(config, "B"));
}

/**
 * vec4s per k-row of a workgroup tile: one more than the tile is wide, so the stores of a transposing
 * load (eight threads writing eight k-rows of one column) fall in different memory banks.
 */
function tileStride(config: MatmulConfig, which: "A" | "B"): number {
  const { rows, cols } = matmulTile(config);
  return (which === "A" ? rows : cols) / 4 + 1;
}

/**
 * Why `config` cannot be generated, or `undefined` when it can. Device limits are checked separately.
 *
 * @example
 * ```ts
 * matmulConfigProblem({ name: "bad", rowsPerThread: 6, vec4ColsPerThread: 1, workgroup: [8, 8] });
 * // "rowsPerThread 6: expected 1, 2, 3 or a multiple of 4"
 * ```
 */
export function matmulConfigProblem(config: MatmulConfig): string | undefined {
  const { rowsPerThread: tm, vec4ColsPerThread: vn, workgroup: [wx, wy], tileK } = config;
  const positive = (v: number) => Number.isInteger(v) && v > 0;
  if (!positive(tm) || (tm > 3 && tm % 4 !== 0)) {
    return `rowsPerThread ${tm}: expected 1, 2, 3 or a multiple of 4`;
  }
  if (!positive(vn)) return `vec4ColsPerThread ${vn}: expected a positive integer`;
  if (!positive(wx) || !positive(wy)) return `workgroup [${wx}, ${wy}]: expected positive integers`;
  if (tileK === undefined) {
    return config.prefetch ? "prefetch needs workgroup-memory tiles (tileK)" : undefined;
  }
  if (!positive(tileK)) return `tileK ${tileK}: expected a positive integer`;
  if (tm % 4 !== 0) return `rowsPerThread ${tm}: tiled kernels read A from workgroup memory as vec4`;
  const threads = wx * wy;
  const { rows, cols } = matmulTile(config);
  if ((rows * tileK) % threads !== 0 || (cols * tileK) % threads !== 0) {
    return `tile ${rows}x${cols}x${tileK} does not split evenly over ${threads} threads`;
  }
  return undefined;
}

/** The uniform block every matmul kernel reads, in {@link packUniform} order. */
const UNIFORMS = "struct P { M: u32, N: u32, K: u32, tilesN: u32, alpha: f32, accumulate: u32 }";

const LANE = ["x", "y", "z", "w"];

/** Storage declarations and the scalar/vec4 load helpers `ldA`, `ldB`, `ldA4`, `ldB4`. */
function bindings(v: MatmulVariant): string {
  const bt = v.bF16 ? "f16" : "f32";
  const aDecl = v.vecA ? "array<vec4<f32>>" : "array<f32>";
  const bDecl = v.vecB ? `array<vec4<${bt}>>` : `array<${bt}>`;
  const scalar = (name: string, vec: boolean) => vec ? `${name}[i >> 2u][i & 3u]` : `${name}[i]`;
  const lines = [
    v.bF16 ? "enable f16;" : "",
    `@group(0) @binding(0) var<storage, read> am: ${aDecl};`,
    `@group(0) @binding(1) var<storage, read> bm: ${bDecl};`,
    "@group(0) @binding(2) var<storage, read_write> cm: array<f32>;",
    UNIFORMS,
    "@group(0) @binding(3) var<uniform> p: P;",
    `fn ldA(i: u32) -> f32 { return ${scalar("am", v.vecA)}; }`,
    `fn ldB(i: u32) -> f32 { return f32(${scalar("bm", v.vecB)}); }`,
  ];
  // Vector helpers take a vec4 index; declared only where the binding is a vec4 array.
  if (v.vecA) lines.push("fn ldA4(i: u32) -> vec4<f32> { return am[i]; }");
  if (v.vecB) lines.push("fn ldB4(i: u32) -> vec4<f32> { return vec4<f32>(bm[i]); }");
  return lines.filter((l) => l !== "").join("\n") + "\n" + WGSL_FLAT_INDEX;
}

/** Row-group size: 4 rows read together, or the whole block when a thread has fewer than 4 rows. */
function rowGroup(config: MatmulConfig): number {
  return config.rowsPerThread % 4 === 0 ? 4 : config.rowsPerThread;
}

/** Entry point header, tile origin and the rows and columns this thread owns. */
function prologue(config: MatmulConfig): string {
  const { rows: bm, cols: bn } = matmulTile(config);
  const [wx, wy] = config.workgroup;
  const rg = rowGroup(config);
  const out: string[] = [
    `@compute @workgroup_size(${wx}, ${wy})`,
    "fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,",
    "        @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {",
    "  let tile = flat_group(wid, nwg);",
    "  let tileRow = tile / p.tilesN;",
    // Workgroups past the last tile exist only because grid() rounds up; they are uniform, so
    // returning before any barrier keeps the barriers in uniform control flow.
    `  if (tileRow * ${bm}u >= p.M) { return; }`,
    `  let m0 = tileRow * ${bm}u;`,
    `  let n0 = (tile % p.tilesN) * ${bn}u;`,
    "  let tx = lid.x;",
    "  let ty = lid.y;",
  ];
  for (let r = 0; r < config.rowsPerThread; r++) {
    const q = Math.floor(r / rg), i = r % rg;
    out.push(`  let row${r} = m0 + ${q * wy * rg}u + ty * ${rg}u + ${i}u;`);
  }
  for (let j = 0; j < config.vec4ColsPerThread; j++) {
    out.push(`  let col${j} = n0 + (${j * wx}u + tx) * 4u;`);
  }
  for (let r = 0; r < config.rowsPerThread; r++) {
    for (let j = 0; j < config.vec4ColsPerThread; j++) out.push(`  var acc${r}_${j} = vec4<f32>(0.0);`);
  }
  return out.join("\n");
}

/** Scales, optionally adds the old C, and stores what lies inside the matrix. */
function epilogue(config: MatmulConfig): string {
  const out: string[] = [];
  for (let r = 0; r < config.rowsPerThread; r++) {
    out.push(`  if (row${r} < p.M) {`);
    for (let j = 0; j < config.vec4ColsPerThread; j++) {
      for (let c = 0; c < 4; c++) {
        out.push(
          `    if (col${j} + ${c}u < p.N) { store(row${r} * p.N + col${j} + ${c}u, acc${r}_${j}.${
            LANE[c]
          }); }`,
        );
      }
    }
    out.push("  }");
  }
  return out.join("\n") + "\n}";
}

const STORE_FN = `
fn store(i: u32, v: f32) {
  cm[i] = fma(p.alpha, v, select(0.0, cm[i], p.accumulate != 0u));
}`;

/** `acc{r}_{j} += a(r) · b(j)` for every register, as FMAs. */
function fmaBlock(
  config: MatmulConfig,
  aValue: (r: number) => string,
  bVec: (j: number) => string,
  indent: string,
): string[] {
  const out: string[] = [];
  for (let r = 0; r < config.rowsPerThread; r++) {
    for (let j = 0; j < config.vec4ColsPerThread; j++) {
      out.push(`${indent}acc${r}_${j} = fma(vec4<f32>(${aValue(r)}), ${bVec(j)}, acc${r}_${j});`);
    }
  }
  return out;
}

/**
 * Register-blocked kernel body. Indices of rows and columns past the matrix edge are clamped to the last
 * row or column, so the hot loop loads without branches; those outputs are computed and never stored.
 */
function registerBody(config: MatmulConfig, v: MatmulVariant): string {
  const tm = config.rowsPerThread, vn = config.vec4ColsPerThread;
  const [, wy] = config.workgroup;
  const vecRowsA = v.transA && v.vecA; // vec4 of A runs along M: one load covers a row group
  const out: string[] = [];
  // Per-thread bases, computed once outside the k loop.
  for (let r = 0; r < tm; r++) {
    out.push(`  let ra${r} = min(row${r}, p.M - 1u);`);
    if (!v.transA) out.push(`  let aBase${r} = ra${r} * p.K;`);
  }
  if (vecRowsA) {
    for (let q = 0; q < tm / 4; q++) {
      out.push(`  let aCol${q} = min(m0 + ${q * wy * 4}u + ty * 4u, p.M - 4u) >> 2u;`);
    }
  }
  for (let j = 0; j < vn; j++) {
    if (!v.transB && v.vecB) out.push(`  let cb${j} = min(col${j}, p.N - 4u) >> 2u;`);
    for (let c = 0; c < 4; c++) {
      out.push(`  let cb${j}_${c} = min(col${j} + ${c}u, p.N - 1u);`);
      if (v.transB) out.push(`  let bBase${j}_${c} = cb${j}_${c} * p.K;`);
    }
  }
  if (vecRowsA) out.push("  let aRow = p.M >> 2u;");
  out.push("  var k = 0u;", "  for (; k + 4u <= p.K; k += 4u) {");
  // Loads of A: aval(r, kk) is the expression for A(row r, k + kk).
  let aval: (r: number, kk: number) => string;
  if (vecRowsA) {
    for (let q = 0; q < tm / 4; q++) {
      for (let kk = 0; kk < 4; kk++) out.push(`    let a${q}_${kk} = ldA4((k + ${kk}u) * aRow + aCol${q});`);
    }
    aval = (r, kk) => `a${Math.floor(r / 4)}_${kk}.${LANE[r % 4]}`;
  } else {
    for (let r = 0; r < tm; r++) {
      if (!v.transA && v.vecA) out.push(`    let a${r} = ldA4((aBase${r} + k) >> 2u);`);
      else {
        const idx = (kk: number) => v.transA ? `(k + ${kk}u) * p.M + ra${r}` : `aBase${r} + k + ${kk}u`;
        out.push(`    let a${r} = vec4<f32>(${[0, 1, 2, 3].map((kk) => `ldA(${idx(kk)})`).join(", ")});`);
      }
    }
    aval = (r, kk) => `a${r}.${LANE[kk]}`;
  }
  // Loads of B: bvec(kk, j) is the vec4 of B(k + kk, columns col_j .. col_j + 3).
  let bvec: (kk: number, j: number) => string;
  if (v.transB) {
    for (let j = 0; j < vn; j++) {
      for (let c = 0; c < 4; c++) {
        const load = v.vecB
          ? `ldB4((bBase${j}_${c} + k) >> 2u)`
          : `vec4<f32>(${[0, 1, 2, 3].map((kk) => `ldB(bBase${j}_${c} + k + ${kk}u)`).join(", ")})`;
        out.push(`    let bt${j}_${c} = ${load};`);
      }
    }
    bvec = (kk, j) => `vec4<f32>(${[0, 1, 2, 3].map((c) => `bt${j}_${c}.${LANE[kk]}`).join(", ")})`;
  } else {
    for (let kk = 0; kk < 4; kk++) {
      out.push(`    let bRow${kk} = (k + ${kk}u) * p.N;`);
      for (let j = 0; j < vn; j++) {
        const load = v.vecB
          ? `ldB4((bRow${kk} >> 2u) + cb${j})`
          : `vec4<f32>(${[0, 1, 2, 3].map((c) => `ldB(bRow${kk} + cb${j}_${c})`).join(", ")})`;
        out.push(`    let b${kk}_${j} = ${load};`);
      }
    }
    bvec = (kk, j) => `b${kk}_${j}`;
  }
  for (let kk = 0; kk < 4; kk++) {
    out.push(...fmaBlock(config, (r) => aval(r, kk), (j) => bvec(kk, j), "    "));
  }
  out.push("  }");
  // The last K % 4 steps, one k at a time with scalar loads.
  out.push("  for (; k < p.K; k++) {");
  for (let r = 0; r < tm; r++) {
    out.push(`    let s${r} = ldA(${v.transA ? `k * p.M + ra${r}` : `aBase${r} + k`});`);
  }
  for (let j = 0; j < vn; j++) {
    const el = (c: number) => v.transB ? `ldB(bBase${j}_${c} + k)` : `ldB(k * p.N + cb${j}_${c})`;
    out.push(`    let t${j} = vec4<f32>(${[0, 1, 2, 3].map(el).join(", ")});`);
  }
  out.push(...fmaBlock(config, (r) => `s${r}`, (j) => `t${j}`, "    "));
  out.push("  }");
  return out.join("\n");
}

/**
 * Global → register loads of one A and one B tile starting at `k0`: `pa{i}`/`pb{i}` hold the elements
 * this thread stages. Neighbouring threads read along each matrix's contiguous axis.
 */
function tileLoads(config: MatmulConfig, v: MatmulVariant, k0: string, declare: string): string[] {
  const { rows: bm, cols: bn } = matmulTile(config);
  const bk = config.tileK!;
  const threads = config.workgroup[0] * config.workgroup[1];
  const out: string[] = [];
  for (let i = 0; i < (bm * bk) / threads; i++) {
    const e = `(li + ${i * threads}u)`;
    const [kk, mm] = v.transA ? [`${e} / ${bm}u`, `${e} % ${bm}u`] : [`${e} % ${bk}u`, `${e} / ${bk}u`];
    const gm = `m0 + ${mm}`, gk = `${k0} + ${kk}`;
    const idx = v.transA ? `(${gk}) * p.M + ${gm}` : `(${gm}) * p.K + ${gk}`;
    out.push(`    ${declare}pa${i} = loadA(${idx}, ${gm} < p.M && ${gk} < p.K);`);
  }
  for (let i = 0; i < (bn * bk) / threads; i++) {
    const e = `(li + ${i * threads}u)`;
    const [kk, nn] = v.transB ? [`${e} % ${bk}u`, `${e} / ${bk}u`] : [`${e} / ${bn}u`, `${e} % ${bn}u`];
    const gn = `n0 + ${nn}`, gk = `${k0} + ${kk}`;
    const idx = v.transB ? `(${gn}) * p.K + ${gk}` : `(${gk}) * p.N + ${gn}`;
    out.push(`    ${declare}pb${i} = loadB(${idx}, ${gn} < p.N && ${gk} < p.K);`);
  }
  return out;
}

/** Register → workgroup-memory stores of the staged elements, laid out [k][m] and [k][n] as vec4. */
function tileStores(config: MatmulConfig, v: MatmulVariant): string[] {
  const { rows: bm, cols: bn } = matmulTile(config);
  const bk = config.tileK!;
  const threads = config.workgroup[0] * config.workgroup[1];
  const out: string[] = [];
  for (let i = 0; i < (bm * bk) / threads; i++) {
    const e = `(li + ${i * threads}u)`;
    const [kk, mm] = v.transA ? [`${e} / ${bm}u`, `${e} % ${bm}u`] : [`${e} % ${bk}u`, `${e} / ${bk}u`];
    out.push(`    tileA[${kk} * ${tileStride(config, "A")}u + ${mm} / 4u][${mm} % 4u] = pa${i};`);
  }
  for (let i = 0; i < (bn * bk) / threads; i++) {
    const e = `(li + ${i * threads}u)`;
    const [kk, nn] = v.transB ? [`${e} % ${bk}u`, `${e} / ${bk}u`] : [`${e} / ${bn}u`, `${e} % ${bn}u`];
    out.push(`    tileB[${kk} * ${tileStride(config, "B")}u + ${nn} / 4u][${nn} % 4u] = pb${i};`);
  }
  return out;
}

/** Workgroup-memory tiled kernel body, with or without register prefetch of the next tiles. */
function tiledBody(config: MatmulConfig, v: MatmulVariant): string {
  const bk = config.tileK!;
  const [wx, wy] = config.workgroup;
  const out: string[] = [`  let tiles = (p.K + ${bk - 1}u) / ${bk}u;`];
  if (config.prefetch) out.push(...tileLoads(config, v, "0u", "var ").map((l) => l.slice(2)));
  out.push("  for (var t = 0u; t < tiles; t++) {");
  if (!config.prefetch) out.push(...tileLoads(config, v, `t * ${bk}u`, "let "));
  out.push(...tileStores(config, v), "    workgroupBarrier();");
  if (config.prefetch) {
    out.push(
      "    if (t + 1u < tiles) {",
      ...tileLoads(config, v, `(t + 1u) * ${bk}u`, "").map((l) => "  " + l),
    );
    out.push("    }");
  }
  for (let kk = 0; kk < bk; kk++) {
    for (let q = 0; q < config.rowsPerThread / 4; q++) {
      out.push(`    let a${q}_${kk} = tileA[${kk * tileStride(config, "A") + q * wy}u + ty];`);
    }
    for (let j = 0; j < config.vec4ColsPerThread; j++) {
      out.push(`    let b${j}_${kk} = tileB[${kk * tileStride(config, "B") + j * wx}u + tx];`);
    }
    out.push(
      ...fmaBlock(config, (r) => `a${Math.floor(r / 4)}_${kk}.${LANE[r % 4]}`, (j) => `b${j}_${kk}`, "    "),
    );
  }
  out.push("    workgroupBarrier();", "  }");
  return out.join("\n");
}

/** Shared-memory declarations and the bounds-checked loader of the tiled kernel. */
function tiledDecls(config: MatmulConfig): string {
  const bk = config.tileK!;
  return `
var<workgroup> tileA: array<vec4<f32>, ${bk * tileStride(config, "A")}>;
var<workgroup> tileB: array<vec4<f32>, ${bk * tileStride(config, "B")}>;
fn loadA(i: u32, inside: bool) -> f32 { return select(0.0, ldA(select(0u, i, inside)), inside); }
fn loadB(i: u32, inside: bool) -> f32 { return select(0.0, ldB(select(0u, i, inside)), inside); }`;
}

/**
 * The WGSL of one matmul kernel. Bindings: 0 A, 1 B, 2 C, 3 the uniforms
 * `{ M, N, K, tilesN, alpha: f32, accumulate }`; launch `tilesM · tilesN` workgroups through `grid()`.
 *
 * @example
 * ```ts
 * const code = matmulWgsl(
 *   { name: "reg8x4", rowsPerThread: 8, vec4ColsPerThread: 1, workgroup: [8, 8] },
 *   { transA: false, transB: true, bF16: false, vecA: true, vecB: true },
 * );
 * ```
 */
export function matmulWgsl(config: MatmulConfig, variant: MatmulVariant): string {
  const problem = matmulConfigProblem(config);
  if (problem) throw new RangeError(`matmul config "${config.name}": ${problem}`);
  if (config.tileK && (variant.vecA || variant.vecB)) {
    throw new RangeError(`matmul config "${config.name}": tiled kernels load A and B as scalars`);
  }
  if (variant.transA && variant.vecA && rowGroup(config) !== 4) {
    throw new RangeError(
      `matmul config "${config.name}": vec4 loads of a transposed A need rowsPerThread a multiple of 4`,
    );
  }
  const body = config.tileK ? tiledBody(config, variant) : registerBody(config, variant);
  return [
    bindings(variant),
    STORE_FN,
    config.tileK ? tiledDecls(config) : "",
    prologue(config),
    body,
    epilogue(config),
  ].join("\n");
}

/**
 * WGSL of the naive kernel: one output per thread, a 16×16 workgroup per 16×16 block of C. Same
 * bindings and uniforms as {@link matmulWgsl}, with `tilesN = ceil(N / 16)`.
 *
 * @example
 * ```ts
 * const code = naiveMatmulWgsl({ transA: false, transB: false, bF16: false, vecA: false, vecB: false });
 * ```
 */
export function naiveMatmulWgsl(variant: MatmulVariant): string {
  const scalar = { ...variant, vecA: false, vecB: false };
  const aIdx = variant.transA ? "k * p.M + row" : "row * p.K + k";
  const bIdx = variant.transB ? "col * p.K + k" : "k * p.N + col";
  return `${bindings(scalar)}
${STORE_FN}
@compute @workgroup_size(${NAIVE_BLOCK}, ${NAIVE_BLOCK})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u) {
  let tile = flat_group(wid, nwg);
  let row = (tile / p.tilesN) * ${NAIVE_BLOCK}u + lid.y;
  let col = (tile % p.tilesN) * ${NAIVE_BLOCK}u + lid.x;
  if (row >= p.M || col >= p.N) { return; }
  var acc = 0.0;
  for (var k = 0u; k < p.K; k++) { acc = fma(ldA(${aIdx}), ldB(${bIdx}), acc); }
  store(row * p.N + col, acc);
}`;
}

/**
 * Side of the square block of C one naive workgroup computes.
 * @example
 * ```ts
 * const tilesN = Math.ceil(N / NAIVE_BLOCK);
 * ```
 */
export const NAIVE_BLOCK = 16;
