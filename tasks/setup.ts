#!/usr/bin/env -S deno run --quiet --no-prompt --allow-run=dpkg-query,apt-get,sudo,chromium --allow-sys=uid --allow-env=DENO_WEBGPU_BACKEND
/**
 * `deno task setup`: installs what the toolkit and its tests need beyond Deno, on Debian or Ubuntu with
 * apt (as root, or through sudo), and checks that it works. Idempotent: packages already installed are left
 * alone, and with nothing missing it installs nothing.
 *
 * `--check` installs nothing: it reports what is missing and exits 1, printing the one command to run.
 * `deno task test` runs it first, so a machine without a Vulkan driver stops within seconds with that
 * command instead of running the suite for ten minutes on the GL fallback. `.ci/run` runs the install.
 *
 * @module
 */
import { Gpu } from "../gpu/runtime.ts";
import { DEFAULT_CHROMIUM } from "../report/chromium.ts";
import { runTask } from "../io/cli.ts";
import { parseSettings, settingsHelp, type SettingsTable } from "../io/settings.ts";

/** Debian packages, in the order apt gets them, with what each one is for. */
export const PACKAGES: readonly { name: string; why: string }[] = [
  {
    name: "mesa-vulkan-drivers",
    why: "Mesa's Vulkan drivers (lavapipe: a WebGPU adapter on the CPU, with shader-f16)",
  },
  { name: "libvulkan1", why: "the Vulkan loader" },
  { name: "chromium", why: "headless Chromium for the report's PNG export and its browser test" },
  { name: "fonts-nanum", why: "Korean glyphs in the report" },
];

/** The one command that installs everything, as printed when something is missing. */
export const SETUP_COMMAND = "deno task setup";

/** The test suite without the machine check (`deno task test` is `deno task setup --check && ` this). */
export const SUITE_COMMAND =
  "NO_COLOR=1 deno test --allow-read --allow-write --allow-env --allow-net=127.0.0.1 --allow-run tests/";

const APT_LINE = `apt-get install -y --no-install-recommends ${PACKAGES.map((p) => p.name).join(" ")}`;

/** The task's flags. */
const SETTINGS = {
  check: {
    name: "check",
    kind: "bool",
    default: false,
    help: "install nothing: say what is missing and exit 1 if anything is",
  },
} satisfies SettingsTable;

const HELP = settingsHelp(SETTINGS, {
  usage: "Usage: deno task setup [--check]",
  intro:
    `Installs what kotransfer and its tests need beyond Deno, with apt (sudo when not root), then checks it:
${PACKAGES.map((p) => `  ${p.name.padEnd(20)} ${p.why}`).join("\n")}
Packages already installed are left alone; running it again changes nothing.`,
  footer: `It runs: [sudo] ${APT_LINE}`,
  config: false,
});

/** One thing checked, and what to say when it is missing. */
export interface SetupCheck {
  /** What was checked, e.g. `WebGPU adapter`. */
  name: string;
  ok: boolean;
  /** What was found (when ok) or what is wrong and why it matters (when not). */
  detail: string;
}

/**
 * Which of {@link PACKAGES} dpkg does not list as installed; undefined where there is no dpkg (not Debian).
 *
 * @example
 * ```ts
 * await missingPackages(); // [] once `deno task setup` has run
 * ```
 */
export async function missingPackages(): Promise<string[] | undefined> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("dpkg-query", {
      args: ["-W", "-f=${Package} ${Status}\\n", ...PACKAGES.map((p) => p.name)],
      stdout: "piped",
      stderr: "null",
    }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  const installed = new Set(
    new TextDecoder().decode(out.stdout).split("\n")
      .filter((line) => line.endsWith(" install ok installed"))
      .map((line) => line.split(" ")[0]),
  );
  return PACKAGES.map((p) => p.name).filter((name) => !installed.has(name));
}

/** The WebGPU adapter: present, not on the GL fallback, with shader-f16 (the tests' f16 kernels need it). */
async function checkAdapter(): Promise<SetupCheck> {
  const name = "WebGPU adapter";
  let gpu: Gpu;
  try {
    gpu = await Gpu.create({ announce: false });
  } catch (e) {
    return { name, ok: false, detail: `none found (${(e as Error).message})` };
  }
  const line = gpu.describe();
  gpu.device.destroy();
  if (gpu.report.backend === "GL") {
    return {
      name,
      ok: false,
      detail: `only the GL backend was found (${line}): no shader-f16, and on a CPU the test suite takes ` +
        "about ten minutes there instead of two; Mesa's Vulkan driver (mesa-vulkan-drivers) fixes both",
    };
  }
  if (!gpu.hasF16) return { name, ok: false, detail: `${line} lacks shader-f16, which the f16 kernels need` };
  return { name, ok: true, detail: line };
}

/** Headless Chromium on PATH, as the report task runs it. */
async function checkChromium(): Promise<SetupCheck> {
  const name = "Chromium";
  try {
    const out = await new Deno.Command(DEFAULT_CHROMIUM, {
      args: ["--version"],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    const version = new TextDecoder().decode(out.stdout).trim();
    if (out.success) return { name, ok: true, detail: version };
    return { name, ok: false, detail: `\`${DEFAULT_CHROMIUM} --version\` exited with code ${out.code}` };
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    return {
      name,
      ok: false,
      detail: `no \`${DEFAULT_CHROMIUM}\` on PATH (the report's PNG export and browser test)`,
    };
  }
}

/**
 * Everything setup provides, checked: the packages (where dpkg exists), the WebGPU adapter and Chromium.
 *
 * @example
 * ```ts
 * const missing = (await checkSetup()).filter((c) => !c.ok);
 * ```
 */
export async function checkSetup(): Promise<SetupCheck[]> {
  const checks: SetupCheck[] = [];
  const missing = await missingPackages();
  if (missing !== undefined) {
    checks.push({
      name: "Debian packages",
      ok: missing.length === 0,
      detail: missing.length === 0
        ? PACKAGES.map((p) => p.name).join(", ")
        : `not installed: ${missing.join(", ")}`,
    });
  }
  checks.push(await checkAdapter(), await checkChromium());
  return checks;
}

/**
 * What `--check` prints when something is missing: each problem, then the one command to run.
 *
 * @example
 * ```ts
 * console.error(missingReport([{ name: "Chromium", ok: false, detail: "no `chromium` on PATH" }], true));
 * ```
 */
export function missingReport(checks: readonly SetupCheck[], hasApt: boolean): string {
  const problems = checks.filter((c) => !c.ok).map((c) => `  - ${c.name}: ${c.detail}`);
  const fix = hasApt
    ? [`Run this once, then try again:`, `  ${SETUP_COMMAND}`, `(it runs: [sudo] ${APT_LINE})`]
    : [
      "This machine has no apt: install what is listed with its package manager (a Vulkan driver, as Mesa's",
      "mesa-vulkan-drivers on Debian; Chromium as `chromium` on PATH; a Korean font such as Nanum), or run the",
      "suite without this check (what is missing is skipped and counted):",
      `  ${SUITE_COMMAND}`,
    ];
  return ["kotransfer: this machine lacks what the tests need:", ...problems, ...fix].join("\n");
}

async function run(command: string[]): Promise<void> {
  const [program, ...args] = command;
  let status: Deno.CommandStatus;
  try {
    status = await new Deno.Command(program, {
      args,
      env: { DEBIAN_FRONTEND: "noninteractive" },
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    throw new Error(`\`${program}\` is not installed: run as root, \`${APT_LINE}\``);
  }
  if (!status.success) throw new Error(`\`${command.join(" ")}\` failed with exit code ${status.code}`);
}

async function install(missing: string[]): Promise<void> {
  // sudo resets the environment, so the variable goes on its command line (allowed for sudo users).
  const sudo = Deno.uid() === 0 ? [] : ["sudo", "DEBIAN_FRONTEND=noninteractive"];
  console.error(`setup: installing ${missing.join(" ")}`);
  await run([...sudo, "apt-get", "update", "-qq"]);
  await run([...sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", ...missing]);
}

async function main(args: string[]): Promise<number> {
  const { values, help } = parseSettings(SETTINGS, args, { config: false });
  if (help) {
    console.log(HELP);
    return 0;
  }
  const missing = await missingPackages();
  if (!values.check && missing !== undefined && missing.length > 0) {
    try {
      await install(missing);
    } catch (e) {
      console.error(`setup: ${(e as Error).message}`);
      return 1;
    }
  }
  if (!values.check && missing === undefined) {
    console.error("setup: no dpkg/apt here; checking what is present instead of installing");
  }
  const checks = await checkSetup();
  if (checks.every((c) => c.ok)) {
    for (const c of checks) console.error(`setup: ${c.name}: ${c.detail}`);
    return 0;
  }
  console.error(missingReport(checks, missing !== undefined));
  return 1;
}

if (import.meta.main) Deno.exit(await runTask("setup", () => main(Deno.args)));
