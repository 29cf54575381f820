/**
 * Headless Chromium driven over the Chrome DevTools Protocol, for the tests of the pages people use (the chat
 * page, the arena). The browser is the report's (`report/chromium.ts`: found on PATH, started with the same
 * headless flags); the protocol runs over `--remote-debugging-port=0` and a WebSocket on loopback, so it
 * needs no package and no download. A page records every request it makes (`Network.requestWillBeSent`)
 * and every error it meets: uncaught exceptions, `console.error`, and the browser's own error log (failed
 * loads, Content-Security-Policy violations).
 * @module
 */
import { findChromium, HEADLESS_FLAGS } from "../report/chromium.ts";

type Json = Record<string, unknown>;
type Listener = (params: Json, sessionId?: string) => void;

/** A headless Chromium with a DevTools connection. */
export class Browser {
  readonly #process: Deno.ChildProcess;
  readonly #socket: WebSocket;
  readonly #profile: string;
  readonly #pending = new Map<number, { resolve: (v: Json) => void; reject: (e: Error) => void }>();
  readonly #listeners = new Set<{ method: string; fn: Listener }>();
  #nextId = 0;

  private constructor(process: Deno.ChildProcess, socket: WebSocket, profile: string) {
    this.#process = process;
    this.#socket = socket;
    this.#profile = profile;
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data as string);
      if (message.id !== undefined) {
        const waiter = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (message.error) waiter?.reject(new Error(`${message.error.message} (${message.error.code})`));
        else waiter?.resolve(message.result ?? {});
        return;
      }
      for (const l of this.#listeners) {
        if (l.method === message.method) l.fn(message.params ?? {}, message.sessionId);
      }
    };
  }

  /** Starts the browser and connects to it. */
  static async launch(): Promise<Browser> {
    const chromium = await findChromium();
    const profile = await Deno.makeTempDir({ prefix: "kotransfer-cdp-" });
    const process = new Deno.Command(chromium, {
      args: [
        ...HEADLESS_FLAGS,
        `--user-data-dir=${profile}`,
        "--remote-debugging-port=0",
        "--window-size=1200,900",
        "about:blank",
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const reader = process.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    let endpoint: string | undefined;
    const deadline = setTimeout(() => reader.cancel().catch(() => {}), 30_000);
    while (endpoint === undefined) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) break;
      seen += value;
      endpoint = /DevTools listening on (ws:\/\/\S+)/.exec(seen)?.[1];
    }
    clearTimeout(deadline);
    // Keep draining stderr, so the browser never blocks on a full pipe.
    void (async () => {
      while (!(await reader.read().catch(() => ({ done: true }))).done) { /* drain */ }
    })();
    if (endpoint === undefined) {
      process.kill();
      await process.status;
      throw new Error(`Chromium printed no DevTools endpoint:\n${seen.slice(-2000)}`);
    }
    const socket = new WebSocket(endpoint);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error(`cannot connect to ${endpoint}`));
    });
    return new Browser(process, socket, profile);
  }

  /** Sends one protocol command (to a page when `sessionId` is given) and resolves with its result. */
  send(method: string, params: Json = {}, sessionId?: string): Promise<Json> {
    const id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#socket.send(JSON.stringify({ id, method, params, sessionId }));
    });
  }

  /** Calls `fn` for every event `method`; returns the function that stops it. */
  on(method: string, fn: Listener): () => void {
    const entry = { method, fn };
    this.#listeners.add(entry);
    return () => this.#listeners.delete(entry);
  }

  /** A new tab, with its requests and errors recorded from the start. */
  async newPage(): Promise<Page> {
    const { targetId } = await this.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await this.send("Target.attachToTarget", { targetId, flatten: true });
    const page = new Page(this, sessionId as string);
    await page.start();
    return page;
  }

  /** Ends the browser and removes its profile. */
  async close(): Promise<void> {
    this.#socket.close();
    try {
      this.#process.kill();
    } catch { /* already gone */ }
    await this.#process.status;
    await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
  }
}

/** Key names the tests press, with what Chromium needs to type them. */
const KEYS: Record<string, { code: string; keyCode: number; text?: string }> = {
  Enter: { code: "Enter", keyCode: 13, text: "\r" },
  Escape: { code: "Escape", keyCode: 27 },
  Tab: { code: "Tab", keyCode: 9 },
};

/** One tab. */
export class Page {
  /** The URL of every request the page made, in order. */
  readonly requests: string[] = [];
  /** Every error the page met, in order. */
  readonly errors: string[] = [];
  readonly #browser: Browser;
  readonly #session: string;

  constructor(browser: Browser, session: string) {
    this.#browser = browser;
    this.#session = session;
  }

  #send(method: string, params: Json = {}): Promise<Json> {
    return this.#browser.send(method, params, this.#session);
  }

  #on(method: string, fn: (params: Json) => void): () => void {
    return this.#browser.on(method, (params, session) => {
      if (session === this.#session) fn(params);
    });
  }

  /** Starts recording (called by {@link Browser.newPage}). */
  async start(): Promise<void> {
    this.#on("Network.requestWillBeSent", (p) => this.requests.push((p.request as Json).url as string));
    this.#on("Runtime.exceptionThrown", (p) => {
      const details = p.exceptionDetails as Json;
      this.errors.push(`exception: ${(details.exception as Json)?.description ?? details.text}`);
    });
    this.#on("Runtime.consoleAPICalled", (p) => {
      if (p.type !== "error") return;
      this.errors.push(`console.error: ${(p.args as Json[]).map((a) => a.value ?? a.description).join(" ")}`);
    });
    this.#on("Log.entryAdded", (p) => {
      const entry = p.entry as Json;
      if (entry.level === "error") this.errors.push(`${entry.source}: ${entry.text} ${entry.url ?? ""}`);
    });
    for (const domain of ["Page", "Runtime", "Network", "Log", "DOM", "CSS"]) {
      await this.#send(`${domain}.enable`);
    }
    // Headless tabs have no window focus: emulate it, so focus, :focus-visible and key events behave as in a
    // browser a person uses.
    await this.#send("Emulation.setFocusEmulationEnabled", { enabled: true });
  }

  /** Opens `url` and resolves once its load event fired. */
  async goto(url: string): Promise<void> {
    const loaded = this.#event("Page.loadEventFired");
    await this.#send("Page.navigate", { url });
    await loaded;
  }

  /** Reloads and resolves once the load event fired. */
  async reload(): Promise<void> {
    const loaded = this.#event("Page.loadEventFired");
    await this.#send("Page.reload", { ignoreCache: true });
    await loaded;
  }

  #event(method: string, timeoutMs = 20_000): Promise<Json> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stop();
        reject(new Error(`no ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      const stop = this.#on(method, (p) => {
        clearTimeout(timer);
        stop();
        resolve(p);
      });
    });
  }

  /** The value of a JavaScript expression in the page (a promise is awaited). */
  async eval<T = unknown>(expression: string): Promise<T> {
    const out = await this.#send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true });
    if (out.exceptionDetails) {
      const d = out.exceptionDetails as Json;
      throw new Error(`in the page: ${(d.exception as Json)?.description ?? d.text}\n  ${expression}`);
    }
    return (out.result as Json).value as T;
  }

  /** Waits until `expression` is truthy in the page and returns its value. */
  async waitFor<T = unknown>(expression: string, timeoutMs = 20_000): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const value = await this.eval<T>(expression);
      if (value) return value;
      if (performance.now() > deadline) {
        throw new Error(
          `not true within ${timeoutMs} ms: ${expression}; page errors: ${this.errors.join("; ")}`,
        );
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Presses a key as a person would: `Enter`, `Escape`, `Tab` or one printable character; `shift` held. */
  async press(key: string, o: { shift?: boolean } = {}): Promise<void> {
    const named = KEYS[key];
    const char = named ? undefined : key;
    if (!named && key.length !== 1) throw new Error(`press: no key ${key}`);
    const upper = char?.toUpperCase() ?? "";
    const event = {
      key,
      code: named?.code ?? (/\d/.test(upper) ? `Digit${upper}` : `Key${upper}`),
      windowsVirtualKeyCode: named?.keyCode ?? upper.charCodeAt(0),
      modifiers: o.shift ? 8 : 0,
    };
    const text = named ? named.text : char;
    await this.#send("Input.dispatchKeyEvent", { type: text ? "keyDown" : "rawKeyDown", ...event, text });
    await this.#send("Input.dispatchKeyEvent", { type: "keyUp", ...event });
  }

  /** Types text into the focused element (as an input method commits it). */
  async type(text: string): Promise<void> {
    await this.#send("Input.insertText", { text });
  }

  /** Clicks the middle of the element `selector` finds, with real mouse events. */
  async click(selector: string): Promise<void> {
    const box = await this.eval<{ x: number; y: number } | null>(`(() => {
      const el = document.querySelector(${JSON.stringify(selector)});
      if (!el) return null;
      el.scrollIntoView({ block: "center" });
      const r = el.getBoundingClientRect();
      return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
    })()`);
    if (!box) throw new Error(`click: nothing matches ${selector}`);
    for (const type of ["mousePressed", "mouseReleased"]) {
      await this.#send("Input.dispatchMouseEvent", { type, ...box, button: "left", clickCount: 1 });
    }
  }

  /** Writes a PNG of the visible page to `path` (for looking at a failing test's page). */
  async screenshot(path: string): Promise<void> {
    const { data } = await this.#send("Page.captureScreenshot", { format: "png" });
    await Deno.writeFile(path, Uint8Array.from(atob(data as string), (c) => c.charCodeAt(0)));
  }

  /** The platform fonts the browser drew the element's text with (family names). */
  async fontsOf(selector: string): Promise<string[]> {
    // Right after a load the text may not be laid out yet (no fonts used): wait for the fonts and a frame.
    await this.eval(
      `document.fonts.ready.then(() => new Promise((r) => requestAnimationFrame(() => r(true))))`,
    );
    const { root } = await this.#send("DOM.getDocument");
    const { nodeId } = await this.#send("DOM.querySelector", { nodeId: (root as Json).nodeId, selector });
    const { fonts } = await this.#send("CSS.getPlatformFontsForNode", { nodeId });
    return (fonts as Json[]).map((f) => f.familyName as string);
  }
}

/** Runs `fn` with a browser and closes it after. */
export async function withBrowser(fn: (browser: Browser) => Promise<void>): Promise<void> {
  const browser = await Browser.launch();
  try {
    await fn(browser);
  } finally {
    await browser.close();
  }
}

/** The requests of `page` that went anywhere but `origin` (data: URLs, which load nothing, left out). */
export function foreignRequests(page: Page, origin: string): string[] {
  return page.requests.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith("data:"));
}
