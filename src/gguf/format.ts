// GGUF file-format constants and shared types (GGUF version 3).
//
// Layout of a GGUF file (all integers little-endian):
//   magic "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
//   metadata KVs: (string key, u32 value_type, value)*
//   tensor infos: (string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset)*
//   padding to `alignment`, then the tensor data section; every tensor's
//   offset (relative to the data section start) is a multiple of `alignment`.
// A string is a u64 byte length followed by UTF-8 bytes (no terminator).

export const GGUF_MAGIC = 'GGUF';
/** "GGUF" read as a little-endian u32. */
export const GGUF_MAGIC_U32 = 0x46554747;
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
export const GGUF_ALIGNMENT_KEY = 'general.alignment';

/** Metadata value types (gguf_type). */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** Byte size of each fixed-size scalar value type (STRING and ARRAY are variable). */
export const VALUE_TYPE_SIZE: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1,
  [GgufValueType.INT8]: 1,
  [GgufValueType.UINT16]: 2,
  [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4,
  [GgufValueType.INT32]: 4,
  [GgufValueType.FLOAT32]: 4,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT64]: 8,
  [GgufValueType.INT64]: 8,
  [GgufValueType.FLOAT64]: 8,
};

/** ggml tensor types this module writes (the random filler can produce them). */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q8_0 = 8,
}

/** Block geometry: `blockSize` elements are stored in `bytesPerBlock` bytes. */
export interface GgmlTypeInfo {
  name: string;
  blockSize: number;
  bytesPerBlock: number;
}

export const GGML_TYPE_INFO: Record<GgmlType, GgmlTypeInfo> = {
  [GgmlType.F32]: { name: 'F32', blockSize: 1, bytesPerBlock: 4 },
  [GgmlType.F16]: { name: 'F16', blockSize: 1, bytesPerBlock: 2 },
  // Q4_0 block: fp16 scale d, then 16 bytes of nibbles. value = (nibble - 8) * d;
  // byte j holds element j in its low nibble and element j + 16 in its high nibble.
  [GgmlType.Q4_0]: { name: 'Q4_0', blockSize: 32, bytesPerBlock: 2 + 16 },
  // Q8_0 block: fp16 scale d, then 32 int8. value = q * d.
  [GgmlType.Q8_0]: { name: 'Q8_0', blockSize: 32, bytesPerBlock: 2 + 32 },
};

/**
 * Block geometry of other ggml types, for sizing tensors of real model files only
 * (this module does not generate or decode them). Values follow ggml-common.h.
 */
const OTHER_TYPE_LAYOUT: Record<number, GgmlTypeInfo> = {
  3: { name: 'Q4_1', blockSize: 32, bytesPerBlock: 20 },
  6: { name: 'Q5_0', blockSize: 32, bytesPerBlock: 22 },
  7: { name: 'Q5_1', blockSize: 32, bytesPerBlock: 24 },
  9: { name: 'Q8_1', blockSize: 32, bytesPerBlock: 36 },
  10: { name: 'Q2_K', blockSize: 256, bytesPerBlock: 84 },
  11: { name: 'Q3_K', blockSize: 256, bytesPerBlock: 110 },
  12: { name: 'Q4_K', blockSize: 256, bytesPerBlock: 144 },
  13: { name: 'Q5_K', blockSize: 256, bytesPerBlock: 176 },
  14: { name: 'Q6_K', blockSize: 256, bytesPerBlock: 210 },
  15: { name: 'Q8_K', blockSize: 256, bytesPerBlock: 292 },
  16: { name: 'IQ2_XXS', blockSize: 256, bytesPerBlock: 66 },
  17: { name: 'IQ2_XS', blockSize: 256, bytesPerBlock: 74 },
  18: { name: 'IQ3_XXS', blockSize: 256, bytesPerBlock: 98 },
  19: { name: 'IQ1_S', blockSize: 256, bytesPerBlock: 50 },
  20: { name: 'IQ4_NL', blockSize: 32, bytesPerBlock: 18 },
  21: { name: 'IQ3_S', blockSize: 256, bytesPerBlock: 110 },
  22: { name: 'IQ2_S', blockSize: 256, bytesPerBlock: 82 },
  23: { name: 'IQ4_XS', blockSize: 256, bytesPerBlock: 136 },
  24: { name: 'I8', blockSize: 1, bytesPerBlock: 1 },
  25: { name: 'I16', blockSize: 1, bytesPerBlock: 2 },
  26: { name: 'I32', blockSize: 1, bytesPerBlock: 4 },
  27: { name: 'I64', blockSize: 1, bytesPerBlock: 8 },
  28: { name: 'F64', blockSize: 1, bytesPerBlock: 8 },
  29: { name: 'IQ1_M', blockSize: 256, bytesPerBlock: 56 },
  30: { name: 'BF16', blockSize: 1, bytesPerBlock: 2 },
  34: { name: 'TQ1_0', blockSize: 256, bytesPerBlock: 54 },
  35: { name: 'TQ2_0', blockSize: 256, bytesPerBlock: 66 },
  39: { name: 'MXFP4', blockSize: 32, bytesPerBlock: 17 },
  40: { name: 'NVFP4', blockSize: 64, bytesPerBlock: 36 },
  41: { name: 'Q1_0', blockSize: 128, bytesPerBlock: 18 },
  42: { name: 'Q2_0', blockSize: 64, bytesPerBlock: 18 },
};

/** Layout of any ggml type this module can size, or undefined. */
export function ggmlTypeLayout(type: number): GgmlTypeInfo | undefined {
  return isSupportedGgmlType(type) ? GGML_TYPE_INFO[type] : OTHER_TYPE_LAYOUT[type];
}

/** Human-readable ggml type name ("Q4_K", or "type 99" when unknown). */
export function ggmlTypeName(type: number): string {
  return ggmlTypeLayout(type)?.name ?? `type ${type}`;
}

/** ggml type names accepted by CLIs, mapped to the enum. */
export const GGML_TYPE_BY_NAME: Record<string, GgmlType> = {
  F32: GgmlType.F32,
  F16: GgmlType.F16,
  Q4_0: GgmlType.Q4_0,
  Q8_0: GgmlType.Q8_0,
};

export function isSupportedGgmlType(t: number): t is GgmlType {
  return Object.prototype.hasOwnProperty.call(GGML_TYPE_INFO, t);
}

/**
 * Bytes needed for a tensor of the given type and dims (ggml order, ne0 first).
 * Throws if the type is unknown or ne0 is not a multiple of the type's block size.
 */
export function tensorByteSize(type: GgmlType | number, dims: readonly (number | bigint)[]): number {
  const info = ggmlTypeLayout(type);
  if (!info) throw new GgufError('INVALID_MODEL_FILE', `unknown ggml tensor type ${type}`);
  const ne = dims.map(Number);
  const ne0 = ne.length ? ne[0] : 1;
  if (ne0 % info.blockSize !== 0) {
    throw new GgufError(
      'INVALID_MODEL_FILE',
      `tensor row length ${ne0} is not a multiple of the ${info.name} block size ${info.blockSize}`,
    );
  }
  const rows = ne.slice(1).reduce((a, b) => a * b, 1);
  return (ne0 / info.blockSize) * info.bytesPerBlock * rows;
}

/** Round `n` up to a multiple of `align`. */
export function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

/**
 * JS representation of a metadata value:
 * - 8/16/32-bit integers, FLOAT32/FLOAT64: number; UINT64/INT64: bigint; BOOL: boolean; STRING: string
 * - ARRAY: GgufArray (element type kept so a round trip preserves exact types).
 * Numeric arrays are stored as typed arrays in host byte order; like llama.cpp, this
 * module assumes a little-endian host.
 */
export type GgufScalar = number | bigint | boolean | string;

export interface GgufArray {
  itemType: GgufValueType;
  /**
   * Numeric arrays are typed arrays (Uint8Array, Int32Array, Float32Array, BigInt64Array, ...),
   * BOOL arrays are boolean[], STRING arrays are string[]. Nested arrays are not allowed
   * (llama.cpp's gguf loader rejects them too).
   */
  items: ArrayLike<unknown>;
}

export type GgufValue = GgufScalar | GgufArray;

export interface GgufMetadataEntry {
  type: GgufValueType;
  value: GgufValue;
}

/** An ordered key/value pair, as written to a file. */
export interface GgufKeyValue extends GgufMetadataEntry {
  key: string;
}

export interface GgufTensorInfo {
  name: string;
  /** ggml order: ne0 (the contiguous row length) first. */
  dims: number[];
  type: GgmlType | number;
  /** Offset relative to the start of the data section. */
  offset: number;
  /** Bytes of data; -1 if the ggml type is unknown to this module. */
  byteSize: number;
}

/** Error raised for malformed or unsupported GGUF input. */
export class GgufError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'GgufError';
    this.code = code;
  }
}
