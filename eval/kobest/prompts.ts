/**
 * Each KoBEST task's context, answer choices and gold index, exactly as lm-evaluation-harness's
 * `lm_eval/tasks/kobest` configs build them (`doc_to_text`, `doc_to_choice`, `doc_to_target`).
 *
 * The strings are byte-for-byte those of the configs, odd spacing included: BoolQ's context ends with a
 * space (lm-eval later moves it onto the continuation), and COPA joins the premise and a connector that
 * itself starts with a space, so the two are separated by two spaces.
 *
 * @module
 */
import type {
  BoolqDoc,
  CopaDoc,
  HellaswagDoc,
  KobestDocMap,
  KobestTask,
  SentinegDoc,
  WicDoc,
} from "./data.ts";

/** What lm-eval scores for one document: log p(" " + choices[i] | context) for each i; gold is the answer. */
export interface KobestPrompt {
  context: string;
  choices: string[];
  gold: number;
}

function boolqPrompt(doc: BoolqDoc): KobestPrompt {
  return {
    context: `${doc.paragraph} 질문: ${doc.question} 답변: `,
    choices: ["아니오", "예"],
    gold: doc.label,
  };
}

/** COPA's connector by question type; lm-eval strips the question before looking it up. */
const COPA_CONNECTORS: Record<string, string> = { "원인": " 왜냐하면", "결과": " 그래서" };

function copaPrompt(doc: CopaDoc): KobestPrompt {
  const connector = COPA_CONNECTORS[doc.question.trim()];
  if (connector === undefined) {
    throw new Error(`copa: question must be 원인 or 결과, got ${JSON.stringify(doc.question)}`);
  }
  return {
    context: `${doc.premise} ${connector}`,
    choices: [doc.alternative_1, doc.alternative_2],
    gold: doc.label,
  };
}

function hellaswagPrompt(doc: HellaswagDoc): KobestPrompt {
  return {
    context: `문장: ${doc.context}`,
    choices: [doc.ending_1, doc.ending_2, doc.ending_3, doc.ending_4],
    gold: doc.label,
  };
}

function sentinegPrompt(doc: SentinegDoc): KobestPrompt {
  return { context: `문장: ${doc.sentence} 긍부정:`, choices: ["부정", "긍정"], gold: doc.label };
}

function wicPrompt(doc: WicDoc): KobestPrompt {
  return {
    context: `문장1: ${doc.context_1} 문장2: ${doc.context_2} 두 문장에서 ${doc.word}가 같은 뜻으로 쓰였나?`,
    choices: ["아니오", "예"],
    gold: doc.label,
  };
}

const BUILDERS: { [T in KobestTask]: (doc: KobestDocMap[T]) => KobestPrompt } = {
  boolq: boolqPrompt,
  copa: copaPrompt,
  hellaswag: hellaswagPrompt,
  sentineg: sentinegPrompt,
  wic: wicPrompt,
};

/**
 * The 0-shot context, the choices and the gold index of one document.
 *
 * @example
 * ```ts
 * kobestPrompt("sentineg", { sentence: "재미없다", label: 0 });
 * // { context: "문장: 재미없다 긍부정:", choices: ["부정", "긍정"], gold: 0 }
 * ```
 */
export function kobestPrompt<T extends KobestTask>(task: T, doc: KobestDocMap[T]): KobestPrompt {
  const prompt = BUILDERS[task](doc);
  if (!(Number.isInteger(prompt.gold) && prompt.gold >= 0 && prompt.gold < prompt.choices.length)) {
    throw new Error(`${task}: label ${prompt.gold} is not an index into ${prompt.choices.length} choices`);
  }
  return prompt;
}
