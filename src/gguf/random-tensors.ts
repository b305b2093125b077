// Deterministic random (and constant) tensor data for test models, generated chunk by
// chunk so multi-GB files can be streamed by writeGguf. Quantized types are written as
// raw blocks (random scale + random quants) rather than quantizing float data: faster,
// and for random weights there is nothing to preserve anyway.
import { GGML_TYPE_INFO, GgmlType, tensorByteSize } from './format.js';
import type { TensorChunkSource } from './writer.js';

/** xorshift128 PRNG (Marsaglia), seeded through splitmix32. Not cryptographic; fast. */
export class Rng {
  private x: number;
  private y: number;
  private z: number;
  private w: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = () => {
      // splitmix32: spreads any seed (even 0) into a well-mixed non-zero state.
      s = (s + 0x9e3779b9) >>> 0;
      let t = s ^ (s >>> 16);
      t = Math.imul(t, 0x21f0aaad);
      t ^= t >>> 15;
      t = Math.imul(t, 0x735a2d97);
      return (t ^ (t >>> 15)) >>> 0;
    };
    this.x = next(); this.y = next(); this.z = next(); this.w = next() | 1;
  }

  nextU32(): number {
    const t = this.x ^ (this.x << 11);
    this.x = this.y; this.y = this.z; this.z = this.w;
    this.w = (this.w ^ (this.w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return this.w;
  }

  /** Uniform float in [0, 1). */
  float(): number {
    return this.nextU32() / 4294967296;
  }

  /** Fill with random words; the state lives in locals for speed (this is the hot loop). */
  fill(out: Uint32Array, count = out.length): void {
    let { x, y, z, w } = this;
    for (let i = 0; i < count; i++) {
      const t = x ^ (x << 11);
      x = y; y = z; z = w;
      w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
      out[i] = w;
    }
    this.x = x; this.y = y; this.z = z; this.w = w;
  }
}

/** Mix a global seed with a tensor name (FNV-1a) so each tensor's data is independent of write order. */
export function deriveSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

const f32 = new Float32Array(1);
const f32bits = new Uint32Array(f32.buffer);

/** float32 -> IEEE half bits, round to nearest even (Node 20 has no Math.f16round). */
export function f32ToF16(x: number): number {
  f32[0] = x;
  const b = f32bits[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Half subnormal: value = h * 2^-24.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry correctly bumps the exponent
  return sign | h;
}

export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Decode F32/F16/Q8_0/Q4_0 tensor bytes to floats (for tests and sanity checks). */
export function dequantize(type: GgmlType, bytes: Uint8Array): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const info = GGML_TYPE_INFO[type];
  const n = (bytes.length / info.bytesPerBlock) * info.blockSize;
  const out = new Float32Array(n);
  for (let blk = 0, p = 0; p < bytes.length; blk++, p += info.bytesPerBlock) {
    const o = blk * info.blockSize;
    if (type === GgmlType.F32) out[o] = dv.getFloat32(p, true);
    else if (type === GgmlType.F16) out[o] = f16ToF32(dv.getUint16(p, true));
    else {
      const d = f16ToF32(dv.getUint16(p, true));
      for (let j = 0; j < 32; j++) {
        if (type === GgmlType.Q8_0) out[o + j] = dv.getInt8(p + 2 + j) * d;
        // Q4_0: byte j holds element j (low nibble) and element j + 16 (high nibble).
        else out[o + j] = (((bytes[p + 2 + (j & 15)] >> (j < 16 ? 0 : 4)) & 15) - 8) * d;
      }
    }
  }
  return out;
}

export type FillSpec =
  /** Zero-mean noise with roughly this standard deviation (uniform distribution). */
  | { kind: 'random'; seed: number; std: number }
  | { kind: 'constant'; value: number };

// Standard deviation of uniformly random int8 (-128..127) and Q4_0 nibble - 8 (-8..7):
// used to turn the requested std into a block scale.
const STD_INT8 = Math.sqrt((256 * 256 - 1) / 12);
const STD_NIBBLE = Math.sqrt((16 * 16 - 1) / 12);

/** One block (or element) encoding `value` everywhere, for constant fills. */
function constantUnit(type: GgmlType, value: number): Uint8Array {
  const info = GGML_TYPE_INFO[type];
  const u = new Uint8Array(info.bytesPerBlock);
  const dv = new DataView(u.buffer);
  if (type === GgmlType.F32) dv.setFloat32(0, value, true);
  else if (type === GgmlType.F16) dv.setUint16(0, f32ToF16(value), true);
  else if (type === GgmlType.Q8_0) {
    dv.setUint16(0, f32ToF16(value / 127), true); // q = 127 everywhere
    u.fill(127, 2);
  } else {
    dv.setUint16(0, f32ToF16(-value / 8), true); // nibble 0 -> (0 - 8) * d = value
    u.fill(0, 2);
  }
  return u;
}

export interface TensorSourceOptions {
  /** Approximate chunk length (default 4 MiB); chunks are always whole blocks. */
  chunkBytes?: number;
  /**
   * Buffer to generate into, shared by all sources of one writeGguf call (it reads one
   * source at a time and awaits each write). Without it each source allocates its own
   * chunk buffer on first use, which for big models leaves much garbage for the GC.
   */
  scratch?: ArrayBuffer;
}

/** Bytes a scratch buffer needs for any tensor source created with this chunk size. */
export function scratchBytes(chunkBytes = DEFAULT_CHUNK): number {
  return chunkBytes + 4 * 34; // rounding up to whole 4-block units adds at most this
}

const DEFAULT_CHUNK = 4 << 20;

/** A chunk source for writeGguf producing `dims` elements of `type`, filled per `fill`. */
export function tensorSource(type: GgmlType, dims: number[], fill: FillSpec, options: TensorSourceOptions = {}): TensorChunkSource {
  const info = GGML_TYPE_INFO[type];
  const total = tensorByteSize(type, dims);
  // Whole blocks and a multiple of 4 bytes, so Uint32/Float32 views line up.
  const unit = info.bytesPerBlock * 4;
  const chunk = options.chunkBytes ?? DEFAULT_CHUNK;
  const size = Math.min(Math.max(unit, Math.floor(chunk / unit) * unit), Math.ceil(total / unit) * unit);
  if (options.scratch && options.scratch.byteLength < size) throw new RangeError(`scratch buffer too small: ${options.scratch.byteLength} < ${size}`);
  let produced = 0;
  let bytes: Uint8Array | undefined;
  let gen: ((n: number) => void) | undefined;

  return () => {
    if (!bytes) {
      const buf = options.scratch ?? new ArrayBuffer(size);
      bytes = new Uint8Array(buf, 0, size);
      if (fill.kind === 'constant') {
        const pattern = constantUnit(type, fill.value);
        for (let p = 0; p < size; p += pattern.length) bytes.set(pattern, p);
        gen = () => {};
      } else {
        gen = randomGenerator(type, fill, buf, size);
      }
    }
    const out = bytes;
    const n = Math.min(size, total - produced);
    gen!(n);
    produced += n;
    if (produced >= total) bytes = undefined; // the caller still holds the returned view until written
    return out.subarray(0, n);
  };
}

/** Returns a function that fills the first `n` bytes of `buf` with the next random data of `type`. */
function randomGenerator(type: GgmlType, fill: Extract<FillSpec, { kind: 'random' }>, buf: ArrayBuffer, size: number) {
  const rng = new Rng(fill.seed);
  const bytes = new Uint8Array(buf, 0, size);
  const words = new Uint32Array(buf, 0, size / 4);
  const a = fill.std * Math.sqrt(3); // uniform in [-a, a] has std a / sqrt(3)
  if (type === GgmlType.F32) {
    const floats = new Float32Array(buf, 0, size / 4);
    const k = (2 * a) / 4294967296;
    return (n: number) => {
      const nWords = Math.ceil(n / 4);
      rng.fill(words, nWords);
      for (let i = 0; i < nWords; i++) floats[i] = words[i] * k - a; // reads each word before overwriting it
    };
  }
  if (type === GgmlType.F16) {
    // 65536 precomputed halves spanning [-a, a]; each random 16 bits picks one.
    const halves = new Uint16Array(buf, 0, size / 2);
    const table = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) table[i] = f32ToF16(((i + 0.5) / 65536) * 2 * a - a);
    return (n: number) => {
      const nWords = Math.ceil(n / 4);
      rng.fill(words, nWords);
      for (let i = 0; i < nWords * 2; i++) halves[i] = table[halves[i]];
    };
  }
  // Q8_0 / Q4_0: 256 candidate block scales in [0.75, 1.25] x the nominal one.
  const d0 = fill.std / (type === GgmlType.Q8_0 ? STD_INT8 : STD_NIBBLE);
  const scales = new Uint16Array(256);
  for (let i = 0; i < 256; i++) scales[i] = f32ToF16(d0 * (0.75 + (0.5 * i) / 255));
  const bpb = GGML_TYPE_INFO[type].bytesPerBlock;
  return (n: number) => {
    rng.fill(words, Math.ceil(n / 4));
    // Random quants are now in place; overwrite each block's first two bytes (the
    // little-endian fp16 scale) with a scale picked by its random first byte.
    for (let p = 0; p < n; p += bpb) {
      const s = scales[bytes[p]];
      bytes[p] = s & 0xff;
      bytes[p + 1] = s >>> 8;
    }
  };
}
