/**
 * The layer rule of docs/architecture.md, checked on every `.ts` file of the repository: a folder imports only
 * the folders its row of the table lists. The table in the document is the rule's one definition; this file
 * reads it.
 * @module
 */
import { assert, assertEquals, assertThrows } from "./asserts.ts";

/**
 * Known violations, each being fixed by work in progress on another branch. The coordinator removes an entry
 * when its fix merges; an entry that no longer matches an import fails the suite, so the list cannot rot.
 */
const KNOWN_VIOLATIONS: readonly { from: string; to: string }[] = [
  // train/cli.ts prints report/hint.ts's hint; the train/ restructuring moves the hint out of report/.
  { from: "train/cli.ts", to: "report/hint.ts" },
];

const ROOT = new URL("../", import.meta.url);
const ARCHITECTURE = "docs/architecture.md";

/** What a layer may import: `*` (anything), or folders (`gpu/`) and single files (`gpu/half.ts`). */
type Allowed = "*" | string[];

/** One relative import: where it is written and the repository path it names. */
interface ImportEdge {
  /** The importing file, relative to the repository root. */
  from: string;
  /** 1-based line of the specifier. */
  line: number;
  /** The imported file, relative to the repository root. */
  to: string;
}

/** The layer table of docs/architecture.md: each layer (a folder, or a root file) and what it may import. */
function parseLayerTable(markdown: string): Map<string, Allowed> {
  const section = markdown.split(/^## /m).find((s) => s.startsWith("Who may import whom"));
  if (!section) throw new Error(`${ARCHITECTURE}: no "## Who may import whom" section`);
  const layers = new Map<string, Allowed>();
  for (const row of section.split("\n").filter((l) => l.startsWith("| `"))) {
    const [, name, allowed] = row.split("|").map((cell) => cell.trim());
    const names = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
    const layer = names(name)[0].replace(/\/$/, "");
    const targets = names(allowed);
    layers.set(layer, targets.includes("*") ? "*" : targets);
  }
  if (layers.size === 0) throw new Error(`${ARCHITECTURE}: the "Who may import whom" table has no rows`);
  return layers;
}

/** The layer a repository path belongs to: its top folder, or the file itself at the root. */
function layerOf(path: string): string {
  return path.split("/")[0];
}

/**
 * The relative imports of one file: `import … from`, `import "…"`, `export … from` (type-only ones too) and
 * `import("…")`. Comments are left out, so a JSDoc example's import is not one.
 */
function importsOf(path: string, source: string): ImportEdge[] {
  const code = withoutComments(source);
  const edges: ImportEdge[] = [];
  const staticImport =
    /(?:^|[;\n])[ \t]*import\s+(?:type\s+)?(?:[\w$*{}\s,]+?\s*from\s*)?["']([^"'\n]+)["']/g;
  const reExport =
    /(?:^|[;\n])[ \t]*export\s+(?:type\s+)?(?:\*(?:\s+as\s+[\w$]+)?|\{[^}]*\})\s*from\s*["']([^"'\n]+)["']/g;
  const dynamic = /\bimport\s*\(\s*["']([^"'\n]+)["']\s*\)/g;
  for (const pattern of [staticImport, reExport, dynamic]) {
    for (const m of code.matchAll(pattern)) {
      const specifier = m[1];
      if (!specifier.startsWith(".")) continue; // npm:, jsr:, URLs and bare names are outside the layers
      const to = new URL(specifier, new URL(path, "file:///repo/")).pathname.slice("/repo/".length);
      const at = m.index! + m[0].lastIndexOf(specifier);
      edges.push({ from: path, line: code.slice(0, at).split("\n").length, to });
    }
  }
  return edges.sort((a, b) => a.line - b.line);
}

/**
 * `source` with comments blanked (line breaks kept, so line numbers hold). Strings and template literals are
 * skipped over so that `//` in a URL is not taken for a comment.
 */
function withoutComments(source: string): string {
  let out = "";
  let i = 0;
  while (i < source.length) {
    const c = source[i], next = source[i + 1];
    if (c === "/" && next === "/") {
      while (i < source.length && source[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      const stop = end < 0 ? source.length : end + 2;
      out += source.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
    } else if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < source.length && source[j] !== c && !(c !== "`" && source[j] === "\n")) {
        j += source[j] === "\\" ? 2 : 1;
      }
      out += source.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Every edge that breaks the table, as `file:line: …` messages. */
function violations(edges: readonly ImportEdge[], layers: Map<string, Allowed>): string[] {
  const found: string[] = [];
  for (const e of edges) {
    const from = layerOf(e.from), to = layerOf(e.to);
    const allowed = layers.get(from);
    if (allowed === undefined) {
      found.push(`${e.from}: ${from} is not in ${ARCHITECTURE}'s table; add its row`);
      continue;
    }
    if (from === to || allowed === "*") continue;
    if (!layers.has(to)) {
      found.push(
        `${e.from}:${e.line}: imports ${e.to}, whose folder ${to}/ is not in ${ARCHITECTURE}'s table`,
      );
      continue;
    }
    if (allowed.some((a) => a.endsWith(".ts") ? a === e.to : a.replace(/\/$/, "") === to)) continue;
    const may = allowed.length === 0 ? "nothing of ours" : allowed.join(", ");
    found.push(`${e.from}:${e.line}: ${from}/ imports ${e.to}, but ${from}/ may import only ${may}`);
  }
  return found;
}

/** The repository's `.ts` files (build outputs, runs and dot-folders left out), relative to the root. */
async function repositoryFiles(dir = ROOT, prefix = ""): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.startsWith(".") || ["node_modules", "runs"].includes(entry.name)) continue;
    const path = prefix + entry.name;
    if (entry.isDirectory) files.push(...await repositoryFiles(new URL(`${entry.name}/`, dir), `${path}/`));
    else if (entry.isFile && path.endsWith(".ts")) files.push(path);
  }
  return files.sort();
}

async function repositoryEdges(): Promise<ImportEdge[]> {
  const edges: ImportEdge[] = [];
  for (const path of await repositoryFiles()) {
    edges.push(...importsOf(path, await Deno.readTextFile(new URL(path, ROOT))));
  }
  return edges;
}

const isKnown = (e: ImportEdge) => KNOWN_VIOLATIONS.some((k) => k.from === e.from && k.to === e.to);

Deno.test("layers: no folder imports one its row of docs/architecture.md does not list", async () => {
  const layers = parseLayerTable(await Deno.readTextFile(new URL(ARCHITECTURE, ROOT)));
  const edges = await repositoryEdges();
  assert(edges.length > 500, `only ${edges.length} imports found: the parser has lost them`);
  const broken = violations(edges.filter((e) => !isKnown(e)), layers);
  assertEquals(broken, [], `imports against the layers:\n${broken.join("\n")}`);
});

Deno.test("layers: every allow-listed violation still exists (remove an entry once it is fixed)", async () => {
  const layers = parseLayerTable(await Deno.readTextFile(new URL(ARCHITECTURE, ROOT)));
  const edges = await repositoryEdges();
  for (const known of KNOWN_VIOLATIONS) {
    const edge = edges.find((e) => e.from === known.from && e.to === known.to);
    assert(
      edge,
      `KNOWN_VIOLATIONS lists ${known.from} → ${known.to}, which no longer exists: remove the entry`,
    );
    assertEquals(
      violations([edge], layers).length,
      1,
      `${known.from} → ${known.to} is allowed: remove the entry`,
    );
  }
});

Deno.test("layers: the checker finds every form of import, skips comments and strings, and names file:line", () => {
  const source = [
    '/** @example import { x } from "../serve/server.ts"; */',
    '// import { y } from "../serve/server.ts";',
    'import { a } from "../gpu/runtime.ts";',
    "import type {",
    "  B,",
    '} from "../serve/engine.ts";',
    'export { c } from "./sibling.ts";',
    'export * from "../report/page.ts";',
    'import "../pipeline/side_effect.ts";',
    'const url = "http://example.com//x"; const m = await import("../tasks/serve.ts");',
    'import { npm } from "npm:chart.js@4";',
    'export const FIXTURE = "../tests/fixtures/x";',
    "const text = \"import { z } from '../serve/server.ts'\";",
  ].join("\n");
  const edges = importsOf("kernels/k.ts", source);
  assertEquals(edges.map((e) => `${e.line} ${e.to}`), [
    "3 gpu/runtime.ts",
    "6 serve/engine.ts",
    "7 kernels/sibling.ts",
    "8 report/page.ts",
    "9 pipeline/side_effect.ts",
    "10 tasks/serve.ts",
  ]);
  const layers = parseLayerTable(
    "## Who may import whom\n\n| `gpu/` | — |\n| `kernels/` | `gpu/` |\n| `serve/` | `*` |\n" +
      "| `report/` | `*` |\n| `pipeline/` | `*` |\n| `tasks/` | `*` |\n| `io/` | `gpu/half.ts` |\n",
  );
  assertEquals(violations(edges, layers), [
    "kernels/k.ts:6: kernels/ imports serve/engine.ts, but kernels/ may import only gpu/",
    "kernels/k.ts:8: kernels/ imports report/page.ts, but kernels/ may import only gpu/",
    "kernels/k.ts:9: kernels/ imports pipeline/side_effect.ts, but kernels/ may import only gpu/",
    "kernels/k.ts:10: kernels/ imports tasks/serve.ts, but kernels/ may import only gpu/",
  ]);
  assertEquals(
    violations(importsOf("io/x.ts", 'import "../gpu/half.ts";\nimport "../gpu/runtime.ts";'), layers),
    ["io/x.ts:2: io/ imports gpu/runtime.ts, but io/ may import only gpu/half.ts"],
    "a file entry allows that file only",
  );
  assertEquals(violations(importsOf("gpu/g.ts", 'import "../kernels/k.ts";'), layers), [
    "gpu/g.ts:1: gpu/ imports kernels/k.ts, but gpu/ may import only nothing of ours",
  ]);
  assertEquals(violations(importsOf("newdir/n.ts", 'import "../gpu/g.ts";'), layers), [
    `newdir/n.ts: newdir is not in ${ARCHITECTURE}'s table; add its row`,
  ]);
  assertThrows(() => parseLayerTable("# nothing here"), Error, 'no "## Who may import whom" section');
});
