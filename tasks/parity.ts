#!/usr/bin/env -S deno run --allow-read --allow-env=DENO_WEBGPU_BACKEND
/**
 * `deno task parity <fixture-dir>`: checks the WGSL model against an oracle fixture made by Hugging Face
 * transformers and prints one line per quantity, then `parity: K/N within tolerance`. Exits 1 if any is out.
 * @module
 */
import { parseArgs } from "node:util";
import { Gpu } from "../gpu/runtime.ts";
import { runParity } from "../train/parity.ts";

const USAGE = `usage: deno task parity <fixture-dir>

Loads <fixture-dir>/model (a Hugging Face folder), recomputes every quantity in
<fixture-dir>/expected.safetensors (see meta.json there) and compares.`;

if (import.meta.main) {
  const { positionals, values } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { help: { type: "boolean", short: "h" } },
  });
  if (values.help || positionals.length !== 1) {
    console.log(USAGE);
    Deno.exit(values.help ? 0 : 2);
  }
  const gpu = await Gpu.create();
  console.log(`adapter: ${gpu.describe()}`);
  const t0 = performance.now();
  const lines = await runParity(gpu, positionals[0]);
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
  Deno.exit(passed === lines.length ? 0 : 1);
}
