/**
 * A small Hugging Face Hub client: downloads model and dataset files into the same cache layout as Python's
 * `huggingface_hub`, so both share one cache.
 *
 * Layout: `<cache>/models--org--name/{blobs/<etag>, refs/<revision>, snapshots/<commit>/<file>}`, where a
 * snapshot file is a relative symlink to its blob, a blob is named by its ETag (the sha256 for LFS files,
 * the git blob id otherwise) and `refs/main` holds the commit `main` resolved to. Datasets live under
 * `datasets--org--name`. The cache is `HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
 *
 * Each file is resolved with a HEAD request to `<endpoint>/<repo>/resolve/<revision>/<file>` (commit from
 * `X-Repo-Commit`, blob id from `X-Linked-Etag`/`ETag`, size from `X-Linked-Size`/`Content-Length`), then
 * fetched from where the Hub redirects (its CDN for LFS files) into `blobs/<etag>.incomplete`, resuming an
 * interrupted download with a Range request, and checked (sha256 when the ETag is one, else the size)
 * before it takes its final name.
 *
 * Unlike huggingface_hub, a branch already resolved in the cache whose files are all present is used
 * without asking the Hub again (startup needs no network); pass `refresh: true` to look for a newer commit.
 *
 * @module
 */
import { isFile } from "./fs.ts";
import { createHash } from "node:crypto";
import { dirname, join, relative } from "node:path";

/** Kinds of Hub repository. */
export type RepoType = "model" | "dataset" | "space";

/** Progress of one file's download. */
export interface DownloadProgress {
  /** The repository, e.g. `skt/kobest_v1`. */
  repoId: string;
  /** The file's path inside the repository. */
  file: string;
  /** Bytes on disk so far, including any resumed part. */
  downloaded: number;
  /** Expected size, when the Hub said. */
  total: number | undefined;
}

/** Options shared by every Hub call; each falls back to the environment variable huggingface_hub reads. */
export interface HubOptions {
  /** Branch, tag or commit (default `main`). */
  revision?: string;
  /** Default `model`. */
  repoType?: RepoType;
  /** The hub cache folder holding `models--*` (default `HF_HUB_CACHE`, `$HF_HOME/hub`, `~/.cache/huggingface/hub`). */
  cacheDir?: string;
  /** Default `HF_ENDPOINT` or `https://huggingface.co`. */
  endpoint?: string;
  /**
   * Access token for gated and private repos (default `HF_TOKEN`, else the token file `hf auth login` saved);
   * an empty string sends none.
   */
  token?: string;
  /** Never touch the network (default: `HF_HUB_OFFLINE` is 1/true/yes/on). */
  offline?: boolean;
  /** Ask the Hub for the branch's current commit even when the cache already has every file. */
  refresh?: boolean;
  /** Called as each file downloads. */
  onProgress?: (progress: DownloadProgress) => void;
}

/** Options of {@link downloadModel}. */
export interface DownloadModelOptions extends HubOptions {
  /** Exactly these files, instead of the model's config, tokenizer and safetensors weights. */
  files?: string[];
}

/** What went wrong, so callers can react (e.g. fall back to local data when `offline`). */
export type HubErrorKind =
  | "offline"
  | "network"
  | "auth"
  | "not-found"
  | "integrity"
  | "http"
  | "protocol"
  | "input";

/**
 * Thrown by every Hub call; the message names the repo, the URL and what to do.
 * @example
 * ```ts
 * try { await downloadModel("org/m"); } catch (e) { if (e instanceof HubError && e.kind === "auth") askForToken(); }
 * ```
 */
export class HubError extends Error {
  constructor(
    readonly kind: HubErrorKind,
    message: string,
    readonly repoId: string,
    readonly url?: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "HubError";
  }
}

/** The settings a call runs with once options and environment are combined. */
export interface HubSettings {
  endpoint: string;
  cacheDir: string;
  token: string | undefined;
  offline: boolean;
}

/** Reads an environment variable, treating a denied permission as unset (so `--allow-env` stays optional). */
function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

function isTruthy(value: string | undefined): boolean {
  return ["1", "ON", "YES", "TRUE"].includes((value ?? "").trim().toUpperCase());
}

function homeDir(env: (name: string) => string | undefined): string {
  return env("HOME") ?? env("USERPROFILE") ?? ".";
}

function defaultHfHome(env: (name: string) => string | undefined): string {
  return env("HF_HOME") ?? join(env("XDG_CACHE_HOME") ?? join(homeDir(env), ".cache"), "huggingface");
}

function readStoredToken(env: (name: string) => string | undefined): string | undefined {
  const path = env("HF_TOKEN_PATH") ?? join(defaultHfHome(env), "token");
  try {
    return Deno.readTextFileSync(path).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Combines explicit options with huggingface_hub's environment variables (`HF_ENDPOINT`, `HF_HUB_CACHE`,
 * `HF_HOME`, `HF_TOKEN`, `HF_TOKEN_PATH`, `HF_HUB_OFFLINE`). `env` is injectable for tests.
 *
 * @example
 * ```ts
 * resolveHubSettings({}).cacheDir; // e.g. /root/.cache/huggingface/hub
 * ```
 */
export function resolveHubSettings(
  options: HubOptions = {},
  env: (name: string) => string | undefined = readEnv,
): HubSettings {
  const endpoint = (options.endpoint ?? env("HF_ENDPOINT") ?? "https://huggingface.co").replace(/\/+$/, "");
  const cacheDir = options.cacheDir ?? env("HF_HUB_CACHE") ?? env("HUGGINGFACE_HUB_CACHE") ??
    join(defaultHfHome(env), "hub");
  const token = options.token ?? env("HF_TOKEN") ?? env("HUGGING_FACE_HUB_TOKEN") ?? readStoredToken(env);
  return { endpoint, cacheDir, token, offline: options.offline ?? isTruthy(env("HF_HUB_OFFLINE")) };
}

// ---------------------------------------------------------------------------------------------------------
// Names, URLs and cache paths

const REPO_PART = /^[A-Za-z0-9_.-]{1,96}$/;
const COMMIT_HASH = /^[0-9a-f]{40}$/;
const SHA256 = /^[0-9a-f]{64}$/;

/**
 * Whether `s` looks like a Hub repo id: `org/name` (or a legacy single `name`).
 * @example
 * ```ts
 * isRepoId("skt/kobest_v1"); // true
 * isRepoId("./runs/a"); // false
 * ```
 */
export function isRepoId(s: string): boolean {
  const parts = s.split("/");
  return parts.length <= 2 &&
    parts.every((p) => REPO_PART.test(p) && p !== "." && p !== ".." && !p.includes("--"));
}

function checkRepoId(repoId: string): void {
  if (!isRepoId(repoId)) {
    throw new HubError("input", `"${repoId}" is not a Hub repo id (expected org/name)`, repoId);
  }
}

function checkFilePath(repoId: string, file: string): void {
  const parts = file.split("/");
  if (file === "" || file.includes("\\") || parts.some((p) => p === "" || p === "." || p === "..")) {
    throw new HubError("input", `${repoId}: "${file}" is not a file path inside a repo`, repoId);
  }
}

function checkRevision(repoId: string, revision: string): void {
  if (revision === "" || revision.split("/").some((p) => p === "" || p === "." || p === "..")) {
    throw new HubError(
      "input",
      `${repoId}: "${revision}" is not a revision (a branch, tag or commit)`,
      repoId,
    );
  }
}

const URL_PREFIX: Record<RepoType, string> = { model: "", dataset: "datasets/", space: "spaces/" };

/**
 * The cache folder of one repo, e.g. `<cacheDir>/models--org--name` or `<cacheDir>/datasets--org--name`.
 * @example
 * ```ts
 * repoCacheFolder("skt/kobest_v1", "dataset", "/c"); // "/c/datasets--skt--kobest_v1"
 * ```
 */
export function repoCacheFolder(repoId: string, repoType: RepoType, cacheDir: string): string {
  return join(cacheDir, `${repoType}s--${repoId.replaceAll("/", "--")}`);
}

/**
 * The URL the Hub serves a file from, as huggingface_hub builds it.
 * @example
 * ```ts
 * resolveUrl("https://huggingface.co", "model", "org/m", "main", "config.json");
 * // "https://huggingface.co/org/m/resolve/main/config.json"
 * ```
 */
export function resolveUrl(
  endpoint: string,
  repoType: RepoType,
  repoId: string,
  revision: string,
  file: string,
): string {
  const path = file.split("/").map(encodeURIComponent).join("/");
  return `${endpoint}/${URL_PREFIX[repoType]}${repoId}/resolve/${encodeURIComponent(revision)}/${path}`;
}

function listingUrl(endpoint: string, repoType: RepoType, repoId: string, revision: string): string {
  return `${endpoint}/api/${repoType}s/${repoId}/revision/${encodeURIComponent(revision)}`;
}

/** A call's fixed context: which repo, where, and how to reach the Hub. */
interface Ctx {
  repoId: string;
  repoType: RepoType;
  revision: string;
  settings: HubSettings;
  folder: string;
  refresh: boolean;
  onProgress?: (progress: DownloadProgress) => void;
}

function makeCtx(repoId: string, options: HubOptions): Ctx {
  checkRepoId(repoId);
  const revision = options.revision ?? "main";
  checkRevision(repoId, revision);
  const repoType = options.repoType ?? "model";
  if (!Object.hasOwn(URL_PREFIX, repoType)) {
    throw new HubError(
      "input",
      `${repoId}: repoType must be model, dataset or space, got "${repoType}"`,
      repoId,
    );
  }
  const settings = resolveHubSettings(options);
  return {
    repoId,
    repoType,
    revision,
    settings,
    folder: repoCacheFolder(repoId, repoType, settings.cacheDir),
    refresh: options.refresh ?? false,
    onProgress: options.onProgress,
  };
}

function snapshotPath(ctx: Ctx, commit: string, file: string): string {
  return join(ctx.folder, "snapshots", commit, ...file.split("/"));
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
}

/** The commit a revision resolves to in the cache, if it was resolved before. */
async function cachedCommit(ctx: Ctx): Promise<string | undefined> {
  if (COMMIT_HASH.test(ctx.revision)) return ctx.revision;
  try {
    const commit = (await Deno.readTextFile(join(ctx.folder, "refs", ...ctx.revision.split("/")))).trim();
    return COMMIT_HASH.test(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

async function writeRef(ctx: Ctx, commit: string): Promise<void> {
  if (ctx.revision === commit) return;
  const path = join(ctx.folder, "refs", ...ctx.revision.split("/"));
  await Deno.mkdir(dirname(path), { recursive: true });
  // huggingface_hub writes the bare hash with no newline; rename keeps readers from seeing a partial write.
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, commit);
  await Deno.rename(tmp, path);
}

async function allCached(ctx: Ctx, commit: string | undefined, files: string[]): Promise<boolean> {
  if (!commit) return false;
  for (const f of files) if (!(await isFile(snapshotPath(ctx, commit, f)))) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// HTTP

function offlineError(ctx: Ctx, file: string, url: string): HubError {
  return new HubError(
    "offline",
    `${ctx.repoId}: ${file} is not in the cache (${ctx.folder}) and the Hub may not be contacted ` +
      `(HF_HUB_OFFLINE is set or offline was requested); it would come from ${url}. ` +
      `Unset HF_HUB_OFFLINE to download it.`,
    ctx.repoId,
    url,
  );
}

function networkError(ctx: Ctx, url: string, cause: unknown): HubError {
  return new HubError(
    "network",
    `${ctx.repoId}: could not reach ${url} (${
      (cause as Error)?.message ?? cause
    }). Check the connection or ` +
      `HF_ENDPOINT; to run from the local cache only, set HF_HUB_OFFLINE=1.`,
    ctx.repoId,
    url,
  );
}

/** Turns a failed Hub response into an error that says what happened and what to do. */
function statusError(ctx: Ctx, res: Response, url: string, what: string): HubError {
  const code = res.headers.get("x-error-code") ?? "";
  const detail = res.headers.get("x-error-message");
  const suffix = detail ? ` (${detail})` : "";
  const status = res.status;
  if (status === 401 || status === 403) {
    const why = code === "RepoNotFound"
      ? `the repo does not exist, or it is private`
      : `the repo is gated or private`;
    return new HubError(
      "auth",
      `${ctx.repoId}: ${url} answered ${status}: ${why}${suffix}. For a gated model, accept its license on ` +
        `the model page and set HF_TOKEN to a token with access${
          ctx.settings.token ? " (the token sent was refused)" : ""
        }.`,
      ctx.repoId,
      url,
      status,
    );
  }
  if (status === 404) {
    const missing = code === "RevisionNotFound"
      ? `revision "${ctx.revision}" does not exist`
      : code === "RepoNotFound"
      ? `the ${ctx.repoType} repo does not exist`
      : `${what} was not found at revision "${ctx.revision}"`;
    return new HubError(
      "not-found",
      `${ctx.repoId}: ${missing}: ${url} answered 404${suffix}`,
      ctx.repoId,
      url,
      404,
    );
  }
  return new HubError(
    "http",
    `${ctx.repoId}: ${url} answered ${status} ${res.statusText}${suffix}`,
    ctx.repoId,
    url,
    status,
  );
}

function headersFor(ctx: Ctx, url: string, extra: Record<string, string> = {}): Headers {
  const headers = new Headers({ "user-agent": "kotransfer/0.1 (deno)", ...extra });
  // The token goes to the Hub only, never to the CDN a file redirects to (as requests/httpx behave).
  if (ctx.settings.token && new URL(url).origin === new URL(ctx.settings.endpoint).origin) {
    headers.set("authorization", `Bearer ${ctx.settings.token}`);
  }
  return headers;
}

async function request(ctx: Ctx, url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    throw networkError(ctx, url, e);
  }
}

/** What a HEAD on a resolve URL says about a file. */
interface FileMeta {
  commit: string;
  etag: string;
  size: number | undefined;
  /** Where the bytes are: the CDN for LFS files, the resolve URL otherwise. */
  downloadUrl: string;
}

function normalizeEtag(etag: string): string {
  return etag.replace(/^W\//, "").replace(/^"|"$/g, "");
}

function parseSize(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

/** HEADs a resolve URL, following the Hub's relative redirects (renamed repos) but not its CDN redirect. */
async function headFile(ctx: Ctx, url: string, file: string): Promise<FileMeta> {
  let current = url;
  for (let hop = 0; hop < 5; hop++) {
    const res = await request(ctx, current, {
      method: "HEAD",
      redirect: "manual",
      headers: headersFor(ctx, current, { "accept-encoding": "identity" }),
    });
    await res.body?.cancel();
    const location = res.headers.get("location");
    const isRedirect = res.status >= 300 && res.status < 400 && location !== null;
    if (isRedirect && !/^[a-z][a-z0-9+.-]*:/i.test(location)) {
      current = new URL(location, current).href;
      continue;
    }
    if (!isRedirect && !res.ok) throw statusError(ctx, res, current, file);
    const commit = res.headers.get("x-repo-commit");
    const etag = res.headers.get("x-linked-etag") ?? res.headers.get("etag");
    if (!commit || !etag) {
      throw new HubError(
        "protocol",
        `${ctx.repoId}: ${current} did not send X-Repo-Commit and an ETag; is ${ctx.settings.endpoint} a Hugging Face Hub endpoint?`,
        ctx.repoId,
        current,
      );
    }
    return {
      commit,
      etag: normalizeEtag(etag),
      // A redirect's own Content-Length describes the redirect, not the file.
      size: parseSize(
        res.headers.get("x-linked-size") ?? (isRedirect ? null : res.headers.get("content-length")),
      ),
      downloadUrl: isRedirect ? location : current,
    };
  }
  throw new HubError("protocol", `${ctx.repoId}: too many redirects from ${url}`, ctx.repoId, url);
}

// ---------------------------------------------------------------------------------------------------------
// Blob download

async function hashFile(path: string, hash: ReturnType<typeof createHash>): Promise<void> {
  using file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
}

/** Opens the download: a Range request from `have` bytes, or the whole file when the server ignores it. */
async function openBody(
  ctx: Ctx,
  meta: FileMeta,
  file: string,
  have: number,
): Promise<{ res: Response; resumed: boolean }> {
  const extra: Record<string, string> = { "accept-encoding": "identity" };
  if (have > 0) extra.range = `bytes=${have}-`;
  const res = await request(ctx, meta.downloadUrl, { headers: headersFor(ctx, meta.downloadUrl, extra) });
  if (have > 0 && res.status === 416) {
    // The partial file is not a prefix the server recognizes: start over.
    await res.body?.cancel();
    return openBody(ctx, meta, file, 0);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw statusError(ctx, res, meta.downloadUrl, file);
  }
  const resumed = res.status === 206 && (res.headers.get("content-range") ?? "").startsWith(`bytes ${have}-`);
  if (res.status === 206 && !resumed) {
    await res.body?.cancel();
    throw new HubError(
      "protocol",
      `${ctx.repoId}: ${meta.downloadUrl} answered a different range than bytes=${have}-`,
      ctx.repoId,
      meta.downloadUrl,
    );
  }
  return { res, resumed };
}

async function streamTo(
  ctx: Ctx,
  file: string,
  meta: FileMeta,
  res: Response,
  out: Deno.FsFile,
  start: number,
  hash: ReturnType<typeof createHash> | undefined,
): Promise<number> {
  let written = start;
  try {
    for await (const chunk of res.body ?? new ReadableStream<Uint8Array>()) {
      let done = 0;
      while (done < chunk.length) done += await out.write(chunk.subarray(done));
      hash?.update(chunk);
      written += chunk.length;
      ctx.onProgress?.({ repoId: ctx.repoId, file, downloaded: written, total: meta.size });
    }
  } catch (e) {
    throw new HubError(
      "network",
      `${ctx.repoId}: downloading ${file} from ${meta.downloadUrl} stopped after ${written}` +
        `${meta.size !== undefined ? ` of ${meta.size}` : ""} bytes (${(e as Error).message}); ` +
        `run again to resume from there.`,
      ctx.repoId,
      meta.downloadUrl,
    );
  }
  return written;
}

/** Checks a finished download: the sha256 when the ETag is one (LFS), otherwise the announced size. */
function verify(ctx: Ctx, file: string, meta: FileMeta, size: number, digest: string | undefined): void {
  if (meta.size !== undefined && size !== meta.size) {
    throw new HubError(
      "integrity",
      `${ctx.repoId}: ${file} from ${meta.downloadUrl} is ${size} bytes, but the Hub announced ${meta.size}`,
      ctx.repoId,
      meta.downloadUrl,
    );
  }
  if (digest !== undefined && digest !== meta.etag) {
    throw new HubError(
      "integrity",
      `${ctx.repoId}: ${file} from ${meta.downloadUrl} has sha256 ${digest}, expected ${meta.etag}; ` +
        `the download was corrupted and has been discarded`,
      ctx.repoId,
      meta.downloadUrl,
    );
  }
}

/** Downloads one blob into `blobs/<etag>`, resuming `<etag>.incomplete` when there is one. */
async function downloadBlob(ctx: Ctx, file: string, meta: FileMeta, blob: string): Promise<void> {
  const incomplete = `${blob}.incomplete`;
  await Deno.mkdir(dirname(blob), { recursive: true });
  let have = await fileSize(incomplete);
  if (meta.size !== undefined && have > meta.size) have = 0;
  const hash = SHA256.test(meta.etag) ? createHash("sha256") : undefined;
  let size = have;
  if (meta.size === undefined || have < meta.size) {
    const { res, resumed } = await openBody(ctx, meta, file, have);
    if (!resumed) have = 0;
    using out = await Deno.open(incomplete, {
      write: true,
      create: true,
      append: resumed,
      truncate: !resumed,
    });
    if (resumed && hash) await hashFile(incomplete, hash);
    size = await streamTo(ctx, file, meta, res, out, have, hash);
    await out.sync();
  } else if (hash) {
    await hashFile(incomplete, hash);
  }
  try {
    verify(ctx, file, meta, size, hash?.digest("hex"));
  } catch (e) {
    await Deno.remove(incomplete).catch(() => {});
    throw e;
  }
  await Deno.rename(incomplete, blob);
}

/** Points `snapshots/<commit>/<file>` at its blob with a relative symlink (a copy where symlinks fail). */
async function linkSnapshot(ctx: Ctx, commit: string, file: string, blob: string): Promise<string> {
  const target = snapshotPath(ctx, commit, file);
  await Deno.mkdir(dirname(target), { recursive: true });
  await Deno.remove(target).catch(() => {});
  try {
    await Deno.symlink(relative(dirname(target), blob), target);
  } catch {
    await Deno.copyFile(blob, target);
  }
  return target;
}

/** Resolves, downloads (if needed) and links one file; returns the commit the Hub resolved it at. */
async function fetchFile(
  ctx: Ctx,
  urlRevision: string,
  file: string,
): Promise<{ commit: string; path: string }> {
  const url = resolveUrl(ctx.settings.endpoint, ctx.repoType, ctx.repoId, urlRevision, file);
  const meta = await headFile(ctx, url, file);
  const existing = snapshotPath(ctx, meta.commit, file);
  if (await isFile(existing)) return { commit: meta.commit, path: existing };
  const blob = join(ctx.folder, "blobs", meta.etag);
  if (!(await isFile(blob))) await downloadBlob(ctx, file, meta, blob);
  return { commit: meta.commit, path: await linkSnapshot(ctx, meta.commit, file, blob) };
}

// ---------------------------------------------------------------------------------------------------------
// Public calls

async function downloadInto(ctx: Ctx, files: string[]): Promise<{ commit: string; paths: string[] }> {
  const known = await cachedCommit(ctx);
  if (files.length === 0) return { commit: known ?? ctx.revision, paths: [] };
  if (!ctx.refresh && known && await allCached(ctx, known, files)) {
    return { commit: known, paths: files.map((f) => snapshotPath(ctx, known, f)) };
  }
  if (ctx.settings.offline) {
    const missing = [];
    for (const f of files) if (!known || !(await isFile(snapshotPath(ctx, known, f)))) missing.push(f);
    const first = missing[0] ?? files[0];
    throw offlineError(
      ctx,
      first,
      resolveUrl(ctx.settings.endpoint, ctx.repoType, ctx.repoId, ctx.revision, first),
    );
  }
  try {
    return await downloadOnline(ctx, files, ctx.refresh ? undefined : known);
  } catch (e) {
    // As huggingface_hub does: when the Hub is unreachable, a complete cached snapshot still serves.
    if (e instanceof HubError && e.kind === "network" && known && await allCached(ctx, known, files)) {
      return { commit: known, paths: files.map((f) => snapshotPath(ctx, known, f)) };
    }
    throw e;
  }
}

async function downloadOnline(
  ctx: Ctx,
  files: string[],
  pinned: string | undefined,
): Promise<{ commit: string; paths: string[] }> {
  let commit = pinned;
  const paths: string[] = [];
  for (const f of files) {
    // Every file after the first is fetched at the first one's commit, so a push mid-download cannot mix versions.
    const got = await fetchFile(ctx, commit ?? ctx.revision, f);
    if (commit === undefined) {
      commit = got.commit;
      await writeRef(ctx, commit);
    }
    paths.push(got.path);
  }
  return { commit: commit ?? pinned ?? ctx.revision, paths };
}

/**
 * Downloads files of a Hub repo (model, dataset or space) into the shared cache and returns their local
 * paths, in order. Files already in the cache are not fetched again; with everything cached (or
 * `offline`), no request is made.
 *
 * @example
 * ```ts
 * const [train] = await downloadFiles("skt/kobest_v1", ["boolq/train-00000-of-00001.parquet"], {
 *   repoType: "dataset",
 * });
 * ```
 */
export async function downloadFiles(
  repoId: string,
  files: string[],
  options: HubOptions = {},
): Promise<string[]> {
  const ctx = makeCtx(repoId, options);
  for (const f of files) checkFilePath(repoId, f);
  return (await downloadInto(ctx, files)).paths;
}

/** A repo's file list at one commit. */
export interface RepoListing {
  commit: string;
  files: string[];
}

/**
 * Lists the files of a repo at a revision (`<endpoint>/api/models/<repo>/revision/<rev>`, or
 * `/api/datasets/...`), with the resolved commit.
 *
 * @example
 * ```ts
 * const { commit, files } = await listRepoFiles("org/model");
 * ```
 */
export async function listRepoFiles(repoId: string, options: HubOptions = {}): Promise<RepoListing> {
  return await listWith(makeCtx(repoId, options), options.revision ?? "main");
}

async function listWith(ctx: Ctx, revision: string): Promise<RepoListing> {
  const url = listingUrl(ctx.settings.endpoint, ctx.repoType, ctx.repoId, revision);
  if (ctx.settings.offline) {
    throw new HubError(
      "offline",
      `${ctx.repoId}: listing the repo needs ${url}, but HF_HUB_OFFLINE is set (or offline was requested)`,
      ctx.repoId,
      url,
    );
  }
  const res = await request(ctx, url, { headers: headersFor(ctx, url, { accept: "application/json" }) });
  if (!res.ok) {
    await res.body?.cancel();
    throw statusError(ctx, res, url, "the repo listing");
  }
  const body = await res.json().catch(() => undefined) as { sha?: unknown; siblings?: unknown } | undefined;
  const siblings = body?.siblings;
  if (typeof body?.sha !== "string" || !COMMIT_HASH.test(body.sha) || !Array.isArray(siblings)) {
    throw new HubError(
      "protocol",
      `${ctx.repoId}: ${url} did not return { sha, siblings[] }`,
      ctx.repoId,
      url,
    );
  }
  const files = siblings.map((s) => (s as { rfilename?: unknown })?.rfilename);
  if (!files.every((f): f is string => typeof f === "string")) {
    throw new HubError(
      "protocol",
      `${ctx.repoId}: ${url} returned siblings without rfilename`,
      ctx.repoId,
      url,
    );
  }
  return { commit: body.sha, files };
}

/** Small files a model folder needs besides its weights, fetched when the repo has them. */
export const MODEL_SIDE_FILES: readonly string[] = [
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "tokenizer.model",
  "added_tokens.json",
  "chat_template.jinja",
  "chat_template.json",
  "vocab.json",
  "merges.txt",
];

const INDEX_FILE = "model.safetensors.index.json";
const SINGLE_FILE = "model.safetensors";
/** A PEFT adapter repo's own files (its tokenizer files are among {@link MODEL_SIDE_FILES}). */
const ADAPTER_FILES = ["adapter_config.json", "adapter_model.safetensors"];

/**
 * Picks from a repo listing the files a model needs: config, generation config and tokenizer files, and the
 * safetensors index (whose shards come next) or the single `model.safetensors`. A PEFT adapter repo
 * (`adapter_config.json`, as transformers prefers it) gives its config, weights and tokenizer files.
 *
 * @example
 * ```ts
 * selectModelFiles(["README.md", "config.json", "model.safetensors", "pytorch_model.bin"]);
 * // ["config.json", "model.safetensors"]
 * ```
 */
export function selectModelFiles(files: readonly string[], repoId = "the repo"): string[] {
  const present = new Set(files);
  if (present.has(ADAPTER_FILES[0])) {
    if (!present.has(ADAPTER_FILES[1])) {
      throw new HubError("not-found", `${repoId} is a PEFT adapter without ${ADAPTER_FILES[1]}`, repoId);
    }
    return [...ADAPTER_FILES, ...MODEL_SIDE_FILES.filter((f) => f !== "config.json" && present.has(f))];
  }
  if (!present.has("config.json")) {
    throw new HubError(
      "not-found",
      `${repoId} has no config.json or adapter_config.json: it is not a transformers model or PEFT adapter`,
      repoId,
    );
  }
  const weights = present.has(INDEX_FILE) ? INDEX_FILE : present.has(SINGLE_FILE) ? SINGLE_FILE : undefined;
  if (!weights) {
    const bin = files.some((f) => f.startsWith("pytorch_model") && f.endsWith(".bin"));
    throw new HubError(
      "not-found",
      `${repoId} has no ${SINGLE_FILE} or ${INDEX_FILE}` +
        (bin ? " (only PyTorch .bin weights; convert them first)" : ""),
      repoId,
    );
  }
  return [...MODEL_SIDE_FILES.filter((f) => present.has(f)), weights];
}

async function shardsOf(ctx: Ctx, indexPath: string): Promise<string[]> {
  let map: unknown;
  try {
    map = (JSON.parse(await Deno.readTextFile(indexPath)) as { weight_map?: unknown }).weight_map;
  } catch (e) {
    throw new HubError(
      "protocol",
      `${ctx.repoId}: ${INDEX_FILE} is not valid JSON (${(e as Error).message})`,
      ctx.repoId,
    );
  }
  if (map === null || typeof map !== "object") {
    throw new HubError("protocol", `${ctx.repoId}: ${INDEX_FILE} has no weight_map object`, ctx.repoId);
  }
  const shards = [...new Set(Object.values(map as Record<string, unknown>))];
  for (const s of shards) {
    if (typeof s !== "string") {
      throw new HubError(
        "protocol",
        `${ctx.repoId}: ${INDEX_FILE} maps a tensor to ${JSON.stringify(s)}`,
        ctx.repoId,
      );
    }
    checkFilePath(ctx.repoId, s);
  }
  return (shards as string[]).sort();
}

/**
 * Whether a cached snapshot holds a whole model (config and every weight file the index names) or a whole
 * PEFT adapter.
 */
async function cachedModelComplete(ctx: Ctx, commit: string | undefined): Promise<boolean> {
  if (commit && await allCached(ctx, commit, ADAPTER_FILES)) return true;
  if (!commit || !(await allCached(ctx, commit, ["config.json"]))) return false;
  if (await allCached(ctx, commit, [SINGLE_FILE])) return true;
  if (!(await allCached(ctx, commit, [INDEX_FILE]))) return false;
  return await allCached(ctx, commit, await shardsOf(ctx, snapshotPath(ctx, commit, INDEX_FILE)));
}

/**
 * Downloads a model (config, generation config, tokenizer files, safetensors weights: the index and its
 * shards, or the single file) into the shared cache and returns the local snapshot folder, which
 * {@link openModelFolder} can open. A model already complete in the cache is returned without any request.
 *
 * @example
 * ```ts
 * const dir = await downloadModel("TinyLlama/TinyLlama-1.1B-Chat-v1.0");
 * ```
 */
export async function downloadModel(repoId: string, options: DownloadModelOptions = {}): Promise<string> {
  const ctx = makeCtx(repoId, options);
  if (options.files) {
    for (const f of options.files) checkFilePath(repoId, f);
    const { commit } = await downloadInto(ctx, options.files);
    return join(ctx.folder, "snapshots", commit);
  }
  const known = await cachedCommit(ctx);
  if (!ctx.refresh && await cachedModelComplete(ctx, known)) return join(ctx.folder, "snapshots", known!);
  if (ctx.settings.offline) {
    throw offlineError(
      ctx,
      "config.json",
      resolveUrl(ctx.settings.endpoint, ctx.repoType, repoId, ctx.revision, "config.json"),
    );
  }
  const listing = await listWith(ctx, ctx.refresh ? ctx.revision : known ?? ctx.revision);
  await writeRef(ctx, listing.commit);
  const pinned = { ...ctx, revision: listing.commit };
  const { paths } = await downloadOnline(pinned, selectModelFiles(listing.files, repoId), listing.commit);
  const index = paths.find((p) => p.endsWith(INDEX_FILE));
  if (index) await downloadOnline(pinned, await shardsOf(ctx, index), listing.commit);
  return join(ctx.folder, "snapshots", listing.commit);
}

/**
 * An existing folder is returned as is; an `org/name` repo id (optionally `org/name@revision`) is
 * downloaded with {@link downloadModel} and its snapshot folder returned.
 *
 * @example
 * ```ts
 * const dir = await resolveModelPath(flags.model); // "./runs/a" or "Qwen/Qwen2.5-0.5B"
 * ```
 */
export async function resolveModelPath(
  pathOrRepoId: string,
  options: DownloadModelOptions = {},
): Promise<string> {
  try {
    if ((await Deno.stat(pathOrRepoId)).isDirectory) return pathOrRepoId;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const [repoId, revision] = pathOrRepoId.split("@", 2);
  if (!repoId.includes("/") || !isRepoId(repoId)) {
    throw new HubError(
      "input",
      `"${pathOrRepoId}" is neither an existing folder nor a Hub repo id like org/name`,
      pathOrRepoId,
    );
  }
  try {
    return await downloadModel(repoId, revision ? { ...options, revision } : options);
  } catch (e) {
    if (e instanceof HubError && (e.kind === "not-found" || e.kind === "auth")) {
      throw new HubError(
        e.kind,
        `"${pathOrRepoId}" is not a local folder, and ${e.message}`,
        e.repoId,
        e.url,
        e.status,
      );
    }
    throw e;
  }
}
