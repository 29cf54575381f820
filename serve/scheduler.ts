/**
 * First-in, first-out admission: at most `maxConcurrent` holders at once, at most `maxQueue` waiting, the
 * rest turned away at once. Waiters whose signal aborts leave the queue without taking a slot, so a client
 * that gives up while queued costs nothing.
 * @module
 */

/**
 * Thrown by {@link FifoScheduler.acquire} when every slot is busy and the queue is full.
 *
 * @example
 * ```ts
 * try {
 *   await gate.acquire();
 * } catch (e) {
 *   if (e instanceof QueueFullError) return tooManyRequests(e.message);
 *   throw e;
 * }
 * ```
 */
export class QueueFullError extends Error {
  constructor(running: number, queued: number) {
    super(`the server is busy: ${running} running and ${queued} queued (the limits); retry later`);
    this.name = "QueueFullError";
  }
}

/**
 * Thrown to waiters (and later callers) once {@link FifoScheduler.close} has been called.
 *
 * @example
 * ```ts
 * gate.close();
 * await gate.acquire(); // rejects with SchedulerClosedError
 * ```
 */
export class SchedulerClosedError extends Error {
  constructor() {
    super("the server is shutting down");
    this.name = "SchedulerClosedError";
  }
}

/** A held slot. `release` is idempotent. */
export interface Slot {
  release(): void;
}

interface Waiter {
  grant: (slot: Slot) => void;
  fail: (err: unknown) => void;
}

/**
 * A FIFO gate for generations.
 *
 * @example
 * ```ts
 * const gate = new FifoScheduler(2, 8);
 * const slot = await gate.acquire(request.signal); // QueueFullError when 2 run and 8 wait
 * try {
 *   await generate();
 * } finally {
 *   slot.release();
 * }
 * ```
 */
export class FifoScheduler {
  readonly maxConcurrent: number;
  readonly maxQueue: number;
  #running = 0;
  #closed = false;
  readonly #queue: Waiter[] = [];
  readonly #idle: (() => void)[] = [];

  constructor(maxConcurrent: number, maxQueue: number) {
    if (!Number.isSafeInteger(maxConcurrent) || maxConcurrent < 1) {
      throw new RangeError(`maxConcurrent must be an integer ≥ 1, got ${maxConcurrent}`);
    }
    if (!Number.isSafeInteger(maxQueue) || maxQueue < 0) {
      throw new RangeError(`maxQueue must be an integer ≥ 0, got ${maxQueue}`);
    }
    this.maxConcurrent = maxConcurrent;
    this.maxQueue = maxQueue;
  }

  /** Slots held now. */
  get running(): number {
    return this.#running;
  }

  /** Callers waiting for a slot. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Resolves with a slot once one is free and every earlier caller has had theirs. Rejects with
   * {@link QueueFullError} when the queue is full, with `signal.reason` if the signal aborts first, and with
   * {@link SchedulerClosedError} after {@link close}.
   */
  acquire(signal?: AbortSignal): Promise<Slot> {
    if (this.#closed) return Promise.reject(new SchedulerClosedError());
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#running < this.maxConcurrent && this.#queue.length === 0) {
      return Promise.resolve(this.#take());
    }
    if (this.#queue.length >= this.maxQueue) {
      return Promise.reject(new QueueFullError(this.#running, this.#queue.length));
    }
    return new Promise<Slot>((resolve, reject) => {
      const onAbort = () => {
        const i = this.#queue.indexOf(waiter);
        if (i >= 0) this.#queue.splice(i, 1);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        grant: (slot) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(slot);
        },
        fail: (err) => {
          signal?.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(waiter);
    });
  }

  /** Refuses new callers and rejects everyone still waiting; holders keep their slots. */
  close(): void {
    this.#closed = true;
    for (const w of this.#queue.splice(0)) w.fail(new SchedulerClosedError());
  }

  /** Resolves when no slot is held (at once if none is). */
  whenIdle(): Promise<void> {
    if (this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #take(): Slot {
    this.#running++;
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.#running--;
        this.#handOn();
      },
    };
  }

  #handOn(): void {
    while (this.#running < this.maxConcurrent && this.#queue.length > 0) {
      this.#queue.shift()!.grant(this.#take());
    }
    if (this.#running === 0) { for (const resolve of this.#idle.splice(0)) resolve(); }
  }
}
