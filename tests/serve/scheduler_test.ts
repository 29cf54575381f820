import { FifoScheduler, QueueFullError, SchedulerClosedError } from "../../serve/scheduler.ts";
import { assertEquals, assertRejects, assertThrows } from "../asserts.ts";

Deno.test("scheduler: slots go to waiters first in, first out; a full queue rejects at once", async () => {
  const gate = new FifoScheduler(2, 2);
  const order: string[] = [];
  const a = await gate.acquire();
  const b = await gate.acquire();
  const c = gate.acquire().then((s) => (order.push("c"), s));
  const d = gate.acquire().then((s) => (order.push("d"), s));
  assertEquals([gate.running, gate.queued], [2, 2]);
  await assertRejects(() => gate.acquire(), QueueFullError, "2 running and 2 queued");
  b.release();
  b.release(); // idempotent: must not free a second slot
  const sc = await c;
  assertEquals([gate.running, gate.queued, order], [2, 1, ["c"]]);
  a.release();
  const sd = await d;
  assertEquals(order, ["c", "d"]);
  sc.release();
  sd.release();
  assertEquals([gate.running, gate.queued], [0, 0]);
});

Deno.test("scheduler: an aborted waiter leaves the queue without taking a slot", async () => {
  const gate = new FifoScheduler(1, 3);
  const held = await gate.acquire();
  const ctl = new AbortController();
  const leaving = gate.acquire(ctl.signal);
  const staying = gate.acquire();
  ctl.abort(new Error("client gone"));
  await assertRejects(() => leaving, Error, "client gone");
  assertEquals(gate.queued, 1);
  held.release();
  (await staying).release();
  assertEquals(gate.running, 0);
  await assertRejects(
    () => gate.acquire(AbortSignal.abort(new Error("already gone"))),
    Error,
    "already gone",
  );
});

Deno.test("scheduler: close rejects waiters and newcomers; whenIdle waits for holders", async () => {
  const gate = new FifoScheduler(1, 1);
  const held = await gate.acquire();
  const waiting = gate.acquire();
  let idle = false;
  const idleP = gate.whenIdle().then(() => idle = true);
  gate.close();
  await assertRejects(() => waiting, SchedulerClosedError);
  await assertRejects(() => gate.acquire(), SchedulerClosedError);
  await Promise.resolve();
  assertEquals(idle, false);
  held.release();
  await idleP;
  assertEquals(idle, true);
  assertThrows(() => new FifoScheduler(0, 1), RangeError, "maxConcurrent");
  assertThrows(() => new FifoScheduler(1, -1), RangeError, "maxQueue");
});
