/**
 * Drawing the report in headless Chromium: the check that its charts really render, and the PNG export.
 *
 * Why Chromium and not `@napi-rs/canvas` for PNGs: the PNGs then come from the very page the user opens
 * (same Chart.js build, same fonts, same layout), the command needs `--allow-run` for one program rather
 * than `--allow-ffi` (which would let native code do anything), and the end-to-end test needs Chromium
 * anyway. The page itself hands its canvases over (`canvas.toDataURL()`, see `page_scripts.ts`) through
 * `--dump-dom`, so no DevTools connection and no network permission are needed.
 *
 * @module
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

/**
 * The browser looked for by default: `chromium` on PATH (Debian's `chromium` package puts it there). Tasks
 * grant `--allow-run=chromium`, which Deno resolves on PATH when it starts.
 *
 * @example
 * ```ts
 * await findChromium(DEFAULT_CHROMIUM);
 * ```
 */
export const DEFAULT_CHROMIUM = "chromium";

/**
 * How to get a browser that draws Korean text.
 *
 * @example
 * ```ts
 * console.error(`no browser: ${CHROMIUM_INSTALL_HINT}`);
 * ```
 */
export const CHROMIUM_INSTALL_HINT = "install it with `apt-get install -y chromium fonts-nanum` " +
  "(fonts-nanum draws the Korean text)";

/**
 * Flags for a headless run that works as root in a container and opens no connection of its own: the
 * sandbox cannot start as root (the page is our own file, with a CSP that allows no network), and without
 * the background-networking flags Chromium keeps trying to reach Google's services.
 *
 * @example
 * ```ts
 * new Deno.Command("chromium", { args: [...HEADLESS_FLAGS, "--dump-dom", url] });
 * ```
 */
export const HEADLESS_FLAGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-extensions",
  "--no-first-run",
  "--hide-scrollbars",
  "--mute-audio",
];

/**
 * Thrown when no Chromium is found where it is looked for; the message says how to install it.
 *
 * @example
 * ```ts
 * await findChromium("/opt/none/chromium"); // ChromiumMissingError: headless Chromium not found at /opt/none/chromium: install it with …
 * ```
 */
export class ChromiumMissingError extends Error {
  constructor(path: string) {
    super(
      `headless Chromium not found ${
        path.includes("/") ? "at" : "on PATH as"
      } ${path}: ${CHROMIUM_INSTALL_HINT}`,
    );
    this.name = "ChromiumMissingError";
  }
}

/**
 * Checks that the Chromium binary exists and returns it: a path is looked at, a bare name is run once with
 * `--version` (so it is found on PATH exactly as it will be started).
 *
 * @example
 * ```ts
 * const chromium = await findChromium(); // "chromium", or ChromiumMissingError saying how to install it
 * ```
 */
export async function findChromium(path: string = DEFAULT_CHROMIUM): Promise<string> {
  try {
    if (!/[\\/]/.test(path)) {
      await new Deno.Command(path, { args: ["--version"], stdout: "null", stderr: "null" }).output();
      return path;
    }
    if ((await Deno.stat(path)).isFile) return path;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  throw new ChromiumMissingError(path);
}

/** What the page recorded about one chart. */
export interface RenderedChart {
  id: string;
  title: string;
  /** Canvas size in device pixels. */
  width: number;
  height: number;
  /** Pixels that are not the white background. */
  painted: number;
  /** Data elements (points, bars) with a value that Chart.js placed at finite coordinates. */
  elements: number;
  /** The canvas as PNG, when asked for. */
  png?: Uint8Array;
}

/** What the page recorded after drawing. */
export interface PageRender {
  charts: RenderedChart[];
  /** Uncaught errors, failed loads, rejected promises and `console.error` calls, in order. */
  errors: string[];
  /** Which of the page's Korean fonts the browser has. */
  fonts: Record<string, boolean>;
}

/** Options of {@link renderPage}. */
export interface RenderPageOptions {
  /** The browser (default {@link DEFAULT_CHROMIUM}). */
  chromium?: string;
  /** Also return each chart as PNG. */
  exportPng?: boolean;
  /** Also write a screenshot of the window to this path. */
  screenshot?: string;
  /** Window size in CSS pixels (default 1280×2000). */
  windowSize?: readonly [number, number];
  /** Device pixels per CSS pixel (default 1; 2 gives sharper PNGs). */
  scale?: number;
  /** Give up after this long (default 60 s). */
  timeoutMs?: number;
}

const RESULT_ELEMENT = /<script type="application\/json" id="render-result">([\s\S]*?)<\/script>/;

/**
 * Opens a report page in headless Chromium and returns what the page recorded while drawing.
 *
 * @example
 * ```ts
 * const render = await renderPage("runs/report.html", { screenshot: "runs/report.png" });
 * render.errors; // []
 * render.charts.every((c) => c.painted > 0); // true
 * ```
 */
export async function renderPage(htmlPath: string, options: RenderPageOptions = {}): Promise<PageRender> {
  const chromium = await findChromium(options.chromium);
  const [width, height] = options.windowSize ?? [1280, 2000];
  const url = pathToFileURL(resolve(htmlPath)).href + (options.exportPng ? "#export-png" : "");
  const profile = await Deno.makeTempDir({ prefix: "kotransfer-chromium-" });
  try {
    const args = [
      ...HEADLESS_FLAGS,
      `--user-data-dir=${profile}`,
      `--window-size=${width},${height}`,
      `--force-device-scale-factor=${options.scale ?? 1}`,
      ...(options.screenshot ? [`--screenshot=${resolve(options.screenshot)}`] : []),
      "--dump-dom",
      url,
    ];
    const { stdout, stderr } = await runChromium(chromium, args, options.timeoutMs ?? 60_000);
    if (options.screenshot) await checkWritten(options.screenshot, stderr);
    return parseRender(stdout, stderr, htmlPath);
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

async function runChromium(
  chromium: string,
  args: string[],
  timeoutMs: number,
): Promise<{ stdout: string; stderr: string }> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const out = await new Deno.Command(chromium, {
      args,
      stdout: "piped",
      stderr: "piped",
      signal: abort.signal,
    })
      .output();
    const text = {
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
    if (abort.signal.aborted) {
      throw new Error(`${chromium} did not finish within ${timeoutMs / 1000} s${stderrTail(text.stderr)}`);
    }
    if (!out.success) throw new Error(`${chromium} exited with code ${out.code}${stderrTail(text.stderr)}`);
    return text;
  } finally {
    clearTimeout(timer);
  }
}

/** The last lines of Chromium's stderr, without its D-Bus complaints (there is no session bus here). */
function stderrTail(stderr: string): string {
  const lines = stderr.split("\n").filter((l) => l.trim() !== "" && !l.includes("dbus"));
  return lines.length === 0 ? "" : `; its last messages:\n${lines.slice(-12).join("\n")}`;
}

async function checkWritten(path: string, stderr: string): Promise<void> {
  try {
    if ((await Deno.stat(path)).size > 0) return;
  } catch {
    // reported below
  }
  throw new Error(`Chromium wrote no screenshot to ${path}${stderrTail(stderr)}`);
}

interface RawRender {
  charts: (Omit<RenderedChart, "png"> & { png?: string })[];
  errors: string[];
  fonts: Record<string, boolean>;
}

function parseRender(dom: string, stderr: string, htmlPath: string): PageRender {
  const text = RESULT_ELEMENT.exec(dom)?.[1] ?? "";
  if (text.trim() === "") {
    throw new Error(
      `${htmlPath}: the page recorded nothing in #render-result (is it a kotransfer report?)${
        stderrTail(stderr)
      }`,
    );
  }
  const raw = JSON.parse(text) as RawRender;
  return {
    errors: raw.errors,
    fonts: raw.fonts,
    charts: raw.charts.map(({ png, ...chart }) =>
      png === undefined ? chart : { ...chart, png: decodePngDataUrl(png) }
    ),
  };
}

/**
 * The bytes of a `data:image/png;base64,…` URL.
 *
 * @example
 * ```ts
 * decodePngDataUrl(canvasDataUrl).slice(0, 4); // Uint8Array [137, 80, 78, 71]
 * ```
 */
export function decodePngDataUrl(url: string): Uint8Array {
  const prefix = "data:image/png;base64,";
  if (!url.startsWith(prefix)) throw new Error(`expected a PNG data URL, got ${url.slice(0, 40)}…`);
  const binary = atob(url.slice(prefix.length));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/**
 * Draws a report page and writes each chart as `<dir>/<chart id>.png` (at twice the CSS resolution).
 * Fails when the page reported errors or a chart drew nothing.
 *
 * @example
 * ```ts
 * await writeChartPngs("runs/report.html", "runs/report-png"); // ["runs/report-png/train-loss.png", …]
 * ```
 */
export async function writeChartPngs(
  htmlPath: string,
  dir: string,
  options: Pick<RenderPageOptions, "chromium" | "timeoutMs"> = {},
): Promise<string[]> {
  const render = await renderPage(htmlPath, { ...options, exportPng: true, scale: 2 });
  if (render.errors.length > 0) {
    throw new Error(`${htmlPath}: the page reported errors while drawing:\n${render.errors.join("\n")}`);
  }
  await Deno.mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const chart of render.charts) {
    if (!chart.png || chart.painted === 0) throw new Error(`${htmlPath}: chart ${chart.id} drew nothing`);
    const path = `${dir}/${chart.id}.png`;
    await Deno.writeFile(path, chart.png);
    written.push(path);
  }
  return written;
}
