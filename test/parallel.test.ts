// Parallel sequences with continuous batching: greedy generations that share a
// context give exactly the text each gives alone; a newcomer joins while others
// run; an abort ends one sequence only; past the queue bound, QUEUE_FULL.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, type Model } from '../src/index.js';
import { rejection, storiesModel, within } from './helpers.js';

const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Tom', 'One day, a bird', 'The sun was', 'Sam had a red ball', 'Mom said', 'In the park'];
const greedy = { maxTokens: 48, temperature: 0 } as const;
let model: Model;
let alone: string[];

test.before(async () => {
  model = await within(loadModel(storiesModel));
  const solo = await within(model.createContext({ contextSize: 256 }));
  alone = [];
  for (const p of PROMPTS) {
    solo.clearCache();
    alone.push((await within(solo.complete(p, greedy))).text);
  }
  solo.dispose();
});
test.after(() => model?.dispose());

test('8 greedy generations at once on 4 sequences give exactly the text each gives alone', async () => {
  const ctx = await within(model.createContext({ contextSize: 1024, sequences: 4 }));
  assert.is(ctx.info().sequences, 4);
  const results = await within(Promise.all(PROMPTS.map((p) => ctx.complete(p, greedy))));
  assert.equal(results.map((r) => r.text), alone);
  assert.ok(results.some((r) => r.timings.queueMs > 0), 'with 8 calls on 4 sequences, some waited');
  ctx.dispose();
});

test('streamed in parallel: each stream joins to its own text', async () => {
  const ctx = await within(model.createContext({ contextSize: 1024, sequences: 4 }));
  const collected = await within(Promise.all(PROMPTS.slice(0, 4).map(async (p) => {
    const g = ctx.generate(p, greedy);
    let text = '';
    for await (const chunk of g) text += chunk;
    return text;
  })));
  assert.equal(collected, alone.slice(0, 4));
  ctx.dispose();
});

test('a newcomer joins running generations and changes nothing for them', async () => {
  const ctx = await within(model.createContext({ contextSize: 1024, sequences: 2 }));
  const long = ctx.generate(PROMPTS[0], { maxTokens: 200, temperature: 0, ignoreEos: true });
  let late: Promise<{ text: string }> | undefined;
  let text = '';
  for await (const chunk of long) {
    text += chunk;
    late ??= ctx.complete(PROMPTS[1], greedy); // joins after the first one has started
  }
  const solo = await within(model.createContext({ contextSize: 512 }));
  const reference = await within(solo.complete(PROMPTS[0], { maxTokens: 200, temperature: 0, ignoreEos: true }));
  solo.dispose();
  assert.is(text, reference.text);
  assert.is((await within(late!)).text, alone[1]);
  ctx.dispose();
});

test('an abort ends one sequence only', async () => {
  const ctx = await within(model.createContext({ contextSize: 1024, sequences: 3 }));
  const controller = new AbortController();
  const doomed = ctx.generate(PROMPTS[0], { maxTokens: 5000, temperature: 0, ignoreEos: true, signal: controller.signal });
  const others = [ctx.complete(PROMPTS[1], greedy), ctx.complete(PROMPTS[2], greedy)];
  // Aborted once it is surely running (its first piece has come), not after a guess at the time that takes.
  await within(doomed[Symbol.asyncIterator]().next());
  controller.abort();
  assert.is((await rejection(doomed.result)).code, 'ABORTED');
  assert.equal((await within(Promise.all(others))).map((r) => r.text), [alone[1], alone[2]]);
  ctx.dispose();
});

test('past sequences + maxQueued: QUEUE_FULL, and the queued ones still finish', async () => {
  const ctx = await within(model.createContext({ contextSize: 256, sequences: 1, maxQueued: 2 }));
  const ok = [0, 1, 2].map((i) => ctx.complete(PROMPTS[i], greedy));
  const err = await rejection(ctx.complete(PROMPTS[3], greedy));
  assert.is(err.code, 'QUEUE_FULL');
  assert.match(err.message, /^3 generations are running or waiting on this context \(1 sequences \+ maxQueued 2\)/);
  assert.equal((await within(Promise.all(ok))).map((r) => r.text), alone.slice(0, 3));
  await within(ctx.complete(PROMPTS[3], greedy)); // room again
  ctx.dispose();
});

test('dispose fails every running and waiting generation with DISPOSED', async () => {
  const ctx = await within(model.createContext({ contextSize: 1024, sequences: 2 }));
  const running = ctx.generate(PROMPTS[0], { maxTokens: 100000, temperature: 0, ignoreEos: true });
  const calls = [running.result, ...PROMPTS.slice(1, 4).map((p) => ctx.complete(p, { maxTokens: 100000, temperature: 0, ignoreEos: true }))];
  // Disposed while generations surely run: the first has delivered a piece.
  await within(running[Symbol.asyncIterator]().next());
  ctx.dispose();
  for (const call of calls) assert.is((await rejection(call)).code, 'DISPOSED');
});

test('each sequence keeps its own cached prompt', async () => {
  const ctx = await within(model.createContext({ contextSize: 1024, sequences: 2 }));
  await within(Promise.all([ctx.complete(PROMPTS[0], greedy), ctx.complete(PROMPTS[1], greedy)]));
  const [a, b] = await within(Promise.all([ctx.complete(PROMPTS[1], greedy), ctx.complete(PROMPTS[0], greedy)]));
  assert.ok(a.reusedPromptTokens > 0 && b.reusedPromptTokens > 0, `reused ${a.reusedPromptTokens} and ${b.reusedPromptTokens}`);
  assert.equal([a.text, b.text], [alone[1], alone[0]]);
  ctx.dispose();
});

test.run();
