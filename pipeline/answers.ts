/**
 * Answers for the win rates, generated locally: one model loaded at a time, the first N Korean prompts in
 * the model's chat template, greedy decoding, written as `{id, answer}` JSONL that `runWinRate` reads as a
 * file source. The file is appended to as answers arrive, so a killed run keeps what it had and a rerun
 * generates only the missing ones.
 *
 * @module
 */
import { loadEngine, type TextEngine } from "../generate/engine.ts";
import type { Gpu } from "../gpu/runtime.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { type Question, readQuestions } from "../eval/winrate/inputs.ts";

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

/** Options of {@link generateAnswers}. */
export interface AnswerOptions {
  /** A model folder (full weights). */
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

/** What {@link generateAnswers} did. */
export interface AnswerReport {
  generated: number;
  kept: number;
  /** Prompts shortened to fit the context. */
  truncated: number;
  /** Which template rendered the prompts. */
  template: "model" | "given" | "plain";
}

interface AnswerLine {
  id: string;
  answer: string;
}

/**
 * The answers already in `path` (none when it does not exist). A last line cut short by a kill is dropped
 * from the file; any other bad line is an error naming the file and line.
 *
 * @example
 * ```ts
 * const kept = await readKeptAnswers("runs/repro-tiny/winrate/answers/sft.jsonl");
 * kept.size; // 20
 * ```
 */
export async function readKeptAnswers(path: string): Promise<Map<string, string>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return new Map();
    throw e;
  }
  const lines = text.split("\n");
  const answers = new Map<string, string>();
  let cut = false;
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let row: Partial<AnswerLine>;
    try {
      row = JSON.parse(line);
    } catch {
      if (i === lines.length - 1) {
        cut = true;
        return;
      }
      throw new Error(`${path}:${i + 1}: not valid JSON; remove the line (or the file) to regenerate`);
    }
    if (typeof row.id !== "string" || typeof row.answer !== "string") {
      throw new Error(`${path}:${i + 1}: expected {"id": string, "answer": string}`);
    }
    answers.set(row.id, row.answer);
  });
  if (cut) {
    await writeFileAtomic(
      path,
      [...answers].map(([id, answer]) => JSON.stringify({ id, answer }) + "\n").join(""),
    );
  }
  return answers;
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

async function answerAll(
  engine: TextEngine,
  todo: readonly Question[],
  o: AnswerOptions,
  template: string | undefined,
): Promise<number> {
  let truncated = 0;
  let writes = Promise.resolve();
  // allSettled: the engine may only be closed once no request is running, even after a failure.
  const settled = await Promise.allSettled(todo.map(async (q) => {
    const fitted = fitPrompt(engine, q.text, template, o.maxNewTokens);
    if (fitted.truncated) truncated++;
    const result = await engine.generate(
      {
        prompt: fitted.prompt,
        maxTokens: o.maxNewTokens,
        temperature: 0,
        topP: 1,
        topK: 0,
        repetitionPenalty: 1,
        stop: [],
        seed: 0,
      },
      () => {},
      new AbortController().signal,
    );
    const line = JSON.stringify({
      id: q.id,
      answer: result.text,
      model: o.label,
      ...(fitted.truncated ? { prompt_truncated: true } : {}),
    });
    writes = writes.then(() => Deno.writeTextFile(o.outPath, line + "\n", { append: true }));
    await writes;
  }));
  const failure = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failure) throw failure.reason;
  return truncated;
}

/**
 * Generates the answers `outPath` lacks for the first `limit` prompts, then frees the model.
 *
 * @example
 * ```ts
 * await generateAnswers({ modelDir: "runs/repro-tiny/sft/final", label: "SFT", promptsPath: "data/ko_user_oriented_instructions.jsonl",
 *   limit: 20, outPath: "runs/repro-tiny/winrate/answers/sft.jsonl", maxNewTokens: 48, contextTokens: 512 });
 * ```
 */
export async function generateAnswers(o: AnswerOptions): Promise<AnswerReport> {
  const questions = await readQuestions(o.promptsPath, o.limit);
  const kept = await readKeptAnswers(o.outPath);
  const todo = questions.filter((q) => !kept.has(q.id));
  const report: AnswerReport = {
    generated: 0,
    kept: questions.length - todo.length,
    truncated: 0,
    template: "model",
  };
  if (todo.length === 0) return report;
  await Deno.mkdir(o.outPath.slice(0, Math.max(0, o.outPath.lastIndexOf("/"))) || ".", { recursive: true });
  const engine = await loadEngine(o.modelDir, {
    maxConcurrent: o.slots ?? 4,
    maxContextTokens: o.contextTokens,
    gpu: o.gpu,
    modelId: o.label,
  });
  try {
    const template = promptTemplate(engine, o.chatTemplate);
    report.template = template.kind;
    o.log?.(`[answers] ${o.label}: generating ${todo.length} answers (${template.kind} chat template)`);
    report.truncated = await answerAll(engine, todo, o, template.source);
    report.generated = todo.length;
  } finally {
    engine.close();
  }
  return report;
}
