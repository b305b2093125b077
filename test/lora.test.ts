// LoRA adapters: applying one changes greedy output, a scale of 0 or removing it
// restores the base output exactly, all without reloading the model; adapters
// for another architecture or shape, or another model (even one of the same
// shape, by the base model their metadata records), are refused; one that names
// no base loads with a warning.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeLoraAdapter } from '../scripts/make-lora.js';
import { GgufValueType } from '../src/gguf/format.js';
import { loadModel, type Context, type Model } from '../src/index.js';
import { copyModel, scaleOutputNorm } from './fixtures/model-copy.js';
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

test('an adapter made for another model of the same shape is refused: its metadata names its base', async () => {
  const reweighted = await copyModel(storiesModel, join(dir, 'reweighted.gguf'), (f) => scaleOutputNorm(f));
  const retokenized = await copyModel(storiesModel, join(dir, 'retokenized.gguf'), (f) => {
    const tokens = f.metadata.get('tokenizer.ggml.tokens')!.value as unknown as { items: string[] };
    tokens.items[300] = `${tokens.items[300]}x`;
  });
  const forReweighted = (await makeLoraAdapter({ model: reweighted, out: join(dir, 'for-reweighted.gguf') })).path;
  const forRetokenized = (await makeLoraAdapter({ model: retokenized, out: join(dir, 'for-retokenized.gguf') })).path;
  // Control: llama.cpp itself takes it (the shapes match), and so does the model it was made for.
  const own = await within(loadModel(reweighted));
  try {
    await within(own.loadLora(forReweighted));
  } finally {
    await own.dispose();
  }
  const e1 = await rejection(model.loadLora(forReweighted));
  assert.is(e1.code, 'INVALID_ADAPTER');
  assert.is(e1.message, `the LoRA adapter ${forReweighted} does not fit this model: it was made for another model ("llama") of the same shape: that model's weights differ from this one's`);
  const e2 = await rejection(model.loadLora(forRetokenized));
  assert.is(e2.code, 'INVALID_ADAPTER');
  assert.is(e2.message, `the LoRA adapter ${forRetokenized} does not fit this model: it was made for another model ("llama"): that model's tensors or vocabulary differ from this one's`);
});

test('an adapter that names no base, or another base by name only, loads with a warning', async () => {
  const warnings: Array<{ name: string; code?: string; message: string }> = [];
  const onWarning = (w: Error & { code?: string }) => warnings.push({ name: w.name, code: w.code, message: w.message });
  process.on('warning', onWarning);
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  try {
    const bare = (await makeLoraAdapter({ model: storiesModel, out: join(dir, 'bare.gguf'), recordBase: false })).path;
    const named = (name: string, file: string) => copyModel(bare, join(dir, file), (f) => {
      f.metadata.set('general.base_model.count', { type: GgufValueType.UINT32, value: 1 });
      f.metadata.set('general.base_model.0.name', { type: GgufValueType.STRING, value: name });
    });
    const elsewhere = await named('TinyLlama 1.1B', 'elsewhere.gguf');
    const same = await named('LLaMA', 'same-name.gguf');

    await (await within(model.loadLora(good))).dispose();
    await settle();
    assert.equal(warnings, [], 'an adapter that records this model as its base loads silently');
    await (await within(model.loadLora(bare))).dispose();
    await (await within(model.loadLora(elsewhere))).dispose();
    await (await within(model.loadLora(same))).dispose();
    await settle();
    assert.equal(warnings, [
      { name: 'UnderstudyWarning', code: 'UNDERSTUDY_LORA_BASE_UNCHECKED', message: `the LoRA adapter ${bare} was loaded unchecked: it does not say which model it was made for (no general.base_model.* metadata), so it cannot be checked against this model` },
      { name: 'UnderstudyWarning', code: 'UNDERSTUDY_LORA_BASE_UNCHECKED', message: `the LoRA adapter ${elsewhere} was loaded unchecked: it was made for "TinyLlama 1.1B", and this model is "llama"` },
    ]);
  } finally {
    process.off('warning', onWarning);
  }
});

test('a disposed adapter is refused', async () => {
  const adapter = await within(model.loadLora(good));
  adapter.dispose();
  assert.is((await rejection(ctx.setLora(adapter))).code, 'DISPOSED');
});

test.run();
