#!/usr/bin/env -S deno run --no-prompt --allow-net --allow-read --allow-write --allow-env=OPENAI_API_KEY,KOTRANSFER_*
/**
 * `deno task arena --pair A=SRC,B=SRC --prompts FILE --judge-name NAME [--out DIR]`: a page where a person
 * judges two models' answers side by side, votes landing in the win rates' results JSONL as `human:NAME`
 * (see `serve/arena.ts` and `eval/winrate/human.ts`). Ctrl+C (or `--no-serve`) prints Table 1 from the votes
 * and the agreement with the other judges of the same file.
 * @module
 */
import { parseArgs } from "node:util";
import { arenaPaths, arenaSeed, ArenaSession, type ArenaTables } from "../eval/winrate/arena_session.ts";
import { DEFAULT_ORDER_RULE, humanJudgeName, parseOrderRule, planArena } from "../eval/winrate/human.ts";
import { parsePairSpec, readQuestions, WinRateInputError } from "../eval/winrate/inputs.ts";
import { resolvePairs } from "../eval/winrate/run.ts";
import { deniedPermissionLine, runTask } from "../io/cli.ts";
import { startArenaServer } from "../serve/arena.ts";
import { integerFlag, keyFrom, numberFlag, required, stringFlag } from "./winrate.ts";

const HELP = `Judge two models' answers yourself, side by side, in a web page (FastChat's arena, for Table 1).

Usage: deno task arena --prompts FILE --pair A=SRC,B=SRC --judge-name NAME [options]

The page shows one question and two anonymous answers in an order drawn at random (and recorded); vote with
the buttons or the keys 1/A, 2/B, 3/T (tie), skip with S, undo with U. Every vote is appended to the results
JSONL before the page moves on, judged by "human:NAME", beside any LLM judge's verdicts (deno task winrate
--out DIR/judgments.jsonl): reloading the page or restarting the command loses nothing. Ctrl+C prints Table 1
from your votes and, where an LLM judge judged the same questions, FastChat's judge-human agreement (with and
without ties); both are also written next to the results (judgments.human-NAME.md and .summary.json).

A SRC is an answers JSONL ({id, answer} | {id, output} | {question_id, choices:[{turns}]}) or the
http(s) base URL of an OpenAI-compatible endpoint that generates the answers (as deno task winrate does).

Options:
  --prompts FILE           questions JSONL (instruction + instances[0].input, question, prompt or turns)
  --pair A=SRC,B=SRC       a model pair, rates from A's side (repeatable)                        (required)
  --judge-name NAME        who votes: 1-64 letters, digits, ".", "_", "@", "-"; the judge is human:NAME (required)
  --orders once|both       once: each question shown once, in a random order, the vote is its outcome
                           (FastChat's Chatbot Arena; default); both: shown in both orders, a win needs both
                           votes to agree (as the LLM judge's two games)
  --out DIR                where the results go (default runs/winrate): DIR/judgments.jsonl
  --judgments FILE         the results JSONL instead of DIR/judgments.jsonl
  --seed N                 seed of the orders and the sequence (default: drawn once and kept next to the
                           results in judgments.human-NAME.arena.json)
  --limit N                use only the first N questions
  --host HOST              interface to bind                                 (default 127.0.0.1)
  --port N                 TCP port; 0 picks a free one                      (default 8090)
  --no-serve               print Table 1 and the agreement from the results, and exit
  --answers-dir DIR        cache of generated answers (default DIR/answers)
  --answer-key-env NAME    env variable holding the API key for answer endpoints (default: none)
  --answer-max-tokens N    max_tokens for generated answers (default 1024, FastChat's)
  --answer-temperature X   temperature for generated answers (default: FastChat's per question category)
  --retries N              HTTP retries for answer endpoints (default 5)
  --quiet                  no per-request log lines
  -h, --help               show this help

Exit status: 0 after Ctrl+C or --no-serve; 2 on bad input.
`;

/** Everything the arena task needs, from its flags. */
export interface ArenaConfig {
  prompts: string;
  limit?: number;
  pairs: ReturnType<typeof parsePairSpec>[];
  judge: string;
  orders: ReturnType<typeof parseOrderRule>;
  resultsPath: string;
  answersDir: string;
  seed?: number;
  hostname: string;
  port: number;
  serve: boolean;
  quiet: boolean;
  answers: { apiKey?: string; maxTokens?: number; temperature?: number };
  retries?: number;
}

/**
 * Turns command-line arguments into the arena's configuration, or `"help"`.
 *
 * @example
 * ```ts
 * arenaConfigFromArgs(["--prompts", "p.jsonl", "--pair", "SFT=a.jsonl,PT=b.jsonl", "--judge-name", "minji"],
 *   (name) => Deno.env.get(name));
 * ```
 */
export function arenaConfigFromArgs(
  args: string[],
  env: (name: string) => string | undefined,
): ArenaConfig | "help" {
  const { values } = parseArgs({
    args,
    options: {
      prompts: { type: "string" },
      pair: { type: "string", multiple: true },
      "judge-name": { type: "string" },
      orders: { type: "string", default: DEFAULT_ORDER_RULE },
      out: { type: "string", default: "runs/winrate" },
      judgments: { type: "string" },
      seed: { type: "string" },
      limit: { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "8090" },
      "no-serve": { type: "boolean", default: false },
      "answers-dir": { type: "string" },
      "answer-key-env": { type: "string" },
      "answer-max-tokens": { type: "string" },
      "answer-temperature": { type: "string" },
      retries: { type: "string" },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return "help";
  const pairs = (values.pair ?? []).map(parsePairSpec);
  if (pairs.length === 0) throw new WinRateInputError("give at least one --pair A=SRC,B=SRC (see --help)");
  const out = values.out.replace(/\/+$/, "") || "/";
  return {
    prompts: required(values, "prompts"),
    limit: integerFlag(values, "limit", 1),
    pairs,
    judge: humanJudgeName(required(values, "judge-name")),
    orders: parseOrderRule(values.orders),
    resultsPath: stringFlag(values, "judgments") ?? `${out}/judgments.jsonl`,
    answersDir: stringFlag(values, "answers-dir") ?? `${out}/answers`,
    seed: integerFlag(values, "seed", 0),
    hostname: values.host,
    port: integerFlag(values, "port", 0)!,
    serve: !values["no-serve"],
    quiet: values.quiet,
    answers: {
      apiKey: keyFrom(env, values["answer-key-env"]),
      maxTokens: integerFlag(values, "answer-max-tokens", 1),
      temperature: numberFlag(values, "answer-temperature", 0, 2),
    },
    retries: integerFlag(values, "retries", 0),
  };
}

function printTables(tables: ArenaTables): void {
  console.log(tables.table);
  if (tables.agreement.length > 0) {
    console.log(
      `\nAgreement (FastChat's compute_agreement):\n${tables.agreement.map((l) => `- ${l}`).join("\n")}`,
    );
  }
}

/** Resolves at the first SIGINT or SIGTERM. */
function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
    const stop = () => {
      for (const s of signals) Deno.removeSignalListener(s, stop);
      resolve();
    };
    for (const s of signals) Deno.addSignalListener(s, stop);
  });
}

async function run(config: ArenaConfig): Promise<void> {
  const log = (line: string) => console.error(line);
  const questions = await readQuestions(config.prompts, config.limit);
  const resultsDir = config.resultsPath.includes("/")
    ? config.resultsPath.slice(0, config.resultsPath.lastIndexOf("/")) || "/"
    : ".";
  await Deno.mkdir(resultsDir, { recursive: true });
  const { pairs } = await resolvePairs(config.pairs, {
    questions,
    answersDir: config.answersDir,
    answers: config.answers,
    http: { retries: config.retries },
    log,
  });
  const seed = await arenaSeed(arenaPaths(config.resultsPath, config.judge).seed, config.seed);
  const plan = await planArena(
    pairs.map(([a, b]) => ({ modelA: a.name, modelB: b.name, answersA: a.answers, answersB: b.answers })),
    questions,
    { judge: config.judge, rule: config.orders, seed },
  );
  for (const p of plan.pairs) {
    if (p.missing > 0) {
      log(`${p.modelA} vs ${p.modelB}: ${p.missing} question(s) lack an answer and are left out`);
    }
  }
  const session = await ArenaSession.open(plan, config.resultsPath, { prompts: config.prompts, warn: log });
  if (!config.serve) {
    printTables(await session.writeTables());
    return;
  }
  const server = startArenaServer(session, {
    hostname: config.hostname,
    port: config.port,
    log: config.quiet ? undefined : (line) => log(`${new Date().toISOString()} ${line}`),
  });
  const { done, total } = session.progress();
  log(
    `arena for ${config.judge} at ${server.url}/ (${done} of ${total} voted, results in ${session.path}); ` +
      "Ctrl+C prints Table 1",
  );
  await untilSignal();
  await server.close();
  printTables(await session.writeTables());
}

async function main(): Promise<number> {
  try {
    const config = arenaConfigFromArgs(Deno.args, (name) => Deno.env.get(name));
    if (config === "help") console.log(HELP);
    else await run(config);
    return 0;
  } catch (e) {
    console.error(deniedPermissionLine("arena", e) ?? `arena: ${e instanceof Error ? e.message : e}`);
    return 2;
  }
}

if (import.meta.main) Deno.exit(await runTask("arena", main));
