import { readAnswers } from "../../eval/winrate/answers.ts";
import { answerWithModel } from "../../pipeline/answers.ts";
import { assertEquals } from "../asserts.ts";
import { GPU_TEST, testGpu } from "../helpers.ts";
import { writeMicroModel } from "../model/micro_model.ts";

Deno.test(
  "answers from a local model: generated greedily once per prompt, kept on rerun, long prompts shortened to fit",
  GPU_TEST,
  async () => {
    const gpu = await testGpu();
    const dir = await Deno.makeTempDir();
    const model = await writeMicroModel(`${dir}/model`);
    const prompts = `${dir}/prompts.jsonl`;
    const long = "아주 긴 질문입니다. ".repeat(80);
    await Deno.writeTextFile(
      prompts,
      [{ id: "short", question: "안녕?" }, { id: "long", question: long }, { id: "third", question: "김치?" }]
        .map((r) => JSON.stringify(r)).join("\n"),
    );
    const options = {
      modelDir: model,
      label: "PT",
      promptsPath: prompts,
      outPath: `${dir}/answers/pt.jsonl`,
      maxNewTokens: 5,
      contextTokens: 128,
      gpu,
    };
    const first = await answerWithModel({ ...options, limit: 2 });
    assertEquals(first, { generated: 2, kept: 0, truncated: 1, template: "model" });
    const answers = await readAnswers(options.outPath);
    assertEquals([...answers.keys()].sort(), ["long", "short"]);
    const more = await answerWithModel({ ...options, limit: 3 });
    assertEquals([more.generated, more.kept], [1, 2]);
    const again = await readAnswers(options.outPath);
    assertEquals(again.get("short"), answers.get("short"), "kept answers are not regenerated");
    // Greedy decoding: a fresh file gets the same answers.
    const fresh = await answerWithModel({ ...options, limit: 3, outPath: `${dir}/answers/fresh.jsonl` });
    assertEquals(fresh.generated, 3);
    assertEquals(await readAnswers(`${dir}/answers/fresh.jsonl`), again);
  },
);
