/**
 * Checks made while a model is loaded, for what would otherwise pass silently: tensors in the files that
 * the config does not use (a `num_hidden_layers` smaller than the weights', an `lm_head.weight` that tied
 * embeddings would drop, biases a config without biases ignores) and weights that are already NaN or
 * infinite. Each is a small function the loading path calls; none changes what is loaded.
 *
 * @module
 */
import { ModelFolderError } from "../io/hf_config.ts";
import type { ModelFolder } from "../io/hf_model.ts";

/** Buffers some checkpoints store that are not parameters and are safe to ignore. */
const IGNORABLE = /(^|\.)rotary_emb\.inv_freq$|\.attn\.(masked_)?bias$/;

/** Options of {@link checkUnusedWeights}. */
export interface UnusedWeightsOptions {
  /** Load anyway, with a warning (the `--ignore-unused-weights` flag). */
  ignore?: boolean;
  /** Receives the warning when `ignore` is set (default: stderr). */
  warn?: (message: string) => void;
}

/**
 * Throws (or, with `ignore`, warns) when the folder's weights hold tensors its config does not use, naming
 * them by group: layers beyond `num_hidden_layers`, an `lm_head.weight` that differs from the embeddings it
 * is declared tied to, and any other unexpected tensor. An `lm_head.weight` equal to the embeddings is
 * harmless and passes.
 *
 * @example
 * ```ts
 * const folder = await openModelFolder("models/base");
 * await checkUnusedWeights(folder); // ModelFolderError: models/base: 18 tensors … are not used by config.json …
 * ```
 */
export async function checkUnusedWeights(
  folder: ModelFolder,
  opts: UnusedWeightsOptions = {},
): Promise<void> {
  const cfg = folder.config;
  let unused = folder.extraTensors.filter((n) => !IGNORABLE.test(n));
  if (unused.includes("lm_head.weight") && cfg.tieWordEmbeddings) {
    if (await sameTensor(folder, "lm_head.weight", "model.embed_tokens.weight")) {
      unused = unused.filter((n) => n !== "lm_head.weight");
    }
  }
  if (unused.length === 0) return;
  const parts: string[] = [];
  const beyond = new Set<number>();
  const rest: string[] = [];
  for (const name of unused) {
    const layer = /^model\.layers\.(\d+)\./.exec(name);
    if (layer && Number(layer[1]) >= cfg.numLayers) beyond.add(Number(layer[1]));
    else if (name !== "lm_head.weight") rest.push(name);
  }
  if (beyond.size > 0) {
    const layers = [...beyond].sort((a, b) => a - b);
    const count = unused.filter((n) => /^model\.layers\.(\d+)\./.test(n) && beyond.has(layerOf(n))).length;
    parts.push(
      `${count} tensors of layers ${layers[0]}–${
        layers.at(-1)
      }, beyond num_hidden_layers = ${cfg.numLayers} ` +
        `(the weights hold ${layers.at(-1)! + 1} layers)`,
    );
  }
  if (unused.includes("lm_head.weight")) {
    parts.push(
      "lm_head.weight, which differs from model.embed_tokens.weight although tie_word_embeddings is true " +
        "(the model would use the embeddings as its head)",
    );
  }
  if (rest.length > 0) {
    parts.push(
      `${rest.length} other tensor(s): ${rest.slice(0, 4).join(", ")}${rest.length > 4 ? ", …" : ""}`,
    );
  }
  const message = `${folder.dir}: ${unused.length} tensor(s) in the weights are not used by config.json: ` +
    parts.join("; ");
  if (!opts.ignore) {
    throw new ModelFolderError(
      `${message}. Loading would silently drop them: fix config.json, or pass --ignore-unused-weights to ` +
        "load the model as its config describes it",
    );
  }
  (opts.warn ?? ((m: string) => console.error(`warning: ${m}`)))(
    `${message}; ignored (--ignore-unused-weights)`,
  );
}

function layerOf(name: string): number {
  return Number(/^model\.layers\.(\d+)\./.exec(name)![1]);
}

/** Whether two tensors hold the same values (same dtype and bytes, or the same values once widened). */
async function sameTensor(folder: ModelFolder, a: string, b: string): Promise<boolean> {
  const [ra, rb] = [await folder.readRaw(a), await folder.readRaw(b)];
  if (ra.dtype === rb.dtype) return sameBytes(ra.bytes, rb.bytes);
  const [fa, fb] = [await folder.readF32(a), await folder.readF32(b)];
  return fa.length === fb.length && fa.every((v, i) => v === fb[i]);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Counts NaN and infinite values in `values` (f32 values, or f16 bit patterns of frozen f16 weights) and
 * says where the first one is: the test {@link checkFiniteWeights} applies to a tensor read piece by piece.
 *
 * @example
 * ```ts
 * countNonFinite(new Float32Array([1, NaN, Infinity])); // { count: 2, first: 1 }
 * ```
 */
export function countNonFinite(values: Float32Array | Uint16Array): { count: number; first: number } {
  let first = -1, count = 0;
  if (values instanceof Float32Array) {
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v - v !== 0) {
        if (first < 0) first = i;
        count++;
      }
    }
  } else {
    // f16: an exponent of all ones is an infinity or a NaN.
    for (let i = 0; i < values.length; i++) {
      if ((values[i] & 0x7c00) === 0x7c00) {
        if (first < 0) first = i;
        count++;
      }
    }
  }
  return { count, first };
}

/**
 * The error for a weight read from `where` that holds NaN or an infinity, naming the tensor, the file and the
 * first bad index: a model broken before training, which training would otherwise report as a diverging loss.
 *
 * @example
 * ```ts
 * const err = nonFiniteWeightsError("model.norm.weight", "models/base/model.safetensors", { count: 1, first: 7 });
 * ```
 */
export function nonFiniteWeightsError(
  name: string,
  where: string,
  found: { count: number; first: number },
): ModelFolderError {
  return new ModelFolderError(
    `${where}: tensor "${name}" holds ${found.count} NaN or infinite value(s) (the first at index ${found.first}): ` +
      "the weights are broken as stored, before any training",
  );
}

/**
 * Throws {@link nonFiniteWeightsError} when a whole weight tensor holds NaN or an infinity.
 *
 * @example
 * ```ts
 * checkFiniteWeights("model.norm.weight", await folder.readF32("model.norm.weight"), "models/base/model.safetensors");
 * ```
 */
export function checkFiniteWeights(name: string, values: Float32Array | Uint16Array, where: string): void {
  const found = countNonFinite(values);
  if (found.count > 0) throw nonFiniteWeightsError(name, where, found);
}
