/**
 * Stop strings over streamed text. A stop string may arrive split across deltas, so text that could be the
 * start of one is held back until the next delta settles it; the stop string itself is never emitted.
 * @module
 */

/**
 * Filters a stream of text deltas, cutting it at the first stop string.
 *
 * @example
 * ```ts
 * const m = new StopMatcher(["\nUser:"]);
 * m.push("Hello\nUs"); // { text: "Hello", stopped: false } — "\nUs" is held back
 * m.push("er: hi");    // { text: "", stopped: true }
 * ```
 */
export class StopMatcher {
  readonly #stops: string[];
  #held = "";
  #stopped = false;

  constructor(stops: readonly string[]) {
    this.#stops = stops.filter((s) => s.length > 0);
  }

  /** True once a stop string has been seen; later pushes emit nothing. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Adds a delta; returns the text now safe to emit and whether a stop string was reached. */
  push(delta: string): { text: string; stopped: boolean } {
    if (this.#stopped) return { text: "", stopped: true };
    const buf = this.#held + delta;
    const cut = this.#firstStop(buf);
    if (cut >= 0) {
      this.#stopped = true;
      this.#held = "";
      return { text: buf.slice(0, cut), stopped: true };
    }
    const keep = this.#partialStopSuffix(buf);
    this.#held = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep), stopped: false };
  }

  /** Releases held-back text at the end of generation (nothing after a stop). */
  flush(): string {
    const rest = this.#stopped ? "" : this.#held;
    this.#held = "";
    return rest;
  }

  #firstStop(buf: string): number {
    let best = -1;
    for (const s of this.#stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (best < 0 || i < best)) best = i;
    }
    return best;
  }

  /** Length of the longest suffix of `buf` that is a proper prefix of some stop string. */
  #partialStopSuffix(buf: string): number {
    let longest = 0;
    for (const s of this.#stops) {
      for (let len = Math.min(s.length - 1, buf.length); len > longest; len--) {
        if (buf.endsWith(s.slice(0, len))) {
          longest = len;
          break;
        }
      }
    }
    return longest;
  }
}
