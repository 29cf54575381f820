/**
 * Loading a BF16 checkpoint streams: the host memory it needs on top of the GPU buffers stays a fraction of
 * the largest tensor's f32 copy, where converting tensors whole (the loader before) needed several times
 * that. Runs bench:load as a subprocess (each load in a process of its own, for clean memory figures).
 */
import type { BenchReport } from "../../bench/common.ts";
import { assert, assertEquals } from "../asserts.ts";

Deno.test("load: a BF16 tensor of 64 Mi elements streams into an f16 base within half its f32 size", async () => {
  const dir = await Deno.makeTempDir({ prefix: "load-memory-" });
  try {
    const json = `${dir}/load.json`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-run",
        "bench/load_memory.ts",
        "--vocab",
        "32768",
        "--hidden",
        "2048",
        "--into",
        "f16",
        "--json",
        json,
      ],
      cwd: new URL("../../", import.meta.url).pathname,
      env: { NO_COLOR: "1" },
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, text);
    const f = (JSON.parse(await Deno.readTextFile(json)) as BenchReport).figures;
    const f32Copy = 32768 * 2048 * 4;
    assert(
      f.f16_stream_transientBytes < f32Copy / 2,
      `streamed: ${f.f16_stream_transientBytes} on top\n${text}`,
    );
    assert(
      f.f16_whole_transientBytes > 2 * f.f16_stream_transientBytes,
      `whole tensors needed ${f.f16_whole_transientBytes}, streaming ${f.f16_stream_transientBytes}\n${text}`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
