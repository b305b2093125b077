// A GGUF file as plain, editable data, and a writer that writes whatever it is
// given: wrong types, extreme values, lying counts, repeated keys. The project's
// own writer (src/gguf/writer.ts) refuses such input on purpose; the fuzz suite
// needs to produce it.
import { readFileSync } from 'node:fs';
import { GgufValueType, alignUp, ggmlTypeLayout, tensorByteSize, type GgufArray } from '../../src/gguf/format.js';
import { readGguf } from '../../src/gguf/reader.js';

export interface RawKv { key: string; type: number; value: unknown; /** Array length to write instead of the real one. */ count?: bigint }
export interface RawTensor { name: string; dims: bigint[]; type: number; offset: bigint; /** Where its bytes were in the source file's data section. */ source?: number }
export interface RawModel { kvs: RawKv[]; tensors: RawTensor[]; data: Buffer; alignment: number }

/** Parses a valid GGUF file into editable parts; the data section is kept as raw bytes. */
export async function parseRaw(path: string): Promise<RawModel> {
  const file = await readGguf(path);
  const bytes = readFileSync(path);
  return {
    kvs: [...file.metadata].map(([key, e]) => ({ key, type: e.type, value: e.value })),
    tensors: file.tensors.map((t) => ({ name: t.name, dims: t.dims.map(BigInt), type: t.type, offset: BigInt(t.offset), source: t.offset })),
    data: bytes.subarray(file.dataOffset),
    alignment: file.alignment,
  };
}

export function cloneRaw(m: RawModel): RawModel {
  return {
    kvs: m.kvs.map((kv) => ({ ...kv, value: cloneValue(kv.value) })),
    tensors: m.tensors.map((t) => ({ ...t, dims: [...t.dims] })),
    data: m.data,
    alignment: m.alignment,
  };
}

function cloneValue(v: unknown): unknown {
  if (typeof v === 'object' && v !== null && 'items' in v) {
    const a = v as GgufArray;
    const items = ArrayBuffer.isView(a.items) ? (a.items as unknown as { slice(): unknown }).slice() : Array.from(a.items);
    return { itemType: a.itemType, items };
  }
  return v;
}

class Out {
  chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void { this.chunks.push(b); this.length += b.length; }
  u32(v: number | bigint): void { const b = Buffer.alloc(4); b.writeUInt32LE(Number(BigInt.asUintN(32, BigInt(v)))); this.push(b); }
  u64(v: number | bigint): void { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v))); this.push(b); }
  str(s: string | Buffer): void { const b = typeof s === 'string' ? Buffer.from(s) : s; this.u64(b.length); this.push(b); }
}

const INT_BITS: Partial<Record<number, [number, boolean]>> = {
  [GgufValueType.UINT8]: [8, false], [GgufValueType.INT8]: [8, true], [GgufValueType.UINT16]: [16, false],
  [GgufValueType.INT16]: [16, true], [GgufValueType.UINT32]: [32, false], [GgufValueType.INT32]: [32, true],
  [GgufValueType.UINT64]: [64, false], [GgufValueType.INT64]: [64, true],
};

/** Writes `value` as `type`, wrapping integers to the type's width (so -1 becomes all ones). */
function scalar(out: Out, type: number, value: unknown): void {
  const bits = INT_BITS[type];
  if (bits) {
    const n = typeof value === 'bigint' ? value : BigInt(Math.trunc(Number(value) || 0));
    const b = Buffer.alloc(bits[0] / 8);
    const u = BigInt.asUintN(bits[0], n);
    for (let i = 0; i < b.length; i++) b[i] = Number((u >> BigInt(8 * i)) & 0xffn);
    out.push(b);
  } else if (type === GgufValueType.FLOAT32) {
    const b = Buffer.alloc(4); b.writeFloatLE(Number(value)); out.push(b);
  } else if (type === GgufValueType.FLOAT64) {
    const b = Buffer.alloc(8); b.writeDoubleLE(Number(value)); out.push(b);
  } else if (type === GgufValueType.BOOL) {
    out.push(Buffer.from([typeof value === 'boolean' ? Number(value) : Number(value) & 0xff]));
  } else if (type === GgufValueType.STRING) {
    out.str(typeof value === 'string' || Buffer.isBuffer(value) ? value : String(value));
  } else {
    throw new Error(`raw-gguf: cannot write a scalar of type ${type}`);
  }
}

/** Serializes a RawModel (GGUF version 3). */
export function serializeRaw(m: RawModel): Buffer {
  const out = new Out();
  out.push(Buffer.from('GGUF'));
  out.u32(3);
  out.u64(m.tensors.length);
  out.u64(m.kvs.length);
  for (const kv of m.kvs) {
    out.str(kv.key);
    out.u32(kv.type);
    if (kv.type === GgufValueType.ARRAY) {
      const a = kv.value as GgufArray;
      out.u32(a.itemType);
      out.u64(kv.count ?? BigInt(a.items.length));
      for (let i = 0; i < a.items.length; i++) scalar(out, a.itemType, a.items[i]);
    } else {
      scalar(out, kv.type, kv.value);
    }
  }
  for (const t of m.tensors) {
    out.str(t.name);
    out.u32(t.dims.length);
    for (const d of t.dims) out.u64(d);
    out.u32(t.type);
    out.u64(t.offset);
  }
  const pad = (m.alignment - (out.length % m.alignment)) % m.alignment;
  out.push(Buffer.alloc(pad));
  out.push(m.data);
  return Buffer.concat(out.chunks);
}

/**
 * Lays the tensors out again, one after the other at the alignment, each with
 * its type's byte size for its shape, carrying over the bytes it had: so a
 * changed type or shape passes llama.cpp's offset checks and reaches the
 * computation. Tensors whose size cannot be computed (unknown types, rows that
 * are not whole blocks, absurd shapes) keep a 32-byte slot.
 */
export function relayout(m: RawModel): void {
  const sizes = m.tensors.map((t) => {
    try {
      if (!ggmlTypeLayout(t.type) || t.dims.some((d) => d > 2n ** 32n)) return 32;
      const n = tensorByteSize(t.type, t.dims.map(Number));
      return n >= 0 && n < 64 * 1024 * 1024 ? n : 32;
    } catch {
      return 32;
    }
  });
  let at = 0;
  const offsets = sizes.map((n) => { const o = at; at = alignUp(at + n, m.alignment); return o; });
  const data = Buffer.alloc(at);
  m.tensors.forEach((t, i) => {
    if (t.source !== undefined) m.data.copy(data, offsets[i]!, t.source, Math.min(t.source + sizes[i]!, m.data.length));
    t.offset = BigInt(offsets[i]!);
  });
  m.data = data;
}
