/**
 * PEFT LoRA adapter folders, the format `PeftModel.save_pretrained` writes: `adapter_config.json` (which
 * modules carry an adapter, at which rank and alpha, over which base model) and `adapter_model.safetensors`
 * (`base_model.model.<module>.lora_A.weight` [r, in] and `lora_B.weight` [out, r]).
 *
 * Which linear layers an adapter covers is decided as PEFT decides it (`check_target_module_exists`,
 * `get_pattern_key` in PEFT's tuners): `target_modules` as a list matches a module whose name equals an
 * entry or ends with `.` + entry, as a string it is a regular expression the whole name must match;
 * `exclude_modules` removes modules the same ways; `layers_to_transform` (with `layers_pattern`) keeps only
 * the listed decoder layers (list form only, as in PEFT); `rank_pattern` and `alpha_pattern` give some modules
 * their own rank and alpha, the first key (in file order) matching the end of the module's name winning.
 * Fields this toolkit cannot apply (DoRA, `modules_to_save` with real modules, LoRA biases, layer
 * replication, trainable tokens, target parameters, non-linear targets) are refused by name.
 *
 * @module
 */
import { join } from "node:path";
import { isFile } from "./fs.ts";
import { writeJsonAtomic } from "./atomic.ts";
import {
  LINEAR_NAMES,
  type LinearName,
  linearName,
  linearShape,
  type LlamaDims,
} from "./llama_architecture.ts";
import { SafetensorsFile, writeSafetensors } from "./safetensors.ts";

/** The config file of an adapter folder. */
export const ADAPTER_CONFIG_FILE = "adapter_config.json";
/** The weights file of an adapter folder. */
export const ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors";
/**
 * A LoRA adapter's shape, with PEFT's `LoraConfig` names in camel case. `targets` is PEFT's `target_modules`:
 * a list of module names (matched as a name or a `.`-separated suffix, e.g. `q_proj`) or one regular
 * expression matched against whole module names.
 *
 * @example
 * ```ts
 * const spec: LoraSpec = { r: 16, alpha: 32, targets: ["q_proj", "v_proj"], rankPattern: { "^model.layers.0.self_attn.q_proj": 4 } };
 * ```
 */
export interface LoraSpec {
  /** Rank (`r`), unless `rankPattern` gives a module its own. */
  r: number;
  /** `lora_alpha`; the adapter's output is scaled by alpha/r (alpha/√r with rsLoRA). */
  alpha: number;
  /** `target_modules`: module names or suffixes, or one regular expression. */
  targets: readonly string[] | string;
  /** Rank-stabilised scaling (`use_rslora`). */
  rslora?: boolean;
  /** `rank_pattern`: module name pattern → rank. */
  rankPattern?: Readonly<Record<string, number>>;
  /** `alpha_pattern`: module name pattern → alpha. */
  alphaPattern?: Readonly<Record<string, number>>;
  /** `layers_to_transform`: only these decoder layers (with list `targets`). */
  layersToTransform?: readonly number[] | number;
  /** `layers_pattern`: the name of the layer list in module names (`layers`); any when absent. */
  layersPattern?: readonly string[] | string;
  /** `exclude_modules`: names or suffixes, or one regular expression, never adapted. */
  excludeModules?: readonly string[] | string;
}

/** One linear layer an adapter covers, with the rank and scale PEFT gives it. */
export interface AdaptedLinear {
  /** Hugging Face module name, e.g. `model.layers.0.self_attn.q_proj`. */
  name: string;
  /** Its decoder layer. */
  layer: number;
  /** Which linear of the layer. */
  which: LinearName;
  /** Its rank (`r`, or `rank_pattern`'s). */
  rank: number;
  /** Its alpha (`lora_alpha`, or `alpha_pattern`'s). */
  alpha: number;
  /** alpha / rank, or alpha / √rank with rsLoRA. */
  scale: number;
  /** The linear's weight shape [out, in]: A is [rank, in], B is [out, rank]. */
  shape: [number, number];
}

/**
 * Thrown for an adapter folder this toolkit cannot read or apply; the message names the file and field.
 *
 * @example
 * ```ts
 * try { await readPeftAdapter("runs/x"); } catch (e) { if (e instanceof AdapterError) console.error(e.message); }
 * ```
 */
export class AdapterError extends Error {
  /**
   * An error about an adapter folder.
   * @param message What is wrong, naming the file and field.
   */
  constructor(message: string) {
    super(message);
    this.name = "AdapterError";
  }
}

/**
 * The adapter's output scale for a module of rank `r` and alpha `alpha`.
 *
 * @example
 * ```ts
 * loraScaleOf(16, 8, false); // 2
 * loraScaleOf(16, 16, true); // 4
 * ```
 */
export function loraScaleOf(alpha: number, r: number, rslora: boolean | undefined): number {
  return rslora ? alpha / Math.sqrt(r) : alpha / r;
}

/**
 * Every module name a Llama-family `LlamaForCausalLM` has (what PEFT matches `target_modules` against), in
 * `named_modules()` order.
 *
 * @example
 * ```ts
 * llamaModuleNames(1).includes("model.layers.0.mlp.down_proj"); // true
 * ```
 */
export function llamaModuleNames(numLayers: number): string[] {
  const out = ["model", "model.embed_tokens", "model.layers"];
  for (let l = 0; l < numLayers; l++) {
    const p = `model.layers.${l}`;
    out.push(p, `${p}.self_attn`);
    for (const w of ["q_proj", "k_proj", "v_proj", "o_proj"]) out.push(`${p}.self_attn.${w}`);
    out.push(`${p}.mlp`);
    for (const w of ["gate_proj", "up_proj", "down_proj"]) out.push(`${p}.mlp.${w}`);
    out.push(`${p}.mlp.act_fn`, `${p}.input_layernorm`, `${p}.post_attention_layernorm`);
  }
  out.push("model.norm", "model.rotary_emb", "lm_head");
  return out;
}

/** A Python `re` pattern as a JavaScript RegExp anchored the way `wrap` says; errors name the field. */
function pythonRegex(pattern: string, wrap: (p: string) => string, field: string): RegExp {
  try {
    return new RegExp(wrap(pattern), "u");
  } catch (e) {
    throw new AdapterError(
      `${field}: ${JSON.stringify(pattern)} is not a regular expression this loader reads ` +
        `(${(e as Error).message})`,
    );
  }
}

/** PEFT's name matching: a list matches a name or a `.`-suffix, a string is `re.fullmatch`. */
function nameMatcher(spec: readonly string[] | string, field: string): (key: string) => boolean {
  if (typeof spec === "string") {
    const re = pythonRegex(spec, (p) => `^(?:${p})$`, field);
    return (key) => re.test(key);
  }
  return (key) => spec.some((t) => key === t || key.endsWith(`.${t}`));
}

/** PEFT's layer index of a module name, with or without `layers_pattern`. */
function layerIndexOf(key: string, layersPattern: LoraSpec["layersPattern"]): number | undefined {
  const patterns = layersPattern === undefined || layersPattern.length === 0
    ? undefined
    : typeof layersPattern === "string"
    ? [layersPattern]
    : layersPattern;
  const regexes = patterns
    ? patterns.map((p) => pythonRegex(p, (q) => `^.*?\\.${q}\\.(\\d+)\\.`, "layers_pattern"))
    : [/^.*?\.[^.]*\.(\d+)\./u];
  for (const re of regexes) {
    const m = re.exec(key);
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** PEFT's `get_pattern_key`: the first pattern key matching the end of `key`. */
function patternValue(
  pattern: Readonly<Record<string, number>> | undefined,
  key: string,
  field: string,
): number | undefined {
  for (const [p, v] of Object.entries(pattern ?? {})) {
    if (pythonRegex(p, (q) => `^(.*\\.)?(${q})$`, field).test(key)) return v;
  }
  return undefined;
}

/**
 * The linear layers `spec` adapts in a model of `dims.numLayers` layers, with each one's rank and scale, in
 * layer order. A target that matches a module other than the seven linear layers (embeddings, `lm_head`, a
 * norm) is refused by name, as is a spec that matches nothing.
 *
 * @example
 * ```ts
 * adaptedLinears(dims, { r: 8, alpha: 16, targets: ["q_proj", "v_proj"], layersToTransform: [0] }).length; // 2
 * ```
 */
export function adaptedLinears(dims: LlamaDims, spec: LoraSpec, where = "LoRA"): AdaptedLinear[] {
  const targeted = nameMatcher(spec.targets, `${where}: target_modules`);
  const excluded = spec.excludeModules === undefined
    ? () => false
    : nameMatcher(spec.excludeModules, `${where}: exclude_modules`);
  const layers = spec.layersToTransform;
  const usesLayers = layers !== undefined && (typeof layers === "number" || layers.length > 0);
  const matched = (key: string): boolean => {
    if (excluded(key) || !targeted(key)) return false;
    if (typeof spec.targets === "string" || !usesLayers) return true;
    const index = layerIndexOf(key, spec.layersPattern);
    if (index === undefined) return false;
    return typeof layers === "number" ? index === layers : layers!.includes(index);
  };
  const linears = new Map<string, { layer: number; which: LinearName }>();
  for (let l = 0; l < dims.numLayers; l++) {
    for (const which of LINEAR_NAMES) linears.set(linearName(l, which), { layer: l, which });
  }
  const out: AdaptedLinear[] = [];
  for (const key of llamaModuleNames(dims.numLayers)) {
    if (!matched(key)) continue;
    const linear = linears.get(key);
    if (!linear) {
      throw new AdapterError(
        `${where}: target_modules ${
          JSON.stringify(spec.targets)
        } matches "${key}", which this toolkit cannot ` +
          `adapt (only the linear layers ${LINEAR_NAMES.join(", ")})`,
      );
    }
    const rank = patternValue(spec.rankPattern, key, `${where}: rank_pattern`) ?? spec.r;
    const alpha = patternValue(spec.alphaPattern, key, `${where}: alpha_pattern`) ?? spec.alpha;
    if (!(Number.isInteger(rank) && rank > 0)) {
      throw new AdapterError(`${where}: the rank of "${key}" must be a positive integer, got ${rank}`);
    }
    if (!Number.isFinite(alpha)) {
      throw new AdapterError(`${where}: the alpha of "${key}" must be a finite number, got ${alpha}`);
    }
    out.push({
      name: key,
      ...linear,
      rank,
      alpha,
      scale: loraScaleOf(alpha, rank, spec.rslora),
      shape: linearShape(dims, linear.which),
    });
  }
  if (out.length === 0) {
    throw new AdapterError(
      `${where}: target_modules ${JSON.stringify(spec.targets)}` +
        (usesLayers ? ` with layers_to_transform ${JSON.stringify(layers)}` : "") +
        ` matches no linear layer of a ${dims.numLayers}-layer Llama`,
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// adapter_config.json

type Json = Record<string, unknown>;

/** Fields PEFT writes that this toolkit cannot apply, with the value that is harmless. */
const REFUSED: [field: string, harmless: (v: unknown) => boolean, why: string][] = [
  ["use_dora", (v) => !v, "DoRA is not supported"],
  [
    "modules_to_save",
    (v) => v == null || (Array.isArray(v) && v.length === 0),
    "full copies of modules are not supported",
  ],
  ["lora_bias", (v) => !v, "LoRA biases are not supported"],
  ["bias", (v) => v == null || v === "none", 'only "none" is supported'],
  ["fan_in_fan_out", (v) => !v, "Llama-family linears store [out, in]; it must be false"],
  ["layer_replication", (v) => v == null, "layer replication is not supported"],
  ["trainable_token_indices", (v) => v == null, "trainable tokens are not supported"],
  [
    "target_parameters",
    (v) => v == null || (Array.isArray(v) && v.length === 0),
    "LoRA on parameters is not supported",
  ],
  ["use_qalora", (v) => !v, "QA-LoRA is not supported"],
  ["alora_invocation_tokens", (v) => v == null, "activated LoRA is not supported"],
  ["megatron_config", (v) => v == null, "Megatron layers are not supported"],
];

function numberRecord(v: unknown, field: string, path: string): Record<string, number> | undefined {
  if (v == null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) {
    throw new AdapterError(
      `${path}: ${field} must be an object of pattern → number, got ${JSON.stringify(v)}`,
    );
  }
  for (const [k, n] of Object.entries(v as Json)) {
    if (typeof n !== "number" || !Number.isFinite(n)) {
      throw new AdapterError(`${path}: ${field}["${k}"] must be a number, got ${JSON.stringify(n)}`);
    }
  }
  return Object.keys(v as Json).length > 0 ? v as Record<string, number> : undefined;
}

function namesOrRegex(v: unknown, field: string, path: string): readonly string[] | string | undefined {
  if (v == null) return undefined;
  if (typeof v === "string") return v;
  if (Array.isArray(v) && v.every((s) => typeof s === "string")) return v as string[];
  throw new AdapterError(
    `${path}: ${field} must be a list of module names or one regular expression, got ` +
      JSON.stringify(v),
  );
}

/**
 * Parses an `adapter_config.json` object: the {@link LoraSpec} and the base model as stored. Anything this
 * toolkit cannot apply is an {@link AdapterError} naming the field.
 *
 * @example
 * ```ts
 * const { spec, baseModel } = parseAdapterConfig(JSON.parse(text), "runs/a/adapter_config.json");
 * ```
 */
export function parseAdapterConfig(json: unknown, path: string): { spec: LoraSpec; baseModel?: string } {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new AdapterError(`${path}: expected a JSON object`);
  }
  const cfg = json as Json;
  const fail = (field: string, expected: string): never => {
    throw new AdapterError(`${path}: ${field} ${expected}, got ${JSON.stringify(cfg[field])}`);
  };
  if (cfg.peft_type !== "LORA") fail("peft_type", 'must be "LORA" (only LoRA adapters are supported)');
  if (!(Number.isInteger(cfg.r) && (cfg.r as number) > 0)) fail("r", "must be a positive integer");
  if (typeof cfg.lora_alpha !== "number" || !Number.isFinite(cfg.lora_alpha)) {
    fail("lora_alpha", "must be a number");
  }
  for (const [field, harmless, why] of REFUSED) {
    if (!harmless(cfg[field])) fail(field, `cannot be applied here (${why})`);
  }
  let targets = namesOrRegex(cfg.target_modules, "target_modules", path);
  // PEFT's default for Llama when the config names none.
  if (targets === undefined) targets = ["q_proj", "v_proj"];
  if (targets === "all-linear") targets = [...LINEAR_NAMES];
  const layers = cfg.layers_to_transform;
  if (
    layers != null && !Number.isInteger(layers) &&
    !(Array.isArray(layers) && layers.every((n) => Number.isInteger(n)))
  ) {
    fail("layers_to_transform", "must be a layer index or a list of them");
  }
  const spec: LoraSpec = {
    r: cfg.r as number,
    alpha: cfg.lora_alpha as number,
    targets,
    rslora: Boolean(cfg.use_rslora),
    rankPattern: numberRecord(cfg.rank_pattern, "rank_pattern", path),
    alphaPattern: numberRecord(cfg.alpha_pattern, "alpha_pattern", path),
    layersToTransform: layers == null ? undefined : layers as number | number[],
    layersPattern: namesOrRegex(cfg.layers_pattern, "layers_pattern", path),
    excludeModules: namesOrRegex(cfg.exclude_modules, "exclude_modules", path),
  };
  const base = cfg.base_model_name_or_path;
  return { spec, baseModel: typeof base === "string" && base !== "" ? base : undefined };
}

/**
 * The `adapter_config.json` PEFT writes for `spec`, with `base_model_name_or_path` as given.
 *
 * @example
 * ```ts
 * adapterConfigJson({ r: 8, alpha: 16, targets: ["q_proj"] }, "/models/base").r; // 8
 * ```
 */
export function adapterConfigJson(spec: LoraSpec, baseModel: string): Json {
  const list = <T>(v: readonly T[] | T | undefined) =>
    v === undefined ? null : Array.isArray(v) ? [...v as T[]] : v;
  return {
    alpha_pattern: { ...spec.alphaPattern },
    base_model_name_or_path: baseModel,
    bias: "none",
    exclude_modules: list(spec.excludeModules),
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: list(spec.layersPattern),
    layers_to_transform: list(spec.layersToTransform),
    lora_alpha: spec.alpha,
    lora_dropout: 0.0,
    modules_to_save: null,
    peft_type: "LORA",
    r: spec.r,
    rank_pattern: { ...spec.rankPattern },
    target_modules: typeof spec.targets === "string" ? spec.targets : [...spec.targets].sort(),
    task_type: "CAUSAL_LM",
    use_dora: false,
    use_rslora: Boolean(spec.rslora),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Folders

/**
 * Whether `dir` is a PEFT adapter folder (it holds `adapter_config.json`; transformers loads such a folder as
 * base model + adapter even when it holds a `config.json` too).
 *
 * @example
 * ```ts
 * if (await isAdapterFolder("runs/sft-lora/final")) console.log("an adapter");
 * ```
 */
export async function isAdapterFolder(dir: string): Promise<boolean> {
  return await isFile(join(dir, ADAPTER_CONFIG_FILE));
}

/** An adapter folder as read: its spec, base model as stored, and A/B weights by internal name. */
export interface PeftAdapter {
  /** The folder. */
  dir: string;
  /** What `adapter_config.json` says. */
  spec: LoraSpec;
  /** `base_model_name_or_path` as stored (an absolute path or a Hub id; PEFT reads a relative one from the CWD). */
  baseModel?: string;
  /** `<module>.lora_A` [rank, in] and `<module>.lora_B` [out, rank] as f32. */
  weights: Map<string, Float32Array>;
  /** The stored shape of each of `weights`. */
  shapes: Map<string, number[]>;
}

/**
 * Reads a PEFT LoRA adapter folder. Errors name the file and field (or tensor) this toolkit cannot apply;
 * whether the tensors fit a model is checked by {@link checkAdapterFits}.
 *
 * @example
 * ```ts
 * const adapter = await readPeftAdapter("runs/sft-lora/final");
 * adapter.spec.r; // 16
 * ```
 */
export async function readPeftAdapter(dir: string): Promise<PeftAdapter> {
  const cfgPath = join(dir, ADAPTER_CONFIG_FILE);
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(cfgPath));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new AdapterError(`${cfgPath}: file not found`);
    throw new AdapterError(`${cfgPath}: not valid JSON (${(e as Error).message})`);
  }
  const { spec, baseModel } = parseAdapterConfig(json, cfgPath);
  const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!(await isFile(weightsPath))) {
    const bin = await isFile(join(dir, "adapter_model.bin"));
    throw new AdapterError(
      `${dir}: no ${ADAPTER_WEIGHTS_FILE}` +
        (bin ? " (it has adapter_model.bin: convert it to safetensors)" : ""),
    );
  }
  const file = await SafetensorsFile.open(weightsPath);
  const weights = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  for (const name of file.names()) {
    const m = name.match(/^base_model\.model\.(.*)\.lora_([AB])(?:\.default)?\.weight$/);
    if (!m) throw new AdapterError(`${weightsPath}: tensor "${name}" is not a LoRA A/B weight`);
    const key = `${m[1]}.lora_${m[2]}`;
    weights.set(key, await file.readF32(name));
    shapes.set(key, [...file.info(name).shape]);
  }
  return { dir, spec, baseModel, weights, shapes };
}

/**
 * Checks that an adapter's tensors are exactly the A and B of every linear its config adapts, with the ranks
 * the config gives, for a model of `dims`; returns those linears.
 *
 * @example
 * ```ts
 * const layout = checkAdapterFits(await readPeftAdapter(dir), baseConfig);
 * ```
 */
export function checkAdapterFits(adapter: PeftAdapter, dims: LlamaDims): AdaptedLinear[] {
  const where = join(adapter.dir, ADAPTER_CONFIG_FILE);
  const layout = adaptedLinears(dims, adapter.spec, where);
  const file = join(adapter.dir, ADAPTER_WEIGHTS_FILE);
  const expected = new Set<string>();
  for (const l of layout) {
    const [outF, inF] = l.shape;
    for (
      const [key, shape] of [[`${l.name}.lora_A`, [l.rank, inF]], [`${l.name}.lora_B`, [
        outF,
        l.rank,
      ]]] as const
    ) {
      expected.add(key);
      const got = adapter.shapes.get(key);
      if (!got) {
        throw new AdapterError(`${file}: tensor "${key}.weight" is missing (${where} adapts "${l.name}")`);
      }
      if (got.length !== 2 || got[0] !== shape[0] || got[1] !== shape[1]) {
        throw new AdapterError(
          `${file}: tensor "${key}.weight" has shape [${
            got.join(", ")
          }]; the base model and ${where} imply ` +
            `[${shape.join(", ")}]`,
        );
      }
    }
  }
  for (const key of adapter.weights.keys()) {
    if (!expected.has(key)) {
      throw new AdapterError(`${file}: tensor "${key}.weight" belongs to a module ${where} does not adapt`);
    }
  }
  return layout;
}

/**
 * Writes an adapter folder in PEFT's layout: the tensors (f32) and `adapter_config.json`, each atomically.
 * `weights` are keyed `<module>.lora_A` / `.lora_B`; `baseModel` is stored as given.
 *
 * @example
 * ```ts
 * await writePeftAdapter("runs/a/final", weights, spec, dims, "/abs/path/to/base");
 * ```
 */
export async function writePeftAdapter(
  dir: string,
  weights: ReadonlyMap<string, Float32Array>,
  spec: LoraSpec,
  dims: LlamaDims,
  baseModel: string,
): Promise<void> {
  const layout = new Map(adaptedLinears(dims, spec).map((l) => [l.name, l]));
  await Deno.mkdir(dir, { recursive: true });
  const tensors: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
  for (const [name, data] of weights) {
    const m = name.match(/^(.*)\.lora_([AB])$/);
    const l = m ? layout.get(m[1]) : undefined;
    if (!m || !l) throw new AdapterError(`"${name}" is not a LoRA tensor of this adapter`);
    const shape = m[2] === "A" ? [l.rank, l.shape[1]] : [l.shape[0], l.rank];
    if (shape[0] * shape[1] !== data.length) {
      throw new AdapterError(`"${name}" has ${data.length} values, expected [${shape.join(", ")}]`);
    }
    tensors[`base_model.model.${m[1]}.lora_${m[2]}.weight`] = { dtype: "F32", shape, data };
  }
  await writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors, { format: "pt" });
  await writeJsonAtomic(join(dir, ADAPTER_CONFIG_FILE), adapterConfigJson(spec, baseModel), { indent: 2 });
}
