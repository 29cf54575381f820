/**
 * The few assertions the tests use, with the names and behaviour of Deno std's `@std/assert` (which lives on
 * JSR, unreachable from these machines). Deep equality comes from `node:util`.
 * @module
 */
import { inspect, isDeepStrictEqual } from "node:util";

/** Thrown by every assertion here. */
export class AssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AssertionError";
  }
}

/** Asserts that `cond` is truthy. */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new AssertionError(msg);
}

/** Asserts deep, strict equality. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new AssertionError(
      `${msg ? msg + ": " : ""}values differ\n  actual:   ${inspect(actual, { depth: 6 })}\n  expected: ${
        inspect(expected, { depth: 6 })
      }`,
    );
  }
}

/** Asserts that two values are not deeply equal. */
export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  if (isDeepStrictEqual(actual, expected)) {
    throw new AssertionError(`${msg ? msg + ": " : ""}expected values to differ: ${inspect(actual)}`);
  }
}

/** Asserts that `text` contains `part`. */
export function assertStringIncludes(text: string, part: string, msg?: string): void {
  if (!text.includes(part)) {
    throw new AssertionError(`${msg ? msg + ": " : ""}expected ${inspect(text)} to include ${inspect(part)}`);
  }
}

/** Asserts that `text` matches `re`. */
export function assertMatch(text: string, re: RegExp, msg?: string): void {
  if (!re.test(text)) {
    throw new AssertionError(`${msg ? msg + ": " : ""}expected ${inspect(text)} to match ${re}`);
  }
}

/** Asserts |actual - expected| <= tolerance. */
export function assertAlmostEquals(actual: number, expected: number, tolerance = 1e-7, msg?: string): void {
  if (!(Math.abs(actual - expected) <= tolerance)) {
    throw new AssertionError(`${msg ? msg + ": " : ""}${actual} is not within ${tolerance} of ${expected}`);
  }
}

// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;

function checkError(e: unknown, cls?: ErrorClass, includes?: string): Error {
  if (!(e instanceof Error)) throw new AssertionError(`expected an Error, got ${inspect(e)}`);
  if (cls && !(e instanceof (cls as unknown as typeof Error))) {
    throw new AssertionError(`expected ${cls.name}, got ${(e as Error).name}: ${(e as Error).message}`);
  }
  if (includes && !e.message.includes(includes)) {
    throw new AssertionError(`expected the message to include ${inspect(includes)}, got: ${e.message}`);
  }
  return e;
}

/** Asserts that `fn` throws (an instance of `cls` whose message includes `includes`); returns the error. */
export function assertThrows(fn: () => unknown, cls?: ErrorClass, includes?: string): Error {
  try {
    fn();
  } catch (e) {
    return checkError(e, cls, includes);
  }
  throw new AssertionError("expected the function to throw");
}

/** Async version of {@link assertThrows}. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  cls?: ErrorClass,
  includes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    return checkError(e, cls, includes);
  }
  throw new AssertionError("expected the promise to reject");
}
