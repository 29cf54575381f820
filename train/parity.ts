/**
 * Parity against an oracle fixture made by Hugging Face transformers: recomputes every quantity the
 * fixture holds (SFT logits, token log-probs, loss and gradients; one AdamW step; DPO and ORPO losses,
 * per-pair values and gradients; greedy tokens) with the WGSL model and reports each one's max error
 * against its tolerance.
 *
 * Fixture layout (see `tests/fixtures/README.md`): `model/` (a Hugging Face folder), `expected.safetensors`
 * (tensors named `sft.*`, `adamw.*`, `pref.*`, `dpo.*`, `orpo.*`, `gen.*`) and `meta.json` (conventions).
 * Only the groups present in the fixture are checked, so smaller fixtures work too.
 *
 * @module
 */
import { type Gpu, prefix, type Tensor } from "../gpu/runtime.ts";
import { readRows, type RowBlocks, writeRows } from "../gpu/row_blocks.ts";
import { SafetensorsFile } from "../io/safetensors.ts";
import {
  OBJECTIVE_HYPER_LENGTH,
  OBJECTIVE_METRICS,
  objectiveDispatches,
  objectiveHyper,
} from "../kernels/objective.ts";
import { describeLayout, type LoadedLlama, loadLlama, readParams } from "../model/load.ts";
import { type TokenBatch, writeBatch } from "../model/inputs.ts";
import type { StepBuffers } from "../model/llama.ts";
import { lossAlignedMasks } from "./batching.ts";
import { AdamW } from "./optimizer.ts";

/** One checked quantity. */
export interface ParityLine {
  /** The quantity checked, e.g. a loss or one parameter's gradient. */
  name: string;
  /** Max absolute error, or for relative checks max error divided by the reference's scale. */
  error: number;
  /** Largest `error` accepted. */
  tolerance: number;
  /** `abs`: absolute; `rel`: relative to |expected| (scalars) or to max|expected| (tensors). */
  mode: "abs" | "rel";
  /** Whether `error` is within `tolerance`. */
  ok: boolean;
}

/** Tolerances from the fixture's README: what fp32 on a GPU can hold. */
export const PARITY_TOLERANCE = { logits: 1e-4, loss: 1e-4, grad: 1e-3 } as const;

interface Expected {
  has(name: string): boolean;
  f32(name: string): Promise<Float32Array>;
  i32(name: string): Promise<Int32Array>;
  shape(name: string): number[];
  names(): string[];
}

async function openExpected(path: string): Promise<Expected> {
  const file = await SafetensorsFile.open(path);
  return {
    has: (n) => file.has(n),
    f32: (n) => file.readF32(n),
    i32: (n) => file.readI32(n),
    shape: (n) => [...file.info(n).shape],
    names: () => [...file.names()],
  };
}

function absError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  return absError(a, b) / (scale || 1);
}

function line(name: string, error: number, tolerance: number, mode: "abs" | "rel"): ParityLine {
  return { name, error, tolerance, mode, ok: error <= tolerance };
}

/** AdamW settings stated in meta.json's `conventions.adamw` text (torch's defaults where absent). */
export function parseAdamwConvention(text: string | undefined): {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
} {
  const num = (re: RegExp, d: number) => {
    const m = text?.match(re);
    return m ? Number(m[1]) : d;
  };
  const betas = text?.match(/betas=\(\s*([\d.eE+-]+)\s*,\s*([\d.eE+-]+)\s*\)/);
  return {
    lr: num(/lr=([\d.eE+-]+)/, 1e-3),
    beta1: betas ? Number(betas[1]) : 0.9,
    beta2: betas ? Number(betas[2]) : 0.999,
    eps: num(/eps=([\d.eE+-]+)/, 1e-8),
    weightDecay: num(/weight_decay=([\d.eE+-]+)/, 0.01),
  };
}

/** Sum of `mask·logp` per sequence of length T. */
function sequenceSums(logp: Float32Array, mask: Float32Array, S: number, T: number): number[] {
  return Array.from({ length: S }, (_, s) => {
    let sum = 0;
    for (let t = 0; t < T; t++) sum += mask[s * T + t] * logp[s * T + t];
    return sum;
  });
}

/** Concatenates two [B, T] arrays into [2B, T] (chosen first, then rejected, as TRL lays pairs out). */
function concat(a: ArrayLike<number>, b: ArrayLike<number>): number[] {
  return [...Array.from(a), ...Array.from(b)];
}

/**
 * Runs every check the fixture supports and returns one line per quantity; `log` receives a line on how
 * the model was laid out against the device's binding limit.
 * @example
 * ```ts
 * const lines = await runParity(gpu, "tests/fixtures/llama-tiny-public", { log: console.log });
 * console.log(lines.filter((l) => l.ok).length, "/", lines.length);
 * ```
 */
export async function runParity(
  gpu: Gpu,
  fixtureDir: string,
  opts: { log?: (line: string) => void } = {},
): Promise<ParityLine[]> {
  const modelDir = `${fixtureDir}/model`;
  const exp = await openExpected(`${fixtureDir}/expected.safetensors`);
  const meta = JSON.parse(await Deno.readTextFile(`${fixtureDir}/meta.json`)) as {
    conventions?: Record<string, string>;
  };
  const rows = (prefix: string) => {
    const n = `${prefix}_ids`;
    return exp.has(n) ? exp.shape(n)[0] * exp.shape(n)[1] : 0;
  };
  const genLen = exp.has("gen.output_ids") ? exp.shape("gen.output_ids")[1] : 0;
  const maxTokens = Math.max(rows("sft.input"), 2 * rows("pref.chosen"), genLen, 1);
  const maxPositions = Math.max(
    exp.has("sft.input_ids") ? exp.shape("sft.input_ids")[1] : 0,
    exp.has("pref.chosen_ids") ? exp.shape("pref.chosen_ids")[1] : 0,
    genLen,
    1,
  );
  const loaded = await loadLlama(gpu, modelDir, { trainable: true, maxTokens, maxPositions });
  opts.log?.(`layout: ${describeLayout(loaded)}`);
  const original = await readParams(gpu, loaded.params);
  const io = loaded.model.allocStep({ greedy: true });
  const metrics = gpu.tensor(16, "f32", "metrics");
  const hyper = gpu.tensor(OBJECTIVE_HYPER_LENGTH, "f32", "objective.hyper");
  const optimizerSettings = parseAdamwConvention(meta.conventions?.adamw);
  const opt = new AdamW(gpu, [loaded.params], { ...optimizerSettings, decayAll: true });
  const tied = loaded.config.tieWordEmbeddings;
  const out: ParityLine[] = [];

  const restore = () => {
    for (const [name, w] of original) writeRows(gpu, loaded.params.blocks(name), w);
  };
  /** Compares every `<prefix>.grad.*` (or `adamw.param.*`) tensor with the model's. */
  const compareParams = async (prefix: string, which: "grad" | "value") => {
    const names = exp.names().filter((n) => n.startsWith(prefix)).sort();
    const ours = names.map((n) => {
      let p = n.slice(prefix.length);
      if (tied && p === "lm_head.weight") p = "model.embed_tokens.weight";
      return which === "grad" ? loaded.params.grads.get(p) : loaded.params.values.get(p);
    });
    const missing = names.filter((_, i) => !ours[i]);
    if (missing.length) throw new Error(`fixture tensors with no model parameter: ${missing.join(", ")}`);
    const got = await readRows(gpu, ours as RowBlocks[]);
    for (let i = 0; i < names.length; i++) {
      out.push(
        line(
          names[i],
          relError(got[i] as Float32Array, await exp.f32(names[i])),
          PARITY_TOLERANCE.grad,
          "rel",
        ),
      );
    }
  };

  // --- SFT: logits, token log-probs, loss, gradients; then one AdamW step from those gradients.
  if (exp.has("sft.input_ids")) {
    const [B, T] = exp.shape("sft.input_ids");
    const ids = await exp.i32("sft.input_ids");
    const attention = await exp.i32("sft.attention_mask");
    const labels = await exp.i32("sft.label_mask");
    const batch: TokenBatch = { B, T, ids, attentionMask: attention };
    if (exp.has("sft.logits")) {
      out.push(
        line(
          "sft.logits",
          absError(await fullLogits(gpu, loaded, io, batch), await exp.f32("sft.logits")),
          PARITY_TOLERANCE.logits,
          "abs",
        ),
      );
    }
    const mask = lossMaskOf(labels, attention, B, T);
    const normTokens = mask.reduce((a, b) => a + b, 0);
    const { logp, metrics: m } = await objectiveStep(gpu, loaded, io, opt, batch, {
      kind: "sft",
      mask,
      hyper: objectiveHyper("sft", { normTokens }),
      hyperTensor: hyper,
      metrics,
    });
    if (exp.has("sft.token_logps")) {
      const ours = new Float32Array(B * (T - 1));
      for (let b = 0; b < B; b++) ours.set(logp.subarray(b * T, b * T + T - 1), b * (T - 1));
      out.push(
        line(
          "sft.token_logps",
          absError(ours, await exp.f32("sft.token_logps")),
          PARITY_TOLERANCE.logits,
          "abs",
        ),
      );
    }
    if (exp.has("sft.loss")) out.push(scalarLine("sft.loss", m[0], (await exp.f32("sft.loss"))[0]));
    await compareParams("sft.grad.", "grad");
    if (exp.names().some((n) => n.startsWith("adamw.param."))) {
      // The step starts from the fixture's own gradients (our gradients were checked just above). Starting
      // from ours instead would test fp32 noise, not AdamW: an element whose gradient is near eps (1e-8)
      // moves by lr·g/(|g|+eps), so a 4e-9 difference in g (fp32 accuracy for a 7e-3 tensor) moves it by
      // up to lr/2.
      for (const n of exp.names().filter((n) => n.startsWith("sft.grad."))) {
        const p = n.slice("sft.grad.".length);
        if (tied && p === "lm_head.weight") continue; // tied: HF reports the shared grad under the embedding
        writeRows(gpu, loaded.params.blocks(p, "grad"), await exp.f32(n));
      }
      opt.setStep(1, optimizerSettings.lr);
      gpu.run(opt.step());
      await compareParams("adamw.param.", "value");
      restore();
    }
  }

  // --- DPO and ORPO on the same preference batch (chosen rows first, then rejected).
  if (exp.has("pref.chosen_ids")) {
    const [B, T] = exp.shape("pref.chosen_ids");
    const ids = concat(await exp.i32("pref.chosen_ids"), await exp.i32("pref.rejected_ids"));
    const attention = concat(
      await exp.i32("pref.chosen_attention_mask"),
      await exp.i32("pref.rejected_attention_mask"),
    );
    const labels = concat(await exp.i32("pref.chosen_label_mask"), await exp.i32("pref.rejected_label_mask"));
    const batch: TokenBatch = { B: 2 * B, T, ids, attentionMask: attention };
    const mask = lossMaskOf(labels, attention, 2 * B, T);

    if (exp.has("dpo.loss")) {
      const beta = (await exp.f32("dpo.beta"))[0];
      const ref = new Float32Array(
        concat(await exp.f32("pref.ref_chosen_logps"), await exp.f32("pref.ref_rejected_logps")),
      );
      const { logp, metrics: m } = await objectiveStep(gpu, loaded, io, opt, batch, {
        kind: "dpo",
        mask,
        refLogp: gpu.upload(ref, "ref.logp"),
        hyper: objectiveHyper("dpo", { normPairs: B, beta }),
        hyperTensor: hyper,
        metrics,
      });
      const sums = sequenceSums(logp, mask, 2 * B, T);
      out.push(
        scalarLine("dpo.loss", m[OBJECTIVE_METRICS.dpo.indexOf("loss")], (await exp.f32("dpo.loss"))[0]),
      );
      const vec = async (name: string, ours: number[]) => {
        if (exp.has(name)) {
          out.push(line(name, absError(ours, await exp.f32(name)), PARITY_TOLERANCE.logits * 10, "abs"));
        }
      };
      await vec("dpo.chosen_logps", sums.slice(0, B));
      await vec("dpo.rejected_logps", sums.slice(B));
      await vec("dpo.rewards_chosen", sums.slice(0, B).map((s, i) => beta * (s - ref[i])));
      await vec("dpo.rewards_rejected", sums.slice(B).map((s, i) => beta * (s - ref[B + i])));
      await compareParams("dpo.grad.", "grad");
    }

    if (exp.has("orpo.loss")) {
      const lambda = (await exp.f32("orpo.lambda"))[0];
      // The fixture says which NLL it used; TRL's default (whole chosen sequence) when it says "whole".
      const whole = /whole|prompt included/i.test(meta.conventions?.orpo ?? "");
      const nllMask = whole ? lossMaskOf(attention, attention, 2 * B, T) : mask;
      let normNllTokens = 0;
      for (let r = 0; r < B * T; r++) normNllTokens += nllMask[r];
      const { logp, metrics: m } = await objectiveStep(gpu, loaded, io, opt, batch, {
        kind: "orpo",
        mask,
        nllMask,
        hyper: objectiveHyper("orpo", { normPairs: B, normNllTokens, lambda }),
        hyperTensor: hyper,
        metrics,
      });
      const names = OBJECTIVE_METRICS.orpo;
      out.push(scalarLine("orpo.loss", m[names.indexOf("loss")], (await exp.f32("orpo.loss"))[0]));
      if (exp.has("orpo.nll")) {
        out.push(scalarLine("orpo.nll", m[names.indexOf("nll_loss")], (await exp.f32("orpo.nll"))[0]));
      }
      const sums = sequenceSums(logp, mask, 2 * B, T);
      const counts = sequenceSums(new Float32Array(mask.length).fill(1), mask, 2 * B, T);
      const avg = sums.map((s, i) => s / counts[i]);
      const logOdds = (a: number) =>
        a - (a < -Math.LN2 ? Math.log1p(-Math.exp(a)) : Math.log(-Math.expm1(a)));
      const vec = async (name: string, ours: number[]) => {
        if (exp.has(name)) {
          out.push(line(name, absError(ours, await exp.f32(name)), PARITY_TOLERANCE.logits * 10, "abs"));
        }
      };
      await vec("orpo.chosen_avg_logps", avg.slice(0, B));
      await vec("orpo.rejected_avg_logps", avg.slice(B));
      await vec("orpo.log_odds_ratio", avg.slice(0, B).map((a, i) => logOdds(a) - logOdds(avg[B + i])));
      await compareParams("orpo.grad.", "grad");
    }
  }

  // --- Greedy decoding and the logits of the generated sequence.
  if (exp.has("gen.prompt_ids") && exp.has("gen.output_ids")) {
    const prompt = Array.from(await exp.i32("gen.prompt_ids"));
    const expected = Array.from(await exp.i32("gen.output_ids"));
    const tokens = await greedyByRecompute(gpu, loaded, io, prompt, expected.length - prompt.length);
    const mismatches = tokens.reduce((n, t, i) => n + (t === expected[i] ? 0 : 1), 0) +
      Math.abs(tokens.length - expected.length);
    out.push(line("gen.output_ids (mismatched tokens)", mismatches, 0, "abs"));
    if (exp.has("gen.logits")) {
      const batch = { B: 1, T: expected.length, ids: expected, attentionMask: expected.map(() => 1) };
      out.push(
        line(
          "gen.logits",
          absError(await fullLogits(gpu, loaded, io, batch), await exp.f32("gen.logits")),
          PARITY_TOLERANCE.logits,
          "abs",
        ),
      );
    }
  }
  return out;
}

/** The loss mask aligned with log-prob rows (row t scores token t+1), as f32. */
function lossMaskOf(
  labels: ArrayLike<number>,
  attention: ArrayLike<number>,
  B: number,
  T: number,
): Float32Array {
  const { lossMask } = lossAlignedMasks(
    new Int32Array(B * T),
    Uint32Array.from(attention),
    Uint32Array.from(labels),
    B,
    T,
  );
  return Float32Array.from(lossMask);
}

function scalarLine(name: string, ours: number, expected: number): ParityLine {
  return line(
    name,
    Math.abs(ours - expected) / Math.max(Math.abs(expected), 1e-12),
    PARITY_TOLERANCE.loss,
    "rel",
  );
}

/** Forward pass returning logits for every row, chunk by chunk within each group of the pass. */
async function fullLogits(
  gpu: Gpu,
  loaded: LoadedLlama,
  io: StepBuffers,
  batch: TokenBatch,
): Promise<Float32Array> {
  const model = loaded.model;
  const V = loaded.config.vocabSize, N = batch.B * batch.T;
  writeBatch(gpu, io, batch);
  gpu.run(model.forwardHidden(batch.B, batch.T, io));
  const out = new Float32Array(N * V);
  for (const group of model.passGroups) {
    for (let r0 = group.r0; r0 < group.r0 + group.N; r0 += model.fullLogitsRows) {
      const R = Math.min(model.fullLogitsRows, group.r0 + group.N - r0);
      gpu.run(model.forwardLogits(r0, R));
      const chunk = await gpu.read(model.logitsBuffer);
      out.set(chunk.subarray(0, R * V), r0 * V);
    }
  }
  return out;
}

/** Greedy decoding by re-running the whole sequence each step (the oracle check, not the fast path). */
async function greedyByRecompute(
  gpu: Gpu,
  loaded: LoadedLlama,
  io: StepBuffers,
  prompt: number[],
  newTokens: number,
): Promise<number[]> {
  const V = loaded.config.vocabSize;
  const seq = [...prompt];
  for (let i = 0; i < newTokens; i++) {
    const logits = await fullLogits(gpu, loaded, io, {
      B: 1,
      T: seq.length,
      ids: seq,
      attentionMask: seq.map(() => 1),
    });
    const last = logits.subarray((seq.length - 1) * V, seq.length * V);
    let best = 0;
    for (let v = 1; v < V; v++) if (last[v] > last[best]) best = v;
    seq.push(best);
  }
  return seq;
}

/** Zeroes gradients and metrics, then forward → objective → backward for one batch; returns logp and metrics. */
async function objectiveStep(
  gpu: Gpu,
  loaded: LoadedLlama,
  io: StepBuffers,
  opt: AdamW,
  batch: TokenBatch,
  o: {
    kind: "sft" | "dpo" | "orpo";
    mask: Float32Array;
    nllMask?: Float32Array;
    refLogp?: Tensor;
    hyper: Float32Array;
    hyperTensor: Tensor;
    metrics: Tensor;
  },
): Promise<{ logp: Float32Array; metrics: Float32Array }> {
  const { B, T } = batch;
  writeBatch(gpu, io, batch);
  gpu.write(o.hyperTensor, o.hyper);
  gpu.write(o.metrics, new Float32Array(o.metrics.length));
  const mask = gpu.upload(o.mask, "loss.mask");
  const nllMask = o.nllMask ? gpu.upload(o.nllMask, "nll.mask") : undefined;
  const model = loaded.model;
  gpu.run([
    ...opt.zeroGrads(),
    ...model.forward(B, T, io),
    ...objectiveDispatches(gpu, {
      kind: o.kind,
      logp: prefix(io.logp, B * T),
      mask,
      nllMask,
      refLogp: o.refLogp,
      greedy: o.kind === "sft" ? prefix(io.greedy!, B * T) : undefined,
      hyper: o.hyperTensor,
      metrics: o.metrics,
      dlogp: prefix(io.dlogp, B * T),
      sequences: B,
      T,
    }),
    ...model.backward(B, T, io),
  ]);
  const [logp, metrics] = await gpu.readMany([io.logp, o.metrics]);
  return { logp: logp as Float32Array, metrics: metrics as Float32Array };
}
