/**
 * Test helpers for talking to the server over real HTTP: JSON posts, SSE parsing, and a health check that
 * every test runs at its end.
 * @module
 */
import { type ServerHandle, type ServerOptions, startServer } from "../../serve/server.ts";
import { assertEquals } from "../asserts.ts";
import type { FakeEngine } from "./fake_engine.ts";

/** Limits small enough to hit in tests. */
export const TEST_LIMITS: ServerOptions = {
  port: 0,
  maxConcurrent: 2,
  maxQueue: 2,
  maxPromptTokens: 200,
  maxTokensLimit: 500,
};

/**
 * Runs `fn` against a server on a free loopback port, then checks `/health` reports nothing running or
 * queued, and closes the server.
 */
export async function withServer(
  engine: FakeEngine,
  opts: Partial<ServerOptions>,
  fn: (url: string, server: ServerHandle) => Promise<void>,
): Promise<void> {
  const server = startServer(engine, { ...TEST_LIMITS, ...opts });
  try {
    await fn(server.url, server);
    await expectIdle(server.url);
  } finally {
    await server.close();
  }
}

/** Asserts `/health` answers 200 with no generation running or queued. */
export async function expectIdle(url: string): Promise<void> {
  const res = await fetch(`${url}/health`);
  const body = await res.json();
  assertEquals(res.status, 200, "health status");
  assertEquals({ status: body.status, running: body.running, queued: body.queued }, {
    status: "ok",
    running: 0,
    queued: 0,
  }, "health after the test");
}

/**
 * Waits up to `ms` for `/health` to show nothing running or queued (a stopped generation frees its slot when
 * the engine next looks at its abort signal, not at once), then asserts it as {@link expectIdle} does.
 */
export async function waitIdle(url: string, ms = 5000): Promise<void> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    const body = await (await fetch(`${url}/health`)).json();
    if (body.running === 0 && body.queued === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  await expectIdle(url);
}

/** POSTs `body` (JSON-encoded unless a string) and returns the response. */
export function post(
  url: string,
  path: string,
  body: unknown,
  init: { headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Response> {
  return fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...init.headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal: init.signal,
  });
}

/** POSTs and returns status and parsed JSON body. */
export async function postJson(
  url: string,
  path: string,
  body: unknown,
  headers?: Record<string, string>,
  // deno-lint-ignore no-explicit-any
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await post(url, path, body, { headers });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

/** Splits an SSE body into its `data:` payloads (`[DONE]` kept as the string). */
export function sseEvents(text: string): unknown[] {
  return text.split("\n\n").filter((block) => block !== "").map((block) => {
    if (!block.startsWith("data: ")) throw new Error(`not an SSE data event: ${JSON.stringify(block)}`);
    const data = block.slice("data: ".length);
    return data === "[DONE]" ? data : JSON.parse(data);
  });
}
