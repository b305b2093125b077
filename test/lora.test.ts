// LoRA adapters: applying one changes greedy output, a scale of 0 or removing it
// restores the base output exactly, all without reloading the model; adapters
// for another architecture or shape, or another model, are refused.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeLoraAdapter } from '../scripts/make-lora.js';
import { loadModel, type Context, type Model } from '../src/index.js';
import { rejection, storiesModel, within } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'understudy-lora-'));
let model: Model;
let ctx: Context;
let good: string;
const greedy = { maxTokens: 24, temperature: 0 } as const;

test.before(async () => {
  good = (await makeLoraAdapter({ model: storiesModel, out: join(dir, 'good.gguf'), seed: 1 })).path;
  model = await within(loadModel(storiesModel));
  ctx = await within(model.createContext({ contextSize: 256 }));
});
test.after(() => {
  model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test('apply, rescale and remove at run time; removal restores the base output exactly', async () => {
  const base = await within(ctx.complete('Once upon a time', greedy));
  const adapter = await within(model.loadLora(good));
  assert.is(adapter.metadata['general.type'], 'adapter');
  await ctx.setLora(adapter, 1);
  const adapted = await within(ctx.complete('Once upon a time', greedy));
  assert.is.not(adapted.text, base.text, 'the adapter did not change the output');
  assert.is(ctx.loras.get(adapter), 1);
  await ctx.setLora(adapter, 0);
  assert.is((await within(ctx.complete('Once upon a time', greedy))).text, base.text, 'scale 0 is the base model');
  await ctx.setLora(adapter, 1);
  assert.is((await within(ctx.complete('Once upon a time', greedy))).text, adapted.text, 'the same scale gives the same output');
  await ctx.removeLora(adapter);
  assert.is(ctx.loras.size, 0);
  assert.is((await within(ctx.complete('Once upon a time', greedy))).text, base.text);
  adapter.dispose();
});

test('an adapter change waits for the generation in progress', async () => {
  const adapter = await within(model.loadLora(good));
  const base = ctx.complete('Once upon a time', greedy);
  const applied = ctx.setLora(adapter, 1);
  const after = ctx.complete('Once upon a time', greedy);
  const [b, , a] = await within(Promise.all([base, applied, after]));
  assert.is.not(a.text, b.text);
  await ctx.removeLora(adapter);
});

test('adapters for another architecture or shape: INVALID_ADAPTER with llama.cpp\'s reason', async () => {
  const arch = await makeLoraAdapter({ model: storiesModel, out: join(dir, 'arch.gguf'), wrongArchitecture: true });
  const shape = await makeLoraAdapter({ model: storiesModel, out: join(dir, 'shape.gguf'), wrongShape: true });
  const e1 = await rejection(model.loadLora(arch.path));
  assert.is(e1.code, 'INVALID_ADAPTER');
  assert.match(e1.message, /could not load the LoRA adapter .*arch\.gguf for this model: .*arch mismatch/);
  const e2 = await rejection(model.loadLora(shape.path));
  assert.is(e2.code, 'INVALID_ADAPTER');
  assert.match(e2.message, /incorrect shape/);
  const missing = await rejection(model.loadLora(join(dir, 'none.gguf')));
  assert.is(missing.code, 'MODEL_NOT_FOUND');
  assert.match(missing.message, /^LoRA adapter file not found: /);
});

test('an adapter loaded for another model is refused by a context', async () => {
  const other = await within(loadModel(storiesModel));
  try {
    const adapter = await within(other.loadLora(good));
    const err = await rejection(ctx.setLora(adapter));
    assert.is(err.code, 'INVALID_ADAPTER');
    assert.match(err.message, /was loaded for another model/);
  } finally {
    other.dispose();
  }
});

test('a disposed adapter is refused', async () => {
  const adapter = await within(model.loadLora(good));
  adapter.dispose();
  assert.is((await rejection(ctx.setLora(adapter))).code, 'DISPOSED');
});

test.run();
