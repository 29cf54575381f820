import { assert, assertEquals, assertStringIncludes, assertThrows } from "../asserts.ts";
import {
  Arena,
  f32,
  GpuLimitError,
  grid,
  i32,
  inferBackend,
  packUniform,
  slice,
  WGSL_FLAT_INDEX,
} from "../../gpu/runtime.ts";
import { type Capability, GPU_TEST, testGpu, testNeeding } from "../helpers.ts";

const DOUBLE = `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
struct P { n: u32, scale: f32 }
@group(0) @binding(2) var<uniform> p: P;
${WGSL_FLAT_INDEX}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = flat_group(wid, nwg) * 64u + li;
  if (i < p.n) { y[i] = p.scale * x[i]; }
}`;

Deno.test("runtime: dispatch, run and read round-trip", GPU_TEST, async () => {
  const gpu = await testGpu();
  const n = 1000;
  const x = gpu.upload(Float32Array.from({ length: n }, (_, i) => i), "x");
  const y = gpu.tensor(n, "f32", "y");
  gpu.run([gpu.dispatch(DOUBLE, [x, y], grid(n, 64), [n, f32(2)], "double")]);
  const out = await gpu.read(y);
  assertEquals(out[999], 1998);
  assertEquals(out[1], 2);
});

Deno.test("runtime: grid folds large launches into two dimensions", () => {
  assertEquals(grid(100, 64), [2, 1, 1]);
  const [x, y] = grid(70000 * 64, 64);
  assertEquals(x * y >= 70000, true);
  assertEquals(x <= 65535, true);
});

Deno.test("runtime: arena tensors are aligned, sliced and bound by offset", GPU_TEST, async () => {
  const gpu = await testGpu();
  const arena = new Arena(gpu, "params");
  const a = arena.alloc(3, "f32", "a");
  const b = arena.alloc(130, "f32", "b");
  arena.finish();
  assertEquals(a.offset, 0);
  assertEquals(b.offset, 256);
  gpu.write(b, Float32Array.from({ length: 130 }, (_, i) => i + 1));
  const out = gpu.tensor(66);
  gpu.run([gpu.dispatch(DOUBLE, [slice(b, 64, 66), out], grid(66, 64), [66, f32(1)], "copy")]);
  const r = await gpu.read(out);
  assertEquals(r[0], 65);
  assertEquals(r[65], 130);
  assertThrows(() => slice(b, 3, 4), RangeError, "aligned");
});

Deno.test("runtime: limits give clear errors", GPU_TEST, async () => {
  const gpu = await testGpu();
  assertThrows(() => gpu.tensor(gpu.maxBinding, "f32", "huge"), GpuLimitError, '"huge"');
});

Deno.test("runtime: uniform packing", () => {
  const b = new DataView(packUniform([7, f32(0.5), i32(-2)]));
  assertEquals(b.byteLength, 16);
  assertEquals(b.getUint32(0, true), 7);
  assertEquals(b.getFloat32(4, true), 0.5);
  assertEquals(b.getInt32(8, true), -2);
  assertThrows(() => packUniform([1.5]), RangeError, "f32()");
});

Deno.test("runtime: timing returns a positive duration", GPU_TEST, async () => {
  const gpu = await testGpu();
  const n = 4096;
  const x = gpu.tensor(n);
  const y = gpu.tensor(n);
  const ms = await gpu.time([gpu.dispatch(DOUBLE, [x, y], grid(n, 64), [n, f32(1)])], 3);
  assertEquals(ms > 0, true);
});

Deno.test("runtime: live and peak bytes follow creation and destruction", GPU_TEST, async () => {
  const gpu = await testGpu();
  const before = gpu.liveBytes;
  gpu.resetPeakBytes();
  const a = gpu.tensor(1000, "f32", "counted.a"); // 4000 B, rounded to 4000 (a multiple of 16)
  const b = gpu.tensor(3, "f16", "counted.b"); // 6 B, rounded up to the 16-byte minimum
  assertEquals(gpu.liveBytes - before, 4016);
  const arena = new Arena(gpu, "counted.arena");
  arena.alloc(10, "f32");
  arena.alloc(10, "f32"); // each allocation is 256-byte aligned: one 512-byte buffer
  arena.finish();
  assertEquals(gpu.liveBytes - before, 4528);
  a.buffer.destroy();
  a.buffer.destroy(); // a second destroy must not count twice
  assertEquals(gpu.liveBytes - before, 528);
  assertEquals(gpu.peakBytes - before, 4528);
  gpu.resetPeakBytes();
  assertEquals(gpu.peakBytes, gpu.liveBytes);
  // A readback's staging buffer (16 bytes here) counts while it exists and is released after.
  await gpu.read(b);
  assertEquals(gpu.liveBytes - before, 528);
  assertEquals(gpu.peakBytes - before, 528 + 16);
  b.buffer.destroy();
  arena.chunks[0].buffer.destroy();
  assertEquals(gpu.liveBytes, before);
});

Deno.test("runtime: the backend is named by DENO_WEBGPU_BACKEND or recognised from the adapter", () => {
  const lavapipe = {
    features: new Set(["shader-f16", "timestamp-query"]),
    subgroupMinSize: 8,
    subgroupMaxSize: 8,
  };
  const llvmpipeGl = { features: new Set(["timestamp-query"]), subgroupMinSize: 4, subgroupMaxSize: 128 };
  const nvidia = { features: new Set(["shader-f16"]), subgroupMinSize: 32, subgroupMaxSize: 32 };
  assertEquals(inferBackend("linux", undefined, lavapipe), "Vulkan");
  assertEquals(inferBackend("linux", undefined, llvmpipeGl), "GL");
  assertEquals(inferBackend("linux", "vulkan,gl", llvmpipeGl), "GL", "a list of backends decides nothing");
  assertEquals(inferBackend("linux", "GL", lavapipe), "GL", "a named backend decides");
  assertEquals(inferBackend("linux", "vk", llvmpipeGl), "Vulkan");
  assertEquals(
    inferBackend("linux", undefined, { ...nvidia, features: new Set() }),
    "Vulkan",
    "no f16 alone",
  );
  assertEquals(inferBackend("darwin", undefined, llvmpipeGl), "Metal");
  assertEquals(inferBackend("windows", undefined, nvidia), "Vulkan or D3D12");
  assertEquals(inferBackend("windows", "dx12", nvidia), "D3D12");
  assertEquals(inferBackend("windows", undefined, llvmpipeGl), "GL");
});

/** Runs Gpu.create twice in a fresh process and returns its stderr. */
async function announcement(env: Record<string, string>, allowEnv: boolean): Promise<string> {
  const runtime = new URL("../../gpu/runtime.ts", import.meta.url).href;
  const code = `import { Gpu } from ${JSON.stringify(runtime)};
    await Gpu.create(); await Gpu.create(); await Gpu.create({ announce: false });`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-prompt", ...(allowEnv ? ["--allow-env=DENO_WEBGPU_BACKEND"] : []), code],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert(out.success, stderr);
  return stderr.split("\n").filter((l) => !l.includes("XDG_RUNTIME_DIR")).join("\n");
}

const VULKAN = await (async (): Promise<Capability> => {
  const gpu = await testGpu();
  return {
    name: "the Vulkan backend",
    present: gpu.report.backend === "Vulkan",
    hint: `the test GPU runs on ${gpu.report.backend}; install Mesa's Vulkan driver: deno task setup`,
  };
})();

testNeeding(
  VULKAN,
  "runtime: tasks print the backend once on stderr, and on GL warn once naming the Vulkan package",
  {},
  async () => {
    const vulkan = await announcement({ DENO_WEBGPU_BACKEND: "vulkan" }, true);
    assertEquals(vulkan.match(/^webgpu: /gm)?.length, 1, vulkan);
    assertStringIncludes(vulkan, "webgpu: Vulkan, ");
    assertEquals(vulkan.includes("mesa-vulkan-drivers"), false);
    // Without permission to read DENO_WEBGPU_BACKEND the backend is recognised from the adapter.
    assertStringIncludes(await announcement({}, false), "webgpu: Vulkan, ");
    for (
      const [env, allowEnv] of [[{ DENO_WEBGPU_BACKEND: "gl" }, true], [
        { DENO_WEBGPU_BACKEND: "gl" },
        false,
      ]] as const
    ) {
      const gl = await announcement(env, allowEnv);
      assertEquals(gl.match(/^webgpu: GL, /gm)?.length, 1, gl);
      assertEquals(gl.match(/^warning: WebGPU runs on the GL backend/gm)?.length, 1, gl);
      assertStringIncludes(gl, "mesa-vulkan-drivers");
    }
  },
);
