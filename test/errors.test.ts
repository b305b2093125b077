// Bad input gets a clear error with a stable code, and the process survives:
// missing and broken model files, wrong argument types and values, prompts too
// long for the context, calls after dispose.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, UnderstudyError, type Context, type Model } from '../src/index.js';
import { rejection, storiesModel, thrown, within } from './helpers.js';

const dir = join(tmpdir(), `understudy-errors-${process.pid}`);
mkdirSync(dir, { recursive: true });
let model: Model;
let ctx: Context;

test.before(async () => {
  model = await within(loadModel(storiesModel));
  ctx = await within(model.createContext({ contextSize: 64 }));
});
test.after(() => model?.dispose());

test('a missing file: MODEL_NOT_FOUND', async () => {
  const err = await rejection(loadModel(join(dir, 'nope.gguf')));
  assert.instance(err, UnderstudyError);
  assert.is(err.code, 'MODEL_NOT_FOUND');
  assert.is(err.message, `model file not found: ${join(dir, 'nope.gguf')}`);
});

test('a directory: MODEL_NOT_FOUND', async () => {
  const err = await rejection(loadModel(dir));
  assert.is(err.code, 'MODEL_NOT_FOUND');
  assert.match(err.message, /model path is not a file/);
});

test('a file that is not GGUF: INVALID_MODEL_FILE', async () => {
  const path = join(dir, 'notes.gguf');
  writeFileSync(path, 'just some text, not a model\n');
  const err = await rejection(loadModel(path));
  assert.is(err.code, 'INVALID_MODEL_FILE');
  assert.match(err.message, /not a GGUF model file: .*notes\.gguf \(it starts with "just some text, ", expected "GGUF"\)/);
});

test('an empty file: INVALID_MODEL_FILE', async () => {
  const path = join(dir, 'empty.gguf');
  writeFileSync(path, '');
  const err = await rejection(loadModel(path));
  assert.is(err.code, 'INVALID_MODEL_FILE');
});

for (const fraction of [0.001, 0.5, 0.99]) {
  test(`a GGUF cut off at ${fraction * 100}%: INVALID_MODEL_FILE`, async () => {
    const bytes = readFileSync(storiesModel);
    const path = join(dir, `cut-${fraction}.gguf`);
    writeFileSync(path, bytes.subarray(0, Math.floor(bytes.length * fraction)));
    const err = await rejection(loadModel(path));
    assert.is(err.code, 'INVALID_MODEL_FILE');
    assert.match(err.message, /^llama\.cpp could not load .*cut-[\d.]+\.gguf: .+/);
  });
}

test('a GGUF header with garbage after the magic: INVALID_MODEL_FILE', async () => {
  const bytes = Buffer.from(readFileSync(storiesModel));
  for (let i = 8; i < 64; i++) bytes[i] = 0xff;
  const path = join(dir, 'garbage.gguf');
  writeFileSync(path, bytes);
  const err = await rejection(loadModel(path));
  assert.is(err.code, 'INVALID_MODEL_FILE');
});

test('wrong argument types and values: INVALID_ARGUMENT with the value named', async () => {
  // Synchronous functions throw; generate() returns its Generation, whose result rejects.
  const cases: Array<[() => unknown, RegExp]> = [
    [() => model.tokenize(42 as unknown as string), /^Expected string for text but received 42 of type number$/],
    [() => model.tokenize('x', 'yes' as never), /^Expected object for options but received "yes" of type string$/],
    [() => model.detokenize([1, -5]), /^Expected array of token ids for tokens\[1\] but received -5 of type number$/],
    [() => model.detokenize([1, 99999]), /token 99999 at index 1 is outside the vocabulary \(0\.\.511\)/],
    [() => model.tokenPiece(1.5), /^Expected non-negative integer for token but received 1.5 of type number$/],
    [() => ctx.generate('x', { maxTokens: 0 }).result, /^Expected integer between 1 and 2147483647 for maxTokens but received 0 of type number$/],
    [() => ctx.generate('x', { temperature: -1 }).result, /^Expected number between 0 and 100 for temperature but received -1 of type number$/],
    [() => ctx.generate('x', { topP: Number.NaN }).result, /^Expected number between 0 and 1 for topP but received NaN of type number$/],
    [() => ctx.generate('x', { stop: [''] }).result, /^Expected non-empty string or array of non-empty strings for stop/],
    [() => ctx.generate('x', { signal: {} as AbortSignal }).result, /^Expected AbortSignal for signal but received an object of type object$/],
    [() => ctx.generate([1, 100000]).result, /^prompt token 100000 at index 1 is outside the vocabulary \(0\.\.511\)$/],
    [() => ctx.generate([]).result, /the prompt is empty/],
  ];
  for (const [call, message] of cases) {
    let result: unknown;
    const err = await rejection((async () => {
      result = call();
    })().then(() => result));
    assert.is(err.code, 'INVALID_ARGUMENT', err.message);
    assert.match(err.message, message);
  }
  const bad = await rejection(loadModel(storiesModel, { gpuLayers: -2 }));
  assert.is(bad.code, 'INVALID_ARGUMENT');
  assert.is(bad.message, 'Expected non-negative integer for gpuLayers but received -2 of type number');
  const badCtx = await rejection(model.createContext({ contextSize: 0 }));
  assert.is(badCtx.message, 'Expected integer between 1 and 16777216 for contextSize but received 0 of type number');
  const noPath = await rejection(loadModel(undefined as unknown as string));
  assert.is(noPath.message, 'Expected non-empty string for path but received undefined of type undefined');
});

test('a prompt longer than the context: CONTEXT_OVERFLOW', async () => {
  // llama.cpp rounds the context size up (to 256 here): the message gives the real one.
  const long = 'Once upon a time there was a dog. '.repeat(100);
  const n = model.tokenize(long).length;
  assert.ok(n > ctx.size);
  const err = await rejection(ctx.generate(long).result);
  assert.is(err.code, 'CONTEXT_OVERFLOW');
  assert.is(err.message, `the prompt has ${n} tokens but the context holds ${ctx.size}: shorten the prompt or create the context with a larger contextSize`);
});

test('native classes cannot be constructed from JS', async () => {
  const { binding } = await import('../src/llama/binding.js');
  const b = binding() as unknown as { Model: new () => unknown; Context: new () => unknown };
  assert.match(thrown(() => new b.Model()).message, /Model cannot be constructed directly/);
  assert.match(thrown(() => new b.Context()).message, /Context cannot be constructed directly/);
});

test('calls after dispose: DISPOSED', async () => {
  const m = await within(loadModel(storiesModel));
  const c = await within(m.createContext({ contextSize: 64 }));
  c.dispose();
  assert.is((await rejection(c.generate('x').result)).code, 'DISPOSED');
  assert.is(thrown(() => c.info()).message, 'the context has been disposed');
  m.dispose();
  assert.is((await rejection(m.createContext())).code, 'DISPOSED');
  assert.is(thrown(() => m.tokenize('x')).message, 'the model has been disposed');
});

test('dispose during a generation: DISPOSED, and the process carries on', async () => {
  const m = await within(loadModel(storiesModel));
  const c = await within(m.createContext({ contextSize: 2048 }));
  const g = c.generate('Once upon a time', { maxTokens: 100000, temperature: 0, ignoreEos: true });
  const iterate = (async () => {
    for await (const chunk of g) if (chunk) c.dispose();
  })();
  assert.is((await rejection(iterate)).code, 'DISPOSED');
  m.dispose();
});

test('a copy of the model in another path still loads (control for the cases above)', async () => {
  const path = join(dir, 'copy.gguf');
  copyFileSync(storiesModel, path);
  const m = await within(loadModel(path));
  assert.is(m.info.layers, 5);
  m.dispose();
});

test.run();
