/**
 * The PyTorch baseline: the parser of `torch_reference.py`'s `RESULT torch …` lines, and whether a torch
 * result trained the same model as ours.
 *
 * @module
 */

/**
 * One `RESULT torch train …` line.
 * @example
 * ```ts
 * const fp32: TorchTrainResult | undefined = parseTorchReference(text, "torch.txt").train.find((r) => r.mode === "fp32");
 * ```
 */
export interface TorchTrainResult {
  name: string;
  /** `fp32`, `amp` (bf16 autocast) or `lora` (bf16 base, r=16 adapters). */
  mode: string;
  /** Parameters in millions, as the script rounds them (adapters included for LoRA). */
  paramsM: number;
  bs: number;
  seq: number;
  stepMs: number;
  tokS: number;
  memGB: number;
}

/**
 * One `RESULT torch matmul …` line.
 * @example
 * ```ts
 * const sgemm: TorchMatmulResult | undefined = parseTorchReference(text, "torch.txt").matmul.find((r) => !r.tf32);
 * ```
 */
export interface TorchMatmulResult {
  n: number;
  dtype: string;
  tf32: boolean;
  ms: number;
  tflops: number;
}

/**
 * Everything parsed from torch_reference.py's output.
 * @example
 * ```ts
 * const ref: TorchReference = parseTorchReference(await Deno.readTextFile("torch.txt"), "torch.txt");
 * ```
 */
export interface TorchReference {
  /** Its first line: `torch <version> <device name>`. */
  header?: string;
  train: TorchTrainResult[];
  matmul: TorchMatmulResult[];
  /** `FAIL …` lines (a mode that ran out of memory, say). */
  failures: string[];
}

/**
 * Parses the captured output of `torch_reference.py`. Lines that are not results are skipped; a result
 * line with a missing or malformed field throws naming the line number and field.
 * @example
 * ```ts
 * const ref = parseTorchReference(await Deno.readTextFile("torch.txt"), "torch.txt");
 * ref.train.find((r) => r.mode === "fp32")?.tokS; // 5917
 * ```
 */
export function parseTorchReference(text: string, file: string): TorchReference {
  const out: TorchReference = { train: [], matmul: [], failures: [] };
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    const where = `${file}:${i + 1}`;
    if (line.startsWith("torch ") && out.header === undefined) out.header = line;
    else if (line.startsWith("FAIL ")) out.failures.push(line);
    else if (line.startsWith("RESULT torch train ")) out.train.push(parseTrainLine(line, where));
    else if (line.startsWith("RESULT torch matmul ")) out.matmul.push(parseMatmulLine(line, where));
  });
  return out;
}

function keyValues(line: string): Map<string, string> {
  const kv = new Map<string, string>();
  for (const m of line.matchAll(/(\w+)=(\S+)/g)) kv.set(m[1], m[2]);
  return kv;
}

function numberField(kv: Map<string, string>, key: string, where: string, suffix = ""): number {
  const text = kv.get(key);
  const value = text !== undefined && text.endsWith(suffix)
    ? Number(text.slice(0, text.length - suffix.length))
    : NaN;
  if (!Number.isFinite(value)) {
    throw new Error(
      `${where}: field ${key} should be a number${suffix ? ` ending in ${suffix}` : ""}, got ${text}`,
    );
  }
  return value;
}

function parseTrainLine(line: string, where: string): TorchTrainResult {
  const kv = keyValues(line);
  const name = line.split(/\s+/)[3];
  const mode = kv.get("mode");
  if (!mode) throw new Error(`${where}: field mode is missing`);
  return {
    name,
    mode,
    paramsM: numberField(kv, "params", where, "M"),
    bs: numberField(kv, "bs", where),
    seq: numberField(kv, "seq", where),
    stepMs: numberField(kv, "step_ms", where),
    tokS: numberField(kv, "tok_s", where),
    memGB: numberField(kv, "mem_GB", where),
  };
}

function parseMatmulLine(line: string, where: string): TorchMatmulResult {
  const kv = keyValues(line);
  const dtype = kv.get("dtype");
  const tf32 = kv.get("tf32");
  if (!dtype) throw new Error(`${where}: field dtype is missing`);
  if (tf32 !== "True" && tf32 !== "False") throw new Error(`${where}: field tf32 should be True or False`);
  return {
    n: numberField(kv, "n", where),
    dtype,
    tf32: tf32 === "True",
    ms: numberField(kv, "ms", where),
    tflops: numberField(kv, "TFLOPs", where),
  };
}

/**
 * Whether a torch result trained the same model: its rounded parameter count (in millions, as the script
 * prints it) matches ours within rounding and 1 %.
 * @example
 * ```ts
 * sameModel(1100, 1_100_048_384); // true
 * ```
 */
export function sameModel(paramsM: number, parameters: number): boolean {
  const ours = parameters / 1e6;
  return Math.abs(ours - paramsM) <= Math.max(0.5, 0.01 * paramsM);
}
