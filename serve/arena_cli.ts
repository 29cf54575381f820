/**
 * The command line of `deno task arena` and the task itself: its settings table (the comparison settings it
 * shares with `deno task winrate`, from `eval/winrate/cli.ts`, and where the page listens, from
 * `serve/cli.ts`), the generated help, the flags turned into an {@link ArenaConfig}, and the run: plan the
 * pairs, serve the page until Ctrl+C, print Table 1 and the agreement.
 *
 * @module
 */
import { arenaPaths, arenaSeed, ArenaSession, type ArenaTables } from "../eval/winrate/arena_session.ts";
import { ANSWERS_GROUP, answersFrom, COMPARISON_SETTINGS, PAIR_SOURCES } from "../eval/winrate/cli.ts";
import { DEFAULT_ORDER_RULE, humanJudgeName, planArena } from "../eval/winrate/human.ts";
import { type PairSpec, readQuestions } from "../eval/winrate/inputs.ts";
import { ORDER_RULES, type OrderRule } from "../eval/winrate/judgments.ts";
import { resolvePairs, type WinRateConfig } from "../eval/winrate/run.ts";
import {
  checkRequired,
  parseSettings,
  settingsHelp,
  type SettingsTable,
  withTableDefaults,
} from "../io/settings.ts";
import { startArenaServer } from "./arena.ts";
import { LISTEN_SETTINGS } from "./cli.ts";

/**
 * Every flag of `deno task arena`, by key.
 * @example
 * ```ts
 * ARENA_SETTINGS.port.default; // 8090
 * ```
 */
export const ARENA_SETTINGS = {
  ...COMPARISON_SETTINGS,
  pairs: { ...COMPARISON_SETTINGS.pairs, required: true },
  judge: {
    name: "judge_name",
    kind: "string",
    metavar: "NAME",
    required: true,
    parse: humanJudgeName,
    help: 'who votes: 1-64 letters, digits, ".", "_", "@", "-"; the judge is human:NAME',
  },
  orders: {
    name: "orders",
    kind: "string",
    choices: ORDER_RULES,
    default: DEFAULT_ORDER_RULE,
    help: "once: each question shown once, in a random order, the vote is its outcome (FastChat's Chatbot " +
      "Arena); both: shown in both orders, a win needs both votes to agree (as the LLM judge's two games)",
  },
  out: {
    name: "out",
    kind: "string",
    metavar: "DIR",
    default: "runs/winrate",
    help: "where the results go: DIR/judgments.jsonl",
  },
  judgments: {
    name: "judgments",
    kind: "string",
    metavar: "FILE",
    defaultHelp: "DIR/judgments.jsonl",
    help: "the results JSONL",
  },
  seed: {
    name: "seed",
    kind: "int",
    range: { min: 0 },
    defaultHelp: "drawn once and kept next to the results in judgments.human-NAME.arena.json",
    help: "seed of the orders and the sequence",
  },
  ...LISTEN_SETTINGS,
  port: { ...LISTEN_SETTINGS.port, default: 8090 },
  noServe: {
    name: "no_serve",
    kind: "bool",
    default: false,
    help: "print Table 1 and the agreement from the results, and exit",
  },
  answersDir: { ...COMPARISON_SETTINGS.answersDir, defaultHelp: "DIR/answers" },
  retries: { ...COMPARISON_SETTINGS.retries, group: ANSWERS_GROUP },
} satisfies SettingsTable;

/**
 * The help text of `deno task arena`.
 * @example
 * ```ts
 * console.log(arenaUsage());
 * ```
 */
export function arenaUsage(): string {
  return settingsHelp(ARENA_SETTINGS, {
    usage: "Usage: deno task arena --prompts FILE --pair A=SRC,B=SRC --judge_name NAME [flags]",
    intro: `Judge two models' answers yourself, side by side, in a web page (FastChat's arena, for Table 1).

The page shows one question and two anonymous answers in an order drawn at random (and recorded); vote with
the buttons or the keys 1/A, 2/B, 3/T (tie), skip with S, undo with U. Every vote is appended to the results
JSONL before the page moves on, judged by "human:NAME", beside any LLM judge's verdicts (deno task winrate
--out DIR/judgments.jsonl): reloading the page or restarting the command loses nothing. Ctrl+C prints Table 1
from your votes and, where an LLM judge judged the same questions, FastChat's judge-human agreement (with and
without ties); both are also written next to the results (judgments.human-NAME.md and .summary.json).

${PAIR_SOURCES}`,
    groups: ["options", ANSWERS_GROUP],
    footer: "Exit status: 0 after Ctrl+C or --no_serve; 2 on bad input.",
  });
}

/** Everything the arena task needs, from its flags. */
export interface ArenaConfig {
  prompts: string;
  limit?: number;
  pairs: PairSpec[];
  /** `human:<name>`. */
  judge: string;
  orders: OrderRule;
  resultsPath: string;
  answersDir: string;
  seed?: number;
  hostname: string;
  port: number;
  serve: boolean;
  quiet: boolean;
  answers: NonNullable<WinRateConfig["answers"]>;
  retries?: number;
}

/**
 * Turns command-line arguments into the arena's configuration, or `"help"`. Errors name the flag.
 *
 * @example
 * ```ts
 * arenaConfigFromArgs(["--prompts", "p.jsonl", "--pair", "SFT=a.jsonl,PT=b.jsonl", "--judge_name", "minji"],
 *   (name) => Deno.env.get(name));
 * ```
 */
export function arenaConfigFromArgs(
  args: string[],
  env: (name: string) => string | undefined,
): ArenaConfig | "help" {
  const parsed = parseSettings(ARENA_SETTINGS, args);
  if (parsed.help) return "help";
  const values = withTableDefaults(ARENA_SETTINGS, parsed.values);
  checkRequired(ARENA_SETTINGS, values);
  const out = values.out!.replace(/\/+$/, "") || "/";
  return {
    prompts: values.prompts!,
    limit: values.limit,
    pairs: values.pairs!,
    judge: values.judge!,
    orders: values.orders as OrderRule,
    resultsPath: values.judgments ?? `${out}/judgments.jsonl`,
    answersDir: values.answersDir ?? `${out}/answers`,
    seed: values.seed,
    hostname: values.host!,
    port: values.port!,
    serve: !values.noServe,
    quiet: values.quiet!,
    answers: answersFrom(values, parsed.sources, env),
    retries: values.retries,
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

/**
 * Runs the arena: answers for every pair (generated where a SRC is an endpoint), the plan, then the page
 * until SIGINT/SIGTERM (or, with `serve: false`, nothing), and Table 1 with the agreement printed.
 * @example
 * ```ts
 * const config = arenaConfigFromArgs(Deno.args, (name) => Deno.env.get(name));
 * if (config !== "help") await runArena(config);
 * ```
 */
export async function runArena(config: ArenaConfig): Promise<void> {
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
