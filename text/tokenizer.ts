/**
 * Tokenization for training, evaluation and serving: a Hugging Face tokenizer folder (`tokenizer.json`,
 * `tokenizer_config.json`, optional chat template files and `generation_config.json`) behind one small class.
 *
 * Encoding and decoding come from npm `@huggingface/tokenizers` and chat templates from npm
 * `@huggingface/jinja`, the two packages transformers.js itself uses, so ids match Hugging Face's. Neither
 * needs any Deno permission; only {@link loadTokenizer} reads files. They are imported by full `npm:`
 * specifiers with versions (here and nowhere else), so a script anywhere on disk that imports the toolkit by
 * path resolves them without this repository's deno.json.
 *
 * @module
 */
// Full specifiers on purpose (see above): a bare one resolves only through this repository's deno.json.
// deno-lint-ignore no-import-prefix
import { Tokenizer } from "npm:@huggingface/tokenizers@0.2.0";
// deno-lint-ignore no-import-prefix
import { Template } from "npm:@huggingface/jinja@0.5.11";

/**
 * One chat turn as chat templates expect it. Roles are usually `system`, `user` or `assistant`.
 *
 * @example
 * ```ts
 * const m: ChatMessage = { role: "user", content: "안녕?" };
 * ```
 */
export interface ChatMessage {
  /** Who speaks, as the template names it. */
  role: string;
  /** The turn's text. */
  content: string;
}

/**
 * The parsed contents of a tokenizer folder; {@link loadTokenizer} reads them, tests may build them.
 *
 * @example
 * ```ts
 * const files: TokenizerFiles = { tokenizerJson, tokenizerConfig, source: "models/tiny" };
 * ```
 */
export interface TokenizerFiles {
  /** `tokenizer.json`. */
  tokenizerJson: Record<string, unknown>;
  /** `tokenizer_config.json` (may be empty). */
  tokenizerConfig?: Record<string, unknown>;
  /** `special_tokens_map.json`, used for bos/eos/pad when the config lacks them. */
  specialTokensMap?: Record<string, unknown>;
  /** `generation_config.json`, whose `eos_token_id` adds stop ids. */
  generationConfig?: Record<string, unknown>;
  /** A template read from `chat_template.jinja` or `chat_template.json`; wins over the config's. */
  chatTemplate?: string;
  /** Where the files came from, for error messages (a folder path). */
  source?: string;
}

/**
 * Options for {@link loadTokenizer} and {@link tokenizerFromFiles}.
 *
 * @example
 * ```ts
 * await loadTokenizer(dir, { chatTemplate: "{{ bos_token }}..." });
 * ```
 */
export interface LoadTokenizerOptions {
  /** A Jinja chat template that replaces whatever the folder holds (for models shipped without one). */
  chatTemplate?: string;
}

/**
 * Options for {@link TextTokenizer.encode}.
 *
 * @example
 * ```ts
 * tok.encode("안녕", { addSpecialTokens: false });
 * ```
 */
export interface EncodeOptions {
  /** Apply the tokenizer's own post-processing (e.g. a Llama tokenizer.json prepends BOS). Default true. */
  addSpecialTokens?: boolean;
}

/**
 * Options for {@link TextTokenizer.decode}.
 *
 * @example
 * ```ts
 * tok.decode(ids, { skipSpecialTokens: true, cleanUpSpaces: false });
 * ```
 */
export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, chat markers) from the text. Default false. */
  skipSpecialTokens?: boolean;
  /**
   * Remove spaces before punctuation as transformers' `clean_up_tokenization_spaces` does. Default: the
   * config's `clean_up_tokenization_spaces`, false when absent (transformers' default since 4.45).
   */
  cleanUpSpaces?: boolean;
}

/**
 * Options for {@link TextTokenizer.applyChatTemplate} and {@link TextTokenizer.encodeChat}.
 *
 * @example
 * ```ts
 * tok.applyChatTemplate(messages, { addGenerationPrompt: true, variables: { enable_thinking: false } });
 * ```
 */
export interface ChatTemplateOptions {
  /** End with the header that opens an assistant turn, as for generation. Default false. */
  addGenerationPrompt?: boolean;
  /** A template to use instead of the tokenizer's. */
  template?: string;
  /** Extra variables for the template (e.g. `{ enable_thinking: false }`). */
  variables?: Record<string, unknown>;
}

/**
 * Thrown for unreadable or inconsistent tokenizer files; the message names the file.
 *
 * @example
 * ```ts
 * try { await loadTokenizer("nowhere"); } catch (e) { if (e instanceof TokenizerError) console.error(e.message); }
 * ```
 */
export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TokenizerError";
  }
}

/**
 * Thrown when a chat template is missing, fails to render, or calls `raise_exception`.
 *
 * @example
 * ```ts
 * try { tok.encodeChat(messages); } catch (e) { if (e instanceof ChatTemplateError) console.error(e.message); }
 * ```
 */
export class ChatTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ChatTemplateError";
  }
}

/**
 * Incremental decoder for generation: see {@link TextTokenizer.decodeStream}.
 *
 * @example
 * ```ts
 * const s: DecodeStream = tok.decodeStream(); const piece = s.push(id);
 * ```
 */
export interface DecodeStream {
  /** Adds one generated id; returns the text it completes ("" while a UTF-8 character is still partial). */
  push(id: number): string;
  /** Returns whatever is still held back (partial characters become U+FFFD) and resets the stream. */
  flush(): string;
}

const REPLACEMENT_CHAR = "\uFFFD";

/**
 * A loaded tokenizer with chat templating. Create it with {@link loadTokenizer} or {@link tokenizerFromFiles}.
 *
 * @example
 * ```ts
 * const tok = await loadTokenizer("models/llama3");
 * tok.encode("Hello world", { addSpecialTokens: false }); // [9906, 1917]
 * tok.decode([9906, 1917]); // "Hello world"
 * ```
 */
export class TextTokenizer {
  /** Id of the beginning-of-sequence token, or null when the tokenizer has none. */
  readonly bosId: number | null;
  /** The config's EOS id first, then any other stop ids listed in generation_config.json. */
  readonly eosIds: readonly number[];
  /** Id used for padding: the pad token, else the first EOS id, else null. */
  readonly padId: number | null;
  /** One more than the largest id the tokenizer can produce. */
  readonly vocabSize: number;
  /** Ids of all special tokens (those that `skipSpecialTokens` removes). */
  readonly specialIds: ReadonlySet<number>;
  /** The chat template in use, or null. */
  readonly chatTemplate: string | null;
  /** Special token strings passed to chat templates (`bos_token`, `eos_token`, ...). */
  readonly specialTokenStrings: Readonly<Record<string, string>>;

  readonly #tok: Tokenizer;
  readonly #source: string;
  readonly #cleanUpDefault: boolean;
  readonly #templates = new Map<string, Template>();
  #prefixIds: number[] | undefined;

  /** Use {@link loadTokenizer} or {@link tokenizerFromFiles}; the constructor takes already-validated parts. */
  constructor(files: TokenizerFiles, options: LoadTokenizerOptions = {}) {
    const source = files.source ?? "<tokenizer>";
    this.#source = source;
    const config = files.tokenizerConfig ?? {};
    try {
      this.#tok = new Tokenizer(files.tokenizerJson, config);
    } catch (e) {
      throw new TokenizerError(`${source}/tokenizer.json: unsupported tokenizer: ${(e as Error).message}`);
    }
    this.vocabSize = this.#tok.model?.vocab.length ?? 0;
    this.specialTokenStrings = collectSpecialTokenStrings(config, files.specialTokensMap ?? {});
    this.bosId = this.#idOfSpecial("bos_token");
    this.eosIds = this.#collectEosIds(files.generationConfig);
    this.padId = this.#idOfSpecial("pad_token") ?? this.eosIds[0] ?? null;
    this.specialIds = this.#collectSpecialIds(config);
    this.chatTemplate = options.chatTemplate ?? files.chatTemplate ?? configChatTemplate(config, source);
    this.#cleanUpDefault = config.clean_up_tokenization_spaces === true;
  }

  /** The primary EOS id (the config's `eos_token`), or null. */
  get eosId(): number | null {
    return this.eosIds[0] ?? null;
  }

  /**
   * Token ids for `text`. By default the tokenizer's own post-processing runs, exactly as
   * `tokenizer(text)` does in transformers (a Llama tokenizer.json prepends BOS; Llama-3's original one does not).
   *
   * @example
   * ```ts
   * tok.encode("안녕하세요", { addSpecialTokens: false });
   * ```
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== "string") throw new TypeError(`encode: expected a string, got ${typeof text}`);
    return this.#tok.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  /**
   * Text for `ids`. Ids outside the vocabulary are an error naming their position.
   *
   * @example
   * ```ts
   * tok.decode([128000, 9906], { skipSpecialTokens: true }); // "Hello"
   * ```
   */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    this.#checkIds(ids);
    if (ids.length === 0) return "";
    return this.#tok.decode(ids as number[], {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: options.cleanUpSpaces ?? this.#cleanUpDefault,
    });
  }

  /**
   * A streaming decoder for generation. Each {@link DecodeStream.push} returns only complete text: a Korean
   * character split over byte tokens is held back until its last byte arrives. Joined, the pieces equal
   * `decode(ids, { skipSpecialTokens, cleanUpSpaces: false })`; space clean-up is never applied to a stream
   * because it would rewrite text already handed out.
   *
   * The method is the one of Hugging Face tokenizers' `DecodeStream`: decode a short window of recent ids
   * with and without the new id and hand out the difference, so decoders that strip a leading space
   * (SentencePiece-style) still see the context they need.
   *
   * @example
   * ```ts
   * const stream = tok.decodeStream({ skipSpecialTokens: true });
   * let text = "";
   * for (const id of generatedIds) text += stream.push(id);
   * text += stream.flush();
   * ```
   */
  decodeStream(options: { skipSpecialTokens?: boolean } = {}): DecodeStream {
    const opts = { skipSpecialTokens: options.skipSpecialTokens ?? false, cleanUpSpaces: false };
    let ids: number[] = [];
    let prefix = "";
    let prefixIndex = 0;
    return {
      push: (id: number): string => {
        this.#checkIds([id]);
        ids.push(id);
        const text = this.decode(ids, opts);
        if (text.length <= prefix.length || text.endsWith(REPLACEMENT_CHAR)) return "";
        // A decoder that rewrote earlier text cannot take back what was handed out: skip the shared part.
        const fresh = text.slice(commonPrefixLength(text, prefix));
        const nextPrefixIndex = ids.length - prefixIndex;
        ids = ids.slice(prefixIndex);
        prefix = this.decode(ids, opts);
        prefixIndex = nextPrefixIndex;
        return fresh;
      },
      flush: (): string => {
        const text = this.decode(ids, opts);
        const rest = text.slice(commonPrefixLength(text, prefix));
        ids = [];
        prefix = "";
        prefixIndex = 0;
        return rest;
      },
    };
  }

  /**
   * Renders `messages` with the chat template, passing the same variables transformers does: `messages`,
   * `add_generation_prompt`, the special token strings (`bos_token`, `eos_token`, ...), `raise_exception`
   * and `strftime_now`.
   *
   * @example
   * ```ts
   * tok.applyChatTemplate([{ role: "user", content: "안녕?" }], { addGenerationPrompt: true });
   * ```
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    checkMessages(messages);
    const source = options.template ?? this.chatTemplate;
    if (source === null) {
      throw new ChatTemplateError(
        `${this.#source}: this tokenizer has no chat template (none in tokenizer_config.json, no ` +
          `chat_template.jinja or chat_template.json); pass { chatTemplate } to loadTokenizer or ` +
          `{ template } to the chat method`,
      );
    }
    const template = this.#compile(source);
    try {
      return template.render({
        ...this.specialTokenStrings,
        ...options.variables,
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: options.addGenerationPrompt ?? false,
      });
    } catch (e) {
      // The engine declares raise_exception and strftime_now itself; a raised message arrives here.
      throw new ChatTemplateError(`${this.#source}: chat template failed to render: ${(e as Error).message}`);
    }
  }

  /**
   * Ids for a rendered chat: {@link applyChatTemplate}, then {@link encodeTemplated}, so a template that
   * writes `bos_token` itself and a post-processor that prepends BOS do not give two BOS tokens.
   *
   * @example
   * ```ts
   * tok.encodeChat([{ role: "user", content: "안녕?" }], { addGenerationPrompt: true });
   * ```
   */
  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): number[] {
    return this.encodeTemplated(this.applyChatTemplate(messages, options));
  }

  /**
   * Encodes text a chat template produced: the tokenizer's default post-processing, then, when the text
   * already began with the BOS token and the post-processor prepended another ({@link prefixIds}), one of
   * the two is dropped. Templates that do not write BOS keep the post-processor's.
   *
   * @example
   * ```ts
   * tok.encodeTemplated("<s>[INST] 안녕 [/INST]"); // one leading <s>, not two
   * ```
   */
  encodeTemplated(text: string): number[] {
    const ids = this.encode(text);
    const prefix = this.prefixIds;
    const doubled = prefix.length > 0 &&
      prefix.every((id, i) => ids[i] === id && ids[prefix.length + i] === id);
    return doubled ? ids.slice(prefix.length) : ids;
  }

  /**
   * The ids the default post-processing puts before every text (e.g. `[bos]` for Llama-2/Mistral, `[]` for
   * the original Llama-3 tokenizer.json), found by encoding a probe with and without special tokens.
   *
   * @example
   * ```ts
   * tok.prefixIds; // [1] for Mistral
   * ```
   */
  get prefixIds(): readonly number[] {
    if (this.#prefixIds === undefined) {
      const probe = "a";
      const bare = this.encode(probe, { addSpecialTokens: false });
      const full = this.encode(probe);
      const at = full.findIndex((_, i) => bare.every((id, k) => full[i + k] === id));
      this.#prefixIds = at > 0 ? full.slice(0, at) : [];
    }
    return this.#prefixIds;
  }

  /**
   * The token string of `id`, or undefined outside the vocabulary.
   *
   * @example
   * ```ts
   * tok.idToToken(128000); // "<|begin_of_text|>"
   * ```
   */
  idToToken(id: number): string | undefined {
    return this.#tok.id_to_token(id);
  }

  /**
   * The id of a token string (as stored in the vocabulary, e.g. `Ġworld` for byte-level BPE), or undefined.
   *
   * @example
   * ```ts
   * tok.tokenToId("<|eot_id|>"); // 128009
   * ```
   */
  tokenToId(token: string): number | undefined {
    return this.#tok.token_to_id(token);
  }

  #compile(source: string): Template {
    let template = this.#templates.get(source);
    if (!template) {
      try {
        template = new Template(source);
      } catch (e) {
        throw new ChatTemplateError(`${this.#source}: chat template does not parse: ${(e as Error).message}`);
      }
      this.#templates.set(source, template);
    }
    return template;
  }

  #checkIds(ids: readonly number[]): void {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(
          `decode: id ${id} at position ${i} is outside the vocabulary [0, ${this.vocabSize})`,
        );
      }
    }
  }

  #idOfSpecial(key: string): number | null {
    const token = this.specialTokenStrings[key];
    if (token === undefined) return null;
    const id = this.#tok.token_to_id(token);
    if (id === undefined) {
      throw new TokenizerError(`${this.#source}: ${key} ${JSON.stringify(token)} is not in the vocabulary`);
    }
    return id;
  }

  #collectEosIds(generationConfig: Record<string, unknown> | undefined): number[] {
    const ids: number[] = [];
    const main = this.#idOfSpecial("eos_token");
    if (main !== null) ids.push(main);
    const extra = generationConfig?.eos_token_id;
    const list = Array.isArray(extra) ? extra : extra === undefined || extra === null ? [] : [extra];
    for (const id of list) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new TokenizerError(
          `${this.#source}/generation_config.json: field "eos_token_id": expected ids in [0, ${this.vocabSize}), ` +
            `got ${JSON.stringify(extra)}`,
        );
      }
      if (!ids.includes(id)) ids.push(id);
    }
    return ids;
  }

  #collectSpecialIds(config: Record<string, unknown>): Set<number> {
    const ids = new Set<number>();
    for (const [id, token] of this.#tok.get_added_tokens_decoder()) if (token.special) ids.add(id);
    const extra = config.additional_special_tokens;
    if (Array.isArray(extra)) {
      for (const t of extra) {
        const id = this.#tok.token_to_id(tokenContent(t) ?? "");
        if (id !== undefined) ids.add(id);
      }
    }
    return ids;
  }
}

/**
 * Builds a {@link TextTokenizer} from already-parsed files (what {@link loadTokenizer} does after reading).
 *
 * @example
 * ```ts
 * const { tokenizerJson, tokenizerConfig } = trainBpeTokenizer(texts, { vocabSize: 1000 });
 * const tok = tokenizerFromFiles({ tokenizerJson, tokenizerConfig });
 * ```
 */
export function tokenizerFromFiles(files: TokenizerFiles, options: LoadTokenizerOptions = {}): TextTokenizer {
  return new TextTokenizer(files, options);
}

/**
 * Reads a Hugging Face tokenizer folder: `tokenizer.json` (required), `tokenizer_config.json`,
 * `special_tokens_map.json`, `generation_config.json`, and a chat template from `chat_template.jinja` or
 * `chat_template.json` (where transformers ≥ 4.43 saves it) or else from the config. Needs `--allow-read`.
 *
 * @example
 * ```ts
 * const tok = await loadTokenizer("models/mistral", { chatTemplate: "{{ bos_token }}..." });
 * ```
 */
export async function loadTokenizer(dir: string, options: LoadTokenizerOptions = {}): Promise<TextTokenizer> {
  const tokenizerJson = await readJsonFile(`${dir}/tokenizer.json`);
  if (tokenizerJson === undefined) {
    throw new TokenizerError(
      `${dir}/tokenizer.json: not found (a Hugging Face tokenizer folder needs tokenizer.json; a ` +
        `SentencePiece tokenizer.model alone is not supported)`,
    );
  }
  const files: TokenizerFiles = {
    tokenizerJson,
    tokenizerConfig: await readJsonFile(`${dir}/tokenizer_config.json`),
    specialTokensMap: await readJsonFile(`${dir}/special_tokens_map.json`),
    generationConfig: await readJsonFile(`${dir}/generation_config.json`),
    chatTemplate: await readChatTemplateFile(dir),
    source: dir,
  };
  return new TextTokenizer(files, options);
}

async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

async function readJsonFile(path: string): Promise<Record<string, unknown> | undefined> {
  const text = await readTextIfExists(path);
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${path}: invalid JSON: ${(e as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TokenizerError(`${path}: expected a JSON object, got ${describeJson(value)}`);
  }
  return value as Record<string, unknown>;
}

async function readChatTemplateFile(dir: string): Promise<string | undefined> {
  const jinja = await readTextIfExists(`${dir}/chat_template.jinja`);
  if (jinja !== undefined) return jinja;
  const json = await readJsonFile(`${dir}/chat_template.json`);
  if (json === undefined) return undefined;
  if (typeof json.chat_template !== "string") {
    throw new TokenizerError(
      `${dir}/chat_template.json: field "chat_template": expected a string, got ${
        describeJson(json.chat_template)
      }`,
    );
  }
  return json.chat_template;
}

/** The config's chat template: a string, or a list of named templates of which "default" is used. */
function configChatTemplate(config: Record<string, unknown>, source: string): string | null {
  const t = config.chat_template;
  if (t === undefined || t === null) return null;
  if (typeof t === "string") return t;
  if (Array.isArray(t)) {
    const named = t.find((x) =>
      typeof x === "object" && x !== null && (x as { name?: unknown }).name === "default"
    );
    if (named && typeof (named as { template?: unknown }).template === "string") {
      return (named as { template: string }).template;
    }
  }
  throw new TokenizerError(
    `${source}/tokenizer_config.json: field "chat_template": expected a string or a list with a ` +
      `{"name": "default", "template": ...} entry, got ${describeJson(t)}`,
  );
}

const SPECIAL_TOKEN_KEYS = [
  "bos_token",
  "eos_token",
  "unk_token",
  "sep_token",
  "pad_token",
  "cls_token",
  "mask_token",
] as const;

/** A special token in a config is a string or, in older files, an AddedToken object with `content`. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (
    typeof value === "object" && value !== null &&
    typeof (value as { content?: unknown }).content === "string"
  ) {
    return (value as { content: string }).content;
  }
  return undefined;
}

function collectSpecialTokenStrings(
  config: Record<string, unknown>,
  map: Record<string, unknown>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of SPECIAL_TOKEN_KEYS) {
    const content = tokenContent(config[key]) ?? tokenContent(map[key]);
    if (content !== undefined) out[key] = content;
  }
  return out;
}

function checkMessages(messages: readonly ChatMessage[]): void {
  if (!Array.isArray(messages)) {
    throw new ChatTemplateError(`messages: expected a list, got ${describeJson(messages)}`);
  }
  messages.forEach((m, i) => {
    if (typeof m !== "object" || m === null || typeof m.role !== "string" || typeof m.content !== "string") {
      throw new ChatTemplateError(
        `messages[${i}]: expected {role: string, content: string}, got ${JSON.stringify(m)}`,
      );
    }
  });
}

function commonPrefixLength(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

/** A short name for a JSON value's type, for error messages. */
function describeJson(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "string") return value === "" ? "an empty string" : "a string";
  return typeof value === "object" ? "an object" : typeof value;
}
