/**
 * The text side of generation: a model folder's tokenizer and chat template around a {@link Generator},
 * with streamed UTF-8-safe text, stop strings and usage counts. It is what the OpenAI-compatible server
 * (serve/) and the win-rate tool run.
 *
 * @module
 */
import { Gpu } from "../gpu/runtime.ts";
import { openModelFolder } from "../io/hf_model.ts";
import { loadLlama, unloadLlama } from "../model/load.ts";
import type {
  ChatMessage,
  GenerateRequest,
  GenerateResult,
  GenerationEngine,
  LoadEngineOptions,
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

/**
 * A model ready to answer prompts: tokenizer + GPU generator.
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
  /** The model folder's tokenizer and chat template. */
  readonly tokenizer: TextTokenizer;
  /** The GPU generator the engine's requests share. */
  readonly generator: Generator;
  readonly #release: (() => void) | undefined;

  /** `release` frees what the engine was built on (the loaded weights); {@link close} calls it once. */
  constructor(modelId: string, tokenizer: TextTokenizer, generator: Generator, release?: () => void) {
    this.modelId = modelId;
    this.tokenizer = tokenizer;
    this.generator = generator;
    this.maxContextTokens = generator.kvRows;
    this.#release = release;
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

  async generate(
    req: GenerateRequest,
    onText: (delta: string) => void,
    signal: AbortSignal,
  ): Promise<GenerateResult> {
    const promptIds = this.#encode(req.prompt);
    const stream = this.tokenizer.decodeStream({ skipSpecialTokens: true });
    let text = "";
    let stoppedByString = false;
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
      seed: req.seed,
      signal,
      onTokens: (ids) => {
        for (const id of ids) emit(stream.push(id));
        return !stoppedByString;
      },
    });
    if (!stoppedByString) emit(stream.flush());
    return {
      text,
      finishReason: stoppedByString ? "stop" : out.finishReason,
      promptTokens: out.promptTokens,
      completionTokens: out.ids.length,
    };
  }
}

/**
 * Loads a model folder for generation: the tokenizer, the weights on the GPU, and a generator with one slot
 * per concurrent request.
 * @example
 * ```ts
 * const engine = await loadEngine("runs/orpo-tiny", { maxConcurrent: 4 });
 * ```
 */
export async function loadEngine(
  modelDir: string,
  opts: LoadEngineOptions & { gpu?: Gpu; modelId?: string },
): Promise<TextEngine> {
  const gpu = opts.gpu ?? await Gpu.create();
  const tokenizer = await loadTokenizer(modelDir);
  const probe = (await openModelFolder(modelDir)).config;
  const context = Math.floor(
    Math.min(opts.maxContextTokens ?? probe.maxPositionEmbeddings, probe.maxPositionEmbeddings, 8192) / 64,
  ) * 64;
  const loaded = await loadLlama(gpu, modelDir, {
    trainable: false,
    maxTokens: Math.max(context, opts.maxConcurrent),
    maxPositions: context,
    ignoreUnusedWeights: opts.ignoreUnusedWeights,
  });
  const generator = new Generator(gpu, loaded, { slots: opts.maxConcurrent, contextTokens: context });
  const name = opts.modelId ?? modelDir.replace(/\/+$/, "").split("/").slice(-2).join("/");
  return new TextEngine(name, tokenizer, generator, () => unloadLlama(loaded));
}
