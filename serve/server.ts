/**
 * An OpenAI-compatible HTTP server over a {@link GenerationEngine}:
 * `POST /v1/chat/completions`, `POST /v1/completions`, `GET /v1/models`, `GET /health`, and a chat page
 * for people at `GET /` (`serve/ui/`, see `pages.ts`) that talks to the same API. The model is asked
 * for by its id (or an alias); adapters the engine serves over it by their names (vLLM's `--lora-modules`).
 * A request's choices (`n`, several prompts) run together and count as one request for admission.
 *
 * Admission is first-in, first-out: `maxConcurrent` generations run, `maxQueue` more wait, the rest get 429.
 * Each request has one AbortController fed by the client's disconnect (the request signal, or the SSE stream
 * being cancelled), the optional request timeout and shutdown; aborting it stops the engine and frees the
 * slot. Every failure is answered in OpenAI's error JSON; nothing a request does can end the process.
 *
 * A watchdog covers an engine that stops answering: a generation that produces no text for `stuckAfterMs`
 * makes `/health` answer 503 `degraded`, and one that has not stopped `stuckAfterMs` after its abort is
 * abandoned, so its client gets its answer (504, 503 or 499), its slot is freed and shutdown ends.
 *
 * @module
 */
import type { GenerateRequest, GenerationEngine } from "../generate/engine_contract.ts";
import { type ChoiceOutcome, type ChoicePlan, finishGenerated, planChoices, scorePrompt } from "./choices.ts";
import { readJson } from "./body.ts";
import { ApiError, jsonResponse } from "./errors.ts";
import { isPagePath, pageResponse } from "./pages.ts";
import { EngineFailure, type GenerationOutcome, runGeneration } from "./generation.ts";
import {
  type ModelList,
  parseChatRequest,
  parseCompletionRequest,
  type ParsedRequest,
} from "./openai_types.ts";
import { chatFormat, type ResponseFormat, textFormat, usageOf } from "./responses.ts";
import { FifoScheduler, QueueFullError, SchedulerClosedError, type Slot } from "./scheduler.ts";
import { SSE_HEADERS, SseStream } from "./sse.ts";

/** Options for {@link startServer}. */
export interface ServerOptions {
  /** Interface to bind; 127.0.0.1 unless told otherwise. */
  hostname?: string;
  /** TCP port; 0 picks a free one (see the returned `url`). */
  port: number;
  /** When set, `/v1/*` requires `Authorization: Bearer <apiKey>` (`/health` stays open). */
  apiKey?: string;
  /** Generations waiting for a slot before new ones are refused with 429. */
  maxQueue: number;
  /** Generations running at once. */
  maxConcurrent: number;
  /** Longest prompt accepted, in tokens; longer ones get 413. */
  maxPromptTokens: number;
  /** Largest `max_tokens` a client may ask for (and the chat default). */
  maxTokensLimit: number;
  /** Aborts a request (queue wait included) after this long: 504, or an error event mid-stream. */
  requestTimeoutMs?: number;
  /** Other names clients may use for the model. */
  modelAliases?: string[];
  /** Largest request body, in bytes (default 4 MiB); larger ones get 413. */
  maxBodyBytes?: number;
  /** How long {@link ServerHandle.close} lets running generations finish before aborting them (default 10 s). */
  shutdownGraceMs?: number;
  /**
   * A generation that produces no text for this long counts as stuck (`/health` answers 503 `degraded`);
   * one that has not stopped this long after its abort is abandoned: its client is answered and its slot
   * freed (default 30 s).
   */
  stuckAfterMs?: number;
  /** Receives one line per request and per failure; silent when absent. */
  log?: (line: string) => void;
  /** Serve the chat page at `/` (default true). */
  ui?: boolean;
}

/** A running server. */
export interface ServerHandle {
  /** Base URL, e.g. `http://127.0.0.1:8080` (the API is under `/v1`). */
  readonly url: string;
  /**
   * Stops accepting connections, refuses queued requests (503), lets running generations finish for
   * `shutdownGraceMs`, aborts those still running, and resolves once every response has ended. It always
   * resolves: generations that ignore their abort are abandoned after `stuckAfterMs`.
   */
  close(): Promise<void>;
  /** The longest {@link close} can take: the grace period, then the abandonment of stuck generations. */
  readonly closeBoundMs: number;
}

/** Abort reason: the client went away. */
class ClientGone extends Error {
  override name = "ClientGone";
}
/** Abort reason: `requestTimeoutMs` passed. */
class RequestTimeout extends Error {
  override name = "RequestTimeout";
}
/** Abort reason: shutdown's grace period ran out. */
class ShuttingDown extends Error {
  override name = "ShuttingDown";
}
/** Abort reason: another choice of the same request failed. */
class SiblingFailed extends Error {
  override name = "SiblingFailed";
}

/** The completion length OpenAI's legacy endpoint uses when `max_tokens` is absent. */
const TEXT_COMPLETION_DEFAULT_MAX_TOKENS = 16;

interface Config {
  engine: GenerationEngine;
  stuckAfterMs: number;
  apiKey?: string;
  modelNames: string[];
  maxPromptTokens: number;
  maxTokensLimit: number;
  requestTimeoutMs?: number;
  maxBodyBytes: number;
  log: (line: string) => void;
  ui: boolean;
}

interface State extends Config {
  scheduler: FifoScheduler;
  active: Set<AbortController>;
  /** Engine calls not yet settled (abandoned ones included), with when each last made progress. */
  generations: Set<Watch>;
  closing: boolean;
}

/** One engine call under the watchdog. */
interface Watch {
  /** performance.now() of its start, its last text, or its abort. */
  lastProgress: number;
}

/**
 * The default of {@link ServerOptions.stuckAfterMs}.
 * @example
 * ```ts
 * STUCK_AFTER_MS; // 30000
 * ```
 */
export const STUCK_AFTER_MS = 30_000;

/**
 * The default of {@link ServerOptions.shutdownGraceMs}.
 * @example
 * ```ts
 * SHUTDOWN_GRACE_MS; // 10000
 * ```
 */
export const SHUTDOWN_GRACE_MS = 10_000;

/**
 * Starts serving `engine` and returns at once (the port is bound when this returns).
 *
 * @example
 * ```ts
 * const server = startServer(engine, {
 *   port: 8080,
 *   maxConcurrent: 4,
 *   maxQueue: 16,
 *   maxPromptTokens: 3072,
 *   maxTokensLimit: 1024,
 * });
 * console.log(`listening on ${server.url}/v1`);
 * Deno.addSignalListener("SIGINT", () => server.close());
 * ```
 */
export function startServer(engine: GenerationEngine, opts: ServerOptions): ServerHandle {
  validateOptions(opts);
  const stuckAfterMs = opts.stuckAfterMs ?? STUCK_AFTER_MS;
  const names = [engine.modelId, ...(opts.modelAliases ?? [])];
  const clash = (engine.adapters ?? []).find((a) => names.includes(a));
  if (clash) {
    throw new RangeError(`the adapter name "${clash}" is also the model's name or an alias; rename it`);
  }
  const graceMs = opts.shutdownGraceMs ?? SHUTDOWN_GRACE_MS;
  const state: State = {
    engine,
    stuckAfterMs,
    apiKey: opts.apiKey,
    modelNames: [engine.modelId, ...(opts.modelAliases ?? [])],
    maxPromptTokens: opts.maxPromptTokens,
    maxTokensLimit: opts.maxTokensLimit,
    requestTimeoutMs: opts.requestTimeoutMs,
    maxBodyBytes: opts.maxBodyBytes ?? 4 * 1024 * 1024,
    log: opts.log ?? (() => {}),
    ui: opts.ui ?? true,
    scheduler: new FifoScheduler(opts.maxConcurrent, opts.maxQueue),
    active: new Set(),
    generations: new Set(),
    closing: false,
  };
  const server = Deno.serve({
    hostname: opts.hostname ?? "127.0.0.1",
    port: opts.port,
    onListen: () => {},
    onError: (e) => {
      state.log(`internal error: ${errorText(e)}`);
      return new ApiError(500, "internal server error", { code: "internal_error" }).toResponse();
    },
  }, (req) => handle(state, req));
  let closed: Promise<void> | undefined;
  return {
    url: baseUrl(server.addr),
    close: () => closed ??= shutdown(state, server, graceMs),
    // Grace, then abandonment after the abort, then as long again for the responses to drain.
    closeBoundMs: graceMs + 2 * stuckAfterMs,
  };
}

function validateOptions(opts: ServerOptions): void {
  const positive: (keyof ServerOptions)[] = ["maxConcurrent", "maxPromptTokens", "maxTokensLimit"];
  for (const key of positive) {
    const v = opts[key];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
      throw new RangeError(`server option ${key} must be an integer ≥ 1, got ${v}`);
    }
  }
  if (!Number.isSafeInteger(opts.maxQueue) || opts.maxQueue < 0) {
    throw new RangeError(`server option maxQueue must be an integer ≥ 0, got ${opts.maxQueue}`);
  }
  for (const key of ["requestTimeoutMs", "stuckAfterMs"] as const) {
    const v = opts[key];
    if (v !== undefined && !(v > 0 && Number.isFinite(v))) {
      throw new RangeError(`server option ${key} must be > 0, got ${v}`);
    }
  }
  if (opts.shutdownGraceMs !== undefined && !(opts.shutdownGraceMs >= 0)) {
    throw new RangeError(`server option shutdownGraceMs must be ≥ 0, got ${opts.shutdownGraceMs}`);
  }
  if (opts.apiKey !== undefined && opts.apiKey === "") {
    throw new RangeError("server option apiKey is empty; leave it out to serve without a key");
  }
}

function baseUrl(addr: Deno.NetAddr): string {
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return `http://${host}:${addr.port}`;
}

async function shutdown(state: State, server: Deno.HttpServer, graceMs: number): Promise<void> {
  state.closing = true;
  state.scheduler.close();
  const stopped = server.shutdown();
  const idle = state.scheduler.whenIdle();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const graceOver = new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), graceMs));
  const timedOut = await Promise.race([idle.then(() => false), graceOver]);
  clearTimeout(timer);
  if (timedOut) {
    state.log(`shutdown: aborting ${state.scheduler.running} running generation(s) after ${graceMs} ms`);
    for (const ctl of state.active) ctl.abort(new ShuttingDown("the server is shutting down"));
    // Generations that ignore the abort are abandoned after stuckAfterMs, which frees their slots.
    await idle;
  }
  if (!(await settlesBefore(stopped, state.stuckAfterMs))) {
    state.log(
      `shutdown: responses still open ${state.stuckAfterMs} ms after the last generation; leaving them`,
    );
  }
}

/** True when `p` settles within `ms`, false otherwise (the timer is cleared either way). */
async function settlesBefore(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([p.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

type Handler = (state: State, req: Request) => Promise<Response> | Response;

interface Route {
  method: "GET" | "POST";
  auth: boolean;
  handler: Handler;
}

const ROUTES: Record<string, Route> = {
  "/health": { method: "GET", auth: false, handler: health },
  "/v1/models": { method: "GET", auth: true, handler: models },
  "/v1/chat/completions": { method: "POST", auth: true, handler: (s, r) => completion(s, r, "chat") },
  "/v1/completions": { method: "POST", auth: true, handler: (s, r) => completion(s, r, "text") },
};

async function handle(state: State, req: Request): Promise<Response> {
  const started = performance.now();
  const path = new URL(req.url).pathname.replace(/\/+$/, "") || "/";
  let res: Response;
  try {
    res = await route(state, req, path);
  } catch (e) {
    res = toApiError(e, state).toResponse();
  }
  state.log(`${req.method} ${path} ${res.status} ${Math.round(performance.now() - started)}ms`);
  return res;
}

function route(state: State, req: Request, path: string): Promise<Response> | Response {
  if (state.ui && isPagePath("chat", path)) {
    if (req.method !== "GET" && req.method !== "HEAD") {
      throw new ApiError(405, `${req.method} is not allowed on ${path}; use GET`, {
        type: "invalid_request_error",
        code: "method_not_allowed",
        headers: { allow: "GET, HEAD" },
      });
    }
    return pageResponse("chat", path, req.method === "HEAD");
  }
  const r = ROUTES[path];
  if (!r) {
    throw new ApiError(
      404,
      `no route ${req.method} ${path}; this server serves ${Object.keys(ROUTES).join(", ")}`,
      {
        code: "unknown_route",
      },
    );
  }
  if (req.method !== r.method) {
    throw new ApiError(405, `${req.method} is not allowed on ${path}; use ${r.method}`, {
      type: "invalid_request_error",
      code: "method_not_allowed",
      headers: { allow: r.method },
    });
  }
  if (r.auth) checkApiKey(state, req);
  return r.handler(state, req);
}

function checkApiKey(state: State, req: Request): void {
  if (state.apiKey === undefined) return;
  const header = req.headers.get("authorization") ?? "";
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!m || !sameSecret(m[1], state.apiKey)) {
    throw new ApiError(401, "missing or incorrect API key: send it as 'Authorization: Bearer <key>'", {
      type: "invalid_request_error",
      code: "invalid_api_key",
      headers: { "www-authenticate": "Bearer" },
    });
  }
}

/** Compares without stopping at the first differing character, so timing says nothing about the key. */
function sameSecret(given: string, expected: string): boolean {
  let diff = given.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) diff |= (given.charCodeAt(i) | 0) ^ expected.charCodeAt(i);
  return diff === 0;
}

/**
 * `ok` (200); `degraded` (503) while some generation has made no progress for `stuckAfterMs` (a wedged
 * engine: restart the server); `shutting_down` (503) once close() began.
 */
function health(state: State): Response {
  const now = performance.now();
  const stuck = [...state.generations].filter((w) => now - w.lastProgress > state.stuckAfterMs).length;
  const status = state.closing ? "shutting_down" : stuck > 0 ? "degraded" : "ok";
  return jsonResponse({
    status,
    model: state.engine.modelId,
    running: state.scheduler.running,
    queued: state.scheduler.queued,
    stuck,
    max_concurrent: state.scheduler.maxConcurrent,
    max_queue: state.scheduler.maxQueue,
  }, status === "ok" ? 200 : 503);
}

const STARTED = Math.floor(Date.now() / 1000);

function models(state: State): Response {
  const card = (id: string, parent: string | null) => ({
    id,
    object: "model" as const,
    created: STARTED,
    owned_by: "kotransfer",
    root: parent === null ? state.engine.modelId : id,
    parent,
    max_model_len: state.engine.maxContextTokens,
  });
  const list: ModelList = {
    object: "list",
    data: [
      ...state.modelNames.map((id) => card(id, null)),
      ...(state.engine.adapters ?? []).map((id) => card(id, state.engine.modelId)),
    ],
  };
  return jsonResponse(list);
}

async function completion(state: State, req: Request, kind: "chat" | "text"): Promise<Response> {
  if (state.closing) throw new ApiError(503, "the server is shutting down", { code: "shutting_down" });
  const body = await readJson(req, state.maxBodyBytes);
  const parsed = kind === "chat" ? parseChatRequest(body) : parseCompletionRequest(body);
  const adapter = adapterOf(state, parsed.model);
  const { plans, promptTokens } = planChoices(state.engine, parsed, {
    maxPromptTokens: state.maxPromptTokens,
    maxTokensLimit: state.maxTokensLimit,
    defaultMaxTokens: kind === "text" ? TEXT_COMPLETION_DEFAULT_MAX_TOKENS : state.maxTokensLimit,
  }, adapter);
  const format = (kind === "chat" ? chatFormat : textFormat)({
    id: `${kind === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID().replaceAll("-", "")}`,
    created: Math.floor(Date.now() / 1000),
    model: adapter ?? state.engine.modelId,
    includeUsage: parsed.includeUsage,
  });
  const pending = track(state, req);
  let slot: Slot;
  try {
    slot = await state.scheduler.acquire(pending.signal);
  } catch (e) {
    pending.done();
    throw admissionError(e);
  }
  const run: RunChoices = { state, parsed, kind, plans, promptTokens, format, pending };
  if (parsed.stream) return streamed(run, slot);
  try {
    const outcomes = await runAll(run, () => undefined);
    if (outcomes === ABORTED) throw abortError(pending.signal.reason);
    const completionTokens = outcomes.reduce((n, o) => n + o.completionTokens, 0);
    return jsonResponse(format.complete(outcomes, usageOf(promptTokens, completionTokens)));
  } finally {
    slot.release();
    pending.done();
  }
}

/** One request's choices and what running them needs. */
interface RunChoices {
  state: State;
  parsed: ParsedRequest;
  kind: "chat" | "text";
  plans: ChoicePlan[];
  promptTokens: number;
  format: ResponseFormat;
  pending: Pending;
}

const ABORTED = Symbol("aborted");

/**
 * Runs every choice at once; resolves with their outcomes in index order, or {@link ABORTED} when the
 * request's signal aborted. The first failure aborts the other choices and is rethrown.
 */
async function runAll(
  run: RunChoices,
  emit: (plan: ChoicePlan) => ((text: string) => void) | undefined,
): Promise<ChoiceOutcome[] | typeof ABORTED> {
  const signal = run.pending.signal;
  const settled = await Promise.allSettled(run.plans.map(async (plan) => {
    try {
      return await runChoice(run, plan, emit(plan) ?? (() => {}));
    } catch (e) {
      run.pending.abort(new SiblingFailed("another choice of this request failed"));
      throw e;
    }
  }));
  const failure = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failure) throw failure.reason;
  const outcomes = settled.map((r) => (r as PromiseFulfilledResult<ChoiceOutcome | typeof ABORTED>).value);
  if (outcomes.some((o) => o === ABORTED) || signal.aborted) return ABORTED;
  return outcomes as ChoiceOutcome[];
}

/** One choice: a forward pass when it only scores its prompt, else a watched generation then its logprobs. */
async function runChoice(
  run: RunChoices,
  plan: ChoicePlan,
  emit: (text: string) => void,
): Promise<ChoiceOutcome | typeof ABORTED> {
  const { state, parsed, kind } = run;
  if (plan.scoreOnly) return await scoring(() => scorePrompt(state.engine, plan, parsed));
  const out = await runWatched(state, plan.request, emit, run.pending.signal);
  if (out.finishReason === "abort") return ABORTED;
  return await scoring(() => finishGenerated(state.engine, plan, parsed, out, kind));
}

/** Scoring failures are the engine's (500), unless they are already an API error. */
async function scoring<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (e instanceof ApiError || e instanceof EngineFailure) throw e;
    throw new EngineFailure(`scoring failed: ${errorText(e)}`, { cause: e });
  }
}

/** The adapter a request's `model` names (undefined: the base model); 404 for a name not served. */
function adapterOf(state: State, model: string): string | undefined {
  if (state.modelNames.includes(model)) return undefined;
  const adapters = state.engine.adapters ?? [];
  if (adapters.includes(model)) return model;
  throw new ApiError(
    404,
    `the model '${model}' does not exist here; this server serves ${
      [...state.modelNames, ...adapters].map((m) => `'${m}'`).join(", ")
    }`,
    { param: "model", code: "model_not_found" },
  );
}

interface Pending {
  readonly signal: AbortSignal;
  /** Aborts the request's work (no-op once aborted). */
  abort(reason: Error): void;
  /** Clears the timeout and listeners; call exactly when the request's work ends. */
  done(): void;
}

/** One AbortController per request, fed by the client's disconnect and the timeout; known to shutdown. */
function track(state: State, req: Request): Pending {
  const ctl = new AbortController();
  const onGone = () => ctl.abort(new ClientGone("the client disconnected"));
  req.signal.addEventListener("abort", onGone, { once: true });
  const timer = state.requestTimeoutMs === undefined ? undefined : setTimeout(
    () => ctl.abort(new RequestTimeout(`the request took longer than ${state.requestTimeoutMs} ms`)),
    state.requestTimeoutMs,
  );
  state.active.add(ctl);
  return {
    signal: ctl.signal,
    abort: (reason) => ctl.abort(reason),
    done: () => {
      clearTimeout(timer);
      req.signal.removeEventListener("abort", onGone);
      state.active.delete(ctl);
    },
  };
}

function streamed(run: RunChoices, slot: Slot): Response {
  const sse = new SseStream(() => run.pending.abort(new ClientGone("the client stopped reading the stream")));
  void pump(run, sse).finally(() => {
    slot.release();
    run.pending.done();
  });
  return new Response(sse.readable, { headers: SSE_HEADERS });
}

async function pump(run: RunChoices, sse: SseStream): Promise<void> {
  const { format, pending } = run;
  try {
    for (const plan of run.plans) for (const chunk of format.opening(plan.index)) sse.send(chunk);
    const outcomes = await runAll(run, (plan) => (text) => sse.send(format.delta(plan.index, text)));
    if (outcomes === ABORTED) {
      if (!(pending.signal.reason instanceof ClientGone)) {
        sse.send(abortError(pending.signal.reason).toBody());
      }
      sse.close();
      return;
    }
    outcomes.forEach((o, i) => sse.send(format.finish(run.plans[i].index, o.finish)));
    const completionTokens = outcomes.reduce((n, o) => n + o.completionTokens, 0);
    for (const chunk of format.closing(usageOf(run.promptTokens, completionTokens))) sse.send(chunk);
    sse.done();
  } catch (e) {
    sse.send(toApiError(e, run.state).toBody());
    sse.close();
  }
}

const ABANDONED = Symbol("abandoned");

/**
 * {@link runGeneration} under the watchdog: its progress is recorded for `/health`, and when it has not
 * stopped `stuckAfterMs` after `signal` aborted it is abandoned: this resolves as an abort (the caller
 * answers the client and frees the slot) while the engine call stays counted as stuck until it settles.
 */
async function runWatched(
  state: State,
  genReq: GenerateRequest,
  emit: (text: string) => void,
  signal: AbortSignal,
): Promise<GenerationOutcome> {
  const watch: Watch = { lastProgress: performance.now() };
  state.generations.add(watch);
  const run = runGeneration(state.engine, genReq, (text) => {
    watch.lastProgress = performance.now();
    emit(text);
  }, signal);
  run.then(() => {}, () => {}).finally(() => state.generations.delete(watch));
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const abandoned = new Promise<typeof ABANDONED>((resolve) => {
    onAbort = () => {
      watch.lastProgress = performance.now();
      timer = setTimeout(() => resolve(ABANDONED), state.stuckAfterMs);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    const outcome = await Promise.race([run, abandoned]);
    if (outcome !== ABANDONED) return outcome;
    state.log(
      `engine failure: a generation did not stop ${state.stuckAfterMs} ms after its abort ` +
        `(${errorText(signal.reason)}); abandoned it and freed its slot`,
    );
    return { text: "", finishReason: "abort", promptTokens: 0, completionTokens: 0 };
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort!);
  }
}

/**
 * For a command-line server: the first SIGINT or SIGTERM closes `server` gracefully and exits 0 (1 if
 * closing failed); a second signal exits at once with 130. If closing outlasts `server.closeBoundMs` plus
 * a margin, the process exits with 1 anyway, so a signal always ends it.
 *
 * @example
 * ```ts
 * const server = startServer(engine, { port: 8080, maxConcurrent: 4, maxQueue: 16, maxPromptTokens: 4095, maxTokensLimit: 1024 });
 * exitOnSignals(server, (line) => console.error(line));
 * ```
 */
export function exitOnSignals(server: ServerHandle, log: (line: string) => void): void {
  let closing = false;
  const onSignal = () => {
    if (closing) Deno.exit(130);
    closing = true;
    log("shutting down (signal again to force)");
    const deadline = setTimeout(() => {
      log(`shutdown did not finish within ${server.closeBoundMs + 5000} ms; exiting`);
      Deno.exit(1);
    }, server.closeBoundMs + 5000);
    server.close().then(() => {
      clearTimeout(deadline);
      Deno.exit(0);
    }, (e) => {
      log(`shutdown failed: ${errorText(e)}`);
      Deno.exit(1);
    });
  };
  Deno.addSignalListener("SIGINT", onSignal);
  if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", onSignal);
}

function admissionError(e: unknown): ApiError {
  if (e instanceof QueueFullError) {
    return new ApiError(429, e.message, { code: "queue_full", headers: { "retry-after": "1" } });
  }
  if (e instanceof SchedulerClosedError) return new ApiError(503, e.message, { code: "shutting_down" });
  return abortError(e);
}

function abortError(reason: unknown): ApiError {
  if (reason instanceof RequestTimeout) return new ApiError(504, reason.message, { code: "timeout" });
  if (reason instanceof ShuttingDown) return new ApiError(503, reason.message, { code: "shutting_down" });
  // Nobody reads this one: the client has gone. It shows in the request log as 499, as nginx logs it.
  return new ApiError(499, "the client closed the request", { code: "client_closed_request" });
}

function toApiError(e: unknown, state: State): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof EngineFailure) {
    state.log(`engine failure: ${e.message}`);
    return new ApiError(500, e.message, { code: "engine_error" });
  }
  state.log(`internal error: ${errorText(e)}`);
  return new ApiError(500, `internal server error: ${errorText(e)}`, { code: "internal_error" });
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
