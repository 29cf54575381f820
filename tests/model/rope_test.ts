import type { RopeConfig, RopeScaling } from "../../io/llama_architecture.ts";
import { ropeInvFreq, ropeTables } from "../../model/rope.ts";
import { assertEquals, assertThrows } from "../asserts.ts";

// The expected numbers below were produced with python3 + numpy 2.4 (no torch available) by re-implementing
// transformers' `_compute_default_rope_parameters`, `_compute_llama3_parameters` and
// `LlamaRotaryEmbedding.forward` in float32. numpy 2 treats Python scalars as "weak", like torch, so every
// operation stays float32:
//
//   exps = np.arange(0, dim, 2).astype(np.float32) / np.float32(dim)
//   pows = np.array([np.float32(float(np.float32(base)) ** float(e)) for e in exps])  # see below
//   inv = np.float32(1.0) / pows
//   low_wl, high_wl = ctx / low, ctx / high
//   wavelen = 2 * math.pi / inv
//   inv_l = np.where(wavelen > low_wl, inv / factor, inv)
//   smooth = (ctx / wavelen - low) / (high - low)
//   smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
//   inv_l = np.where(~(wavelen < high_wl) * ~(wavelen > low_wl), smoothed, inv_l)
//   angle = np.float32(pos) * inv_l                                 # float32, autocast off
//   cos = [float(np.float32(math.cos(float(a)))) for a in angle]    # correctly rounded cos of that angle
//
// The float32 pow is taken correctly rounded (float64 pow, then rounded). torch's vectorized float32 pow
// (Sleef, ~1 ulp) and numpy's can land one ulp away from it for some exponents (here pairs 1, 3, 19, 21,
// 23, 24, 31), so these values pin the formula and the order of float32 roundings, with the one
// well-defined pow.
//
// Settings, those of Llama 3.2 1B: head_dim 64, rope_theta 500000, factor 32, low_freq_factor 1,
// high_freq_factor 4, original_max_position_embeddings 8192.

const LLAMA32: RopeConfig = {
  headDim: 64,
  theta: 500000,
  scaling: {
    type: "llama3",
    factor: 32,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 8192,
  },
};

// Pairs 0–14 keep their frequency, 15–17 fall in the blended band, 18–31 are divided by 32.
const LLAMA32_INV_FREQ = [
  1.0,
  0.663601279258728,
  0.44036662578582764,
  0.2922278344631195,
  0.193922758102417,
  0.12868738174438477,
  0.08539710193872452,
  0.05666961893439293,
  0.03760603070259094,
  0.02495540864765644,
  0.016560440883040428,
  0.010989529080688953,
  0.00729266507551074,
  0.00483942124992609,
  0.0032114461064338684,
  0.0012905480107292533,
  0.000429556705057621,
  9.708286233944818e-05,
  1.9461638657958247e-05,
  1.291476746700937e-05,
  8.570255886297673e-06,
  5.687232260243036e-06,
  3.7740544485131977e-06,
  2.504467147446121e-06,
  1.6619674170215148e-06,
  1.1028836297555245e-06,
  7.318749339901842e-07,
  4.856731266045244e-07,
  3.2229328894572973e-07,
  2.1387423032592778e-07,
  1.4192720243499934e-07,
  9.418306490260875e-08,
];

const PAIRS = [0, 11, 14, 15, 16, 17, 18, 31];
const LLAMA32_AT: Record<number, { cos: number[]; sin: number[] }> = {
  3000: {
    cos: [
      -0.9756821990013123,
      0.018135899677872658,
      -0.9781224727630615,
      -0.7451401352882385,
      0.2783984839916229,
      0.9578860998153687,
      0.9982960820198059,
      0.9999999403953552,
    ],
    sin: [
      0.21918997168540955,
      0.9998355507850647,
      -0.20802995562553406,
      -0.6669079065322876,
      0.960465669631958,
      0.28714844584465027,
      0.058351751416921616,
      0.0002825491828843951,
    ],
  },
  131071: {
    cos: [
      -0.8179835081100464,
      0.011662070639431477,
      0.9989442229270935,
      0.8811103105545044,
      0.9698352217674255,
      0.9874845743179321,
      -0.8305308222770691,
      0.999923825263977,
    ],
    sin: [
      -0.5752416849136353,
      0.9999319911003113,
      -0.04593969136476517,
      -0.4729108214378357,
      -0.24376142024993896,
      0.15771576762199402,
      0.5569726824760437,
      0.012344354763627052,
    ],
  },
};

Deno.test("rope tables: llama3 inverse frequencies match transformers' float32 formula exactly", () => {
  assertEquals([...ropeInvFreq(LLAMA32)], LLAMA32_INV_FREQ);
});

Deno.test("rope tables: llama3 cos/sin at positions 3000 and 131071 match the float32 reference", () => {
  const { cos, sin, attentionScaling } = ropeTables(LLAMA32, 131072);
  assertEquals(attentionScaling, 1);
  assertEquals(cos.length, 131072 * 32);
  for (const [pos, want] of Object.entries(LLAMA32_AT)) {
    const row = Number(pos) * 32;
    assertEquals(PAIRS.map((k) => cos[row + k]), want.cos, `cos at position ${pos}`);
    assertEquals(PAIRS.map((k) => sin[row + k]), want.sin, `sin at position ${pos}`);
  }
});

Deno.test("rope tables: default RoPE (theta 10000, head_dim 16) at position 4097 matches the reference", () => {
  const spec = { headDim: 16, theta: 10000 };
  assertEquals([...ropeInvFreq(spec)], [
    1.0,
    0.3162277638912201,
    0.10000000149011612,
    0.03162277862429619,
    0.009999999776482582,
    0.003162277862429619,
    0.0010000000474974513,
    0.0003162277862429619,
  ]);
  const { cos, sin } = ropeTables(spec, 4098);
  assertEquals([...cos.subarray(4097 * 8)], [
    0.9347719550132751,
    0.3162410259246826,
    0.27426862716674805,
    -0.729491114616394,
    -0.991653323173523,
    0.9251059293746948,
    -0.5772761106491089,
    0.2717500627040863,
  ]);
  assertEquals([...sin.subarray(4097 * 8)], [
    0.3552483320236206,
    0.9486788511276245,
    0.9616531133651733,
    -0.6839902997016907,
    -0.12893298268318176,
    0.3797091543674469,
    -0.8165490031242371,
    0.9623678922653198,
  ]);
  assertEquals([cos[0], sin[0]], [1, 0], "position 0 does not rotate");
});

Deno.test("rope tables: linear scaling by 2 puts position 2p where default RoPE puts p", () => {
  const plain = ropeTables({ headDim: 6, theta: 10000 }, 50);
  const linear = ropeTables({ headDim: 6, theta: 10000, scaling: { type: "linear", factor: 2 } }, 100);
  for (const p of [1, 7, 49]) {
    assertEquals([...linear.cos.subarray(2 * p * 3, 2 * p * 3 + 3)], [
      ...plain.cos.subarray(p * 3, p * 3 + 3),
    ]);
    assertEquals([...linear.sin.subarray(2 * p * 3, 2 * p * 3 + 3)], [
      ...plain.sin.subarray(p * 3, p * 3 + 3),
    ]);
  }
});

/** Scaling settings the type forbids, as a hand-built or JavaScript caller may still pass them. */
function unchecked(scaling: Record<string, unknown>): RopeScaling {
  return scaling as unknown as RopeScaling;
}

Deno.test("rope tables: unsupported types and bad fields are rejected by name", () => {
  for (const type of ["dynamic", "yarn", "longrope"]) {
    assertThrows(
      () => ropeTables({ headDim: 8, theta: 1e4, scaling: unchecked({ type, factor: 2 }) }, 4),
      Error,
      `"${type}" is not supported`,
    );
  }
  assertThrows(
    () => ropeInvFreq({ headDim: 8, theta: 1e4, scaling: unchecked({ type: "spiral" }) }),
    Error,
    `"spiral" is unknown`,
  );
  const noHigh = { ...LLAMA32, scaling: unchecked({ ...LLAMA32.scaling!, highFreqFactor: undefined }) };
  assertThrows(() => ropeInvFreq(noHigh), RangeError, "needs highFreqFactor > 0");
  const inverted = { ...LLAMA32, scaling: { ...LLAMA32.scaling!, lowFreqFactor: 4 } };
  assertThrows(() => ropeInvFreq(inverted), RangeError, "must be greater than lowFreqFactor");
  assertThrows(
    () => ropeInvFreq({ headDim: 7, theta: 1e4 }),
    RangeError,
    "headDim must be a positive even integer",
  );
  assertThrows(() => ropeInvFreq({ headDim: 8, theta: 0 }), RangeError, "theta (rope_theta)");
  assertThrows(() => ropeTables({ headDim: 8, theta: 1e4 }, 0), RangeError, "maxPositions");
});
