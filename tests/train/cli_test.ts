import { checkValue, type Setting } from "../../io/settings.ts";
import { parseTrainArgs, trainTable, trainUsage } from "../../train/cli.ts";
import { SETTINGS, type TrainConfig, trainSettings } from "../../train/config.ts";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../asserts.ts";

const REQUIRED = ["--model_name_or_path", "m", "--dataset_name", "d.jsonl", "--output_dir", "o"];

Deno.test("train command line: the help names every flag the command line accepts, with its default", () => {
  for (const objective of ["sft", "dpo", "orpo"] as const) {
    const help = trainUsage(objective);
    for (const s of Object.values(trainTable(objective)) as Setting[]) {
      for (const flag of [s.name, ...(s.aliases ?? [])]) {
        assert(help.includes(`--${flag}`), `${objective}: --${flag} is not in the help`);
      }
    }
    for (const line of help.split("\n")) assert(line.length <= 110, `help line too long: ${line}`);
  }
  const flat = (text: string) => text.replace(/\n +/g, " ");
  assertStringIncludes(flat(trainUsage("sft")), "(default 2e-5, TRL's for SFT; also --lr)");
  assertStringIncludes(flat(trainUsage("dpo")), "(default 1e-6, TRL's for DPO; also --lr)");
  assertStringIncludes(trainUsage("orpo"), "--logging_steps N");
  assert(!trainUsage("sft").includes("--loss_type"), "SFT has no DPO loss type");
  assert(!trainUsage("orpo").includes("--loss_type"), "ORPO has no DPO loss type");
});

Deno.test("train command line: each setting's flag sets it, with the value the flag gives", async () => {
  const template = await Deno.makeTempFile({ suffix: ".jinja" });
  await Deno.writeTextFile(template, "{{ messages }}");
  const table = trainSettings("orpo") as unknown as Record<keyof TrainConfig, Setting>;
  for (const [key, s] of Object.entries(table) as [keyof TrainConfig, Setting][]) {
    if (["model", "data", "out", "lora"].includes(key)) continue;
    let arg: string[], want: unknown;
    if (s.kind === "int" || s.kind === "float") {
      const n = [3, 0.5, 1e-3].find((v) => {
        if (v === s.default) return false;
        try {
          checkValue(s, v, "");
          return s.kind === "float" || Number.isInteger(v);
        } catch {
          return false;
        }
      })!;
      [arg, want] = [[`--${s.name}`, String(n)], n];
    } else if (s.kind === "string" && s.parse) [arg, want] = [[`--${s.name}`, template], "{{ messages }}"];
    else if (s.kind === "string") {
      const choice = s.choices?.at(-1) ?? "x";
      [arg, want] = [[`--${s.name}`, choice], choice];
    } else if (s.kind === "list") [arg, want] = [[`--${s.name}`, "a", "b"], ["a", "b"]];
    else if (s.kind === "optional-string") {
      [arg, want] = [[`--${s.name}`, "o/checkpoint-4"], "o/checkpoint-4"];
    } else [arg, want] = s.default === true ? [[`--no_${s.name}`], false] : [[`--${s.name}`], true];
    // Each flag alone; --merge and --f16_base need LoRA.
    const config = parseTrainArgs("orpo", [...REQUIRED, "--use_peft", ...arg])!.config;
    assertEquals(config[key], want, `--${s.name}`);
    assert(config[key] !== s.default, `--${s.name} gave its default`);
  }
  await Deno.remove(template);
});

Deno.test("train command line: kebab-case, the earlier flags and TRL's defaults", () => {
  const kebab = parseTrainArgs("sft", [
    "--model-name-or-path",
    "m",
    "--dataset-name",
    "d.jsonl",
    "--output-dir",
    "o",
    "--per-device-train-batch-size",
    "4",
  ])!.config;
  const earlier =
    parseTrainArgs("sft", ["--model", "m", "--data", "d.jsonl", "--out", "o", "--batch-size", "4"])!
      .config;
  assertEquals(kebab, earlier);
  assertEquals(
    [kebab.lr, kebab.epochs, kebab.maxSteps, kebab.logEvery, kebab.saveEvery, kebab.maxLength],
    [2e-5, 3, -1, 10, 500, 1024],
  );
  assertEquals([kebab.gradientCheckpointing, kebab.evalStrategy, kebab.saveTotalLimit], [
    true,
    "no",
    undefined,
  ]);
  assertEquals(parseTrainArgs("orpo", [...REQUIRED, "--lambda", "0.3"])!.config.beta, 0.3);
  assertEquals(parseTrainArgs("orpo", [...REQUIRED, "--lambda", "0.3", "--beta", "0.2"])!.config.beta, 0.2);
  assertThrows(
    () => parseTrainArgs("orpo", [...REQUIRED, "--lambda", "x"]),
    Error,
    '--lambda: expected a number > 0, got "x"',
  );
  assertThrows(() => parseTrainArgs("sft", [...REQUIRED, "--beta", "0.1"]), Error, "unknown flag --beta");
  // Evaluation is on when evaluation data is asked for, unless a strategy says otherwise.
  assertEquals(parseTrainArgs("sft", [...REQUIRED, "--eval_fraction", "0.1"])!.config.evalStrategy, "steps");
  assertEquals(
    parseTrainArgs("sft", [...REQUIRED, "--eval_fraction", "0.1", "--eval_strategy", "epoch"])!.config
      .evalStrategy,
    "epoch",
  );
});

Deno.test("train command line: --use_peft and the LoRA flags, as TRL's ModelConfig", () => {
  const lora = (...args: string[]) => parseTrainArgs("sft", [...REQUIRED, ...args])!.config.lora;
  assertEquals(lora(), undefined);
  assertEquals(lora("--use_peft"), { r: 16, alpha: 32, targets: ["q_proj", "v_proj"], rslora: false });
  assertEquals(
    lora(
      "--use_peft",
      "--lora_r",
      "8",
      "--lora_alpha",
      "16",
      "--lora_target_modules",
      "q_proj",
      "down_proj",
      "--use_rslora",
    ),
    { r: 8, alpha: 16, targets: ["q_proj", "down_proj"], rslora: true },
  );
  assertEquals(lora("--use_peft", "--lora-targets", "q_proj,k_proj")?.targets, ["q_proj", "k_proj"]);
  assertEquals(lora("--use_peft", "--lora_target_modules", "all-linear")?.targets.length, 7);
  assertThrows(() => lora("--lora_r", "8"), Error, "--lora_r needs --use_peft");
  assertThrows(
    () => lora("--use_peft", "--lora_dropout", "0.05"),
    Error,
    "--lora_dropout: expected 0 (no dropout",
  );
  assertThrows(
    () => lora("--use_peft", "--lora_target_modules", "qkv"),
    Error,
    '--lora_target_modules: LoRA target "qkv"',
  );
  assertThrows(() => lora("--merge"), Error, "--merge: expected --use_peft to be set");
});

Deno.test("train command line: --config YAML gives what the same flags give", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const yaml = `${dir}/dpo.yaml`;
    await Deno.writeTextFile(
      yaml,
      [
        "model_name_or_path: m",
        "dataset_name: d.jsonl",
        "output_dir: o",
        "learning_rate: 5.0e-7",
        "per_device_train_batch_size: 2",
        "gradient_accumulation_steps: 4",
        "lr_scheduler_type: cosine",
        "beta: 0.05",
        "loss_type: ipo",
        "use_peft: true",
        "lora_target_modules: [q_proj, v_proj, o_proj]",
        "gradient_checkpointing: false",
        "",
      ].join("\n"),
    );
    const flags = parseTrainArgs("dpo", [
      ...REQUIRED,
      "--learning_rate",
      "5e-7",
      "--per_device_train_batch_size",
      "2",
      "--gradient_accumulation_steps",
      "4",
      "--lr_scheduler_type",
      "cosine",
      "--beta",
      "0.05",
      "--loss_type",
      "ipo",
      "--use_peft",
      "--lora_target_modules",
      "q_proj",
      "v_proj",
      "o_proj",
      "--gradient_checkpointing",
      "false",
    ])!.config;
    assertEquals(parseTrainArgs("dpo", ["--config", yaml])!.config, flags);
    // Flags on the command line win over the file.
    assertEquals(parseTrainArgs("dpo", ["--config", yaml, "--beta", "0.2"])!.config.beta, 0.2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train command line: SETTINGS names each setting once, in TRL's spelling", () => {
  const names = Object.values(SETTINGS).map((s) => s.name);
  assertEquals(new Set(names).size, names.length);
  for (const name of names) assert(/^[a-z0-9_]+$/.test(name), `${name} is not snake_case`);
});
