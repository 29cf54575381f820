import {
  bf16BitsToF32,
  bf16ToF16,
  bf16ToF32,
  f16BitsToF32,
  f16ToF32,
  f32ToBf16,
  f32ToBf16Bits,
  f32ToF16,
  f32ToF16Bits,
  SafetensorsError,
  SafetensorsFile,
  writeSafetensors,
} from "../../io/safetensors.ts";
import { assert, assertEquals, assertRejects } from "../asserts.ts";
import { randn, rng } from "../helpers.ts";

const root = Deno.makeTempDirSync({ prefix: "st-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

async function tempFile(name = "t.safetensors"): Promise<string> {
  return `${await Deno.makeTempDir({ dir: root })}/${name}`;
}

/** Builds a file by hand so tests can state any header, valid or not. */
async function rawFile(header: unknown, dataBytes: number, headerLength?: number): Promise<string> {
  const json = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength ?? json.length), true);
  out.set(json, 8);
  const path = await tempFile();
  await Deno.writeFile(path, out);
  return path;
}

Deno.test("safetensors: bytes match the Rust library's own test vectors", async () => {
  // safetensors/src/tensor.rs: test_serialization, test_serialization_forced_alignement, test_empty.
  const values = new Float32Array([0, 1, 2, 3, 4, 5]);
  const cases: [string, number[], Record<string, string> | undefined, string, Uint8Array][] = [
    [
      "attn.0",
      [1, 2, 3],
      undefined,
      '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}',
      values8(values),
    ],
    [
      "attn0",
      [1, 1, 2, 3],
      undefined,
      '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       ',
      values8(values),
    ],
    ["", [], undefined, "{}      ", new Uint8Array()],
    ["", [], { framework: "pt" }, '{"__metadata__":{"framework":"pt"}}     ', new Uint8Array()],
  ];
  for (const [name, shape, metadata, header, data] of cases) {
    const path = await tempFile();
    await writeSafetensors(path, name ? { [name]: { dtype: "F32", shape, data: values } } : {}, metadata);
    const expected = new Uint8Array(8 + header.length + data.length);
    new DataView(expected.buffer).setBigUint64(0, BigInt(header.length), true);
    expected.set(new TextEncoder().encode(header), 8);
    expected.set(data, 8 + header.length);
    assertEquals(await Deno.readFile(path), expected, `bytes of ${JSON.stringify(header)}`);
  }
});

function values8(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer.slice(0));
}

Deno.test("safetensors: every writable dtype round-trips; Rust's order keeps each tensor aligned", async () => {
  const path = await tempFile();
  const f32 = randn(15, 1, 3);
  const ids = new Int32Array([-5, 0, 7, 2147483647, -2147483648, 42]);
  const halfBits = new Uint16Array([0x3c00, 0x8001, 0x7bff, 0x7c00, 0xfe00]);
  await writeSafetensors(path, {
    "z.f16": { dtype: "F16", shape: [5], data: halfBits },
    "a.bf16": { dtype: "BF16", shape: [3, 5], data: f32 },
    "m.f32": { dtype: "F32", shape: [3, 5], data: f32 },
    "b.i32": { dtype: "I32", shape: [2, 3], data: ids },
    "c.f16": { dtype: "F16", shape: [15], data: () => Promise.resolve(f32) },
  }, { format: "pt" });
  const st = await SafetensorsFile.open(path);
  assertEquals(st.names(), ["m.f32", "b.i32", "a.bf16", "c.f16", "z.f16"]);
  assertEquals(st.metadata, { format: "pt" });
  for (const name of st.names()) {
    const info = st.info(name);
    assertEquals(
      info.fileOffset % (info.dtype === "F32" || info.dtype === "I32" ? 4 : 2),
      0,
      `${name} aligned`,
    );
  }
  assertEquals(await st.readF32("m.f32"), f32);
  assertEquals(await st.readI32("b.i32"), ids);
  assertEquals(await st.readF32("a.bf16"), bf16ToF32(f32ToBf16(f32)));
  assertEquals(await st.readF32("c.f16"), f16ToF32(f32ToF16(f32)));
  assertEquals(await st.readF16Bits("z.f16"), halfBits);
  assertEquals(await st.readF16Bits("m.f32"), f32ToF16(f32));
  assertEquals(st.info("a.bf16").shape, [3, 5]);
  const raw = await st.readRaw("b.i32");
  assertEquals(raw.dtype, "I32");
  assertEquals(raw.bytes.length, 24);
  assertEquals(await st.readF32("m.f32", { start: 5, count: 5 }), f32.slice(5, 10));
  await assertRejects(
    () => st.readF32("m.f32", { start: 12, count: 5 }),
    SafetensorsError,
    "outside its 15 elements",
  );
  await assertRejects(() => st.readF32("b.i32"), SafetensorsError, 'tensor "b.i32" is I32');
  await assertRejects(() => st.readF32("nope"), SafetensorsError, 'no tensor named "nope"');
});

Deno.test("safetensors: I64, U8 and BOOL read back; I64 outside int32 is refused by element", async () => {
  const i64 = new BigInt64Array([1n, -2n, 2147483647n, 3000000000n]);
  const header = {
    "big": { dtype: "I64", shape: [4], data_offsets: [0, 32] },
    "mask": { dtype: "BOOL", shape: [3], data_offsets: [32, 35] },
    "u": { dtype: "U8", shape: [2], data_offsets: [35, 37] },
  };
  const path = await rawFile(header, 37);
  const bytes = await Deno.readFile(path);
  const dataStart = bytes.length - 37;
  bytes.set(new Uint8Array(i64.buffer), dataStart);
  bytes.set([1, 0, 1, 200, 7], dataStart + 32);
  await Deno.writeFile(path, bytes);
  const st = await SafetensorsFile.open(path);
  assertEquals(await st.readI32("big", { start: 0, count: 3 }), new Int32Array([1, -2, 2147483647]));
  await assertRejects(() => st.readI32("big"), SafetensorsError, 'tensor "big" element 3 is 3000000000');
  assertEquals(await st.readU8("mask"), new Uint8Array([1, 0, 1]));
  assertEquals(await st.readI32("u"), new Int32Array([200, 7]));
});

Deno.test("safetensors: f16 conversion matches Float16Array on random bits and exact edge cases", () => {
  const r = rng(7);
  const bits = new Uint32Array(20000).map(() => Math.floor(r() * 2 ** 32));
  // Concentrate on the range f16 can represent, subnormals included, as well as random patterns.
  const near = new Float32Array(20000).map(() => (r() * 2 - 1) * 2 ** Math.floor(r() * 44 - 28));
  for (const src of [new Float32Array(bits.buffer), near]) {
    const ours = f32ToF16(src);
    const oracle = new Uint16Array(Float16Array.from(src).buffer);
    for (let i = 0; i < src.length; i++) {
      if (Number.isNaN(src[i])) assert(Number.isNaN(f16BitsToF32(ours[i])), `NaN stays NaN at ${i}`);
      else {assert(
          ours[i] === oracle[i],
          `f32 ${src[i]} -> f16 ${ours[i].toString(16)}, expected ${oracle[i].toString(16)}`,
        );}
    }
  }
  const cases: [number, number][] = [
    [65504, 0x7bff],
    [65519.99, 0x7bff],
    [65520, 0x7c00], // the tie rounds to even, which is infinity
    [2 ** -24, 0x0001],
    [2 ** -25, 0x0000], // tie between 0 and the smallest subnormal: even is 0
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 subnormal units: even is 2
    [2 ** -14 - 2 ** -25, 0x0400], // largest-subnormal tie carries into the smallest normal
    [1 + 2 ** -11, 0x3c00],
    [1 + 3 * 2 ** -11, 0x3c02],
    [-0, 0x8000],
    [-Infinity, 0xfc00],
  ];
  for (const [x, h] of cases) assertEquals(f32ToF16Bits(x), h, `f32ToF16Bits(${x})`);
  assertEquals(f32ToF16Bits(NaN) & 0x7e00, 0x7e00, "NaN is a quiet NaN");
});

Deno.test("safetensors: every f16 and bf16 value widens exactly and rounds back to itself", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const f16 = f16ToF32(all);
  const oracle = new Float16Array(all.buffer);
  const back16 = f32ToF16(f16);
  const bf = bf16ToF32(all);
  const backBf = f32ToBf16(bf);
  for (let h = 0; h < 65536; h++) {
    const nan16 = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (nan16) assert(Number.isNaN(f16[h]), `f16 ${h.toString(16)} is NaN`);
    else {
      assert(
        Object.is(f16[h], oracle[h]),
        `f16 ${h.toString(16)} widened to ${f16[h]}, expected ${oracle[h]}`,
      );
      assert(back16[h] === h, `f16 ${h.toString(16)} came back as ${back16[h].toString(16)}`);
    }
    const nanBf = (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
    if (nanBf) assertEquals(backBf[h], 0x7fc0, "bf16 NaN becomes PyTorch's 0x7fc0");
    else assert(backBf[h] === h && bf16BitsToF32(h) === bf[h], `bf16 ${h.toString(16)} round trip`);
  }
});

Deno.test("safetensors: bf16 rounds to nearest even, overflowing to infinity", () => {
  const cases: [number, number][] = [
    [1, 0x3f80],
    [1 + 2 ** -8, 0x3f80], // tie, even stays
    [1 + 3 * 2 ** -8, 0x3f82], // tie, rounds up to even
    [1 + 2 ** -8 + 2 ** -20, 0x3f81],
    [3.4028234663852886e38, 0x7f80], // FLT_MAX rounds up to inf, as in PyTorch
    [-0, 0x8000],
    [1e-45, 0x0000],
    [-Infinity, 0xff80],
  ];
  for (const [x, h] of cases) assertEquals(f32ToBf16Bits(x), h, `f32ToBf16Bits(${x})`);
  assertEquals(f32ToBf16Bits(NaN), 0x7fc0);
});

Deno.test("safetensors: corrupt files give errors naming the file and the tensor", async () => {
  const tiny = await tempFile();
  await Deno.writeFile(tiny, new Uint8Array(5));
  await assertRejects(() => SafetensorsFile.open(tiny), SafetensorsError, `${tiny}: 5 bytes is too short`);

  const ok = { w: { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] } };
  const cases: [unknown, number, string, number?][] = [
    [ok, 16, "header length 9999 does not fit the file", 9999],
    ["{not json", 0, "the header is not valid JSON"],
    ["[1,2]", 0, "the header must be a JSON object"],
    [{ w: { dtype: "Q4", shape: [2], data_offsets: [0, 2] } }, 2, 'tensor "w": unknown dtype "Q4"'],
    [{ w: { dtype: "F32", shape: [2, -1], data_offsets: [0, 8] } }, 8, 'tensor "w": shape must be'],
    [
      { w: { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] } },
      12,
      'tensor "w": data_offsets [0, 16] run past',
    ],
    [
      { w: { dtype: "F32", shape: [2, 3], data_offsets: [0, 16] } },
      16,
      "span 16 bytes but F32 × [2, 3] needs 24",
    ],
    [{ w: { dtype: "F16", shape: [2], data_offsets: [4, 0] } }, 4, "end before they begin"],
    [
      {
        a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
      },
      12,
      'tensors "a" and "b" overlap',
    ],
    [{ __metadata__: { format: 1 }, ...ok }, 16, "__metadata__.format must be a string"],
  ];
  for (const [header, dataBytes, message, headerLength] of cases) {
    const path = await rawFile(header, dataBytes, headerLength);
    const err = await assertRejects(() => SafetensorsFile.open(path), SafetensorsError, message);
    assert(err.message.startsWith(`${path}: `), `error names the file: ${err.message}`);
  }
});

Deno.test("safetensors: writing refuses data that does not fit the shape or dtype", async () => {
  const path = await tempFile();
  await assertRejects(
    () => writeSafetensors(path, { w: { dtype: "F32", shape: [2, 2], data: new Float32Array(3) } }),
    SafetensorsError,
    'tensor "w": 3 values, but its shape holds 4',
  );
  await assertRejects(
    () => writeSafetensors(path, { w: { dtype: "I32", shape: [2], data: new Float32Array(2) } }),
    SafetensorsError,
    "I32 data must be an Int32Array",
  );
  // A failed write leaves neither the target nor a temporary file behind.
  const dir = path.slice(0, path.lastIndexOf("/"));
  assertEquals([...Deno.readDirSync(dir)].length, 0);
});

Deno.test("safetensors: a tensor written in pieces gives the same bytes as written whole", async () => {
  const values = randn(7 * 5, 4);
  async function* pieces(sizes: number[]) {
    let at = 0;
    for (const n of sizes) {
      yield values.slice(at, at + n);
      at += n;
    }
  }
  for (const dtype of ["F32", "BF16", "F16"] as const) {
    const whole = await tempFile(), split = await tempFile();
    const extra = { dtype: "F32" as const, shape: [2], data: new Float32Array([1, 2]) };
    await writeSafetensors(whole, { w: { dtype, shape: [7, 5], data: values }, b: extra });
    await writeSafetensors(split, { w: { dtype, shape: [7, 5], data: () => pieces([10, 5, 20]) }, b: extra });
    assertEquals(await Deno.readFile(split), await Deno.readFile(whole), dtype);
  }
  const path = await tempFile();
  await assertRejects(
    () => writeSafetensors(path, { w: { dtype: "F32", shape: [7, 5], data: () => pieces([10, 5]) } }),
    SafetensorsError,
    'tensor "w": pieces hold 15 values, its shape 35',
  );
  await assertRejects(
    () => writeSafetensors(path, { w: { dtype: "F32", shape: [2, 2], data: () => pieces([3, 3]) } }),
    SafetensorsError,
    "pieces hold more than its 4 values",
  );
});

Deno.test("safetensors: BF16 read as f16 bits equals the round trip through f32, for every bf16 value", async () => {
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  assertEquals(bf16ToF16(all), f32ToF16(bf16ToF32(all)));
  const path = await tempFile();
  await writeSafetensors(path, { w: { dtype: "BF16", shape: [65536], data: all } });
  const st = await SafetensorsFile.open(path);
  assertEquals(
    await st.readF16Bits("w", { start: 1000, count: 3000 }),
    f32ToF16(bf16ToF32(all.slice(1000, 4000))),
  );
});
