/**
 * YAML text to values, through the `yaml` package (YAML 1.2, pure JavaScript, no permissions): TRL's
 * `--config` files and the YAML header of a dataset card (README.md). The one module that imports it, by its
 * full versioned `npm:` specifier.
 *
 * @module
 */
// deno-lint-ignore no-import-prefix
import YAML from "npm:yaml@2.9.1";

/**
 * The value a YAML document holds; throws on invalid YAML with the parser's message (line and column).
 * @example
 * ```ts
 * parseYaml("learning_rate: 1.0e-4\nlora_target_modules: [q_proj, v_proj]\n");
 * // { learning_rate: 0.0001, lora_target_modules: ["q_proj", "v_proj"] }
 * ```
 */
export function parseYaml(text: string): unknown {
  return YAML.parse(text);
}
