/**
 * Safe text for the report page: every string from an input file (run folders, model names, judge names,
 * configuration values) passes through here before it reaches HTML, and data handed to the page's scripts is
 * serialised so that no input can close the `<script>` element it lives in.
 *
 * @module
 */

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Escapes text for HTML element content and quoted attribute values.
 *
 * @example
 * ```ts
 * escapeHtml(`<b>"모델" & co</b>`); // "&lt;b&gt;&quot;모델&quot; &amp; co&lt;/b&gt;"
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

/**
 * JSON for a `<script type="application/json">` element. `<` becomes `\u003c` so that `</script>` or `<!--`
 * inside a string cannot end the element early; JSON.parse reads the escape back as `<`.
 *
 * @example
 * ```ts
 * scriptJson({ label: "</script>" }); // '{"label":"\\u003c/script>"}'
 * ```
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(
    /\u2029/g,
    "\\u2029",
  );
}

/**
 * JavaScript source made safe to inline in a `<script>` element: the HTML parser ends the element at the
 * first `</script` and enters a special state at `<!--`, whatever the JavaScript around them means. In a
 * string, regular expression or comment `<\/` reads the same as `</`, and `<\!--` the same as `<!--`.
 *
 * @example
 * ```ts
 * inlineScript('var s = "</script>";'); // 'var s = "<\\/script>";'
 * ```
 */
export function inlineScript(source: string): string {
  return source.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");
}

/**
 * An HTML table from a header row and body rows of already-escaped cell HTML.
 *
 * @example
 * ```ts
 * htmlTable(["Model", "F1"], [["base", "0.500"]], { numericFrom: 1 });
 * ```
 */
export function htmlTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  options: { numericFrom?: number; className?: string; rowClasses?: readonly string[] } = {},
): string {
  const numericFrom = options.numericFrom ?? Infinity;
  const cell = (tag: "th" | "td", html: string, i: number) =>
    `<${tag}${i >= numericFrom ? ' class="num"' : ""}>${html}</${tag}>`;
  const head = `<tr>${header.map((h, i) => cell("th", h, i)).join("")}</tr>`;
  const body = rows.map((r, ri) => {
    const cls = options.rowClasses?.[ri];
    return `<tr${cls ? ` class="${escapeHtml(cls)}"` : ""}>${
      r.map((c, i) => cell("td", c, i)).join("")
    }</tr>`;
  });
  const cls = options.className ? ` class="${escapeHtml(options.className)}"` : "";
  return `<table${cls}><thead>${head}</thead><tbody>${body.join("")}</tbody></table>`;
}
