#!/usr/bin/env -S deno run --no-prompt --allow-net --allow-read --allow-write --allow-env=DENO_WEBGPU_BACKEND,HF_*,HUGGING*,XDG_CACHE_HOME,HOME,USERPROFILE,OPENAI_API_KEY,KOTRANSFER_* --unstable-no-legacy-abort
/**
 * `deno task serve --model DIR [--port 8080] [--lora NAME=DIR …]`: serves a model (a folder, a Hub id or a
 * PEFT adapter folder over its base) over an OpenAI-compatible API, with more adapters over it selected by
 * the request's `model`, as vLLM's `--lora-modules`. The flags and the work are in serve/cli.ts.
 *
 * `--allow-write` is for the Hugging Face cache: a Hub id (or an adapter's Hub base model) is downloaded there.
 * `--unstable-no-legacy-abort` makes a request's signal abort only when the client really leaves (not after
 * every successful response), which is what the server listens to.
 * @module
 */
import { runTask } from "../io/cli.ts";
import { runServeTask } from "../serve/cli.ts";

if (import.meta.main) {
  // Serving keeps the process alive after the task resolves with 0; only a failure ends it here.
  const status = await runTask("serve", () => runServeTask(Deno.args));
  if (status !== 0) Deno.exit(status);
}
