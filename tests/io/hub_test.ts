import { dirname, join, relative } from "node:path";
import { parseModelConfig } from "../../io/hf_config.ts";
import { expectedParameterShapes, openModelFolder, saveModelFolder } from "../../io/hf_model.ts";
import {
  downloadFiles,
  downloadModel,
  type DownloadProgress,
  HubError,
  type HubOptions,
  listRepoFiles,
  resolveHubSettings,
  resolveModelPath,
  selectModelFiles,
} from "../../io/hub.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../asserts.ts";
import { randn } from "../helpers.ts";
import { FakeHub, type FakeRepo, gitBlobId } from "./fake_hub.ts";

const root = Deno.makeTempDirSync({ prefix: "hub-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const DATA_COMMIT = "fedcba9876543210fedcba9876543210fedcba98";
const TEST = { sanitizeOps: true, sanitizeResources: true };

/** The files of a tiny sharded llama, as saveModelFolder writes them, plus a tokenizer and repo clutter. */
async function tinyModelFiles(): Promise<Record<string, Uint8Array>> {
  const config = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    vocab_size: 48,
    rope_theta: 10000,
  };
  const cfg = parseModelConfig(config, "config.json");
  const tensors = new Map<string, Float32Array>();
  let seed = 1;
  for (const [name, shape] of expectedParameterShapes(cfg)) {
    tensors.set(name, randn(shape[0] * (shape[1] ?? 1), seed++));
  }
  const dir = await Deno.makeTempDir({ dir: root });
  await saveModelFolder(dir, { config, tensors, dtype: "F32", maxShardBytes: 4000 });
  await Deno.writeTextFile(`${dir}/tokenizer.json`, '{"version":"1.0"}');
  await Deno.writeTextFile(`${dir}/generation_config.json`, '{"eos_token_id":2}');
  const files: Record<string, Uint8Array> = {};
  for (const e of Deno.readDirSync(dir)) files[e.name] = await Deno.readFile(`${dir}/${e.name}`);
  files["README.md"] = new TextEncoder().encode("# tiny");
  files["pytorch_model.bin"] = new Uint8Array(16);
  return files;
}

const MODEL_FILES = await tinyModelFiles();
const SHARDS = Object.keys(MODEL_FILES).filter((f) => f.startsWith("model-")).sort();

function repos(): FakeRepo[] {
  return [
    { type: "model", id: "org/tiny", commit: COMMIT, files: MODEL_FILES },
    { type: "model", id: "org/gated", commit: COMMIT, files: MODEL_FILES, gated: true },
    {
      type: "dataset",
      id: "skt/kobest_v1",
      commit: DATA_COMMIT,
      files: { "boolq/train.tsv": "ID\tText\n1\t가\n", "boolq/data.parquet": new Uint8Array([1, 2, 3, 4]) },
    },
  ];
}

/** Runs `body` against a fresh fake Hub and an empty cache; options never fall back to the real environment. */
async function withHub(body: (hub: FakeHub, opts: HubOptions) => Promise<void>): Promise<void> {
  const hub = FakeHub.start(repos());
  const cacheDir = await Deno.makeTempDir({ dir: root });
  try {
    await body(hub, { endpoint: hub.endpoint, cacheDir, token: "", offline: false });
  } finally {
    await hub.close();
  }
}

Deno.test("hub: a sharded model lands in huggingface_hub's cache layout and opens", TEST, async () => {
  await withHub(async (hub, opts) => {
    const progress: DownloadProgress[] = [];
    const snapshot = await downloadModel("org/tiny", { ...opts, onProgress: (p) => progress.push(p) });
    const repoDir = join(opts.cacheDir!, "models--org--tiny");
    assertEquals(snapshot, join(repoDir, "snapshots", COMMIT));
    assertEquals(
      await Deno.readTextFile(join(repoDir, "refs", "main")),
      COMMIT,
      "refs/main holds the bare hash",
    );

    const expected = [
      "config.json",
      "generation_config.json",
      "model.safetensors.index.json",
      "tokenizer.json",
      ...SHARDS,
    ];
    assertEquals([...Deno.readDirSync(snapshot)].map((e) => e.name).sort(), expected.sort());
    for (const name of expected) {
      const link = join(snapshot, name);
      assert(Deno.lstatSync(link).isSymlink, `${name} is a symlink`);
      const ids = hub.fileIds("model", "org/tiny", name);
      const blobId = name.endsWith(".safetensors") ? ids.sha256 : ids.gitSha1;
      assertEquals(Deno.readLinkSync(link), relative(dirname(link), join(repoDir, "blobs", blobId)), name);
      assertEquals(await Deno.readFile(link), MODEL_FILES[name], name);
    }
    assertEquals(
      gitBlobId(MODEL_FILES["config.json"]),
      hub.fileIds("model", "org/tiny", "config.json").gitSha1,
    );

    const model = await openModelFolder(snapshot);
    assertEquals(model.fileOf("model.norm.weight").startsWith("model-0000"), true);
    assert(
      !hub.requests.some((r) => r.path.endsWith("README.md") || r.path.endsWith(".bin")),
      "no clutter fetched",
    );
    assert(hub.requests.every((r) => r.authorization === null), "no token, no Authorization header");
    const last = progress.findLast((p) => p.file === SHARDS[0])!;
    assertEquals([last.downloaded, last.total], [
      MODEL_FILES[SHARDS[0]].length,
      MODEL_FILES[SHARDS[0]].length,
    ]);
  });
});

Deno.test("hub: a second call is served from the cache without a request, offline too", TEST, async () => {
  await withHub(async (hub, opts) => {
    const first = await downloadModel("org/tiny", opts);
    const before = hub.requests.length;
    assertEquals(await downloadModel("org/tiny", opts), first);
    assertEquals(await downloadModel("org/tiny", { ...opts, offline: true }), first);
    assertEquals(await downloadFiles("org/tiny", ["config.json"], { ...opts, offline: true }), [
      join(first, "config.json"),
    ]);
    assertEquals(hub.requests.length, before, "no request once everything is cached");
    await downloadModel("org/tiny", { ...opts, refresh: true });
    assert(hub.requests.length > before, "refresh asks the Hub again");
  });
});

Deno.test("hub: an interrupted download resumes with a Range request", TEST, async () => {
  await withHub(async (hub, opts) => {
    const shard = SHARDS[0];
    hub.cutOnce.set(shard, 1000);
    const err = await assertRejects(() => downloadModel("org/tiny", opts), HubError, "run again to resume");
    assertEquals((err as HubError).kind, "network");
    const sha = hub.fileIds("model", "org/tiny", shard).sha256;
    const partial = join(opts.cacheDir!, "models--org--tiny", "blobs", `${sha}.incomplete`);
    const kept = Deno.statSync(partial).size;
    assert(kept > 0 && kept <= 1000, `kept ${kept} bytes of the cut download`);

    const snapshot = await downloadModel("org/tiny", opts);
    const resumed = hub.requests.filter((r) => r.server === "cdn" && r.path === `/lfs/${sha}`);
    assertEquals(resumed.at(-1)!.range, `bytes=${kept}-`);
    assertEquals(await Deno.readFile(join(snapshot, shard)), MODEL_FILES[shard]);
    assert(!(await exists(partial)), "the .incomplete file took its final name");
  });
});

Deno.test("hub: a corrupted or wrongly sized download is rejected and discarded", TEST, async () => {
  await withHub(async (hub, opts) => {
    const shard = SHARDS[1];
    const sha = hub.fileIds("model", "org/tiny", shard).sha256;
    const blobs = join(opts.cacheDir!, "models--org--tiny", "blobs");
    hub.corrupt.add(shard);
    await assertRejects(() => downloadModel("org/tiny", opts), HubError, `${shard} from `);
    const err = await assertRejects(() => downloadModel("org/tiny", opts), HubError, `expected ${sha}`);
    assertEquals((err as HubError).kind, "integrity");
    assert(
      !(await exists(join(blobs, sha))) && !(await exists(join(blobs, `${sha}.incomplete`))),
      "nothing kept",
    );

    hub.corrupt.delete(shard);
    hub.wrongSize.add(shard);
    const size = MODEL_FILES[shard].length;
    await assertRejects(
      () => downloadModel("org/tiny", opts),
      HubError,
      `is ${size} bytes, but the Hub announced ${size + 1}`,
    );
    hub.wrongSize.delete(shard);
    await downloadModel("org/tiny", opts);
  });
});

Deno.test("hub: gated repos need HF_TOKEN; the token never leaves for the CDN", TEST, async () => {
  await withHub(async (hub, opts) => {
    const err = await assertRejects(() => downloadModel("org/gated", opts), HubError, "answered 401");
    assertEquals((err as HubError).kind, "auth");
    assertStringIncludes(err.message, `${hub.endpoint}/api/models/org/gated/revision/main`);
    assertStringIncludes(err.message, "set HF_TOKEN");
    await assertRejects(
      () => downloadFiles("org/gated", ["config.json"], { ...opts, token: "hf_wrong" }),
      HubError,
      "answered 403: the repo is gated or private (Access to model org/gated is restricted)",
    );
    const before = hub.requests.length;
    await downloadModel("org/gated", { ...opts, token: hub.token });
    const later = hub.requests.slice(before);
    assert(later.filter((r) => r.server === "hub").every((r) => r.authorization === `Bearer ${hub.token}`));
    assert(later.some((r) => r.server === "cdn"), "weights came from the CDN");
    assert(
      later.filter((r) => r.server === "cdn").every((r) => r.authorization === null),
      "no token to the CDN",
    );
  });
});

Deno.test("hub: missing files, revisions and repos give 404-style errors naming the URL", TEST, async () => {
  await withHub(async (hub, opts) => {
    await assertRejects(
      () => downloadFiles("org/tiny", ["nope.json"], opts),
      HubError,
      `org/tiny: nope.json was not found at revision "main": ${hub.endpoint}/org/tiny/resolve/main/nope.json answered 404`,
    );
    await assertRejects(
      () => downloadModel("org/tiny", { ...opts, revision: "v9" }),
      HubError,
      'revision "v9" does not exist',
    );
    await assertRejects(
      () => listRepoFiles("org/absent", opts),
      HubError,
      "the repo does not exist, or it is private",
    );
    await assertRejects(
      () => downloadFiles("org/tiny", ["../etc/passwd"], opts),
      HubError,
      "is not a file path",
    );
    await assertRejects(() => downloadModel("not a repo", opts), HubError, "is not a Hub repo id");
  });
});

Deno.test("hub: offline with an empty cache, and an unreachable Hub, fail clearly", TEST, async () => {
  await withHub(async (hub, opts) => {
    const err = await assertRejects(
      () => downloadModel("org/tiny", { ...opts, offline: true }),
      HubError,
      "HF_HUB_OFFLINE",
    );
    assertEquals((err as HubError).kind, "offline");
    assertStringIncludes(err.message, "org/tiny");
    assertStringIncludes(err.message, `${hub.endpoint}/org/tiny/resolve/main/config.json`);
    await assertRejects(
      () =>
        downloadFiles("skt/kobest_v1", ["boolq/train.tsv"], { ...opts, repoType: "dataset", offline: true }),
      HubError,
      `${hub.endpoint}/datasets/skt/kobest_v1/resolve/main/boolq/train.tsv`,
    );
    assertEquals(hub.requests.length, 0, "offline means no request at all");
  });
  const closed = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response());
  const endpoint = `http://127.0.0.1:${closed.addr.port}`;
  await closed.shutdown();
  const cacheDir = await Deno.makeTempDir({ dir: root });
  const err = await assertRejects(
    () => downloadModel("org/tiny", { endpoint, cacheDir, token: "", offline: false }),
    HubError,
    `could not reach ${endpoint}/api/models/org/tiny/revision/main`,
  );
  assertEquals((err as HubError).kind, "network");
  assertStringIncludes(err.message, "HF_HUB_OFFLINE=1");
});

Deno.test("hub: dataset files and listings; pinned commits write no ref", TEST, async () => {
  await withHub(async (hub, opts) => {
    const dataOpts: HubOptions = { ...opts, repoType: "dataset" };
    const listing = await listRepoFiles("skt/kobest_v1", dataOpts);
    assertEquals(listing, { commit: DATA_COMMIT, files: ["boolq/train.tsv", "boolq/data.parquet"] });
    const [tsv, parquet] = await downloadFiles(
      "skt/kobest_v1",
      ["boolq/train.tsv", "boolq/data.parquet"],
      dataOpts,
    );
    const repoDir = join(opts.cacheDir!, "datasets--skt--kobest_v1");
    assertEquals(tsv, join(repoDir, "snapshots", DATA_COMMIT, "boolq", "train.tsv"));
    assertEquals(await Deno.readTextFile(tsv), "ID\tText\n1\t가\n");
    assertEquals(await Deno.readFile(parquet), new Uint8Array([1, 2, 3, 4]));
    const blob = join(repoDir, "blobs", hub.fileIds("dataset", "skt/kobest_v1", "boolq/data.parquet").sha256);
    assertEquals(Deno.readLinkSync(parquet), relative(dirname(parquet), blob));
    assert(hub.requests.some((r) => r.path === "/datasets/skt/kobest_v1/resolve/main/boolq/train.tsv"));

    const pinned = await downloadModel("org/tiny", { ...opts, revision: COMMIT });
    assertEquals(pinned, join(opts.cacheDir!, "models--org--tiny", "snapshots", COMMIT));
    assert(!(await exists(join(opts.cacheDir!, "models--org--tiny", "refs"))), "a commit needs no ref");
    const only = await downloadModel("org/tiny", { ...opts, files: ["config.json"] });
    assertEquals(only, pinned);
  });
});

Deno.test("hub: resolveModelPath takes folders as they are and downloads repo ids", TEST, async () => {
  await withHub(async (_hub, opts) => {
    const local = await Deno.makeTempDir({ dir: root });
    assertEquals(await resolveModelPath(local, opts), local);
    assertEquals(
      await resolveModelPath("org/tiny", opts),
      join(opts.cacheDir!, "models--org--tiny", "snapshots", COMMIT),
    );
    assertEquals(
      await resolveModelPath(`org/tiny@${COMMIT}`, opts),
      join(opts.cacheDir!, "models--org--tiny", "snapshots", COMMIT),
    );
    await assertRejects(
      () => resolveModelPath("./no/such/dir/here", opts),
      HubError,
      "neither an existing folder",
    );
    await assertRejects(
      () => resolveModelPath("org/absent", opts),
      HubError,
      '"org/absent" is not a local folder, and',
    );
  });
});

Deno.test("hub: settings follow huggingface_hub's environment variables", async () => {
  const tokenDir = await Deno.makeTempDir({ dir: root });
  await Deno.writeTextFile(join(tokenDir, "token"), "hf_saved\n");
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assertEquals(resolveHubSettings({}, env({ HOME: "/home/u", HF_HOME: tokenDir })), {
    endpoint: "https://huggingface.co",
    cacheDir: join(tokenDir, "hub"),
    token: "hf_saved",
    offline: false,
  });
  assertEquals(
    resolveHubSettings(
      {},
      env({
        HOME: "/home/u",
        HF_HUB_CACHE: "/c",
        HF_ENDPOINT: "http://mirror/",
        HF_TOKEN: "t",
        HF_HUB_OFFLINE: "yes",
      }),
    ),
    { endpoint: "http://mirror", cacheDir: "/c", token: "t", offline: true },
  );
  assertEquals(resolveHubSettings({}, env({ HOME: "/home/u" })).cacheDir, "/home/u/.cache/huggingface/hub");
  assertEquals(
    resolveHubSettings({ offline: false }, env({ HOME: "/h", HF_HUB_OFFLINE: "1" })).offline,
    false,
  );
  assertEquals(selectModelFiles(["README.md", "config.json", "model.safetensors", "tokenizer.json"]), [
    "config.json",
    "tokenizer.json",
    "model.safetensors",
  ]);
  assertEquals(
    (await assertRejects(() =>
      Promise.resolve().then(() => selectModelFiles(["config.json", "pytorch_model.bin"]))
    ))
      .message.includes("only PyTorch .bin weights"),
    true,
  );
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
