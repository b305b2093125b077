// Streaming GGUF header reader. Only the header (metadata + tensor infos) is read,
// through a file handle in chunks, so multi-GB model files cost a few MB of memory.
import { open, type FileHandle } from 'node:fs/promises';
import {
  GGUF_ALIGNMENT_KEY,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC_U32,
  GgufError,
  GgufValueType,
  VALUE_TYPE_SIZE,
  alignUp,
  ggmlTypeLayout,
  ggmlTypeName,
  tensorByteSize,
  type GgufArray,
  type GgufMetadataEntry,
  type GgufTensorInfo,
  type GgufValue,
} from './format.js';

export interface ReadGgufOptions {
  /** Also load every tensor's bytes into `tensor.data` (only sensible for small files). */
  readTensorData?: boolean;
}

export interface GgufTensor extends GgufTensorInfo {
  data?: Buffer;
}

export interface GgufFile {
  version: number;
  metadata: Map<string, GgufMetadataEntry>;
  tensors: GgufTensor[];
  /** Absolute file offset of the tensor data section. */
  dataOffset: number;
  alignment: number;
  fileSize: number;
}

const CHUNK = 1 << 20;
const MAX_DIMS = 4; // GGML_MAX_DIMS
const invalid = (msg: string) => new GgufError('INVALID_MODEL_FILE', msg);

/** Typed-array constructors for numeric array element types. */
const TYPED_ARRAY: Partial<Record<GgufValueType, { new (n: number): ArrayBufferView & ArrayLike<unknown> }>> = {
  [GgufValueType.UINT8]: Uint8Array,
  [GgufValueType.INT8]: Int8Array,
  [GgufValueType.UINT16]: Uint16Array,
  [GgufValueType.INT16]: Int16Array,
  [GgufValueType.UINT32]: Uint32Array,
  [GgufValueType.INT32]: Int32Array,
  [GgufValueType.FLOAT32]: Float32Array,
  [GgufValueType.UINT64]: BigUint64Array,
  [GgufValueType.INT64]: BigInt64Array,
  [GgufValueType.FLOAT64]: Float64Array,
};

/**
 * A forward-only buffered view of the file. `need(n)` guarantees n bytes at `pos`;
 * callers check `avail` first so the common case stays synchronous (no await per value,
 * which matters for 150k-entry string arrays).
 */
class Cursor {
  buf = Buffer.alloc(CHUNK);
  pos = 0; // read position within buf
  end = 0; // valid bytes in buf
  private fileBase = 0; // file offset of buf[0]
  constructor(private fh: FileHandle, readonly fileSize: number, private what: () => string) {}

  get avail(): number { return this.end - this.pos; }
  /** Absolute file offset of the read position. */
  get offset(): number { return this.fileBase + this.pos; }
  /** Bytes between the read position and end of file. */
  get remaining(): number { return this.fileSize - this.offset; }

  async need(n: number): Promise<void> {
    if (this.avail >= n) return;
    if (n > this.remaining) {
      throw invalid(`truncated GGUF header: needed ${n} bytes at offset ${this.offset} while reading ${this.what()}, but the file is only ${this.fileSize} bytes`);
    }
    // Move the unread tail to the front (into a bigger buffer if one value needs it), then refill.
    const keep = this.avail;
    if (n > this.buf.length) {
      const bigger = Buffer.alloc(n);
      this.buf.copy(bigger, 0, this.pos, this.end);
      this.buf = bigger;
    } else {
      this.buf.copyWithin(0, this.pos, this.end);
    }
    this.fileBase += this.pos;
    this.pos = 0;
    this.end = keep;
    while (this.end < n) {
      const want = Math.min(this.buf.length - this.end, this.fileSize - (this.fileBase + this.end));
      const { bytesRead } = await this.fh.read(this.buf, this.end, want, this.fileBase + this.end);
      if (bytesRead === 0) throw invalid(`truncated GGUF header: unexpected end of file while reading ${this.what()}`);
      this.end += bytesRead;
    }
  }

  u32(): number { const v = this.buf.readUInt32LE(this.pos); this.pos += 4; return v; }
  /** u64 used as a count/length: must fit a JS number. */
  size(label: string): number {
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(`absurd ${label} ${v} in GGUF header`);
    return Number(v);
  }
}

/**
 * Whether `bytes` needed in a file of `fileSize` bytes is beyond any plausible truncation
 * (corrupt or hostile data: typically astronomically large numbers) rather than a file cut short.
 */
function isAbsurd(bytes: number, fileSize: number): boolean {
  return bytes > 2 ** 48 || bytes > fileSize * 1024 + (1 << 20);
}

/** Error for a count/length that runs past the end of the file. */
function pastEnd(c: Cursor, what: string, value: number, bytes: number, at: number): GgufError {
  return isAbsurd(bytes, c.fileSize)
    ? invalid(`absurd ${what} ${value} at offset ${at}: only ${c.remaining} bytes left in the ${c.fileSize}-byte file`)
    : invalid(`truncated GGUF header: ${what} ${value} at offset ${at} needs at least ${bytes} bytes, only ${c.remaining} left in the ${c.fileSize}-byte file`);
}

async function readString(c: Cursor, label: string): Promise<string> {
  if (c.avail < 8) await c.need(8);
  const len = c.size(`${label} length`);
  if (len > c.remaining) throw pastEnd(c, `${label} length`, len, len, c.offset - 8);
  if (c.avail < len) await c.need(len);
  const s = c.buf.toString('utf8', c.pos, c.pos + len);
  c.pos += len;
  return s;
}

async function readScalar(c: Cursor, type: GgufValueType): Promise<GgufValue> {
  if (type === GgufValueType.STRING) return readString(c, 'string');
  const size = VALUE_TYPE_SIZE[type];
  if (size === undefined) throw invalid(`unknown GGUF metadata value type ${type}`);
  if (c.avail < size) await c.need(size);
  const b = c.buf, p = c.pos;
  c.pos += size;
  switch (type) {
    case GgufValueType.UINT8: return b.readUInt8(p);
    case GgufValueType.INT8: return b.readInt8(p);
    case GgufValueType.UINT16: return b.readUInt16LE(p);
    case GgufValueType.INT16: return b.readInt16LE(p);
    case GgufValueType.UINT32: return b.readUInt32LE(p);
    case GgufValueType.INT32: return b.readInt32LE(p);
    case GgufValueType.FLOAT32: return b.readFloatLE(p);
    case GgufValueType.BOOL: {
      const v = b.readUInt8(p);
      if (v > 1) throw invalid(`invalid GGUF bool value ${v} at offset ${c.offset - 1}`);
      return v === 1;
    }
    case GgufValueType.UINT64: return b.readBigUInt64LE(p);
    case GgufValueType.INT64: return b.readBigInt64LE(p);
    default: return b.readDoubleLE(p); // FLOAT64
  }
}

async function readArray(c: Cursor): Promise<GgufArray> {
  await c.need(12);
  const itemType = c.u32() as GgufValueType;
  const count = c.size('array length');
  if (itemType === GgufValueType.ARRAY) throw invalid('nested GGUF arrays are not supported');
  if (itemType === GgufValueType.STRING) {
    // Each string takes at least its 8-byte length prefix.
    if (count * 8 > c.remaining) throw pastEnd(c, 'string array length', count, count * 8, c.offset - 8);
    const items = new Array<string>(count);
    for (let i = 0; i < count; i++) {
      // Synchronous fast path when the whole string is buffered: calling the async
      // readString for each of ~150k vocab entries would dominate the load time.
      if (c.avail >= 8) {
        const len = Number(c.buf.readBigUInt64LE(c.pos));
        if (c.avail >= 8 + len) {
          items[i] = c.buf.toString('utf8', c.pos + 8, c.pos + 8 + len);
          c.pos += 8 + len;
          continue;
        }
      }
      items[i] = await readString(c, 'string');
    }
    return { itemType, items };
  }
  const size = VALUE_TYPE_SIZE[itemType];
  if (size === undefined) throw invalid(`unknown GGUF array element type ${itemType}`);
  const bytes = count * size;
  if (bytes > c.remaining) throw pastEnd(c, 'array length', count, bytes, c.offset - 8);
  if (itemType === GgufValueType.BOOL) {
    const items = new Array<boolean>(count);
    for (let i = 0; i < count; i++) items[i] = (await readScalar(c, itemType)) as boolean;
    return { itemType, items };
  }
  // Numeric: one bulk copy into a fresh typed array (copying also fixes alignment).
  const Ctor = TYPED_ARRAY[itemType]!;
  const items = new Ctor(count);
  const dst = new Uint8Array(items.buffer, items.byteOffset, bytes);
  let done = 0;
  while (done < bytes) {
    if (c.avail === 0) await c.need(Math.min(CHUNK, bytes - done));
    const n = Math.min(c.avail, bytes - done);
    dst.set(c.buf.subarray(c.pos, c.pos + n), done);
    c.pos += n;
    done += n;
  }
  return { itemType, items };
}

/** Read a GGUF file's header (and optionally its tensor data). */
export async function readGguf(path: string, options: ReadGgufOptions = {}): Promise<GgufFile> {
  const fh = await open(path, 'r');
  try {
    const fileSize = (await fh.stat()).size;
    let what = 'the file magic';
    const c = new Cursor(fh, fileSize, () => what);

    if (fileSize < 4) throw invalid(`not a GGUF file: ${path} is only ${fileSize} bytes`);
    await c.need(4);
    const magic = c.u32();
    if (magic !== GGUF_MAGIC_U32) {
      const raw = c.buf.subarray(0, 4);
      throw invalid(`not a GGUF file (magic ${JSON.stringify(raw.toString('latin1'))} = 0x${raw.toString('hex')}, expected "GGUF"): ${path}`);
    }
    what = 'the header counts';
    await c.need(4 + 8 + 8);
    const version = c.u32();
    if (version !== 2 && version !== 3) {
      // A big-endian GGUF reads as a byte-swapped version number.
      const swapped = Buffer.alloc(4); swapped.writeUInt32BE(version);
      const hint = swapped.readUInt32LE() === 3 ? ' (this looks like a big-endian GGUF file)' : '';
      throw invalid(`unsupported GGUF version ${version}${hint}; only versions 2 and 3 are supported`);
    }
    const tensorCount = c.size('tensor count');
    const kvCount = c.size('metadata count');
    // Smallest possible entries: a KV is an 8-byte key length + 4-byte type + 1-byte value,
    // a tensor info is 8 (name) + 4 (n_dims) + 4 (type) + 8 (offset) bytes.
    if (kvCount * 13 > c.remaining) throw pastEnd(c, 'metadata count', kvCount, kvCount * 13, 16);
    if (tensorCount * 24 > c.remaining) throw pastEnd(c, 'tensor count', tensorCount, tensorCount * 24, 8);

    const metadata = new Map<string, GgufMetadataEntry>();
    for (let i = 0; i < kvCount; i++) {
      what = `metadata entry ${i} of ${kvCount}`;
      const key = await readString(c, 'metadata key');
      what = `metadata value "${key}"`;
      await c.need(4);
      const type = c.u32() as GgufValueType;
      const value = type === GgufValueType.ARRAY ? await readArray(c) : await readScalar(c, type);
      if (metadata.has(key)) throw invalid(`duplicate metadata key "${key}"`);
      metadata.set(key, { type, value });
    }

    let alignment = GGUF_DEFAULT_ALIGNMENT;
    const al = metadata.get(GGUF_ALIGNMENT_KEY);
    if (al) {
      const v = al.value;
      if (al.type !== GgufValueType.UINT32 || typeof v !== 'number' || v === 0 || (v & (v - 1)) !== 0) {
        throw invalid(`invalid ${GGUF_ALIGNMENT_KEY}: expected a power-of-two UINT32, got ${String(v)}`);
      }
      alignment = v;
    }

    const tensors: GgufTensor[] = [];
    const names = new Set<string>();
    for (let i = 0; i < tensorCount; i++) {
      what = `tensor info ${i} of ${tensorCount}`;
      const name = await readString(c, 'tensor name');
      what = `tensor info "${name}"`;
      await c.need(4);
      const nDims = c.u32();
      if (nDims < 1 || nDims > MAX_DIMS) throw invalid(`tensor "${name}" has ${nDims} dimensions (1..${MAX_DIMS} allowed)`);
      await c.need(nDims * 8 + 4 + 8);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(c.size(`dimension of tensor "${name}"`));
      const type = c.u32();
      const offset = c.size(`offset of tensor "${name}"`);
      if (names.has(name)) throw invalid(`duplicate tensor name "${name}"`);
      names.add(name);
      if (offset % alignment !== 0) throw invalid(`tensor "${name}" offset ${offset} is not a multiple of the alignment ${alignment}`);
      // Dims are checked against the file size with the data section below; only catch
      // products so large that offsets would lose precision.
      const elements = dims.reduce((a, b) => a * b, 1);
      if (isAbsurd(elements, fileSize)) throw invalid(`absurd shape [${dims.join(', ')}] for tensor "${name}" in a ${fileSize}-byte file`);
      const byteSize = ggmlTypeLayout(type) ? tensorByteSize(type, dims) : -1;
      tensors.push({ name, dims, type, offset, byteSize });
    }

    const dataOffset = alignUp(c.offset, alignment);
    for (const t of tensors) {
      const end = dataOffset + t.offset + Math.max(t.byteSize, 0);
      if (end > fileSize) {
        throw invalid(`truncated GGUF file: tensor "${t.name}" (${ggmlTypeName(t.type)}) ends at byte ${end} but the file is only ${fileSize} bytes`);
      }
    }
    if (options.readTensorData) {
      for (const t of tensors) {
        if (t.byteSize < 0) throw invalid(`cannot read data of tensor "${t.name}": unsupported ggml type ${t.type}`);
        t.data = Buffer.alloc(t.byteSize);
        const { bytesRead } = await fh.read(t.data, 0, t.byteSize, dataOffset + t.offset);
        if (bytesRead !== t.byteSize) throw invalid(`truncated GGUF file: short read of tensor "${t.name}"`);
      }
    }
    return { version, metadata, tensors, dataOffset, alignment, fileSize };
  } finally {
    await fh.close();
  }
}

/** Convenience: a metadata value, or undefined. */
export function getMetadata(file: GgufFile, key: string): GgufValue | undefined {
  return file.metadata.get(key)?.value;
}
