import { formatResult, parseReproduceArgs, reproduceUsage } from "../../pipeline/cli.ts";
import { comparisons } from "../../pipeline/reproduce.ts";
import { KOBEST_TINY_DIR, PRESETS, presetSettings } from "../../pipeline/settings.ts";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../asserts.ts";

Deno.test("reproduce cli: no flags run the tiny preset offline with the rule judge", () => {
  const s = parseReproduceArgs([])!;
  assertEquals([s.preset, s.out, s.model, s.buildTinyBase], [
    "tiny",
    "runs/repro-tiny",
    "runs/tiny-base",
    true,
  ]);
  assertEquals([s.kobestDir, s.judge, s.shots], [KOBEST_TINY_DIR, { kind: "rule" }, [0, 5]]);
  assertEquals(parseReproduceArgs(["--help"]), undefined);
});

Deno.test("reproduce cli: --model alone means full fine-tuning of that model, with no judge", () => {
  const s = parseReproduceArgs(["--model", "org/base", "--out", "runs/x"])!;
  assertEquals([s.preset, s.model, s.out, s.buildTinyBase, s.judge.kind], [
    "full",
    "org/base",
    "runs/x",
    false,
    "none",
  ]);
  assertEquals([s.train.sft.lr, s.train.orpo.lr, s.train.dpo.lr], [2e-5, 1e-6, 1e-6]);
  assertEquals(s.kobestDir, undefined, "real presets read KoBEST from the Hub");
});

Deno.test("reproduce cli: flags override the preset, training flags every objective", () => {
  const s = parseReproduceArgs([
    "--preset=llama-3.2-1b-lora",
    "--max-steps=7",
    "--orpo-lr=3e-5",
    "--shots=0,1,5",
    "--prompts-limit=9",
    "--kobest-limit=11",
    "--dpo",
    "--judge-url=http://127.0.0.1:9/v1",
    "--judge-model=judge",
    "--judge-key-env=JUDGE_KEY",
    "--sft-data=a.jsonl",
    "--sft-data=b.jsonl",
  ])!;
  assertEquals([s.model, s.out, s.dpo, s.promptsLimit, s.kobestLimit], [
    "meta-llama/Llama-3.2-1B",
    "runs/repro-llama-3.2-1b-lora",
    true,
    9,
    11,
  ]);
  assertEquals(s.shots, [0, 1, 5]);
  assertEquals(s.sftData, ["a.jsonl", "b.jsonl"]);
  assertEquals(s.judge, { kind: "llm", url: "http://127.0.0.1:9/v1", model: "judge", keyEnv: "JUDGE_KEY" });
  for (const o of ["sft", "orpo", "dpo"] as const) {
    assertEquals([s.train[o].maxSteps, s.train[o].lora?.r, s.train[o].f16Base], [7, 16, true], o);
  }
  assertEquals([s.train.sft.lr, s.train.orpo.lr], [2e-4, 3e-5]);
  assertEquals(comparisons(s.dpo), [["SFT", "PT"], ["SFT", "ORPO"], ["DPO", "SFT"]]);
});

Deno.test("reproduce cli: bad input names the flag and what was expected", () => {
  const bad: [string[], string][] = [
    [["--preset", "huge"], "--preset: expected tiny | full"],
    [["--preset", "full"], "--model_name_or_path: expected a base model folder or Hub id"],
    [["--shots", "0,x"], "--shots: expected comma-separated integers"],
    [["--prompts-limit", "0"], "--prompts-limit: expected an integer ≥ 1"],
    [["--max-steps", "many"], '--max-steps: expected an integer ≥ -1, got "many"'],
    [["--judge-url", "http://x/v1"], "--judge_url needs --judge_model"],
    [["--judge-url", "x/v1", "--judge-model", "j"], "--judge-url: expected an http(s):// URL"],
    [["--judge-model", "gpt"], "--judge_model and --judge_key_env need --judge_url"],
    [["--answer-context", "100"], "--answer_context: expected a multiple of 64"],
    [["--answer-max-tokens", "600"], "--answer_max_tokens: expected fewer than --answer_context (512)"],
    [["extra"], 'unexpected argument "extra"'],
    [["--f16-base"], "--f16_base needs --lora_r"],
    [["--max-length", "0"], "--max-length: expected an integer ≥ 1"],
    [["--gpu-memory", "8GB"], "--gpu_memory and --max_binding go with --dry_run"],
  ];
  for (const [args, message] of bad) assertThrows(() => parseReproduceArgs(args), Error, message);
});

Deno.test("reproduce cli: --help states every preset's GPU needs", () => {
  const help = reproduceUsage();
  const unwrapped = help.replace(/\n {21}/g, " ");
  for (const p of Object.values(PRESETS)) {
    assertStringIncludes(help, `  ${p.name} `);
    assertStringIncludes(unwrapped, `needs: ${p.needs}`);
  }
  for (const line of help.split("\n")) assert(line.length <= 110, `help line too long: ${line}`);
  assert(presetSettings("tiny", "x") !== presetSettings("tiny", "x"), "each call gives a fresh copy");
});

Deno.test("reproduce cli: the closing printout shows both tables, or why Table 1 is missing", () => {
  const base = {
    outcomes: [{ name: "base", action: "skipped" as const, reason: "outputs complete", seconds: 0 }],
    table2: "# Table 2\n",
    report: "runs/x/report.html",
    manifest: "runs/x/pipeline.json",
    work: { trainingSteps: 0, kobestModels: 0, answersGenerated: 0, judgeCalls: 0 },
    seconds: 0.2,
  };
  const text = formatResult({ ...base, table1: "# Table 1\n" });
  for (const part of ["# Table 1", "# Table 2", "report: runs/x/report.html", "nothing ran"]) {
    assertStringIncludes(text, part);
  }
  assertStringIncludes(
    formatResult({ ...base, table1Skipped: "needs a judge" }),
    "not produced\n\nneeds a judge.",
  );
});
