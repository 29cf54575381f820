/**
 * A local stand-in for the Hugging Face Hub, for tests: serves `resolve` URLs the way huggingface.co does
 * (X-Repo-Commit, ETag = git blob id, LFS files redirected to a CDN on another origin with X-Linked-Etag =
 * sha256 and X-Linked-Size), the `api/{models,datasets}/<repo>/revision/<rev>` listing, Range requests,
 * gated repos (401 without the token, 403 with a wrong one) and the Hub's X-Error-Code headers.
 * Faults can be injected: a corrupted file, a wrong announced size, a connection cut mid-file.
 * @module
 */
import { createHash } from "node:crypto";

/** One repository served by the fake Hub. */
export interface FakeRepo {
  type: "model" | "dataset";
  id: string;
  /** 40 hex digits. */
  commit: string;
  files: Record<string, Uint8Array | string>;
  /** Needs `Authorization: Bearer <FakeHub.token>`. */
  gated?: boolean;
}

/** One request the fake Hub or its CDN answered. */
export interface LoggedRequest {
  server: "hub" | "cdn";
  method: string;
  path: string;
  range: string | null;
  authorization: string | null;
}

interface StoredFile {
  bytes: Uint8Array;
  lfs: boolean;
  sha256: string;
  gitSha1: string;
}

/** Files stored with Git LFS on the real Hub (weights); everything else is a regular git blob. */
function isLfs(path: string): boolean {
  return /\.(safetensors|bin|parquet)$/.test(path);
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The id git gives a blob, which is the ETag the Hub sends for non-LFS files. */
export function gitBlobId(bytes: Uint8Array): string {
  return createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
}

function store(content: Uint8Array | string, path: string): StoredFile {
  const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
  return { bytes, lfs: isLfs(path), sha256: sha256Hex(bytes), gitSha1: gitBlobId(bytes) };
}

/** A fake Hub on 127.0.0.1 with a CDN on a second port (a different origin, as cdn-lfs.huggingface.co is). */
export class FakeHub {
  /** The token gated repos accept. */
  readonly token = "hf_fake_token_ok";
  readonly requests: LoggedRequest[] = [];
  /** Paths served with one byte flipped (same length). */
  readonly corrupt = new Set<string>();
  /** Paths whose announced X-Linked-Size is one too many. */
  readonly wrongSize = new Set<string>();
  /** Path → bytes after which the next download of it is cut off. */
  readonly cutOnce = new Map<string, number>();
  private readonly repos = new Map<string, { repo: FakeRepo; files: Map<string, StoredFile> }>();
  private readonly blobs = new Map<string, { path: string; file: StoredFile }>();
  private hub!: Deno.HttpServer<Deno.NetAddr>;
  private cdn!: Deno.HttpServer<Deno.NetAddr>;

  private constructor(repos: FakeRepo[]) {
    for (const repo of repos) {
      const files = new Map(Object.entries(repo.files).map(([p, c]) => [p, store(c, p)]));
      this.repos.set(`${repo.type}:${repo.id}`, { repo, files });
      for (const [path, file] of files) this.blobs.set(file.sha256, { path, file });
    }
  }

  /** Starts both servers on free ports. */
  static start(repos: FakeRepo[]): FakeHub {
    const hub = new FakeHub(repos);
    const opts = {
      hostname: "127.0.0.1",
      port: 0,
      onListen() {},
      onError: () => new Response(null, { status: 500 }),
    };
    hub.hub = Deno.serve(opts, (req) => hub.handleHub(req));
    hub.cdn = Deno.serve(opts, (req) => hub.handleCdn(req));
    return hub;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.hub.addr.port}`;
  }

  /** sha256 and git blob id of a served file. */
  fileIds(type: FakeRepo["type"], id: string, path: string): { sha256: string; gitSha1: string } {
    const f = this.repos.get(`${type}:${id}`)!.files.get(path)!;
    return { sha256: f.sha256, gitSha1: f.gitSha1 };
  }

  async close(): Promise<void> {
    await Promise.all([this.hub.shutdown(), this.cdn.shutdown()]);
  }

  private log(server: "hub" | "cdn", req: Request): void {
    this.requests.push({
      server,
      method: req.method,
      path: decodeURIComponent(new URL(req.url).pathname),
      range: req.headers.get("range"),
      authorization: req.headers.get("authorization"),
    });
  }

  private handleHub(req: Request): Response {
    this.log("hub", req);
    const parts = new URL(req.url).pathname.split("/").slice(1).map(decodeURIComponent);
    if (parts[0] === "api") return this.listing(req, parts);
    const type = parts[0] === "datasets" ? "dataset" : "model";
    const rest = type === "dataset" ? parts.slice(1) : parts;
    if (rest[2] !== "resolve") return error(404, "", "not a resolve URL");
    return this.resolve(req, type, `${rest[0]}/${rest[1]}`, rest[3], rest.slice(4).join("/"));
  }

  /** Finds a repo the request may see, or the error response the Hub would give. */
  private access(req: Request, type: FakeRepo["type"], id: string, revision: string) {
    const entry = this.repos.get(`${type}:${id}`);
    const auth = req.headers.get("authorization");
    // Like huggingface.co, an unknown repo looks the same as a private one to an anonymous caller.
    if (!entry) return error(auth ? 404 : 401, "RepoNotFound", "Repository not found");
    if (entry.repo.gated && auth !== `Bearer ${this.token}`) {
      return error(auth ? 403 : 401, "GatedRepo", `Access to ${type} ${id} is restricted`);
    }
    if (revision !== "main" && revision !== entry.repo.commit) {
      return error(404, "RevisionNotFound", `Invalid rev id: ${revision}`);
    }
    return entry;
  }

  private listing(req: Request, parts: string[]): Response {
    // api/{models,datasets}/<org>/<name>/revision/<rev>
    const type = parts[1] === "datasets" ? "dataset" : "model";
    const entry = this.access(req, type, `${parts[2]}/${parts[3]}`, parts[5]);
    if (entry instanceof Response) return entry;
    const siblings = [...entry.files.keys()].map((rfilename) => ({ rfilename }));
    return Response.json({ id: entry.repo.id, sha: entry.repo.commit, siblings });
  }

  private resolve(
    req: Request,
    type: FakeRepo["type"],
    id: string,
    revision: string,
    path: string,
  ): Response {
    const entry = this.access(req, type, id, revision);
    if (entry instanceof Response) return entry;
    const file = entry.files.get(path);
    if (!file) return error(404, "EntryNotFound", `${path} does not exist on "${revision}"`);
    const headers: Record<string, string> = { "x-repo-commit": entry.repo.commit };
    if (file.lfs) {
      headers.location = `http://127.0.0.1:${this.cdn.addr.port}/lfs/${file.sha256}?name=${
        encodeURIComponent(path)
      }`;
      headers["x-linked-etag"] = `"${file.sha256}"`;
      headers["x-linked-size"] = String(file.bytes.length + (this.wrongSize.has(path) ? 1 : 0));
      headers.etag = `"${file.gitSha1}"`;
      return new Response(null, { status: 302, headers });
    }
    headers.etag = `W/"${file.gitSha1}"`;
    return this.serveBytes(req, path, file.bytes, headers);
  }

  private handleCdn(req: Request): Response {
    this.log("cdn", req);
    const sha = new URL(req.url).pathname.replace("/lfs/", "");
    const blob = this.blobs.get(sha);
    if (!blob) return error(404, "", "no such object");
    return this.serveBytes(req, blob.path, blob.file.bytes, {});
  }

  private serveBytes(
    req: Request,
    path: string,
    original: Uint8Array,
    headers: Record<string, string>,
  ): Response {
    let bytes = original;
    if (this.corrupt.has(path)) {
      bytes = original.slice();
      bytes[bytes.length >> 1] ^= 0xff;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.get("range") ?? "");
    let status = 200;
    if (range) {
      const start = Number(range[1]);
      if (start >= bytes.length) return new Response(null, { status: 416 });
      headers["content-range"] = `bytes ${start}-${bytes.length - 1}/${bytes.length}`;
      bytes = bytes.subarray(start);
      status = 206;
    }
    headers["content-length"] = String(bytes.length);
    const cut = this.cutOnce.get(path);
    if (cut !== undefined && req.method === "GET") {
      this.cutOnce.delete(path);
      return new Response(truncatedStream(bytes.subarray(0, cut)), { status, headers });
    }
    return new Response(bytes.slice(), { status, headers });
  }
}

/** A body that sends `head` and then ends early, so the client sees fewer bytes than Content-Length. */
function truncatedStream(head: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(head);
      controller.close();
    },
  });
}

function error(status: number, code: string, message: string): Response {
  const headers: Record<string, string> = { "x-error-message": message };
  if (code) headers["x-error-code"] = code;
  return Response.json({ error: message }, { status, headers });
}
