/**
 * The WebGPU runtime: adapter and device, tensors in GPU buffers, a pipeline cache, dispatch records,
 * one-encoder submission, readback and timing.
 *
 * Everything that touches `navigator.gpu` lives here. Kernels build {@link Dispatch} records through
 * {@link Gpu.dispatch}; callers record whole steps with {@link Gpu.run} (one command encoder, one compute
 * pass) and read results back rarely with {@link Gpu.read} / {@link Gpu.readMany}.
 *
 * @module
 */

/** Element types a tensor may hold. `f16` needs the adapter's `shader-f16` feature to be used in a kernel. */
export type DType = "f32" | "f16" | "u32" | "i32";

/** Bytes per element of each {@link DType}. */
export const DTYPE_BYTES: Record<DType, number> = { f32: 4, f16: 2, u32: 4, i32: 4 };

/**
 * A typed view of part of a GPU buffer: `length` elements of `dtype`, starting `offset` bytes in.
 * Offsets are multiples of the device's storage offset alignment (256 bytes), so any tensor can be bound
 * on its own.
 */
export interface Tensor {
  /** The buffer holding the elements; several tensors may share one (arenas). */
  readonly buffer: GPUBuffer;
  /** Byte offset into `buffer`; a multiple of {@link STORAGE_ALIGN}. */
  readonly offset: number;
  /** Number of elements. */
  readonly length: number;
  /** Element type; it sets the bytes per element. */
  readonly dtype: DType;
  /** Optional logical shape; its product equals `length` when given. */
  readonly shape?: readonly number[];
  /** Name used in error messages and GPU debug labels. */
  readonly label?: string;
}

/** One recorded compute dispatch: replayable any number of times in any encoder. */
export interface Dispatch {
  /** The compiled kernel, shared through the pipeline cache by every dispatch of the same WGSL. */
  readonly pipeline: GPUComputePipeline;
  /** The tensors and uniform block bound in order, fixed when the record was built. */
  readonly bindGroup: GPUBindGroup;
  /** Workgroup counts in x, y and z (see {@link grid}). */
  readonly workgroups: readonly [number, number, number];
  /** Names the dispatch in timings and GPU error messages. */
  readonly label: string;
}

/** Byte alignment of every tensor offset (WebGPU's minStorageBufferOffsetAlignment is at most 256). */
export const STORAGE_ALIGN = 256;

/** What was found when the adapter was chosen; printed by tasks so users know where they run. */
export interface AdapterReport {
  /** The adapter's name as the driver reports it, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`. */
  description: string;
  /** Vendor name; empty on some drivers. */
  vendor: string;
  /** Architecture name; empty on some drivers. */
  architecture: string;
  /** True for software adapters (llvmpipe, lavapipe, SwiftShader): correct but slow. */
  isFallback: boolean;
  /** The backend behind the adapter (see {@link inferBackend}). */
  backend: GpuBackend;
  /** How {@link backend} is known: named by `DENO_WEBGPU_BACKEND`, or inferred from the platform and adapter. */
  backendSource: "DENO_WEBGPU_BACKEND" | "inferred";
  /** Features enabled on the device, sorted (e.g. `shader-f16`, `timestamp-query`). */
  features: string[];
  /** Largest storage binding in bytes: the largest tensor a kernel can bind. */
  maxStorageBufferBindingSize: number;
  /** Largest buffer in bytes. */
  maxBufferSize: number;
  /** Workgroup memory per workgroup in bytes. */
  maxComputeWorkgroupStorageSize: number;
  /**
   * The binding (and buffer) size this toolkit holds itself to when {@link GpuOptions.maxBindingBytes}
   * forced one below the adapter's; absent otherwise.
   */
  bindingCap?: number;
}

/**
 * The native API wgpu drives under Deno's WebGPU. `Vulkan or D3D12` is reported on Windows when
 * `DENO_WEBGPU_BACKEND` is unset: both give the same adapter information there.
 */
export type GpuBackend = "Vulkan" | "GL" | "Metal" | "D3D12" | "Vulkan or D3D12";

/** What {@link inferBackend} looks at: the adapter's features and the subgroup sizes it reports. */
export interface BackendClues {
  /** The adapter's (or device's) features. */
  features: { has(feature: string): boolean };
  /** `GPUAdapterInfo.subgroupMinSize`, when this Deno reports it. */
  subgroupMinSize?: number;
  /** `GPUAdapterInfo.subgroupMaxSize`, when this Deno reports it. */
  subgroupMaxSize?: number;
}

const BACKEND_NAMES: Record<string, GpuBackend> = {
  vulkan: "Vulkan",
  vk: "Vulkan",
  gl: "GL",
  gles: "GL",
  opengl: "GL",
  metal: "Metal",
  mtl: "Metal",
  dx12: "D3D12",
  d3d12: "D3D12",
};

/**
 * The backend behind an adapter. Deno's WebGPU does not say which backend wgpu chose, so: a
 * `DENO_WEBGPU_BACKEND` naming one backend decides; otherwise wgpu's GL backend is recognised by what it
 * cannot report (no `shader-f16`, and subgroup sizes left at WebGPU's bounds 4 and 128, where Vulkan, Metal
 * and D3D12 report the hardware's), and any other adapter is the platform's first choice: Metal on macOS,
 * Vulkan on Linux.
 *
 * @example
 * ```ts
 * inferBackend("linux", undefined, { features: new Set(["shader-f16"]), subgroupMinSize: 8, subgroupMaxSize: 8 }); // "Vulkan"
 * inferBackend("linux", undefined, { features: new Set(), subgroupMinSize: 4, subgroupMaxSize: 128 }); // "GL"
 * inferBackend("linux", "gl", { features: new Set() }); // "GL"
 * ```
 */
export function inferBackend(os: string, requested: string | undefined, clues: BackendClues): GpuBackend {
  const named = namedBackend(requested);
  if (named) return named;
  const unknownSubgroups = (clues.subgroupMinSize ?? 4) === 4 && (clues.subgroupMaxSize ?? 128) === 128;
  if (!clues.features.has("shader-f16") && unknownSubgroups && os !== "darwin") return "GL";
  if (os === "darwin") return "Metal";
  if (os === "windows") return "Vulkan or D3D12";
  return "Vulkan";
}

/** The one backend a `DENO_WEBGPU_BACKEND` value names (a list of several, or none, names none). */
function namedBackend(requested: string | undefined): GpuBackend | undefined {
  const named = (requested ?? "").split(",").map((b) => BACKEND_NAMES[b.trim().toLowerCase()]).filter((b) =>
    b
  );
  return named.length === 1 ? named[0] : undefined;
}

/**
 * The warning printed once when WebGPU runs on wgpu's GL backend: Vulkan is faster and has `shader-f16`.
 *
 * @example
 * ```ts
 * if (gpu.report.backend === "GL") console.error(GL_BACKEND_WARNING);
 * ```
 */
export const GL_BACKEND_WARNING =
  "warning: WebGPU runs on the GL backend: no shader-f16, and on a CPU adapter " +
  "several times slower than Vulkan. Install a Vulkan driver (Debian/Ubuntu: " +
  "apt-get install -y mesa-vulkan-drivers libvulkan1, or `deno task setup`).";

let announced = false;

/**
 * Prints the backend and adapter on stderr, and on GL {@link GL_BACKEND_WARNING}, once per process (later
 * calls print nothing). {@link Gpu.create} calls it unless told `announce: false`.
 *
 * @example
 * ```ts
 * announceAdapter(gpu); // stderr: "webgpu: Vulkan, llvmpipe (LLVM 15.0.6, 256 bits) [CPU fallback] f16 …"
 * ```
 */
export function announceAdapter(gpu: Gpu): void {
  if (announced) return;
  announced = true;
  console.error(`webgpu: ${gpu.describe()}`);
  if (gpu.report.backend === "GL") console.error(GL_BACKEND_WARNING);
}

/**
 * Thrown when this Deno has no WebGPU or no adapter could be found.
 *
 * @example
 * ```ts
 * try {
 *   await Gpu.create();
 * } catch (e) {
 *   if (e instanceof GpuUnavailableError) console.error(e.message); // says which drivers to install
 * }
 * ```
 */
export class GpuUnavailableError extends Error {
  /**
   * Builds the message from what was missing, followed by how to get a software adapter.
   * @param detail What was missing, e.g. "no adapter was found".
   */
  constructor(detail: string) {
    super(
      `WebGPU is not available: ${detail}. On Linux without a GPU, install Mesa's software drivers ` +
        `(apt-get install -y mesa-vulkan-drivers libvulkan1) or set DENO_WEBGPU_BACKEND=gl to use llvmpipe.`,
    );
    this.name = "GpuUnavailableError";
  }
}

/**
 * Thrown when a requested buffer or binding exceeds what the device allows.
 *
 * @example
 * ```ts
 * try {
 *   gpu.tensor(2 ** 31, "f32", "embed_tokens");
 * } catch (e) {
 *   if (e instanceof GpuLimitError) console.error(e.message); // names the tensor, its size and the limit
 * }
 * ```
 */
export class GpuLimitError extends Error {
  /**
   * Keeps `message` as given.
   * @param message Names the tensor or buffer, its size and the device's limit.
   */
  constructor(message: string) {
    super(message);
    this.name = "GpuLimitError";
  }
}

/** Options for {@link Gpu.create}. */
export interface GpuOptions {
  /** Which adapter to prefer when there are several (default `high-performance`). */
  powerPreference?: GPUPowerPreference;
  /** Ask for `shader-f16` when present (default true). */
  f16?: boolean;
  /**
   * Hold every binding and buffer to at most this many bytes (rounded down to 256), below what the adapter
   * allows: tensors then split into row blocks as they would on a smaller adapter, so tests and
   * `deno task parity --max-binding` run the split paths on any machine.
   */
  maxBindingBytes?: number;
  /** Print the backend and adapter on stderr, once per process (default true; see {@link announceAdapter}). */
  announce?: boolean;
}

/** A value in a kernel's uniform block: plain numbers are `u32`; wrap floats with {@link f32} and signed ints with {@link i32}. */
export type UniformValue = number | { readonly f32: number } | { readonly i32: number };

/** Marks a uniform value as `f32`. @example `gpu.dispatch(code, [x], [n], [u32n, f32(1e-5)])` */
export function f32(value: number): { readonly f32: number } {
  return { f32: value };
}

/** Marks a uniform value as `i32`. */
export function i32(value: number): { readonly i32: number } {
  return { i32: value };
}

/** Packs uniform values (4 bytes each) into a 16-byte padded block, in the order the WGSL struct declares them. */
export function packUniform(values: readonly UniformValue[]): ArrayBuffer {
  const bytes = Math.max(16, Math.ceil((values.length * 4) / 16) * 16);
  const buf = new ArrayBuffer(bytes);
  const view = new DataView(buf);
  values.forEach((v, i) => {
    if (typeof v === "number") {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
        throw new RangeError(
          `uniform field ${i}: ${v} is not a u32; wrap floats with f32() and negatives with i32()`,
        );
      }
      view.setUint32(i * 4, v, true);
    } else if ("f32" in v) view.setFloat32(i * 4, v.f32, true);
    else view.setInt32(i * 4, v.i32, true);
  });
  return buf;
}

/**
 * Largest number of workgroups in one dimension (WebGPU's default maxComputeWorkgroupsPerDimension).
 * {@link grid} folds larger 1-D launches into two dimensions; kernels recover the flat index with
 * {@link WGSL_FLAT_INDEX}.
 */
export const MAX_GROUPS_PER_DIM = 65535;

/** Workgroup counts covering `items` with `perGroup` items per workgroup, folded into 2-D when needed. */
export function grid(items: number, perGroup: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(items / perGroup));
  if (groups <= MAX_GROUPS_PER_DIM) return [groups, 1, 1];
  const y = Math.ceil(groups / MAX_GROUPS_PER_DIM);
  return [Math.ceil(groups / y), y, 1];
}

/**
 * WGSL helper for kernels launched with {@link grid}: `flat_group(wid, nwg)` is the linear workgroup index.
 * Declare `@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u` in the entry point.
 */
export const WGSL_FLAT_INDEX = `
fn flat_group(wid: vec3u, nwg: vec3u) -> u32 { return wid.x + wid.y * nwg.x; }
`;

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

const TYPED: Record<DType, { new (buf: ArrayBuffer): ArrayBufferView }> = {
  f32: Float32Array,
  f16: Uint16Array,
  u32: Uint32Array,
  i32: Int32Array,
};

/** The typed array a read of each dtype returns (`f16` comes back as raw `Uint16Array` bits). */
export type TypedFor<D extends DType> = D extends "f32" ? Float32Array
  : D extends "u32" ? Uint32Array
  : D extends "i32" ? Int32Array
  : Uint16Array;

/**
 * A WebGPU device with the adapter's full limits, a pipeline cache and helpers to build, run and time
 * dispatches.
 *
 * @example
 * ```ts
 * const gpu = await Gpu.create();
 * const x = gpu.upload(new Float32Array([1, 2, 3]));
 * const y = gpu.tensor(3);
 * const code = `@group(0) @binding(0) var<storage, read> x: array<f32>;
 * @group(0) @binding(1) var<storage, read_write> y: array<f32>;
 * @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
 *   if (g.x < arrayLength(&y)) { y[g.x] = 2.0 * x[g.x]; } }`;
 * gpu.run([gpu.dispatch(code, [x, y], [1, 1, 1])]);
 * console.log(await gpu.read(y)); // Float32Array [2, 4, 6]
 * ```
 */
export class Gpu {
  /** The underlying WebGPU device, for code that needs raw WebGPU calls. */
  readonly device: GPUDevice;
  /** What was found when the adapter was chosen. */
  readonly report: AdapterReport;
  /** Whether kernels may use `f16` (the device has `shader-f16`). */
  readonly hasF16: boolean;
  /** Whether the device has `timestamp-query`, so passes can be timed on the GPU. */
  readonly hasTimestamps: boolean;
  /** The device's limits: the adapter's own, requested in full at creation. */
  readonly limits: GPUSupportedLimits;
  #pipelines = new Map<string, GPUComputePipeline>();
  #error: string | undefined;
  #lost = false;
  #liveBytes = 0;
  #peakBytes = 0;
  readonly #maxBinding: number;
  readonly #maxBuffer: number;

  private constructor(device: GPUDevice, report: AdapterReport) {
    this.device = device;
    this.report = report;
    this.limits = device.limits;
    const cap = report.bindingCap ?? Infinity;
    this.#maxBinding = Math.min(device.limits.maxStorageBufferBindingSize, cap);
    this.#maxBuffer = Math.min(device.limits.maxBufferSize, cap);
    this.hasF16 = device.features.has("shader-f16");
    this.hasTimestamps = device.features.has("timestamp-query");
    device.addEventListener("uncapturederror", (e) => {
      const msg = (e as GPUUncapturedErrorEvent).error.message;
      if (!this.#error) this.#error = msg;
    });
    device.lost.then((info) => {
      this.#lost = true;
      if (info.reason !== "destroyed") this.#error ??= `GPU device lost: ${info.message}`;
    });
  }

  /** Finds an adapter, requests a device with all of the adapter's limits, and reports what it found. */
  static async create(options: GpuOptions = {}): Promise<Gpu> {
    if (typeof navigator === "undefined" || !("gpu" in navigator) || !navigator.gpu) {
      throw new GpuUnavailableError("navigator.gpu is missing in this runtime");
    }
    const adapter = await navigator.gpu.requestAdapter({
      powerPreference: options.powerPreference ?? "high-performance",
    });
    if (!adapter) throw new GpuUnavailableError("no adapter was found");
    const wanted: GPUFeatureName[] = ["timestamp-query"];
    if (options.f16 !== false) wanted.push("shader-f16");
    const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
    // The defaults are far below what real adapters allow (128 MiB bindings, 16 KiB workgroup memory):
    // ask for everything the adapter offers.
    const requiredLimits: Record<string, number> = {};
    const limits = adapter.limits as unknown as Record<string, number>;
    for (const key of LIMIT_KEYS) {
      const v = limits[key];
      if (typeof v === "number") requiredLimits[key] = v;
    }
    const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
    const info = adapter.info;
    const requested = readBackendName();
    const report: AdapterReport = {
      description: info.description || info.device || "unknown adapter",
      vendor: info.vendor,
      architecture: info.architecture,
      isFallback: Boolean((info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter) ||
        /llvmpipe|lavapipe|swiftshader|software/i.test(info.description),
      backend: inferBackend(Deno.build.os, requested, {
        features: adapter.features,
        subgroupMinSize: (info as { subgroupMinSize?: number }).subgroupMinSize,
        subgroupMaxSize: (info as { subgroupMaxSize?: number }).subgroupMaxSize,
      }),
      backendSource: namedBackend(requested) ? "DENO_WEBGPU_BACKEND" : "inferred",
      features: [...device.features].sort(),
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      maxBufferSize: device.limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: device.limits.maxComputeWorkgroupStorageSize,
    };
    if (options.maxBindingBytes !== undefined) {
      const cap = Math.floor(options.maxBindingBytes / STORAGE_ALIGN) * STORAGE_ALIGN;
      if (!(cap >= STORAGE_ALIGN)) {
        throw new RangeError(
          `maxBindingBytes: expected at least ${STORAGE_ALIGN}, got ${options.maxBindingBytes}`,
        );
      }
      if (cap < device.limits.maxStorageBufferBindingSize) report.bindingCap = cap;
    }
    const gpu = new Gpu(device, report);
    if (options.announce !== false) announceAdapter(gpu);
    return gpu;
  }

  /** One line for logs, e.g. `Vulkan, llvmpipe (LLVM 15.0.6, 256 bits) [CPU fallback] f16 timestamps`. */
  describe(): string {
    const r = this.report;
    return `${r.backend}, ${r.description}${r.isFallback ? " [CPU fallback]" : ""}${
      this.hasF16 ? " f16" : ""
    }${this.hasTimestamps ? " timestamps" : ""} (binding max ${
      r.bindingCap !== undefined
        ? `${fmtBytes(r.bindingCap)}, forced below the adapter's ${fmtBytes(r.maxStorageBufferBindingSize)}`
        : fmtBytes(r.maxStorageBufferBindingSize)
    })`;
  }

  /** Largest binding (bytes) one tensor may have: the adapter's, or the forced cap. */
  get maxBinding(): number {
    return this.#maxBinding;
  }

  /** Largest buffer (bytes) this toolkit creates: the adapter's, or the forced cap. */
  get maxBuffer(): number {
    return this.#maxBuffer;
  }

  /** Creates a raw buffer, checking the device's limits first so the error names the culprit. */
  createBuffer(bytes: number, usage: number, label: string): GPUBuffer {
    const size = Math.max(16, align(bytes, 16));
    if (size > this.#maxBuffer) {
      throw new GpuLimitError(
        `buffer "${label}" needs ${fmtBytes(size)} but this device allows at most ${
          fmtBytes(this.#maxBuffer)
        } per buffer (${this.report.description})`,
      );
    }
    return this.#counted(this.device.createBuffer({ size, usage, label }));
  }

  /**
   * Bytes of the buffers created through {@link createBuffer} (tensors, arenas, uniforms, readback staging)
   * and not destroyed yet: the toolkit's own GPU memory, which WebGPU does not report.
   * @example
   * ```ts
   * console.log(`${(gpu.liveBytes / 2 ** 30).toFixed(2)} GiB allocated`);
   * ```
   */
  get liveBytes(): number {
    return this.#liveBytes;
  }

  /**
   * The highest {@link liveBytes} since the device was created or {@link resetPeakBytes} was called.
   * @example
   * ```ts
   * gpu.resetPeakBytes();
   * await runner.step(mbs, 1e-4, 1);
   * console.log(`step peak: ${gpu.peakBytes} B`);
   * ```
   */
  get peakBytes(): number {
    return this.#peakBytes;
  }

  /**
   * Starts a new peak from the bytes live now (to measure one phase, e.g. the training steps).
   * @example
   * ```ts
   * gpu.resetPeakBytes(); // gpu.peakBytes === gpu.liveBytes
   * ```
   */
  resetPeakBytes(): void {
    this.#peakBytes = this.#liveBytes;
  }

  /** Counts `buffer` as live until its first `destroy()` (callers destroy buffers directly). */
  #counted(buffer: GPUBuffer): GPUBuffer {
    const size = buffer.size;
    this.#liveBytes += size;
    this.#peakBytes = Math.max(this.#peakBytes, this.#liveBytes);
    const destroy = buffer.destroy.bind(buffer);
    let live = true;
    Object.defineProperty(buffer, "destroy", {
      configurable: true,
      value: () => {
        if (live) this.#liveBytes -= size;
        live = false;
        destroy();
      },
    });
    return buffer;
  }

  /** A new zero-filled tensor in its own storage buffer. */
  tensor(length: number, dtype: DType = "f32", label = "tensor", shape?: readonly number[]): Tensor {
    const bytes = length * DTYPE_BYTES[dtype];
    this.checkBinding(bytes, label);
    const buffer = this.createBuffer(bytes, STORAGE_USAGE, label);
    return { buffer, offset: 0, length, dtype, shape, label };
  }

  /** Uploads a typed array into a new tensor. `Uint16Array` uploads as `f16` bits. */
  upload(
    data: Float32Array | Uint32Array | Int32Array | Uint16Array,
    label = "upload",
    shape?: readonly number[],
  ): Tensor {
    const dtype: DType = data instanceof Float32Array
      ? "f32"
      : data instanceof Uint32Array
      ? "u32"
      : data instanceof Int32Array
      ? "i32"
      : "f16";
    const t = this.tensor(data.length, dtype, label, shape);
    this.write(t, data);
    return t;
  }

  /** Writes `data` into `t` starting at element `at` (queued before the next submit). */
  write(t: Tensor, data: ArrayBufferView, at = 0): void {
    const bpe = DTYPE_BYTES[t.dtype];
    if (at + data.byteLength / bpe > t.length) {
      throw new RangeError(
        `write of ${data.byteLength / bpe} elements at ${at} overflows "${t.label}" (${t.length})`,
      );
    }
    let bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength % 4 !== 0) {
      const padded = new Uint8Array(align(bytes.byteLength, 4));
      padded.set(bytes);
      bytes = padded;
    }
    this.device.queue.writeBuffer(t.buffer, t.offset + at * bpe, bytes);
  }

  /** A compute pipeline for `code`, created once per distinct source and reused. */
  pipeline(code: string, label = "kernel"): GPUComputePipeline {
    let p = this.#pipelines.get(code);
    if (!p) {
      const module = this.device.createShaderModule({ code, label });
      p = this.device.createComputePipeline({
        layout: "auto",
        compute: { module, entryPoint: "main" },
        label,
      });
      this.#pipelines.set(code, p);
    }
    return p;
  }

  /** Number of distinct pipelines compiled so far. */
  get pipelineCount(): number {
    return this.#pipelines.size;
  }

  /**
   * Records a dispatch of `code` (entry point `main`) with `tensors` bound to bindings 0..n-1 (storage) and,
   * when `uniform` is given, a uniform block at binding n. The result can be replayed by {@link run}.
   */
  dispatch(
    code: string,
    tensors: readonly Tensor[],
    workgroups: readonly [number, number, number] | readonly number[],
    uniform?: readonly UniformValue[],
    label = "kernel",
  ): Dispatch {
    const pipeline = this.pipeline(code, label);
    const entries: GPUBindGroupEntry[] = tensors.map((t, i) => ({
      binding: i,
      resource: { buffer: t.buffer, offset: t.offset, size: this.bindingSize(t) },
    }));
    if (uniform) {
      const data = packUniform(uniform);
      const ub = this.createBuffer(
        data.byteLength,
        GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
        `${label}.uniform`,
      );
      this.device.queue.writeBuffer(ub, 0, data);
      entries.push({ binding: tensors.length, resource: { buffer: ub } });
    }
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label });
    const wg = [workgroups[0] ?? 1, workgroups[1] ?? 1, workgroups[2] ?? 1] as const;
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (wg.some((n) => n > max)) {
      throw new GpuLimitError(
        `dispatch "${label}" asks for ${wg.join("x")} workgroups; at most ${max} per dimension`,
      );
    }
    return { pipeline, bindGroup, workgroups: wg, label };
  }

  /** Records `dispatches` into one command encoder and one compute pass, then submits. */
  run(dispatches: readonly Dispatch[], after?: (encoder: GPUCommandEncoder) => void): void {
    const encoder = this.device.createCommandEncoder();
    if (dispatches.length > 0) {
      const pass = encoder.beginComputePass();
      encodeInto(pass, dispatches);
      pass.end();
    }
    after?.(encoder);
    this.device.queue.submit([encoder.finish()]);
  }

  /** Copies `src` into `dst` (same byte size) as part of `encoder`. */
  copy(encoder: GPUCommandEncoder, src: Tensor, dst: Tensor): void {
    const bytes = src.length * DTYPE_BYTES[src.dtype];
    if (bytes !== dst.length * DTYPE_BYTES[dst.dtype]) {
      throw new RangeError(`copy size mismatch: "${src.label}" ${bytes} B vs "${dst.label}"`);
    }
    encoder.copyBufferToBuffer(src.buffer, src.offset, dst.buffer, dst.offset, align(bytes, 4));
  }

  /** Reads one tensor back. */
  async read<T extends Tensor>(t: T): Promise<TypedFor<T["dtype"]>> {
    const [r] = await this.readMany([t]);
    return r as TypedFor<T["dtype"]>;
  }

  /** Reads an f32 tensor back as a Float32Array (throws for other dtypes). */
  async readF32(t: Tensor): Promise<Float32Array> {
    if (t.dtype !== "f32") throw new TypeError(`"${t.label}" holds ${t.dtype}, not f32`);
    return (await this.readMany([t]))[0] as Float32Array;
  }

  /**
   * Reads several tensors back with a single wait (each awaited map costs ~11 ms in Deno). They are copied
   * into as few staging buffers as {@link maxBuffer} allows, all mapped together.
   */
  async readMany(ts: readonly Tensor[]): Promise<ArrayBufferView[]> {
    const sizes = ts.map((t) => align(t.length * DTYPE_BYTES[t.dtype], 4));
    // Staging buffers, each holding consecutive tensors at 16-byte aligned offsets.
    const groups: { bytes: number; offsets: number[]; first: number }[] = [];
    sizes.forEach((s, i) => {
      let group = groups[groups.length - 1];
      if (!group || (group.bytes > 0 && group.bytes + s > this.#maxBuffer)) {
        group = { bytes: 0, offsets: [], first: i };
        groups.push(group);
      }
      group.offsets.push(group.bytes);
      group.bytes = align(group.bytes + s, 16);
    });
    const staging = groups.map((g) =>
      this.createBuffer(Math.max(16, g.bytes), GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, "readback")
    );
    const enc = this.device.createCommandEncoder();
    groups.forEach((g, k) => {
      g.offsets.forEach((offset, j) => {
        const t = ts[g.first + j], size = sizes[g.first + j];
        if (size > 0) enc.copyBufferToBuffer(t.buffer, t.offset, staging[k], offset, size);
      });
    });
    this.device.queue.submit([enc.finish()]);
    await Promise.all(staging.map((b) => b.mapAsync(GPUMapMode.READ)));
    this.throwIfFailed();
    const out: ArrayBufferView[] = [];
    groups.forEach((g, k) => {
      const mapped = staging[k].getMappedRange();
      g.offsets.forEach((offset, j) => {
        const t = ts[g.first + j];
        out.push(new TYPED[t.dtype](mapped.slice(offset, offset + t.length * DTYPE_BYTES[t.dtype])));
      });
      staging[k].unmap();
      staging[k].destroy();
    });
    return out;
  }

  /** Waits for all submitted work; throws the first uncaptured GPU error, if any. */
  async sync(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    this.throwIfFailed();
  }

  /** Throws the first validation or device-lost error seen so far, naming the kernel when WebGPU does. */
  throwIfFailed(): void {
    if (this.#error) throw new Error(`WebGPU error: ${this.#error}`);
    if (this.#lost) throw new Error("WebGPU device was destroyed");
  }

  /**
   * Times `dispatches` in milliseconds of GPU time per run (timestamp queries when available, else wall
   * clock around a waited submit), after `warmup` untimed runs.
   */
  async time(dispatches: readonly Dispatch[], reps = 5, warmup = 1): Promise<number> {
    for (let i = 0; i < warmup; i++) this.run(dispatches);
    await this.sync();
    if (!this.hasTimestamps) {
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) this.run(dispatches);
      await this.sync();
      return (performance.now() - t0) / reps;
    }
    const qs = this.device.createQuerySet({ type: "timestamp", count: 2 });
    const resolve = this.device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const encoder = this.device.createCommandEncoder();
    const pass = encoder.beginComputePass({
      timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
    });
    for (let i = 0; i < reps; i++) encodeInto(pass, dispatches);
    pass.end();
    encoder.resolveQuerySet(qs, 0, 2, resolve, 0);
    this.device.queue.submit([encoder.finish()]);
    const out = this.tensorView(resolve, 4, "u32");
    const raw = await this.read(out);
    const ns = new BigUint64Array(raw.buffer as ArrayBuffer);
    qs.destroy();
    resolve.destroy();
    const elapsed = Number(ns[1] - ns[0]) / 1e6;
    return elapsed / reps;
  }

  /** A tensor view over an existing buffer. */
  tensorView(buffer: GPUBuffer, length: number, dtype: DType, offset = 0, label?: string): Tensor {
    if (offset % STORAGE_ALIGN !== 0) {
      throw new RangeError(`tensor offset ${offset} is not ${STORAGE_ALIGN}-aligned`);
    }
    return { buffer, offset, length, dtype, label: label ?? buffer.label };
  }

  /** Releases the device and everything on it. */
  destroy(): void {
    this.device.destroy();
  }

  /** Bytes `t` occupies in its binding (4-byte aligned), checked against the binding limit. */
  private bindingSize(t: Tensor): number {
    const bytes = align(Math.max(t.length, 1) * DTYPE_BYTES[t.dtype], 4);
    this.checkBinding(bytes, t.label ?? "tensor");
    return bytes;
  }

  /** Throws a {@link GpuLimitError} naming `label` when `bytes` exceeds one storage binding. */
  private checkBinding(bytes: number, label: string): void {
    if (bytes > this.#maxBinding) {
      throw new GpuLimitError(
        `tensor "${label}" needs ${fmtBytes(bytes)} in one binding but this device allows at most ${
          fmtBytes(this.#maxBinding)
        } (${this.report.description}); split it into row blocks`,
      );
    }
  }
}

/**
 * A view of elements `[start, start + length)` of `t`. The byte offset must stay 256-aligned (for f32,
 * `start` a multiple of 64); kernels that need finer slicing take an element offset in their uniforms.
 */
export function slice(t: Tensor, start: number, length: number, label?: string): Tensor {
  const offset = t.offset + start * DTYPE_BYTES[t.dtype];
  if (offset % STORAGE_ALIGN !== 0) {
    throw new RangeError(`slice of "${t.label}" at element ${start} is not ${STORAGE_ALIGN}-byte aligned`);
  }
  if (start + length > t.length) {
    throw new RangeError(`slice [${start}, ${start + length}) overflows "${t.label}"`);
  }
  return { buffer: t.buffer, offset, length, dtype: t.dtype, label: label ?? t.label };
}

/**
 * The first `length` elements of `t` (workspaces are sized for the largest batch; a smaller batch binds a
 * prefix).
 * @example
 * ```ts
 * const rows = prefix(hidden, tokens * dim);
 * ```
 */
export function prefix(t: Tensor, length: number): Tensor {
  if (length > t.length) throw new RangeError(`"${t.label}" holds ${t.length} elements, ${length} needed`);
  return { buffer: t.buffer, offset: t.offset, length, dtype: t.dtype, label: t.label };
}

/**
 * Recorded dispatch lists by key (usually the batch shape), built on first use and replayed after: a step's
 * bind groups and uniforms are created once per shape, not once per step.
 * @example
 * ```ts
 * const programs = new ProgramCache();
 * gpu.run(programs.get(`fwd:${B}x${T}`, () => model.forward(B, T, io)));
 * ```
 */
export class ProgramCache {
  readonly #programs: Map<string, Dispatch[]> = new Map();

  /** The program recorded under `key`, built by `build` the first time. */
  get(key: string, build: () => Dispatch[]): Dispatch[] {
    let p = this.#programs.get(key);
    if (!p) this.#programs.set(key, p = build());
    return p;
  }

  /** Number of distinct programs recorded. */
  get size(): number {
    return this.#programs.size;
  }

  /** Forgets every program (their buffers are about to be released). */
  clear(): void {
    this.#programs.clear();
  }
}

/** Usage flags of every tensor buffer. */
export const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

function encodeInto(pass: GPUComputePassEncoder, dispatches: readonly Dispatch[]): void {
  let last: GPUComputePipeline | undefined;
  for (const d of dispatches) {
    if (d.pipeline !== last) {
      pass.setPipeline(d.pipeline);
      last = d.pipeline;
    }
    pass.setBindGroup(0, d.bindGroup);
    pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
  }
}

function fmtBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

/** `DENO_WEBGPU_BACKEND` when it is set and may be read (asked without a prompt), else undefined. */
function readBackendName(): string | undefined {
  const variable = "DENO_WEBGPU_BACKEND";
  if (Deno.permissions.querySync({ name: "env", variable }).state !== "granted") return undefined;
  return Deno.env.get(variable) || undefined;
}

const LIMIT_KEYS = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxUniformBufferBindingSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
  "maxUniformBuffersPerShaderStage",
  "maxBindingsPerBindGroup",
  "maxBindGroups",
];

/**
 * Sub-allocates aligned tensors out of large buffers (each at most one binding in size), as llm.c keeps
 * parameters, gradients and optimizer moments in a few flat arrays. A tensor never straddles two buffers.
 *
 * @example
 * ```ts
 * const gpu = await Gpu.create();
 * const arena = new Arena(gpu, "params");
 * const w = arena.alloc(64 * 64, "f32", "q_proj", [64, 64]);
 * ```
 */
export class Arena {
  /** The device the arena's buffers live on. */
  readonly gpu: Gpu;
  /** Prefix of the buffers' labels and the default label of its tensors. */
  readonly label: string;
  /** Capacity of each buffer in bytes: a multiple of 256, at most one binding. */
  readonly chunkBytes: number;
  /** Buffers created so far with their used byte counts. */
  readonly chunks: { buffer: GPUBuffer; used: number; capacity: number }[] = [];

  /**
   * Prepares an empty arena; its buffers are created by {@link Arena.finish}.
   * @param gpu The device to allocate on.
   * @param label Names the arena's buffers (`label#0`, `label#1`, …).
   * @param chunkBytes Capacity per buffer (default and cap: the device's largest binding or buffer).
   */
  constructor(gpu: Gpu, label: string, chunkBytes?: number) {
    this.gpu = gpu;
    this.label = label;
    const max = Math.min(gpu.maxBinding, gpu.maxBuffer);
    this.chunkBytes = Math.floor(Math.min(chunkBytes ?? max, max) / STORAGE_ALIGN) * STORAGE_ALIGN;
  }

  /** Allocates `length` elements, starting a new buffer when the current one is full. */
  alloc(length: number, dtype: DType = "f32", label = this.label, shape?: readonly number[]): Tensor {
    const bytes = align(Math.max(1, length) * DTYPE_BYTES[dtype], STORAGE_ALIGN);
    if (bytes > this.chunkBytes) {
      throw new GpuLimitError(
        `tensor "${label}" (${fmtBytes(bytes)}) is larger than one binding (${
          fmtBytes(this.chunkBytes)
        }) on ${this.gpu.report.description}`,
      );
    }
    let chunk = this.chunks[this.chunks.length - 1];
    if (!chunk || chunk.used + bytes > chunk.capacity) {
      chunk = { buffer: undefined as unknown as GPUBuffer, used: 0, capacity: this.chunkBytes };
      this.chunks.push(chunk);
    }
    const offset = chunk.used;
    chunk.used += bytes;
    const index = this.chunks.length - 1;
    // Buffers are created lazily at `finish()` so each is only as large as what it holds.
    return new LazyTensor(this, index, offset, length, dtype, label, shape);
  }

  /** Creates the buffers; call once after the last `alloc`. Tensors are usable only afterwards. */
  finish(): void {
    this.chunks.forEach((c, i) => {
      if (!c.buffer) {
        c.buffer = this.gpu.createBuffer(Math.max(c.used, 16), STORAGE_USAGE, `${this.label}#${i}`);
      }
    });
  }

  /** Whole-chunk views (for one-dispatch-per-chunk kernels such as AdamW over all parameters). */
  views(dtype: DType = "f32"): Tensor[] {
    return this.chunks.map((c, i) => ({
      buffer: c.buffer,
      offset: 0,
      length: c.used / DTYPE_BYTES[dtype],
      dtype,
      label: `${this.label}#${i}`,
    }));
  }

  /** Total bytes in use. */
  get bytes(): number {
    return this.chunks.reduce((s, c) => s + c.used, 0);
  }
}

class LazyTensor implements Tensor {
  readonly #arena: Arena;
  readonly #chunk: number;
  readonly offset: number;
  readonly length: number;
  readonly dtype: DType;
  readonly label: string;
  readonly shape?: readonly number[];
  constructor(
    arena: Arena,
    chunk: number,
    offset: number,
    length: number,
    dtype: DType,
    label: string,
    shape?: readonly number[],
  ) {
    this.#arena = arena;
    this.#chunk = chunk;
    this.offset = offset;
    this.length = length;
    this.dtype = dtype;
    this.label = label;
    this.shape = shape;
  }
  get buffer(): GPUBuffer {
    const b = this.#arena.chunks[this.#chunk].buffer;
    if (!b) throw new Error(`arena "${this.#arena.label}" used before finish()`);
    return b;
  }
}
