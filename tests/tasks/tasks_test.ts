/**
 * The task files as a user meets them: each runs by its shebang with narrow permissions, answers -h and
 * --help, agrees with deno.json, and a permission it lacks ends it with one line naming the flag.
 */
import { deniedPermissionLine } from "../../io/cli.ts";
import { missingReport, SETUP_COMMAND, SUITE_COMMAND } from "../../tasks/setup.ts";
import { assert, assertEquals, assertStringIncludes } from "../asserts.ts";
import { shebangFlags, taskArgs, taskFile } from "../helpers.ts";

const TASKS_DIR = new URL("../../tasks/", import.meta.url);
const TASKS = [...Deno.readDirSync(TASKS_DIR)]
  .filter((e) => e.isFile && e.name.endsWith(".ts"))
  .map((e) => e.name.slice(0, -3))
  .sort();
/** deno.json's name for each task file where the two differ. */
const TASK_NAMES: Record<string, string> = { kobest_data: "kobest-data" };

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test("tasks: every task file has a narrow shebang and its run bit", async () => {
  assert(TASKS.length >= 11, `tasks found: ${TASKS.join(", ")}`);
  for (const name of TASKS) {
    const flags = await shebangFlags(taskFile(name));
    assertEquals(flags[0] === "--quiet" ? flags[1] : flags[0], "--no-prompt", `${name}: no prompt, one line`);
    for (const flag of flags) {
      assert(!["-A", "--allow-all"].includes(flag), `${name}: ${flag}`);
      for (const scoped of ["--allow-env", "--allow-run", "--allow-sys"]) {
        assert(flag !== scoped, `${name}: ${scoped} must name what it allows`);
      }
    }
    if (Deno.build.os !== "windows") {
      const mode = (await Deno.stat(taskFile(name))).mode!;
      assertEquals(mode & 0o111, 0o111, `${name}.ts must be executable (git mode 100755)`);
    }
  }
});

Deno.test("tasks: deno.json runs each task with exactly its shebang's flags", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  for (const name of TASKS) {
    const taskName = TASK_NAMES[name] ?? name;
    const expected = `deno run ${(await shebangFlags(taskFile(name))).join(" ")} tasks/${name}.ts`;
    assertEquals(config.tasks[taskName], expected, `deno.json task "${taskName}"`);
  }
  assertEquals(
    config.tasks.test,
    `${SETUP_COMMAND} --check && ${SUITE_COMMAND}`,
    "the machine is checked first",
  );
});

Deno.test("tasks: each runs by its shebang and answers -h and --help", async () => {
  for (const name of TASKS) {
    for (const flag of ["--help", "-h"]) {
      const out = await new Deno.Command(taskFile(name), { args: [flag], env: { NO_COLOR: "1" } }).output();
      const stdout = decode(out.stdout);
      assertEquals(out.code, 0, `./tasks/${name}.ts ${flag}: ${decode(out.stderr)}`);
      assert(/usage|deno task/i.test(stdout), `./tasks/${name}.ts ${flag} printed:\n${stdout}`);
    }
  }
});

Deno.test("tasks: a denied permission is one line naming the flag to add", async () => {
  const out = await Deno.makeTempDir({ prefix: "denied-" });
  try {
    const cases: [string, string[], string, string][] = [
      // No --allow-write: the task is run with read access only.
      [
        "kobest_data",
        ["--data-dir", "data/kobest_tiny", "--out", `${out}/kd`],
        "--allow-read",
        "--allow-write",
      ],
      // A key variable outside the declared ones.
      ["serve", ["--model", out, "--api-key-env", "SOME_OTHER_KEY"], "", "--allow-env=SOME_OTHER_KEY"],
    ];
    for (const [name, args, only, flag] of cases) {
      const deno = only === ""
        ? await taskArgs(name, ...args)
        : ["run", "--no-prompt", only, taskFile(name), ...args];
      const run = await new Deno.Command(Deno.execPath(), {
        args: deno,
        env: { NO_COLOR: "1", SOME_OTHER_KEY: "x" },
        cwd: new URL("../..", import.meta.url),
      }).output();
      const stderr = decode(run.stderr).trim();
      assertEquals(run.code, 2, stderr);
      assertEquals(stderr.split("\n").length, 1, `one line, got:\n${stderr}`);
      assertStringIncludes(stderr, `${name}: permission denied`);
      assertStringIncludes(stderr, flag);
      assert(!stderr.includes("NotCapable"), stderr);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("tasks: the denied-permission line names the exact flag, or the flag and its form for paths", () => {
  const env = new Deno.errors.NotCapable(
    'Requires env access to "MY_KEY", run again with the --allow-env flag',
  );
  assertEquals(
    deniedPermissionLine("serve", env),
    'serve: permission denied: env access to "MY_KEY"; run again with --allow-env=MY_KEY added to `deno run` ' +
      "(or the shebang)",
  );
  const write = new Deno.errors.NotCapable(
    'Requires write access to "runs/x", run again with the --allow-write flag',
  );
  assertStringIncludes(deniedPermissionLine("orpo", write)!, "--allow-write (or --allow-write=FOLDER)");
  assertEquals(deniedPermissionLine("orpo", new Error("other")), undefined);
});

Deno.test("setup --check: what is missing, then the one command to run, naming mesa-vulkan-drivers", () => {
  const report = missingReport([
    { name: "WebGPU adapter", ok: false, detail: "only the GL backend was found" },
    { name: "Chromium", ok: true, detail: "Chromium 156" },
  ], true);
  assertStringIncludes(report, "  - WebGPU adapter: only the GL backend was found");
  assert(!report.includes("Chromium 156"), "only problems are listed");
  assertStringIncludes(report, `\n  ${SETUP_COMMAND}\n`);
  assertStringIncludes(report, "mesa-vulkan-drivers libvulkan1 chromium fonts-nanum");
  assertStringIncludes(missingReport([], false), "mesa-vulkan-drivers");
});

Deno.test("setup --check: with the Vulkan driver hidden it stops at once, naming the package", async () => {
  const t0 = performance.now();
  const run = await new Deno.Command(Deno.execPath(), {
    args: await taskArgs("setup", "--check"),
    env: { NO_COLOR: "1", VK_ICD_FILENAMES: "/nonexistent.json" },
  }).output();
  const seconds = (performance.now() - t0) / 1000;
  const stderr = decode(run.stderr);
  assertEquals(run.code, 1, stderr);
  assertStringIncludes(stderr, "only the GL backend was found");
  assertStringIncludes(stderr, "mesa-vulkan-drivers");
  assertStringIncludes(stderr, `  ${SETUP_COMMAND}\n`);
  assert(seconds < 60, `took ${seconds.toFixed(1)} s`);
});

Deno.test({
  name:
    "setup: installs exactly the missing packages with apt, non-interactively, and then finds nothing to do",
  // Fake dpkg-query, apt-get and sudo on PATH (Deno resolves --allow-run names there): nothing is installed
  // for real, whoever runs the test.
  ignore: Deno.build.os === "windows",
  async fn() {
    const bin = await Deno.makeTempDir({ prefix: "fake-apt-" });
    try {
      await Deno.writeTextFile(
        `${bin}/dpkg-query`,
        `#!/bin/sh
shift 2
for p in "$@"; do
  if [ "$p" != fonts-nanum ] || [ -e "${bin}/installed" ]; then echo "$p install ok installed"; fi
done
`,
      );
      await Deno.writeTextFile(
        `${bin}/apt-get`,
        `#!/bin/sh
echo "DEBIAN_FRONTEND=$DEBIAN_FRONTEND apt-get $*" >> "${bin}/log"
case "$1" in install) touch "${bin}/installed";; esac
`,
      );
      // As sudo would: run the command with the variables given before it.
      await Deno.writeTextFile(`${bin}/sudo`, `#!/bin/sh\nexec env "$@"\n`);
      for (const f of ["dpkg-query", "apt-get", "sudo"]) await Deno.chmod(`${bin}/${f}`, 0o755);
      const setup = async () =>
        await new Deno.Command(Deno.execPath(), {
          args: await taskArgs("setup"),
          env: { NO_COLOR: "1", PATH: `${bin}:${Deno.env.get("PATH")}` },
        }).output();
      const first = await setup();
      assertEquals(first.code, 0, decode(first.stderr));
      assertStringIncludes(decode(first.stderr), "setup: installing fonts-nanum");
      assertEquals((await Deno.readTextFile(`${bin}/log`)).trim().split("\n"), [
        "DEBIAN_FRONTEND=noninteractive apt-get update -qq",
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fonts-nanum",
      ]);
      const again = await setup();
      assertEquals(again.code, 0, decode(again.stderr));
      assert(!decode(again.stderr).includes("installing"), "nothing to install the second time");
      assertEquals((await Deno.readTextFile(`${bin}/log`)).trim().split("\n").length, 2);
    } finally {
      await Deno.remove(bin, { recursive: true });
    }
  },
});
