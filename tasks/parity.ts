#!/usr/bin/env -S deno run --no-prompt --allow-read --allow-env=DENO_WEBGPU_BACKEND
/**
 * `deno task parity <fixture-dir>`: checks the WGSL model against an oracle fixture made by Hugging Face
 * transformers and prints one line per quantity, then `parity: K/N within tolerance`. Exits 1 if any is out.
 * @module
 */
import { Gpu } from "../gpu/runtime.ts";
import { parseByteSize } from "../io/bytes.ts";
import { runTask } from "../io/cli.ts";
import { parseSettings, settingsHelp, type SettingsTable } from "../io/settings.ts";
import { runParity } from "../train/parity.ts";

/** The task's flags. */
const SETTINGS = {
  maxBinding: {
    name: "max_binding",
    kind: "string",
    metavar: "BYTES",
    parse: parseByteSize,
    help:
      "hold every GPU binding to at most BYTES (e.g. 20000, 64KiB, 1MiB), below the adapter's own limit: " +
      "weights, logits and activations then split as they would on a smaller adapter",
  },
} satisfies SettingsTable;

const USAGE = settingsHelp(SETTINGS, {
  usage: "usage: deno task parity [--max_binding BYTES] <fixture-dir>",
  intro: `Loads <fixture-dir>/model (a Hugging Face folder), recomputes every quantity in
<fixture-dir>/expected.safetensors (see meta.json there) and compares.

The repository's oracle: deno task parity tests/fixtures/llama-tiny-public`,
});

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseSettings(SETTINGS, Deno.args, { positionals: true });
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { positionals, values, help } = parsed;
  if (help || positionals.length !== 1) {
    (help ? console.log : console.error)(USAGE);
    return help ? 0 : 2;
  }
  const maxBindingBytes = values.maxBinding;
  const gpu = await Gpu.create({ maxBindingBytes });
  const t0 = performance.now();
  let lines;
  try {
    lines = await runParity(gpu, positionals[0], { log: (line) => console.log(line) });
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return 1;
  }
  const width = Math.max(...lines.map((l) => l.name.length));
  for (const l of lines) {
    console.log(
      `${l.ok ? "ok  " : "FAIL"} ${l.name.padEnd(width)}  max ${l.mode} error ${
        l.error.toExponential(2)
      }  (tol ${l.tolerance.toExponential(0)})`,
    );
  }
  const passed = lines.filter((l) => l.ok).length;
  console.log(
    `parity: ${passed}/${lines.length} within tolerance (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  return passed === lines.length ? 0 : 1;
}

if (import.meta.main) Deno.exit(await runTask("parity", main));
