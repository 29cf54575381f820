#!/usr/bin/env -S deno run --no-prompt --allow-net --allow-read --allow-write --allow-env=DENO_WEBGPU_BACKEND,HF_*,HUGGING*,XDG_CACHE_HOME,HOME,USERPROFILE,OPENAI_API_KEY,KOTRANSFER_* --unstable-no-legacy-abort
/**
 * `deno task serve --model DIR [--port 8080] [--lora NAME=DIR …]`: serves a model (a folder, a Hub id or a
 * PEFT adapter folder over its base) over an OpenAI-compatible API, with more adapters over it selected by
 * the request's `model`, as vLLM's `--lora-modules`.
 *
 * `--allow-write` is for the Hugging Face cache: a Hub id (or an adapter's Hub base model) is downloaded there.
 * `--unstable-no-legacy-abort` makes a request's signal abort only when the client really leaves (not after
 * every successful response), which is what the server listens to.
 * @module
 */
import { parseArgs } from "node:util";
import { loadEngine } from "../generate/engine.ts";
import { deniedPermissionLine, runTask } from "../io/cli.ts";
import { exitOnSignals, startServer } from "../serve/server.ts";

const HELP = `Serve a model over an OpenAI-compatible HTTP API.

Usage: deno task serve --model DIR [options]

Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health, and a chat page
for people at GET / (streams through /v1/chat/completions; no network beyond this server)

Options:
  --model DIR               model folder (Hugging Face layout), Hub id, or PEFT adapter folder (served over
                            the base model its adapter_config.json names)     (required)
  --lora NAME=DIR           serve a PEFT adapter over the model, asked for as "model": NAME (repeatable;
                            listed in /v1/models; requests for different adapters decode in one batch)
  --host HOST               interface to bind                               (default 127.0.0.1)
  --port N                  TCP port; 0 picks a free one                    (default 8080)
  --model-name NAME         another name clients may use as "model" (repeatable)
  --api-key-env NAME        require "Authorization: Bearer <key>", the key read from env variable NAME
                            (allowed: OPENAI_API_KEY, KOTRANSFER_*; for another NAME run the file
                            with --allow-env=NAME added)
  --max-concurrent N        generations running at once                    (default 4)
  --max-queue N             requests waiting beyond those; more get 429    (default 16)
  --context N               context length to allocate                     (default: the model's)
  --max-prompt-tokens N     longest prompt accepted; longer ones get 413   (default: context - 1)
  --max-tokens-limit N      largest max_tokens a client may ask for        (default 1024)
  --request-timeout-ms N    abort a request (queue wait included) after N ms (default: none)
  --shutdown-grace-ms N     on SIGINT/SIGTERM, let running generations finish this long (default 10000)
  --stuck-after-ms N        a generation silent this long makes /health answer 503 "degraded"; one not
                            stopped this long after its abort is abandoned and its slot freed (default 30000)
  --ignore-unused-weights   load a model whose files hold tensors its config.json does not use (a warning)
  --no-ui                   serve the API only, no chat page at /
  --quiet                   no per-request log lines
  -h, --help                show this help
`;

function integerFlag(values: Record<string, unknown>, name: string, min: number, fallback?: number): number {
  const raw = values[name];
  if (raw === undefined) {
    if (fallback === undefined) throw new Error(`--${name} is required`);
    return fallback;
  }
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new Error(`--${name} must be an integer ≥ ${min}, got ${raw}`);
  }
  return n;
}

function optionalInteger(values: Record<string, unknown>, name: string, min: number): number | undefined {
  return values[name] === undefined ? undefined : integerFlag(values, name, min);
}

function apiKeyFrom(envName: string | undefined): string | undefined {
  if (envName === undefined) return undefined;
  const key = Deno.env.get(envName);
  if (!key) {
    throw new Error(`--api-key-env ${envName}: the environment variable ${envName} is unset or empty`);
  }
  return key;
}

/** `--lora NAME=DIR`, as vLLM's `--lora-modules`. */
function parseLora(spec: string): { name: string; dir: string } {
  const at = spec.indexOf("=");
  const name = spec.slice(0, at), dir = spec.slice(at + 1);
  if (at <= 0 || dir === "") throw new Error(`--lora expects NAME=DIR, got ${JSON.stringify(spec)}`);
  return { name, dir };
}

async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string" },
      "model-name": { type: "string", multiple: true },
      lora: { type: "string", multiple: true },
      "api-key-env": { type: "string" },
      "max-concurrent": { type: "string" },
      "max-queue": { type: "string" },
      context: { type: "string" },
      "max-prompt-tokens": { type: "string" },
      "max-tokens-limit": { type: "string" },
      "request-timeout-ms": { type: "string" },
      "shutdown-grace-ms": { type: "string" },
      "stuck-after-ms": { type: "string" },
      "ignore-unused-weights": { type: "boolean", default: false },
      "no-ui": { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  if (!values.model) throw new Error("--model DIR is required (see --help)");
  const maxConcurrent = integerFlag(values, "max-concurrent", 1, 4);
  const apiKey = apiKeyFrom(values["api-key-env"]);
  const engine = await loadEngine(values.model, {
    maxConcurrent,
    maxContextTokens: optionalInteger(values, "context", 2),
    ignoreUnusedWeights: values["ignore-unused-weights"],
    loras: (values.lora ?? []).map(parseLora),
  });
  const server = startServer(engine, {
    hostname: values.host,
    port: integerFlag(values, "port", 0, 8080),
    apiKey,
    maxConcurrent,
    maxQueue: integerFlag(values, "max-queue", 0, 16),
    maxPromptTokens: integerFlag(values, "max-prompt-tokens", 1, engine.maxContextTokens - 1),
    maxTokensLimit: integerFlag(values, "max-tokens-limit", 1, 1024),
    requestTimeoutMs: optionalInteger(values, "request-timeout-ms", 1),
    shutdownGraceMs: integerFlag(values, "shutdown-grace-ms", 0, 10_000),
    stuckAfterMs: optionalInteger(values, "stuck-after-ms", 1),
    modelAliases: values["model-name"],
    ui: !values["no-ui"],
    log: values.quiet ? undefined : (line) => console.error(`${new Date().toISOString()} ${line}`),
  });
  const adapters = engine.adapters.length > 0 ? ` with adapters ${engine.adapters.join(", ")}` : "";
  console.error(
    `serving ${engine.modelId}${adapters} at ${server.url}/v1${apiKey ? " (API key required)" : ""}` +
      (values["no-ui"] ? "" : `; chat page at ${server.url}/`),
  );
  exitOnSignals(server, (line) => console.error(line));
}

if (import.meta.main) {
  await runTask("serve", async () => {
    try {
      await main(Deno.args);
    } catch (e) {
      console.error(deniedPermissionLine("serve", e) ?? `serve: ${e instanceof Error ? e.message : e}`);
      Deno.exit(2);
    }
  });
}
