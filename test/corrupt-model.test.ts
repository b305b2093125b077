// Corrupted model files never crash the process: bytes of stories260K's header
// and metadata are overwritten (deterministically), and every load either works
// or fails with INVALID_MODEL_FILE. Runs in this process on purpose: a native
// abort would kill the file, and the test runner counts that as a failure.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GgmlType, GgufValueType } from '../src/gguf/format.js';
import { loadModel } from '../src/index.js';
import { checkModelFile } from '../src/llama/model-file.js';
import { runCases } from './fuzz/child.js';
import { cloneRaw, parseRaw, relayout, serializeRaw, type RawModel, type RawTensor } from './fuzz/raw-gguf.js';
import { storiesModel, vocabDir, within } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'understudy-corrupt-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function mutations(seed: number, count: number): Buffer[] {
  const source = readFileSync(storiesModel);
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  return Array.from({ length: count }, (_, i) => {
    const buf = Buffer.from(source);
    for (let f = 0; f < 1 + Math.floor(rnd() * 4); f++) {
      const at = 4 + Math.floor(rnd() * 20_000); // the header, metadata and tensor index
      if (i % 2) buf.fill(0xff, at, at + 8); // huge counts and lengths
      else buf[at] = Math.floor(rnd() * 256);
    }
    return buf;
  });
}

test('40 corrupted headers: each loads and generates, or fails with INVALID_MODEL_FILE', async () => {
  const outcomes = { loaded: 0, refused: 0 };
  for (const [i, bytes] of mutations(11, 40).entries()) {
    const path = join(dir, `m${i}.gguf`);
    writeFileSync(path, bytes);
    try {
      const model = await within(loadModel(path));
      const ctx = await within(model.createContext({ contextSize: 64 }));
      await within(ctx.complete('Once', { maxTokens: 4, temperature: 0 }));
      model.dispose();
      outcomes.loaded++;
    } catch (err) {
      assert.is((err as { code?: string }).code, 'INVALID_MODEL_FILE', `case ${i}: ${(err as Error).message}`);
      outcomes.refused++;
    }
  }
  console.log(`  ${outcomes.loaded} loaded, ${outcomes.refused} refused`);
  assert.ok(outcomes.refused > 10, 'the corruption should break most files');
});

// Each class of corruption that made llama.cpp abort the process (checked in a
// child process: before the checks in src/gguf/*-checks.ts, each of these
// killed it) is now refused at load with INVALID_MODEL_FILE and a message that
// names the problem.
type Edit = (m: RawModel) => void;
const kv = (m: RawModel, key: string) => m.kvs.find((k) => k.key === key)!;
const setKv = (m: RawModel, key: string, type: number, value: unknown) => {
  const found = m.kvs.find((k) => k.key === key);
  if (found) Object.assign(found, { type, value });
  else m.kvs.push({ key, type, value });
};
const items = (m: RawModel, key: string) => (kv(m, key).value as { items: unknown[] }).items;
const tensor = (m: RawModel, name: string) => m.tensors.find((t) => t.name === name)!;
const everyLayer = (m: RawModel, suffix: string, edit: (t: RawTensor) => void) => {
  for (let i = 0; i < 5; i++) edit(tensor(m, `blk.${i}.${suffix}`));
};
const V = GgufValueType;

const classes: [string, Edit, string][] = [
  ['a duplicated token', (m) => { items(m, 'tokenizer.ggml.tokens')[421] = items(m, 'tokenizer.ggml.tokens')[271]; },
    'token 421 of the vocabulary repeats token 271 ("in"): every token text must be unique'],
  ['an empty token that reads as another', (m) => { const t = items(m, 'tokenizer.ggml.tokens'); t[300] = ''; t[301] = '[EMPTY_300]'; },
    'token 301 of the vocabulary repeats token 300 ("[EMPTY_300]"): every token text must be unique'],
  ['no layers', (m) => setKv(m, 'llama.block_count', V.UINT32, 0), 'llama.block_count is 0: llama.cpp supports 1 to 512 layers'],
  ['2^31 layers', (m) => setKv(m, 'llama.block_count', V.UINT32, 2 ** 31), 'llama.block_count is 2147483648: llama.cpp supports 1 to 512 layers'],
  ['a norm stored as F16', (m) => { tensor(m, 'blk.0.attn_norm.weight').type = GgmlType.F16; relayout(m); },
    'tensor "blk.0.attn_norm.weight" is stored as F16, but llama.cpp applies norm and bias weights only in F32'],
  ['a matrix stored as I32', (m) => { tensor(m, 'blk.2.ffn_up.weight').type = 26; },
    'tensor "blk.2.ffn_up.weight" is stored as I32, a type llama.cpp cannot multiply matrices in (its CPU backend has no dot product for it)'],
  ['embeddings stored as I16', (m) => { tensor(m, 'token_embd.weight').type = 25; relayout(m); },
    'tensor "token_embd.weight" is stored as I16, a type llama.cpp cannot look embeddings up in'],
  ['embeddings stored as I32', (m) => { tensor(m, 'token_embd.weight').type = 26; },
    'tensor "token_embd.weight" is stored as I32, a type llama.cpp cannot look embeddings up in'],
  ['embeddings stored as Q8_1', (m) => { tensor(m, 'token_embd.weight').type = 9; relayout(m); },
    'tensor "token_embd.weight" is stored as Q8_1, a type llama.cpp cannot look embeddings up in'],
  ['query heads not a multiple of the key/value heads', (m) => {
    setKv(m, 'llama.attention.head_count_kv', V.UINT32, 3);
    everyLayer(m, 'attn_k.weight', (t) => { t.dims = [64n, 24n]; });
    everyLayer(m, 'attn_v.weight', (t) => { t.dims = [64n, 24n]; });
    relayout(m);
  }, 'layer 0 has 8 attention heads, not a multiple of its 3 key/value heads (llama.attention.head_count, llama.attention.head_count_kv)'],
  ['keys and values of different head sizes', (m) => {
    setKv(m, 'llama.attention.key_length', V.UINT32, 16);
    setKv(m, 'llama.attention.value_length', V.UINT32, 8);
    setKv(m, 'llama.rope.dimension_count', V.UINT32, 16);
    everyLayer(m, 'attn_q.weight', (t) => { t.dims = [64n, 128n]; });
    everyLayer(m, 'attn_k.weight', (t) => { t.dims = [64n, 64n]; });
    everyLayer(m, 'attn_output.weight', (t) => { t.dims = [128n, 64n]; });
    relayout(m);
  }, 'llama.attention.key_length 16 differs from llama.attention.value_length 8, which the llama architecture does not support'],
  ['an unknown RoPE scaling type', (m) => setKv(m, 'llama.rope.scaling.type', V.STRING, 'bogus'),
    'unknown llama.rope.scaling.type "bogus" (expected one of none, linear, yarn, longrope)'],
  ['experts used without experts', (m) => setKv(m, 'llama.expert_used_count', V.UINT32, 2),
    'inconsistent experts: llama.expert_used_count 2 is more than llama.expert_count 0'],
  ['no vocabulary', (m) => setKv(m, 'tokenizer.ggml.model', V.STRING, 'none'),
    'the model has no vocabulary (tokenizer.ggml.model is "none"): Understudy needs one to turn text into tokens'],
  ['a BOS token that the vocabulary lacks', (m) => {
    for (const key of ['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type']) {
      const a = kv(m, key).value as { itemType: number; items: ArrayLike<unknown> };
      kv(m, key).value = { itemType: a.itemType, items: Array.from(a.items).slice(0, 1) };
    }
  }, 'the llama tokenizer adds a BOS token, but tokenizer.ggml.bos_token_id names none inside the 1-token vocabulary'],
  ['an SPM vocabulary without a byte token', (m) => { items(m, 'tokenizer.ggml.tokens')[3 + 0xf0] = 'QQQ'; },
    'the SPM vocabulary has no token for the byte <0xF0>, which it needs to spell text it has no token for'],
  ['a negative norm epsilon', (m) => setKv(m, 'llama.attention.layer_norm_rms_epsilon', V.FLOAT32, -1),
    'llama.attention.layer_norm_rms_epsilon is -1: a norm\'s epsilon must be 0 or more'],
  ['a NaN norm epsilon', (m) => setKv(m, 'llama.attention.layer_norm_rms_epsilon', V.FLOAT32, Number.NaN),
    'llama.attention.layer_norm_rms_epsilon is NaN: a norm\'s epsilon must be 0 or more'],
  ['an odd number of rotary dimensions', (m) => {
    setKv(m, 'llama.attention.head_count', V.UINT32, 64);
    setKv(m, 'llama.attention.head_count_kv', V.UINT32, 64);
    setKv(m, 'llama.rope.dimension_count', V.UINT32, 1);
    everyLayer(m, 'attn_k.weight', (t) => { t.dims = [64n, 64n]; });
    everyLayer(m, 'attn_v.weight', (t) => { t.dims = [64n, 64n]; });
    relayout(m);
  }, 'llama.rope.dimension_count is 1: rotary embeddings rotate pairs of dimensions, so it must be even'],
  ['no feed-forward width, with empty tensors to match', (m) => {
    setKv(m, 'llama.feed_forward_length', V.UINT32, 0);
    everyLayer(m, 'ffn_gate.weight', (t) => { t.dims = [64n, 0n]; });
    everyLayer(m, 'ffn_up.weight', (t) => { t.dims = [64n, 0n]; });
    everyLayer(m, 'ffn_down.weight', (t) => { t.dims = [0n, 64n]; });
    relayout(m);
  }, 'tensor "blk.0.ffn_gate.weight" has shape [64, 0]: no dimension may be 0'],
  ['a very long token in a PLaMo-2 vocabulary', (m) => {
    setKv(m, 'tokenizer.ggml.model', V.STRING, 'plamo2');
    items(m, 'tokenizer.ggml.tokens')[448] = 'a'.repeat(70_000);
  }, 'the PLaMo-2 tokenizer would build more than 50000000 characters of token suffixes (token 448 is 70000 characters long)'],
  ['an unknown pooling type', (m) => setKv(m, 'llama.pooling_type', V.UINT32, 77), 'unknown llama.pooling_type 77 (llama.cpp knows 0 to 4)'],
  ['a WPM vocabulary with byte tokens', (m) => setKv(m, 'tokenizer.ggml.model', V.STRING, 'bert'),
    'token 3 is a byte token (type 6), which a WPM (bert) vocabulary cannot render'],
];

test('each class of corruption that aborted llama.cpp is refused with INVALID_MODEL_FILE', async () => {
  const raw = await parseRaw(storiesModel);
  const files = classes.map(([what, edit], i) => {
    const m = cloneRaw(raw);
    edit(m);
    const path = join(dir, `class-${i}.gguf`);
    writeFileSync(path, serializeRaw(m));
    return { what, path };
  });
  const manifest = join(dir, 'classes.json');
  writeFileSync(manifest, JSON.stringify(files));
  const results = await runCases({ worker: 'test/fuzz/files-worker.ts', args: ['--manifest', manifest], to: files.length });
  assert.is(results.length, classes.length);
  for (const [i, r] of results.entries()) {
    const [what, , message] = classes[i]!;
    assert.equal({ what, outcome: r.outcome, code: r.code, detail: r.detail },
      { what, outcome: 'coded', code: 'INVALID_MODEL_FILE', detail: `invalid model file ${files[i]!.path}: ${message}`.slice(0, 300) });
  }
});

test('more rotary dimensions than a head has are refused for any architecture', async () => {
  // llama.cpp itself refuses this for llama (n_rot must equal the head size);
  // for architectures with partial rotary embeddings, the rope kernel asserts.
  const m = cloneRaw(await parseRaw(storiesModel));
  for (const entry of m.kvs) entry.key = entry.key.replace(/^llama\./, 'phi2.');
  setKv(m, 'general.architecture', V.STRING, 'phi2');
  setKv(m, 'phi2.rope.dimension_count', V.UINT32, 16);
  const path = join(dir, 'rope.gguf');
  writeFileSync(path, serializeRaw(m));
  const err = await checkModelFile(path).then(() => undefined, (e: Error & { code?: string }) => e);
  assert.is(err?.code, 'INVALID_MODEL_FILE');
  assert.is(err?.message, `invalid model file ${path}: phi2.rope.dimension_count is 16, more than the 8 dimensions of an attention head`);
});

test('the vocabulary-only files of llama.cpp and the test model pass the checks', async () => {
  const vocabs = readdirSync(vocabDir).filter((f) => f.endsWith('.gguf')).map((f) => join(vocabDir, f));
  for (const path of [storiesModel, ...vocabs]) await checkModelFile(path);
});

test.run();
