/**
 * The arena's HTTP server (`deno task arena`): the page at `/` (`serve/ui/arena.html`, see `pages.ts`) and
 * the small JSON API it calls, over one person's {@link ArenaSession}:
 *
 * - `GET /api/state`: the next item (the question and the two answers in the order shown, no model names),
 *   the progress, the vote an undo would take back, Table 1 so far and the agreement with other judges;
 * - `POST /api/vote` `{"item": KEY, "vote": "A" | "B" | "tie"}`, `POST /api/skip` `{"item": KEY}`,
 *   `POST /api/undo` `{"item": KEY}` (the item of the last vote): each answers with the new state once the
 *   vote or undo is in the results file and the tables next to it are rewritten.
 *
 * Errors come in OpenAI's error shape, as the model server's do: 400 (`invalid_json`, `invalid_value` with
 * the field in `param`), 403 (a request from another origin), 404 (`unknown_item`, `unknown_route`), 405,
 * 409 (`already_voted`, `stale_undo`, `nothing_to_undo`), 413, 415 (a POST that is not
 * `application/json`: a page elsewhere cannot send one without the browser asking this server first, which it
 * never allows, so no other site can vote in a person's name).
 *
 * @module
 */
import { ArenaRequestError, type ArenaSession, type ArenaTables } from "../eval/winrate/arena_session.ts";
import type { HumanVote } from "../eval/winrate/human.ts";
import type { OrderRule } from "../eval/winrate/judgments.ts";
import type { PairSummary } from "../eval/winrate/summary.ts";
import { readJson } from "./body.ts";
import { ApiError, jsonResponse } from "./errors.ts";
import { isPagePath, pageResponse } from "./pages.ts";

/** What `GET /api/state` (and every POST) answers. */
export interface ArenaState {
  /** `human:<name>`. */
  judge: string;
  /** How questions are shown and counted. */
  rule: OrderRule;
  /** Items voted on, and items in all. */
  progress: { done: number; total: number };
  /** The item to vote on, or null when every item is voted on. */
  item: { key: string; question: string; answers: [string, string] } | null;
  /** The item whose vote an undo takes back. */
  undo: string | null;
  /** Table 1 from the votes so far: one summary per pair, the table's note, and the agreement lines. */
  table: { pairs: PairSummary[]; note: string; agreement: string[] };
}

/** Options of {@link startArenaServer}. */
export interface ArenaServerOptions {
  /** Interface to bind (default 127.0.0.1). */
  hostname?: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** One line per request and per failure; silent when absent. */
  log?: (line: string) => void;
}

/** A running arena. */
export interface ArenaServer {
  /** Base URL, e.g. `http://127.0.0.1:8090`; the page is at `/`. */
  readonly url: string;
  /** Stops serving; resolves once every response has ended and the tables are written. */
  close(): Promise<void>;
}

const VOTES = new Set<string>(["A", "B", "tie"]);
const MAX_BODY_BYTES = 64 * 1024;

/** Status of each refusal of the session's. */
const REFUSALS: Record<ArenaRequestError["code"], number> = {
  unknown_item: 404,
  already_voted: 409,
  stale_undo: 409,
  nothing_to_undo: 409,
};

/**
 * The state the page shows.
 *
 * @example
 * ```ts
 * arenaState(session, session.tables()).progress; // { done: 3, total: 40 }
 * ```
 */
export function arenaState(session: ArenaSession, tables: ArenaTables): ArenaState {
  const item = session.next();
  return {
    judge: session.plan.judge,
    rule: session.plan.rule,
    progress: session.progress(),
    item: item ? { key: item.key, question: item.question.text, answers: item.shown } : null,
    undo: session.lastVote()?.key ?? null,
    table: {
      pairs: tables.summary.pairs,
      note: tables.table.split("\n").at(-1)!,
      agreement: tables.agreement,
    },
  };
}

/**
 * Serves the arena for `session` and returns at once (the port is bound when this returns).
 *
 * @example
 * ```ts
 * const arena = startArenaServer(session, { port: 8090 });
 * console.log(`vote at ${arena.url}/`);
 * ```
 */
export function startArenaServer(session: ArenaSession, opts: ArenaServerOptions): ArenaServer {
  const log = opts.log ?? (() => {});
  // Votes and undos change the file one at a time, each followed by the tables it makes.
  let writes: Promise<unknown> = Promise.resolve();
  const serial = <T>(work: () => Promise<T>): Promise<T> => {
    const next = writes.then(work);
    writes = next.catch(() => {});
    return next;
  };
  const state = async () => arenaState(session, await serial(() => session.writeTables()));

  async function api(req: Request, path: string): Promise<Response> {
    if (path === "/api/state") {
      allow(req, "GET");
      return jsonResponse(arenaState(session, session.tables()));
    }
    const action = { "/api/vote": "vote", "/api/skip": "skip", "/api/undo": "undo" }[path];
    if (!action) {
      throw new ApiError(
        404,
        `no route ${req.method} ${path}; the arena serves /, /api/state, /api/vote, ` +
          "/api/skip and /api/undo",
        { code: "unknown_route" },
      );
    }
    allow(req, "POST");
    sameOrigin(req);
    const body = await readJson(req, MAX_BODY_BYTES);
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw new ApiError(400, 'expected a JSON object with "item"', { code: "invalid_json" });
    }
    const { item, vote } = body as Record<string, unknown>;
    if (typeof item !== "string" || item === "") {
      throw new ApiError(400, `"item" must be the key of the item shown, got ${JSON.stringify(item)}`, {
        param: "item",
        code: "invalid_value",
      });
    }
    if (action === "vote") {
      if (typeof vote !== "string" || !VOTES.has(vote)) {
        throw new ApiError(
          400,
          `"vote" must be "A", "B" or "tie", got ${JSON.stringify(vote) ?? "nothing"}`,
          {
            param: "vote",
            code: "invalid_value",
          },
        );
      }
      await serial(() => session.vote(item, vote as HumanVote));
    } else if (action === "skip") {
      session.skip(item);
    } else {
      await serial(() => session.undo(item));
    }
    return jsonResponse(await state());
  }

  const server = Deno.serve({
    hostname: opts.hostname ?? "127.0.0.1",
    port: opts.port,
    onListen: () => {},
  }, async (req) => {
    const path = new URL(req.url).pathname.replace(/\/+$/, "") || "/";
    let res: Response;
    try {
      if (isPagePath("arena", path)) {
        allow(req, "GET");
        res = await pageResponse("arena", path, req.method === "HEAD");
      } else {
        res = await api(req, path);
      }
    } catch (e) {
      res = toApiError(e, log).toResponse();
    }
    log(`${req.method} ${path} ${res.status}`);
    return res;
  });
  const addr = server.addr;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return {
    url: `http://${host}:${addr.port}`,
    close: async () => {
      await server.shutdown();
      await writes;
    },
  };
}

function allow(req: Request, method: "GET" | "POST"): void {
  if (req.method === method || (method === "GET" && req.method === "HEAD")) return;
  const allowed = method === "GET" ? "GET, HEAD" : "POST";
  throw new ApiError(405, `${req.method} is not allowed here; use ${allowed}`, {
    code: "method_not_allowed",
    headers: { allow: allowed },
  });
}

/** A vote must come from the arena's own page: JSON (which another site cannot send unasked), same origin. */
function sameOrigin(req: Request): void {
  const type = req.headers.get("content-type") ?? "";
  if (!/^application\/json\b/i.test(type)) {
    throw new ApiError(415, `send the body as application/json, not ${JSON.stringify(type)}`, {
      code: "unsupported_media_type",
    });
  }
  const origin = req.headers.get("origin");
  if (origin !== null && origin !== new URL(req.url).origin) {
    throw new ApiError(403, `requests from ${origin} may not vote here`, { code: "forbidden_origin" });
  }
}

function toApiError(e: unknown, log: (line: string) => void): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof ArenaRequestError) return new ApiError(REFUSALS[e.code], e.message, { code: e.code });
  const message = e instanceof Error ? e.message : String(e);
  log(`internal error: ${message}`);
  return new ApiError(500, `internal error: ${message}`, { code: "internal_error" });
}
