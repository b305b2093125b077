import { existsSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GgmlType, GgufError, GgufValueType, ggmlTypeName, tensorByteSize, type GgufArray, type GgufKeyValue } from '../src/gguf/format.js';
import { readGguf } from '../src/gguf/reader.js';
import { dequantize, f16ToF32, f32ToF16, tensorSource } from '../src/gguf/random-tensors.js';
import { writeGguf } from '../src/gguf/writer.js';
import { DEFAULT_VOCAB, PRESETS, makeLlamaModel } from '../scripts/make-model.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const realModel = process.env.UNDERSTUDY_TEST_MODEL ?? join(repoRoot, '../shared/models/stories260K.gguf');

let dir = '';
test.before(async () => { dir = await mkdtemp(join(tmpdir(), 'understudy-gguf-')); });
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

/** Asserts that `fn` rejects with a GgufError of code INVALID_MODEL_FILE whose message matches. */
async function rejectsInvalid(fn: () => Promise<unknown>, message: RegExp): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.instance(e, GgufError);
    assert.is((e as GgufError).code, 'INVALID_MODEL_FILE');
    assert.match((e as Error).message, message);
    return;
  }
  assert.unreachable('expected an INVALID_MODEL_FILE error');
}

const arr = (itemType: GgufValueType, items: ArrayLike<unknown>): GgufArray => ({ itemType, items });
const T = GgufValueType;
const sampleMetadata = (alignment?: number): GgufKeyValue[] => [
  { key: 'general.architecture', type: T.STRING, value: 'llama' },
  ...(alignment ? [{ key: 'general.alignment', type: T.UINT32, value: alignment }] : []),
  { key: 'u8', type: T.UINT8, value: 255 },
  { key: 'i8', type: T.INT8, value: -128 },
  { key: 'u16', type: T.UINT16, value: 65535 },
  { key: 'i16', type: T.INT16, value: -32768 },
  { key: 'u32', type: T.UINT32, value: 4294967295 },
  { key: 'i32', type: T.INT32, value: -2147483648 },
  { key: 'f32', type: T.FLOAT32, value: 0.5 },
  { key: 'bool', type: T.BOOL, value: true },
  { key: 'str.unicode', type: T.STRING, value: 'héllo ▁wörld 🦙' },
  { key: 'u64', type: T.UINT64, value: 2n ** 64n - 1n },
  { key: 'i64', type: T.INT64, value: -(2n ** 63n) },
  { key: 'f64', type: T.FLOAT64, value: Math.PI },
  { key: 'arr.str', type: T.ARRAY, value: arr(T.STRING, ['<unk>', '', 'Ġthe', '🦙']) },
  { key: 'arr.f32', type: T.ARRAY, value: arr(T.FLOAT32, new Float32Array([0, -1.5, 3.25])) },
  { key: 'arr.i32', type: T.ARRAY, value: arr(T.INT32, new Int32Array([1, -2, 3])) },
  { key: 'arr.u8', type: T.ARRAY, value: arr(T.UINT8, new Uint8Array([1, 2, 255])) },
  { key: 'arr.i64', type: T.ARRAY, value: arr(T.INT64, new BigInt64Array([-1n, 5n])) },
  { key: 'arr.bool', type: T.ARRAY, value: arr(T.BOOL, [true, false, true]) },
  { key: 'arr.empty', type: T.ARRAY, value: arr(T.UINT32, new Uint32Array(0)) },
];

for (const alignment of [undefined, 64]) {
  test(`round trip: metadata types, tensors, offsets (alignment ${alignment ?? 'default'})`, async () => {
    const path = join(dir, `rt-${alignment}.gguf`);
    const f32 = Buffer.alloc(3 * 5 * 4);
    for (let i = 0; i < 15; i++) f32.writeFloatLE(i / 7, i * 4);
    const tensors = [
      { name: 'a.f32', dims: [3, 5], type: GgmlType.F32, data: f32 }, // 60 bytes: not a multiple of 32
      { name: 'b.f16', dims: [7], type: GgmlType.F16, data: tensorSource(GgmlType.F16, [7], { kind: 'random', seed: 1, std: 0.02 }) },
      { name: 'c.q4_0', dims: [64, 3], type: GgmlType.Q4_0, data: tensorSource(GgmlType.Q4_0, [64, 3], { kind: 'random', seed: 2, std: 0.02 }, { chunkBytes: 40 }) },
      { name: 'd.q8_0', dims: [32, 2, 2], type: GgmlType.Q8_0, data: tensorSource(GgmlType.Q8_0, [32, 2, 2], { kind: 'constant', value: 1 }) },
    ];
    const written = await writeGguf(path, { metadata: sampleMetadata(alignment), tensors });
    const f = await readGguf(path, { readTensorData: true });
    const al = alignment ?? 32;
    assert.is(f.version, 3);
    assert.is(f.alignment, al);
    assert.is(f.dataOffset % al, 0);
    assert.is(f.dataOffset, written.dataOffset);
    assert.is(f.fileSize, (await readFile(path)).length);

    const expected = sampleMetadata(alignment);
    assert.equal([...f.metadata.keys()], expected.map((e) => e.key), 'key order preserved');
    for (const e of expected) {
      const got = f.metadata.get(e.key)!;
      assert.is(got.type, e.type, e.key);
      if (e.type === T.ARRAY) {
        const a = got.value as GgufArray, x = e.value as GgufArray;
        assert.is(a.itemType, x.itemType, e.key);
        assert.is(a.items.constructor, x.items.constructor, `${e.key} keeps its JS array type`);
        assert.equal(Array.from(a.items), Array.from(x.items), e.key);
      } else {
        assert.equal(got.value, e.value, e.key);
      }
    }

    assert.equal(f.tensors.map((t) => [t.name, t.dims, t.type]), tensors.map((t) => [t.name, t.dims, t.type]));
    assert.equal(f.tensors.map((t) => t.byteSize), [60, 14, 3 * 2 * 18, 4 * 34]);
    assert.equal(f.tensors.map((t) => t.offset), written.offsets);
    let expectOffset = 0;
    for (const t of f.tensors) {
      assert.is(t.offset, expectOffset, `${t.name} offset`);
      expectOffset = Math.ceil((t.offset + t.byteSize) / al) * al;
    }
    assert.equal(f.tensors[0].data, f32);
    assert.ok(Array.from(dequantize(GgmlType.Q8_0, f.tensors[3].data!)).every((v) => v === 127 * f16ToF32(f32ToF16(1 / 127))));
  });
}

test('reads the real stories260K model header', async () => {
  if (!existsSync(realModel)) {
    console.warn(`  (skipped: ${realModel} not found; set UNDERSTUDY_TEST_MODEL)`);
    return;
  }
  const f = await readGguf(realModel);
  assert.is(f.metadata.get('general.architecture')?.value, 'llama');
  assert.is(f.metadata.get('llama.block_count')?.value, 5);
  assert.is(f.metadata.get('llama.embedding_length')?.value, 64);
  const tokens = f.metadata.get('tokenizer.ggml.tokens')!;
  assert.is(tokens.type, T.ARRAY);
  assert.is((tokens.value as GgufArray).itemType, T.STRING);
  assert.is((tokens.value as GgufArray).items.length, 512);
  assert.equal(f.tensors.find((t) => t.name === 'token_embd.weight')?.dims, [64, 512]);
  assert.ok(f.tensors.every((t) => f.dataOffset + t.offset + t.byteSize <= f.fileSize));
});

test('rejects a file with the wrong magic', async () => {
  const path = join(dir, 'magic.gguf');
  await writeFile(path, Buffer.concat([Buffer.from('GGML'), Buffer.alloc(60)]));
  await rejectsInvalid(() => readGguf(path), /^not a GGUF file \(magic "GGML" = 0x47474d4c, expected "GGUF"\)/);
  await writeFile(path, Buffer.from('GG'));
  await rejectsInvalid(() => readGguf(path), /not a GGUF file: .* is only 2 bytes/);
});

test('rejects unsupported versions and absurd counts', async () => {
  const path = join(dir, 'version.gguf');
  const header = (version: number, tensors: bigint, kvs: bigint) => {
    const b = Buffer.alloc(24 + 64);
    b.write('GGUF', 0, 'latin1');
    b.writeUInt32LE(version, 4);
    b.writeBigUInt64LE(tensors, 8);
    b.writeBigUInt64LE(kvs, 16);
    return b;
  };
  await writeFile(path, header(99, 0n, 0n));
  await rejectsInvalid(() => readGguf(path), /^unsupported GGUF version 99; only versions 2 and 3 are supported/);
  await writeFile(path, header(0x03000000, 0n, 0n));
  await rejectsInvalid(() => readGguf(path), /big-endian/);
  await writeFile(path, header(3, 0n, 1n << 40n));
  await rejectsInvalid(() => readGguf(path), /^absurd metadata count 1099511627776 at offset 16: only 64 bytes left in the 88-byte file/);
  await writeFile(path, header(3, 10n ** 12n, 0n));
  await rejectsInvalid(() => readGguf(path), /^absurd tensor count 1000000000000 at offset 8: only 64 bytes left in the 88-byte file/);
  await writeFile(path, header(3, 50n, 0n)); // plausible count, file too short: truncation
  await rejectsInvalid(() => readGguf(path), /^truncated GGUF header: tensor count 50 at offset 8 needs at least 1200 bytes, only 64 left in the 88-byte file/);
});

test('rejects a truncated file', async () => {
  const path = join(dir, 'trunc.gguf');
  await writeGguf(path, {
    metadata: sampleMetadata(),
    tensors: [{ name: 'w', dims: [32, 4], type: GgmlType.F32, data: Buffer.alloc(512) }],
  });
  const full = await readGguf(path);
  await truncate(path, full.dataOffset + 100); // header intact, tensor data cut short
  await rejectsInvalid(() => readGguf(path), /^truncated GGUF file: tensor "w" \(F32\) ends at byte \d+ but the file is only \d+ bytes/);
  // Cut anywhere before the data: every way of running out of bytes says "truncated"
  // (the last few cuts fall in the padding after the header, so the tensor is the victim).
  for (let n = full.dataOffset - 1; n >= 24; n -= 5) {
    await truncate(path, n);
    await rejectsInvalid(() => readGguf(path), new RegExp(`^truncated GGUF (header|file): .*\\b${n}(-byte file| bytes)\\b`));
  }
  await writeGguf(path, { metadata: [{ key: 'general.name', type: T.UINT32, value: 7 }], tensors: [] });
  await truncate(path, 24 + 8 + 12 + 4 + 2); // inside the u32 value
  await rejectsInvalid(() => readGguf(path), /^truncated GGUF header: needed 4 bytes at offset 48 while reading metadata value "general.name", but the file is only 50 bytes$/);
  await truncate(path, 24 + 8 + 5); // inside the key
  await rejectsInvalid(() => readGguf(path), /^truncated GGUF header: metadata key length 12 at offset 24 needs at least 12 bytes, only 5 left in the 37-byte file$/);
  await truncate(path, 20); // inside the counts
  await rejectsInvalid(() => readGguf(path), /^truncated GGUF header: needed 20 bytes at offset 4 while reading the header counts, but the file is only 20 bytes$/);
});

test('rejects an absurd string length', async () => {
  const path = join(dir, 'strlen.gguf');
  await writeGguf(path, { metadata: [{ key: 'general.name', type: T.STRING, value: 'x' }], tensors: [] });
  // Patch the key's u64 length (right after the 24-byte fixed header) to 2^40.
  const fh = await open(path, 'r+');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(1n << 40n);
  await fh.write(len, 0, 8, 24);
  await fh.close();
  await rejectsInvalid(() => readGguf(path), /^absurd metadata key length 1099511627776 at offset 24: only \d+ bytes left in the \d+-byte file/);
});

test('sizes the ggml types of the pinned llama.cpp, the newest ones included', () => {
  // Block sizes and bytes from ggml-common.h: NVFP4 64/36, Q1_0 128/18, Q2_0 64/18.
  assert.equal([40, 41, 42].map(ggmlTypeName), ['NVFP4', 'Q1_0', 'Q2_0']);
  assert.is(tensorByteSize(40, [128, 2]), 2 * 2 * 36);
  assert.is(tensorByteSize(41, [256, 1]), 2 * 18);
  assert.is(tensorByteSize(42, [64, 3]), 3 * 18);
  assert.is(ggmlTypeName(43), 'type 43');
  assert.throws(() => tensorByteSize(41, [64]), /not a multiple of the Q1_0 block size 128/);
});

test('random tensors: deterministic, finite, sensible magnitude', () => {
  for (const type of [GgmlType.F32, GgmlType.F16, GgmlType.Q8_0, GgmlType.Q4_0]) {
    const dims = [256, 64];
    const gen = (seed: number) => {
      const src = tensorSource(type, dims, { kind: 'random', seed, std: 0.02 }, { chunkBytes: 1000 });
      const parts: Uint8Array[] = [];
      for (let got = 0, i = 0; got < (type === GgmlType.F32 ? 4 : type === GgmlType.F16 ? 2 : type === GgmlType.Q8_0 ? 34 / 32 : 18 / 32) * 256 * 64; i++) {
        parts.push(Buffer.from(src(i) as Uint8Array)); // copy: the source reuses its buffer
        got += parts[parts.length - 1].length;
      }
      return Buffer.concat(parts);
    };
    const a = gen(7);
    assert.equal(a, gen(7), 'same seed, same bytes');
    assert.not.equal(a, gen(8), 'different seed, different bytes');
    const v = dequantize(type, a);
    assert.is(v.length, 256 * 64);
    const std = Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
    assert.ok(v.every(Number.isFinite), 'finite');
    assert.ok(std > 0.012 && std < 0.03, `std ${std} for type ${type}`);
  }
  // Q4_0 layout: byte j of the nibbles holds element j (low) and j + 16 (high); value = (q - 8) * d.
  const block = new Uint8Array(18);
  new DataView(block.buffer).setUint16(0, f32ToF16(0.5), true);
  block[2] = 0x0f; // element 0 -> (15 - 8) * 0.5, element 16 -> (0 - 8) * 0.5
  assert.equal([dequantize(GgmlType.Q4_0, block)[0], dequantize(GgmlType.Q4_0, block)[16]], [3.5, -4]);
  assert.is(f16ToF32(f32ToF16(65504)), 65504);
  assert.is(f16ToF32(f32ToF16(1e-7)), 2 ** -24 * Math.round(1e-7 / 2 ** -24));
});

test('makeLlamaModel tiny preset: shapes and a copied tokenizer', async () => {
  const out = join(dir, 'tiny.gguf');
  const r = await makeLlamaModel({ ...PRESETS.tiny, out, seed: 1 });
  assert.ok(r.fileSize < 20e6, `tiny model is ${r.fileSize} bytes`);
  const f = await readGguf(out, { readTensorData: true });
  const md = (k: string) => f.metadata.get(k)?.value;
  assert.is(md('general.architecture'), 'llama');
  assert.is(md('general.file_type'), 0);
  assert.equal([md('llama.block_count'), md('llama.embedding_length'), md('llama.feed_forward_length')], [2, 64, 128]);
  assert.equal([md('llama.attention.head_count'), md('llama.attention.head_count_kv'), md('llama.rope.dimension_count')], [4, 2, 16]);
  assert.is(md('llama.context_length'), 2048);
  assert.is(md('llama.vocab_size'), 32000);
  const shape = Object.fromEntries(f.tensors.map((t) => [t.name, t.dims]));
  assert.equal(shape['token_embd.weight'], [64, 32000]);
  assert.equal(shape['output.weight'], [64, 32000]);
  assert.equal(shape['output_norm.weight'], [64]);
  assert.equal(shape['blk.1.attn_k.weight'], [64, 32]);
  assert.equal(shape['blk.1.ffn_down.weight'], [128, 64]);
  assert.is(f.tensors.length, 3 + 2 * 9);
  assert.ok(f.tensors.every((t) => t.type === GgmlType.F32));
  assert.ok(dequantize(GgmlType.F32, f.tensors.find((t) => t.name === 'blk.0.attn_norm.weight')!.data!).every((x) => x === 1));

  const vocab = await readGguf(DEFAULT_VOCAB);
  const tok = (m: typeof f.metadata) => [...m].filter(([k]) => k.startsWith('tokenizer.'));
  const mine = tok(f.metadata), theirs = tok(vocab.metadata);
  assert.equal(mine.map(([k]) => k), theirs.map(([k]) => k));
  for (let i = 0; i < theirs.length; i++) {
    const [key, a] = mine[i], [, b] = theirs[i];
    assert.is(a.type, b.type, key);
    if (a.type === T.ARRAY) {
      assert.is((a.value as GgufArray).itemType, (b.value as GgufArray).itemType, key);
      assert.equal(Array.from((a.value as GgufArray).items), Array.from((b.value as GgufArray).items), key);
    } else assert.is(a.value, b.value, key);
  }
});

test('makeLlamaModel validates its options', async () => {
  const out = join(dir, 'bad.gguf');
  const base = { ...PRESETS.tiny, out };
  const rejects = async (o: Parameters<typeof makeLlamaModel>[0], msg: RegExp) => {
    try { await makeLlamaModel(o); } catch (e) { assert.match((e as Error).message, msg); return; }
    assert.unreachable(`expected ${msg}`);
  };
  await rejects({ ...base, embd: 48, heads: 4, type: 'Q4_0' }, /embd \(48\) must be a multiple of 32 for Q4_0/);
  await rejects({ ...base, ff: 100, type: 'Q8_0' }, /ff \(100\) must be a multiple of 32 for Q8_0/);
  await rejects({ ...base, heads: 3 }, /embd \(64\) must be divisible by heads \(3\)/);
  await rejects({ ...base, kvHeads: 3 }, /heads \(4\) must be divisible by kvHeads \(3\)/);
  assert.not.ok(existsSync(out));
});

test.run();
