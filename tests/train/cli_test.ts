import { type Setting, SETTINGS, type TrainConfig } from "../../train/config.ts";
import { parseTrainArgs, trainUsage } from "../../train/cli.ts";
import { assert, assertEquals, assertThrows } from "../asserts.ts";

const REQUIRED = ["--model", "m", "--data", "d.jsonl", "--out", "o"];
const settings = Object.entries(SETTINGS) as [keyof TrainConfig, Setting<unknown>][];

Deno.test("train command line: the help names every flag the command line accepts", () => {
  const help = ["sft", "dpo", "orpo"].map((o) => trainUsage(o as "sft")).join("\n");
  const flags = settings.flatMap(([, s]) => [s.flag, ...(s.aliases ?? [])]);
  for (const flag of [...flags, "lora-alpha", "lora-targets", "rslora"]) {
    assert(help.includes(`--${flag}`), `--${flag} is not in the help`);
  }
});

Deno.test("train command line: each setting's flag sets it, with the value the flag gives", async () => {
  const template = await Deno.makeTempFile({ suffix: ".jinja" });
  await Deno.writeTextFile(template, "{{ messages }}");
  for (const [key, s] of settings) {
    if (s.explicit) continue;
    let arg: string[], want: unknown;
    if (s.type === "number") {
      const n = [3, 0.5, 1e-3].find((v) => !s.check || s.check.ok(v))!;
      [arg, want] = [[`--${s.flag}`, String(n)], n];
    } else if (s.type === "string") {
      const choice = s.check?.expected.split(" | ").at(-1) ?? "x";
      [arg, want] = [[`--${s.flag}`, choice], choice];
    } else if (s.type === "strings") [arg, want] = [[`--${s.flag}`, "a", `--${s.flag}`, "b"], ["a", "b"]];
    else if (s.type === "file") [arg, want] = [[`--${s.flag}`, template], "{{ messages }}"];
    else [arg, want] = [[`--${s.flag}`], s.type === "boolean"];
    // Each flag alone (--resume and --overwrite-output-dir exclude each other); --merge and --f16-base need LoRA.
    const config = parseTrainArgs("orpo", [...REQUIRED, "--lora-r", "4", ...arg])!.config;
    assertEquals(config[key], want, `--${s.flag}`);
    assert(config[key] !== s.default, `--${s.flag} gave its default`);
  }
  await Deno.remove(template);
});

Deno.test("train command line: a setting's alias sets it unless its own flag is given", () => {
  assertEquals(parseTrainArgs("orpo", [...REQUIRED, "--lambda", "0.3"])!.config.beta, 0.3);
  assertEquals(parseTrainArgs("orpo", [...REQUIRED, "--beta", "0.2", "--lambda", "0.3"])!.config.beta, 0.2);
  assertThrows(
    () => parseTrainArgs("orpo", [...REQUIRED, "--lambda", "x"]),
    Error,
    '--lambda: expected a number, got "x"',
  );
});
