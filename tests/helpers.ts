/**
 * Shared test helpers: one GPU per test file, seeded random data, and tolerance checks with readable
 * failure messages.
 * @module
 */
import { fileURLToPath } from "node:url";
import { Gpu } from "../gpu/runtime.ts";
import { ChromiumMissingError, DEFAULT_CHROMIUM, findChromium } from "../report/chromium.ts";
import { seededRandom } from "../io/datasets.ts";
import { normalGenerator } from "../model/init.ts";

let shared: Promise<Gpu> | undefined;

/** The test process's GPU (the CPU adapter in CI), created once; the backend line is left to the tasks. */
export function testGpu(): Promise<Gpu> {
  shared ??= Gpu.create({ announce: false });
  return shared;
}

/** Deno.test options for tests that hold a GPU device across tests. */
export const GPU_TEST = { sanitizeResources: false, sanitizeOps: false } as const;

/** True under CI (`CI=true`): there a missing capability fails the tests that need it, never skips them. */
export const IN_CI: boolean = Deno.env.get("CI") === "true";

/** Something a test needs that a machine may lack (an adapter feature, a program). */
export interface Capability {
  /** What it is, e.g. `shader-f16`. */
  name: string;
  /** Whether this machine has it. */
  present: boolean;
  /** Why it is missing and how to get it, e.g. the adapter's name and the package to install. */
  hint: string;
}

/** The test GPU's `shader-f16` feature (Vulkan lavapipe has it; the GL fallback does not). */
export async function f16Capability(): Promise<Capability> {
  const gpu = await testGpu();
  return {
    name: "shader-f16",
    present: gpu.hasF16,
    hint: `the ${gpu.report.backend} adapter ${gpu.report.description} lacks it; ` +
      "install Mesa's Vulkan driver: deno task setup (apt-get install -y mesa-vulkan-drivers libvulkan1)",
  };
}

/** Headless Chromium on PATH with a Korean font (Debian: chromium and fonts-nanum), for the report's tests. */
export async function chromiumCapability(): Promise<Capability> {
  const name = "Chromium with fonts-nanum";
  const hint = "install them: deno task setup (apt-get install -y chromium fonts-nanum)";
  try {
    await findChromium();
  } catch (e) {
    if (!(e instanceof ChromiumMissingError)) throw e;
    return { name, present: false, hint: `no \`${DEFAULT_CHROMIUM}\` on PATH; ${hint}` };
  }
  let fonts = "";
  try {
    const out = await new Deno.Command("fc-list", {
      args: [":family=NanumGothic", "family"],
      stdout: "piped",
    })
      .output();
    fonts = new TextDecoder().decode(out.stdout);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const present = fonts.includes("NanumGothic");
  return { name, present, hint: present ? "" : `fontconfig lists no NanumGothic; ${hint}` };
}

/**
 * Registers a test that needs `capability`. Present: it runs. Missing outside CI: it is ignored (counted in
 * deno test's summary as "ignored") and a SKIP line on stderr names it, the capability and the fix. Missing
 * under CI: it runs and fails at once with that message.
 */
export function testNeeding(
  capability: Capability,
  name: string,
  options: Omit<Deno.TestDefinition, "name" | "fn" | "ignore">,
  fn: (t: Deno.TestContext) => void | Promise<void>,
): void {
  const missing = `needs ${capability.name}: ${capability.hint}`;
  const skip = !capability.present && !IN_CI;
  if (skip) console.error(`SKIP ${name} — ${missing} (under CI=true this fails)`);
  Deno.test({
    ...options,
    name,
    ignore: skip,
    fn: (t) => {
      if (!capability.present) throw new Error(missing);
      return fn(t);
    },
  });
}

/** A small seeded generator (mulberry32, the toolkit's own) so test data is the same on every run. */
export const rng: (seed: number) => () => number = seededRandom;

/** SHA-256 of a string (as UTF-8) or of bytes, in lower-case hex. */
export async function sha256Hex(data: string | Uint8Array<ArrayBuffer>): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * `n` values uniform in [-scale, scale): for tests whose data must stay below a value they plant (a maximum,
 * a peak) where a normal draw's tail could reach it.
 */
export function uniform(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

/**
 * `n` values drawn from a normal distribution with mean 0 and standard deviation `scale`, as `torch.randn`
 * gives (the model initialiser's seeded Box–Muller generator, so a seed gives the same values on every run).
 */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const normal = normalGenerator(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = normal() * scale;
  return out;
}

/** Largest absolute difference between two arrays of the same length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** Asserts |actual - expected| <= atol + rtol * max|expected|, naming the worst element. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  atol = 1e-5,
  rtol = 1e-4,
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  }
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  const tol = atol + rtol * scale;
  let worst = -1;
  let worstD = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= worstD)) {
      worstD = Number.isNaN(d) ? Infinity : d;
      worst = i;
    }
  }
  if (worstD > tol) {
    throw new Error(
      `${what}: max error ${worstD.toExponential(3)} > tol ${tol.toExponential(3)} at [${worst}] ` +
        `(got ${actual[worst]}, expected ${expected[worst]})`,
    );
  }
}

/**
 * `p`, or a rejection naming `what` when it has not settled within `ms`, so that a hang fails its test
 * instead of stalling the suite.
 */
export function settlesWithin<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** The flags a task file declares in its shebang (`#!/usr/bin/env -S deno run <flags>`). */
export async function shebangFlags(taskFile: string): Promise<string[]> {
  const first = (await Deno.readTextFile(taskFile)).split("\n", 1)[0];
  const prefix = "#!/usr/bin/env -S deno run ";
  if (!first.startsWith(prefix)) throw new Error(`${taskFile}: no \`${prefix.trim()}\` shebang`);
  return first.slice(prefix.length).trim().split(/\s+/);
}

/** Path of `tasks/<name>.ts`. */
export function taskFile(name: string): string {
  return fileURLToPath(new URL(`../tasks/${name}.ts`, import.meta.url));
}

/**
 * `deno` arguments that run a task exactly as its shebang does (same permissions), followed by `args`.
 * @example
 * ```ts
 * await new Deno.Command(Deno.execPath(), { args: await taskArgs("report", "--help") }).output();
 * ```
 */
export async function taskArgs(name: string, ...args: string[]): Promise<string[]> {
  const file = taskFile(name);
  return ["run", ...await shebangFlags(file), file, ...args];
}
