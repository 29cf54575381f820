#!/usr/bin/env -S deno run --no-prompt --allow-read --allow-env=DENO_WEBGPU_BACKEND
/**
 * `deno task parity <fixture-dir>`: checks the WGSL model against an oracle fixture made by Hugging Face
 * transformers and prints one line per quantity, then `parity: K/N within tolerance`. Exits 1 if any is out.
 * @module
 */
import { parseArgs } from "node:util";
import { Gpu } from "../gpu/runtime.ts";
import { parseByteSize } from "../io/bytes.ts";
import { runTask } from "../io/cli.ts";
import { runParity } from "../train/parity.ts";

const USAGE = `usage: deno task parity [--max-binding BYTES] <fixture-dir>

Loads <fixture-dir>/model (a Hugging Face folder), recomputes every quantity in
<fixture-dir>/expected.safetensors (see meta.json there) and compares.
The repository's oracle: deno task parity tests/fixtures/llama-tiny-public

Options:
  --max-binding BYTES  hold every GPU binding to at most BYTES (e.g. 20000, 64KiB, 1MiB), below the
                       adapter's own limit: weights, logits and activations then split as they would on a
                       smaller adapter
  -h, --help           show this help`;

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { help: { type: "boolean", short: "h" }, "max-binding": { type: "string" } },
  });
  if (values.help || positionals.length !== 1) {
    (values.help ? console.log : console.error)(USAGE);
    return values.help ? 0 : 2;
  }
  let maxBindingBytes: number | undefined;
  try {
    maxBindingBytes = values["max-binding"] === undefined
      ? undefined
      : parseByteSize(values["max-binding"], "--max-binding");
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
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
