/**
 * Answers for the win rates from a local model: one model loaded at a time, the first N Korean prompts in
 * the model's chat template, sampled as FastChat samples MT-Bench answers (the question category's
 * temperature, 0.7 for any other; seed 0, so a rerun gives the same answers). The answers file, its resume after a kill and the generation
 * loop are eval/winrate/answers.ts's `generateAnswers`; this file loads the model and renders the prompts.
 *
 * @module
 */
import { generateAnswers } from "../eval/winrate/answers.ts";
import { readQuestions } from "../eval/winrate/inputs.ts";
import { answerTemperature } from "../eval/winrate/run.ts";
import { loadEngine, type TextEngine } from "../generate/engine.ts";
import type { Gpu } from "../gpu/runtime.ts";

/**
 * The prompt format for models with no chat template and no --chat-template file (base models such as
 * TinyLlama): a plain question/answer layout in Korean.
 * @example
 * ```ts
 * tokenizer.applyChatTemplate([{ role: "user", content: "안녕?" }], { addGenerationPrompt: true, template: PLAIN_CHAT_TEMPLATE });
 * // "<s>### 질문:\n안녕?\n\n### 답변:\n"
 * ```
 */
export const PLAIN_CHAT_TEMPLATE = "{{ bos_token }}{% for message in messages %}" +
  "{% if message['role'] == 'user' %}{{ '### 질문:\\n' + message['content'] + '\\n\\n' }}" +
  "{% elif message['role'] == 'assistant' %}{{ '### 답변:\\n' + message['content'] + eos_token + '\\n\\n' }}" +
  "{% else %}{{ message['content'] + '\\n\\n' }}{% endif %}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '### 답변:\\n' }}{% endif %}";

/** Options of {@link answerWithModel}. */
export interface AnswerOptions {
  /** A model folder (full weights), or a PEFT adapter folder over its base model. */
  modelDir: string;
  /** The model's name in the answers file and the tables (PT, SFT, …). */
  label: string;
  promptsPath: string;
  /** First N prompts. */
  limit: number;
  /** The answers JSONL to write (appended to; kept answers are not regenerated). */
  outPath: string;
  maxNewTokens: number;
  /** Prompt + answer tokens the generator allocates (a multiple of 64). */
  contextTokens: number;
  /** A chat template to use instead of the model's (or of the plain fallback). */
  chatTemplate?: string;
  /** Sequences decoded together (default 4). */
  slots?: number;
  gpu?: Gpu;
  log?: (line: string) => void;
}

/** What {@link answerWithModel} did. */
export interface AnswerReport {
  generated: number;
  kept: number;
  /** Prompts shortened to fit the context. */
  truncated: number;
  /** Which template rendered the prompts. */
  template: "model" | "given" | "plain";
}

/** Which template renders the prompts, and its source. */
function promptTemplate(engine: TextEngine, given: string | undefined) {
  if (given !== undefined) return { kind: "given" as const, source: given };
  if (engine.tokenizer.chatTemplate !== null) return { kind: "model" as const, source: undefined };
  return { kind: "plain" as const, source: PLAIN_CHAT_TEMPLATE };
}

/**
 * The rendered prompt of a question, its text shortened (with "…") until prompt plus answer fit the context.
 *
 * @example
 * ```ts
 * fitPrompt(engine, "긴 질문 …", undefined, 64); // { prompt: "<s><|user|>\n긴 질문 …", truncated: false }
 * ```
 */
export function fitPrompt(
  engine: TextEngine,
  question: string,
  template: string | undefined,
  maxNewTokens: number,
): { prompt: string; truncated: boolean } {
  const budget = engine.maxContextTokens - maxNewTokens - 1;
  const render = (q: string) =>
    engine.tokenizer.applyChatTemplate([{ role: "user", content: q }], {
      addGenerationPrompt: true,
      template,
    });
  let text = question;
  let prompt = render(text);
  let tokens = engine.countTokens(prompt);
  while (tokens > budget) {
    const keep = Math.floor((text.length * budget) / tokens) - 2;
    if (keep <= 0) {
      throw new Error(
        `the chat template alone takes ${engine.countTokens(render(""))} tokens; raise --answer-context ` +
          `(${engine.maxContextTokens}) or lower --answer-max-tokens (${maxNewTokens})`,
      );
    }
    text = `${question.slice(0, keep)}…`;
    prompt = render(text);
    tokens = engine.countTokens(prompt);
  }
  return { prompt, truncated: text !== question };
}

/**
 * Generates the answers `outPath` lacks for the first `limit` prompts, loading the model only when some are
 * missing and freeing it after.
 *
 * @example
 * ```ts
 * await answerWithModel({ modelDir: "runs/repro-tiny/sft", label: "SFT", promptsPath: "data/ko_user_oriented_instructions.jsonl",
 *   limit: 20, outPath: "runs/repro-tiny/winrate/answers/sft.jsonl", maxNewTokens: 48, contextTokens: 512 });
 * ```
 */
export async function answerWithModel(o: AnswerOptions): Promise<AnswerReport> {
  const report: AnswerReport = { generated: 0, kept: 0, truncated: 0, template: "model" };
  await Deno.mkdir(o.outPath.slice(0, Math.max(0, o.outPath.lastIndexOf("/"))) || ".", { recursive: true });
  const { generated, kept } = await generateAnswers({
    questions: await readQuestions(o.promptsPath, o.limit),
    path: o.outPath,
    model: o.label,
    warn: o.log,
    start: async (todo) => {
      const engine = await loadEngine(o.modelDir, {
        maxConcurrent: o.slots ?? 4,
        maxContextTokens: o.contextTokens,
        gpu: o.gpu,
        modelId: o.label,
      });
      const template = promptTemplate(engine, o.chatTemplate);
      report.template = template.kind;
      o.log?.(`[answers] ${o.label}: generating ${todo.length} answers (${template.kind} chat template)`);
      return {
        answer: async (q) => {
          const fitted = fitPrompt(engine, q.text, template.source, o.maxNewTokens);
          if (fitted.truncated) report.truncated++;
          const result = await engine.generate(
            {
              prompt: fitted.prompt,
              maxTokens: o.maxNewTokens,
              temperature: answerTemperature(q),
              topP: 1,
              topK: 0,
              repetitionPenalty: 1,
              stop: [],
              seed: 0,
            },
            () => {},
            new AbortController().signal,
          );
          return { answer: result.text, promptTruncated: fitted.truncated };
        },
        close: () => engine.close(),
      };
    },
  });
  return { ...report, generated, kept };
}
