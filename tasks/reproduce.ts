#!/usr/bin/env -S deno run --no-prompt --allow-read --allow-write --allow-env=DENO_WEBGPU_BACKEND,HF_*,HUGGING*,XDG_CACHE_HOME,HOME,USERPROFILE,OPENAI_API_KEY,KOTRANSFER_* --allow-net --unstable-no-legacy-abort
/**
 * `deno task reproduce [--preset tiny] [--model DIR|ORG/NAME] [--out runs/NAME]`: the study's whole pipeline
 * (SFT, ORPO and optionally DPO training, KoBEST Table 2, pairwise Table 1, the report), resumable stage by
 * stage; `--help` lists presets and flags. The work is in pipeline/.
 * @module
 */
import { runTask } from "../io/cli.ts";
import { runReproduceTask } from "../pipeline/cli.ts";

if (import.meta.main) Deno.exit(await runTask("reproduce", () => runReproduceTask(Deno.args)));
