/**
 * Loading a BF16 checkpoint streams: the host memory it needs on top of the GPU buffers is bounded by the
 * loader's pieces and queue (about 100–150 MiB measured, whatever the tensor), where converting a tensor
 * whole (the loader before) needs several times the tensor. Runs bench:load as a subprocess (the load in a
 * process of its own, for a clean memory figure).
 */
import type { BenchReport } from "../../bench/report.ts";
import { assert, assertEquals } from "../asserts.ts";

Deno.test("load: a BF16 tensor of 128 Mi elements streams into an f16 base without an f32 copy of it", async () => {
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
    // The loader's fixed pieces and queue measure 80–150 MiB on top whatever the tensor (noise included), so
    // the bound is three quarters of the tensor's f32 copy (192 MiB): a loader holding that copy cannot pass.
    const f32Copy = 32768 * 2048 * 4;
    assert(
      f.f16_stream_transientBytes < f32Copy * 0.75,
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
