/**
 * The rule judge of eval/winrate/rule_judge.ts served over the OpenAI API, for running the win rates against it as
 * against any LLM judge endpoint (`runWinRate`'s judge URL). In process, `RuleJudgeClient` gives the same
 * replies without a server.
 *
 * @module
 */
import type {
  ChatMessage,
  GenerateRequest,
  GenerateResult,
  GenerationEngine,
} from "../generate/engine_contract.ts";
import { RULE_JUDGE_MODEL, ruleJudgeChat } from "../eval/winrate/rule_judge.ts";
import { startServer } from "./server.ts";

/**
 * The rule judge as a {@link GenerationEngine}, so `startServer` serves it over the OpenAI API. Its "chat
 * template" is JSON: `renderChat` writes the messages as JSON and `generate` reads them back exactly. A
 * token here is one UTF-16 code unit.
 *
 * @example
 * ```ts
 * const judge = new RuleJudgeEngine();
 * const prompt = judge.renderChat(judgeMessages("질문", "네.", "Yes."));
 * const r = await judge.generate({ prompt, maxTokens: 512, temperature: 0, topP: 1, topK: 0,
 *   repetitionPenalty: 1, stop: [] }, () => {}, new AbortController().signal);
 * r.text.endsWith("[[A]]"); // true
 * ```
 */
export class RuleJudgeEngine implements GenerationEngine {
  /** Always {@link RULE_JUDGE_MODEL}. */
  readonly modelId: typeof RULE_JUDGE_MODEL = RULE_JUDGE_MODEL;
  readonly maxContextTokens = 1 << 22;
  /** Judgments made (generate calls answered with a verdict or a refusal). */
  calls = 0;

  countTokens(text: string): number {
    return text.length;
  }

  renderChat(messages: ChatMessage[]): string {
    return JSON.stringify(messages.map(({ role, content }) => ({ role, content })));
  }

  generate(
    req: GenerateRequest,
    onText: (delta: string) => void,
    signal: AbortSignal,
  ): Promise<GenerateResult> {
    this.calls++;
    if (signal.aborted) {
      return Promise.resolve({
        text: "",
        finishReason: "abort",
        promptTokens: req.prompt.length,
        completionTokens: 0,
      });
    }
    const { text, finishReason } = ruleJudgeChat(renderedMessages(req.prompt), req.maxTokens);
    onText(text);
    return Promise.resolve({
      text,
      finishReason,
      promptTokens: req.prompt.length,
      completionTokens: text.length,
    });
  }
}

/**
 * The messages of a JSON-rendered chat; any other prompt (the completions endpoint's raw text) is read as
 * one user message.
 */
function renderedMessages(prompt: string): ChatMessage[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(prompt);
  } catch {
    return [{ role: "user", content: prompt }];
  }
  if (!Array.isArray(parsed)) return [{ role: "user", content: prompt }];
  const users = parsed.filter((m): m is ChatMessage =>
    typeof m === "object" && m !== null && m.role === "user" && typeof m.content === "string"
  );
  return users.length > 0 ? users : [{ role: "user", content: prompt }];
}

/** A running rule judge: where to point `runWinRate`'s judge, and how to stop it. */
export interface RuleJudgeServer {
  /** OpenAI-compatible base URL, ending in `/v1`. */
  url: string;
  /** The judge's model id (`kotransfer-rule-judge`): pass it as the judge model. */
  model: string;
  /** The engine behind the server; its `calls` counts the judgments made. */
  engine: RuleJudgeEngine;
  /** Stops the server and waits until it has shut down. */
  close(): Promise<void>;
}

/**
 * Serves the rule judge on 127.0.0.1 at a free port (needs `--allow-net=127.0.0.1`).
 *
 * @example
 * ```ts
 * const judge = startRuleJudgeServer();
 * await runWinRate({ ...config, judge: { url: judge.url, model: judge.model } });
 * await judge.close();
 * ```
 */
export function startRuleJudgeServer(): RuleJudgeServer {
  const engine = new RuleJudgeEngine();
  const server = startServer(engine, {
    hostname: "127.0.0.1",
    port: 0,
    maxConcurrent: 8,
    maxQueue: 64,
    maxPromptTokens: engine.maxContextTokens - 4096,
    maxTokensLimit: 4096,
  });
  return { url: `${server.url}/v1`, model: engine.modelId, engine, close: () => server.close() };
}
