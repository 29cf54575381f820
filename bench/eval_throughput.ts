/**
 * Scoring throughput, KoBEST-like: documents of a long context and 2–4 short choices, scored as
 * lm-evaluation-harness loglikelihood requests by `scoreRequests` on the GPU model, batched and, as the
 * baseline in the same run, one request at a time. Prints requests/s, documents/s and tokens/s of both and
 * the batching gain.
 *
 * The texts are numbers and the tokenizer reads each number as its token id, so any vocabulary works and
 * no tokenizer file is needed; everything after tokenization is what `deno task kobest` runs.
 *
 * ```sh
 * deno task bench:eval                                  # tiny shape, CPU-sized
 * deno task bench:eval --preset tinyllama --docs 128 --batch 16 --json eval.json
 * ```
 *
 * @module
 */
import { Gpu } from "../gpu/runtime.ts";
import { GpuLogprobModel } from "../eval/gpu_model.ts";
import {
  type LoglikelihoodRequest,
  type LoglikelihoodResult,
  scoreRequests,
  type TokenEncoder,
} from "../eval/loglikelihood.ts";
import { uniformGenerator } from "../model/init.ts";
import { formatBytes, formatCount, loadTuningIfPresent } from "./measure.ts";
import { createRandomLlama } from "./random_model.ts";
import { adapterSummary, type BenchReport, writeReport } from "./report.ts";
import {
  BENCH_OUTPUT_SETTINGS,
  type BenchShape,
  SHAPE_SETTINGS,
  shapeFromFlags,
  shapeSummary,
} from "./shapes.ts";
import { parseSettings, settingsHelp, type SettingsTable } from "../io/settings.ts";

/** The flags of bench:eval: the shared shape and output flags, then its own. */
const SETTINGS = {
  ...SHAPE_SETTINGS,
  docs: {
    name: "docs",
    kind: "int",
    range: { min: 1 },
    defaultHelp: "16 on the tiny shape, 64 otherwise",
    help: "documents; each has 2, 3 or 4 choices",
  },
  context: {
    name: "context",
    kind: "string",
    metavar: "A-B",
    parse: parseRange,
    defaultHelp: "200-600",
    help: "context length in tokens, uniform in [A, B]",
  },
  batch: {
    name: "batch",
    kind: "int",
    range: { min: 1 },
    default: 16,
    help: "sequences per model call of the batched run",
  },
  reps: {
    name: "reps",
    kind: "int",
    range: { min: 1 },
    default: 1,
    help: "timed passes of each run after one warm-up pass",
  },
  ...BENCH_OUTPUT_SETTINGS,
  quick: {
    ...BENCH_OUTPUT_SETTINGS.quick,
    help: "the smallest meaningful run (4 documents of 40-120 tokens unless given)",
  },
} satisfies SettingsTable;

const USAGE = settingsHelp(SETTINGS, { usage: "usage: deno task bench:eval [options]" });

interface Options {
  shape: BenchShape;
  docs: number;
  contextMin: number;
  contextMax: number;
  batch: number;
  reps: number;
  tuning?: string;
  quick: boolean;
  json?: string;
}

/** Choices per document, cycled: KoBEST has two-choice tasks (BoolQ, COPA, SentiNeg, WiC) and HellaSwag's four. */
const CHOICES = [2, 4, 2, 3];
/** Continuation lengths in tokens, cycled (answers such as 예 / 아니오 are one to three tokens). */
const CONTINUATION_TOKENS = [1, 2, 3];
const BOS = 1;
/** Ids below this are special tokens and never appear in the texts. */
const FIRST_WORD_ID = 3;

function parseRange(text: string, where = "--context"): [number, number] {
  const m = text.match(/^(\d+)-(\d+)$/);
  const [a, b] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
  if (!(a >= 1 && b >= a)) throw new Error(`${where}: "${text}" is not a range A-B with 1 ≤ A ≤ B`);
  return [a, b];
}

function parseOptions(args: string[]): Options | undefined {
  const { values, help } = parseSettings(SETTINGS, args);
  if (help) return undefined;
  const shape = shapeFromFlags(values);
  const tiny = shape.preset === "tiny";
  const quick = values.quick ?? false;
  const [contextMin, contextMax] = values.context ?? parseRange(quick ? "40-120" : "200-600");
  return {
    shape,
    docs: values.docs ?? (quick ? 4 : tiny ? 16 : 64),
    contextMin,
    contextMax,
    batch: values.batch ?? 16,
    reps: values.reps ?? 1,
    tuning: values.tuning,
    quick,
    json: values.json,
  };
}

/**
 * Reads a text of space-separated numbers as those token ids, after BOS, as a Llama tokenizer prepends
 * it. A context never ends in a space here, so `encode(context + continuation)` starts with
 * `encode(context)`, as lm-eval's continuation split needs.
 */
class NumberTokenizer implements TokenEncoder {
  readonly vocab: number;
  constructor(vocab: number) {
    this.vocab = vocab;
  }
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[] {
    const ids = text.trim().split(/\s+/).filter(Boolean).map((w, i) => {
      const id = Number(w);
      if (!(Number.isInteger(id) && id >= FIRST_WORD_ID && id < this.vocab)) {
        throw new Error(`word ${i} ("${w}") is not a token id in [${FIRST_WORD_ID}, ${this.vocab})`);
      }
      return id;
    });
    return options?.addSpecialTokens === false ? ids : [BOS, ...ids];
  }
}

/** KoBEST-shaped requests: per document one context and its choices, grouped by document. */
function makeRequests(o: Options, vocab: number): LoglikelihoodRequest[] {
  const uniform = uniformGenerator(7);
  const word = () => FIRST_WORD_ID + Math.floor(uniform() * (vocab - FIRST_WORD_ID));
  const words = (n: number) => Array.from({ length: n }, word).join(" ");
  const requests: LoglikelihoodRequest[] = [];
  for (let d = 0; d < o.docs; d++) {
    const length = o.contextMin + Math.floor(uniform() * (o.contextMax - o.contextMin + 1));
    const context = words(length);
    for (let c = 0; c < CHOICES[d % CHOICES.length]; c++) {
      const n = CONTINUATION_TOKENS[(d + c) % CONTINUATION_TOKENS.length];
      requests.push({ context, continuation: " " + words(n), group: d });
    }
  }
  return requests;
}

/** Input tokens the model reads for `requests` (context + continuation, BOS included, last token not an input). */
function inputTokens(tok: TokenEncoder, requests: readonly LoglikelihoodRequest[]): number {
  return requests.reduce((s, r) => s + tok.encode(r.context + r.continuation).length - 1, 0);
}

/** Figures of one way of scoring. */
interface Pass {
  seconds: number;
  requestsPerSec: number;
  documentsPerSec: number;
  tokensPerSec: number;
  results: LoglikelihoodResult[];
}

async function timePasses(
  run: () => Promise<LoglikelihoodResult[]>,
  reps: number,
  counts: { requests: number; docs: number; tokens: number },
): Promise<Pass> {
  let results = await run(); // warm-up: compiles every batch shape's program
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) results = await run();
  const seconds = (performance.now() - t0) / 1000 / reps;
  return {
    seconds,
    requestsPerSec: counts.requests / seconds,
    documentsPerSec: counts.docs / seconds,
    tokensPerSec: counts.tokens / seconds,
    results,
  };
}

function printPass(label: string, p: Pass): void {
  console.log(
    `${label.padEnd(22)} ${p.seconds.toFixed(2).padStart(8)} s ${
      p.requestsPerSec.toFixed(2).padStart(10)
    } req/s ` +
      `${p.documentsPerSec.toFixed(2).padStart(9)} docs/s ${p.tokensPerSec.toFixed(0).padStart(9)} tokens/s`,
  );
}

/**
 * Mean log-prob per continuation token: near −ln(vocab) for random weights, so a scorer that returned
 * zeros or garbage shows here.
 */
function meanTokenLogprob(
  tok: TokenEncoder,
  requests: readonly LoglikelihoodRequest[],
  r: LoglikelihoodResult[],
) {
  const tokens = requests.reduce(
    (s, q) => s + tok.encode(q.continuation, { addSpecialTokens: false }).length,
    0,
  );
  return r.reduce((s, x) => s + x.loglikelihood, 0) / tokens;
}

/** Largest difference between the two runs' log-likelihoods: padding must not change a score. */
function maxDifference(a: LoglikelihoodResult[], b: LoglikelihoodResult[]): number {
  return a.reduce((m, r, i) => Math.max(m, Math.abs(r.loglikelihood - b[i].loglikelihood)), 0);
}

async function main(): Promise<void> {
  const opts = parseOptions(Deno.args);
  if (!opts) {
    console.log(USAGE);
    return;
  }
  const gpu = await Gpu.create();
  console.log(`adapter: ${gpu.describe()}`);
  if (opts.tuning) console.log(await loadTuningIfPresent(opts.tuning));
  const config = opts.shape.config;
  const tok = new NumberTokenizer(config.vocabSize);
  const requests = makeRequests(opts, config.vocabSize);
  const longest = Math.max(...requests.map((r) => tok.encode(r.context + r.continuation).length));
  const maxLength = Math.ceil(longest / 64) * 64;
  const m = await createRandomLlama(gpu, config, {
    trainable: false,
    maxTokens: opts.batch * maxLength,
    maxPositions: maxLength,
  });
  const scorer = new GpuLogprobModel(gpu, m.loaded, { maxLength });
  const counts = { requests: requests.length, docs: opts.docs, tokens: inputTokens(tok, requests) };
  console.log(
    `model: ${opts.shape.name}, ${formatCount(m.parameters)} parameters; GPU memory ${
      formatBytes(gpu.liveBytes)
    }`,
  );
  console.log(
    `${counts.docs} documents, ${counts.requests} requests, ${counts.tokens} input tokens ` +
      `(contexts of ${opts.contextMin}-${opts.contextMax} tokens); one warm-up pass, then ${opts.reps} timed`,
  );
  const batched = await timePasses(
    () => scoreRequests(scorer, tok, requests, { batchSize: opts.batch }),
    opts.reps,
    counts,
  );
  printPass(`batched (${opts.batch} per call)`, batched);
  const single = await timePasses(
    () => scoreRequests(scorer, tok, requests, { batchSize: 1 }),
    opts.reps,
    counts,
  );
  printPass("one by one (baseline)", single);
  const gain = batched.requestsPerSec / single.requestsPerSec;
  const difference = maxDifference(batched.results, single.results);
  const perToken = meanTokenLogprob(tok, requests, batched.results);
  console.log(
    `batching gain: ${gain.toFixed(2)}x; largest log-likelihood difference ${difference.toExponential(2)}; ` +
      `mean log-prob per continuation token ${perToken.toFixed(3)} (random weights: about ` +
      `${(-Math.log(config.vocabSize)).toFixed(3)})`,
  );
  if (!(difference < 1e-2)) {
    throw new Error(`batched and single scores differ by ${difference}: batching is broken`);
  }
  if (opts.json) {
    const report: BenchReport = {
      script: "eval_throughput",
      preset: opts.shape.name,
      shape: shapeSummary(config),
      adapter: adapterSummary(gpu),
      settings: {
        docs: opts.docs,
        requests: counts.requests,
        inputTokens: counts.tokens,
        contextTokens: [opts.contextMin, opts.contextMax],
        batch: opts.batch,
        reps: opts.reps,
        quick: opts.quick,
      },
      figures: {
        requestsPerSec: batched.requestsPerSec,
        documentsPerSec: batched.documentsPerSec,
        tokensPerSec: batched.tokensPerSec,
        baselineRequestsPerSec: single.requestsPerSec,
        baselineDocumentsPerSec: single.documentsPerSec,
        baselineTokensPerSec: single.tokensPerSec,
        peakBytes: gpu.peakBytes,
      },
      ratios: { batchingGain: gain },
      extra: { maxLoglikelihoodDifference: difference, meanTokenLogprob: perToken, parameters: m.parameters },
      date: new Date().toISOString(),
    };
    await writeReport(opts.json, report);
  }
  m.destroy();
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`bench:eval: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
