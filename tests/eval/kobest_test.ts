import {
  type CopaDoc,
  kobestDataDirOf,
  KobestDataError,
  kobestDataHelp,
  kobestHubFiles,
  type KobestTask,
  limitedCount,
  loadKobestSplit,
  parseKobestJsonl,
  parseKobestTsv,
} from "../../eval/kobest/data.ts";
import { FewshotSampler, renderShot } from "../../eval/kobest/fewshot.ts";
import { kobestPrompt } from "../../eval/kobest/prompts.ts";
import { kobestToPreference, kobestToSft, writeKobestTrainingData } from "../../eval/kobest/training.ts";
import { evaluateKobest, type RequestRecord } from "../../eval/kobest/evaluate.ts";
import { scoreRequests, type TokenEncoder, type TokenLogprobModel } from "../../eval/loglikelihood.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes, assertThrows } from "../asserts.ts";

const DATA = new URL("../../../shared/data/kobest", import.meta.url).pathname;

interface PythonReference {
  /** Documents in train, validation (dev) and test. */
  counts: number[];
  /** 0-shot context of the first test document. */
  zeroShot: string;
  /** 5-shot context of the first test document. */
  fiveShot: string;
  /** Train indices of the shots of test documents 0–3, drawn from one Random(1234) in order. */
  picks: number[][];
  /** SHA-256 (hex, UTF-8) of test document 3's 5-shot context. */
  doc3FiveShotSha256: string;
}

// Produced by `python3 tests/eval/kobest_reference.py /work/shared/data/kobest` (Python 3.11.7, csv +
// random modules only, following lm-eval's kobest configs and ContextSampler); pasted verbatim.
const PYTHON_REFERENCE: Record<KobestTask, PythonReference> = {
  boolq: {
    counts: [3665, 700, 1404],
    zeroShot:
      "콜라독립 815(815 Cola)는 코카콜라를 대한민국에서 라이선스로 만들어 오던 범양식품이 1998년 4월 1일에 출시한 탄산음료다. 질문: 콜라독립 815는 코카콜라에서 만들었나요? 답변: ",
    fiveShot:
      "소금물 타피는 설탕, 옥수수 녹말, 옥수수 시럽, 글리세린, 물, 버터, 소금, 향료, 그리고 식용색소로 구성되어 있다. 향료의 일부 예로는 바닐라, 레몬, 메이플, 바나나, 홍감초, 수박, 라즈베리, 민트 추출물이 있다. 이름에도 불구하고, 이 타피은 바닷물을 포함하지 않고, 소금과 물을 모두 포함하고 있다. 질문: 소금물 타피는 바닷물로 만들어졌는가? 답변:  아니오\n\n방켈 엔진은 왕복 운동을 하지 않는 회전 방식을 이용하는 내연 기관의 일종이다. 다시 말해 피스톤 왕복 운동을 하지 않고 압력을 회전 운동으로 변환한다. 질문: 방켈 엔진은 피스톤 운동을 한다.  답변:  아니오\n\n핵 실험을 할 경우 대기 중에서 제논이 검출된다. 이를 통해서 핵실험 유무를 파악할 수 있다. 보통 크세논이라고 하며, 카메라의 플래시나 등대의 플래시로 쓰인다. 질문: 제논은 보통 크세논이라고도 불리는가? 답변:  예\n\n레서판다과(Red Panda)는 아일루루스과(Ailurus)의 유일종이다. 이전에는 너구리과와 곰과에 속했지만, 계통발생학적 분석의 결과, 족제비, 너구리과, 스컹크과와 함께 슈퍼과 머스텔로이데아과에 속하는 것으로 드러났다. 레서판다는 자이언트 팬더와는 밀접한 관계가 없다. 질문: 래서판다는 자이언트 팬더와 관련이 있는가? 답변:  아니오\n\n아스타틴(←영어: Astatine 애스터틴[*])은 화학 원소로 기호는 At(←라틴어: Astatium 아스타티움[*]), 원자 번호는 85이다. 지금까지 발견된 비금속 중에서 가장 무거운 원소이며, 우라늄이나 토륨이 붕괴하면서 생성되는 방사성 원소이다. 질문: 아스타틴은 금속 중에가서 가장 무거운 원소인가? 답변:  아니오\n\n콜라독립 815(815 Cola)는 코카콜라를 대한민국에서 라이선스로 만들어 오던 범양식품이 1998년 4월 1일에 출시한 탄산음료다. 질문: 콜라독립 815는 코카콜라에서 만들었나요? 답변: ",
    picks: [[3187, 1805, 478, 30, 371], [3305, 2384, 143, 2750, 2838], [343, 403, 3139, 1452, 969], [
      71,
      126,
      3230,
      64,
      1417,
    ]],
    doc3FiveShotSha256: "837577273e3bc3d4c60abcd892d8b4591d59ceecddfcb6572810cd24f54b9149",
  },
  copa: {
    counts: [3076, 500, 1000],
    zeroShot: "새로 산 바지의 허리가 컸다.  그래서",
    fiveShot:
      "여성은 매니큐어를 지우려고 한다.  그래서 여성은 아세톤을 꺼냈다.\n\n동네 회의가 소집되었다.  그래서 동네 소장들이 다 모였다.\n\n자전거 바퀴가 터졌다.  그래서 자전거 바퀴를 교체했다.\n\n지갑이 두둑하다.  왜냐하면 지폐를 많이 채워 넣었다.\n\n고무공을 바닥에 떨어뜨렸다.  그래서 고무공이 바닥에 닿고 튕겼다.\n\n새로 산 바지의 허리가 컸다.  그래서",
    picks: [[1805, 478, 30, 371, 2384], [143, 2750, 2838, 343, 403], [1452, 969, 71, 126, 64], [
      1417,
      2655,
      2552,
      1983,
      2522,
    ]],
    doc3FiveShotSha256: "27b79777c900097e5861e797886a18c1420affdc1429683e0730d3803d5b2f73",
  },
  hellaswag: {
    counts: [2029, 500, 500],
    zeroShot:
      "문장: 여자는 새벽까지 잔업을 마치고 기지개를 켠다. 몇 시인지 확인하려고 핸드폰을 켜자 여자와 헤어진 남자친구의 메세지가 와 있다. 여자는 피곤과 짜증이 몰려와 답장하지 않는다.",
    fiveShot:
      "문장: 스펀지를 사용해서 메이크업을 하고나면 스펀지가 금세 더러워진다. 스펀지의 세균을 없애기 위해서 세척은 필수이다. 더러워진 스펀지의 겉면을 흐르는 물에 닦아낸다. 겉면이 닦여나가면 따뜻한 물에 비누를 조금 풀고 스펀지를 담근다.\n\n문장: 입욕제를 좋아하지만 비싼 돈 주고 매장에서 사기는 싫다면 집에서 직접 만들어 피부에 수분을 공급해 보자! 만드는 방법은 생각보다 간단하다. 일단 큰 그릇에 구연산, 베이킹 소다, 옥수수 전분을 넣는다. 넣은 후 손이나 믹서로 잘 섞어주고 엡솜염을 섞는다. 그 다음 분무기로 방금 섞은 가루가 살짝 적셔질 정도만 물을 뿌린다.\n\n문장: 침대 매트리스에서 보내는 시간이 사람의 전체 삶에서 약 3분의 1에 해당되는 것을 아는가. 그렇기 때문에 침대 매트리스를 청결하게 유지하는 것은 매우 중요하다. 매트리스 청소하는 일은 그다지 어려운 일이 아니다. 먼저 침대 시트를 벗겨낸다. 침구와 시트를 세탁기에 먼저 돌려 놓는다.\n\n문장: 차에 나무 수액이 묻은 것을 발견했다면 즉시 제거해야 한다. 수액을 제거하는 과정은 지루하고 차 표면이 손상될 가능성이 있으며 단순한 세차로 처리되지 않는 경우가 많다. 하지만 다음 방법을 따르면 손쉽게 수액을 제거할 수 있다. 일단 최대한 빨리 세차를 해야 한다. 차에 깨끗한 물을 뿌려 세차 준비를 한다.\n\n문장: 풍선 아치는 어떤 파티나 행사에도 더하기 좋은 소품입니다. 이는 인상적이고 복잡해 보이지만 사실 만드는 것은 꽤 간단합니다. 우선 기반이 될 철사를 찾거나 만드세요. 그 다음 자갈, 조약돌이나 모래로 채워진 들통에 아치의 양쪽 끝을 꽂아 고정시킵니다. 아치를 고정시킨 후 풍선 펌프를 사용하여 풍선 4개를 부세요.\n\n문장: 여자는 새벽까지 잔업을 마치고 기지개를 켠다. 몇 시인지 확인하려고 핸드폰을 켜자 여자와 헤어진 남자친구의 메세지가 와 있다. 여자는 피곤과 짜증이 몰려와 답장하지 않는다.",
    picks: [[1979, 1593, 902, 239, 15], [185, 1865, 1930, 1923, 1652], [1192, 71, 1375, 1419, 171], [
      201,
      1569,
      726,
      484,
      35,
    ]],
    doc3FiveShotSha256: "12b5b413985037a7bb6cee9d99a459a35ebbfee93bfc78573205d1a27655376f",
  },
  sentineg: {
    counts: [3649, 400, 397],
    zeroShot: "문장: 택배사 정말 마음에 듬 긍부정:",
    fiveShot:
      "문장: 배송 너무 느림 견딜 수가 없음 긍부정: 부정\n\n문장: 성능은 신용이 가지 않아요 긍부정: 부정\n\n문장: 너무 약해서 실망입니다 긍부정: 부정\n\n문장: 싸고 좋습니다! 긍부정: 긍정\n\n문장: 이거 쓰면 청소하기 편해요 긍부정: 긍정\n\n문장: 택배사 정말 마음에 듬 긍부정:",
    picks: [[3187, 1805, 478, 30, 371], [3305, 2384, 143, 2750, 2838], [343, 403, 3139, 1452, 969], [
      71,
      126,
      3230,
      64,
      1417,
    ]],
    doc3FiveShotSha256: "d1d3cc294315de4e1acda2523259b3884896bad0d21eaa26b8bbf33b218864c0",
  },
  wic: {
    counts: [3318, 610, 1260],
    zeroShot:
      "문장1: 토양에 [양분]이 풍부하여 나무가 잘 자란다. 문장2: 태아는 모체로부터 [양분]과 산소를 공급받게 된다. 두 문장에서 양분가 같은 뜻으로 쓰였나?",
    fiveShot:
      "문장1: 이 천은 푸른색의 [칼라]가 아주 선명하니 꼭 바다 같다. 문장2: 와이셔츠의 [칼라]는 여전히 눈부시게 청결했다. 두 문장에서 칼라가 같은 뜻으로 쓰였나? 아니오\n\n문장1: 막내는 수련회에서 쓸 실외용 [조리] 기구를 찾느라 정신이 없었다. 문장2: [조리]는 허용이 안 될 텐데 일단 어떻게 하는지 지켜보자. 두 문장에서 조리가 같은 뜻으로 쓰였나? 예\n\n문장1: [유해]가 장교 묘역에 안장되다. 문장2: 고인의 뜻에 따라 [유해]를 대학 병원에 기증했다. 두 문장에서 유해가 같은 뜻으로 쓰였나? 예\n\n문장1: [사제]가 된다면 자네는 가톨릭의 교리를 근수해야 하네. 문장2: [사제]가 성체(聖體)를 거양하면 신자들은 고개를 숙인다. 두 문장에서 사제가 같은 뜻으로 쓰였나? 예\n\n문장1: 기차는 [바퀴]를 덜그럭거리며 달렸다. 문장2: [바퀴]가 구렁텅이에 빠져 공전만 하고 있다. 두 문장에서 바퀴가 같은 뜻으로 쓰였나? 예\n\n문장1: 토양에 [양분]이 풍부하여 나무가 잘 자란다. 문장2: 태아는 모체로부터 [양분]과 산소를 공급받게 된다. 두 문장에서 양분가 같은 뜻으로 쓰였나?",
    picks: [[3187, 1805, 478, 30, 371], [3305, 2384, 143, 2750, 2838], [343, 403, 3139, 1452, 969], [
      71,
      126,
      3230,
      64,
      1417,
    ]],
    doc3FiveShotSha256: "f044a2c62252b2e30d6f749b56e45bb02f5c0b2301f900485a173796c2834dbc",
  },
};

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("kobest data: TSV traps (CRLF, no final newline, quotes, TRUE/False, empty rows dropped)", () => {
  const text = "ID\tText\tQuestion\tAnswer\r\n" +
    '1\t"그는 ""안녕""\t이라고 했다"\t말했나?\tTRUE\r\n' +
    "2\t문단\t\tFalse\r\n" + // empty Question: dropped, as the Hub loader drops it
    "3\t문단 셋\t질문 셋\tfalse\r\n" +
    "4\t문단 넷\t질문 넷\tTrue";
  assertEquals(parseKobestTsv(text, "boolq", "BoolQ/test.tsv"), [
    { paragraph: '그는 "안녕"\t이라고 했다', question: "말했나?", label: 1 },
    { paragraph: "문단 셋", question: "질문 셋", label: 0 },
    { paragraph: "문단 넷", question: "질문 넷", label: 1 },
  ]);
});

Deno.test("kobest data: SentiNeg columns are found by name in every split's order", () => {
  const train = parseKobestTsv("ID\tText\tLabel\r\n1\t좋아요\t1", "sentineg", "SentiNeg/train.tsv");
  const dev = parseKobestTsv("ID\tLabel\tText\r\n1\t0\t별로\r\n", "sentineg", "SentiNeg/dev.tsv");
  const test = parseKobestTsv(
    "ID\tLabel_origin\tText_origin\tLabel\tText\tCategory_neg\r\n1\t1\t좋다\t0\t좋지 않다\t2",
    "sentineg",
    "SentiNeg/test.tsv",
  );
  assertEquals([train, dev, test], [
    [{ sentence: "좋아요", label: 1 }],
    [{ sentence: "별로", label: 0 }],
    [{ sentence: "좋지 않다", label: 0 }], // the test split is scored on the negated sentence
  ]);
});

Deno.test("kobest data: COPA answers 1/2 become labels 0/1; the question keeps its raw spacing", () => {
  const docs = parseKobestTsv(
    "ID\tsentence\tquestion\t1\t2\tAnswer\r\n1\t비가 왔다.\t결과 \t우산을 썼다.\t춤을 췄다.\t1",
    "copa",
    "COPA/train.tsv",
  );
  assertEquals(docs, [{
    premise: "비가 왔다.",
    question: "결과 ",
    alternative_1: "우산을 썼다.",
    alternative_2: "춤을 췄다.",
    label: 0,
  }]);
  assertEquals(kobestPrompt("copa", docs[0] as CopaDoc).context, "비가 왔다.  그래서");
});

Deno.test("kobest data: bad input names file:line: field and what was expected", () => {
  assertThrows(
    () =>
      parseKobestTsv("ID\tTarget\tSENTENCE1\tSENTENCE2\tANSWER\n1\t배\t가\t나\tyes", "wic", "WiC/dev.tsv"),
    KobestDataError,
    "WiC/dev.tsv:2: ANSWER: expected a boolean",
  );
  assertThrows(
    () => parseKobestTsv("ID\tText\n1\t좋다", "sentineg", "SentiNeg/train.tsv"),
    KobestDataError,
    "SentiNeg/train.tsv:1: header: missing column(s) Label",
  );
  assertThrows(
    () =>
      parseKobestTsv(
        "context\tchoice1\tchoice2\tchoice3\tchoice4\tlabel\nc\ta\tb\tc\td\t4",
        "hellaswag",
        "h.tsv",
      ),
    KobestDataError,
    "h.tsv:2: label: expected an integer from 0 to 3",
  );
  assertThrows(
    () =>
      parseKobestJsonl(
        '{"premise":"p","question":"왜","alternative_1":"a","alternative_2":"b","label":0}',
        "copa",
        "c.jsonl",
      ),
    KobestDataError,
    "c.jsonl:1: question: expected 원인 or 결과",
  );
  assertThrows(
    () => parseKobestJsonl('\n{"sentence": 3, "label": 1}', "sentineg", "s.jsonl"),
    KobestDataError,
    "s.jsonl:2: sentence",
  );
  assertThrows(
    () => parseKobestJsonl("{oops", "sentineg", "s.jsonl"),
    KobestDataError,
    "s.jsonl:1: not valid JSON",
  );
});

Deno.test("kobest data: Hub jsonl layout, layout detection and the missing-data message", async () => {
  assertEquals(
    parseKobestJsonl(
      '{"word":"배","context_1":"가","context_2":"나","label":true}\r\n\r\n',
      "wic",
      "wic/test.jsonl",
    ),
    [{ word: "배", context_1: "가", context_2: "나", label: 1 }],
  );
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/sentineg`);
    await Deno.writeTextFile(`${dir}/sentineg/validation.jsonl`, '{"sentence":"좋다","label":1}\n');
    await Deno.mkdir(`${dir}/SentiNeg`);
    await Deno.writeTextFile(`${dir}/SentiNeg/train.tsv`, "ID\tText\tLabel\r\n1\t싫다\t0");
    assertEquals(await loadKobestSplit(dir, "sentineg", "validation"), [{ sentence: "좋다", label: 1 }]);
    assertEquals(await loadKobestSplit(dir, "sentineg", "train"), [{ sentence: "싫다", label: 0 }]);
    const e = await assertRejects(() => loadKobestSplit(dir, "sentineg", "test"), KobestDataError);
    assertStringIncludes(e.message, "sentineg/test.jsonl (Hub layout) or SentiNeg/test.tsv");
    assertStringIncludes(
      e.message,
      "https://huggingface.co/datasets/skt/kobest_v1/resolve/main/sentineg/test.jsonl",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assertEquals(kobestHubFiles(["boolq", "wic"], ["train", "test"]), [
    "boolq/train.jsonl",
    "boolq/test.jsonl",
    "wic/train.jsonl",
    "wic/test.jsonl",
  ]);
  assertStringIncludes(kobestDataHelp(["copa"], ["validation"]), "COPA/dev.tsv");
  assertEquals(kobestDataDirOf("/c/snapshots/abc/boolq/test.jsonl", "boolq/test.jsonl"), "/c/snapshots/abc");
  assertThrows(
    () => kobestDataDirOf("/c/boolq.jsonl", "boolq/test.jsonl"),
    KobestDataError,
    "expected a path ending",
  );
  assertEquals([limitedCount(1404, 100), limitedCount(1404, 0.1), limitedCount(5, 10)], [100, 141, 5]);
});

Deno.test("kobest: split sizes and the exact contexts of the first test document at 0 and 5 shots", async () => {
  for (const task of Object.keys(PYTHON_REFERENCE) as KobestTask[]) {
    const ref = PYTHON_REFERENCE[task];
    const [train, validation, test] = await Promise.all(
      (["train", "validation", "test"] as const).map((s) => loadKobestSplit(DATA, task, s)),
    );
    assertEquals([train.length, validation.length, test.length], ref.counts, `${task} sizes`);
    const sampler = new FewshotSampler(task, train);
    assertEquals(sampler.context(test[0], 0), ref.zeroShot, `${task} 0-shot`);
    const picks: number[][] = [];
    let doc3 = "";
    for (let i = 0; i < 4; i++) {
      // Same generator throughout, as lm-eval advances it from document to document.
      const probe = new FewshotSampler(task, train);
      for (let j = 0; j < i; j++) probe.shots(test[j], 5);
      picks.push(probe.shots(test[i], 5).map((shot) => train.indexOf(shot)));
      const context = sampler.context(test[i], 5);
      if (i === 0) assertEquals(context, ref.fiveShot, `${task} 5-shot`);
      if (i === 3) doc3 = context;
    }
    assertEquals(picks, ref.picks, `${task} shot indices`);
    assertEquals(await sha256Hex(doc3), ref.doc3FiveShotSha256, `${task} doc 3 context`);
  }
});

Deno.test("kobest fewshot: a drawn shot equal to the document is left out, as lm-eval does", () => {
  const docs = [{ sentence: "가", label: 0 }, { sentence: "나", label: 1 }, { sentence: "다", label: 1 }];
  const sampler = new FewshotSampler("sentineg", docs);
  const shots = sampler.shots({ sentence: "나", label: 1 }, 3);
  assertEquals(shots.length, 2);
  assert(shots.every((s) => s.sentence !== "나"));
  assertEquals(renderShot("boolq", { paragraph: "p", question: "q", label: 1 }), "p 질문: q 답변:  예\n\n");
  assertThrows(() => sampler.shots(docs[0], 4), RangeError, "train split has 3 documents");
});

Deno.test("kobest training data: prompt + completion is the scored string, split where lm-eval splits it", async () => {
  assertEquals(kobestToSft("boolq", [{ paragraph: "p", question: "q", label: 1 }]), [
    { prompt: "p 질문: q 답변:", completion: "  예" },
  ]);
  const endings = { ending_1: "e1", ending_2: "e2", ending_3: "e3", ending_4: "e4" };
  const hs = [0, 1, 2, 3].map((i) => ({ context: `c${i}`, ...endings, label: 2 }));
  // Wrong endings are e1, e2, e4; document i rejects the (i mod 3)-th of them.
  assertEquals(kobestToPreference("hellaswag", hs).map((r) => [r.chosen, r.rejected]), [
    [" e3", " e1"],
    [" e3", " e2"],
    [" e3", " e4"],
    [" e3", " e1"],
  ]);
  assertEquals(
    kobestToPreference("wic", [{ word: "배", context_1: "a", context_2: "b", label: 0 }])[0].rejected,
    " 예",
  );

  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/in/sentineg`, { recursive: true });
    await Deno.writeTextFile(
      `${dir}/in/sentineg/train.jsonl`,
      '{"sentence":"좋다","label":1}\n{"sentence":"싫다","label":0}\n',
    );
    const counts = await writeKobestTrainingData({
      dataDir: `${dir}/in`,
      outDir: `${dir}/out`,
      tasks: ["sentineg"],
      split: "train",
      limit: 1,
    });
    assertEquals(counts, { sentineg: 1 });
    assertEquals(
      await Deno.readTextFile(`${dir}/out/sft.jsonl`),
      '{"prompt":"문장: 좋다 긍부정:","completion":" 긍정"}\n',
    );
    assertEquals(
      await Deno.readTextFile(`${dir}/out/preference.jsonl`),
      '{"prompt":"문장: 좋다 긍부정:","chosen":" 긍정","rejected":" 부정"}\n',
    );
    assertEquals([...Deno.readDirSync(`${dir}/out`)].map((e) => e.name).sort(), [
      "preference.jsonl",
      "sft.jsonl",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Character-level tokenizer with a BOS of 1. */
const charTokenizer: TokenEncoder = {
  encode: (
    text,
    options,
  ) => [...(options?.addSpecialTokens === false ? [] : [1]), ...[...text].map((ch) => ch.codePointAt(0)!)],
};

/** Log-probs that depend on the token and its position, so every misplaced token changes the sum. */
const fakeModel: TokenLogprobModel = {
  maxLength: 512,
  tokenLogprobs: (batch) =>
    Promise.resolve(batch.map(({ ids, scoreFrom }) => {
      const n = ids.length - 1 - scoreFrom;
      const logprobs = new Float32Array(n).map((_, i) =>
        -(((ids[scoreFrom + i + 1] * 13 + scoreFrom + i) % 29) + 1) / 8
      );
      return { logprobs, greedy: new Uint8Array(n) };
    })),
};

Deno.test("kobest driver: every request built, scored and dumped; one results object per shot setting", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const write = async (path: string, rows: object[]) => {
      await Deno.mkdir(`${dir}/${path.split("/")[0]}`, { recursive: true });
      await Deno.writeTextFile(`${dir}/${path}`, rows.map((r) => JSON.stringify(r)).join("\n"));
    };
    const senti = (n: number, offset: number) =>
      Array.from({ length: n }, (_, i) => ({ sentence: `문장${i + offset}`, label: (i + offset) % 2 }));
    await write("sentineg/train.jsonl", senti(6, 100));
    await write("sentineg/test.jsonl", senti(3, 0));
    const copa = (i: number) => ({
      premise: `p${i}`,
      question: i % 2 ? "원인" : "결과",
      alternative_1: "a",
      alternative_2: "bb",
      label: i % 2,
    });
    await write("copa/train.jsonl", [0, 1, 2, 3].map(copa));
    await write("copa/test.jsonl", [4, 5].map(copa));

    const records: RequestRecord[] = [];
    const [zero, two] = await evaluateKobest(fakeModel, charTokenizer, {
      dataDir: dir,
      tasks: ["sentineg", "copa"],
      shots: [0, 2],
      limit: 2,
      batchSize: 3,
      modelName: "fake",
      dumpRequests: (r) => records.push(r),
    });
    assertEquals(records.length, 2 * 2 * 2 * 2); // tasks x shots x docs x choices
    const sentiTest = senti(3, 0);
    const sampler = new FewshotSampler("sentineg", senti(6, 100));
    const expectedContexts = [sampler.context(sentiTest[0], 2), sampler.context(sentiTest[1], 2)];
    const twoShot = records.filter((r) => r.task === "sentineg" && r.shots === 2);
    assertEquals(twoShot.map((r) => [r.docIndex, r.choiceIndex, r.context, r.continuation]), [
      [0, 0, expectedContexts[0], " 부정"],
      [0, 1, expectedContexts[0], " 긍정"],
      [1, 0, expectedContexts[1], " 부정"],
      [1, 1, expectedContexts[1], " 긍정"],
    ]);
    const direct = await scoreRequests(
      fakeModel,
      charTokenizer,
      records.map((r) => ({ context: r.context, continuation: r.continuation })),
    );
    assertEquals(records.map((r) => r.loglikelihood), direct.map((d) => d.loglikelihood));

    for (const [results, shots] of [[zero, 0], [two, 2]] as const) {
      assertEquals(results["n-shot"].kobest_copa, shots);
      assertEquals(results["n-samples"].kobest_sentineg, { original: 3, effective: 2 });
      for (const task of ["sentineg", "copa"] as const) {
        const mine = records.filter((r) => r.task === task && r.shots === shots);
        const correct = [0, 1].filter((d) => {
          const [ll0, ll1] = mine.filter((r) => r.docIndex === d).map((r) => r.loglikelihood);
          return (ll1 > ll0 ? 1 : 0) === mine.find((r) => r.docIndex === d)!.gold;
        }).length;
        assertEquals(results.results[`kobest_${task}`]["acc,none"], correct / 2, `${task} ${shots}-shot acc`);
      }
    }
    assertEquals(zero.config.model, "fake");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
