/**
 * Chart.js's UMD build as text, to inline into the report so the page opens with no network.
 *
 * How it is found: this module imports `npm:chart.js@4.6.1` by its full specifier (the one place the
 * toolkit names the package, so a script outside this repository that imports the toolkit by path resolves
 * it without our deno.json). The import of `Chart` below puts the package in this module's graph, so Deno
 * downloads it into its npm cache on first run (a type-only import would not: types are erased before the
 * graph is loaded). `import.meta.resolve` of the same specifier then gives the file URL of the package's
 * ESM entry in that cache (…/chart.js/4.6.1/dist/chart.js, or node_modules/chart.js/dist/chart.js where a
 * node_modules folder is used), and the UMD build lies next to it as `chart.umd.min.js`. It cannot be
 * resolved by name: the package's `exports` map does not list it.
 *
 * @module
 */
// Full specifiers on purpose (see above): a bare one resolves only through this repository's deno.json.
// deno-lint-ignore no-import-prefix
import { Chart } from "npm:chart.js@4.6.1";
export type { ChartConfiguration } from "npm:chart.js@4.6.1";

/**
 * The Chart.js version the report embeds (the one Deno resolved for `chart.js`).
 *
 * @example
 * ```ts
 * CHART_JS_VERSION; // "4.6.1"
 * ```
 */
export const CHART_JS_VERSION: string = Chart.version;

/**
 * Where the UMD build of the resolved Chart.js lies.
 *
 * @example
 * ```ts
 * chartJsUmdUrl().pathname; // "/root/.cache/deno/npm/registry.npmjs.org/chart.js/4.6.1/dist/chart.umd.min.js"
 * ```
 */
export function chartJsUmdUrl(): URL {
  const entry = import.meta.resolve("npm:chart.js@4.6.1");
  if (!entry.startsWith("file:")) {
    throw new Error(`chart.js resolved to ${entry}, not to a file; run \`deno cache report/chartjs.ts\``);
  }
  return new URL("chart.umd.min.js", entry);
}

let cached: Promise<string> | undefined;

/**
 * The source of Chart.js's UMD build, checked to be the version imported.
 *
 * @example
 * ```ts
 * const source = await chartJsSource(); // defines the global `Chart` when run in a page
 * ```
 */
export function chartJsSource(): Promise<string> {
  cached ??= readChartJs();
  return cached;
}

async function readChartJs(): Promise<string> {
  const url = chartJsUmdUrl();
  let source: string;
  try {
    source = await Deno.readTextFile(url);
  } catch (e) {
    throw new Error(`cannot read Chart.js's UMD build at ${url.pathname}: ${(e as Error).message}`);
  }
  if (!source.slice(0, 200).includes(`Chart.js v${CHART_JS_VERSION}`)) {
    throw new Error(`${url.pathname} is not Chart.js v${CHART_JS_VERSION}'s UMD build`);
  }
  return source;
}
