/**
 * The pages the servers offer people: the chat page at `/` of `deno task serve`, the arena at `/` of
 * `deno task arena`. They are plain HTML, CSS and JavaScript files in `serve/ui/`, read from there and
 * served by name (each page lists its files; nothing else under the folder is served), with a
 * Content-Security-Policy that lets a page load only its own server's files and talk only to its own
 * server: no inline script or style, no CDN, no web font (Korean text is drawn with a system font such as
 * fonts-nanum's NanumGothic), so a page works offline and no reply a model writes can run as code in it.
 *
 * @module
 */

/**
 * The pages' Content-Security-Policy: scripts, styles, images and requests only from the page's own origin.
 *
 * @example
 * ```ts
 * new Response(html, { headers: { "content-security-policy": PAGE_CSP } });
 * ```
 */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  // The favicon is an empty data: URL, so the browser asks the server for no /favicon.ico.
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** The pages there are. */
export type PageName = "chat" | "arena";

/** Each page's files by the path they are served at, read from `serve/ui/`. */
const PAGE_FILES: Record<PageName, Readonly<Record<string, string>>> = {
  chat: { "/": "chat.html", "/ui/chat.js": "chat.js", "/ui/ui.css": "ui.css" },
  arena: { "/": "arena.html", "/ui/arena.js": "arena.js", "/ui/ui.css": "ui.css" },
};

const CONTENT_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};

const UI_DIR = new URL("./ui/", import.meta.url);
const cache = new Map<string, Promise<Uint8Array>>();

/**
 * Whether `path` (without a trailing slash, `/` for the root) is one of `page`'s files.
 *
 * @example
 * ```ts
 * isPagePath("chat", "/ui/chat.js"); // true
 * isPagePath("chat", "/ui/../deno.json"); // false
 * ```
 */
export function isPagePath(page: PageName, path: string): boolean {
  return Object.hasOwn(PAGE_FILES[page], path);
}

/**
 * The response for one of `page`'s files (a HEAD request gets the headers alone); files are read once per
 * process. Throws for a path that is not one of its files.
 *
 * @example
 * ```ts
 * if (isPagePath("chat", path)) return await pageResponse("chat", path, req.method === "HEAD");
 * ```
 */
export async function pageResponse(page: PageName, path: string, headOnly = false): Promise<Response> {
  if (!isPagePath(page, path)) throw new RangeError(`${path} is not a file of the ${page} page`);
  const name = PAGE_FILES[page][path];
  const url = new URL(name, UI_DIR);
  if (!cache.has(name)) cache.set(name, Deno.readFile(url));
  let bytes: Uint8Array;
  try {
    bytes = await cache.get(name)!;
  } catch (e) {
    cache.delete(name);
    throw new Error(`cannot read the page file ${url.pathname}: ${(e as Error).message}`);
  }
  return new Response(headOnly ? null : bytes as Uint8Array<ArrayBuffer>, {
    headers: {
      "content-type": CONTENT_TYPES[name.slice(name.lastIndexOf(".") + 1)],
      "content-security-policy": PAGE_CSP,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "cache-control": "no-cache",
    },
  });
}
