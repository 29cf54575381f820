/**
 * The command lines of `kobest`, `serve`, `winrate` and `arena`, read from their settings tables: today's
 * spellings and the field's names (lm-eval's, vLLM's) give the same values, ranges are checked with errors
 * naming the flag as given, `--config` files work, and the help shows each default and range.
 */
import { KOBEST_SETTINGS, kobestOptionsFromArgs, kobestUsage } from "../../eval/kobest/cli.ts";
import {
  COMPARISON_SETTINGS,
  WINRATE_SETTINGS,
  winRateConfigFromArgs,
  winRateUsage,
} from "../../eval/winrate/cli.ts";
import { ARENA_SETTINGS, arenaConfigFromArgs, arenaUsage } from "../../serve/arena_cli.ts";
import { SERVE_SETTINGS, serveCommandFromArgs, serveUsage } from "../../serve/cli.ts";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../asserts.ts";

const noEnv = () => undefined;

/** Each case's arguments are refused with an error that includes its message. */
function refuses(parse: (args: string[]) => unknown, cases: [string[], string][]): void {
  for (const [args, message] of cases) assertThrows(() => parse(args), Error, message);
}

async function withTempFile(name: string, text: string, fn: (path: string) => void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flags-" });
  try {
    await Deno.writeTextFile(`${dir}/${name}`, text);
    fn(`${dir}/${name}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("kobest flags: today's spellings, snake_case and lm-eval's names give the same options", () => {
  const today = kobestOptionsFromArgs([
    "--model",
    "a",
    "--model",
    "b",
    "--data-dir",
    "kb",
    "--shots",
    "0,5",
    "--batch-size",
    "8",
    "--max-length",
    "512",
    "--dump-requests",
    "r.jsonl",
    "--tasks",
    "boolq,copa",
    "--limit",
    "0.25",
  ], noEnv);
  const canonical = kobestOptionsFromArgs([
    "--model",
    "a",
    "b",
    "--data_dir=kb",
    "--num_fewshot",
    "0,5",
    "--batch_size",
    "8",
    "--max_length",
    "512",
    "--dump_requests",
    "r.jsonl",
    "--tasks",
    "kobest_boolq,kobest_copa",
    "--limit=0.25",
  ], noEnv);
  assertEquals(today, canonical);
  assert(today !== "help");
  assertEquals(
    [today.models, today.dataDir, today.shots, today.batchSize, today.maxLength, today.tasks, today.limit],
    [["a", "b"], "kb", [0, 5], 8, 512, ["boolq", "copa"], 0.25],
  );
  // Defaults are the table's (lm-eval's): the test split, 0 shots, seed 1234, batches of 16, local scoring.
  const plain = kobestOptionsFromArgs(["--model", "m"], noEnv);
  assert(plain !== "help");
  assertEquals([plain.split, plain.shots, plain.seed, plain.batchSize, plain.remote], [
    "test",
    [0],
    1234,
    16,
    undefined,
  ]);
  assertEquals(
    kobestOptionsFromArgs(["--tasks", "kobest", "--model", "m"], noEnv) !== "help" &&
      (kobestOptionsFromArgs(["--tasks", "kobest", "--model", "m"], noEnv) as { tasks: string[] }).tasks,
    [
      "boolq",
      "copa",
      "hellaswag",
      "sentineg",
      "wic",
    ],
  );
});

Deno.test("kobest flags: through a server, the key comes from the named variable; server-only flags need --base_url", () => {
  const env: Record<string, string> = { KOTRANSFER_KEY: "sk-1" };
  const remote = kobestOptionsFromArgs([
    "--base-url",
    "http://127.0.0.1:8000/v1",
    "--model",
    "served",
    "--tokenizer",
    "org/tok",
    "--api-key-env",
    "KOTRANSFER_KEY",
    "--num_concurrent",
    "8",
    "--retries",
    "0",
  ], (n) => env[n]);
  assert(remote !== "help");
  assertEquals(remote.remote, {
    baseUrl: "http://127.0.0.1:8000/v1",
    tokenizer: "org/tok",
    apiKey: "sk-1",
    concurrency: 8,
    retries: 0,
  });
  assertThrows(
    () => kobestOptionsFromArgs(["--model", "m", "--num-concurrent", "2"], noEnv),
    Error,
    "--num-concurrent needs --base_url",
  );
  assertThrows(
    () =>
      kobestOptionsFromArgs(["--base_url", "http://h/v1", "--model", "m", "--api_key_env", "NOPE"], noEnv),
    Error,
    "--api_key_env NOPE: the environment variable NOPE is unset or empty",
  );
});

Deno.test("kobest flags: out-of-range values are refused naming the flag as given", () => {
  const cases: [string[], string][] = [
    [["--batch-size", "0"], "--batch-size: expected an integer ≥ 1, got 0"],
    [["--batch_size", "1.5"], '--batch_size: expected an integer ≥ 1, got "1.5"'],
    [["--limit", "0"], "--limit: expected an integer ≥ 1, or a fraction in (0, 1), got 0"],
    [["--limit", "2.5"], "--limit: expected an integer ≥ 1, or a fraction in (0, 1), got 2.5"],
    [["--num_fewshot", "1,x"], '--num_fewshot: expected comma-separated integers ≥ 0 such as 0,5, got "1,x"'],
    [["--seed", "-1"], "--seed: expected an integer ≥ 0, got -1"],
    [["--max-length", "1"], "--max-length: expected an integer ≥ 2, got 1"],
    [["--split", "dev"], '--split: expected train | validation | test, got "dev"'],
    [["--tasks", "boolq,nli"], '--tasks: unknown task "nli"'],
    [["--base-url", "localhost:8000"], '--base-url: expected an http(s):// URL, got "localhost:8000"'],
  ];
  refuses((args) => kobestOptionsFromArgs(["--model", "m", ...args], noEnv), cases);
  assertThrows(() => kobestOptionsFromArgs(["--shots", "0"], noEnv), Error, "--model is required");
  assertEquals(kobestOptionsFromArgs(["-h"], noEnv), "help");
});

Deno.test("serve flags: vLLM's names are aliases that give the same values as today's", () => {
  const today = serveCommandFromArgs([
    "--model",
    "base",
    "--lora",
    "sft=runs/sft",
    "--lora",
    "orpo=runs/orpo",
    "--model-name",
    "tiny",
    "--model-name",
    "ko",
    "--context",
    "1024",
    "--port",
    "0",
  ], noEnv);
  const vllm = serveCommandFromArgs([
    "--model",
    "base",
    "--lora-modules",
    "sft=runs/sft",
    "orpo=runs/orpo",
    "--served-model-name",
    "tiny",
    "ko",
    "--max-model-len",
    "1024",
    "--port=0",
  ], noEnv);
  assertEquals(today, vllm);
  assert(today !== "help");
  assertEquals(today.engine.loras, [{ name: "sft", dir: "runs/sft" }, { name: "orpo", dir: "runs/orpo" }]);
  assertEquals([today.engine.maxContextTokens, today.server.modelAliases, today.server.port], [
    1024,
    ["tiny", "ko"],
    0,
  ]);
  // Defaults: 127.0.0.1:8080, 4 at once, 16 waiting, 1024 new tokens at most, the chat page, request logs.
  const plain = serveCommandFromArgs(["--model", "m"], noEnv);
  assert(plain !== "help");
  assertEquals(
    [
      plain.server.hostname,
      plain.server.port,
      plain.engine.maxConcurrent,
      plain.server.maxConcurrent,
      plain.server.maxQueue,
      plain.server.maxTokensLimit,
      plain.server.maxPromptTokens,
      plain.server.ui,
      plain.quiet,
      plain.server.apiKey,
    ],
    ["127.0.0.1", 8080, 4, 4, 16, 1024, undefined, true, false, undefined],
  );
  const key = serveCommandFromArgs(
    ["--model", "m", "--api-key", "token-abc123", "--no-ui", "--quiet"],
    noEnv,
  );
  assert(key !== "help");
  assertEquals([key.server.apiKey, key.server.ui, key.quiet], ["token-abc123", false, true]);
  const fromEnv = serveCommandFromArgs(
    ["--model", "m", "--api_key_env", "KOTRANSFER_K"],
    (n) => n === "KOTRANSFER_K" ? "sk-2" : undefined,
  );
  assertEquals(fromEnv !== "help" && fromEnv.server.apiKey, "sk-2");
});

Deno.test("serve flags: a --config file (YAML or JSON) gives the settings, flags on the command line win", async () => {
  const yaml = `model: runs/tiny-base
served-model-name: [tiny, ko]
lora_modules:
  - sft=runs/sft-lora
port: 0
max_model_len: 512
max_concurrent: 2
no_ui: true
`;
  await withTempFile("serve.yaml", yaml, (path) => {
    const c = serveCommandFromArgs(["--config", path, "--max-concurrent", "3"], noEnv);
    assert(c !== "help");
    assertEquals(c.model, "runs/tiny-base");
    assertEquals(c.server.modelAliases, ["tiny", "ko"]);
    assertEquals(c.engine.loras, [{ name: "sft", dir: "runs/sft-lora" }]);
    assertEquals([c.server.port, c.engine.maxContextTokens, c.server.ui], [0, 512, false]);
    assertEquals([c.engine.maxConcurrent, c.server.maxConcurrent], [3, 3], "the command line wins");
  });
  await withTempFile("serve.json", JSON.stringify({ model: "m", port: 70000 }), (path) => {
    assertThrows(
      () => serveCommandFromArgs(["--config", path], noEnv),
      Error,
      `${path}: port: expected an integer in [0, 65535], got 70000`,
    );
  });
  await withTempFile("serve.json", JSON.stringify({ model: "m", lora: ["broken"] }), (path) => {
    assertThrows(
      () => serveCommandFromArgs(["--config", path], noEnv),
      Error,
      `${path}: lora[0]: expected NAME=DIR`,
    );
  });
});

Deno.test("serve flags: out-of-range values and bad combinations are refused naming the flag", () => {
  const cases: [string[], string][] = [
    [["--port", "70000"], "--port: expected an integer in [0, 65535], got 70000"],
    [["--max-concurrent", "0"], "--max-concurrent: expected an integer ≥ 1, got 0"],
    [["--max-queue", "-1"], "--max-queue: expected an integer ≥ 0, got -1"],
    [["--context", "32"], "--context: expected an integer ≥ 64, got 32"],
    [["--max-tokens-limit", "1e3x"], '--max-tokens-limit: expected an integer ≥ 1, got "1e3x"'],
    [["--request-timeout-ms", "0"], "--request-timeout-ms: expected an integer ≥ 1, got 0"],
    [["--lora", "=dir"], '--lora: expected NAME=DIR, got "=dir"'],
    [["--lora-modules", "name="], '--lora-modules: expected NAME=DIR, got "name="'],
    [["--api-key", "k", "--api-key-env", "K"], "--api-key and --api-key-env: give one of them"],
    [["--api-key", ""], '--api-key: expected a non-empty key, got ""'],
    [
      ["--api-key-env", "UNSET_ONE"],
      "--api-key-env UNSET_ONE: the environment variable UNSET_ONE is unset or empty",
    ],
  ];
  refuses((args) => serveCommandFromArgs(["--model", "m", ...args], noEnv), cases);
  assertThrows(() => serveCommandFromArgs(["--port", "1"], noEnv), Error, "--model is required");
});

Deno.test("winrate flags: today's kebab-case and snake_case give the same configuration; ranges name the flag", async () => {
  const kebab = winRateConfigFromArgs([
    "--prompts",
    "p.jsonl",
    "--pair",
    "x=x.jsonl,y=y.jsonl",
    "--judge-url",
    "http://127.0.0.1:1/v1",
    "--judge-model",
    "j",
    "--judge-max-tokens",
    "100",
    "--verdict-rule",
    "last",
    "--answer-temperature",
    "0",
    "--answer-max-tokens",
    "64",
    "--answers-dir",
    "ans",
  ], noEnv);
  const snake = winRateConfigFromArgs([
    "--prompts=p.jsonl",
    "--pair=x=x.jsonl,y=y.jsonl",
    "--judge_url=http://127.0.0.1:1/v1",
    "--judge_model=j",
    "--judge_max_tokens=100",
    "--verdict_rule=last",
    "--answer_temperature=0",
    "--answer_max_tokens=64",
    "--answers_dir=ans",
  ], noEnv);
  // The configurations hold a log function each; compare everything else.
  const strip = (c: typeof kebab) => c === "help" ? c : { ...c, log: undefined };
  assertEquals(strip(kebab), strip(snake));
  assert(kebab !== "help");
  assertEquals([kebab.judge.maxTokens, kebab.verdictRule, kebab.answers], [100, "last", {
    apiKey: undefined,
    maxTokens: 64,
    temperature: 0,
  }]);
  // FastChat's and the toolkit's defaults, from the table.
  const plain = winRateConfigFromArgs(
    ["--prompts", "p", "--pair", "x=a,y=b", "--judge_url", "http://j/v1", "--judge_model", "j"],
    noEnv,
  );
  assert(plain !== "help");
  assertEquals(
    [plain.verdictRetries, plain.verdictRule, plain.judge.maxTokens, plain.parallel, plain.http?.retries],
    [2, "fastchat", 2048, 4, 5],
  );
  assertEquals(plain.answers, { apiKey: undefined, maxTokens: 1024, temperature: undefined });
  const base = ["--prompts", "p", "--pair", "x=a,y=b", "--judge-url", "http://j/v1", "--judge-model", "j"];
  const cases: [string[], string][] = [
    [["--answer-temperature", "2.5"], "--answer-temperature: expected a number in [0, 2], got 2.5"],
    [["--parallel", "0"], "--parallel: expected an integer ≥ 1, got 0"],
    [["--verdict-retries", "-1"], "--verdict-retries: expected an integer ≥ 0, got -1"],
    [["--verdict-rule", "first"], '--verdict-rule: expected fastchat | last, got "first"'],
    [["--judge-url", "judge.example"], '--judge-url: expected an http(s):// URL, got "judge.example"'],
    [["--pair", "x=a"], '--pair "x=a": expected nameA=answersA,nameB=answersB'],
  ];
  refuses((args) => winRateConfigFromArgs([...base, ...args], noEnv), cases);
  await withTempFile(
    "winrate.yaml",
    "prompts: p.jsonl\npair:\n  - x=a.jsonl,y=b.jsonl\njudge_url: http://j/v1\njudge-model: j\nparallel: 2\n",
    (path) => {
      const c = winRateConfigFromArgs(["--config", path], noEnv);
      assert(c !== "help");
      assertEquals([c.promptsPath, c.pairs.length, c.judge.model, c.parallel], ["p.jsonl", 1, "j", 2]);
    },
  );
});

Deno.test("arena flags: the settings it shares with winrate are one definition, read the same way", () => {
  for (const key of Object.keys(COMPARISON_SETTINGS) as (keyof typeof COMPARISON_SETTINGS)[]) {
    const arena = ARENA_SETTINGS[key] as { name: string; kind: string; range?: unknown; default?: unknown };
    const shared = COMPARISON_SETTINGS[key] as typeof arena;
    assertEquals([arena.name, arena.kind, arena.range, arena.default], [
      shared.name,
      shared.kind,
      shared.range,
      shared.default,
    ], key);
  }
  const shared = [
    "--prompts",
    "p.jsonl",
    "--pair",
    "SFT=a.jsonl,PT=b.jsonl",
    "--answer-max-tokens",
    "99",
    "--limit",
    "3",
  ];
  const w = winRateConfigFromArgs([...shared, "--judge-url", "http://j/v1", "--judge-model", "j"], noEnv);
  const a = arenaConfigFromArgs([...shared, "--judge-name", "민지"], noEnv);
  assert(w !== "help" && a !== "help");
  assertEquals([a.prompts, a.pairs, a.limit, a.answers], [w.promptsPath, w.pairs, w.limit, w.answers]);
  assertEquals(
    [a.judge, a.orders, a.resultsPath, a.answersDir, a.port, a.hostname, a.serve],
    ["human:민지", "once", "runs/winrate/judgments.jsonl", "runs/winrate/answers", 8090, "127.0.0.1", true],
  );
  const cases: [string[], string][] = [
    [["--orders", "twice"], '--orders: expected once | both, got "twice"'],
    [["--judge-name", "two words"], '--judge-name "two words": expected 1 to 64 letters'],
    [["--port", "-1"], "--port: expected an integer in [0, 65535], got -1"],
    [["--answer_temperature", "-0.1"], "--answer_temperature: expected a number in [0, 2], got -0.1"],
  ];
  refuses((args) => arenaConfigFromArgs([...shared, "--judge-name", "minji", ...args], noEnv), cases);
  assertThrows(
    () => arenaConfigFromArgs(["--prompts", "p", "--judge-name", "m"], noEnv),
    Error,
    "--pair is required",
  );
});

Deno.test("help of the four tasks: generated from the tables, with defaults, ranges and aliases", () => {
  const flat = (text: string) => text.replace(/\s+/g, " ");
  const kobest = flat(kobestUsage());
  assertStringIncludes(kobest, "--batch_size N");
  assertStringIncludes(kobest, "(default 0; also --num_fewshot)");
  assertStringIncludes(kobest, "an integer ≥ 1, or a fraction in (0, 1)");
  const serve = flat(serveUsage());
  assertStringIncludes(serve, "an integer in [0, 65535] (default 8080)");
  assertStringIncludes(serve, "also --lora_modules");
  assertStringIncludes(serve, "also --served_model_name");
  assertStringIncludes(serve, "also --context");
  assertStringIncludes(flat(winRateUsage()), "a number in [0, 2]");
  assertStringIncludes(flat(arenaUsage()), "(default 8090)");
  for (const table of [KOBEST_SETTINGS, SERVE_SETTINGS, WINRATE_SETTINGS, ARENA_SETTINGS]) {
    for (
      const s of Object.values(table) as { kind: string; range?: unknown; check?: unknown; name: string }[]
    ) {
      if (s.kind === "int" || s.kind === "float") {
        assert(s.range !== undefined || s.check !== undefined, `--${s.name} has a range`);
      }
    }
  }
});
