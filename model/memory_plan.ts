/**
 * Know before you run: the GPU memory a training run will allocate, part by part, computed from a model's
 * config alone with the same layout rules the model follows (`workspace.ts`, row blocks in
 * `gpu/row_blocks.ts`, the f16 policy of `load.ts`), so a 8B model can be checked on a laptop.
 *
 * The plan lists every buffer the trainer and model create (weights, gradients, AdamW moments, LoRA
 * adapters, the activations kept for the backward pass, the backward workspace, logits, step inputs) and
 * says whether the run fits the adapter: every tensor must split into row blocks that fit one binding,
 * one sequence's activations must fit one binding, and the total must fit the memory, when known.
 * `bench:train` prints the plan beside the peak it measures; a test keeps the two within 10 %.
 *
 * @module
 */
import { rowBlockSizes, rowsAndCols, RowTooWideError } from "../gpu/row_blocks.ts";
import { formatBytes } from "../io/bytes.ts";
import { LINEAR_NAMES, type LlamaDims, llamaParamSpecs, type ParamSpec } from "../io/llama_architecture.ts";
import { paramDtype } from "./load.ts";
import {
  activationBlockRows,
  chooseLogitsRows,
  finalWidths,
  gradWidths,
  GROUP_INPUTS,
  layerWidths,
  rowGroups,
  widestRow,
} from "./workspace.ts";

/** What a plan is for: the model, how it is trained, the batch shape and the adapter's limits. */
export interface PlanSettings {
  /** Rows of one micro-batch: sequences, a preference pair counting two. */
  sequences: number;
  /** Tokens per sequence: the longest padded length. */
  seqLength: number;
  /** Positions the RoPE tables cover (default `seqLength`). */
  maxPositions?: number;
  /** LoRA instead of full fine-tuning: the adapters' parameters (`train/lora.ts`'s `loraParamSpecs`). */
  lora?: { rank: number; specs: readonly ParamSpec[] };
  /** With LoRA: the frozen base's matrices in f16. */
  f16Base?: boolean;
  /** Keep only each layer's input for the backward pass (see `LlamaOptions`). */
  gradientCheckpointing?: boolean;
  /** The adapter's largest binding, in bytes. */
  maxBinding: number;
  /** The adapter's largest buffer, in bytes (default: no tighter than the binding). */
  maxBuffer?: number;
}

/** One part of the plan. */
export interface PlanPart {
  /** `weights`, `gradients`, `AdamW moments`, `activations`, … */
  name: string;
  /** Bytes the part takes on the GPU. */
  bytes: number;
  /** What the figure covers, for people. */
  detail: string;
}

/** A run's memory, part by part, and whether it fits. */
export interface MemoryPlan {
  /** The parts, in the order they are printed. */
  parts: PlanPart[];
  /** Every part together: the peak the run should reach. */
  totalBytes: number;
  /** Activations kept for the backward pass with and without gradient checkpointing. */
  activations: { kept: number; checkpointed: number };
  /** The largest tensor before any split, and how many row blocks it takes. */
  largestTensor: { name: string; bytes: number; blocks: number };
  /** The largest single binding the run uses (at most the adapter's limit when it fits). */
  largestBinding: number;
  /** Rows of one activation block, groups of whole sequences per pass, and logits rows per chunk. */
  layout: { blockRows: number; groups: number; logitsRows: number };
  /** Why the run cannot run on this adapter whatever its memory (empty when it can). */
  problems: string[];
}

const F32 = 4;
const U32 = 4;

/** Bytes a buffer of `bytes` occupies (WebGPU sizes are padded to 16). */
function bufferBytes(bytes: number): number {
  return Math.max(16, Math.ceil(bytes / 16) * 16);
}

/** Bytes an arena allocation of `bytes` occupies (tensors start 256-byte aligned). */
function arenaBytes(bytes: number): number {
  return Math.ceil(Math.max(1, bytes) / 256) * 256;
}

function sum(xs: Iterable<number>): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}

/** Row blocks of one parameter as `ParamSet.create` splits it, and each block's bytes per arena. */
function paramBlocks(spec: ParamSpec, dtypeBytes: number, trainable: boolean, chunk: number): number[] {
  const { rows, cols } = rowsAndCols(spec.shape);
  const widest = trainable ? F32 : dtypeBytes;
  return rowBlockSizes(rows, cols * widest, chunk, spec.name).map((n) => n * cols);
}

/**
 * The memory plan of a training run of `dims` with `s`'s batch shape on an adapter with `s`'s limits.
 * @example
 * ```ts
 * const plan = planMemory(config, { sequences: 4, seqLength: 512, maxBinding: 2 ** 31, gradientCheckpointing: true });
 * console.log(formatPlan(plan));
 * ```
 */
export function planMemory(dims: LlamaDims, s: PlanSettings): MemoryPlan {
  const problems: string[] = [];
  const chunk = Math.floor(Math.min(s.maxBinding, s.maxBuffer ?? Infinity) / 256) * 256;
  const lora = s.lora;
  const full = !lora;
  const D = dims.hiddenSize, L = dims.numLayers;
  const maxTokens = s.sequences * s.seqLength;
  const maxPositions = s.maxPositions ?? s.seqLength;
  const ckpt = Boolean(s.gradientCheckpointing);

  // --- parameters: values (f16 matrices under a frozen f16 base), and gradients and moments when trained
  const specs = llamaParamSpecs(dims);
  let weights = 0, largest = { name: "", bytes: 0, blocks: 1 }, largestBinding = 0;
  const blocksOf = new Map<string, number[]>();
  for (const spec of specs) {
    const bytes = paramDtype(spec, Boolean(s.f16Base) && !full) === "f16" ? 2 : F32;
    let blocks: number[];
    try {
      blocks = paramBlocks(spec, bytes, full, chunk);
    } catch (e) {
      if (!(e instanceof RowTooWideError)) throw e;
      problems.push(e.message);
      blocks = [rowsAndCols(spec.shape).rows * rowsAndCols(spec.shape).cols];
    }
    blocksOf.set(spec.name, blocks);
    weights += sum(blocks.map((n) => arenaBytes(n * bytes)));
    const total = sum(blocks) * (full ? F32 : bytes);
    if (total > largest.bytes) largest = { name: spec.name, bytes: total, blocks: blocks.length };
    largestBinding = Math.max(largestBinding, ...blocks.map((n) => n * (full ? F32 : bytes)));
  }
  const trainedSpecs = full ? specs : [...lora!.specs];
  const trained = sum(trainedSpecs.map((spec) => {
    const blocks = full ? blocksOf.get(spec.name)! : paramBlocks(spec, F32, true, chunk);
    return sum(blocks.map((n) => arenaBytes(n * F32)));
  }));
  const parts: PlanPart[] = [{
    name: "weights",
    bytes: weights,
    detail: `${full ? "f32" : s.f16Base ? "f16 matrices, f32 norms (frozen)" : "f32 (frozen)"}`,
  }];
  if (lora) parts.push({ name: "LoRA adapters", bytes: trained, detail: `rank ${lora.rank}, f32` });
  parts.push({
    name: "gradients",
    bytes: trained,
    detail: full ? "f32, every parameter" : "f32, the adapters",
  });
  parts.push({ name: "AdamW moments", bytes: 2 * trained, detail: "m and v, f32" });

  // --- activations: what the forward pass keeps for the backward pass, per group of whole sequences
  const maxRank = lora?.rank ?? 0;
  const blockRows = activationBlockRows(dims, maxTokens, s.maxBinding, maxRank);
  let groups = 1;
  try {
    groups = rowGroups(s.sequences, s.seqLength, blockRows).length;
  } catch (e) {
    problems.push((e as Error).message);
  }
  const rowsBytes = (widths: Record<string, number>) =>
    sum(Object.values(widths).map((w) => bufferBytes(blockRows * w * F32)));
  const loraXa = maxRank > 0 ? LINEAR_NAMES.length * bufferBytes(blockRows * maxRank * F32) : 0;
  const layerSet = rowsBytes(layerWidths(dims)) + loraXa;
  const { x: _x, ...withoutX } = layerWidths(dims);
  const input = bufferBytes(blockRows * D * F32);
  const finalSet = rowsBytes(finalWidths(dims));
  const keptActs = groups * (L * layerSet + finalSet);
  const ckptActs = groups * (L * input + finalSet) + rowsBytes(withoutX) + loraXa;
  parts.push({
    name: "activations",
    bytes: ckpt ? ckptActs : keptActs,
    detail: ckpt
      ? `each layer's input kept, one layer recomputed (all kept: ${formatBytes(keptActs)})`
      : `every layer kept (with --gradient-checkpointing: ${formatBytes(ckptActs)})`,
  });

  // --- the backward pass's workspace, logits and per-step buffers
  const headBlocks = blocksOf.get(dims.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight")!
    .map((n) => n / D);
  const vocabColumns = Math.max(...headBlocks);
  let logitsRows = 0;
  try {
    logitsRows = chooseLogitsRows(s.maxBinding, vocabColumns, D, maxTokens, undefined, headBlocks.length);
  } catch (e) {
    problems.push((e as Error).message);
  }
  const logits = bufferBytes(logitsRows * vocabColumns * F32) +
    (headBlocks.length > 1 ? bufferBytes(logitsRows * headBlocks.length * 16) : 0);
  parts.push({
    name: "logits",
    bytes: logits,
    detail: `${logitsRows} rows × ${vocabColumns} columns at a time${
      headBlocks.length > 1 ? `, ${headBlocks.length} vocabulary blocks` : ""
    }`,
  });
  const groupRows = Math.min(
    blockRows,
    s.sequences * s.seqLength,
    Math.floor(blockRows / s.seqLength) * s.seqLength,
  );
  const splitLinear = specs.filter((p) => /\.(q|k|v|o|gate|up|down)_proj\.weight$/.test(p.name))
    .map((p) => blocksOf.get(p.name)!.map((n) => n / p.shape[1]))
    .filter((b) => b.length > 1);
  const workspace = rowsBytes(gradWidths(dims)) +
    (maxRank > 0 ? bufferBytes(blockRows * maxRank * F32) + bufferBytes(D * F32) : 0) +
    (splitLinear.length ? bufferBytes(blockRows * Math.max(...splitLinear.flat()) * F32) : 0) +
    bufferBytes(2 * groupRows * dims.numHeads * F32) +
    (full ? groups * bufferBytes(groupRows * U32) : 0) +
    (groups > 1 ? groups * GROUP_INPUTS.length * bufferBytes(blockRows * U32) : 0);
  parts.push({
    name: "backward workspace",
    bytes: workspace,
    detail: "activation gradients of one layer, scratch",
  });
  const stepBuffers = 7 * bufferBytes(maxTokens * 4) + 2 * bufferBytes(maxTokens * F32) +
    2 * bufferBytes(maxPositions * (dims.headDim / 2) * F32);
  parts.push({
    name: "step inputs and RoPE",
    bytes: stepBuffers,
    detail: "ids, masks, targets, log-probs, tables",
  });
  // Small buffers: uniforms (16 bytes per recorded dispatch), optimizer and objective scalars.
  const dispatches = 2 * (L * (60 + (maxRank > 0 ? 42 : 0)) + 20) * groups + 4 * specs.length;
  parts.push({
    name: "small buffers",
    bytes: dispatches * 16 + 16 * 1024,
    detail: "uniforms and scalars (estimate)",
  });

  for (const [w, v] of Object.entries(withoutX)) {
    if (blockRows * v * F32 > s.maxBinding) problems.push(`activation ${w} exceeds one binding`);
  }
  largestBinding = Math.max(
    largestBinding,
    blockRows * widestRow(dims, maxRank) * F32,
    logitsRows * vocabColumns * F32,
  );
  return {
    parts,
    totalBytes: sum(parts.map((p) => p.bytes)),
    activations: { kept: keptActs, checkpointed: ckptActs },
    largestTensor: largest,
    largestBinding,
    layout: { blockRows, groups, logitsRows },
    problems,
  };
}

/**
 * The plan as lines for people: one per part, the total, the largest tensor and binding against the
 * adapter's limit, and whether it fits `memoryBytes` (the adapter's memory, when known).
 * @example
 * ```ts
 * console.log(formatPlan(plan, { maxBinding: gpu.maxBinding, memoryBytes: 80e9 }).join("\n"));
 * ```
 */
export function formatPlan(plan: MemoryPlan, limits: { maxBinding: number; memoryBytes?: number }): string[] {
  const width = Math.max(...plan.parts.map((p) => p.name.length));
  const lines = plan.parts.map((p) =>
    `  ${p.name.padEnd(width)}  ${formatBytes(p.bytes).padStart(10)}  ${p.detail}`
  );
  lines.push(`  ${"total".padEnd(width)}  ${formatBytes(plan.totalBytes).padStart(10)}`);
  const t = plan.largestTensor;
  lines.push(
    `  largest tensor: ${t.name}, ${formatBytes(t.bytes)}${
      t.blocks > 1 ? ` in ${t.blocks} row blocks` : ""
    }; ` +
      `largest binding ${formatBytes(plan.largestBinding)} of ${formatBytes(limits.maxBinding)} allowed`,
  );
  lines.push(
    `  activations in blocks of ${plan.layout.blockRows} rows, ${plan.layout.groups} group(s) per pass; ` +
      `logits ${plan.layout.logitsRows} rows at a time`,
  );
  lines.push(`  ${planVerdict(plan, limits.memoryBytes)}`);
  return lines;
}

/**
 * One sentence: fits, does not fit and why, or fits the binding limits with the memory unknown.
 * @example
 * ```ts
 * planVerdict(plan, 24 * 2 ** 30); // "fits: 9.85 GiB of 24.00 GiB"
 * ```
 */
export function planVerdict(plan: MemoryPlan, memoryBytes?: number): string {
  if (plan.problems.length) return `does not fit: ${plan.problems.join("; ")}`;
  if (memoryBytes === undefined) {
    return "fits the adapter's binding limits; its memory is unknown (give --gpu-memory to check the total)";
  }
  return plan.totalBytes <= memoryBytes
    ? `fits: ${formatBytes(plan.totalBytes)} of ${formatBytes(memoryBytes)}`
    : `does not fit: ${formatBytes(plan.totalBytes)} needed, ${formatBytes(memoryBytes)} available`;
}
