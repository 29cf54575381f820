#!/usr/bin/env -S deno run --no-prompt --allow-read --allow-write --allow-env=DENO_WEBGPU_BACKEND,HF_*,HUGGING*,XDG_CACHE_HOME,HOME,USERPROFILE,OPENAI_API_KEY,KOTRANSFER_* --allow-net
/**
 * `deno task kobest --model DIR [--model DIR …]`: KoBEST scored exactly as lm-evaluation-harness scores it,
 * printed as the paper's Table 2 (macro-F1, accuracy) and written as lm-eval results JSON. With
 * `--base_url URL` the models are served ones, scored through the endpoint as lm-eval's `local-completions`
 * does. The flags are in eval/kobest/cli.ts, the work in eval/kobest/run.ts.
 * @module
 */
import { runKobestTask } from "../eval/kobest/cli.ts";
import { runTask } from "../io/cli.ts";

if (import.meta.main) Deno.exit(await runTask("kobest", () => runKobestTask(Deno.args)));
