// Embeddings: one unit-length vector per text, deterministic, the same alone or
// batched with others, a text nearer itself than an unrelated one; overlong
// input gets CONTEXT_OVERFLOW or, when asked, is truncated.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, type Context, type Model } from '../src/index.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GgufValueType } from '../src/gguf/format.js';
import { parseRaw, serializeRaw } from './fuzz/raw-gguf.js';
import { rejection, storiesModel, within } from './helpers.js';

let model: Model;
let ctx: Context;
const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i], 0);

test.before(async () => {
  model = await within(loadModel(storiesModel));
  ctx = await within(model.createContext({ embeddings: true, contextSize: 256, sequences: 4 }));
});
test.after(() => model?.dispose());

test('vectors are unit length with the model\'s width, mean-pooled when the model declares no pooling', async () => {
  const [v] = await within(ctx.embed(['The cat sat on the mat.']));
  assert.is(v.length, model.info.embeddingSize!);
  assert.ok(Math.abs(dot(v, v) - 1) < 1e-5);
  assert.is(ctx.info().pooling, 1, 'mean pooling');
});

test('deterministic, and the same alone as in a batch', async () => {
  const texts = ['The dog ran.', 'A bird sang in the tree.', 'Lily liked red apples.', 'Tom and Sam played ball.', 'The sun was warm.', 'It rained.'];
  const batched = await within(ctx.embed(texts)); // 6 texts, 4 per batch: two batches
  for (let i = 0; i < texts.length; i++) {
    const [alone] = await within(ctx.embed([texts[i]]));
    const diff = Math.max(...alone.map((x, j) => Math.abs(x - batched[i][j])));
    assert.ok(diff < 1e-4, `text ${i} differs by ${diff} between alone and batched`);
  }
});

test('a text is nearer itself and a paraphrase than an unrelated text', async () => {
  const [a, b, c] = await within(ctx.embed([
    'Once upon a time there was a little girl named Lily.',
    'Once upon a time there was a little girl called Lily.',
    'Quantum banana spaceship!!!',
  ]));
  assert.ok(dot(a, b) > dot(a, c), `paraphrase ${dot(a, b)} vs unrelated ${dot(a, c)}`);
  const [again] = await within(ctx.embed(['Once upon a time there was a little girl named Lily.']));
  assert.ok(dot(a, again) > 0.99999);
});

test('overlong input: CONTEXT_OVERFLOW, or truncated when asked', async () => {
  const long = 'The cat sat on the mat. '.repeat(100);
  const err = await rejection(ctx.embed(['short', long]));
  assert.is(err.code, 'CONTEXT_OVERFLOW');
  assert.match(err.message, /^texts\[1\] has \d+ tokens but this embedding context takes at most 256: pass \{ truncate: true \}/);
  const [v] = await within(ctx.embed([long], { truncate: true }));
  assert.ok(Math.abs(dot(v, v) - 1) < 1e-5);
});

test('embedding and generation contexts refuse each other\'s calls', async () => {
  const gen = await within(model.createContext({ contextSize: 128 }));
  try {
    const err = await rejection(gen.embed(['x']));
    assert.is(err.code, 'INVALID_ARGUMENT');
    assert.match(err.message, /not created for embeddings/);
    assert.match((await rejection(ctx.generate('x').result)).message, /created for embeddings/);
  } finally {
    gen.dispose();
  }
});

test('a model that declares pooling NONE is mean-pooled, as one that declares none', async () => {
  const raw = await parseRaw(storiesModel);
  raw.kvs.push({ key: 'llama.pooling_type', type: GgufValueType.UINT32, value: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'understudy-pooling-'));
  const path = join(dir, 'pooling-none.gguf');
  writeFileSync(path, serializeRaw(raw));
  const declared = await within(loadModel(path));
  try {
    assert.is(declared.info.metadata['llama.pooling_type'], '0');
    const embedder = await within(declared.createContext({ embeddings: true, contextSize: 256 }));
    assert.is(embedder.info().pooling, 1, 'mean pooling');
    const [a] = await within(embedder.embed(['The cat sat on the mat.']));
    const [b] = await within(ctx.embed(['The cat sat on the mat.']));
    assert.ok(Math.max(...a.map((x, i) => Math.abs(x - b[i]))) < 1e-4, 'the same vector as the model without the key');
  } finally {
    await declared.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad texts: INVALID_ARGUMENT', async () => {
  assert.is((await rejection(ctx.embed('text' as never))).message, 'Expected array of strings for texts but received "text" of type string');
  assert.is((await rejection(ctx.embed(['ok', 3 as never]))).message, 'Expected string for texts[1] but received 3 of type number');
  assert.equal(await within(ctx.embed([])), []);
});

test.run();
