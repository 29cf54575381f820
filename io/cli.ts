/**
 * How every task in `tasks/` runs its main function: a permission the command line did not grant ends the
 * task with one line naming the flag to add (Deno's own error is a `NotCapable` stack trace), wherever it
 * was thrown, awaited or not.
 *
 * @module
 */

const KINDS = ["read", "write", "net", "env", "run", "sys", "ffi", "import"];

/**
 * The one line printed for a denied permission, or undefined when `error` is something else. It names the
 * exact flag to add, e.g. `--allow-env=OPENAI_API_KEY`.
 *
 * @example
 * ```ts
 * deniedPermissionLine("serve", new Deno.errors.NotCapable(
 *   'Requires env access to "MY_KEY", run again with the --allow-env flag',
 * ));
 * // 'serve: permission denied: env access to "MY_KEY"; run again with --allow-env=MY_KEY added to `deno run` (or the shebang)'
 * ```
 */
export function deniedPermissionLine(task: string, error: unknown): string | undefined {
  const denied = error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied;
  if (!denied) return undefined;
  const message = (error as Error).message;
  const m = /Requires (\w+) access(?: to "([^"]*)")?/.exec(message);
  if (!m || !KINDS.includes(m[1])) return `${task}: permission denied: ${message.split("\n")[0]}`;
  const [, kind, target] = m;
  // A path is rarely the right scope (the next file would be denied too): name the flag and its form.
  const flag = target === undefined
    ? `--allow-${kind}`
    : kind === "read" || kind === "write"
    ? `--allow-${kind} (or --allow-${kind}=FOLDER)`
    : `--allow-${kind}=${target}`;
  return `${task}: permission denied: ${kind} access${target === undefined ? "" : ` to "${target}"`}; ` +
    `run again with ${flag} added to \`deno run\` (or the shebang)`;
}

/**
 * Runs a task's main function and exits with its status. A denied permission, thrown or rejected anywhere
 * (even in a promise nobody awaited), prints {@link deniedPermissionLine} and exits with status 2; any other
 * error keeps Deno's usual report.
 *
 * @example
 * ```ts
 * if (import.meta.main) Deno.exit(await runTask("orpo", () => runTrainingTask("orpo", Deno.args)));
 * ```
 */
export async function runTask(task: string, main: () => Promise<number | void>): Promise<number> {
  const onRejection = (event: PromiseRejectionEvent) => {
    const line = deniedPermissionLine(task, event.reason);
    if (line === undefined) return;
    event.preventDefault();
    console.error(line);
    Deno.exit(2);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  try {
    return (await main()) ?? 0;
  } catch (e) {
    const line = deniedPermissionLine(task, e);
    if (line === undefined) throw e;
    console.error(line);
    return 2;
  }
}
