/**
 * Half-precision numbers (IEEE f16 and bfloat16) as 16-bit patterns: exact widening to f32 and rounding to
 * nearest even, done on bits so NaN payloads survive and nothing is canonicalised by JS numbers. Used by
 * safetensors I/O, f16 frozen weights and the kernels' references.
 * @module
 */

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Rounds one f32 bit pattern to f16 bits, to nearest even; overflow gives ±inf, NaN stays a (quiet) NaN. */
function f32BitsToF16Bits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return sign | (mant === 0 ? 0x7c00 : 0x7e00 | (mant >>> 13));
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Below 2^-25 everything rounds to zero, including the tie at exactly 2^-25 (even = 0).
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rem = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h; // h may carry into 0x400: the smallest normal, which is the right answer
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent; out of the largest exponent it gives exactly inf.
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

/** Widens f16 bits to f32 bits exactly (subnormals normalized, NaN payload kept). */
function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  let m = mant;
  let e = 113;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

let f16Table: Uint32Array | undefined;

/** All 65,536 f16 → f32 bit patterns, built once on first use (256 KiB). */
function f16ToF32Table(): Uint32Array {
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
  }
  return f16Table;
}

/**
 * Converts one number to f16 bits, rounding to nearest even (as `torch.Tensor.half()` does).
 * @example
 * ```ts
 * f32ToF16Bits(1); // 0x3c00
 * f32ToF16Bits(65520); // 0x7c00 (rounds to infinity)
 * ```
 */
export function f32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  return f32BitsToF16Bits(scratchU32[0]);
}

/**
 * Converts f16 bits to the number they encode, exactly.
 * @example
 * ```ts
 * f16BitsToF32(0x0001); // 2 ** -24
 * ```
 */
export function f16BitsToF32(h: number): number {
  scratchU32[0] = f16BitsToF32Bits(h & 0xffff);
  return scratchF32[0];
}

/**
 * Converts one number to bf16 bits, rounding to nearest even; NaN becomes 0x7fc0 as in PyTorch.
 * @example
 * ```ts
 * f32ToBf16Bits(1); // 0x3f80
 * ```
 */
export function f32ToBf16Bits(x: number): number {
  scratchF32[0] = x;
  return f32BitsToBf16Bits(scratchU32[0]);
}

function f32BitsToBf16Bits(u: number): number {
  if ((u & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * Converts bf16 bits to the number they encode, exactly.
 * @example
 * ```ts
 * bf16BitsToF32(0x3f80); // 1
 * ```
 */
export function bf16BitsToF32(h: number): number {
  scratchU32[0] = (h & 0xffff) << 16;
  return scratchF32[0];
}

/**
 * Converts an f32 array to f16 bits, rounding to nearest even.
 * @example
 * ```ts
 * const bits = f32ToF16(new Float32Array([0.1, 1e6])); // [0x2e66, 0x7c00]
 * ```
 */
export function f32ToF16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16Bits(bits[i]);
  return out;
}

/**
 * Widens f16 bits to f32, exactly.
 * @example
 * ```ts
 * f16ToF32(new Uint16Array([0x3c00, 0xc000])); // Float32Array [1, -2]
 * ```
 */
export function f16ToF32(src: Uint16Array): Float32Array {
  const table = f16ToF32Table();
  const out = new Float32Array(src.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) outBits[i] = table[src[i]];
  return out;
}

/**
 * Converts an f32 array to bf16 bits, rounding to nearest even.
 * @example
 * ```ts
 * f32ToBf16(new Float32Array([1, 3.14159])); // [0x3f80, 0x4049]
 * ```
 */
export function f32ToBf16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToBf16Bits(bits[i]);
  return out;
}

/**
 * Widens bf16 bits to f32, exactly.
 * @example
 * ```ts
 * bf16ToF32(new Uint16Array([0x3f80])); // Float32Array [1]
 * ```
 */
export function bf16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) outBits[i] = src[i] << 16;
  return out;
}

/**
 * BF16 bits to f16 bits, rounded to nearest even as going through f32 would (BF16 values beyond f16's
 * range become ±inf), without the f32 array in between: half the host memory when loading a BF16
 * checkpoint into an f16 base.
 * @example
 * ```ts
 * bf16ToF16(new Uint16Array([0x3f80])); // Uint16Array [0x3c00]: 1.0
 * ```
 */
export function bf16ToF16(src: Uint16Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToF16Bits((src[i] << 16) >>> 0);
  return out;
}
