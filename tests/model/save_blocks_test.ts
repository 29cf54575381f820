import { Gpu } from "../../gpu/runtime.ts";
import { openModelFolder } from "../../io/hf_model.ts";
import { f32ToBf16, f32ToF16, SafetensorsFile } from "../../io/safetensors.ts";
import { loadLlama, readParams, saveLlama, unloadLlama } from "../../model/load.ts";
import { initLora, loraParamSpecs, type LoraSpec, mergedLoraPieces, mergeLora } from "../../train/lora.ts";
import { assert, assertEquals } from "../asserts.ts";
import { assertClose, GPU_TEST, randn } from "../helpers.ts";
import { FIXTURE_PATH } from "../kernels/fixture_reader.ts";

const FIXTURE_MODEL = `${FIXTURE_PATH}/model`;

/** Bindings of 20,000 bytes: the embedding, LM head and MLP weights of the fixture split into row blocks. */
async function smallBindings(): Promise<Gpu> {
  return await Gpu.create({ maxBindingBytes: 20000 });
}

Deno.test(
  "save: a model held in row blocks streams to a folder equal to the one it came from (F32, BF16, F16)",
  GPU_TEST,
  async () => {
    const gpu = await smallBindings();
    const root = await Deno.makeTempDir({ prefix: "save-blocks-" });
    try {
      const source = await openModelFolder(FIXTURE_MODEL);
      const loaded = await loadLlama(gpu, FIXTURE_MODEL, {
        trainable: true,
        maxTokens: 24,
        maxPositions: 24,
      });
      assert(loaded.params.blocks("model.embed_tokens.weight").blocks.length > 1, "the embedding is split");
      for (const dtype of ["F32", "BF16", "F16"] as const) {
        await saveLlama(gpu, loaded, `${root}/${dtype}`, { dtype });
        const saved = await SafetensorsFile.open(`${root}/${dtype}/model.safetensors`);
        for (const name of source.tensorNames) {
          const original = await source.readF32(name);
          const expected = dtype === "F32"
            ? original
            : dtype === "BF16"
            ? f32ToBf16(original)
            : f32ToF16(original);
          const raw = await saved.readRaw(name);
          assertEquals(raw.dtype, dtype, name);
          const got = dtype === "F32"
            ? new Float32Array(raw.bytes.buffer, raw.bytes.byteOffset, raw.bytes.length / 4)
            : new Uint16Array(raw.bytes.buffer, raw.bytes.byteOffset, raw.bytes.length / 2);
          assertEquals(got, expected, `${dtype} ${name}`);
        }
      }
      unloadLlama(loaded);
      // A frozen f16 base held in blocks reads back the same half-precision values it was loaded with.
      const frozen = await loadLlama(gpu, FIXTURE_MODEL, {
        trainable: false,
        frozenF16: true,
        maxTokens: 24,
        maxPositions: 24,
      });
      await saveLlama(gpu, frozen, `${root}/frozen`, { dtype: "F16" });
      const saved = await SafetensorsFile.open(`${root}/frozen/model.safetensors`);
      for (const name of ["model.embed_tokens.weight", "model.layers.1.mlp.down_proj.weight"]) {
        assertEquals(await saved.readF16Bits(name), await source.readF16Bits(name), name);
      }
      unloadLlama(frozen);
    } finally {
      gpu.destroy();
      await Deno.remove(root, { recursive: true });
    }
  },
);

Deno.test(
  "LoRA merge block by block on the GPU equals the host merge, over f32 and f16 bases",
  GPU_TEST,
  async () => {
    const gpu = await smallBindings();
    try {
      const dims = (await openModelFolder(FIXTURE_MODEL)).config;
      const spec: LoraSpec = { r: 4, alpha: 8, targets: ["q_proj", "gate_proj", "down_proj"] };
      const adapter = new Map(
        [...initLora(dims, spec, 9)].map((
          [name, w],
        ) => [name, name.endsWith("lora_B") ? randn(w.length, 3, 0.2) : w]),
      );
      assertEquals(adapter.size, loraParamSpecs(dims, spec).length);
      for (const frozenF16 of [false, true]) {
        const loaded = await loadLlama(gpu, FIXTURE_MODEL, {
          trainable: false,
          frozenF16,
          maxTokens: 24,
          maxPositions: 24,
        });
        assert(
          loaded.params.blocks("model.layers.0.mlp.gate_proj.weight").blocks.length > 1,
          "gate_proj split",
        );
        const expected = mergeLora(await readParams(gpu, loaded.params), adapter, spec, dims);
        const pieces = mergedLoraPieces(gpu, loaded.params, adapter, spec, dims);
        for (const name of loaded.params.specs.map((s) => s.name)) {
          const parts: number[] = [];
          for await (const p of pieces(name)) parts.push(...p);
          assertClose(
            Float32Array.from(parts),
            expected.get(name)!,
            `${frozenF16 ? "f16" : "f32"} ${name}`,
            1e-6,
            1e-5,
          );
        }
        unloadLlama(loaded);
      }
    } finally {
      gpu.destroy();
    }
  },
);
