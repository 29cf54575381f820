/**
 * One generation as the server sees it: the engine call wrapped with stop-string enforcement and a clear
 * account of why it ended. Aborts come from outside (client gone, timeout, shutdown) through `signal`; a stop
 * string seen by the server aborts the engine from inside.
 * @module
 */
import type { GenerateRequest, GenerationEngine } from "../generate/engine_contract.ts";
import { StopMatcher } from "./stop.ts";

/** The result of {@link runGeneration}. */
export interface GenerationOutcome {
  /** The text sent to the client, cut before any stop string. */
  text: string;
  /** `abort` only when `signal` aborted; a stop string the server caught reads as `stop`. */
  finishReason: "stop" | "length" | "abort";
  promptTokens: number;
  completionTokens: number;
  /** The engine's prompt ids, generated ids and stop id, when it reports them (for `logprobs`). */
  promptIds?: number[];
  ids?: number[];
  stopId?: number;
}

/**
 * The engine rejected or misbehaved; the server answers 500 and stays up.
 *
 * @example
 * ```ts
 * runGeneration(engine, req, emit, signal).catch((e) => e instanceof EngineFailure && log(e.message));
 * ```
 */
export class EngineFailure extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "EngineFailure";
  }
}

/**
 * Runs `req` on `engine`, passing each safe piece of text to `emit` and cutting at the first stop string.
 * Rejects only with {@link EngineFailure}.
 *
 * @example
 * ```ts
 * const out = await runGeneration(engine, req, (t) => send(t), request.signal);
 * if (out.finishReason === "abort") return; // the client has gone
 * ```
 */
export async function runGeneration(
  engine: GenerationEngine,
  req: GenerateRequest,
  emit: (text: string) => void,
  signal: AbortSignal,
): Promise<GenerationOutcome> {
  const matcher = new StopMatcher(req.stop);
  const inner = new AbortController();
  const forward = () => inner.abort(signal.reason);
  signal.addEventListener("abort", forward, { once: true });
  let text = "";
  const send = (piece: string) => {
    if (piece === "") return;
    text += piece;
    emit(piece);
  };
  const onText = (delta: string) => {
    if (typeof delta !== "string") throw new EngineFailure(`engine emitted ${typeof delta}, not text`);
    if (matcher.stopped || inner.signal.aborted) return;
    const r = matcher.push(delta);
    send(r.text);
    if (r.stopped) inner.abort(new Error("stop string reached"));
  };
  try {
    const result = await callEngine(engine, req, onText, inner.signal);
    send(matcher.flush());
    const finishReason = matcher.stopped ? "stop" : signal.aborted ? "abort" : result?.finishReason;
    if (finishReason === undefined || finishReason === "abort" && !signal.aborted) {
      throw new EngineFailure(
        result ? "the engine reported an abort nobody asked for" : "the engine failed after it was aborted",
      );
    }
    return {
      text,
      finishReason,
      promptTokens: result?.promptTokens ?? engine.countTokens(req.prompt),
      completionTokens: result && !matcher.stopped ? result.completionTokens : countOrZero(engine, text),
      ...(result?.promptIds ? { promptIds: result.promptIds } : {}),
      ...(result?.ids ? { ids: result.ids } : {}),
      ...(result?.stopId !== undefined && !matcher.stopped ? { stopId: result.stopId } : {}),
    };
  } finally {
    signal.removeEventListener("abort", forward);
  }
}

/** The engine's result, or undefined when it rejected because it was aborted (which is allowed). */
async function callEngine(
  engine: GenerationEngine,
  req: GenerateRequest,
  onText: (delta: string) => void,
  signal: AbortSignal,
) {
  try {
    const result = await engine.generate(req, onText, signal);
    if (typeof result !== "object" || result === null || typeof result.text !== "string") {
      throw new EngineFailure("the engine returned no result");
    }
    return result;
  } catch (e) {
    if (signal.aborted && !(e instanceof EngineFailure)) return undefined;
    if (e instanceof EngineFailure) throw e;
    throw new EngineFailure(`generation failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

function countOrZero(engine: GenerationEngine, text: string): number {
  return text === "" ? 0 : engine.countTokens(text);
}
