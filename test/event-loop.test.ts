// The event loop keeps ticking while the native side works: during a model load,
// during prompt processing and during generation. A 1 ms interval counts ticks
// and records the longest gap; a blocking call would show as no ticks and one
// gap as long as the call. No timing thresholds on the work itself.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, type Model } from '../src/index.js';
import { tinyModel, within } from './helpers.js';

async function watchLoop<T>(work: () => Promise<T>): Promise<{ value: T; ms: number; ticks: number; maxGapMs: number }> {
  let ticks = 0;
  let last = performance.now();
  let maxGapMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
    ticks++;
  }, 1);
  const started = performance.now();
  try {
    const value = await work();
    return { value, ms: performance.now() - started, ticks, maxGapMs };
  } finally {
    clearInterval(timer);
  }
}

// Big enough that each phase takes a good while on any machine: about 260 MB.
let path: string;
let model: Model;

test.before(async () => {
  path = await tinyModel('event-loop', { layers: 4, embd: 1024, ff: 2816, heads: 16, kvHeads: 4, type: 'F32' });
});
test.after(() => model?.dispose());

function check(what: string, r: { ms: number; ticks: number; maxGapMs: number }) {
  console.log(`  ${what}: ${r.ms.toFixed(0)} ms, ${r.ticks} ticks, longest gap ${r.maxGapMs.toFixed(1)} ms`);
  // The loop ran throughout: ticks in proportion to the time taken, and no gap
  // anywhere near the length of the whole operation.
  assert.ok(r.ticks >= Math.min(20, r.ms / 20), `${what}: only ${r.ticks} ticks in ${r.ms.toFixed(0)} ms`);
  assert.ok(r.maxGapMs < Math.max(100, r.ms / 2), `${what}: the loop stalled for ${r.maxGapMs.toFixed(0)} ms of ${r.ms.toFixed(0)} ms`);
}

test('during a model load', async () => {
  const r = await watchLoop(() => within(loadModel(path, { mmap: false })));
  model = r.value;
  check('load', r);
});

test('during prompt processing', async () => {
  const ctx = await within(model.createContext({ contextSize: 2048, batchSize: 2048 }));
  const prompt = Array.from({ length: 1500 }, (_, i) => 100 + (i % 5000));
  const r = await watchLoop(() => within(ctx.complete(prompt, { maxTokens: 1, temperature: 0 }), 300_000));
  assert.is(r.value.usage.promptTokens, 1500);
  check('prompt', r);
  ctx.dispose();
});

test('during generation, streamed', async () => {
  const ctx = await within(model.createContext({ contextSize: 512 }));
  const r = await watchLoop(async () => {
    let chunks = 0;
    const g = ctx.generate([1], { maxTokens: 200, temperature: 0, ignoreEos: true });
    for await (const _ of g) chunks++;
    return chunks;
  });
  assert.ok(r.value > 1);
  check('generation', r);
  ctx.dispose();
});

test.run();
