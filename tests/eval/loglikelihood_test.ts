import {
  encodeRequest,
  type LogprobQuery,
  scoreRequests,
  splitTrailingSpace,
  type TokenEncoder,
  type TokenLogprobModel,
  type TokenLogprobs,
} from "../../eval/loglikelihood.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../asserts.ts";

const BOS = 1;
const AB = 1000; // the fake tokenizer merges "ab" into one token, so merges can cross a context boundary

/** Character-level tokenizer (id = code point) that merges "ab" and prepends BOS unless told not to. */
function fakeTokenizer(): TokenEncoder & { calls: (boolean | undefined)[] } {
  const calls: (boolean | undefined)[] = [];
  return {
    calls,
    encode(text, options) {
      calls.push(options?.addSpecialTokens);
      const ids: number[] = options?.addSpecialTokens === false ? [] : [BOS];
      const chars = [...text];
      for (let i = 0; i < chars.length; i++) {
        if (chars[i] === "a" && chars[i + 1] === "b") {
          ids.push(AB);
          i++;
        } else ids.push(chars[i].codePointAt(0)!);
      }
      return ids;
    },
  };
}

const c = (ch: string) => ch.codePointAt(0)!;

/** The fake model's log-prob of `target` after `prev` at input position `pos` (exact in float32). */
function f(prev: number, target: number, pos: number): number {
  return -(((target * 31 + prev * 7 + pos) % 97) + 1) / 64;
}

/** A fake model with log-probs given by `f`, greedy where the target id is even; records every batch. */
function fakeModel(maxLength: number): TokenLogprobModel & { batches: LogprobQuery[][] } {
  const batches: LogprobQuery[][] = [];
  return {
    maxLength,
    batches,
    tokenLogprobs(batch) {
      batches.push(batch.map((q) => ({ ids: [...q.ids], scoreFrom: q.scoreFrom })));
      return Promise.resolve(batch.map(({ ids, scoreFrom }): TokenLogprobs => {
        const n = ids.length - 1 - scoreFrom;
        const logprobs = new Float32Array(n);
        const greedy = new Uint8Array(n);
        for (let i = 0; i < n; i++) {
          const t = scoreFrom + i;
          logprobs[i] = f(ids[t], ids[t + 1], t);
          greedy[i] = ids[t + 1] % 2 === 0 ? 1 : 0;
        }
        return { logprobs, greedy };
      }));
    },
  };
}

Deno.test("loglikelihood: trailing whitespace moves from the context onto the continuation", () => {
  assertEquals(splitTrailingSpace("답변: ", " 예"), ["답변:", "  예"]);
  assertEquals(splitTrailingSpace("a \n\t", "b"), ["a", " \n\tb"]);
  assertEquals(splitTrailingSpace("a", " b"), ["a", " b"]);
});

Deno.test("loglikelihood: default special tokens; continuation = whole[len(context):]", () => {
  const tok = fakeTokenizer();
  // "xy " + "z" -> context "xy", continuation " z"; BOS is the tokenizer's default.
  assertEquals(encodeRequest(tok, "xy ", "z", 100), {
    ids: [BOS, c("x"), c("y"), c(" "), c("z")],
    contLength: 2,
  });
  assertEquals(tok.calls, [undefined, undefined]);
  // addSpecialTokens: false is passed through (lm-eval 0.4.x behaviour): no BOS.
  assertEquals(encodeRequest(tok, "xy", " z", 100, { addSpecialTokens: false }), {
    ids: [c("x"), c("y"), c(" "), c("z")],
    contLength: 2,
  });
  assertEquals(tok.calls.slice(2), [false, false]);
});

Deno.test("loglikelihood: a merge across the boundary stays out of the scored tokens", () => {
  // whole("xabc") = [BOS, x, AB, c]; context("xa") = [BOS, x, a]; continuation = whole[3:] = [c].
  // The model input is context tokens + continuation tokens, as lm-eval builds it (not `whole`).
  assertEquals(encodeRequest(fakeTokenizer(), "xa", "bc", 100), {
    ids: [BOS, c("x"), c("a"), c("c")],
    contLength: 1,
  });
});

Deno.test("loglikelihood: left truncation to maxLength + 1 tokens, last one not an input", async () => {
  const model = fakeModel(3);
  const [r] = await scoreRequests(model, fakeTokenizer(), [{ context: "pqrs", continuation: "tu" }]);
  // [BOS p q r s | t u] -> last 4 = [r s t u]; the model reads [r s t] and the last two predictions score t, u.
  assertEquals(model.batches, [[{ ids: [c("r"), c("s"), c("t"), c("u")], scoreFrom: 1 }]]);
  assertEquals(r.loglikelihood, f(c("s"), c("t"), 1) + f(c("t"), c("u"), 2));
});

Deno.test("loglikelihood: sums exactly the continuation's log-probs; is_greedy needs every token", async () => {
  const model = fakeModel(64);
  const tok = fakeTokenizer();
  const [a, b] = await scoreRequests(model, tok, [
    { context: "hi ", continuation: "p" }, // -> "hi" + " p": scored " " after i, "p" after " "
    { context: "hi ", continuation: "r" },
  ]);
  const space = c(" ");
  assertEquals(a.loglikelihood, f(c("i"), space, 2) + f(space, c("p"), 3));
  assertEquals(b.loglikelihood, f(c("i"), space, 2) + f(space, c("r"), 3));
  // " " (32) and "p" (112) are even ids: greedy; "r" (114) too, but compare with an odd one:
  assertEquals([a.isGreedy, b.isGreedy], [true, true]);
  const [odd] = await scoreRequests(model, tok, [{ context: "hi", continuation: " q" }]); // "q" = 113
  assertEquals(odd.isGreedy, false);
});

Deno.test("loglikelihood: identical sequences are scored once; a document's choices share a batch", async () => {
  const model = fakeModel(64);
  const progress: number[] = [];
  const requests = [
    { context: "ctx", continuation: " y", group: 0 },
    { context: "ctx", continuation: " n", group: 0 },
    { context: "a much longer context", continuation: " y", group: 1 },
    { context: "a much longer context", continuation: " n", group: 1 },
    { context: "ctx", continuation: " y", group: 2 }, // same tokens as request 0
  ];
  const results = await scoreRequests(model, fakeTokenizer(), requests, {
    batchSize: 3,
    onProgress: (p) => progress.push(p.done),
  });
  // Longest group first, groups never split across batches when they fit; request 4 merged into request 0.
  assertEquals(model.batches.map((b) => b.length), [2, 2]);
  assertEquals(model.batches[0].map((q) => q.ids.length), [24, 24]);
  assertEquals(results[4], results[0]);
  assertEquals(progress, [2, 5]);
  assert(results.every((r) => Number.isFinite(r.loglikelihood)));
});

Deno.test("loglikelihood: a group larger than the batch is split; order is longest first", async () => {
  const model = fakeModel(64);
  const requests = ["1", "22", "333", "4444", "55555"].map((s) => ({
    context: "q",
    continuation: s,
    group: 7,
  }));
  await scoreRequests(model, fakeTokenizer(), requests, { batchSize: 2 });
  assertEquals(model.batches.map((b) => b.map((q) => q.ids.length)), [[7, 6], [5, 4], [3]]);
});

Deno.test("loglikelihood: an empty context is scored after the end-of-text token", () => {
  assertEquals(encodeRequest(fakeTokenizer(), "", "xy", 10, { eotTokenId: 2 }), {
    ids: [2, BOS, c("x"), c("y")],
    contLength: 3,
  });
  assertThrows(() => encodeRequest(fakeTokenizer(), "", "xy", 10), Error, "eotTokenId");
});

Deno.test("loglikelihood: bad requests and bad model answers fail clearly", async () => {
  assertThrows(() => encodeRequest(fakeTokenizer(), "x", "abcdef", 3), Error, "more than maxLength 3");
  assertThrows(() => encodeRequest(fakeTokenizer(), "xa", "b", 10), Error, "no tokens of its own");
  const short: TokenLogprobModel = {
    maxLength: 10,
    tokenLogprobs: (batch) =>
      Promise.resolve(batch.map(() => ({ logprobs: new Float32Array(0), greedy: new Uint8Array(0) }))),
  };
  await assertRejects(
    () => scoreRequests(short, fakeTokenizer(), [{ context: "x", continuation: " y" }]),
    Error,
    "expected 2 of each",
  );
  const nan: TokenLogprobModel = {
    maxLength: 10,
    tokenLogprobs: (batch) =>
      Promise.resolve(batch.map(() => ({ logprobs: new Float32Array([NaN, 0]), greedy: new Uint8Array(2) }))),
  };
  await assertRejects(
    () => scoreRequests(nan, fakeTokenizer(), [{ context: "x", continuation: " y" }]),
    Error,
    "NaN",
  );
});
