/**
 * The training tasks as a TRL user runs them: TRL's argument names (on the command line or in a `--config`
 * YAML file) give the same run, and the output folder is the one the Hugging Face Trainer leaves: the model
 * (or PEFT adapter) at its root, `checkpoint-<step>/`, `trainer_state.json` with `log_history`,
 * `training_args.json`; metrics named as TRL logs them; a Hub dataset's splits for training and evaluation.
 */
// deno-lint-ignore no-import-prefix
import { parquetWriteBuffer } from "npm:hyparquet-writer@0.17.0";
import { loadLlama, readParams } from "../../model/load.ts";
import { BUNDLED_DATA } from "../../model/tiny.ts";
import { parseTrainArgs } from "../../train/cli.ts";
import { train } from "../../train/trainer.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../asserts.ts";
import { GPU_TEST, testGpu } from "../helpers.ts";
import { FakeHub } from "../io/fake_hub.ts";
import { writeMicroModel } from "../model/micro_model.ts";

const quiet = { info: () => {}, progress: () => {} };
let micro: Promise<string> | undefined;
function microModel(): Promise<string> {
  micro ??= (async () => writeMicroModel(`${await Deno.makeTempDir({ prefix: "trl-" })}/model`))();
  return micro;
}

const readJson = async (path: string) => JSON.parse(await Deno.readTextFile(path));
const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

/** Runs a training task's command line in this process, on the test device. */
async function trainArgs(objective: "sft" | "dpo" | "orpo", args: string[]) {
  const parsed = parseTrainArgs(objective, args)!;
  return await train(parsed.config, { gpu: await testGpu(), log: quiet });
}

Deno.test(
  "deno task sft with TRL's names: flags and a --config YAML give one training_args.json; the Trainer's folder",
  GPU_TEST,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "trl-sft-" });
    try {
      const model = await microModel();
      const settings: [string, string][] = [
        ["model_name_or_path", model],
        ["dataset_name", BUNDLED_DATA.sft.pathname],
        ["max_steps", "4"],
        ["per_device_train_batch_size", "4"],
        ["learning_rate", "1e-3"],
        ["lr_scheduler_type", "cosine"],
        ["warmup_ratio", "0.25"],
        ["max_length", "48"],
        ["logging_steps", "2"],
        ["save_steps", "2"],
        ["eval_strategy", "steps"],
        ["eval_steps", "2"],
        ["eval_fraction", "0.05"],
        ["gradient_checkpointing", "false"],
      ];
      const out = `${root}/flags`;
      await trainArgs("sft", [...settings.flatMap(([k, v]) => [`--${k}`, v]), "--output_dir", out]);

      // The same settings from a YAML file, through the task's own entry point.
      const yaml = `${root}/sft.yaml`;
      const yamlOut = `${root}/yaml`;
      await Deno.writeTextFile(
        yaml,
        [...settings, ["output_dir", yamlOut]].map(([k, v]) => `${k}: ${/^[\w./-]+$/.test(v) ? v : `"${v}"`}`)
          .join("\n") + "\n",
      );
      const task = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("../../tasks/sft.ts", import.meta.url).pathname, "--config", yaml],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(task.code, 0, new TextDecoder().decode(task.stderr));
      const args = await readJson(`${out}/training_args.json`);
      const fromYaml = await readJson(`${yamlOut}/training_args.json`);
      assertEquals(fromYaml.output_dir, yamlOut);
      assertEquals({ ...fromYaml, output_dir: out }, args);
      assertEquals([args.learning_rate, args.per_device_train_batch_size, args.lr_scheduler_type], [
        1e-3,
        4,
        "cosine",
      ]);

      // The model at the root, unpadded checkpoints, the Trainer's state and arguments.
      for (const file of ["config.json", "model.safetensors", "tokenizer.json", "trainer_state.json"]) {
        assert(names(out).includes(file), `${file} is not at the root: ${names(out).join(", ")}`);
      }
      assertEquals(names(out).filter((n) => n.startsWith("checkpoint-")), ["checkpoint-2", "checkpoint-4"]);
      assertEquals(names(`${out}/checkpoint-4`), [
        "config.json",
        "model.safetensors",
        "optimizer.safetensors",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "trainer_state.json",
        "training_args.json",
      ]);
      await loadLlama(await testGpu(), out, { trainable: false, maxTokens: 8 });
      const state = await readJson(`${out}/trainer_state.json`);
      assertEquals([
        state.global_step,
        state.max_steps,
        state.logging_steps,
        state.save_steps,
        state.eval_steps,
      ], [
        4,
        4,
        2,
        2,
        2,
      ]);
      assert(
        state.epoch > 0 && state.num_train_epochs === 1 && state.train_batch_size === 4,
        JSON.stringify(state),
      );
      const log = state.log_history as Record<string, number>[];
      const trainLogs = log.filter((e) => "loss" in e), evals = log.filter((e) => "eval_loss" in e);
      assertEquals(trainLogs.map((e) => e.step), [2, 4]);
      assertEquals(evals.map((e) => e.step), [2, 4]);
      for (const e of trainLogs) {
        for (
          const key of [
            "loss",
            "learning_rate",
            "grad_norm",
            "epoch",
            "step",
            "num_tokens",
            "mean_token_accuracy",
          ]
        ) {
          assert(Number.isFinite(e[key]), `log_history entry lacks ${key}: ${JSON.stringify(e)}`);
        }
      }
      for (const key of ["eval_mean_token_accuracy", "eval_runtime", "eval_samples_per_second", "epoch"]) {
        assert(key in evals[0], key);
      }
      const summary = log.at(-1)!;
      assertEquals(summary.step, 4);
      for (const key of ["train_runtime", "train_loss", "train_samples_per_second", "total_flos"]) {
        assert(key in summary, `the summary lacks ${key}`);
      }
      // Sorted keys, as TrainerState.save_to_json writes them.
      const text = await Deno.readTextFile(`${out}/trainer_state.json`);
      assert(text.indexOf('"best_metric"') < text.indexOf('"global_step"'), "keys are not sorted");
      // metrics.jsonl streams the same entries; the last checkpoint's log_history is the root's but the summary.
      const lines = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      assertEquals(lines, log);
      assertEquals((await readJson(`${out}/checkpoint-4/trainer_state.json`)).log_history, log.slice(0, -1));
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

Deno.test(
  "ORPO with --use_peft: the adapter at the root, merged/ beside it, metrics and eval metrics named as TRL's",
  GPU_TEST,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "trl-orpo-" });
    try {
      const out = `${root}/run`;
      await trainArgs("orpo", [
        ...["--model_name_or_path", await microModel(), "--dataset_name", BUNDLED_DATA.preference.pathname],
        ...[
          "--output_dir",
          out,
          "--max_steps",
          "2",
          "--per_device_train_batch_size",
          "4",
          "--max_length",
          "48",
        ],
        ...["--use_peft", "--lora_r", "4", "--lora_alpha", "8", "--merge", "--eval_fraction", "0.05"],
      ]);
      const files = names(out);
      for (const f of ["adapter_config.json", "adapter_model.safetensors", "merged", "checkpoint-2"]) {
        assert(files.includes(f), `${f} missing: ${files.join(", ")}`);
      }
      assert(!files.includes("config.json"), "a full model's config.json beside the adapter");
      assert(names(`${out}/merged`).includes("config.json"), "merged/ holds a full model");
      const log = (await readJson(`${out}/trainer_state.json`)).log_history as Record<string, number>[];
      const [entry] = log.filter((e) => "loss" in e);
      for (
        const key of [
          "nll_loss",
          "log_odds_ratio",
          "log_odds_chosen",
          "rewards/chosen",
          "rewards/rejected",
          "rewards/accuracies",
          "rewards/margins",
          "logps/chosen",
          "logps/rejected",
        ]
      ) assert(key in entry, `${key} not logged: ${Object.keys(entry).join(", ")}`);
      const [ev] = log.filter((e) => "eval_loss" in e);
      for (
        const key of ["eval_rewards/chosen", "eval_rewards/margins", "eval_nll_loss", "eval_logps/rejected"]
      ) {
        assert(key in ev, `${key} not logged: ${Object.keys(ev).join(", ")}`);
      }
      const args = await readJson(`${out}/training_args.json`);
      assertEquals([args.use_peft, args.lora_r, args.lora_alpha, args.lora_target_modules], [
        true,
        4,
        8,
        ["q_proj", "v_proj"],
      ]);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

Deno.test(
  "--resume_from_checkpoint PATH continues from that checkpoint; a folder of the old layout is refused clearly",
  GPU_TEST,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "trl-resume-" });
    try {
      const base = [
        ...["--model_name_or_path", await microModel(), "--dataset_name", BUNDLED_DATA.sft.pathname],
        ...[
          "--max_steps",
          "4",
          "--per_device_train_batch_size",
          "4",
          "--max_length",
          "48",
          "--save_steps",
          "2",
        ],
        ...["--learning_rate", "1e-3"],
      ];
      const whole = await trainArgs("sft", [...base, "--output_dir", `${root}/whole`]);
      const again = await trainArgs("sft", [
        ...base,
        "--output_dir",
        `${root}/again`,
        "--resume_from_checkpoint",
        `${root}/whole/checkpoint-2`,
      ]);
      assertEquals([again.steps, again.stepsTaken], [4, 2]);
      const gpu = await testGpu();
      const weights = async (dir: string) =>
        await readParams(gpu, (await loadLlama(gpu, dir, { trainable: false, maxTokens: 8 })).params);
      const [a, b] = [await weights(whole.finalDir), await weights(`${root}/again`)];
      for (const [name, w] of a) assertEquals(b.get(name), w, name);

      // A run folder written before TRL's layout: final/, train_config.json, checkpoint-000004/.
      const old = `${root}/old`;
      await Deno.mkdir(`${old}/final`, { recursive: true });
      await Deno.mkdir(`${old}/checkpoint-000004`);
      await Deno.writeTextFile(`${old}/train_config.json`, "{}");
      await Deno.writeTextFile(
        `${old}/checkpoint-000004/trainer_state.json`,
        JSON.stringify({
          global_step: 4,
          epoch: 0.1,
          data_position: { epoch: 0, batch: 4 },
          fingerprint: "x",
        }),
      );
      const resume = await assertRejects(
        () => trainArgs("sft", [...base, "--output_dir", old, "--resume_from_checkpoint"]),
        Error,
      );
      assertStringIncludes(resume.message, "layout before TRL's");
      assertStringIncludes(resume.message, "--overwrite_output_dir");
      await assertRejects(
        () => trainArgs("sft", [...base, "--output_dir", old]),
        Error,
        "holds an earlier run",
      );
      await trainArgs("sft", [...base, "--output_dir", old, "--overwrite_output_dir"]);
      assertEquals(
        names(old).filter((n) => ["final", "train_config.json", "checkpoint-000004"].includes(n)),
        [],
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

Deno.test(
  "--dataset_name a Hub dataset: its train split trains, its test split evaluates, through the Hub cache",
  GPU_TEST,
  async () => {
    const pairs = (n: number, tag: string) =>
      Array.from({ length: n }, (_, i) => [`${tag} 질문 ${i}?`, "네, 맞아요.", "아니요."]);
    const parquet = (rows: string[][]) =>
      new Uint8Array(parquetWriteBuffer({
        columnData: ["prompt", "chosen", "rejected"].map((name, c) => ({
          name,
          data: rows.map((r) => r[c]),
          type: "STRING" as const,
        })),
      }));
    const hub = FakeHub.start([{
      type: "dataset",
      id: "org/ko-pairs",
      commit: "c".repeat(40),
      files: {
        "data/train-00000-of-00001.parquet": parquet(pairs(12, "train")),
        "data/test-00000-of-00001.parquet": parquet(pairs(3, "test")),
      },
    }]);
    const root = await Deno.makeTempDir({ prefix: "trl-hub-" });
    const saved = ["HF_ENDPOINT", "HF_HUB_CACHE"].map((k) => [k, Deno.env.get(k)] as const);
    Deno.env.set("HF_ENDPOINT", hub.endpoint);
    Deno.env.set("HF_HUB_CACHE", `${root}/cache`);
    try {
      const messages: string[] = [];
      const parsed = parseTrainArgs("dpo", [
        ...["--model_name_or_path", await microModel(), "--dataset_name", "org/ko-pairs"],
        ...["--output_dir", `${root}/run`, "--max_steps", "2", "--per_device_train_batch_size", "4"],
        ...["--max_length", "48", "--eval_strategy", "steps", "--learning_rate", "1e-4"],
      ])!;
      await train(parsed.config, {
        gpu: await testGpu(),
        log: { info: (m) => messages.push(m), progress: () => {} },
      });
      const said = messages.join("\n");
      assertStringIncludes(said, 'org/ko-pairs: split "train" from 1 file(s)');
      assertStringIncludes(said, 'org/ko-pairs: split "test" from 1 file(s)');
      assertStringIncludes(said, "12 training and 3 evaluation examples");
      const log = (await readJson(`${root}/run/trainer_state.json`)).log_history as Record<string, number>[];
      assert(log.some((e) => "eval_rewards/accuracies" in e), "no DPO evaluation logged");
      const validation = parseTrainArgs("dpo", [
        ...["--model_name_or_path", await microModel(), "--dataset_name", "org/ko-pairs"],
        ...["--output_dir", `${root}/x`, "--dataset_train_split", "validation"],
      ])!.config;
      const gpu = await testGpu();
      await assertRejects(
        () => train(validation, { gpu, log: quiet }),
        Error,
        'org/ko-pairs: no "validation" split (it has "train", "test")',
      );
    } finally {
      for (const [k, v] of saved) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
      await hub.close();
      await Deno.remove(root, { recursive: true });
    }
  },
);
