/**
 * Rotary position embedding tables, computed as Hugging Face transformers computes them in fp32, for the
 * RoPE kernel (`kernels/rope.ts`) to look up.
 *
 * transformers builds `inv_freq = 1 / theta^(arange(0, dim, 2) / dim)` in float32 (then rescales it for
 * "linear" and "llama3" RoPE), multiplies it by the float32 position with autocast off, and takes cos and sin
 * of that float32 angle. Every step here is rounded to float32 in the same order (`Math.fround`), so the
 * angles are the ones the reference model sees; at position 100,000 a float64 angle would already differ
 * from it by ~0.004 rad. The one step without a single right answer is the float32 pow: it is taken
 * correctly rounded here, where torch's vectorized pow may land one ulp away for some pairs.
 *
 * The settings are a {@link RopeConfig} (`config.json`'s `rope_theta` and `rope_scaling`, parsed by
 * `io/hf_config.ts`). They are checked again here, since a config may also be built by hand.
 * @module
 */
import type { RopeConfig, RopeScaling } from "../io/llama_architecture.ts";

/**
 * cos and sin of every position's angles, [maxPositions, headDim/2] row-major.
 *
 * @example
 * ```ts
 * const t: RopeTables = ropeTables({ headDim: 64, theta: 10000 }, 2048);
 * const cosTable = gpu.upload(t.cos, "rope.cos");
 * ```
 */
export interface RopeTables {
  cos: Float32Array;
  sin: Float32Array;
  /** The factor transformers multiplies cos and sin by (already applied here); 1 for the supported types. */
  attentionScaling: number;
}

const f32 = Math.fround;

// Types transformers knows but whose frequencies depend on the sequence length or need extra attention
// scaling, which these fixed tables do not model.
const UNSUPPORTED = new Set(["dynamic", "ntk", "yarn", "longrope"]);

/**
 * The float32 inverse frequencies, one per rotated pair (headDim/2 of them).
 *
 * @example
 * ```ts
 * ropeInvFreq({ headDim: 4, theta: 10000 }); // Float32Array [1, 0.009999999776482582]
 * ```
 */
export function ropeInvFreq(rope: RopeConfig): Float32Array {
  checkConfig(rope);
  const base = defaultInvFreq(rope.headDim, rope.theta);
  const scaling = rope.scaling;
  const type: string = scaling?.type ?? "default";
  if (type === "default") return base;
  if (scaling?.type === "linear") return linearInvFreq(base, requirePositive(scaling, "factor"));
  if (scaling?.type === "llama3") return llama3InvFreq(base, scaling);
  const why = UNSUPPORTED.has(type) ? "is not supported" : "is unknown";
  throw new Error(`RoPE scaling type "${type}" ${why}; supported types: default, linear, llama3`);
}

/**
 * cos and sin tables for positions `0 .. maxPositions − 1`.
 *
 * @example
 * ```ts
 * const { cos, sin } = ropeTables({ headDim: 64, theta: 500000 }, 2048);
 * cos[5 * 32 + 3]; // cos of position 5's angle for pair 3
 * ```
 */
export function ropeTables(rope: RopeConfig, maxPositions: number): RopeTables {
  if (!Number.isInteger(maxPositions) || maxPositions < 1 || maxPositions > 2 ** 24) {
    throw new RangeError(`ropeTables: maxPositions must be an integer in [1, 2^24], got ${maxPositions}`);
  }
  const inv = ropeInvFreq(rope);
  const half = inv.length;
  const cos = new Float32Array(maxPositions * half);
  const sin = new Float32Array(maxPositions * half);
  for (let pos = 0; pos < maxPositions; pos++) {
    for (let k = 0; k < half; k++) {
      const angle = f32(pos * inv[k]); // positions below 2^24 are exact in float32
      cos[pos * half + k] = Math.cos(angle);
      sin[pos * half + k] = Math.sin(angle);
    }
  }
  return { cos, sin, attentionScaling: 1 };
}

/** `1 / theta^(2k / dim)` with each operation rounded to float32 (`_compute_default_rope_parameters`). */
function defaultInvFreq(dim: number, theta: number): Float32Array {
  const inv = new Float32Array(dim / 2);
  for (let k = 0; k < inv.length; k++) inv[k] = f32(1 / f32(f32(theta) ** f32((2 * k) / dim)));
  return inv;
}

/** `inv_freq / factor` (`_compute_linear_scaling_rope_parameters`). */
function linearInvFreq(inv: Float32Array, factor: number): Float32Array {
  return inv.map((v) => v / f32(factor));
}

/**
 * transformers' `_compute_llama3_parameters`: wavelengths longer than the original context / lowFreqFactor
 * are stretched by `factor`, those shorter than context / highFreqFactor are kept, and the band between
 * blends the two. Python scalars meet float32 tensors as float32, hence the `f32` around each constant.
 */
function llama3InvFreq(inv: Float32Array, s: RopeScaling & { type: "llama3" }): Float32Array {
  const factor = f32(requirePositive(s, "factor"));
  const low = requirePositive(s, "lowFreqFactor");
  const high = requirePositive(s, "highFreqFactor");
  const context = requirePositive(s, "originalMaxPositionEmbeddings");
  if (!(high > low)) {
    throw new RangeError(
      `RoPE llama3 scaling: highFreqFactor (${high}) must be greater than lowFreqFactor (${low})`,
    );
  }
  const lowFreqWavelen = f32(context / low);
  const highFreqWavelen = f32(context / high);
  const twoPi = f32(2 * Math.PI);
  return inv.map((v) => {
    const wavelen = f32(twoPi / v);
    const kept = wavelen > lowFreqWavelen ? f32(v / factor) : v;
    if (wavelen < highFreqWavelen || wavelen > lowFreqWavelen) return kept;
    const smooth = f32(f32(f32(f32(context) / wavelen) - f32(low)) / f32(high - low));
    return f32(f32(f32(f32(1 - smooth) * kept) / factor) + f32(smooth * kept));
  });
}

function checkConfig(rope: RopeConfig): void {
  if (!Number.isInteger(rope.headDim) || rope.headDim < 2 || rope.headDim % 2 !== 0) {
    throw new RangeError(`RoPE: headDim must be a positive even integer, got ${rope.headDim}`);
  }
  if (!(Number.isFinite(rope.theta) && rope.theta > 0)) {
    throw new RangeError(`RoPE: theta (rope_theta) must be a positive number, got ${rope.theta}`);
  }
}

function requirePositive<S extends RopeScaling>(s: S, field: keyof S & string): number {
  const v: unknown = s[field];
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw new RangeError(`RoPE "${s.type}" scaling needs ${field} > 0, got ${v}`);
  }
  return v;
}
