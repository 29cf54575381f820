#!/usr/bin/env -S deno run --allow-read --allow-write --allow-env --allow-net --unstable-no-legacy-abort
/**
 * `deno task reproduce [--preset tiny] [--model DIR|ORG/NAME] [--out runs/NAME]`: the study's whole pipeline
 * (SFT, ORPO and optionally DPO training, KoBEST Table 2, pairwise Table 1, the report), resumable stage by
 * stage; `--help` lists presets and flags. The work is in pipeline/.
 * @module
 */
import { runReproduceTask } from "../pipeline/cli.ts";

if (import.meta.main) Deno.exit(await runReproduceTask(Deno.args));
