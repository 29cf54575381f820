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
import { KOBEST_TINY_DIR } from "../../pipeline/settings.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes, assertThrows } from "../asserts.ts";
import { sha256Hex } from "../helpers.ts";

const DATA = KOBEST_TINY_DIR;

interface PythonReference {
  /** Documents in train and test (the bundled subset has no dev split). */
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

// Produced by `python3 tests/eval/kobest_reference.py data/kobest_tiny` (Python 3.11.7, csv + random modules
// only, following lm-eval's kobest configs and ContextSampler) on the bundled subset; pasted verbatim.
const PYTHON_REFERENCE: Record<KobestTask, PythonReference> = {
  boolq: {
    counts: [120, 40],
    zeroShot:
      "콜라독립 815(815 Cola)는 코카콜라를 대한민국에서 라이선스로 만들어 오던 범양식품이 1998년 4월 1일에 출시한 탄산음료다. 질문: 콜라독립 815는 코카콜라에서 만들었나요? 답변: ",
    fiveShot:
      "서든어택에는 생존모드 라는 맵도 있다. 생존 모드는 맵에 아이템이 드랍되어 있다. 이것을 파밍하며 생존하는 것이다. 시간이 지날 수록 경기 구역은 좁아지게 된다 질문: 서든어택 생존모드에서는 아이템을 얻을 수 있나요? 답변:  예\n\n《광해, 왕이 된 남자》(光海, 王이 된 男子)는 2012년에 개봉한 대한민국의 영화이다. 케빈클라인, 시고니위버 주연의 데이브(Dave, 1993)를 표절했다는 논란이 있다. 질문: 《광해, 왕이 된 남자》는 1993년에 개봉했는가? 답변:  아니오\n\n오비탈은 원자 (또는 분자 등)에 귀속된 전자 혹은 전자쌍의 상태를 양자역학을 이용해 나타낸 파동함수를 의미한다. 이를 엄밀하게 계산해 낼 수 있는 계는 수소원자, 혹은 수소꼴 원자(전자가 하나밖에 없는 원자) 정도로 상당히 적지만, 다전자계에서 전체 입자의 파동함수 중 전자에 해당하는 부분을 단일 전자 파동함수의 조합으로 근사하는 것이 일반적이므로 그런 맥락에서 등장하는 단일 전자의 파동함수도 오비탈이라고 부른다. 질문: 오비탈은 파동함수인가? 답변:  예\n\n로마 시대의 오리엔트의 범위는 제국 내에 동부 지방은 물론 제국 외부에 있는 다른 국가에 광범위하게 쓰이는 단어였다. 그 후에 로마 제국이 분열되고 서유럽이 그들의 중심적인 세계를 형성하는 과정에서 자신들을 옥시덴트(occident), 서방이라 부르며 오리엔트는 이와 대조되는 문화를 가진 동방세계라는 뜻이 부가되어, 인도와 중국, 일본을 이루는 광범위한 지역을 지칭하는 단어가 되었다. 질문: 오리엔트는 인도와 중국, 일본을 이루는 광범위한 지역을 지칭하는 단어로 쓰인다. 답변:  예\n\n고려대학교의 모태는 대한제국 내장원경 이용익이 1905년에 설립한 보성전문학교다. 1932년 동아일보 창업자 김성수가 학교를 인수했고 1934년에는 안암동에 현재의 자리로 학교를 옮겼다. 1944년 학교 이름을 경성척식경제전문학교로 변경했다. 질문: 고려대학교의 모태는 경성척식경제전문학교인가? 답변:  아니오\n\n콜라독립 815(815 Cola)는 코카콜라를 대한민국에서 라이선스로 만들어 오던 범양식품이 1998년 4월 1일에 출시한 탄산음료다. 질문: 콜라독립 815는 코카콜라에서 만들었나요? 답변: ",
    picks: [[99, 56, 14, 0, 11], [116, 103, 74, 4, 85], [88, 10, 12, 98, 45], [30, 2, 3, 100, 44]],
    doc3FiveShotSha256: "e8e89734ee8d71840f75fd6b8f7c7f926333947e5da03a9e40c6136cf7646233",
  },
  copa: {
    counts: [120, 40],
    zeroShot: "새로 산 바지의 허리가 컸다.  그래서",
    fiveShot:
      "축구대표팀은 결승전에서 패했다.  왜냐하면 선수들의 컨디션이 좋지 않았다.\n\n늦잠을 잤다.  왜냐하면 알람 소리를 듣지 못했다.\n\n남자가 아내에게 유언을 남겼다.  왜냐하면 남자가 죽음을 앞두고 있다.\n\n이퀄라이저로 저음 음역대 소리 크기를 키웠다.  그래서 베이스 소리가 잘 들리게 되었다.\n\n욕조 물이 내려가지 않는다.  왜냐하면 고무 마개를 배수구에 꽂았다.\n\n새로 산 바지의 허리가 컸다.  그래서",
    picks: [[99, 56, 14, 0, 11], [116, 103, 74, 4, 85], [88, 10, 12, 98, 45], [30, 2, 3, 100, 44]],
    doc3FiveShotSha256: "3eab5474b9608572f839d8d592f477495dfdb917ed422c4827e30f3321c70ac5",
  },
  hellaswag: {
    counts: [120, 40],
    zeroShot:
      "문장: 여자는 새벽까지 잔업을 마치고 기지개를 켠다. 몇 시인지 확인하려고 핸드폰을 켜자 여자와 헤어진 남자친구의 메세지가 와 있다. 여자는 피곤과 짜증이 몰려와 답장하지 않는다.",
    fiveShot:
      "문장: 집에서도 에어프라이어만 있으면 군밤을 손쉽게 만들 수 있다. 먼저 군밤에 칼집을 낸다. 칼집을 낸 군밤을 에어프라이어에 넣는다. 에어프라이어의 전원을 켜고 온도를 200도로 설정한다. 에어프라이어를 200도에 맞춘 후 20분간 구워준다.\n\n문장: 조화는 시들지 않고 오래 가며 멋진 장식품이나 선물이 된다. 리본으로 조화 만드는 방법을 알아 보자. 일단 리본과 바늘, 그리고 리본과 비슷한 색의 실을 준비한다. 바늘에 실을 꿴 다음 실 끝에 매듭을 묶는다. 리본에 바늘을 밀어 넣어 매듭이 리본에 걸리면 실을 잡아 당긴다.\n\n문장: 한 인터넷 사이트에서는 한국인을 화나게 하는 방법을 소개하고 있다. 먼저 음식과 관련한 방법이다. 라면을 먹을 때 김치를 주지 않거나 밥을 먹은 후에 커피를 마시지 못하게 하면 한국인을 화나게 할 수 있다. 또한 요거트를 먹을 때 뚜껑을 핥지 못하게 하거나 삼겹살에 소주를 못 먹게 하는 것이다. 다음으로는 전자기기와 관련한 방법이 있다. 인터넷 속도를 10MB 이하로 줄이거나 화장실을 갈 때 핸드폰을 못 갖고 가게 하는 것이다.\n\n문장: 눈에 이물질이 들어가는 것은 흔한 일이다. 특히 실외에 있을 때 자주 일어난다. 짜증스럽기도 하거니와 바로 조치를 취하지 않으면 오래도록 문제가 될 수 있다. 눈에 들어간 이물질을 빼내는 몇 가지 방법이 있다. 별로 고생하지 않고도 눈에 들어간 이물질을 빼낼 수 있다. 일단 눈에 이물질이 들어갔다는 것을 알아내면 여러 번 눈을 깜박인다. 눈을 깜박이면 속눈썹과 눈꺼풀에 눈물이 고이면서 눈에서 박테리아와 이물질을 씻어낼 수 있다. 눈을 그냥 깜박거리는 것만으로 눈 속의 이물질을 빼낼 수 없다면 윗 눈꺼풀을 잡아당겨 아래 눈꺼풀을 덮은 다음, 눈을 여러 번 깜박거린다.\n\n문장: 한 성인 남성이 길가에 앉아서 어린이 자전거를 고친다. 그는 공구함에서 나사를 든다. 옆에는 어린 아들과 딸이 서있다. 아이들은 남성에게 자전거를 빨리 고쳐달라고 조른다. 남자는 아이들과 이야기를 하며 자전거의 나사를 조인다.\n\n문장: 여자는 새벽까지 잔업을 마치고 기지개를 켠다. 몇 시인지 확인하려고 핸드폰을 켜자 여자와 헤어진 남자친구의 메세지가 와 있다. 여자는 피곤과 짜증이 몰려와 답장하지 않는다.",
    picks: [[99, 56, 14, 0, 11], [116, 103, 74, 4, 85], [88, 10, 12, 98, 45], [30, 2, 3, 100, 44]],
    doc3FiveShotSha256: "e92c70c8d97a54acb17fbe7eaf933ebe7ab3774b66b40545cc473c23321467e5",
  },
  sentineg: {
    counts: [120, 40],
    zeroShot: "문장: 택배사 정말 마음에 듬 긍부정:",
    fiveShot:
      "문장: 신축성이 없어서 입힐때 불편합니다. 긍부정: 부정\n\n문장: 상품 좋고, 배송이 빨라요 긍부정: 긍정\n\n문장: 기대 많이 했는데 생각보다 쿨하지 않아요 긍부정: 부정\n\n문장: 너무나 잘 안 지워져서 다시 다른 제품 구매하려고 해요 긍부정: 부정\n\n문장: 디자인 성능 다 좋네요~~ 긍부정: 긍정\n\n문장: 택배사 정말 마음에 듬 긍부정:",
    picks: [[99, 56, 14, 0, 11], [116, 103, 74, 4, 85], [88, 10, 12, 98, 45], [30, 2, 3, 100, 44]],
    doc3FiveShotSha256: "9d8226fd37c26b5685f35390889d771e8b4b7c8a30b39e4202caedf41e0722c5",
  },
  wic: {
    counts: [120, 40],
    zeroShot:
      "문장1: 토양에 [양분]이 풍부하여 나무가 잘 자란다. 문장2: 태아는 모체로부터 [양분]과 산소를 공급받게 된다. 두 문장에서 양분가 같은 뜻으로 쓰였나?",
    fiveShot:
      "문장1: 알로에, 오이, 수세미 등은 [보습] 성분이 풍부해서 비누나 팩을 만드는 데 자주 이용된다. 문장2: 이 제품은 [보습] 기능이 강화된 새로운 입술 보호제이다. 두 문장에서 보습가 같은 뜻으로 쓰였나? 예\n\n문장1: 그 어두운 열정은, 이제 밝고 떳떳한 삶으로의 편입이 불가능하다고 [단정]을 짓게 되자마자 갑자기 그를 거세게 몰아친 것이었다. 문장2: 광복 직후 남한과 북한이 각각 [단정]을 수립함으로써 분단이 현실로 다가왔다. 두 문장에서 단정가 같은 뜻으로 쓰였나? 아니오\n\n문장1: 서울 올림픽 개막식에서 비둘기가 날고 [성화]가 타오르는 가운데 애국가가 장엄하게 울려 퍼졌다. 문장2: 그 손님은 아이의 [성화]에 못 이겨 아이를 메다붙일 듯이 번쩍 들었다가 놓아주는 것을 몇 번 반복하였다. 두 문장에서 성화가 같은 뜻으로 쓰였나? 아니오\n\n문장1: 현대 생활에서 단전과 [단수]의 고통은 겪어 보지 않으면 짐작도 못한다. 문장2: 사업자를 [단수]로 할지 복수로 할지를 놓고 관계자들 사이에 입씨름이 벌어졌다. 두 문장에서 단수가 같은 뜻으로 쓰였나? 아니오\n\n문장1: 그는 새로 신설된 위원회의 [고문]으로 추대되었다. 문장2: 우리나라 헌법 12조에 의하면 모든 국민은 [고문]을 받지 않는다고 명시되어 있다. 두 문장에서 고문가 같은 뜻으로 쓰였나? 아니오\n\n문장1: 토양에 [양분]이 풍부하여 나무가 잘 자란다. 문장2: 태아는 모체로부터 [양분]과 산소를 공급받게 된다. 두 문장에서 양분가 같은 뜻으로 쓰였나?",
    picks: [[99, 56, 14, 0, 11], [116, 103, 74, 4, 85], [88, 10, 12, 98, 45], [30, 2, 3, 100, 44]],
    doc3FiveShotSha256: "e264d632224b023a73414127adbdbc471815774c9877af585635a8e4c4b1709a",
  },
};

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
    const [train, test] = await Promise.all(
      (["train", "test"] as const).map((s) => loadKobestSplit(DATA, task, s)),
    );
    assertEquals([train.length, test.length], ref.counts, `${task} sizes`);
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
