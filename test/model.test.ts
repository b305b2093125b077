// Loading: metadata, progress, abort, vocab-only, dispose, tokenizer round trips.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, systemInfo } from '../src/index.js';
import { rejection, storiesModel, thrown, tinyModel, within } from './helpers.js';

test('info describes stories260K as llama.cpp reads it', async () => {
  const model = await within(loadModel(storiesModel));
  try {
    const info = model.info;
    assert.is(info.architecture, 'llama');
    assert.is(info.layers, 5);
    assert.is(info.embeddingSize, 64);
    assert.is(info.heads, 8);
    assert.is(info.headsKv, 4);
    assert.is(info.trainContextSize, 2048);
    assert.is(info.vocab.size, 512);
    assert.is(info.vocab.type, 'spm');
    assert.is(info.vocab.special.bos, 1);
    assert.is(info.vocab.special.eos, 2);
    assert.is(info.chatTemplate, null);
    assert.is(info.fileSize, 1_185_376);
    assert.ok(info.parameters! > 200_000 && info.parameters! < 400_000, String(info.parameters));
    assert.is(info.metadata['general.architecture'], 'llama');
    assert.is(info.metadata['llama.block_count'], '5');
    assert.is(info.gpuLayers, systemInfo().supportsGpuOffload ? -1 : 0);
  } finally {
    model.dispose();
  }
});

test('progress is reported and reaches 1', async () => {
  const seen: number[] = [];
  const model = await within(loadModel(storiesModel, { onProgress: (p) => seen.push(p) }));
  model.dispose();
  assert.ok(seen.length >= 1);
  assert.is(seen.at(-1), 1);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1], 'progress went backwards');
});

test('an abort during the load rejects with ABORTED', async () => {
  const path = await tinyModel();
  const controller = new AbortController();
  const err = await rejection(loadModel(path, {
    mmap: false,
    onProgress: () => controller.abort(),
    signal: controller.signal,
  }));
  assert.is(err.code, 'ABORTED');
  assert.match(err.message, /model load was aborted/);
});

test('an already aborted signal rejects before loading', async () => {
  const err = await rejection(loadModel(storiesModel, { signal: AbortSignal.abort() }));
  assert.is(err.code, 'ABORTED');
});

test('vocab-only loads tokenize like a full load and cannot generate', async () => {
  const full = await within(loadModel(storiesModel));
  const vocab = await within(loadModel(storiesModel, { vocabOnly: true }));
  try {
    const text = 'Once upon a time, a cat sat.';
    assert.equal(vocab.tokenize(text), full.tokenize(text));
    assert.is(vocab.info.layers, null);
    const err = await rejection(vocab.createContext());
    assert.is(err.code, 'INVALID_ARGUMENT');
    assert.match(err.message, /vocabOnly/);
  } finally {
    full.dispose();
    vocab.dispose();
  }
});

test('tokenize and detokenize round trip, with and without special tokens', async () => {
  const model = await within(loadModel(storiesModel, { vocabOnly: true }));
  try {
    const text = 'The quick brown fox jumps over the lazy dog.';
    const ids = model.tokenize(text);
    assert.is(ids[0], 1, 'BOS first');
    assert.is(model.tokenize(text, { addSpecial: false })[0] === 1, false);
    // llama.cpp's rule for SentencePiece: the space the tokenizer put in front is
    // dropped again only when there is no BOS (with BOS it stays, as in llama.cpp).
    assert.is(model.detokenize(model.tokenize(text, { addSpecial: false })), text);
    assert.is(model.detokenize(ids, { removeSpecial: true }), ' ' + text);
    assert.is(model.detokenize(ids, { unparseSpecial: true }), '<s> ' + text);
    // A sparse array with a huge length fails at its first hole, before any allocation.
    const sparse: number[] = [];
    sparse.length = 2 ** 32 - 1;
    sparse[0] = 1;
    const err = thrown(() => model.detokenize(sparse));
    assert.is(err.code, 'INVALID_ARGUMENT');
    assert.is(err.message, 'Expected array of token ids for tokens[1] but received undefined of type undefined');
    // "<s>" is text unless special parsing is asked for.
    assert.not.ok(model.tokenize('<s>hi', { addSpecial: false }).includes(1));
    assert.ok(model.tokenize('<s>hi', { addSpecial: false, parseSpecial: true }).includes(1));
    assert.is(Buffer.from(model.tokenPiece(1, { special: true })).toString(), '<s>');
    assert.is(Buffer.from(model.tokenPiece(1)).toString(), '');
  } finally {
    model.dispose();
  }
});

test('a generated model with a real 32000-token vocabulary loads and generates', async () => {
  const model = await within(loadModel(await tinyModel()));
  try {
    assert.is(model.info.vocab.size, 32000);
    assert.is(model.info.layers, 2);
    const ctx = await within(model.createContext({ contextSize: 128 }));
    const r = await within(ctx.complete('Hello world', { maxTokens: 8, temperature: 0, ignoreEos: true }));
    assert.is(r.usage.completionTokens, 8);
    assert.is(r.stopReason, 'maxTokens');
  } finally {
    model.dispose();
  }
});

test('dispose frees the model and its contexts; later calls fail with DISPOSED', async () => {
  const model = await within(loadModel(storiesModel));
  const ctx = await within(model.createContext({ contextSize: 64 }));
  model.dispose();
  assert.ok(model.disposed);
  assert.ok(ctx.disposed);
  model.dispose(); // twice is fine
  for (const call of [() => model.tokenize('x'), () => model.detokenize([1]), () => ctx.complete('x')]) {
    try {
      await call();
      assert.unreachable('expected DISPOSED');
    } catch (err) {
      assert.is((err as { code?: string }).code, 'DISPOSED');
    }
  }
});

test("an exception from the caller's own getter reaches them unchanged, not as NATIVE_ERROR", async () => {
  const model = await within(loadModel(storiesModel, { vocabOnly: true }));
  const mine = new Error('my getter');
  const tokens = [1, 2];
  Object.defineProperty(tokens, 1, { get: () => { throw mine; } });
  const options = { get special(): boolean { throw mine; } };
  const seen: unknown[] = [];
  for (const call of [() => model.detokenize(tokens), () => model.tokenPiece(1, options)]) {
    try {
      call();
    } catch (err) {
      seen.push(err);
    }
  }
  assert.equal(seen.map((e) => e === mine), [true, true]);
  model.dispose();
});

test.run();
