/**
 * Training inputs a careful user gets wrong: an output folder holding an earlier run, `--resume` with
 * nothing to resume, temporary folders of a killed save, data in another encoding, a config that does not
 * describe its weights, weights that are already NaN, a damaged trainer_state.json. Each gets an error that
 * names the real cause and the file (or a warning with a count), and nothing already written is lost.
 */
import { loadDataset } from "../../io/datasets.ts";
import { SafetensorsFile, writeSafetensors } from "../../io/safetensors.ts";
import { loadLlama } from "../../model/load.ts";
import { BUNDLED_DATA } from "../../model/tiny.ts";
import { lockRunFolder } from "../../train/checkpoint.ts";
import { parseTrainArgs } from "../../train/cli.ts";
import { type TrainConfig, withDefaults } from "../../train/config.ts";
import { train } from "../../train/trainer.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes, assertThrows } from "../asserts.ts";
import { GPU_TEST, testGpu } from "../helpers.ts";
import { writeMicroModel } from "../model/micro_model.ts";

let micro: Promise<string> | undefined;
function microModel(): Promise<string> {
  micro ??= (async () => writeMicroModel(`${await Deno.makeTempDir({ prefix: "inputs-" })}/model`))();
  return micro;
}

/** A short SFT run into `out`; returns the messages it logged. */
async function trainSmall(out: string, over: Partial<TrainConfig> = {}, model?: string) {
  const messages: string[] = [];
  const cfg = withDefaults("sft", {
    model: model ?? await microModel(),
    data: [BUNDLED_DATA.sft.pathname],
    out,
    maxLength: 48,
    batchSize: 4,
    maxSteps: 2,
    lr: 1e-3,
    ...over,
  });
  const result = await train(cfg, {
    gpu: await testGpu(),
    log: { info: (m) => messages.push(m), progress: () => {} },
  });
  return { result, messages };
}

/** Copies the micro model into `dir`, then lets `edit` change its config and tensors. */
async function editedModel(
  dir: string,
  edit: (
    config: Record<string, unknown>,
    tensors: Map<string, { shape: number[]; data: Float32Array }>,
  ) => void,
): Promise<string> {
  const from = await microModel();
  await Deno.mkdir(dir, { recursive: true });
  for await (const e of Deno.readDir(from)) await Deno.copyFile(`${from}/${e.name}`, `${dir}/${e.name}`);
  const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  const file = await SafetensorsFile.open(`${dir}/model.safetensors`);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const name of file.names()) {
    tensors.set(name, { shape: [...file.info(name).shape], data: await file.readF32(name) });
  }
  edit(config, tensors);
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
  await writeSafetensors(
    `${dir}/model.safetensors`,
    Object.fromEntries([...tensors].map(([n, t]) => [n, { dtype: "F32" as const, ...t }])),
    { format: "pt" },
  );
  return dir;
}

Deno.test(
  "trainer: a fresh run into a folder holding an earlier run's checkpoints is refused",
  GPU_TEST,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "overwrite-" });
    try {
      await trainSmall(`${root}/run`);
      const err = await assertRejects(() => trainSmall(`${root}/run`), Error);
      assertStringIncludes(err.message, `${root}/run`);
      assertStringIncludes(err.message, "--overwrite_output_dir");
      assertStringIncludes(err.message, "--resume_from_checkpoint");
      const state = `${root}/run/checkpoint-2/trainer_state.json`;
      assert(
        await Deno.stat(state).then(() => true, () => false),
        "the earlier run's checkpoint was removed",
      );
      // --overwrite-output-dir replaces them, and says so.
      const again = await trainSmall(`${root}/run`, { overwriteOutputDir: true });
      assert(
        again.messages.some((m) => m.includes("removed 1 checkpoint(s) of an earlier run")),
        again.messages.join("\n"),
      );
      assertEquals(again.result.steps, 2);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

Deno.test("trainer: --resume with nothing to resume from is an error", GPU_TEST, async () => {
  const root = await Deno.makeTempDir({ prefix: "resume-nothing-" });
  try {
    const err = await assertRejects(() => trainSmall(`${root}/fresh`, { resume: true }), Error);
    assertStringIncludes(err.message, `${root}/fresh`);
    assertStringIncludes(err.message, "no checkpoint");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("train command line: --overwrite-output-dir, and not together with --resume", () => {
  const args = ["--model", "m", "--data", "d.jsonl", "--out", "o"];
  assertEquals(parseTrainArgs("sft", [...args, "--overwrite-output-dir"])!.config.overwriteOutputDir, true);
  assertEquals(parseTrainArgs("sft", args)!.config.overwriteOutputDir, false);
  assertThrows(
    () => parseTrainArgs("sft", [...args, "--overwrite-output-dir", "--resume"]),
    Error,
    "--resume",
  );
  // The embedded default run replaces its own folder (runs/sft-tiny) unless told to resume.
  assertEquals(parseTrainArgs("sft", [])!.config.overwriteOutputDir, true);
  assertEquals(parseTrainArgs("sft", ["--resume"])!.config.overwriteOutputDir, false);
  assertEquals(parseTrainArgs("sft", ["--out", "o"])!.config.overwriteOutputDir, false);
  assertEquals(parseTrainArgs("sft", [...args, "--ignore-unused-weights"])!.config.ignoreUnusedWeights, true);
});

Deno.test(
  "trainer: temporary folders of a killed save are removed on the next run, which says so",
  GPU_TEST,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "stale-" });
    try {
      const out = `${root}/run`;
      await trainSmall(out, { maxSteps: 4, saveEvery: 2 });
      // What a kill during saves leaves: a checkpoint and a final model half-written by a process now gone.
      const dead = 999_999_999;
      const stale = [`.checkpoint-4.tmp-${dead}-k3j9x1q0`, `.model.tmp-${dead}-a1b2c3`];
      for (const name of stale) {
        await Deno.mkdir(`${out}/${name}`);
        await Deno.writeFile(`${out}/${name}/model.safetensors`, new Uint8Array(1 << 16));
      }
      // Not ours: kept.
      await Deno.mkdir(`${out}/.notes.tmp-${dead}-zz`);
      const { messages } = await trainSmall(out, { maxSteps: 4, saveEvery: 2, resume: true });
      const said = messages.find((m) => m.includes("stale temporary"));
      assert(said !== undefined, `nothing said about the stale folders:\n${messages.join("\n")}`);
      assertStringIncludes(said, "removed 2");
      for (const name of stale) {
        assertEquals(
          await Deno.stat(`${out}/${name}`).then(() => true, () => false),
          false,
          `${name} is still there`,
        );
      }
      assert(
        await Deno.stat(`${out}/.notes.tmp-${dead}-zz`).then(() => true, () => false),
        "removed a folder not ours",
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

Deno.test("datasets: training data that is not UTF-8 is an error naming the file and line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/cp949.jsonl`;
    const utf8 = new TextEncoder().encode('{"text": "안녕하세요"}\n');
    // "안녕" in CP949 (EUC-KR): not UTF-8.
    const cp949 = Uint8Array.from([
      ...new TextEncoder().encode('{"text": "'),
      0xbe,
      0xc8,
      0xb3,
      0xe7,
      0x22,
      0x7d,
      0x0a,
    ]);
    await Deno.writeFile(path, new Uint8Array([...utf8, ...cp949, ...utf8]));
    const err = await assertRejects(() => loadDataset(path), Error);
    assertStringIncludes(err.message, `${path}:2: not valid UTF-8 (1 line(s) affected)`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(
  "loading: tensors the config does not use are an error unless ignored, with a count",
  GPU_TEST,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "unused-" });
    try {
      const gpu = await testGpu();
      const fewer = await editedModel(`${root}/fewer`, (config) => config.num_hidden_layers = 1);
      const err = await assertRejects(() => loadLlama(gpu, fewer, { trainable: true, maxTokens: 64 }), Error);
      assertStringIncludes(
        err.message,
        "layers 1–1, beyond num_hidden_layers = 1 (the weights hold 2 layers)",
      );
      assertStringIncludes(err.message, "--ignore-unused-weights");
      // Training refuses it too, before anything is trained; with the flag it trains, with a warning.
      await assertRejects(() => trainSmall(`${root}/run`, {}, fewer), Error, "num_hidden_layers = 1");
      const ignored = await trainSmall(`${root}/run2`, { ignoreUnusedWeights: true }, fewer);
      assert(
        ignored.messages.some((m) => m.includes("not used by config.json") && m.includes("ignored")),
        ignored.messages.join("\n"),
      );

      // Tied embeddings declared while the files hold a different lm_head.weight.
      const tied = await editedModel(`${root}/tied`, (config) => config.tie_word_embeddings = true);
      await assertRejects(
        () => loadLlama(gpu, tied, { trainable: false, maxTokens: 64 }),
        Error,
        "lm_head.weight, which differs from model.embed_tokens.weight although tie_word_embeddings is true",
      );
      // An lm_head.weight equal to the embeddings is what tying means: it loads.
      const same = await editedModel(`${root}/same`, (config, tensors) => {
        config.tie_word_embeddings = true;
        tensors.set("lm_head.weight", tensors.get("model.embed_tokens.weight")!);
      });
      await loadLlama(gpu, same, { trainable: false, maxTokens: 64 });
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

Deno.test(
  "trainer: NaN already in the loaded weights is named with its tensor and file, not blamed on --lr",
  GPU_TEST,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "nan-" });
    try {
      const broken = await editedModel(`${root}/broken`, (_, tensors) => {
        tensors.get("model.layers.1.post_attention_layernorm.weight")!.data[3] = NaN;
      });
      const err = await assertRejects(() => trainSmall(`${root}/run`, {}, broken), Error);
      assertStringIncludes(err.message, `${broken}/model.safetensors`);
      assertStringIncludes(err.message, '"model.layers.1.post_attention_layernorm.weight" holds 1 NaN');
      assert(!err.message.includes("--lr"), err.message);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

Deno.test("trainer: a damaged trainer_state.json is named with its path", GPU_TEST, async () => {
  const root = await Deno.makeTempDir({ prefix: "state-" });
  try {
    await trainSmall(`${root}/run`);
    const state = `${root}/run/checkpoint-2/trainer_state.json`;
    await Deno.writeTextFile(state, '{"global_step": 2, "epo');
    const err = await assertRejects(() => trainSmall(`${root}/run`, { resume: true }), Error);
    assertStringIncludes(err.message, state);
    assertStringIncludes(err.message, "not valid JSON");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("trainer: a second training process in the same run folder is refused", GPU_TEST, async () => {
  const root = await Deno.makeTempDir({ prefix: "lock-" });
  try {
    const lock = await lockRunFolder(`${root}/run`);
    await assertRejects(() => trainSmall(`${root}/run`), Error, "in use by another training process");
    lock.release();
    const { result } = await trainSmall(`${root}/run`);
    assertEquals(result.steps, 2);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test(
  "trainer: prompts whose last token merges into the completion are counted in the log",
  GPU_TEST,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "merge-" });
    try {
      const rows = [
        "대한민|국의 수도는 서울입니다.",
        "안녕하|세요, 반갑습니다.",
        "감사합니|다. 좋은 하루 되세요.",
      ]
        .map((r) => r.split("|")).map(([prompt, completion]) => JSON.stringify({ prompt, completion }));
      await Deno.writeTextFile(`${root}/pc.jsonl`, rows.join("\n") + "\n");
      const { messages } = await trainSmall(`${root}/run`, {
        data: [`${root}/pc.jsonl`],
        batchSize: 2,
        maxSteps: 1,
      });
      assert(
        messages.some((m) => /\d+ prompt\(s\) whose last token merges into the completion/.test(m)),
        messages.join("\n"),
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);
