import {
  checkRequired,
  expectedOf,
  formatSettingValue,
  HTTP_URL,
  parseSettings,
  secretFromEnv,
  settingsHelp,
  type SettingsTable,
  validateSettings,
  withTableDefaults,
} from "../../io/settings.ts";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../asserts.ts";

const TABLE = {
  learningRate: {
    name: "learning_rate",
    aliases: ["lr"],
    kind: "float",
    range: { min: 0 },
    default: 2e-5,
    help: "peak learning rate",
    group: "optimisation",
  },
  maxSteps: { name: "max_steps", kind: "int", range: { min: -1 }, default: -1, help: "steps" },
  warmupRatio: {
    name: "warmup_ratio",
    kind: "float",
    range: { min: 0, max: 1, maxExclusive: true },
    default: 0,
    help: "warm-up share",
  },
  schedule: {
    name: "lr_scheduler_type",
    kind: "string",
    choices: ["linear", "cosine"],
    default: "linear",
    help: "schedule",
  },
  targets: { name: "lora_target_modules", kind: "list", default: ["q_proj", "v_proj"], help: "targets" },
  checkpointing: { name: "gradient_checkpointing", kind: "bool", default: true, help: "recompute" },
  usePeft: { name: "use_peft", kind: "bool", default: false, help: "LoRA" },
  resume: { name: "resume_from_checkpoint", kind: "optional-string", metavar: "PATH", help: "resume" },
  shots: {
    name: "shots",
    kind: "string",
    help: "shot settings",
    parse: (text: string, where: string) => {
      const n = text.split(",").map(Number);
      if (n.some((x) => !Number.isInteger(x))) throw new Error(`${where}: expected integers`);
      return n;
    },
  },
} satisfies SettingsTable;

Deno.test("settings: TRL's snake_case, kebab-case and aliases all set one setting", () => {
  for (const args of [["--learning_rate", "3e-4"], ["--learning-rate=3e-4"], ["--lr", "3e-4"]]) {
    assertEquals(parseSettings(TABLE, args).values.learningRate, 3e-4, args.join(" "));
  }
  // The last occurrence wins, as argparse's.
  assertEquals(parseSettings(TABLE, ["--lr", "1", "--learning_rate", "2"]).values.learningRate, 2);
  const { values, sources } = parseSettings(TABLE, ["--max-steps", "-1", "--shots", "0,5"]);
  assertEquals([values.maxSteps, values.shots], [-1, [0, 5]]);
  assertEquals(sources.maxSteps, "--max-steps");
});

Deno.test("settings: booleans as the Hugging Face parser takes them", () => {
  const bool = (...args: string[]) => parseSettings(TABLE, args).values.checkpointing;
  assertEquals(bool("--gradient_checkpointing"), true);
  assertEquals(bool("--gradient_checkpointing", "false"), false);
  assertEquals(bool("--gradient-checkpointing=False"), false);
  assertEquals(bool("--no_gradient_checkpointing"), false);
  assertEquals(bool("--no-gradient-checkpointing"), false);
  assertEquals(bool(), undefined);
  // A word that is not a boolean is not taken as the flag's value.
  assertThrows(() => parseSettings(TABLE, ["--use_peft", "maybe"]), Error, 'unexpected argument "maybe"');
  assertThrows(
    () => parseSettings(TABLE, ["--use_peft=maybe"]),
    Error,
    '--use_peft: expected true or false, got "maybe"',
  );
});

Deno.test("settings: lists take every word up to the next flag and may repeat; optional values", () => {
  const { values } = parseSettings(TABLE, [
    "--lora_target_modules",
    "q_proj",
    "k_proj",
    "--use_peft",
    "--lora-target-modules",
    "o_proj",
  ]);
  assertEquals(values.targets, ["q_proj", "k_proj", "o_proj"]);
  assertEquals(parseSettings(TABLE, ["--resume_from_checkpoint"]).values.resume, true);
  assertEquals(parseSettings(TABLE, ["--resume_from_checkpoint", "--use_peft"]).values.resume, true);
  assertEquals(
    parseSettings(TABLE, ["--resume_from_checkpoint", "out/checkpoint-20"]).values.resume,
    "out/checkpoint-20",
  );
  assertEquals(parseSettings(TABLE, ["--resume_from_checkpoint", "false"]).values.resume, undefined);
});

Deno.test("settings: bad values and unknown flags name the flag and what was expected", () => {
  const cases: [string[], string][] = [
    [["--learning_rate", "fast"], '--learning_rate: expected a number ≥ 0, got "fast"'],
    [["--lr", "-1"], "--lr: expected a number ≥ 0, got -1"],
    [["--max_steps", "2.5"], '--max_steps: expected an integer ≥ -1, got "2.5"'],
    [["--warmup-ratio", "1"], "--warmup-ratio: expected a number in [0, 1), got 1"],
    [
      ["--lr_scheduler_type", "cosine_with_restarts"],
      '--lr_scheduler_type: expected linear | cosine, got "cosine_with_restarts"',
    ],
    [["--shots", "0,x"], "--shots: expected integers"],
    [["--learning_rat", "1"], "unknown flag --learning_rat; did you mean --learning_rate?"],
    [["--max_steps"], "--max_steps: expected an integer ≥ -1, got nothing"],
    [["stray"], 'unexpected argument "stray"'],
    [["-x"], "unknown flag -x"],
  ];
  for (const [args, message] of cases) assertThrows(() => parseSettings(TABLE, args), Error, message);
  assertEquals(parseSettings(TABLE, ["a", "b"], { positionals: true }).positionals, ["a", "b"]);
  assertEquals(parseSettings(TABLE, ["-h"]).help, true);
});

Deno.test("settings: --config reads YAML or JSON of the same names; the command line wins", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/run.yaml`,
      "# TRL-style\nlearning_rate: 1.0e-4\nlr-scheduler-type: cosine\nlora_target_modules: [q_proj, o_proj]\n" +
        "gradient_checkpointing: false\nmax_steps: null\nresume_from_checkpoint: true\n",
    );
    const fromFile = parseSettings(TABLE, ["--config", `${dir}/run.yaml`]);
    assertEquals(fromFile.values, {
      learningRate: 1e-4,
      schedule: "cosine",
      targets: ["q_proj", "o_proj"],
      checkpointing: false,
      resume: true,
    });
    assertEquals(fromFile.sources.learningRate, `${dir}/run.yaml: learning_rate`);
    const both = parseSettings(TABLE, [`--config=${dir}/run.yaml`, "--lr", "5e-5"]);
    assertEquals([both.values.learningRate, both.values.schedule], [5e-5, "cosine"]);

    await Deno.writeTextFile(`${dir}/run.json`, JSON.stringify({ max_steps: 7, warmup_ratio: "0.1" }));
    assertEquals(parseSettings(TABLE, ["--config", `${dir}/run.json`]).values, {
      maxSteps: 7,
      warmupRatio: 0.1,
    });

    const bad: [string, string][] = [
      ["learning_rate: -1\n", "run.yaml: learning_rate: expected a number ≥ 0, got -1"],
      ["report_to: none\n", "run.yaml: report_to: unknown setting"],
      ["max_step: 3\n", "run.yaml: max_step: unknown setting; did you mean --max_steps?"],
      [
        "env:\n  A: 1\n",
        "run.yaml: env: setting environment variables from the config file is not supported",
      ],
      ["- a\n- b\n", "expected a mapping of setting names to values"],
      ["a: [\n", "not valid YAML"],
    ];
    for (const [text, message] of bad) {
      await Deno.writeTextFile(`${dir}/run.yaml`, text);
      assertThrows(() => parseSettings(TABLE, ["--config", `${dir}/run.yaml`]), Error, message);
    }
    assertThrows(
      () => parseSettings(TABLE, ["--config", `${dir}/none.yaml`]),
      Error,
      "none.yaml: cannot read it",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("settings: defaults, validation of built values, and the help shows defaults and ranges", () => {
  const all = withTableDefaults(TABLE, { maxSteps: 3 });
  assertEquals([all.learningRate, all.maxSteps, all.targets], [2e-5, 3, ["q_proj", "v_proj"]]);
  assert(all.targets !== TABLE.targets.default, "a list default is copied");
  assertThrows(
    () => validateSettings(TABLE, { warmupRatio: 2 }),
    Error,
    "--warmup_ratio: expected a number in [0, 1), got 2",
  );
  assertEquals(expectedOf(TABLE.maxSteps), "an integer ≥ -1");
  assertEquals([formatSettingValue(1e-6), formatSettingValue(2e-5), formatSettingValue(0.1)], [
    "1e-6",
    "2e-5",
    "0.1",
  ]);

  const help = settingsHelp(TABLE, { usage: "usage: x", groups: ["optimisation"] });
  for (const table of Object.values(TABLE)) assertStringIncludes(help, `--${table.name}`);
  assertStringIncludes(help, "optimisation\n  --learning_rate X");
  assertStringIncludes(help, "a number ≥ 0 (default 2e-5; also --lr)");
  assertStringIncludes(help, "linear | cosine (default linear)");
  assertStringIncludes(help, "--resume_from_checkpoint [PATH]");
  assertStringIncludes(help, "--config FILE");
  for (const line of help.split("\n")) assert(line.length <= 110, `help line too long: ${line}`);
});

Deno.test("settings: a table whose spellings collide is refused", () => {
  const clash = {
    a: { name: "max_len", kind: "int", help: "" },
    b: { name: "max-len", kind: "int", help: "" },
  } satisfies SettingsTable;
  assertThrows(() => parseSettings(clash, []), Error, '--max_len names both "a" and "b"');
});

Deno.test("settings: required settings, keys from named variables, and endpoint URLs", () => {
  const table = {
    model: { name: "model", kind: "string", required: true, help: "the model" },
    models: { name: "also", kind: "list", required: true, help: "more" },
    url: { name: "base_url", kind: "string", check: HTTP_URL, help: "endpoint" },
  } satisfies SettingsTable;
  assertThrows(() => checkRequired(table, { models: ["b"] }), Error, "--model is required");
  assertThrows(() => checkRequired(table, { model: "a", models: [] }), Error, "--also is required");
  checkRequired(table, { model: "a", models: ["b"] });
  assertStringIncludes(settingsHelp(table, { usage: "u" }), "the model (required)");
  assertEquals(parseSettings(table, ["--base-url", "HTTPS://h/v1"]).values.url, "HTTPS://h/v1");
  assertThrows(
    () => parseSettings(table, ["--base-url", "h:8000"]),
    Error,
    '--base-url: expected an http(s):// URL, got "h:8000"',
  );

  const env = (name: string) => ({ SET: "sk-1", EMPTY: "" } as Record<string, string>)[name];
  assertEquals(secretFromEnv("--key_env", "SET", { env }), "sk-1");
  assertEquals(secretFromEnv("--key_env", undefined, { env }), undefined, "nothing named, no fallback");
  assertEquals(secretFromEnv("--key_env", undefined, { env, fallback: "SET" }), "sk-1");
  assertEquals(
    secretFromEnv("--key_env", undefined, { env, fallback: "UNSET" }),
    undefined,
    "a fallback may be absent",
  );
  for (const name of ["UNSET", "EMPTY"]) {
    assertThrows(
      () => secretFromEnv("--key-env", name, { env, fallback: "SET" }),
      Error,
      `--key-env ${name}: the environment variable ${name} is unset or empty`,
    );
  }
});
