/**
 * CPython's `random.Random` for integer seeds, reproduced bit for bit: the MT19937 generator seeded by
 * `init_by_array`, `random()`, `getrandbits(k)`, `_randbelow`, `shuffle` and `sample`.
 *
 * lm-evaluation-harness draws its few-shot examples with `random.Random(1234).sample(train_docs, k)`; the
 * scored context strings (and so the scores) only match when the same documents come out in the same order,
 * which needs the exact generator, the exact rejection sampling of `_randbelow` and both of `sample`'s
 * branches.
 *
 * @module
 */

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

/** Low 32 bits of a * b for 32-bit unsigned a and b. */
function mul32(a: number, b: number): number {
  return Math.imul(a, b) >>> 0;
}

/** The 32-bit words of |seed|, least significant first, as CPython's `random_seed` splits an int. */
function seedWords(seed: number | bigint): number[] {
  let n = typeof seed === "bigint" ? seed : BigInt(checkedInteger(seed, "seed"));
  if (n < 0n) n = -n;
  if (n === 0n) return [0];
  const words: number[] = [];
  while (n > 0n) {
    words.push(Number(n & 0xffffffffn));
    n >>= 32n;
  }
  return words;
}

function checkedInteger(value: number, what: string): number {
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`${what} must be a safe integer (or a bigint), got ${value}`);
  }
  return value;
}

/** Number of bits needed to write n in binary (Python's `int.bit_length`); n is a non-negative safe integer. */
function bitLength(n: number): number {
  let bits = 0;
  while (n >= 4294967296) {
    n = Math.floor(n / 4294967296);
    bits += 32;
  }
  return bits + 32 - Math.clz32(n);
}

/**
 * A Python-compatible pseudo-random generator: `new PyRandom(seed)` yields the same stream as Python's
 * `random.Random(seed)` for any integer seed.
 *
 * @example
 * ```ts
 * const rnd = new PyRandom(1234);
 * rnd.random(); // 0.9664535356921388, as random.Random(1234).random()
 * rnd.sample([10, 20, 30, 40], 2); // the same two items Python picks
 * ```
 */
export class PyRandom {
  readonly #mt = new Uint32Array(N);
  #index = N;

  /** Seeds the generator as `random.Random(seed)` does for an int (the sign is ignored, as in CPython). */
  constructor(seed: number | bigint) {
    this.#initByArray(seedWords(seed));
  }

  #initGenrand(s: number): void {
    const mt = this.#mt;
    mt[0] = s >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1];
      mt[i] = (mul32(1812433253, (prev ^ (prev >>> 30)) >>> 0) + i) >>> 0;
    }
    this.#index = N;
  }

  #initByArray(key: number[]): void {
    const mt = this.#mt;
    this.#initGenrand(19650218);
    let i = 1;
    let j = 0;
    for (let k = Math.max(N, key.length); k > 0; k--) {
      const prev = mt[i - 1];
      mt[i] = ((mt[i] ^ mul32((prev ^ (prev >>> 30)) >>> 0, 1664525)) + key[j] + j) >>> 0;
      i++;
      j++;
      if (i >= N) {
        mt[0] = mt[N - 1];
        i = 1;
      }
      if (j >= key.length) j = 0;
    }
    for (let k = N - 1; k > 0; k--) {
      const prev = mt[i - 1];
      mt[i] = ((mt[i] ^ mul32((prev ^ (prev >>> 30)) >>> 0, 1566083941)) - i) >>> 0;
      i++;
      if (i >= N) {
        mt[0] = mt[N - 1];
        i = 1;
      }
    }
    mt[0] = 0x80000000;
  }

  #twist(): void {
    const mt = this.#mt;
    for (let kk = 0; kk < N; kk++) {
      const y = (mt[kk] & UPPER_MASK) | (mt[(kk + 1) % N] & LOWER_MASK);
      mt[kk] = (mt[(kk + M) % N] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0)) >>> 0;
    }
    this.#index = 0;
  }

  /** The next raw 32-bit output of MT19937 (CPython's `genrand_uint32`). */
  nextUint32(): number {
    if (this.#index >= N) this.#twist();
    let y = this.#mt[this.#index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /**
   * A float in [0, 1) with 53 random bits, as Python's `random()`.
   *
   * @example
   * ```ts
   * new PyRandom(0).random(); // 0.8444218515250481
   * ```
   */
  random(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /**
   * A non-negative integer of k random bits, as Python's `getrandbits(k)`: 32-bit words fill the result
   * from the least significant end and the last word keeps its top bits.
   *
   * @example
   * ```ts
   * new PyRandom(1234).getrandbits(32); // 4150886329n
   * ```
   */
  getrandbits(k: number): bigint {
    checkedInteger(k, "getrandbits: k");
    if (k < 0) throw new RangeError(`getrandbits: k must be non-negative, got ${k}`);
    let result = 0n;
    let shift = 0n;
    for (let left = k; left > 0; left -= 32) {
      let word = this.nextUint32();
      if (left < 32) word >>>= 32 - left;
      result |= BigInt(word) << shift;
      shift += 32n;
    }
    return result;
  }

  /** `getrandbits(k)` as a number, for k ≤ 53 (the hot path of `randbelow`). */
  #smallRandbits(k: number): number {
    if (k <= 32) return k === 0 ? 0 : this.nextUint32() >>> (32 - k);
    const low = this.nextUint32();
    const high = this.nextUint32() >>> (64 - k);
    return high * 4294967296 + low;
  }

  /**
   * A uniform integer in [0, n), as Python's `_randbelow`: draws `n.bit_length()` bits and rejects values
   * ≥ n.
   *
   * @example
   * ```ts
   * new PyRandom(1234).randbelow(10); // as random.Random(1234)._randbelow(10)
   * ```
   */
  randbelow(n: number): number {
    checkedInteger(n, "randbelow: n");
    if (n < 1) throw new RangeError(`randbelow: n must be at least 1, got ${n}`);
    const k = bitLength(n);
    let r = this.#smallRandbits(k);
    while (r >= n) r = this.#smallRandbits(k);
    return r;
  }

  /**
   * Shuffles `items` in place, as Python's `shuffle` (Fisher–Yates from the end).
   *
   * @example
   * ```ts
   * const xs = [0, 1, 2, 3, 4];
   * new PyRandom(1234).shuffle(xs); // xs now in random.Random(1234).shuffle order
   * ```
   */
  shuffle<T>(items: T[]): void {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.randbelow(i + 1);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
  }

  /**
   * k distinct items of `population` in selection order, as Python's `sample(population, k)`. Like CPython,
   * it keeps a shrinking pool when the population is small next to the set a draw would need, and otherwise
   * draws indices with rejection of repeats; the two give different streams, so the choice must match.
   *
   * @example
   * ```ts
   * new PyRandom(1234).sample(Array.from({ length: 3665 }, (_, i) => i), 5);
   * // the indices random.Random(1234).sample(range(3665), 5) returns
   * ```
   */
  sample<T>(population: readonly T[], k: number): T[] {
    checkedInteger(k, "sample: k");
    const n = population.length;
    if (k < 0 || k > n) {
      throw new RangeError(`sample: k must be between 0 and the population size ${n}, got ${k}`);
    }
    const result: T[] = new Array(k);
    if (n <= sampleSetSize(k)) {
      const pool = population.slice();
      for (let i = 0; i < k; i++) {
        const j = this.randbelow(n - i);
        result[i] = pool[j];
        pool[j] = pool[n - i - 1];
      }
    } else {
      const selected = new Set<number>();
      for (let i = 0; i < k; i++) {
        let j = this.randbelow(n);
        while (selected.has(j)) j = this.randbelow(n);
        selected.add(j);
        result[i] = population[j];
      }
    }
    return result;
  }
}

/**
 * CPython's `setsize` rule in `sample`: 21, plus 4 ** ceil(log4(3k)) when k > 5. 3k is never a power of 4,
 * so the float `ceil(log(3k, 4))` always equals the smallest m with 4^m > 3k, computed here exactly.
 */
function sampleSetSize(k: number): number {
  if (k <= 5) return 21;
  let power = 1;
  while (power <= 3 * k) power *= 4;
  return 21 + power;
}
