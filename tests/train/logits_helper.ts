/**
 * Logits of a fixed Korean sentence under a model folder (optionally with a PEFT adapter), for tests that
 * compare models after saving, loading and merging.
 * @module
 */
import type { Gpu } from "../../gpu/runtime.ts";
import { loadLlama } from "../../model/load.ts";
import { ParamSet } from "../../model/params.ts";
import { loadTokenizer } from "../../text/tokenizer.ts";
import { loadLoraAdapter, loraAdapters, loraParamSpecs } from "../../train/lora.ts";
import { writeBatch } from "../../model/inputs.ts";
import { openModelFolder } from "../../io/hf_model.ts";

/** Logits [T·V] of "한국의 수도는 서울입니다." under `dir` (+ `adapterDir`). */
export async function runParityLogits(gpu: Gpu, dir: string, adapterDir?: string): Promise<Float32Array> {
  const tok = await loadTokenizer(dir);
  const ids = tok.encode("한국의 수도는 서울입니다.");
  let lora;
  if (adapterDir) {
    const { spec, weights } = await loadLoraAdapter(adapterDir);
    const dims = (await openModelFolder(dir)).config;
    const params = ParamSet.create(gpu, loraParamSpecs(dims, spec), { trainable: false, label: "lora" });
    for (const [name, w] of weights) gpu.write(params.value(name), w);
    lora = loraAdapters(params, spec, dims);
  }
  const loaded = await loadLlama(gpu, dir, { trainable: false, maxTokens: 64, lora });
  const io = loaded.model.allocStep();
  const T = ids.length;
  writeBatch(gpu, io, { B: 1, T, ids, attentionMask: ids.map(() => 1) });
  gpu.run([...loaded.model.forwardHidden(1, T, io), ...loaded.model.forwardLogits(0, T)]);
  const logits = await gpu.readF32(loaded.model.logitsBuffer);
  return logits.slice(0, T * loaded.config.vocabSize);
}
