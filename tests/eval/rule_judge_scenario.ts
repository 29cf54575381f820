/**
 * One small win-rate run for the rule judge, in process or served: three questions, a model answering in
 * Korean against one answering in English (the last answer identical), judged by the given judge.
 * @module
 */
import type { JudgmentRecord } from "../../eval/winrate/judgments.ts";
import { type JudgeEndpoint, runWinRate, type WinRateReport } from "../../eval/winrate/run.ts";

/** Runs the scenario in a fresh folder; the judgment records come back sorted by question id. */
export async function judgeKoreanVsEnglish(
  judge: JudgeEndpoint,
): Promise<{ report: WinRateReport; records: JudgmentRecord[] }> {
  const dir = await Deno.makeTempDir();
  const prompts = `${dir}/prompts.jsonl`;
  const questions = ["하늘은 왜 파란가요?", "김치 만드는 법을 알려 주세요.", "인사말을 써 주세요."];
  await Deno.writeTextFile(
    prompts,
    questions.map((q, i) => JSON.stringify({ id: `q${i}`, question: q })).join("\n"),
  );
  const write = (name: string, answers: string[]) =>
    Deno.writeTextFile(
      `${dir}/${name}.jsonl`,
      answers.map((answer, i) => JSON.stringify({ id: `q${i}`, answer })).join("\n"),
    );
  await write("ko", [
    "빛이 산란되기 때문입니다.",
    "배추를 절이고 양념을 버무립니다.",
    "안녕하세요, 반갑습니다.",
  ]);
  await write("en", ["Because of scattering.", "Salt the cabbage.", "안녕하세요, 반갑습니다."]);
  const report = await runWinRate({
    promptsPath: prompts,
    pairs: [{
      a: { name: "ko", source: { kind: "file", path: `${dir}/ko.jsonl` } },
      b: { name: "en", source: { kind: "file", path: `${dir}/en.jsonl` } },
    }],
    judge,
    resultsPath: `${dir}/judgments.jsonl`,
  });
  const records = (await Deno.readTextFile(`${dir}/judgments.jsonl`)).trim().split("\n")
    .map((l) => JSON.parse(l) as JudgmentRecord)
    .sort((x, y) => x.id.localeCompare(y.id));
  await Deno.remove(dir, { recursive: true });
  return { report, records };
}
