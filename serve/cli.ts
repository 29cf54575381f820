/**
 * The command line of `deno task serve`: its settings table (one definition of each flag's name, aliases,
 * range, default and help; vLLM's names where vLLM has the same setting: `--host`, `--port`,
 * `--served-model-name`, `--lora-modules`, `--max-model-len`, `--api-key`), the generated help, and the task
 * itself: load the engine, start the server, stop on a signal.
 *
 * @module
 */
import { loadEngine } from "../generate/engine.ts";
import type { LoadEngineOptions } from "../generate/engine_contract.ts";
import { deniedPermissionLine } from "../io/cli.ts";
import {
  checkRequired,
  parseSettings,
  secretFromEnv,
  settingsHelp,
  type SettingsTable,
  withTableDefaults,
} from "../io/settings.ts";
import {
  exitOnSignals,
  type ServerOptions,
  SHUTDOWN_GRACE_MS,
  startServer,
  STUCK_AFTER_MS,
} from "./server.ts";

/**
 * Where a server listens and whether it logs each request: shared by `deno task serve` and `deno task arena`.
 * @example
 * ```ts
 * const ARENA = { ...LISTEN_SETTINGS, port: { ...LISTEN_SETTINGS.port, default: 8090 } };
 * ```
 */
export const LISTEN_SETTINGS = {
  host: { name: "host", kind: "string", metavar: "HOST", default: "127.0.0.1", help: "interface to bind" },
  port: {
    name: "port",
    kind: "int",
    range: { min: 0, max: 65535 },
    default: 8080,
    help: "TCP port; 0 picks a free one",
  },
  quiet: { name: "quiet", kind: "bool", default: false, help: "no per-request log lines" },
} satisfies SettingsTable;

/**
 * `--lora NAME=DIR`, as vLLM's `--lora-modules`; errors name `where`.
 * @example
 * ```ts
 * parseLoraModule("sft=runs/sft-lora", "--lora"); // { name: "sft", dir: "runs/sft-lora" }
 * ```
 */
export function parseLoraModule(spec: string, where: string): { name: string; dir: string } {
  const at = spec.indexOf("=");
  const name = spec.slice(0, at), dir = spec.slice(at + 1);
  if (at <= 0 || dir === "") throw new Error(`${where}: expected NAME=DIR, got ${JSON.stringify(spec)}`);
  return { name, dir };
}

const LIMITS = "limits";

/**
 * Every flag of `deno task serve`, by key.
 * @example
 * ```ts
 * SERVE_SETTINGS.contextTokens.name; // "max_model_len"
 * ```
 */
export const SERVE_SETTINGS = {
  model: {
    name: "model",
    kind: "string",
    metavar: "DIR",
    required: true,
    help: "model folder (Hugging Face layout), Hub id, or PEFT adapter folder (served over the base model " +
      "its adapter_config.json names)",
  },
  loras: {
    name: "lora",
    aliases: ["lora_modules"],
    kind: "list",
    metavar: "NAME=DIR",
    parse: parseLoraModule,
    help:
      'serve a PEFT adapter over the model, asked for as "model": NAME (repeatable; listed in /v1/models; ' +
      "requests for different adapters decode in one batch)",
  },
  modelNames: {
    name: "model_name",
    aliases: ["served_model_name"],
    kind: "list",
    metavar: "NAME",
    help:
      'other names clients may use as "model" (repeatable; listed in /v1/models after the model\'s own id, ' +
      "which stays accepted)",
  },
  ...LISTEN_SETTINGS,
  apiKeyEnv: {
    name: "api_key_env",
    kind: "string",
    metavar: "NAME",
    help:
      'require "Authorization: Bearer <key>", the key read from environment variable NAME (the task may ' +
      "read OPENAI_API_KEY and KOTRANSFER_*; for another NAME add --allow-env=NAME to its deno run flags)",
  },
  apiKey: {
    name: "api_key",
    kind: "string",
    metavar: "KEY",
    check: { expected: "a non-empty key", ok: (v: string) => v !== "" },
    help:
      "the same with the key itself, as vLLM's --api-key (other users of the machine can read it in the " +
      "process list; --api_key_env cannot be read there)",
  },
  noUi: { name: "no_ui", kind: "bool", default: false, help: "serve the API only, no chat page at /" },
  ignoreUnusedWeights: {
    name: "ignore_unused_weights",
    kind: "bool",
    default: false,
    help: "load a model whose files hold tensors its config.json does not use (a warning)",
  },
  maxConcurrent: {
    name: "max_concurrent",
    kind: "int",
    range: { min: 1 },
    default: 4,
    group: LIMITS,
    help: "generations running at once (the batch)",
  },
  maxQueue: {
    name: "max_queue",
    kind: "int",
    range: { min: 0 },
    default: 16,
    group: LIMITS,
    help: "requests waiting beyond those; more get 429",
  },
  contextTokens: {
    name: "max_model_len",
    aliases: ["context"],
    kind: "int",
    range: { min: 64 },
    defaultHelp: "the model's max_position_embeddings, at most 8192",
    group: LIMITS,
    help: "context length (prompt plus completion) to allocate, rounded down to a multiple of 64",
  },
  maxPromptTokens: {
    name: "max_prompt_tokens",
    kind: "int",
    range: { min: 1 },
    defaultHelp: "max_model_len − 1",
    group: LIMITS,
    help: "longest prompt accepted; longer ones get 413",
  },
  maxTokensLimit: {
    name: "max_tokens_limit",
    kind: "int",
    range: { min: 1 },
    default: 1024,
    group: LIMITS,
    help: "largest max_tokens a client may ask for (and the chat default)",
  },
  requestTimeoutMs: {
    name: "request_timeout_ms",
    kind: "int",
    range: { min: 1 },
    defaultHelp: "none",
    group: LIMITS,
    help: "abort a request (queue wait included) after N ms",
  },
  shutdownGraceMs: {
    name: "shutdown_grace_ms",
    kind: "int",
    range: { min: 0 },
    default: SHUTDOWN_GRACE_MS,
    group: LIMITS,
    help: "on SIGINT/SIGTERM, let running generations finish this long",
  },
  stuckAfterMs: {
    name: "stuck_after_ms",
    kind: "int",
    range: { min: 1 },
    default: STUCK_AFTER_MS,
    group: LIMITS,
    help: 'a generation silent this long makes /health answer 503 "degraded"; one not stopped this long ' +
      "after its abort is abandoned and its slot freed",
  },
} satisfies SettingsTable;

/**
 * The help text of `deno task serve`.
 * @example
 * ```ts
 * console.log(serveUsage());
 * ```
 */
export function serveUsage(): string {
  return settingsHelp(SERVE_SETTINGS, {
    usage: "Usage: deno task serve --model DIR|ORG/NAME [--lora NAME=DIR …] [flags]",
    intro: "Serves a model over an OpenAI-compatible HTTP API: POST /v1/chat/completions, POST " +
      "/v1/completions, GET /v1/models, GET /health, and a chat page for people at GET / (streams through " +
      "/v1/chat/completions; no network beyond this server).",
    groups: ["options", LIMITS],
  });
}

/** What `deno task serve` is asked to do: the model, how to load it, and how to serve it. */
export interface ServeCommand {
  /** A model folder, Hub id or adapter folder. */
  model: string;
  /** How the engine is loaded. */
  engine: LoadEngineOptions;
  /** The server's options but the log; `maxPromptTokens` absent means the engine's context less one. */
  server: Omit<ServerOptions, "maxPromptTokens" | "log"> & { maxPromptTokens?: number };
  /** No per-request log lines. */
  quiet: boolean;
}

/**
 * Turns command-line arguments into what to serve, or `"help"`. Errors name the flag.
 * @example
 * ```ts
 * const command = serveCommandFromArgs(["--model", "runs/orpo-tiny", "--served-model-name", "orpo"]);
 * // command.server.modelAliases: ["orpo"]
 * ```
 */
export function serveCommandFromArgs(
  args: string[],
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): ServeCommand | "help" {
  const parsed = parseSettings(SERVE_SETTINGS, args);
  if (parsed.help) return "help";
  const v = withTableDefaults(SERVE_SETTINGS, parsed.values);
  checkRequired(SERVE_SETTINGS, v);
  if (v.apiKey !== undefined && v.apiKeyEnv !== undefined) {
    throw new Error(`${parsed.sources.apiKey} and ${parsed.sources.apiKeyEnv}: give one of them`);
  }
  const apiKey = v.apiKey ?? secretFromEnv(parsed.sources.apiKeyEnv ?? "--api_key_env", v.apiKeyEnv, { env });
  return {
    model: v.model!,
    engine: {
      maxConcurrent: v.maxConcurrent!,
      maxContextTokens: v.contextTokens,
      ignoreUnusedWeights: v.ignoreUnusedWeights,
      loras: v.loras ?? [],
    },
    server: {
      hostname: v.host,
      port: v.port!,
      apiKey,
      maxConcurrent: v.maxConcurrent!,
      maxQueue: v.maxQueue!,
      maxPromptTokens: v.maxPromptTokens,
      maxTokensLimit: v.maxTokensLimit!,
      requestTimeoutMs: v.requestTimeoutMs,
      shutdownGraceMs: v.shutdownGraceMs,
      stuckAfterMs: v.stuckAfterMs,
      modelAliases: v.modelNames,
      ui: !v.noUi,
    },
    quiet: v.quiet!,
  };
}

/**
 * The whole of `tasks/serve.ts`: load the model and serve it until SIGINT/SIGTERM. Resolves with 0 once the
 * server listens (or after `--help`; the process then ends on the signal, so the caller must not exit on 0),
 * or with 2 on a bad command line or a model that does not load.
 * @example
 * ```ts
 * await runServeTask(["--model", "runs/orpo-tiny", "--port", "8080"]);
 * ```
 */
export async function runServeTask(args: string[]): Promise<number> {
  try {
    const command = serveCommandFromArgs(args);
    if (command === "help") {
      console.log(serveUsage());
      return 0;
    }
    const engine = await loadEngine(command.model, command.engine);
    const server = startServer(engine, {
      ...command.server,
      maxPromptTokens: command.server.maxPromptTokens ?? engine.maxContextTokens - 1,
      log: command.quiet ? undefined : (line) => console.error(`${new Date().toISOString()} ${line}`),
    });
    const adapters = engine.adapters.length > 0 ? ` with adapters ${engine.adapters.join(", ")}` : "";
    console.error(
      `serving ${engine.modelId}${adapters} at ${server.url}/v1${
        command.server.apiKey ? " (API key required)" : ""
      }` +
        (command.server.ui ? `; chat page at ${server.url}/` : ""),
    );
    exitOnSignals(server, (line) => console.error(line));
    return 0;
  } catch (e) {
    console.error(deniedPermissionLine("serve", e) ?? `serve: ${e instanceof Error ? e.message : e}`);
    return 2;
  }
}
