/**
 * A small byte-level BPE trainer that writes Hugging Face tokenizer files, for the toolkit's tiny default
 * model. The result loads with `loadTokenizer` from text/tokenizer.ts (and with Python `tokenizers`/transformers).
 *
 * Design, following GPT-2 and Llama-3:
 * - Text is split into pre-tokens by the GPT-2 pattern of the `ByteLevel` pre-tokenizer (a word with its
 *   leading space, a number, a run of punctuation, whitespace), then each pre-token's UTF-8 bytes are mapped
 *   to 256 printable characters. The base vocabulary is those 256 byte symbols, so every string encodes and
 *   decodes back exactly — Korean included — and no `<unk>` token is needed: there is nothing it could stand for.
 * - Merges are learned greedily: the most frequent adjacent pair (ties: the pair of smaller ids) becomes a
 *   new token, until `vocabSize` is reached or no pair occurs `minFrequency` times.
 * - Special tokens: `<pad>` = 0, `<s>` (BOS) = 1, `</s>` (EOS) = 2, then `specialTokens` (by default the
 *   chat role markers of {@link TINY_CHAT_TEMPLATE}), then the 256 bytes, then the merges.
 * - A `TemplateProcessing` post-processor prepends `<s>` as a Llama tokenizer.json does.
 *
 * Training is deterministic: the same texts and options give the same files.
 *
 * @module
 */
/**
 * The fixed special tokens and their ids: `<pad>` 0, `<s>` 1, `</s>` 2.
 *
 * @example
 * ```ts
 * tok.idToToken(1) === BASE_SPECIAL_TOKENS[1]; // "<s>"
 * ```
 */
export const BASE_SPECIAL_TOKENS: readonly string[] = ["<pad>", "<s>", "</s>"];

/**
 * Extra special tokens used by default: the role markers of {@link TINY_CHAT_TEMPLATE}.
 *
 * @example
 * ```ts
 * trainBpeTokenizer(texts, { vocabSize: 1500, specialTokens: [...CHAT_ROLE_TOKENS, "<|tool|>"] });
 * ```
 */
export const CHAT_ROLE_TOKENS: readonly string[] = ["<|system|>", "<|user|>", "<|assistant|>"];

/**
 * The tiny model's chat format (Zephyr-like): `<s>` once, then per message `<|role|>\n` + content + `</s>`,
 * and `<|assistant|>\n` as the generation prompt. `</s>` closes every turn, so generation needs one stop
 * token. Roles other than system, user and assistant are rejected.
 *
 * `<s><|user|>\n안녕?</s><|assistant|>\n안녕하세요!</s>`
 *
 * @example
 * ```ts
 * await loadTokenizer(dir, { chatTemplate: TINY_CHAT_TEMPLATE });
 * ```
 */
export const TINY_CHAT_TEMPLATE = "{{ bos_token }}{% for message in messages %}" +
  "{% if message['role'] not in ['system', 'user', 'assistant'] %}" +
  "{{ raise_exception('Only system, user and assistant roles are supported, got ' + message['role']) }}" +
  "{% endif %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

/**
 * Options for {@link trainBpeTokenizer}.
 *
 * @example
 * ```ts
 * const options: BpeTrainOptions = { vocabSize: 1500, minFrequency: 2 };
 * ```
 */
export interface BpeTrainOptions {
  /** Total ids, specials and the 256 bytes included. At most 65,536. */
  vocabSize: number;
  /** Special tokens after `<pad>`, `<s>`, `</s>` (default {@link CHAT_ROLE_TOKENS}). */
  specialTokens?: readonly string[];
  /** Chat template stored in tokenizer_config.json (default {@link TINY_CHAT_TEMPLATE}). */
  chatTemplate?: string;
  /** A pair must occur at least this often to be merged (default 2). */
  minFrequency?: number;
}

/**
 * The three Hugging Face files a trained tokenizer consists of, as JSON values.
 *
 * @example
 * ```ts
 * const { tokenizerJson, tokenizerConfig }: TrainedTokenizer = trainBpeTokenizer(texts, { vocabSize: 1500 });
 * ```
 */
export interface TrainedTokenizer {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  specialTokensMap: Record<string, unknown>;
}

/** The GPT-2 pre-tokenizer pattern, exactly as the ByteLevel pre-tokenizer of `@huggingface/tokenizers` uses it. */
const PRE_TOKEN_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Keys of pair counts: a * PAIR_BASE + b; ids stay below it. */
const PAIR_BASE = 65536;

/**
 * Trains a byte-level BPE tokenizer on `texts` and returns its Hugging Face files.
 *
 * @example
 * ```ts
 * const files = trainBpeTokenizer(["안녕하세요. 반갑습니다."], { vocabSize: 300 });
 * await writeTokenizerFiles("runs/tiny-tokenizer", files);
 * const tok = await loadTokenizer("runs/tiny-tokenizer");
 * ```
 */
export function trainBpeTokenizer(texts: Iterable<string>, options: BpeTrainOptions): TrainedTokenizer {
  const specials = [...BASE_SPECIAL_TOKENS, ...(options.specialTokens ?? CHAT_ROLE_TOKENS)];
  checkOptions(options, specials);
  const byteSymbols = bytesToUnicode();
  const vocab: string[] = [...specials, ...byteSymbols];
  const merges = learnMerges(countPreTokens(texts, specials, byteSymbols), vocab, options);
  return {
    tokenizerJson: buildTokenizerJson(vocab, merges, specials),
    tokenizerConfig: buildTokenizerConfig(specials, options.chatTemplate ?? TINY_CHAT_TEMPLATE),
    specialTokensMap: buildSpecialTokensMap(specials),
  };
}

/**
 * Writes `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json` into `dir` (created if
 * needed). Needs `--allow-write`.
 *
 * @example
 * ```ts
 * await writeTokenizerFiles("runs/tiny-tokenizer", trainBpeTokenizer(texts, { vocabSize: 1500 }));
 * ```
 */
export async function writeTokenizerFiles(dir: string, files: TrainedTokenizer): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(files.tokenizerJson));
  await Deno.writeTextFile(
    `${dir}/tokenizer_config.json`,
    JSON.stringify(files.tokenizerConfig, null, 2) + "\n",
  );
  await Deno.writeTextFile(
    `${dir}/special_tokens_map.json`,
    JSON.stringify(files.specialTokensMap, null, 2) + "\n",
  );
}

function checkOptions(options: BpeTrainOptions, specials: readonly string[]): void {
  const min = specials.length + 256;
  if (!Number.isInteger(options.vocabSize) || options.vocabSize < min || options.vocabSize > PAIR_BASE) {
    throw new RangeError(
      `vocabSize: expected an integer from ${min} (${specials.length} special tokens + 256 bytes) to ${PAIR_BASE}, ` +
        `got ${options.vocabSize}`,
    );
  }
  if (new Set(specials).size !== specials.length || specials.some((s) => s.length === 0)) {
    throw new Error(
      `specialTokens: expected distinct non-empty strings not among ${BASE_SPECIAL_TOKENS.join(" ")}`,
    );
  }
  const minFrequency = options.minFrequency ?? 2;
  if (!Number.isInteger(minFrequency) || minFrequency < 1) {
    throw new RangeError(`minFrequency: expected a positive integer, got ${minFrequency}`);
  }
}

/** GPT-2's map from the 256 byte values to printable characters (printable Latin-1 bytes map to themselves). */
function bytesToUnicode(): string[] {
  const symbols: string[] = new Array(256);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    symbols[b] = String.fromCharCode(printable ? b : 256 + shifted++);
  }
  return symbols;
}

/** Counts pre-tokens (as byte-symbol strings) over all texts, leaving special tokens out as the tokenizer does. */
function countPreTokens(
  texts: Iterable<string>,
  specials: readonly string[],
  byteSymbols: readonly string[],
): Map<string, number> {
  const counts = new Map<string, number>();
  const encoder = new TextEncoder();
  const specialPattern = new RegExp(specials.map(escapeRegExp).join("|"), "g");
  for (const text of texts) {
    if (typeof text !== "string") throw new TypeError(`texts: expected strings, got ${typeof text}`);
    for (const section of text.split(specialPattern)) {
      for (const piece of section.match(PRE_TOKEN_PATTERN) ?? []) {
        let symbols = "";
        for (const byte of encoder.encode(piece)) symbols += byteSymbols[byte];
        counts.set(symbols, (counts.get(symbols) ?? 0) + 1);
      }
    }
  }
  return counts;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A word under training: its current symbol ids and how often it occurs. */
interface Word {
  ids: number[];
  count: number;
}

/**
 * Greedy BPE merge learning with incremental pair counts: only words containing the merged pair are
 * revisited, and a lazy max-heap finds the most frequent pair.
 */
function learnMerges(preTokens: Map<string, number>, vocab: string[], options: BpeTrainOptions): string[] {
  const idOf = new Map(vocab.map((t, i) => [t, i]));
  const words: Word[] = [];
  for (const [symbols, count] of preTokens) {
    words.push({ ids: Array.from(symbols, (c) => idOf.get(c)!), count });
  }
  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const heap = new PairHeap();
  const bump = (key: number, delta: number) => {
    const next = (pairCounts.get(key) ?? 0) + delta;
    if (next === 0) pairCounts.delete(key);
    else pairCounts.set(key, next);
    if (next > 0) heap.push(next, key);
  };
  const addWordPairs = (w: number, sign: 1 | -1) => {
    const { ids, count } = words[w];
    for (let i = 0; i + 1 < ids.length; i++) {
      const key = ids[i] * PAIR_BASE + ids[i + 1];
      bump(key, sign * count);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, set = new Set());
        set.add(w);
      }
    }
  };
  for (let w = 0; w < words.length; w++) addWordPairs(w, 1);

  const merges: string[] = [];
  const minFrequency = options.minFrequency ?? 2;
  while (vocab.length < options.vocabSize) {
    const best = popBestPair(heap, pairCounts);
    if (best === undefined || best.count < minFrequency) break;
    const a = Math.floor(best.key / PAIR_BASE), b = best.key % PAIR_BASE;
    const merged = vocab.length;
    vocab.push(vocab[a] + vocab[b]);
    merges.push(`${vocab[a]} ${vocab[b]}`);
    // Sets may hold words that no longer contain the pair; re-merging those changes nothing.
    for (const w of pairWords.get(best.key) ?? []) {
      addWordPairs(w, -1);
      words[w].ids = mergePair(words[w].ids, a, b, merged);
      addWordPairs(w, 1);
    }
    pairWords.delete(best.key);
  }
  return merges;
}

function mergePair(ids: readonly number[], a: number, b: number, merged: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] === a && ids[i + 1] === b) {
      out.push(merged);
      i++;
    } else {
      out.push(ids[i]);
    }
  }
  return out;
}

function popBestPair(
  heap: PairHeap,
  counts: Map<number, number>,
): { key: number; count: number } | undefined {
  for (;;) {
    const top = heap.pop();
    if (top === undefined) return undefined;
    // Entries whose count changed since they were pushed are stale; the current count has its own entry.
    if (counts.get(top.key) === top.count) return top;
  }
}

/** A binary max-heap of (count, pair key); ties go to the smaller key so training is deterministic. */
class PairHeap {
  #counts: number[] = [];
  #keys: number[] = [];

  push(count: number, key: number): void {
    this.#counts.push(count);
    this.#keys.push(key);
    let i = this.#counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(i, parent)) break;
      this.#swap(i, parent);
      i = parent;
    }
  }

  pop(): { key: number; count: number } | undefined {
    const n = this.#counts.length;
    if (n === 0) return undefined;
    const top = { key: this.#keys[0], count: this.#counts[0] };
    this.#swap(0, n - 1);
    this.#counts.pop();
    this.#keys.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let best = i;
      if (l < n - 1 && this.#before(l, best)) best = l;
      if (r < n - 1 && this.#before(r, best)) best = r;
      if (best === i) break;
      this.#swap(i, best);
      i = best;
    }
    return top;
  }

  #before(i: number, j: number): boolean {
    const ci = this.#counts[i], cj = this.#counts[j];
    return ci > cj || (ci === cj && this.#keys[i] < this.#keys[j]);
  }

  #swap(i: number, j: number): void {
    [this.#counts[i], this.#counts[j]] = [this.#counts[j], this.#counts[i]];
    [this.#keys[i], this.#keys[j]] = [this.#keys[j], this.#keys[i]];
  }
}

function addedTokenEntry(content: string, id: number): Record<string, unknown> {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

function buildTokenizerJson(
  vocab: readonly string[],
  merges: readonly string[],
  specials: readonly string[],
): Record<string, unknown> {
  const bos = specials[1];
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((s, i) => addedTokenEntry(s, i)),
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [1], tokens: [bos] } },
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab.map((t, i) => [t, i])),
      merges: [...merges],
    },
  };
}

function buildTokenizerConfig(specials: readonly string[], chatTemplate: string): Record<string, unknown> {
  return {
    add_bos_token: true,
    add_eos_token: false,
    added_tokens_decoder: Object.fromEntries(specials.map((s, i) => {
      const { id: _id, ...rest } = addedTokenEntry(s, i);
      return [String(i), rest];
    })),
    additional_special_tokens: specials.slice(3),
    bos_token: specials[1],
    eos_token: specials[2],
    pad_token: specials[0],
    clean_up_tokenization_spaces: false,
    tokenizer_class: "PreTrainedTokenizerFast",
    chat_template: chatTemplate,
  };
}

function buildSpecialTokensMap(specials: readonly string[]): Record<string, unknown> {
  return {
    bos_token: specials[1],
    eos_token: specials[2],
    pad_token: specials[0],
    additional_special_tokens: specials.slice(3),
  };
}
