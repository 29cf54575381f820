import { hashJson, readManifest, runStages, type Stage } from "../../pipeline/stages.ts";
import { assert, assertEquals, assertNotEquals, assertRejects } from "../asserts.ts";

/** A stage writing `<dir>/<name>.txt` from its settings and its inputs' files, counting runs and cleans. */
function fileStage(dir: string, name: string, deps: string[], settings: { value: number }) {
  const counts = { runs: 0, cleans: 0 };
  const path = `${dir}/${name}.txt`;
  const stage: Stage = {
    name,
    deps,
    settings,
    outputs: [path],
    async missing() {
      try {
        await Deno.stat(path);
        return undefined;
      } catch {
        return `${path} is missing`;
      }
    },
    async clean() {
      counts.cleans++;
      await Deno.remove(path).catch(() => {});
    },
    async run() {
      counts.runs++;
      const inputs = await Promise.all(deps.map((d) => Deno.readTextFile(`${dir}/${d}.txt`)));
      await Deno.writeTextFile(path, [...inputs, `${name}=${settings.value}`].join(","));
      return { path };
    },
  };
  return { stage, counts };
}

/** a → b → c, and a → d: the shape of base → sft → kobest-sft, base → answers-pt. */
function graph(dir: string, values = { a: 1, b: 1, c: 1, d: 1 }) {
  const a = fileStage(dir, "a", [], { value: values.a });
  const b = fileStage(dir, "b", ["a"], { value: values.b });
  const c = fileStage(dir, "c", ["b"], { value: values.c });
  const d = fileStage(dir, "d", ["a"], { value: values.d });
  return {
    stages: [a.stage, b.stage, c.stage, d.stage],
    counts: { a: a.counts, b: b.counts, c: c.counts, d: d.counts },
  };
}

const quiet = { log: () => {} };

async function ran(dir: string, stages: Stage[]): Promise<string[]> {
  const outcomes = await runStages(stages, { manifestPath: `${dir}/pipeline.json`, about: null, ...quiet });
  return outcomes.filter((o) => o.action === "ran").map((o) => o.name);
}

Deno.test("stages: a first run runs everything and records it complete; a second run skips everything", async () => {
  const dir = await Deno.makeTempDir();
  assertEquals(await ran(dir, graph(dir).stages), ["a", "b", "c", "d"]);
  const manifest = await readManifest(`${dir}/pipeline.json`);
  assertEquals(manifest.stage_order, ["a", "b", "c", "d"]);
  for (const name of manifest.stage_order) {
    assertEquals(manifest.stages[name].status, "complete", name);
    assert(manifest.stages[name].run_id, `${name} has a run id`);
  }
  assertEquals(manifest.stages.c.inputs, { b: manifest.stages.b.run_id! });
  const again = graph(dir);
  assertEquals(await ran(dir, again.stages), []);
  assertEquals(again.counts.a.runs + again.counts.b.runs + again.counts.c.runs + again.counts.d.runs, 0);
});

Deno.test("stages: a removed output reruns that stage and its dependents only, without cleaning", async () => {
  const dir = await Deno.makeTempDir();
  await ran(dir, graph(dir).stages);
  await Deno.remove(`${dir}/b.txt`);
  const g = graph(dir);
  assertEquals(await ran(dir, g.stages), ["b", "c"]);
  assertEquals(g.counts.b.cleans, 0, "same settings: a resumable stage keeps what it has");
  assertEquals(g.counts.c.cleans, 1, "new inputs: the dependent starts fresh");
});

Deno.test("stages: a changed setting reruns that stage (cleaned) and everything downstream", async () => {
  const dir = await Deno.makeTempDir();
  await ran(dir, graph(dir).stages);
  const g = graph(dir, { a: 1, b: 2, c: 1, d: 1 });
  const outcomes = await runStages(g.stages, { manifestPath: `${dir}/pipeline.json`, about: null, ...quiet });
  assertEquals(outcomes.map((o) => [o.name, o.action]), [["a", "skipped"], ["b", "ran"], ["c", "ran"], [
    "d",
    "skipped",
  ]]);
  assertEquals(outcomes[1].reason, "settings changed");
  assertEquals(outcomes[2].reason, "input stage(s) b changed");
  assertEquals(g.counts.b.cleans, 1);
  assertEquals(await Deno.readTextFile(`${dir}/c.txt`), "a=1,b=2,c=1");
});

Deno.test("stages: a stage killed while running resumes without cleaning; a failure is recorded", async () => {
  const dir = await Deno.makeTempDir();
  const first = graph(dir);
  first.stages[1].run = () => Promise.reject(new Error("killed"));
  await assertRejects(
    () => runStages(first.stages, { manifestPath: `${dir}/pipeline.json`, about: null, ...quiet }),
    Error,
    "killed",
  );
  const failed = await readManifest(`${dir}/pipeline.json`);
  assertEquals([failed.stages.b.status, failed.stages.b.note], ["failed", "killed"]);
  assertEquals(failed.stages.c, undefined, "nothing after the failure ran");
  const g = graph(dir);
  const outcomes = await runStages(g.stages, { manifestPath: `${dir}/pipeline.json`, about: null, ...quiet });
  assertEquals(outcomes.filter((o) => o.action === "ran").map((o) => o.name), ["b", "c", "d"]);
  assertEquals(outcomes[1].reason, "the last run is failed; resuming");
  assertEquals(g.counts.b.cleans, 0);
});

Deno.test("stages: a disabled stage is recorded with its reason and never run", async () => {
  const dir = await Deno.makeTempDir();
  const g = graph(dir);
  g.stages[3].disabled = "no judge";
  const outcomes = await runStages(g.stages, { manifestPath: `${dir}/pipeline.json`, about: null, ...quiet });
  assertEquals(outcomes[3], { name: "d", action: "disabled", reason: "no judge", seconds: 0 });
  assertEquals(g.counts.d.runs, 0);
  const m = await readManifest(`${dir}/pipeline.json`);
  assertEquals([m.stages.d.status, m.stages.d.note], ["skipped", "no judge"]);
});

Deno.test("stages: stages must come after what they read, and names must be unique", async () => {
  const dir = await Deno.makeTempDir();
  const g = graph(dir);
  await assertRejects(
    () => runStages([g.stages[1], g.stages[0]], { manifestPath: `${dir}/p.json`, about: null, ...quiet }),
    Error,
    'stage "b" reads "a", which does not come before it',
  );
  await assertRejects(
    () => runStages([g.stages[0], g.stages[0]], { manifestPath: `${dir}/p.json`, about: null, ...quiet }),
    Error,
    'two stages are named "a"',
  );
});

Deno.test("stages: hashJson ignores key order; readManifest names a file that is not a manifest", async () => {
  assertEquals(
    await hashJson({ a: 1, b: [1, { c: 2, d: 3 }] }),
    await hashJson({ b: [1, { d: 3, c: 2 }], a: 1 }),
  );
  assertNotEquals(await hashJson({ a: 1 }), await hashJson({ a: 2 }));
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/pipeline.json`, '{"stages": []}');
  await assertRejects(
    () => readManifest(`${dir}/pipeline.json`),
    Error,
    `${dir}/pipeline.json: expected a pipeline manifest`,
  );
});
