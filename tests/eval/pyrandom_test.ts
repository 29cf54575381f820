import { PyRandom } from "../../eval/pyrandom.ts";
import { assertEquals, assertThrows } from "../asserts.ts";

// Every expected value below was printed by CPython 3.11.7 on this machine, e.g.
//   python3 -c "import random; r = random.Random(1234); print([r.random() for _ in range(5)])"
// Each test names the Python expression it mirrors.

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

Deno.test("pyrandom: random() matches random.Random(1234).random() x5", () => {
  const r = new PyRandom(1234);
  assertEquals(range(5).map(() => r.random()), [
    0.9664535356921388,
    0.4407325991753527,
    0.007491470058587191,
    0.9109759624491242,
    0.939268997363764,
  ]);
});

Deno.test("pyrandom: getrandbits of 32, 1, 31, 33, 64 and 100 bits in a row", () => {
  // r = random.Random(1234); [r.getrandbits(k) for k in (32, 1, 31, 33, 64, 100)]
  const r = new PyRandom(1234);
  assertEquals([32, 1, 31, 33, 64, 100].map((k) => r.getrandbits(k)), [
    4150886329n,
    1n,
    946466063n,
    501869158n,
    16804540376168033093n,
    776990780702432415618358179138n,
  ]);
  assertEquals(new PyRandom(5).getrandbits(0), 0n);
});

Deno.test("pyrandom: _randbelow across word boundaries", () => {
  // r = random.Random(1234); [r._randbelow(n) for n in [1,2,3,10,1000,2**32-1,2**32,2**32+1,2**53-1]]
  const r = new PyRandom(1234);
  const ns = [1, 2, 3, 10, 1000, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1];
  assertEquals(ns.map((n) => r.randbelow(n)), [
    0,
    0,
    0,
    1,
    932,
    4048155970,
    2500648409,
    360511942,
    3194273549260854,
  ]);
});

Deno.test("pyrandom: seeds are split into 32-bit words of |seed|", () => {
  // for s in [0, -1234, 2**32, 2**64+5, 123456789012345678901234567890]:
  //     r = random.Random(s); print(r.random(), r.getrandbits(32))
  const cases: [number | bigint, number, bigint][] = [
    [0, 0.8444218515250481, 3255389356n],
    [-1234, 0.9664535356921388, 1892932127n],
    [2 ** 32, 0.11299430095636409, 1794561286n],
    [2n ** 64n + 5n, 0.5105783769365112, 3778534651n],
    [123456789012345678901234567890n, 0.7275084571578186, 685135262n],
  ];
  for (const [seed, first, bits] of cases) {
    const r = new PyRandom(seed);
    assertEquals([r.random(), r.getrandbits(32)], [first, bits], `seed ${seed}`);
  }
});

Deno.test("pyrandom: sample(range(3665), 5) four times from one generator (set branch)", () => {
  // r = random.Random(1234); [r.sample(range(3665), 5) for _ in range(4)]
  const r = new PyRandom(1234);
  const population = range(3665);
  assertEquals(range(4).map(() => r.sample(population, 5)), [
    [3187, 1805, 478, 30, 371],
    [3305, 2384, 143, 2750, 2838],
    [343, 403, 3139, 1452, 969],
    [71, 126, 3230, 64, 1417],
  ]);
});

Deno.test("pyrandom: sample takes the pool branch when n <= setsize", () => {
  // r = random.Random(1234); r.sample(range(40), 30), r.sample(range(10), 10)
  const r = new PyRandom(1234);
  assertEquals(r.sample(range(40), 30), [
    28,
    7,
    0,
    5,
    2,
    36,
    6,
    22,
    15,
    37,
    30,
    25,
    29,
    11,
    20,
    19,
    31,
    24,
    14,
    4,
    35,
    34,
    3,
    27,
    23,
    21,
    17,
    1,
    10,
    8,
  ]);
  assertEquals(r.sample(range(10), 10), [7, 1, 8, 4, 6, 0, 2, 3, 5, 9]);
  // The k <= 5 threshold (setsize 21), from fresh generators; the two branches differ in the last pick
  // here, so each case only passes with the right branch:
  // random.Random(1234).sample(range(21), 5) -> pool branch; random.Random(1234).sample(range(22), 5) -> set
  assertEquals(new PyRandom(1234).sample(range(21), 5), [14, 3, 0, 2, 1]);
  assertEquals(new PyRandom(1234).sample(range(22), 5), [14, 3, 0, 2, 18]);
});

Deno.test("pyrandom: shuffle", () => {
  // r = random.Random(1234); x = list(range(20)); r.shuffle(x); x
  const xs = range(20);
  new PyRandom(1234).shuffle(xs);
  assertEquals(xs, [19, 13, 4, 9, 16, 7, 6, 8, 17, 18, 5, 12, 15, 11, 10, 1, 2, 0, 3, 14]);
});

Deno.test("pyrandom: bad arguments are refused with the argument named", () => {
  const r = new PyRandom(1);
  assertThrows(() => r.sample([1, 2, 3], 4), RangeError, "population size 3");
  assertThrows(() => r.randbelow(0), RangeError, "randbelow: n must be at least 1");
  assertThrows(() => r.getrandbits(-1), RangeError, "getrandbits");
  assertThrows(() => new PyRandom(0.5), RangeError, "seed");
});
