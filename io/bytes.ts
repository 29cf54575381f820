/**
 * Byte counts for people: printed in binary units (`1.50 GiB`) and read from flags (`20000`, `64KiB`,
 * `80GB`), one way for every task.
 *
 * @module
 */

/**
 * Bytes in GiB, MiB or KiB (binary units) for printing.
 * @example
 * ```ts
 * formatBytes(3 * 2 ** 30); // "3.00 GiB"
 * formatBytes(1536); // "1.5 KiB"
 * ```
 */
export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 2 ** 10).toFixed(1)} KiB`;
}

const UNITS: Record<string, number> = {
  "": 1,
  B: 1,
  K: 1e3,
  KB: 1e3,
  KIB: 2 ** 10,
  M: 1e6,
  MB: 1e6,
  MIB: 2 ** 20,
  G: 1e9,
  GB: 1e9,
  GIB: 2 ** 30,
  T: 1e12,
  TB: 1e12,
  TIB: 2 ** 40,
};

/**
 * A byte count from text: a number with an optional unit (`KB`/`MB`/`GB` decimal, `KiB`/`MiB`/`GiB`
 * binary, case-insensitive). The error names `flag`.
 * @example
 * ```ts
 * parseByteSize("64KiB", "--max-binding"); // 65536
 * parseByteSize("80GB", "--gpu-memory"); // 80000000000
 * ```
 */
export function parseByteSize(text: string, flag: string): number {
  const m = text.trim().match(/^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/);
  const unit = m ? UNITS[m[2].toUpperCase()] : undefined;
  if (!m || unit === undefined) {
    throw new Error(
      `${flag}: expected a byte count such as 20000, 64KiB or 80GB, got ${JSON.stringify(text)}`,
    );
  }
  const n = Math.floor(Number(m[1]) * unit);
  if (!(n > 0)) throw new Error(`${flag}: expected a positive byte count, got ${JSON.stringify(text)}`);
  return n;
}
