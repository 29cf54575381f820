/**
 * A bounded pool of concurrent requests, for the answer and judge calls of a win-rate run.
 *
 * @module
 */

/** Runs `fn` over `items` with at most `limit` at once; stops starting new ones after the first failure. */
export async function forEachPooled<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const failures: unknown[] = [];
  const worker = async () => {
    while (failures.length === 0 && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        failures.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failures.length > 0) throw failures[0];
}
