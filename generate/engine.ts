/**
 * The text side of generation: a model folder's tokenizer and chat template around a {@link Generator},
 * with streamed UTF-8-safe text, stop strings and usage counts, and a {@link TokenScorer} for the
 * log-probabilities OpenAI's `logprobs` and `echo` ask for. It is what the OpenAI-compatible server (serve/)
 * and the win-rate tool run. A model is a folder, a Hub id or a PEFT adapter folder over its base; more
 * adapters may be served over the base, each selected by name (`serve --lora NAME=DIR`).
 *
 * @module
 */
import { Gpu } from "../gpu/runtime.ts";
import { resolveModelSource } from "../io/model_source.ts";
import { checkAdapterFits, readPeftAdapter } from "../io/peft_adapter.ts";
import { type AdapterWeights, loadLlamaWithAdapters } from "../model/adapters.ts";
import { TokenScorer } from "../model/scorer.ts";
import type {
  ChatMessage,
  GenerateRequest,
  GenerateResult,
  GenerationEngine,
  LoadEngineOptions,
  ScoredTokens,
  ScoreRequest,
  TokenChoice,
  TokenScoring,
} from "./engine_contract.ts";
import { loadTokenizer, type TextTokenizer } from "../text/tokenizer.ts";
import { Generator } from "./generator.ts";

/** Where the text of a generated sequence stops at the first of `stops`, if any. */
export function firstStop(text: string, stops: readonly string[]): number {
  let cut = -1;
  for (const s of stops) {
    if (!s) continue;
    const i = text.indexOf(s);
    if (i >= 0 && (cut < 0 || i < cut)) cut = i;
  }
  return cut;
}

/** What a {@link TextEngine} is built on besides its tokenizer and generator. */
export interface TextEngineParts {
  /** Frees what the engine was built on (the loaded weights); {@link TextEngine.close} calls it once. */
  release?: () => void;
  /** Scores token sequences for `logprobs` and `echo`; without it the engine offers no scoring. */
  scorer?: TokenScorer;
  /** Names of the stacked adapters, in their order (adapter i + 1 in the model's row choice). */
  adapters?: readonly string[];
}

/**
 * A model ready to answer prompts: tokenizer + GPU generator (+ scorer).
 * @example
 * ```ts
 * const engine = await loadEngine("runs/orpo-tiny", { maxConcurrent: 4 });
 * const r = await engine.generate({ prompt: engine.renderChat([{ role: "user", content: "안녕하세요" }]), maxTokens: 32,
 *   temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1, stop: [] }, (t) => console.log(t), new AbortController().signal);
 * ```
 */
export class TextEngine implements GenerationEngine {
  readonly modelId: string;
  readonly maxContextTokens: number;
  readonly adapters: readonly string[];
  readonly scoring?: TokenScoring;
  /** The model folder's tokenizer and chat template. */
  readonly tokenizer: TextTokenizer;
  /** The GPU generator the engine's requests share. */
  readonly generator: Generator;
  readonly #release: (() => void) | undefined;
  readonly #scorer?: TokenScorer;

  /** `parts.release` frees what the engine was built on (the loaded weights); {@link close} calls it once. */
  constructor(modelId: string, tokenizer: TextTokenizer, generator: Generator, parts: TextEngineParts = {}) {
    this.modelId = modelId;
    this.tokenizer = tokenizer;
    this.generator = generator;
    this.maxContextTokens = generator.kvRows;
    this.adapters = parts.adapters ?? [];
    this.#release = parts.release;
    this.#scorer = parts.scorer;
    if (parts.scorer) this.scoring = this.#scoring(parts.scorer);
  }

  /**
   * Frees the engine's GPU memory (KV cache, workspace, weights) so another model can be loaded; the engine
   * is unusable afterwards. Call it when no generation is running.
   * @example
   * ```ts
   * const engine = await loadEngine("runs/sft", { maxConcurrent: 4 });
   * // … generate …
   * engine.close();
   * ```
   */
  close(): void {
    this.generator.close();
    this.#scorer?.close();
    this.#release?.();
  }

  countTokens(text: string): number {
    return this.#encode(text).length;
  }

  /** Renders a chat with the model's template (a chat-template prompt already starts with BOS when needed). */
  renderChat(messages: ChatMessage[]): string {
    return this.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
  }

  /** Prompt ids: the text as the tokenizer encodes it, without a second BOS when the text already has one. */
  #encode(text: string): number[] {
    return this.tokenizer.encodeTemplated(text);
  }

  /** The stacked adapter index of a served adapter name (0: the base model). */
  #adapterIndex(name: string | undefined): number {
    if (name === undefined) return 0;
    const i = this.adapters.indexOf(name);
    if (i < 0) {
      throw new RangeError(`no adapter named "${name}" (served: ${this.adapters.join(", ") || "none"})`);
    }
    return i + 1;
  }

  async generate(
    req: GenerateRequest,
    onText: (delta: string) => void,
    signal: AbortSignal,
  ): Promise<GenerateResult> {
    const promptIds = req.promptIds ? [...req.promptIds] : this.#encode(req.prompt);
    const stream = this.tokenizer.decodeStream({ skipSpecialTokens: true });
    let text = "";
    let stoppedByString = false;
    const kept: number[] = [];
    const emit = (delta: string) => {
      if (!delta || stoppedByString) return;
      const before = text.length;
      text += delta;
      const cut = firstStop(text, req.stop);
      if (cut >= 0) {
        stoppedByString = true;
        text = text.slice(0, cut);
        if (cut > before) onText(text.slice(before));
        return;
      }
      onText(delta);
    };
    const out = await this.generator.generate({
      promptIds,
      maxNewTokens: req.maxTokens,
      stopIds: this.tokenizer.eosIds,
      temperature: req.temperature,
      topK: req.topK,
      topP: req.topP,
      repetitionPenalty: req.repetitionPenalty,
      frequencyPenalty: req.frequencyPenalty,
      presencePenalty: req.presencePenalty,
      seed: req.seed,
      stream: req.choice,
      adapter: this.#adapterIndex(req.adapter),
      signal,
      onTokens: (ids) => {
        for (const id of ids) {
          if (stoppedByString) break;
          kept.push(id);
          emit(stream.push(id));
        }
        return !stoppedByString;
      },
    });
    if (!stoppedByString) emit(stream.flush());
    return {
      text,
      finishReason: stoppedByString ? "stop" : out.finishReason,
      promptTokens: out.promptTokens,
      completionTokens: out.ids.length,
      promptIds,
      ids: kept,
      ...(out.stopId !== undefined && !stoppedByString ? { stopId: out.stopId } : {}),
    };
  }

  #scoring(scorer: TokenScorer): TokenScoring {
    const tok = this.tokenizer;
    return {
      vocabSize: scorer.loaded.config.vocabSize,
      stopIds: tok.eosIds,
      encode: (text) => this.#encode(text),
      tokenPieces: (ids) => {
        const stream = tok.decodeStream({ skipSpecialTokens: false });
        const pieces = ids.map((id) => stream.push(id));
        if (pieces.length > 0) pieces[pieces.length - 1] += stream.flush();
        return pieces;
      },
      tokenString: (id) => tok.decode([id]),
      score: (requests, options) => this.#score(scorer, requests, options),
    };
  }

  /** Scores requests in batches that fit the model's workspace. */
  async #score(
    scorer: TokenScorer,
    requests: readonly ScoreRequest[],
    options: { topN: number; adapter?: string },
  ): Promise<ScoredTokens[]> {
    const adapter = this.#adapterIndex(options.adapter);
    const topK = Math.max(options.topN, requests.some((r) => r.next) ? 1 : 0);
    const capacity = scorer.loaded.model.opts.maxTokens;
    const bucket = (r: ScoreRequest) => Math.ceil((r.ids.length - (r.next ? 0 : 1)) / 64) * 64;
    const out: ScoredTokens[] = [];
    for (let i = 0; i < requests.length;) {
      let j = i + 1, longest = bucket(requests[i]);
      while (j < requests.length && (j - i + 1) * Math.max(longest, bucket(requests[j])) <= capacity) {
        longest = Math.max(longest, bucket(requests[j]));
        j++;
      }
      const batch = requests.slice(i, j);
      const scored = await scorer.score(
        batch.map((r) => ({ ids: r.ids, scoreFrom: r.from - 1, next: r.next })),
        { topK, adapter },
      );
      scored.forEach((s, b) => {
        const choices = (at: number): TokenChoice[] =>
          Array.from({ length: options.topN }, (_, k) => ({
            id: s.topIds![at * topK + k],
            logprob: s.topLogprobs![at * topK + k],
          }));
        const count = s.logprobs.length - (batch[b].next ? 1 : 0);
        out.push({
          logprobs: Array.from(s.logprobs.subarray(0, count)),
          top: Array.from({ length: count }, (_, at) => (options.topN > 0 ? choices(at) : [])),
          ...(batch[b].next
            ? {
              next: {
                token: { id: s.topIds![count * topK], logprob: s.topLogprobs![count * topK] },
                top: options.topN > 0 ? choices(count) : [],
              },
            }
            : {}),
        });
      });
      i = j;
    }
    return out;
  }
}

/**
 * Loads a model for generation: a folder, a Hub id or a PEFT adapter folder (over its base model), with the
 * tokenizer, the weights on the GPU, a generator with one slot per concurrent request and a scorer; `loras`
 * are served over the model, each row of a batch choosing its own.
 * @example
 * ```ts
 * const engine = await loadEngine("runs/orpo-tiny", { maxConcurrent: 4 });
 * const multi = await loadEngine("runs/tiny-base", { maxConcurrent: 4, loras: [{ name: "sft", dir: "runs/sft-lora" }] });
 * ```
 */
export async function loadEngine(
  model: string,
  opts: LoadEngineOptions & { gpu?: Gpu; modelId?: string },
): Promise<TextEngine> {
  const source = await resolveModelSource(model);
  const loras = opts.loras ?? [];
  if (source.adapter && loras.length > 0) {
    throw new Error(
      `${model} is a PEFT adapter; with --lora, --model must be the base model (${source.adapter.baseModel})`,
    );
  }
  const names = new Set<string>();
  const stacked: AdapterWeights[] = [];
  for (const { name, dir } of loras) {
    if (names.has(name)) throw new Error(`--lora ${name}=${dir}: the name ${name} is given twice`);
    names.add(name);
    try {
      const adapter = await readPeftAdapter(dir);
      stacked.push({ layout: checkAdapterFits(adapter, source.config), weights: adapter.weights });
    } catch (e) {
      throw new Error(`--lora ${name}=${dir}: ${(e as Error).message}`, { cause: e });
    }
  }
  const gpu = opts.gpu ?? await Gpu.create();
  const tokenizer = await loadTokenizer(source.tokenizerDir);
  const maxPositions = source.config.maxPositionEmbeddings;
  const context = Math.floor(Math.min(opts.maxContextTokens ?? maxPositions, maxPositions, 8192) / 64) * 64;
  const adapted = await loadLlamaWithAdapters(
    gpu,
    source.modelDir,
    source.adapter ? [source.adapter] : stacked,
    {
      maxTokens: Math.max(context, opts.maxConcurrent),
      maxPositions: context,
      ignoreUnusedWeights: opts.ignoreUnusedWeights,
      stacked: loras.length > 0,
    },
  );
  const rowAdapter = adapted.adapters?.rowAdapter;
  const generator = new Generator(gpu, adapted.loaded, {
    slots: opts.maxConcurrent,
    contextTokens: context,
    rowAdapter,
  });
  const scorer = new TokenScorer(gpu, adapted.loaded, { maxLength: context, rowAdapter });
  const name = opts.modelId ?? model.replace(/\/+$/, "").split("/").slice(-2).join("/");
  return new TextEngine(name, tokenizer, generator, {
    release: adapted.release,
    scorer,
    adapters: loras.map((l) => l.name),
  });
}
