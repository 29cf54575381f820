/**
 * The one-line hint a training task prints when it finishes, so the user knows how to look at the run. It
 * lives with training, which prints it; the report task only has to accept the command it names.
 *
 * @module
 */

/** Characters a POSIX shell reads literally outside quotes. */
const SHELL_SAFE = /^[A-Za-z0-9_./:=@%+,-]+$/;

/**
 * Quotes a path for a POSIX shell when it needs it (spaces, quotes, `$`, Korean is fine either way).
 *
 * @example
 * ```ts
 * shellQuote("runs/orpo tiny"); // "'runs/orpo tiny'"
 * ```
 */
export function shellQuote(text: string): string {
  if (text !== "" && SHELL_SAFE.test(text)) return text;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command that writes a report for a run folder into that folder.
 *
 * @example
 * ```ts
 * reportHint("runs/orpo-tiny");
 * // "report: deno task report --in runs/orpo-tiny --out runs/orpo-tiny/report.html"
 * ```
 */
export function reportHint(runDir: string): string {
  if (runDir === "") throw new Error("reportHint: the run folder is empty");
  const dir = runDir.replace(/(.)\/+$/, "$1");
  const out = dir.endsWith("/") ? `${dir}report.html` : `${dir}/report.html`;
  return `report: deno task report --in ${shellQuote(dir)} --out ${shellQuote(out)}`;
}
