/**
 * A deterministic stand-in for the GPU engine: replies come from a function of the prompt, split into
 * "tokens" (a word with its trailing space), one `onText` per token, optionally paced. It records what it was
 * asked and how often it saw an abort, so tests can check what the server did to it.
 * @module
 */
import type {
  ChatMessage,
  GenerateRequest,
  GenerateResult,
  GenerationEngine,
} from "../../generate/engine_contract.ts";

/** Options for {@link FakeEngine}. */
export interface FakeEngineOptions {
  modelId?: string;
  maxContextTokens?: number;
  /** The reply to a rendered prompt; an echo of the last line by default. */
  reply?: (prompt: string) => string;
  /** Pause before each token, so streams and aborts can be observed. */
  tokenDelayMs?: number;
  /** Keep every request in {@link FakeEngine.requests} (default true; off for long runs that measure memory). */
  record?: boolean;
}

/** Words with their trailing whitespace: the fake's tokens. */
export function fakeTokens(text: string): string[] {
  return text.match(/\s*\S+\s*|\s+/g) ?? [];
}

/** Prompts containing this make `generate` reject, as a GPU failure would. */
export const FAIL_MARKER = "ENGINE_FAIL";

/**
 * Prompts containing this make `generate` hang: it never emits, ignores its abort signal and settles only
 * when {@link FakeEngine.releaseHung} is called, as a wedged device would.
 */
export const HANG_MARKER = "ENGINE_HANG";

/**
 * The fake engine.
 *
 * @example
 * ```ts
 * const engine = new FakeEngine({ reply: () => "안녕하세요 반갑습니다" });
 * ```
 */
export class FakeEngine implements GenerationEngine {
  readonly modelId: string;
  readonly maxContextTokens: number;
  /** Every request generate received, in order. */
  readonly requests: GenerateRequest[] = [];
  /** Generations that ended because their signal aborted. */
  aborts = 0;
  /** Generations running now. */
  active = 0;
  /** Most generations ever running at once. */
  peakActive = 0;
  /** While set, generations wait for it before their first token. */
  gate?: Promise<void>;
  readonly #reply: (prompt: string) => string;
  readonly #delay: number;
  readonly #record: boolean;
  #watchers: (() => void)[] = [];
  #hung: (() => void)[] = [];

  constructor(opts: FakeEngineOptions = {}) {
    this.modelId = opts.modelId ?? "fake-model";
    this.maxContextTokens = opts.maxContextTokens ?? 4096;
    this.#reply = opts.reply ?? ((p) => `echo: ${p.split("\n").at(-2) ?? p}`);
    this.#delay = opts.tokenDelayMs ?? 0;
    this.#record = opts.record ?? true;
  }

  countTokens(text: string): number {
    return fakeTokens(text).length;
  }

  renderChat(messages: ChatMessage[]): string {
    if (messages.at(-1)?.role === "assistant") {
      throw new Error("the last message must not be the assistant's");
    }
    return messages.map((m) => `<|${m.role}|>${m.content}`).join("\n") + "\n<|assistant|>";
  }

  async generate(
    req: GenerateRequest,
    onText: (delta: string) => void,
    signal: AbortSignal,
  ): Promise<GenerateResult> {
    if (this.#record) this.requests.push(req);
    this.active++;
    this.peakActive = Math.max(this.peakActive, this.active);
    this.#notify();
    let text = "";
    let n = 0;
    const result = (finishReason: GenerateResult["finishReason"]): GenerateResult => {
      if (finishReason === "abort") this.aborts++;
      return { text, finishReason, promptTokens: this.countTokens(req.prompt), completionTokens: n };
    };
    try {
      if (req.prompt.includes(FAIL_MARKER)) throw new Error("simulated device lost");
      if (req.prompt.includes(HANG_MARKER)) {
        await new Promise<void>((resolve) => this.#hung.push(resolve));
        return result("stop");
      }
      if (this.gate && !(await settleOrAbort(this.gate, signal))) return result("abort");
      for (const token of fakeTokens(this.#reply(req.prompt))) {
        if (n >= req.maxTokens) return result("length");
        if (this.#delay > 0 && !(await sleepUnlessAborted(this.#delay, signal))) return result("abort");
        if (signal.aborted) return result("abort");
        text += token;
        n++;
        onText(token);
      }
      return result("stop");
    } finally {
      this.active--;
      this.#notify();
    }
  }

  /** Lets every hung generation finish (each returns what it has: nothing). */
  releaseHung(): void {
    for (const resolve of this.#hung.splice(0)) resolve();
  }

  /** Resolves once `pred(this)` holds, re-checked whenever a generation starts or ends. */
  async until(pred: (e: FakeEngine) => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this)) {
      if (Date.now() > deadline) throw new Error(`fake engine: condition not met within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 20);
        this.#watchers.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  #notify(): void {
    for (const w of this.#watchers.splice(0)) w();
  }
}

/** True after `ms`, false as soon as `signal` aborts (the timer is cleared, so tests leak nothing). */
function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** True when `p` settled first, false when `signal` aborted first. */
function settleOrAbort(p: Promise<void>, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => resolve(false);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    });
  });
}
