/**
 * Errors in OpenAI's JSON shape, `{ "error": { "message", "type", "param", "code" } }`, so OpenAI clients
 * surface the message and the offending field.
 * @module
 */

/** OpenAI's error `type` values this server uses. */
export type ApiErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "not_found_error"
  | "rate_limit_error"
  | "server_error"
  | "timeout_error";

/** The body of an error response. */
export interface ApiErrorBody {
  error: { message: string; type: ApiErrorType; param: string | null; code: string | null };
}

/**
 * An error that becomes an HTTP response: status, OpenAI error type, the request field at fault and a code.
 *
 * @example
 * ```ts
 * throw new ApiError(400, "temperature must be a number in [0, 2], got \"hot\"", {
 *   param: "temperature",
 *   code: "invalid_value",
 * });
 * ```
 */
export class ApiError extends Error {
  readonly status: number;
  readonly type: ApiErrorType;
  readonly param: string | null;
  readonly code: string | null;
  /** Extra response headers (e.g. `Allow`, `Retry-After`). */
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    message: string,
    opts: { type?: ApiErrorType; param?: string; code?: string; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.type = opts.type ?? defaultType(status);
    this.param = opts.param ?? null;
    this.code = opts.code ?? null;
    this.headers = opts.headers ?? {};
  }

  /** The JSON body OpenAI clients expect. */
  toBody(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }

  /** The error as an HTTP response. */
  toResponse(): Response {
    return jsonResponse(this.toBody(), this.status, this.headers);
  }
}

function defaultType(status: number): ApiErrorType {
  if (status === 401) return "authentication_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status === 504) return "timeout_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/**
 * A JSON response with the given status and headers.
 *
 * @example
 * ```ts
 * const res = jsonResponse({ status: "ok" }, 200);
 * ```
 */
export function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}
