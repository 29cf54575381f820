/**
 * A bounded, seeded fuzz of the HTTP server over loopback, against a server process (fuzz_server.ts)
 * running the fake engine and then the GPU engine on a micro model: a few hundred malformed, out-of-range
 * and valid requests, streamed and not, some dropped mid-stream, a few at a time. Afterwards every valid
 * request must have been answered correctly, every bad one with a 4xx in OpenAI's error shape, no slot may be
 * held, the heap must be back near where it started, and SIGTERM must end the process.
 */
import { seededRandom } from "../../io/datasets.ts";
import { assert, assertEquals, assertStringIncludes } from "../asserts.ts";
import { settlesWithin } from "../helpers.ts";
import { writeMicroModel } from "../model/micro_model.ts";
import { FakeEngine, HANG_MARKER } from "./fake_engine.ts";
import { FUZZ_LIMITS } from "./fuzz_server.ts";
import { sseEvents } from "./http.ts";

const SERVER = new URL("./fuzz_server.ts", import.meta.url).pathname;

/** The server process: its URL, a memory probe and its exit. */
interface ServerProcess {
  url: string;
  heapUsed(): Promise<number>;
  child: Deno.ChildProcess;
  stderr: Promise<string>;
}

async function spawnServer(args: string[]): Promise<ServerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-env",
      "--allow-net=127.0.0.1",
      "--unstable-no-legacy-abort",
      "--v8-flags=--expose-gc",
      SERVER,
      ...args,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const nextLine = async (): Promise<Record<string, unknown>> => {
    for (;;) {
      const i = buffered.indexOf("\n");
      if (i >= 0) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 1);
        return JSON.parse(line);
      }
      const { value, done } = await lines.read();
      if (done) throw new Error(`the server process ended: ${await stderr}`);
      buffered += value;
    }
  };
  const stdin = child.stdin.getWriter();
  const { url } = await settlesWithin(nextLine(), 60_000, "the server's start");
  return {
    url: url as string,
    child,
    stderr,
    async heapUsed() {
      await stdin.write(new TextEncoder().encode("memory\n"));
      const answer = await nextLine();
      assert(answer.collected, "the server process runs without --expose-gc");
      return answer.heapUsed as number;
    },
  };
}

type Rng = () => number;
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const WORDS = ["안녕", "하늘", "바다", "hello", "world", "모델", "한국어", "12", "세종", "🙂", "a\nb", '"q"'];

/** A request and what must come back. */
interface Probe {
  what: string;
  path: string;
  method: "GET" | "POST";
  body?: string | Uint8Array<ArrayBuffer>;
  /** "ok": 200 with `text` (when known); "error": a 4xx in OpenAI's error shape; "any": no 5xx. */
  expect: "ok" | "error" | "any";
  text?: string;
  stream?: boolean;
  /** Leave after the first streamed event, or abort a plain request after this many ms. */
  drop?: boolean;
  abortAfterMs?: number;
}

/** A valid greedy request the engine's answer to which is known. */
interface Known {
  kind: "chat" | "text";
  prompt: string;
  maxTokens: number;
  text: string;
}

function validBody(k: Omit<Known, "text">, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const input = k.kind === "chat"
    ? { messages: [{ role: "user", content: k.prompt }] }
    : { prompt: k.prompt };
  return { model: "fuzz", ...input, max_tokens: k.maxTokens, temperature: 0, ...extra };
}

const pathOf = (kind: "chat" | "text") => kind === "chat" ? "/v1/chat/completions" : "/v1/completions";

/** Bad values per field; every one must be refused with a 4xx naming nothing the server could not take. */
const BAD_FIELDS: [string, unknown[]][] = [
  ["seed", [-1, 2 ** 32, 1.5, "7", 1e300, -0.5, true]],
  ["temperature", [-1, 2.5, "hot", true, -1e-9]],
  ["top_p", [0, 1.5, -1, "1"]],
  ["top_k", [-1, 0.5, "5"]],
  ["max_tokens", [0, -3, 1.5, 1e9, "8", FUZZ_LIMITS.maxTokensLimit + 1]],
  ["max_completion_tokens", [0, -1]],
  ["n", [0, 1.5, 1000]],
  ["stream", ["yes", 1]],
  ["stop", [5, ["a", "b", "c", "d", "e"], [""], [1]]],
  ["frequency_penalty", [3, -3, "x"]],
  ["presence_penalty", [3, "x"]],
  ["repetition_penalty", [0, -1, "1.1"]],
  ["logprobs", ["x", 21]],
  ["tools", [[{ type: "function" }]]],
  ["stream_options", [{ include_usage: true }]],
  ["model", ["nope", 5, ""]],
];

function badProbe(r: Rng, known: Known): Probe {
  const kind = known.kind;
  const body = validBody(known);
  const choice = r();
  const post = (what: string, raw: string | Uint8Array<ArrayBuffer>): Probe => ({
    what,
    path: pathOf(kind),
    method: "POST",
    body: raw,
    expect: "error",
  });
  if (choice < 0.5) {
    const [field, values] = pick(r, BAD_FIELDS);
    const value = pick(r, values);
    return post(`${field}: ${JSON.stringify(value)}`, JSON.stringify({ ...body, [field]: value }));
  }
  if (choice < 0.6) {
    const text = JSON.stringify(body);
    return post("JSON cut short", text.slice(0, Math.floor(r() * (text.length - 1))));
  }
  if (choice < 0.65) {
    return post(
      "bytes that are not UTF-8",
      Uint8Array.from({ length: 40 }, () => 0x80 + Math.floor(r() * 0x7f)),
    );
  }
  if (choice < 0.7) {
    return post("a body that is not an object", pick(r, ["[]", "42", "null", '"hi"', "true"]));
  }
  if (choice < 0.75) {
    return post("a body over the limit", JSON.stringify({ ...body, pad: "x".repeat(20_000) }));
  }
  if (choice < 0.8) {
    const long = Array.from({ length: 300 }, (_, i) => WORDS[i % WORDS.length]).join(" ");
    return post("a prompt over the limit", JSON.stringify(validBody({ ...known, prompt: long })));
  }
  if (choice < 0.88) {
    const messages = pick(r, [[], [{ role: "robot", content: "x" }], [{ role: "user", content: 5 }], "hi", [{
      role: "user",
      content: [{ type: "image_url" }],
    }]]);
    return {
      what: `messages: ${JSON.stringify(messages)}`,
      path: "/v1/chat/completions",
      method: "POST",
      body: JSON.stringify({ ...validBody({ ...known, kind: "chat" }), messages }),
      expect: "error",
    };
  }
  if (choice < 0.93) {
    const prompt = pick(r, [[[1, 2], [-1]], ["a", 1], [1.5], [], 5, null]);
    return {
      what: `prompt: ${JSON.stringify(prompt)}`,
      path: "/v1/completions",
      method: "POST",
      body: JSON.stringify({ ...validBody({ ...known, kind: "text" }), prompt }),
      expect: "error",
    };
  }
  if (choice < 0.97) {
    return { what: "GET on a POST route", path: pathOf(kind), method: "GET", expect: "error" };
  }
  return {
    what: "an unknown route",
    path: pick(r, ["/v1/embeddings", "/v2/chat", "/%2e%2e/"]),
    method: "POST",
    body: "{}",
    expect: "error",
  };
}

function goodProbe(r: Rng, known: Known): Probe {
  const stream = r() < 0.5;
  const base = { path: pathOf(known.kind), method: "POST" as const, stream };
  const roll = r();
  if (roll < 0.15) {
    // Sampled: only the shape can be checked.
    const extra = { temperature: 0.9, top_p: 0.9, top_k: 20, seed: Math.floor(r() * 2 ** 32), stream };
    return { ...base, what: "sampled", body: JSON.stringify(validBody(known, extra)), expect: "ok" };
  }
  const body = JSON.stringify(validBody(known, { stream }));
  if (roll < 0.3) {
    return stream
      ? { ...base, what: "dropped mid-stream", body, expect: "any", drop: true }
      : { ...base, what: "aborted", body, expect: "any", abortAfterMs: Math.floor(r() * 20) };
  }
  return { ...base, what: `greedy ${known.kind}`, body, expect: "ok", text: known.text };
}

/** Sends one probe; returns a failure message, or undefined when the answer was right. */
async function send(url: string, p: Probe): Promise<string | undefined> {
  const ctl = new AbortController();
  const timer = p.abortAfterMs === undefined ? undefined : setTimeout(() => ctl.abort(), p.abortAfterMs);
  let res: Response;
  try {
    res = await fetch(`${url}${p.path}`, {
      method: p.method,
      headers: { "content-type": "application/json" },
      body: p.body,
      signal: ctl.signal,
    });
  } catch (e) {
    if (ctl.signal.aborted) return undefined;
    return `${p.what}: the request failed: ${e}`;
  } finally {
    clearTimeout(timer);
  }
  const where = `${p.what} (${p.method} ${p.path})`;
  if (res.status >= 500) return `${where}: status ${res.status}: ${await res.text()}`;
  if (p.drop && res.status === 200) {
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    return undefined;
  }
  let text: string;
  try {
    text = await res.text();
  } catch (e) {
    return ctl.signal.aborted ? undefined : `${where}: the body failed: ${e}`;
  }
  if (p.expect === "any") return undefined;
  if (p.expect === "error") {
    if (res.status < 400) return `${where}: accepted with ${res.status}`;
    const error = JSON.parse(text)?.error;
    return typeof error?.message === "string" && error.message !== ""
      ? undefined
      : `${where}: no OpenAI error body: ${text.slice(0, 200)}`;
  }
  if (res.status !== 200) return `${where}: status ${res.status}: ${text.slice(0, 300)}`;
  const got = p.stream ? streamedText(text) : plainText(JSON.parse(text));
  if (got === undefined) return `${where}: malformed answer: ${text.slice(0, 300)}`;
  if (p.text !== undefined && got !== p.text) {
    return `${where}: answered ${JSON.stringify(got)}, expected ${JSON.stringify(p.text)}`;
  }
  return undefined;
}

// deno-lint-ignore no-explicit-any
function plainText(body: any): string | undefined {
  const choice = body?.choices?.[0];
  const text = choice?.message?.content ?? choice?.text;
  return typeof text === "string" && typeof choice.finish_reason === "string" ? text : undefined;
}

function streamedText(text: string): string | undefined {
  const events = sseEvents(text);
  if (events.at(-1) !== "[DONE]") return undefined;
  // deno-lint-ignore no-explicit-any
  return events.slice(0, -1).map((e: any) => e.choices?.[0]?.delta?.content ?? e.choices?.[0]?.text ?? "")
    .join("");
}

/** Runs `probes` a few at a time. */
async function runProbes(url: string, probes: Probe[], inFlight: number): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < probes.length) {
      const failure = await send(url, probes[next++]);
      if (failure) failures.push(failure);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return failures;
}

async function health(url: string) {
  const res = await fetch(`${url}/health`);
  return { httpStatus: res.status, ...(await res.json()) };
}

/** Waits until nothing runs or waits (aborted generations stop within a few decode steps). */
async function settledHealth(url: string) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const h = await health(url);
    if ((h.running === 0 && h.queued === 0) || Date.now() > deadline) return h;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The whole fuzz against one server process: warm-up, `count` seeded probes, the idle and memory checks,
 * then SIGTERM with streams open.
 */
async function fuzz(server: ServerProcess, known: Known[], count: number, seed: number, slack: number) {
  try {
    const r = seededRandom(seed);
    // Warm up (programs compiled, caches filled), then take the heap's baseline.
    const warm = known.map((k): Probe => ({
      what: "warm-up",
      path: pathOf(k.kind),
      method: "POST",
      body: JSON.stringify(validBody(k)),
      expect: "ok",
      text: k.text,
    }));
    assertEquals(await runProbes(server.url, [...warm, ...warm], 2), []);
    const before = await server.heapUsed();
    const probes = Array.from(
      { length: count },
      () => r() < 0.55 ? badProbe(r, pick(r, known)) : goodProbe(r, pick(r, known)),
    );
    const failures = await runProbes(server.url, probes, 6);
    assertEquals(failures, [], `${failures.length} of ${count} probes went wrong`);
    const h = await settledHealth(server.url);
    assertEquals(
      { status: h.status, httpStatus: h.httpStatus, running: h.running, queued: h.queued, stuck: h.stuck },
      { status: "ok", httpStatus: 200, running: 0, queued: 0, stuck: 0 },
      "health after the fuzz",
    );
    // Every valid request still gets its answer.
    assertEquals(await runProbes(server.url, warm, 2), []);
    const after = await server.heapUsed();
    assert(
      after < before + slack,
      `the heap grew from ${(before / 1e6).toFixed(1)} MB to ${
        (after / 1e6).toFixed(1)
      } MB over ${count} requests`,
    );
    // SIGTERM with streams open: the process ends, cleanly, within its shutdown bound.
    const open = [0, 1].map(() =>
      fetch(`${server.url}${pathOf(known[0].kind)}`, {
        method: "POST",
        body: JSON.stringify(
          validBody({ ...known[0], maxTokens: FUZZ_LIMITS.maxTokensLimit }, { stream: true }),
        ),
      }).then((res) => res.text()).catch(() => "")
    );
    await new Promise((r) => setTimeout(r, 30));
    server.child.kill("SIGTERM");
    const status = await settlesWithin(server.child.status, 15_000, "the server's exit after SIGTERM");
    assertEquals(status.code, 0, `exit after SIGTERM; stderr:\n${await server.stderr}`);
    await Promise.all(open);
  } finally {
    try {
      server.child.kill("SIGKILL");
    } catch { /* already gone */ }
    await server.child.status;
    await server.child.stdin.close().catch(() => {});
    await server.stderr;
  }
}

Deno.test("serve fuzz (fake engine): 400 seeded requests, then idle, memory and SIGTERM", async () => {
  const fake = new FakeEngine({ modelId: "fuzz" });
  const r = seededRandom(11);
  const known: Known[] = [];
  for (let i = 0; i < 12; i++) {
    const kind = r() < 0.6 ? "chat" : "text";
    const prompt = Array.from({ length: 1 + Math.floor(r() * 12) }, () => pick(r, WORDS)).join(" ");
    const maxTokens = 1 + Math.floor(r() * FUZZ_LIMITS.maxTokensLimit);
    const rendered = kind === "chat" ? fake.renderChat([{ role: "user", content: prompt }]) : prompt;
    const { text } = await fake.generate(
      { prompt: rendered, maxTokens, temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1, stop: [] },
      () => {},
      new AbortController().signal,
    );
    known.push({ kind, prompt, maxTokens, text });
  }
  await fuzz(await spawnServer(["fake"]), known, 400, 1, 3e6);
});

Deno.test("serve fuzz (GPU engine, micro model): 200 seeded requests, then idle, memory and SIGTERM", async () => {
  const root = await Deno.makeTempDir({ prefix: "serve-fuzz-" });
  try {
    const dir = await writeMicroModel(`${root}/model`);
    const server = await spawnServer(["real", dir]);
    // The greedy answers, asked one at a time before the fuzz, are what every later greedy request must get.
    const known: Known[] = [];
    for (
      const [kind, prompt] of [["chat", "한국의 수도는?"], ["chat", "hello 세종"], [
        "text",
        "옛날 옛적에",
      ]] as const
    ) {
      const k = { kind, prompt, maxTokens: 6 };
      const res = await fetch(`${server.url}${pathOf(kind)}`, {
        method: "POST",
        body: JSON.stringify(validBody(k)),
      });
      const text = plainText(await res.json());
      assert(res.status === 200 && text !== undefined, `reference answer for ${prompt}`);
      known.push({ ...k, text });
    }
    await fuzz(server, known, 200, 2, 3e6);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("serve: SIGTERM ends the server process even while its engine is wedged", async () => {
  const server = await spawnServer(["fake"]);
  try {
    // A generation that never returns and ignores its abort, as a hung device would.
    const hung = fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify({
        model: "fuzz",
        messages: [{ role: "user", content: HANG_MARKER }],
        stream: true,
      }),
    }).then((res) => res.text()).catch(() => "");
    for (let i = 0; i < 100 && (await health(server.url)).running === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    server.child.kill("SIGTERM");
    // Grace, then the abandonment of the wedged generation: well within the bound, never a hang.
    const bound = FUZZ_LIMITS.shutdownGraceMs + 2 * FUZZ_LIMITS.stuckAfterMs + 5000;
    const status = await settlesWithin(server.child.status, bound, "the server's exit after SIGTERM");
    assertEquals(status.code, 0, await server.stderr);
    assertStringIncludes(await hung, "shutting down");
  } finally {
    try {
      server.child.kill("SIGKILL");
    } catch { /* already gone */ }
    await server.child.status;
    await server.child.stdin.close().catch(() => {});
    await server.stderr;
  }
});
