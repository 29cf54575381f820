/**
 * The example scripts as a user would keep them: copied to a folder outside the repository (no deno.json
 * anywhere above it), importing the toolkit by the path of its mod.ts, and run by their shebangs.
 */
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertStringIncludes } from "../asserts.ts";
import { shebangFlags } from "../helpers.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const EXAMPLES = fileURLToPath(new URL("../../examples/", import.meta.url));
const MOD = fileURLToPath(new URL("../../mod.ts", import.meta.url));
const NAMES = [...Deno.readDirSync(EXAMPLES)].filter((e) => e.name.endsWith(".ts")).map((e) => e.name).sort();

Deno.test("examples: each imports the public API from mod.ts and runs by a narrow shebang", async () => {
  assertEquals(NAMES, ["generate.ts", "orpo_table2.ts", "serve_winrate.ts"]);
  for (const name of NAMES) {
    const text = await Deno.readTextFile(`${EXAMPLES}${name}`);
    const flags = await shebangFlags(`${EXAMPLES}${name}`);
    assertEquals(flags[0], "--no-prompt", name);
    assert(!flags.includes("-A") && !flags.includes("--allow-all") && !flags.includes("--allow-env"), name);
    const imports = [...text.matchAll(/from "([^"]+)"/g)].map((m) => m[1]).filter((s) =>
      !s.startsWith("node:")
    );
    assertEquals(imports, ["../mod.ts"], `${name} uses only the public API`);
    if (Deno.build.os !== "windows") {
      assertEquals((await Deno.stat(`${EXAMPLES}${name}`)).mode! & 0o111, 0o111);
    }
  }
});

/** Copies an example into `dir`, importing mod.ts by its absolute path, executable. */
async function copyOutside(name: string, dir: string): Promise<string> {
  const text = await Deno.readTextFile(`${EXAMPLES}${name}`);
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, text.replaceAll('"../mod.ts"', JSON.stringify(MOD)));
  await Deno.chmod(path, 0o755);
  return path;
}

async function runScript(path: string, cwd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(path, { args, cwd, env: { NO_COLOR: "1" } }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, `${path} ${args.join(" ")}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
  assertStringIncludes(stderr, "webgpu: ", "the backend and adapter are printed");
  return stdout;
}

Deno.test({
  name: "examples: run from a folder outside the repository, importing mod.ts by path",
  ignore: Deno.build.os === "windows", // shebangs
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kotransfer-examples-" });
    try {
      assert(!dir.startsWith(REPO), `${dir} must be outside ${REPO}`);
      const generate = await runScript(await copyOutside("generate.ts", dir), dir, "base", "안녕");
      assertStringIncludes(generate, "(24 tokens, finish: length)");

      const table2 = await runScript(
        await copyOutside("orpo_table2.ts", dir),
        dir,
        ...["--base", "base", "--out", "orpo", "--steps", "2", "--limit", "2"],
      );
      assertStringIncludes(table2, "| base | 0 |");
      assertStringIncludes(table2, "| orpo/orpo | 0 |");

      const table1 = await runScript(
        await copyOutside("serve_winrate.ts", dir),
        dir,
        ...["--a", "orpo/orpo", "--b", "base", "--limit", "2", "--out", "winrate"],
      );
      assertStringIncludes(table1, "| Model A | Model B | Win | Tie | Loss |");
      assert((await Deno.stat(`${dir}/winrate/judgments.jsonl`)).isFile);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
