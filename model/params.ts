/**
 * Parameters of a Llama-family model on the GPU: names and shapes in Hugging Face's convention, stored in a
 * few flat arenas (one per optimizer group) as llm.c does, so AdamW and gradient clipping are one dispatch per
 * arena and checkpoints are straight copies.
 *
 * @module
 */
import { Arena, type Gpu, type Tensor } from "../gpu/runtime.ts";

/** The architecture numbers the model code needs (a subset of a parsed config.json). */
export interface LlamaDims {
  /** Width of the residual stream. */
  hiddenSize: number;
  /** Width of the MLP's gate and up projections. */
  intermediateSize: number;
  /** Decoder layers. */
  numLayers: number;
  /** Query heads. */
  numHeads: number;
  /** Key/value heads; divides `numHeads` (GQA/MQA when smaller). */
  numKvHeads: number;
  /** Width of one attention head. */
  headDim: number;
  /** Rows of the embedding and of the LM head. */
  vocabSize: number;
  /** Epsilon of every RMSNorm. */
  rmsNormEps: number;
  /** The LM head reuses the embedding matrix. */
  tieWordEmbeddings: boolean;
  /** Biases on q/k/v projections (Qwen2; Llama's `attention_bias`). */
  attentionBias: boolean;
  /** Bias on o_proj (Llama's `attention_bias`). */
  attentionOutputBias: boolean;
  /** Biases on gate/up/down projections (Llama's `mlp_bias`). */
  mlpBias: boolean;
}

/** One parameter: its Hugging Face name, shape, and whether weight decay applies to it. */
export interface ParamSpec {
  /** Hugging Face name, e.g. `model.layers.0.self_attn.q_proj.weight`. */
  name: string;
  /** Shape in Hugging Face's layout (`[out, in]` for linear weights). */
  shape: number[];
  /** Hugging Face's Trainer decays all weights except biases and norm weights. */
  decay: boolean;
}

/** Names of the linear layers of one decoder layer, in the order the forward pass uses them. */
export const LINEAR_NAMES = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
] as const;
/** One linear layer of a decoder layer, e.g. `q_proj`. */
export type LinearName = typeof LINEAR_NAMES[number];

/** Hugging Face name of linear `which` in layer `layer`. */
export function linearName(layer: number, which: LinearName): string {
  const block = which === "gate_proj" || which === "up_proj" || which === "down_proj" ? "mlp" : "self_attn";
  return `model.layers.${layer}.${block}.${which}`;
}

/** Whether linear `which` has a bias in this architecture. */
export function hasBias(d: LlamaDims, which: LinearName): boolean {
  if (which === "q_proj" || which === "k_proj" || which === "v_proj") return d.attentionBias;
  if (which === "o_proj") return d.attentionOutputBias;
  return d.mlpBias;
}

/** [out, in] of each linear layer. */
export function linearShape(d: LlamaDims, which: LinearName): [number, number] {
  const D = d.hiddenSize, I = d.intermediateSize, q = d.numHeads * d.headDim, kv = d.numKvHeads * d.headDim;
  switch (which) {
    case "q_proj":
      return [q, D];
    case "k_proj":
    case "v_proj":
      return [kv, D];
    case "o_proj":
      return [D, q];
    case "gate_proj":
    case "up_proj":
      return [I, D];
    case "down_proj":
      return [D, I];
  }
}

/**
 * Every parameter of the model, in Hugging Face's names and order.
 * @example
 * ```ts
 * llamaParamSpecs(dims).map((p) => p.name); // ["model.embed_tokens.weight", "model.layers.0.input_layernorm.weight", …]
 * ```
 */
export function llamaParamSpecs(d: LlamaDims): ParamSpec[] {
  const specs: ParamSpec[] = [{
    name: "model.embed_tokens.weight",
    shape: [d.vocabSize, d.hiddenSize],
    decay: true,
  }];
  for (let l = 0; l < d.numLayers; l++) {
    const p = `model.layers.${l}`;
    specs.push({ name: `${p}.input_layernorm.weight`, shape: [d.hiddenSize], decay: false });
    for (const w of LINEAR_NAMES) {
      specs.push({ name: `${linearName(l, w)}.weight`, shape: linearShape(d, w), decay: true });
      if (hasBias(d, w)) {
        specs.push({ name: `${linearName(l, w)}.bias`, shape: [linearShape(d, w)[0]], decay: false });
      }
      if (w === "o_proj") {
        specs.push({ name: `${p}.post_attention_layernorm.weight`, shape: [d.hiddenSize], decay: false });
      }
    }
  }
  specs.push({ name: "model.norm.weight", shape: [d.hiddenSize], decay: false });
  if (!d.tieWordEmbeddings) {
    specs.push({ name: "lm_head.weight", shape: [d.vocabSize, d.hiddenSize], decay: true });
  }
  return specs;
}

/** Number of elements of a shape. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * A set of tensors with the same layout in several arenas: the values, and (for trainable sets) their
 * gradients and AdamW moments. Tensors are grouped by weight decay so each group is a few flat buffers.
 *
 * @example
 * ```ts
 * const set = ParamSet.create(gpu, llamaParamSpecs(dims), { trainable: true });
 * set.value("model.norm.weight"); // a Tensor
 * ```
 */
export class ParamSet {
  /** Every parameter's name, shape and decay flag, in the order given at creation. */
  readonly specs: ParamSpec[];
  /** Whether the set has gradients and AdamW moments. */
  readonly trainable: boolean;
  /** Value tensors by parameter name. */
  readonly values: Map<string, Tensor> = new Map();
  /** Gradient tensors by parameter name (trainable sets only). */
  readonly grads: Map<string, Tensor> = new Map();
  /** AdamW first moments by parameter name (trainable sets only). */
  readonly m: Map<string, Tensor> = new Map();
  /** AdamW second moments by parameter name (trainable sets only). */
  readonly v: Map<string, Tensor> = new Map();
  /** One entry per optimizer group: the arenas holding values, grads and moments of its tensors. */
  readonly groups: { decay: boolean; values: Arena; grads?: Arena; m?: Arena; v?: Arena }[] = [];

  private constructor(specs: ParamSpec[], trainable: boolean) {
    this.specs = specs;
    this.trainable = trainable;
  }

  /**
   * Allocates values (and, when trainable, grads and moments) for `specs`. `dtypeOf` may hold some values
   * as f16 (frozen base weights); gradients and moments are always f32.
   */
  static create(
    gpu: Gpu,
    specs: ParamSpec[],
    opts: { trainable: boolean; label?: string; dtypeOf?: (spec: ParamSpec) => "f32" | "f16" },
  ): ParamSet {
    const set = new ParamSet(specs, opts.trainable);
    const label = opts.label ?? "params";
    for (const decay of [true, false]) {
      const members = specs.filter((s) => s.decay === decay);
      if (members.length === 0) continue;
      const tag = `${label}.${decay ? "decay" : "nodecay"}`;
      const group = {
        decay,
        values: new Arena(gpu, tag),
        grads: opts.trainable ? new Arena(gpu, `${tag}.grad`) : undefined,
        m: opts.trainable ? new Arena(gpu, `${tag}.m`) : undefined,
        v: opts.trainable ? new Arena(gpu, `${tag}.v`) : undefined,
      };
      for (const s of members) {
        const n = numel(s.shape);
        set.values.set(s.name, group.values.alloc(n, opts.dtypeOf?.(s) ?? "f32", s.name, s.shape));
        if (opts.trainable) {
          set.grads.set(s.name, group.grads!.alloc(n, "f32", `${s.name}.grad`, s.shape));
          set.m.set(s.name, group.m!.alloc(n, "f32", `${s.name}.m`, s.shape));
          set.v.set(s.name, group.v!.alloc(n, "f32", `${s.name}.v`, s.shape));
        }
      }
      for (const a of [group.values, group.grads, group.m, group.v]) a?.finish();
      set.groups.push(group);
    }
    return set;
  }

  /** The value tensor of `name`; throws naming the parameter when it is not in this set. */
  value(name: string): Tensor {
    const t = this.values.get(name);
    if (!t) throw new Error(`no parameter named "${name}"`);
    return t;
  }

  /** Releases every buffer of this set. */
  destroy(): void {
    for (const g of this.groups) {
      for (const a of [g.values, g.grads, g.m, g.v]) a?.chunks.forEach((c) => c.buffer?.destroy());
    }
  }

  /** Total number of elements. */
  get size(): number {
    return this.specs.reduce((s, p) => s + numel(p.shape), 0);
  }
}
