/**
 * Server-sent events over a ReadableStream, written as OpenAI does: `data: {json}\n\n` per event and
 * `data: [DONE]\n\n` at the end. Writes after the client has gone are dropped instead of throwing.
 * @module
 */

const encoder = new TextEncoder();

/**
 * A writable end for one SSE response. `onCancel` runs when the client stops reading.
 *
 * @example
 * ```ts
 * const sse = new SseStream(() => controller.abort());
 * sse.send({ hello: "world" });
 * sse.done();
 * return new Response(sse.readable, { headers: SSE_HEADERS });
 * ```
 */
export class SseStream {
  readonly readable: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #open = true;

  constructor(onCancel: () => void) {
    this.readable = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      cancel: () => {
        this.#open = false;
        onCancel();
      },
    });
  }

  /** False once the client has gone or the stream was closed. */
  get open(): boolean {
    return this.#open;
  }

  /** Sends one JSON event. */
  send(event: unknown): void {
    this.#write(`data: ${JSON.stringify(event)}\n\n`);
  }

  /** Sends `data: [DONE]` and closes the stream. */
  done(): void {
    this.#write("data: [DONE]\n\n");
    this.close();
  }

  /** Closes the stream without `[DONE]` (after an error event). */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    try {
      this.#controller.close();
    } catch {
      // The client cancelled between the check and the close: nothing left to do.
    }
  }

  #write(text: string): void {
    if (!this.#open) return;
    try {
      this.#controller.enqueue(encoder.encode(text));
    } catch {
      this.#open = false;
    }
  }
}

/** Response headers for an event stream. */
export const SSE_HEADERS: Record<string, string> = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  "x-accel-buffering": "no",
};
