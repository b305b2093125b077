// The addon works in worker threads: each has its own addon state, loads and
// generates on its own, and a worker that ends (even with a model still loaded,
// or right after an unawaited dispose()) leaves the process healthy and frees
// every native handle it made.
import { Worker } from 'node:worker_threads';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../src/index.js';
import { binding } from '../src/llama/binding.js';
import { storiesModel, within } from './helpers.js';

const WORKER = `
  import { workerData, parentPort } from 'node:worker_threads';
  const { loadModel } = await import(workerData.entry);
  const model = await loadModel(workerData.model);
  const ctx = await model.createContext({ contextSize: 128, threads: 1 });
  const r = await ctx.complete('Once upon a time', { maxTokens: 16, temperature: 0 });
  if (workerData.dispose) model.dispose();
  parentPort.postMessage(r.text);
`;

function runWorker(dispose: boolean): Promise<string> {
  // The compiled package, as a user's worker would import it (the test runner
  // compiles it first).
  const entry = new URL('../dist/index.js', import.meta.url).href;
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(WORKER)}`), {
    workerData: { entry, model: storiesModel, dispose },
  });
  return new Promise((resolve, reject) => {
    let text: string | undefined;
    worker.on('message', (m) => (text = m));
    worker.on('error', reject);
    worker.on('exit', (code) => (code === 0 && text !== undefined ? resolve(text) : reject(new Error(`worker exited with ${code}`))));
  });
}

test('two workers at once give the same text as the main thread', async () => {
  const model = await within(loadModel(storiesModel));
  const ctx = await within(model.createContext({ contextSize: 128, threads: 1 }));
  const expected = (await within(ctx.complete('Once upon a time', { maxTokens: 16, temperature: 0 }))).text;
  model.dispose();
  const texts = await within(Promise.all([runWorker(true), runWorker(false)]), 120_000);
  assert.equal(texts, [expected, expected]);
});

test('the main thread still works after workers have come and gone', async () => {
  await within(runWorker(false), 120_000);
  const model = await within(loadModel(storiesModel));
  assert.is(model.tokenize('hi').length > 0, true);
  model.dispose();
});

// The worker ends in the middle of a long streamed generation: the generation
// keeps its event loop alive, so only terminate() (exit code 1) or exit() ends
// it, and the native side is finalized with a request still in flight.
const ENDING_WORKER = `
  import { workerData, parentPort } from 'node:worker_threads';
  const { loadModel } = await import(workerData.entry);
  const model = await loadModel(workerData.model);
  const ctx = await model.createContext({ contextSize: 4096, threads: 2 });
  const generation = ctx.generate('Once upon a time', { maxTokens: 4000, temperature: 1 });
  generation.result.catch(() => {});
  let told = false;
  for await (const _ of generation) {
    if (workerData.how === 'dispose-and-exit') {
      ctx.dispose();
      model.dispose();
      process.exit(0);
    }
    if (!told) parentPort.postMessage('ready');
    told = true;
  }
  parentPort.postMessage('finished before it was terminated');
`;

function endWorker(how: 'dispose-and-exit' | 'terminate'): Promise<number> {
  const entry = new URL('../dist/index.js', import.meta.url).href;
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(ENDING_WORKER)}`), {
    workerData: { entry, model: storiesModel, how },
  });
  worker.on('message', (m) => (m === 'ready' ? void worker.terminate() : worker.emit('error', new Error(m))));
  return new Promise((resolve, reject) => {
    worker.on('error', reject);
    worker.on('exit', resolve);
  });
}

test('a worker that exits right after dispose(), or is terminated with a context alive, frees what it made', async () => {
  binding();
  for (const how of ['dispose-and-exit', 'terminate'] as const) {
    const code = await within(endWorker(how), 120_000);
    assert.is(code, how === 'terminate' ? 1 : 0, how);
    assert.equal(binding().testing.liveHandles(), { models: 0, contexts: 0, adapters: 0, trainers: 0 }, how);
  }
});

test.run();
