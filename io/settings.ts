/**
 * Command-line settings from one table: each setting's name (as TRL and the Hugging Face Trainer spell it,
 * snake_case), its aliases, its kind, default, range and help. From that table come the parser (every name
 * accepted in snake_case and in kebab-case, `--name=value` or `--name value`), the `--help` text (with each
 * default and range), `--config FILE` (YAML or JSON of the same names; flags on the command line win, as
 * TRL's parser does), and validation whose errors name the flag (or the file and key) and what was expected.
 *
 * A task declares its table and calls {@link parseSettings}; the values it gets back are typed by the table.
 *
 * ```ts
 * const TABLE = {
 *   limit: { name: "limit", kind: "int", range: { min: 1 }, help: "first N documents", metavar: "N" },
 *   split: { name: "split", kind: "string", choices: ["train", "test"], default: "train", help: "which split" },
 * } satisfies SettingsTable;
 * const parsed = parseSettings(TABLE, ["--limit", "5"]);
 * const { limit, split } = withTableDefaults(TABLE, parsed.values); // 5, "train"
 * ```
 *
 * @module
 */
import { parseYaml } from "./yaml.ts";

/**
 * How a setting's flag reads its value:
 * - `int`, `float`: one number (`--max_steps -1`, `--learning_rate 2e-5`);
 * - `string`: one word (checked against `choices`, or turned into the value by `parse`);
 * - `list`: one or more words up to the next flag, and the flag may repeat (`--lora_target_modules q_proj
 *   v_proj`, as argparse's `nargs="+"`);
 * - `bool`: `--name` alone is true; `--name true|false` (also yes/no/1/0), `--name=false`, and `--no_name`
 *   as the Hugging Face parser accepts them;
 * - `optional-string`: `--name` alone is true, `--name VALUE` gives the value (`--resume_from_checkpoint
 *   [PATH]`).
 */
export type SettingKind = "int" | "float" | "string" | "list" | "bool" | "optional-string";

/** A numeric range: `min`/`max` bounds, each inclusive unless marked exclusive. */
export interface SettingRange {
  min?: number;
  max?: number;
  minExclusive?: boolean;
  maxExclusive?: boolean;
}

/**
 * One setting of a command line.
 * @example
 * ```ts
 * const lr: Setting<number> = {
 *   name: "learning_rate",
 *   aliases: ["lr"],
 *   kind: "float",
 *   range: { min: 0 },
 *   default: 2e-5,
 *   help: "peak learning rate",
 *   metavar: "X",
 * };
 * ```
 */
export interface Setting<T = unknown> {
  /** The flag without `--`, snake_case as TRL spells it; `--kebab-case` is accepted too. */
  name: string;
  /** Other names of the same setting (earlier flags kept working); each in both spellings too. */
  aliases?: readonly string[];
  kind: SettingKind;
  /** One line for `--help`. */
  help: string;
  /** The value's placeholder in `--help` (`N`, `X`, `FILE`); from the kind when absent. */
  metavar?: string;
  /** The value when none is given. */
  default?: T;
  /** The setting must be given (on the command line or in the `--config` file); see {@link checkRequired}. */
  required?: boolean;
  /** What `--help` says instead of the default value (a default that depends on other settings). */
  defaultHelp?: string;
  /** Numbers: the accepted range. */
  range?: SettingRange;
  /** Strings: the accepted words. */
  choices?: readonly string[];
  /** Any other rule: what is expected, and the test. */
  check?: { expected: string; ok(value: T): boolean };
  /** `string` (and each `list` item): turns the text into the value, throwing an error that names `where`. */
  parse?: (text: string, where: string) => unknown;
  /** The heading it is listed under in `--help`. */
  group?: string;
}

/**
 * A command line's settings by key (the name the program uses for each).
 * @example
 * ```ts
 * const TABLE = { check: { name: "check", kind: "bool", default: false, help: "install nothing" } } satisfies SettingsTable;
 * ```
 */
// deno-lint-ignore no-explicit-any
export type SettingsTable = Readonly<Record<string, Setting<any>>>;

/**
 * The value type a setting gives: its `parse` result, else by kind.
 * @example
 * ```ts
 * type N = SettingValue<{ name: "n"; kind: "int"; help: "" }>; // number
 * ```
 */
export type SettingValue<S> = S extends { parse: (text: string, where: string) => infer T }
  ? (S extends { kind: "list" } ? T[] : T)
  : S extends { kind: "int" | "float" } ? number
  : S extends { kind: "bool" } ? boolean
  : S extends { kind: "list" } ? string[]
  : S extends { kind: "optional-string" } ? string | true
  : string;

/**
 * The values of a table's settings, each possibly absent.
 * @example
 * ```ts
 * const values: SettingValues<typeof TABLE> = parseSettings(TABLE, Deno.args).values;
 * ```
 */
export type SettingValues<T extends SettingsTable> = { -readonly [K in keyof T]?: SettingValue<T[K]> };

/** What {@link parseSettings} read. */
export interface ParsedSettings<T extends SettingsTable> {
  /** The values given on the command line or in the `--config` file (defaults not applied). */
  values: SettingValues<T>;
  /** Where each given value came from, as errors name it: `--learning_rate`, or `run.yaml: learning_rate`. */
  sources: { [K in keyof T]?: string };
  /** `-h` or `--help` was given. */
  help: boolean;
  /** Arguments that are not flags (only when the parse allows them). */
  positionals: string[];
  /** The `--config` file read, if any. */
  configFile?: string;
}

/** Options of {@link parseSettings}. */
export interface ParseOptions {
  /** Accept arguments that are not flags (default: an error naming the first). */
  positionals?: boolean;
  /** Accept `--config FILE` (default true). */
  config?: boolean;
}

const TRUE_WORDS = ["true", "yes", "y", "t", "1", "on"];
const FALSE_WORDS = ["false", "no", "n", "f", "0", "off"];

/**
 * A flag name in snake_case (`learning-rate` → `learning_rate`).
 * @example
 * ```ts
 * snakeCase("max-grad-norm"); // "max_grad_norm"
 * ```
 */
export function snakeCase(name: string): string {
  return name.replaceAll("-", "_");
}

/**
 * A flag name in kebab-case (`learning_rate` → `learning-rate`).
 * @example
 * ```ts
 * kebabCase("max_grad_norm"); // "max-grad-norm"
 * ```
 */
export function kebabCase(name: string): string {
  return name.replaceAll("_", "-");
}

/** How one spelling on the command line maps to a setting. */
interface Spelling {
  key: string;
  /** `--no_<name>` of a bool. */
  negated: boolean;
}

/** Every accepted spelling of every setting (both cases, aliases, `no_` forms of bools). */
function spellings(table: SettingsTable): Map<string, Spelling> {
  const map = new Map<string, Spelling>();
  const add = (flag: string, s: Spelling) => {
    for (const spelled of new Set([snakeCase(flag), kebabCase(flag)])) {
      const other = map.get(spelled);
      if (other && other.key !== s.key) {
        throw new Error(`settings table: --${spelled} names both "${other.key}" and "${s.key}"`);
      }
      map.set(spelled, s);
    }
  };
  for (const [key, s] of Object.entries(table)) {
    for (const name of [s.name, ...(s.aliases ?? [])]) {
      add(name, { key, negated: false });
      if (s.kind === "bool") add(`no_${name}`, { key, negated: true });
    }
  }
  for (const builtIn of ["help", "h", "config"]) {
    if (map.has(builtIn)) throw new Error(`settings table: --${builtIn} is reserved`);
  }
  return map;
}

/** Levenshtein distance, for suggesting the flag meant. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const here = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = here;
    }
  }
  return row[b.length];
}

function suggestion(name: string, known: Iterable<string>): string {
  let best: string | undefined, bestDistance = Infinity;
  for (const k of known) {
    const d = distance(snakeCase(name), snakeCase(k));
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 4))
    ? `; did you mean --${best}?`
    : "";
}

/**
 * Reads a command line against a table: flags in either spelling, `--flag=value` or `--flag value`,
 * `--config FILE` (its values apply first, the command line's win), `-h`/`--help`. Every value is checked
 * (kind, range, choices, rule); an error names the flag or the file and key. Defaults are not applied (see
 * {@link withTableDefaults}), so a caller can tell what was given.
 *
 * @example
 * ```ts
 * const { values } = parseSettings(TABLE, ["--learning-rate", "3e-4"]);
 * values.learningRate; // 0.0003
 * ```
 */
export function parseSettings<T extends SettingsTable>(
  table: T,
  args: readonly string[],
  options: ParseOptions = {},
): ParsedSettings<T> {
  const known = spellings(table);
  const cli: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  const positionals: string[] = [];
  let help = false, configFile: string | undefined;
  const allowConfig = options.config ?? true;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg === "-h" || arg === "--help") {
      help = true;
      continue;
    }
    if (!arg.startsWith("--") || arg === "-") {
      if (arg.startsWith("-") && arg.length > 1 && !/^-\d/.test(arg)) {
        throw new Error(
          `unknown flag ${arg}${suggestion(arg.replace(/^-+/, ""), known.keys())} (see --help)`,
        );
      }
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const flag = arg.slice(2, eq < 0 ? undefined : eq);
    let inline: string | undefined = eq < 0 ? undefined : arg.slice(eq + 1);
    if (snakeCase(flag) === "config" && allowConfig) {
      const path = inline ?? args[++i];
      if (path === undefined || path.startsWith("--")) {
        throw new Error("--config: expected a YAML or JSON file");
      }
      configFile = path;
      continue;
    }
    const spelled = known.get(flag);
    if (!spelled) throw new Error(`unknown flag --${flag}${suggestion(flag, known.keys())} (see --help)`);
    const s = table[spelled.key];
    const where = `--${flag}`;
    const next = () => {
      if (inline !== undefined) {
        const v = inline;
        inline = undefined;
        return v;
      }
      const v = args[i + 1];
      if (v === undefined || (v.startsWith("--") && v.length > 2)) {
        throw new Error(`${where}: expected ${expectedOf(s)}, got nothing`);
      }
      i++;
      return v;
    };
    let value: unknown;
    switch (s.kind) {
      case "bool": {
        let word = inline;
        if (word === undefined && args[i + 1] !== undefined && isBoolWord(args[i + 1])) word = args[++i];
        const b = word === undefined ? true : boolOf(word, where);
        value = spelled.negated ? !b : b;
        break;
      }
      case "optional-string": {
        if (inline !== undefined) value = inline;
        else if (args[i + 1] !== undefined && !args[i + 1].startsWith("--")) value = args[++i];
        else value = true;
        if (typeof value === "string" && isBoolWord(value)) value = boolOf(value, where) ? true : undefined;
        break;
      }
      case "list": {
        const items = [next()];
        while (args[i + 1] !== undefined && !args[i + 1].startsWith("--") && args[i + 1] !== "-h") {
          items.push(args[++i]);
        }
        const parsed = items.map((text) => valueOf(s, text, where));
        value = [...((cli[spelled.key] as unknown[] | undefined) ?? []), ...parsed];
        break;
      }
      default:
        value = valueOf(s, next(), where);
    }
    if (value === undefined) delete cli[spelled.key];
    else cli[spelled.key] = value;
    sources[spelled.key] = where;
  }
  if (positionals.length > 0 && !options.positionals) {
    throw new Error(`unexpected argument ${JSON.stringify(positionals[0])}; flags start with --`);
  }
  const values: Record<string, unknown> = {};
  const fileSources: Record<string, string> = {};
  if (configFile !== undefined) {
    for (const [key, { value, where }] of Object.entries(readConfigFile(table, configFile))) {
      values[key] = value;
      fileSources[key] = where;
    }
  }
  Object.assign(values, cli);
  return {
    values: values as SettingValues<T>,
    sources: { ...fileSources, ...sources } as ParsedSettings<T>["sources"],
    help,
    positionals,
    configFile,
  };
}

function isBoolWord(text: string): boolean {
  const t = text.toLowerCase();
  return TRUE_WORDS.includes(t) || FALSE_WORDS.includes(t);
}

function boolOf(text: string, where: string): boolean {
  const t = text.toLowerCase();
  if (TRUE_WORDS.includes(t)) return true;
  if (FALSE_WORDS.includes(t)) return false;
  throw new Error(`${where}: expected true or false, got ${JSON.stringify(text)}`);
}

/** A value from its text (command line) or from a config file's YAML/JSON value, checked. */
function valueOf(s: Setting, raw: unknown, where: string): unknown {
  let value: unknown;
  switch (s.kind) {
    case "int":
    case "float": {
      const n = typeof raw === "number"
        ? raw
        : typeof raw === "string" && raw.trim() !== ""
        ? Number(raw)
        : NaN;
      if (!Number.isFinite(n) || (s.kind === "int" && !Number.isSafeInteger(n))) {
        throw new Error(`${where}: expected ${expectedOf(s)}, got ${JSON.stringify(raw)}`);
      }
      value = n;
      break;
    }
    case "bool":
      if (typeof raw === "boolean") value = raw;
      else if (typeof raw === "string" || typeof raw === "number") value = boolOf(String(raw), where);
      else throw new Error(`${where}: expected true or false, got ${JSON.stringify(raw)}`);
      break;
    default: {
      if (typeof raw !== "string" && typeof raw !== "number") {
        throw new Error(`${where}: expected ${expectedOf(s)}, got ${JSON.stringify(raw)}`);
      }
      value = s.parse ? s.parse(String(raw), where) : String(raw);
    }
  }
  checkValue(s, value, where);
  return value;
}

/**
 * Throws an error naming `where` when `value` is outside the setting's range, choices or rule.
 * @example
 * ```ts
 * checkValue(TABLE.limit, 0, "--limit"); // throws: --limit: expected an integer ≥ 1, got 0
 * ```
 */
export function checkValue<T>(s: Setting<T>, value: T, where: string): void {
  const items = s.kind === "list" && Array.isArray(value) && !s.check ? value : [value];
  for (const v of items as unknown[]) {
    const ok = (s.choices === undefined || s.choices.includes(v as string)) &&
      (s.range === undefined || inRange(v as number, s.range)) &&
      (s.check === undefined || s.check.ok(v as T));
    if (!ok) throw new Error(`${where}: expected ${expectedOf(s)}, got ${JSON.stringify(v)}`);
  }
}

function inRange(v: number, r: SettingRange): boolean {
  if (typeof v !== "number" || Number.isNaN(v)) return false;
  if (r.min !== undefined && (r.minExclusive ? v <= r.min : v < r.min)) return false;
  if (r.max !== undefined && (r.maxExclusive ? v >= r.max : v > r.max)) return false;
  return true;
}

/**
 * What a setting accepts, in words: `an integer ≥ 1`, `a number in [0, 1)`, `linear | cosine`.
 * @example
 * ```ts
 * expectedOf({ name: "warmup_ratio", kind: "float", range: { min: 0, max: 1, maxExclusive: true }, help: "" });
 * // "a number in [0, 1)"
 * ```
 */
export function expectedOf(s: Setting): string {
  if (s.check) return s.check.expected;
  if (s.choices) return s.choices.join(" | ");
  const what = s.kind === "int" ? "an integer" : s.kind === "float" ? "a number" : undefined;
  if (what === undefined) return s.kind === "bool" ? "true or false" : `a value (${s.metavar ?? "TEXT"})`;
  const r = s.range;
  if (!r || (r.min === undefined && r.max === undefined)) return what;
  if (r.min !== undefined && r.max !== undefined) {
    return `${what} in ${r.minExclusive ? "(" : "["}${r.min}, ${r.max}${r.maxExclusive ? ")" : "]"}`;
  }
  if (r.min !== undefined) return `${what} ${r.minExclusive ? ">" : "≥"} ${r.min}`;
  return `${what} ${r.maxExclusive ? "<" : "≤"} ${r.max}`;
}

/**
 * The settings a YAML or JSON file gives (TRL's `--config`): a mapping of setting names (either spelling,
 * or an alias) to values, each checked as its flag would be. An unknown key is an error naming the file.
 * @example
 * ```ts
 * readConfigFile(TABLE, "sft.yaml"); // { learningRate: { value: 0.0001, where: "sft.yaml: learning_rate" } }
 * ```
 */
export function readConfigFile(
  table: SettingsTable,
  path: string,
): Record<string, { value: unknown; where: string }> {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new Error(`--config ${path}: cannot read it (${(e as Error).message})`);
  }
  let doc: unknown;
  try {
    doc = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new Error(
      `--config ${path}: not valid ${/\.json$/i.test(path) ? "JSON" : "YAML"}: ${(e as Error).message}`,
    );
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new Error(`--config ${path}: expected a mapping of setting names to values`);
  }
  const known = spellings(table);
  const out: Record<string, { value: unknown; where: string }> = {};
  for (const [name, raw] of Object.entries(doc as Record<string, unknown>)) {
    const where = `${path}: ${name}`;
    if (name === "env") {
      throw new Error(
        `${where}: setting environment variables from the config file is not supported; set them in the shell`,
      );
    }
    const spelled = known.get(name);
    if (!spelled || spelled.negated) {
      throw new Error(`${where}: unknown setting${suggestion(name, known.keys())}`);
    }
    const s = table[spelled.key];
    if (raw === null) continue; // YAML's null: TRL's None, the default
    let value: unknown;
    if (s.kind === "list") {
      const items = Array.isArray(raw) ? raw : [raw];
      value = items.map((item, i) => valueOf({ ...s, kind: "string" }, item, `${where}[${i}]`));
      if (s.check) checkValue(s, value, where);
    } else if (s.kind === "optional-string") {
      if (raw === false) continue;
      value = raw === true ? true : valueOf({ ...s, kind: "string" }, raw, where);
    } else value = valueOf(s, raw, where);
    out[spelled.key] = { value, where };
  }
  return out;
}

/**
 * The table's defaults (copies of list defaults), then `values` over them.
 * @example
 * ```ts
 * withTableDefaults(TABLE, parseSettings(TABLE, Deno.args).values).split; // "train" unless given
 * ```
 */
export function withTableDefaults<T extends SettingsTable>(
  table: T,
  values: SettingValues<T>,
): SettingValues<T> {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(table)) {
    if (s.default !== undefined) out[key] = Array.isArray(s.default) ? [...s.default] : s.default;
  }
  for (const [key, v] of Object.entries(values)) if (v !== undefined) out[key] = v;
  return out as SettingValues<T>;
}

/**
 * The rule of a setting that names an endpoint (`check: HTTP_URL`): an `http://` or `https://` URL.
 * @example
 * ```ts
 * const judgeUrl = { name: "judge_url", kind: "string", metavar: "URL", check: HTTP_URL, help: "the judge" };
 * ```
 */
export const HTTP_URL: { expected: string; ok(value: string): boolean } = {
  expected: "an http(s):// URL",
  ok: (value) => /^https?:\/\//i.test(value),
};

/**
 * Throws `--name is required` for the first setting marked `required` that `values` lacks (after `--help`
 * was handled, since `--help` alone is a complete command line).
 * @example
 * ```ts
 * checkRequired({ model: { name: "model", kind: "string", required: true, help: "" } }, {});
 * // throws: --model is required (see --help)
 * ```
 */
export function checkRequired<T extends SettingsTable>(table: T, values: SettingValues<T>): void {
  for (const [key, s] of Object.entries(table)) {
    const v = (values as Record<string, unknown>)[key];
    if (s.required && (v === undefined || (Array.isArray(v) && v.length === 0))) {
      throw new Error(`--${s.name} is required (see --help)`);
    }
  }
}

/**
 * The secret held by the environment variable a setting names (`--api_key_env NAME`). A variable named on
 * the command line must be set and non-empty (an error naming `where`, the flag, otherwise); the `fallback`
 * variable, read when none is named, may be absent. Keys are passed by name so that they stay out of
 * process lists and shell history.
 * @example
 * ```ts
 * secretFromEnv("--judge_key_env", undefined, { fallback: "OPENAI_API_KEY" }); // the key, or undefined
 * secretFromEnv("--api_key_env", "MY_KEY"); // throws when MY_KEY is unset or empty
 * ```
 */
export function secretFromEnv(
  where: string,
  name: string | undefined,
  options: { env?: (name: string) => string | undefined; fallback?: string } = {},
): string | undefined {
  const variable = name ?? options.fallback;
  if (variable === undefined) return undefined;
  const value = (options.env ?? ((n: string) => Deno.env.get(n)))(variable);
  if (!value && name !== undefined) {
    throw new Error(`${where} ${name}: the environment variable ${name} is unset or empty`);
  }
  return value || undefined;
}

/**
 * Checks every present value of `values` against its setting, naming its flag (`--name`) on the first that
 * fails: for settings built by a program rather than read from a command line.
 * @example
 * ```ts
 * validateSettings(TABLE, { limit: 0 }); // throws: --limit: expected an integer ≥ 1, got 0
 * ```
 */
export function validateSettings<T extends SettingsTable>(table: T, values: SettingValues<T>): void {
  for (const [key, s] of Object.entries(table)) {
    const v = (values as Record<string, unknown>)[key];
    if (v !== undefined) checkValue(s, v, `--${s.name}`);
  }
}

/**
 * A value as `--help` shows it: numbers as written in code (`2e-5`, `0.1`), lists space-separated.
 * @example
 * ```ts
 * formatSettingValue(0.000001); // "1e-6"
 * ```
 */
export function formatSettingValue(v: unknown): string {
  if (typeof v === "number") {
    if (v !== 0 && Math.abs(v) < 1e-3) return v.toExponential().replace(/\.?0*e/, "e").replace("e-0", "e-");
    return String(v);
  }
  if (Array.isArray(v)) return v.length === 0 ? "none" : v.map(formatSettingValue).join(" ");
  return String(v);
}

/** Words of `text` in lines of at most `width` characters, every line but the first indented by `indent`. */
export function wrapText(text: string, indent: number, width = 110): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && indent + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines.join(`\n${" ".repeat(indent)}`);
}

const HELP_COLUMN = 32;

/**
 * One setting's lines in `--help`: the flag and its placeholder, what it does, what it accepts, its
 * default, and its aliases.
 * @example
 * ```ts
 * settingHelp(lr); // "  --learning_rate X             peak learning rate: a number ≥ 0 (default 2e-5; also --lr)"
 * ```
 */
export function settingHelp(s: Setting): string {
  const metavar = s.kind === "bool"
    ? ""
    : s.kind === "optional-string"
    ? ` [${s.metavar ?? "VALUE"}]`
    : s.kind === "list"
    ? ` ${s.metavar ?? "X"} [${s.metavar ?? "X"} …]`
    : ` ${s.metavar ?? (s.kind === "int" ? "N" : s.kind === "float" ? "X" : s.choices ? "NAME" : "TEXT")}`;
  const head = `  --${s.name}${metavar}`;
  const numeric = s.kind === "int" || s.kind === "float";
  const accepts = s.choices
    ? s.choices.join(" | ")
    : numeric && (s.range || s.check)
    ? expectedOf(s)
    : undefined;
  const notes = [
    s.required ? "required" : undefined,
    s.defaultHelp !== undefined
      ? `default ${s.defaultHelp}`
      : s.default !== undefined && !(s.kind === "bool" && s.default === false)
      ? `default ${formatSettingValue(s.default)}`
      : undefined,
    s.aliases?.length ? `also ${s.aliases.map((a) => `--${a}`).join(", ")}` : undefined,
  ].filter((n) => n !== undefined);
  const text = `${s.help}${accepts ? `: ${accepts}` : ""}${notes.length ? ` (${notes.join("; ")})` : ""}`;
  const pad = head.length + 1 >= HELP_COLUMN
    ? `\n${" ".repeat(HELP_COLUMN)}`
    : " ".repeat(HELP_COLUMN - head.length);
  return `${head}${pad}${wrapText(text, HELP_COLUMN)}`;
}

/** Options of {@link settingsHelp}. */
export interface HelpOptions {
  /** The first line: how the task is run. */
  usage: string;
  /** Paragraphs after the usage line. */
  intro?: string;
  /** Group headings in the order to list them (others follow in table order). */
  groups?: readonly string[];
  /** Text after the settings. */
  footer?: string;
  /** List `--config FILE` (default true; false where the parse does not accept it). */
  config?: boolean;
}

/**
 * The whole `--help` text of a table: usage, intro, the settings by group with their defaults and ranges,
 * then `--config` and `--help`.
 * @example
 * ```ts
 * console.log(settingsHelp(TABLE, { usage: "deno task kobest-data --data_dir DIR --output_dir DIR" }));
 * ```
 */
export function settingsHelp(table: SettingsTable, options: HelpOptions): string {
  const byGroup = new Map<string, Setting[]>();
  for (const g of options.groups ?? []) byGroup.set(g, []);
  for (const s of Object.values(table)) {
    const g = s.group ?? "options";
    if (!byGroup.has(g)) byGroup.set(g, []);
    byGroup.get(g)!.push(s);
  }
  const sections = [...byGroup].filter(([, list]) => list.length > 0).map(([g, list]) =>
    `${g}\n${list.map(settingHelp).join("\n")}`
  );
  const common = [
    ...(options.config ?? true
      ? [settingHelp({
        name: "config",
        kind: "string",
        metavar: "FILE",
        help: "read settings from a YAML or JSON file of the same names; flags given here win",
      })]
      : []),
    `  -h, --help${" ".repeat(HELP_COLUMN - 12)}this text`,
  ].join("\n");
  const paragraphs = (text: string) =>
    text.split("\n\n").map((p) => /^\s/m.test(p) ? p : wrapText(p.replaceAll("\n", " "), 0)).join("\n\n");
  return [
    options.usage,
    ...(options.intro ? [paragraphs(options.intro)] : []),
    ...sections,
    `Each flag is accepted as written here (snake_case) and in kebab-case (--like-this).\n${common}`,
    ...(options.footer ? [options.footer] : []),
  ].join("\n\n") + "\n";
}
