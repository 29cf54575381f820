"""Independent reference for tests/eval/kobest_test.ts: KoBEST few-shot contexts built the way
lm-evaluation-harness builds them (Hub field mapping, lm_eval/tasks/kobest doc_to_text/doc_to_choice,
ContextSampler.get_context with random.Random(1234).sample), using only Python's csv and random modules.

Run: python3 tests/eval/kobest_reference.py data/kobest_tiny
Prints one JSON object per task; the test pastes these values. (The bundled subset has train and test
splits only; the counts are [train, test].)
"""
import csv
import hashlib
import json
import random
import sys

root = sys.argv[1]


def read(path):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    header, body = rows[0], rows[1:]
    return [dict(zip(header, r)) for r in body if all(v != "" for v in r)]


def boolean(v):
    return 1 if v.strip().lower() == "true" else 0


def docs(task, split):
    name = {"validation": "dev"}.get(split, split)
    if task == "boolq":
        return [{"paragraph": r["Text"], "question": r["Question"], "label": boolean(r["Answer"])}
                for r in read(f"{root}/BoolQ/{name}.tsv")]
    if task == "copa":
        return [{"premise": r["sentence"], "question": r["question"], "alternative_1": r["1"],
                 "alternative_2": r["2"], "label": int(r["Answer"]) - 1} for r in read(f"{root}/COPA/{name}.tsv")]
    if task == "hellaswag":
        return [{"context": r["context"], "ending_1": r["choice1"], "ending_2": r["choice2"],
                 "ending_3": r["choice3"], "ending_4": r["choice4"], "label": int(r["label"])}
                for r in read(f"{root}/HellaSwag/{name}.tsv")]
    if task == "sentineg":
        return [{"sentence": r["Text"], "label": int(r["Label"])} for r in read(f"{root}/SentiNeg/{name}.tsv")]
    if task == "wic":
        return [{"word": r["Target"], "context_1": r["SENTENCE1"], "context_2": r["SENTENCE2"],
                 "label": boolean(r["ANSWER"])} for r in read(f"{root}/WiC/{name}.tsv")]


def text(task, d):
    if task == "boolq":
        return f"{d['paragraph']} 질문: {d['question']} 답변: "
    if task == "copa":
        connector = {"원인": " 왜냐하면", "결과": " 그래서"}[d["question"].strip()]
        return f"{d['premise']} {connector}"
    if task == "hellaswag":
        return f"문장: {d['context']}"
    if task == "sentineg":
        return f"문장: {d['sentence']} 긍부정:"
    return f"문장1: {d['context_1']} 문장2: {d['context_2']} 두 문장에서 {d['word']}가 같은 뜻으로 쓰였나?"


def choices(task, d):
    return {
        "boolq": ["아니오", "예"],
        "copa": [d.get("alternative_1"), d.get("alternative_2")],
        "hellaswag": [d.get("ending_1"), d.get("ending_2"), d.get("ending_3"), d.get("ending_4")],
        "sentineg": ["부정", "긍정"],
        "wic": ["아니오", "예"],
    }[task]


def context(task, rnd, train, d, k):
    shots = [x for x in rnd.sample(train, k) if x != d][:k] if k else []
    return "".join(text(task, s) + " " + choices(task, s)[s["label"]] + "\n\n" for s in shots) + text(task, d), shots


for task in ["boolq", "copa", "hellaswag", "sentineg", "wic"]:
    train, test = docs(task, "train"), docs(task, "test")
    position = {id(d): i for i, d in enumerate(train)}
    rnd = random.Random(1234)
    picks, contexts = [], []
    for d in test[:4]:
        ctx, shots = context(task, rnd, train, d, 5)
        picks.append([position[id(s)] for s in shots])
        contexts.append(ctx)
    print(json.dumps({
        "task": task,
        "counts": [len(train), len(test)],
        "zero_shot": text(task, test[0]),
        "five_shot": contexts[0],
        "picks": picks,
        "doc3_five_shot_sha256": hashlib.sha256(contexts[3].encode("utf-8")).hexdigest(),
    }, ensure_ascii=False))
