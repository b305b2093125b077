// Awaitable disposal: dispose() on models, contexts and adapters resolves once
// their native memory is released and their threads have ended; `using` and
// `await using` work; a createContext or loadLora that races model.dispose()
// rejects with DISPOSED and frees what it made; Promise-returning methods
// reject rather than throw.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeLoraAdapter } from '../scripts/make-lora.js';
import { loadModel, type LoraAdapter, type Model } from '../src/index.js';
import { binding } from '../src/llama/binding.js';
import { rejection, storiesModel, within } from './helpers.js';

const threads = () => readdirSync('/proc/self/task').length;
const live = () => binding().testing.liveHandles();
const dir = mkdtempSync(join(tmpdir(), 'understudy-lifecycle-'));
let adapterPath: string;

test.before(async () => {
  adapterPath = (await makeLoraAdapter({ model: storiesModel, out: join(dir, 'a.gguf'), seed: 3 })).path;
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Fails the test unless every native model, context and adapter has been freed. */
function assertNothingLive(): void {
  assert.equal(live(), { models: 0, contexts: 0, adapters: 0, trainers: 0 });
}

test('await context.dispose(): its threads have ended and its memory is freed', async () => {
  const model = await within(loadModel(storiesModel));
  const before = threads();
  const ctx = await within(model.createContext({ contextSize: 64, threads: 3 }));
  await within(ctx.complete('Once upon a time', { maxTokens: 4, temperature: 0 }));
  // The scheduler thread and the CPU pool's two workers.
  assert.ok(threads() >= before + 3, `expected the context's threads to run: ${before} -> ${threads()}`);
  const disposal = ctx.dispose();
  assert.ok(ctx.disposed);
  assert.is(ctx.dispose(), disposal, 'a second dispose() returns the same promise');
  assert.is(await within(disposal), undefined);
  assert.is(threads(), before);
  assert.is(live().contexts, 0);
  await within(model.dispose());
  assertNothingLive();
});

test('dispose during a generation: the generation fails with DISPOSED, and the promise waits for the thread', async () => {
  const model = await within(loadModel(storiesModel));
  const before = threads();
  const ctx = await within(model.createContext({ contextSize: 2048, threads: 2 }));
  const generation = ctx.generate('Once upon a time', { maxTokens: 100000, temperature: 0, ignoreEos: true });
  let disposal: Promise<void> | undefined;
  const iterate = (async () => {
    for await (const chunk of generation) if (chunk && !disposal) disposal = ctx.dispose();
  })();
  const err = await rejection(iterate);
  assert.is(err.code, 'DISPOSED');
  assert.ok(disposal, 'the generation produced no text');
  await within(disposal);
  assert.is(threads(), before);
  assert.is(live().contexts, 0);
  await within(model.dispose());
  assertNothingLive();
});

test('await model.dispose(): its contexts and adapters are freed before it, without being disposed one by one', async () => {
  const model = await within(loadModel(storiesModel));
  const before = threads();
  const a = await within(model.createContext({ contextSize: 64, threads: 2 }));
  const b = await within(model.createContext({ contextSize: 64, threads: 2 }));
  const adapter = await within(model.loadLora(adapterPath));
  await within(a.setLora(adapter));
  await within(Promise.all([a.complete('Once', { maxTokens: 2 }), b.complete('Once', { maxTokens: 2 })]));
  assert.equal(live(), { models: 1, contexts: 2, adapters: 1, trainers: 0 });
  const disposal = model.dispose();
  assert.ok(a.disposed && b.disposed && adapter.disposed);
  assert.is(model.dispose(), disposal);
  await within(disposal);
  assert.is(threads(), before);
  assertNothingLive();
});

test('adapter.dispose() stops applying it in the contexts and resolves once it is freed', async () => {
  const model = await within(loadModel(storiesModel));
  const ctx = await within(model.createContext({ contextSize: 128 }));
  const greedy = { maxTokens: 16, temperature: 0 } as const;
  const base = (await within(ctx.complete('Once upon a time', greedy))).text;
  const adapter = await within(model.loadLora(adapterPath));
  await within(ctx.setLora(adapter));
  assert.is.not((await within(ctx.complete('Once upon a time', greedy))).text, base);
  await within(adapter.dispose());
  assert.is(live().adapters, 0);
  assert.is(ctx.loras.size, 0);
  assert.is((await within(ctx.complete('Once upon a time', greedy))).text, base);
  await within(model.dispose());
  assertNothingLive();
});

test('using and await using dispose models, contexts and adapters at the end of the block', async () => {
  const before = threads();
  let seen: { model?: Model; adapter?: LoraAdapter; disposed?: boolean } = {};
  {
    await using model = await within(loadModel(storiesModel));
    await using ctx = await within(model.createContext({ contextSize: 64, threads: 2 }));
    await using adapter = await within(model.loadLora(adapterPath));
    await within(ctx.complete('Once', { maxTokens: 2 }));
    seen = { model, adapter };
  }
  assert.ok(seen.model?.disposed && seen.adapter?.disposed);
  assert.is(threads(), before);
  assertNothingLive();
  {
    using model = await within(loadModel(storiesModel));
    using ctx = await within(model.createContext({ contextSize: 64 }));
    seen = { model, disposed: ctx.disposed };
  }
  assert.ok(seen.model?.disposed);
  assert.is(seen.disposed, false);
  // Plain `using` does not wait: the memory goes shortly after.
  await within(seen.model!.dispose());
  assertNothingLive();
});

test('createContext racing model.dispose(): DISPOSED, and the context it made is freed', async () => {
  const model = await within(loadModel(storiesModel));
  const pending = model.createContext({ contextSize: 64 });
  const disposal = model.dispose();
  const err = await rejection(pending);
  assert.is(err.code, 'DISPOSED');
  assert.is(err.message, 'the model was disposed while the context was being created');
  await within(disposal);
  assertNothingLive();
});

test('loadLora racing model.dispose(): DISPOSED, and the adapter it loaded is freed', async () => {
  const model = await within(loadModel(storiesModel));
  // Dispose as soon as the native load has started (loadLora checks the file first).
  const native = model._native();
  const load = native.loadLora.bind(native);
  let disposal: Promise<void> | undefined;
  Object.defineProperty(native, 'loadLora', {
    value: (path: string) => {
      const started = load(path);
      disposal = model.dispose();
      return started;
    },
  });
  const err = await rejection(model.loadLora(adapterPath));
  assert.is(err.code, 'DISPOSED');
  assert.is(err.message, 'the model was disposed while the LoRA adapter was being loaded');
  assert.ok(disposal);
  await within(disposal);
  assertNothingLive();
});

test('promise-returning methods reject, and never throw, on bad arguments', async () => {
  const model = await within(loadModel(storiesModel));
  const ctx = await within(model.createContext({ contextSize: 64 }));
  const calls: Array<[string, () => Promise<unknown>, string]> = [
    ['setLora', () => ctx.setLora(42 as unknown as LoraAdapter), 'Expected LoraAdapter for adapter but received 42 of type number'],
    ['removeLora', () => ctx.removeLora('x' as unknown as LoraAdapter), 'Expected LoraAdapter for adapter but received "x" of type string'],
    ['loadLora', () => model.loadLora(7 as unknown as string), 'Expected non-empty string for path but received 7 of type number'],
    ['createContext', () => model.createContext(5 as unknown as object), 'Expected object for options but received 5 of type number'],
    ['loadModel', () => loadModel(null as unknown as string), 'Expected non-empty string for path but received null'],
  ];
  for (const [name, call, message] of calls) {
    let promise: Promise<unknown> | undefined;
    try {
      promise = call();
    } catch (err) {
      assert.unreachable(`${name} threw synchronously: ${(err as Error).message}`);
    }
    const err = await rejection(promise!);
    assert.is(err.code, 'INVALID_ARGUMENT', name);
    assert.is(err.message, message, name);
  }
  const adapter = await within(model.loadLora(adapterPath));
  await within(adapter.dispose());
  const scale = await rejection(ctx.setLora(adapter, Number.NaN));
  assert.is(scale.code, 'INVALID_ARGUMENT');
  const disposedAdapter = await rejection(ctx.setLora(adapter));
  assert.is(disposedAdapter.code, 'DISPOSED');
  assert.is(disposedAdapter.message, 'the LoRA adapter has been disposed');
  await within(ctx.dispose());
  const afterDispose = await rejection(ctx.setLora(adapter));
  assert.is(afterDispose.code, 'DISPOSED');
  await within(model.dispose());
  const disposedModel = await rejection(model.loadLora(adapterPath));
  assert.is(disposedModel.code, 'DISPOSED');
  assert.is(disposedModel.message, 'the model has been disposed');
  assertNothingLive();
});

test.run();
