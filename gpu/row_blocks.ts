/**
 * Tensors larger than one binding, held as consecutive blocks of rows behind one handle.
 *
 * A storage binding holds at most `maxStorageBufferBindingSize` bytes (128 MiB on the CPU adapter and in a
 * browser by default, 2 GiB on an H100), and a 128k-vocabulary embedding can be larger. A {@link RowBlocks}
 * is a row-major `[rows, cols]` tensor stored as blocks of whole rows, each a {@link Tensor} of its own that
 * fits one binding; a kernel that touches it runs once per block. Almost every tensor is one block, and then
 * {@link wholeTensor} gives the plain tensor.
 *
 * @module
 */
import { type DType, DTYPE_BYTES, type Gpu, type Tensor } from "./runtime.ts";

/**
 * One block: rows `[row0, row0 + rows)` of the whole tensor.
 * @example
 * ```ts
 * const block: RowBlock = { row0: 16032, rows: 16032, tensor };
 * ```
 */
export interface RowBlock {
  /** First row of the whole tensor this block holds. */
  readonly row0: number;
  /** Rows in this block. */
  readonly rows: number;
  /** The block's elements, `rows · cols` of them, row-major. */
  readonly tensor: Tensor;
}

/**
 * A row-major `[rows, cols]` tensor stored as consecutive row blocks (one block unless it exceeds a
 * binding). `shape` is the logical shape (`[rows]` for a vector, whose `cols` is 1).
 * @example
 * ```ts
 * const embed: RowBlocks = params.blocks("model.embed_tokens.weight");
 * for (const b of embed.blocks) console.log(b.row0, b.rows, b.tensor.length);
 * ```
 */
export interface RowBlocks {
  /** Rows of the whole tensor. */
  readonly rows: number;
  /** Elements per row (1 for a vector). */
  readonly cols: number;
  /** Element type of every block. */
  readonly dtype: DType;
  /** The logical shape, e.g. `[vocab, hidden]`. */
  readonly shape: readonly number[];
  /** Names the tensor in error messages. */
  readonly label: string;
  /** Blocks in row order, together holding every row once. */
  readonly blocks: readonly RowBlock[];
}

/**
 * Thrown when a single row is larger than one binding, so no row split can help.
 * @example
 * ```ts
 * try { rowBlockSizes(4, 1 << 20, 4096, "x"); } catch (e) { if (e instanceof RowTooWideError) console.error(e.message); }
 * ```
 */
export class RowTooWideError extends RangeError {
  /**
   * @param message Names the tensor, its row size and the binding limit.
   */
  constructor(message: string) {
    super(message);
    this.name = "RowTooWideError";
  }
}

/**
 * Rows per block when `rows` rows of `rowBytes` bytes must each fit `maxBytes`: as few blocks as possible,
 * balanced so no block is much smaller than the others (the last takes what remains).
 * @example
 * ```ts
 * rowBlockSizes(10, 100, 450, "w"); // [4, 4, 2]: no block over 450 bytes
 * rowBlockSizes(3, 100, 1000, "w"); // [3]
 * ```
 */
export function rowBlockSizes(rows: number, rowBytes: number, maxBytes: number, label: string): number[] {
  if (rows === 0) return [0];
  const perBlock = Math.floor(maxBytes / rowBytes);
  if (perBlock < 1) {
    throw new RowTooWideError(
      `tensor "${label}": one row is ${rowBytes} bytes, more than one binding (${maxBytes} bytes)`,
    );
  }
  const count = Math.ceil(rows / perBlock);
  const size = Math.ceil(rows / count);
  return Array.from({ length: count }, (_, i) => Math.min(size, rows - i * size));
}

/**
 * Rows and columns of a logical shape: a matrix's own, `[n]` as n rows of 1, and `[a, b, c…]` as a rows of
 * `b·c…`.
 * @example
 * ```ts
 * rowsAndCols([128256, 4096]); // { rows: 128256, cols: 4096 }
 * rowsAndCols([2048]); // { rows: 2048, cols: 1 }
 * ```
 */
export function rowsAndCols(shape: readonly number[]): { rows: number; cols: number } {
  if (shape.length === 0) return { rows: 1, cols: 1 };
  return { rows: shape[0], cols: shape.slice(1).reduce((a, b) => a * b, 1) };
}

/**
 * A one-block handle over a plain tensor.
 * @example
 * ```ts
 * const head = singleBlock(gpu.tensor(512 * 64, "f32", "lm_head"), [512, 64]);
 * ```
 */
export function singleBlock(t: Tensor, shape: readonly number[] = t.shape ?? [t.length]): RowBlocks {
  const { rows, cols } = rowsAndCols(shape);
  if (rows * cols !== t.length) {
    throw new RangeError(
      `tensor "${t.label}": shape [${shape.join(", ")}] does not hold ${t.length} elements`,
    );
  }
  return {
    rows,
    cols,
    dtype: t.dtype,
    shape,
    label: t.label ?? "tensor",
    blocks: [{ row0: 0, rows, tensor: t }],
  };
}

/**
 * The tensor itself when it is one block; a clear error when it was split (for kernels that bind small
 * tensors whole: norm weights, biases, LoRA adapters).
 * @example
 * ```ts
 * const norm = wholeTensor(params.blocks("model.norm.weight"));
 * ```
 */
export function wholeTensor(b: RowBlocks): Tensor {
  if (b.blocks.length !== 1) {
    throw new RangeError(
      `tensor "${b.label}" is split into ${b.blocks.length} row blocks (it exceeds one binding); ` +
        `this use needs it whole`,
    );
  }
  return b.blocks[0].tensor;
}

/**
 * Bytes the tensor holds (its elements, without alignment padding).
 * @example
 * ```ts
 * rowBlocksBytes(params.blocks("lm_head.weight")); // 128256 · 4096 · 4 for an f32 head
 * ```
 */
export function rowBlocksBytes(b: RowBlocks): number {
  return b.rows * b.cols * DTYPE_BYTES[b.dtype];
}

/**
 * Writes whole rows starting at row `row0` (queued before the next submit); `data` holds `k · cols`
 * elements and may span blocks. `Uint16Array` data are f16 bits for an f16 tensor.
 * @example
 * ```ts
 * writeRows(gpu, embed, rowsFromDisk, 16000); // rows 16000.. of the embedding, across a block boundary
 * ```
 */
export function writeRows(
  gpu: Gpu,
  b: RowBlocks,
  data: Float32Array | Uint16Array | Uint32Array | Int32Array,
  row0 = 0,
): void {
  const rows = data.length / b.cols;
  if (!Number.isInteger(rows) || row0 < 0 || row0 + rows > b.rows) {
    throw new RangeError(
      `write of ${data.length} elements at row ${row0} does not fit "${b.label}" [${b.rows}, ${b.cols}]`,
    );
  }
  for (const blk of b.blocks) {
    const from = Math.max(row0, blk.row0), to = Math.min(row0 + rows, blk.row0 + blk.rows);
    if (from >= to) continue;
    const piece = data.subarray((from - row0) * b.cols, (to - row0) * b.cols);
    gpu.write(blk.tensor, piece, (from - blk.row0) * b.cols);
  }
}

/** A host array of a tensor's elements: f32 values, f16 bits, u32 or i32. */
export type HostArray = Float32Array | Uint16Array | Uint32Array | Int32Array;

/**
 * Reads whole tensors back, each into one host array (f16 as raw bits), with a single wait for all of
 * them. For a tensor too large for one host array, read its {@link RowBlocks.blocks} one at a time instead.
 * @example
 * ```ts
 * const [m, v] = await readRows(gpu, [params.blocks(name, "m"), params.blocks(name, "v")]);
 * ```
 */
export async function readRows(gpu: Gpu, tensors: readonly RowBlocks[]): Promise<HostArray[]> {
  const parts = await gpu.readMany(tensors.flatMap((b) => b.blocks.map((blk) => blk.tensor)));
  let next = 0;
  return tensors.map((b) => {
    const mine = parts.slice(next, next += b.blocks.length) as HostArray[];
    if (mine.length === 1) return mine[0];
    const out = newHostArray(b.dtype, b.rows * b.cols);
    b.blocks.forEach((blk, i) => out.set(mine[i] as never, blk.row0 * b.cols));
    return out;
  });
}

function newHostArray(dtype: DType, n: number): HostArray {
  switch (dtype) {
    case "f32":
      return new Float32Array(n);
    case "f16":
      return new Uint16Array(n);
    case "u32":
      return new Uint32Array(n);
    case "i32":
      return new Int32Array(n);
  }
}

/**
 * Reads a tensor back in pieces of at most `maxElements` whole rows, in row order, so a tensor of any size
 * streams through a bounded host buffer (one wait per piece; f16 as raw bits).
 * @example
 * ```ts
 * for await (const { row0, data } of readRowPieces(gpu, params.blocks("lm_head.weight"))) await write(row0, data);
 * ```
 */
export async function* readRowPieces(
  gpu: Gpu,
  b: RowBlocks,
  maxElements = 1 << 24,
): AsyncGenerator<{ row0: number; data: HostArray }> {
  const bytes = DTYPE_BYTES[b.dtype];
  // Copies start at 4-byte multiples: an f16 piece must start at an even element.
  const evenRows = bytes === 2 && b.cols % 2 === 1 ? 2 : 1;
  const rowsPerPiece = Math.max(evenRows, Math.floor(maxElements / b.cols / evenRows) * evenRows);
  for (const blk of b.blocks) {
    for (let r = 0; r < blk.rows; r += rowsPerPiece) {
      const rows = Math.min(rowsPerPiece, blk.rows - r);
      // A view of the piece's rows (arena tensors compute `buffer` lazily: name it, do not spread it).
      const piece = {
        buffer: blk.tensor.buffer,
        offset: blk.tensor.offset + r * b.cols * bytes,
        length: rows * b.cols,
        dtype: b.dtype,
        label: b.label,
      };
      const [data] = await gpu.readMany([piece]);
      yield { row0: blk.row0 + r, data: data as HostArray };
    }
  }
}
