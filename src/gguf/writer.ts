// Streaming GGUF writer: the header is built in memory (a few MB at most, dominated by
// the tokenizer), tensor data is written tensor by tensor through a file handle, so
// multi-GB files never need to be held in memory.
import { open, rename, unlink } from 'node:fs/promises';
import {
  GGUF_ALIGNMENT_KEY,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  GgufError,
  GgufValueType,
  VALUE_TYPE_SIZE,
  alignUp,
  tensorByteSize,
  type GgmlType,
  type GgufArray,
  type GgufKeyValue,
  type GgufMetadataEntry,
  type GgufValue,
} from './format.js';

/**
 * Produces a tensor's bytes in order: called with chunkIndex 0, 1, 2, ... until the
 * returned chunks add up to the tensor's byte size. The writer awaits each write before
 * asking for the next chunk, so a generator may reuse one buffer for every chunk.
 */
export type TensorChunkSource = (chunkIndex: number) => Uint8Array | Promise<Uint8Array>;

export interface GgufTensorSpec {
  name: string;
  /** ggml order: ne0 (row length) first. */
  dims: number[];
  type: GgmlType;
  data: Uint8Array | TensorChunkSource;
}

export interface WriteGgufOptions {
  /** Ordered metadata; a Map (as returned by readGguf) is accepted too. */
  metadata: GgufKeyValue[] | Map<string, GgufMetadataEntry>;
  tensors: GgufTensorSpec[];
  /** Called after each chunk with bytes of tensor data written so far and the total. */
  onProgress?: (written: number, total: number) => void;
}

export interface WriteGgufResult {
  path: string;
  fileSize: number;
  dataOffset: number;
  alignment: number;
  /** Tensor offsets relative to the data section, in write order. */
  offsets: number[];
}

const invalid = (msg: string) => new GgufError('INVALID_ARGUMENT', msg);

/** Growable little-endian byte sink for the header. */
class Sink {
  buf = Buffer.alloc(1 << 16);
  len = 0;
  reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
  u32(v: number): void { this.reserve(4); this.buf.writeUInt32LE(v, this.len); this.len += 4; }
  u64(v: number | bigint): void { this.reserve(8); this.buf.writeBigUInt64LE(BigInt(v), this.len); this.len += 8; }
  bytes(b: Uint8Array): void { this.reserve(b.length); this.buf.set(b, this.len); this.len += b.length; }
  string(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.reserve(8 + n);
    this.buf.writeBigUInt64LE(BigInt(n), this.len);
    this.buf.write(s, this.len + 8, n, 'utf8');
    this.len += 8 + n;
  }
}

function writeScalar(out: Sink, type: GgufValueType, v: unknown, key: string): void {
  const bad = () => invalid(`metadata "${key}": value ${String(v)} does not fit type ${GgufValueType[type] ?? type}`);
  if (type === GgufValueType.STRING) {
    if (typeof v !== 'string') throw bad();
    out.string(v);
    return;
  }
  const size = VALUE_TYPE_SIZE[type];
  if (size === undefined) throw invalid(`metadata "${key}": unknown value type ${type}`);
  out.reserve(size);
  const b = out.buf, p = out.len;
  // Buffer's write* methods range-check integers, so out-of-range values throw here.
  try {
    switch (type) {
      case GgufValueType.BOOL: if (typeof v !== 'boolean') throw bad(); b.writeUInt8(v ? 1 : 0, p); break;
      case GgufValueType.UINT64: b.writeBigUInt64LE(BigInt(v as number | bigint), p); break;
      case GgufValueType.INT64: b.writeBigInt64LE(BigInt(v as number | bigint), p); break;
      default: {
        if (typeof v !== 'number') throw bad();
        switch (type) {
          case GgufValueType.UINT8: b.writeUInt8(v, p); break;
          case GgufValueType.INT8: b.writeInt8(v, p); break;
          case GgufValueType.UINT16: b.writeUInt16LE(v, p); break;
          case GgufValueType.INT16: b.writeInt16LE(v, p); break;
          case GgufValueType.UINT32: b.writeUInt32LE(v, p); break;
          case GgufValueType.INT32: b.writeInt32LE(v, p); break;
          case GgufValueType.FLOAT32: b.writeFloatLE(v, p); break;
          case GgufValueType.FLOAT64: b.writeDoubleLE(v, p); break;
        }
      }
    }
  } catch (e) {
    throw e instanceof GgufError ? e : bad();
  }
  out.len += size;
}

function writeArray(out: Sink, arr: GgufArray, key: string): void {
  const { itemType, items } = arr;
  if (itemType === GgufValueType.ARRAY) throw invalid(`metadata "${key}": nested arrays are not supported`);
  out.u32(itemType);
  out.u64(items.length);
  const size = VALUE_TYPE_SIZE[itemType];
  // Numeric typed arrays go out as one memcpy (the host is little-endian, like GGUF).
  if (itemType !== GgufValueType.BOOL && size !== undefined && ArrayBuffer.isView(items)) {
    const view = items as unknown as ArrayBufferView;
    if (view.byteLength !== items.length * size) {
      throw invalid(`metadata "${key}": typed array element size does not match ${GgufValueType[itemType]}`);
    }
    out.bytes(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
    return;
  }
  for (let i = 0; i < items.length; i++) writeScalar(out, itemType, items[i], `${key}[${i}]`);
}

function entries(md: WriteGgufOptions['metadata']): GgufKeyValue[] {
  return md instanceof Map ? [...md].map(([key, e]) => ({ key, ...e })) : md;
}

/** Write a GGUF v3 file. Data goes to a temporary file that is renamed into place on success. */
export async function writeGguf(path: string, options: WriteGgufOptions): Promise<WriteGgufResult> {
  const metadata = entries(options.metadata);
  const seen = new Set<string>();
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  for (const kv of metadata) {
    if (seen.has(kv.key)) throw invalid(`duplicate metadata key "${kv.key}"`);
    seen.add(kv.key);
    if (kv.key === GGUF_ALIGNMENT_KEY) {
      const v = kv.value;
      if (kv.type !== GgufValueType.UINT32 || typeof v !== 'number' || v <= 0 || (v & (v - 1)) !== 0) {
        throw invalid(`${GGUF_ALIGNMENT_KEY} must be a power-of-two UINT32`);
      }
      alignment = v;
    }
  }

  // Header: magic, version, counts, metadata, tensor infos.
  const out = new Sink();
  out.bytes(Buffer.from(GGUF_MAGIC, 'latin1'));
  out.u32(GGUF_VERSION);
  out.u64(options.tensors.length);
  out.u64(metadata.length);
  for (const { key, type, value } of metadata) {
    out.string(key);
    out.u32(type);
    if (type === GgufValueType.ARRAY) {
      const arr = value as GgufArray;
      if (typeof arr !== 'object' || arr === null || !('items' in arr)) throw invalid(`metadata "${key}": ARRAY value must be {itemType, items}`);
      writeArray(out, arr, key);
    } else {
      writeScalar(out, type, value as GgufValue, key);
    }
  }
  const offsets: number[] = [];
  const sizes: number[] = [];
  const names = new Set<string>();
  let cursor = 0;
  for (const t of options.tensors) {
    if (names.has(t.name)) throw invalid(`duplicate tensor name "${t.name}"`);
    names.add(t.name);
    if (t.dims.length < 1 || t.dims.length > 4 || t.dims.some((d) => !Number.isSafeInteger(d) || d < 1)) {
      throw invalid(`tensor "${t.name}": dims must be 1 to 4 positive integers, got [${t.dims.join(', ')}]`);
    }
    let size: number;
    try {
      size = tensorByteSize(t.type, t.dims);
    } catch (e) {
      throw invalid(`tensor "${t.name}": ${(e as Error).message}`);
    }
    if (typeof t.data !== 'function' && t.data.length !== size) {
      throw invalid(`tensor "${t.name}": data is ${t.data.length} bytes, expected ${size}`);
    }
    out.string(t.name);
    out.u32(t.dims.length);
    for (const d of t.dims) out.u64(d);
    out.u32(t.type);
    out.u64(cursor);
    offsets.push(cursor);
    sizes.push(size);
    cursor = alignUp(cursor + size, alignment);
  }
  const dataOffset = alignUp(out.len, alignment);
  const total = sizes.reduce((a, b) => a + b, 0);

  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  let ok = false;
  try {
    let pos = 0;
    const put = async (b: Uint8Array) => {
      let done = 0;
      while (done < b.length) {
        const { bytesWritten } = await fh.write(b, done, b.length - done, pos);
        done += bytesWritten;
        pos += bytesWritten;
      }
    };
    const zeros = Buffer.alloc(alignment);
    const padTo = (target: number) => (target > pos ? put(zeros.subarray(0, target - pos)) : Promise.resolve());

    await put(out.buf.subarray(0, out.len));
    let written = 0;
    for (let i = 0; i < options.tensors.length; i++) {
      const t = options.tensors[i];
      await padTo(dataOffset + offsets[i]);
      if (typeof t.data !== 'function') {
        await put(t.data);
        written += t.data.length;
        options.onProgress?.(written, total);
        continue;
      }
      let remaining = sizes[i];
      for (let chunk = 0; remaining > 0; chunk++) {
        const b = await t.data(chunk);
        if (b.length === 0) throw invalid(`tensor "${t.name}": data source ended ${remaining} bytes early`);
        if (b.length > remaining) throw invalid(`tensor "${t.name}": data source produced ${b.length - remaining} bytes too many`);
        await put(b);
        remaining -= b.length;
        written += b.length;
        options.onProgress?.(written, total);
      }
    }
    // Pad the file end so every tensor's aligned extent lies inside the file, as ggml does.
    await padTo(dataOffset + cursor);
    ok = true;
    return { path, fileSize: pos, dataOffset, alignment, offsets };
  } finally {
    await fh.close();
    if (ok) await rename(tmp, path);
    else await unlink(tmp).catch(() => {});
  }
}
