/**
 * Fresh weights for a new model, initialised as transformers' LlamaPreTrainedModel does: every linear and
 * embedding weight from N(0, initializer_range²), biases zero, RMSNorm weights one. Deterministic per seed,
 * so the toolkit's tiny default model is the same on every machine.
 *
 * @module
 */
import { type LlamaDims, llamaParamSpecs, numel } from "../io/llama_architecture.ts";

/** A seeded generator of uniform numbers in [0, 1) with 32 random bits each (xoshiro128**). */
export function uniformGenerator(seed: number): () => number {
  // splitmix32 expands the seed into xoshiro's 128-bit state.
  let s = seed >>> 0;
  const split = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split(), b = split(), c = split(), d = split();
  return () => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result / 4294967296;
  };
}

/** A seeded generator of standard normal numbers (Box–Muller over {@link uniformGenerator}). */
export function normalGenerator(seed: number): () => number {
  const uniform = uniformGenerator(seed);
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const v = spare;
      spare = undefined;
      return v;
    }
    const u1 = 1 - uniform(); // (0, 1] so log() is finite
    const u2 = uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * Random weights for every parameter of `dims`, by Hugging Face name.
 * @example
 * ```ts
 * const w = initLlamaWeights(dims, { seed: 0 });
 * w.get("model.norm.weight"); // Float32Array of ones
 * ```
 */
export function initLlamaWeights(
  dims: LlamaDims,
  opts: { seed: number; initializerRange?: number },
): Map<string, Float32Array> {
  const std = opts.initializerRange ?? 0.02;
  const normal = normalGenerator(opts.seed);
  const out = new Map<string, Float32Array>();
  for (const spec of llamaParamSpecs(dims)) {
    const data = new Float32Array(numel(spec.shape));
    if (spec.name.endsWith("norm.weight")) data.fill(1);
    else if (!spec.name.endsWith(".bias")) { for (let i = 0; i < data.length; i++) data[i] = normal() * std; }
    out.set(spec.name, data);
  }
  return out;
}
