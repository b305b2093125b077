// Streaming and completion: chunks add up to the text, sampling options behave,
// stop strings, limits, prefix reuse, queueing, abort.
import { getEventListeners } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, type Context, type Model } from '../src/index.js';
import { rejection, storiesModel, within } from './helpers.js';

let model: Model;
let ctx: Context;

test.before(async () => {
  model = await within(loadModel(storiesModel));
  ctx = await within(model.createContext({ contextSize: 512 }));
});
test.after(() => model?.dispose());

test('streamed chunks join to the completed text', async () => {
  const g = ctx.generate('Once upon a time', { maxTokens: 48, temperature: 0 });
  const chunks: string[] = [];
  for await (const chunk of g) chunks.push(chunk);
  const r = await within(g.result);
  assert.ok(chunks.length > 1, 'expected more than one chunk');
  assert.is(chunks.join(''), r.text);
  const again = await within(ctx.complete('Once upon a time', { maxTokens: 48, temperature: 0 }));
  assert.is(again.text, r.text, 'greedy output is deterministic');
});

test('result carries usage, timings and the stop reason', async () => {
  const r = await within(ctx.complete('Once upon a time', { maxTokens: 10, temperature: 0, ignoreEos: true }));
  assert.is(r.stopReason, 'maxTokens');
  assert.is(r.usage.completionTokens, 10);
  assert.is(r.tokens.length, 10);
  assert.is(r.usage.promptTokens, model.tokenize('Once upon a time').length);
  assert.is(r.usage.totalTokens, r.usage.promptTokens + 10);
  assert.ok(r.timings.totalMs >= r.timings.generationMs);
  assert.ok(r.timings.firstTokenMs >= r.timings.promptMs);
  assert.ok(r.timings.generationTokensPerSecond > 0);
});

test('the same seed gives the same sampled text; another seed, other text', async () => {
  const opts = { maxTokens: 40, temperature: 1.2, topK: 0, topP: 1, minP: 0 };
  const a = await within(ctx.complete('The cat', { ...opts, seed: 1 }));
  const b = await within(ctx.complete('The cat', { ...opts, seed: 1 }));
  assert.is(a.text, b.text);
  const others = await Promise.all([2, 3, 4].map((seed) => within(ctx.complete('The cat', { ...opts, seed }))));
  assert.ok(others.some((o) => o.text !== a.text), 'three other seeds all gave the same text');
});

test('a stop string ends the text before it', async () => {
  const full = await within(ctx.complete('Once upon a time', { maxTokens: 40, temperature: 0 }));
  const at = full.text.indexOf(' she');
  assert.ok(at > 0, `reference text lacks " she": ${full.text}`);
  const r = await within(ctx.complete('Once upon a time', { maxTokens: 40, temperature: 0, stop: [' she'] }));
  assert.is(r.stopReason, 'stop');
  assert.is(r.text, full.text.slice(0, at));
});

test('the cached prompt prefix is reused and gives the same text', async () => {
  ctx.clearCache();
  const prompt = 'Lily went to the park with her mom. They';
  const cold = await within(ctx.complete(prompt, { maxTokens: 12, temperature: 0 }));
  assert.is(cold.reusedPromptTokens, 0);
  const warm = await within(ctx.complete(prompt, { maxTokens: 12, temperature: 0 }));
  assert.is(warm.reusedPromptTokens, warm.usage.promptTokens - 1);
  assert.is(warm.text, cold.text);
  const longer = await within(ctx.complete(prompt + ' saw a bird', { maxTokens: 12, temperature: 0 }));
  assert.ok(longer.reusedPromptTokens >= cold.usage.promptTokens - 1);
  ctx.clearCache();
  const fresh = await within(ctx.complete(prompt + ' saw a bird', { maxTokens: 12, temperature: 0 }));
  assert.is(fresh.text, longer.text, 'reusing the prefix changed the output');
});

test('a full context ends generation with contextFull', async () => {
  const small = await within(model.createContext({ contextSize: 16 }));
  try {
    // llama.cpp rounds small sizes up (to 256): fill whatever it gave us.
    const r = await within(small.complete('Once upon a time', { maxTokens: 10_000, temperature: 0, ignoreEos: true }));
    assert.is(r.stopReason, 'contextFull');
    // Every position filled, plus the last token, sampled but never evaluated.
    assert.is(r.usage.totalTokens, small.size + 1);
  } finally {
    small.dispose();
  }
});

test('calls on one context run one after another, in order', async () => {
  const prompts = ['The dog', 'The bird', 'The sun'];
  const alone = [];
  for (const p of prompts) alone.push((await within(ctx.complete(p, { maxTokens: 16, temperature: 0 }))).text);
  const together = await within(Promise.all(prompts.map((p) => ctx.complete(p, { maxTokens: 16, temperature: 0 }))));
  assert.equal(together.map((r) => r.text), alone);
});

test('an abort mid-stream ends the stream with ABORTED and the context stays usable', async () => {
  const controller = new AbortController();
  const g = ctx.generate('Once upon a time', { maxTokens: 2000, temperature: 0, ignoreEos: true, signal: controller.signal });
  let received = '';
  const err = await rejection((async () => {
    for await (const chunk of g) {
      received += chunk;
      if (received.length > 20) controller.abort();
    }
  })());
  assert.is(err.code, 'ABORTED');
  assert.match(err.message, /generation was aborted/);
  const r = await rejection(g.result);
  assert.is(r.code, 'ABORTED');
  const after = await within(ctx.complete('Once upon a time', { maxTokens: 5, temperature: 0 }));
  assert.is(after.usage.completionTokens, 5);
});

test('one signal can serve many generations without piling up listeners', async () => {
  const controller = new AbortController();
  for (let i = 0; i < 3; i++) {
    await within(ctx.complete('The dog', { maxTokens: 4, temperature: 0, signal: controller.signal }));
  }
  assert.is(getEventListeners(controller.signal, 'abort').length, 0);
});

test('leaving the loop early stops the generation', async () => {
  const g = ctx.generate('Once upon a time', { maxTokens: 5000, temperature: 0, ignoreEos: true });
  for await (const chunk of g) {
    if (chunk.length > 0) break;
  }
  const err = await rejection(g.result);
  assert.is(err.code, 'ABORTED');
});

test('a queued call aborted before it starts never runs', async () => {
  const first = ctx.complete('Once upon a time', { maxTokens: 30, temperature: 0 });
  const controller = new AbortController();
  const second = ctx.complete('The dog', { maxTokens: 30, temperature: 0, signal: controller.signal });
  controller.abort();
  assert.is((await rejection(second)).code, 'ABORTED');
  assert.is((await within(first)).usage.completionTokens > 0, true);
});

// Async functions reject, and a Generation carries its failure: nothing the
// generation calls are given makes them throw.
test('bad arguments: complete() rejects, generate() and chat() fail on iteration and on result', async () => {
  const expected = 'Expected integer between 1 and 2147483647 for maxTokens but received 0 of type number';
  let completion: Promise<unknown> | undefined;
  assert.not.throws(() => (completion = ctx.complete('x', { maxTokens: 0 })));
  const err = await rejection(completion!);
  assert.is(err.code, 'INVALID_ARGUMENT');
  assert.is(err.message, expected);
  for (const g of [ctx.generate('x', { maxTokens: 0 }), ctx.chat([{ role: 'user', content: 'x' }], { template: 'chatml', maxTokens: 0 })]) {
    assert.is((await rejection((async () => { for await (const _ of g); })())).message, expected);
    assert.is((await rejection(g.result)).message, expected);
  }
  // A penalty of 0 would divide logits by zero: NaN probabilities, which could
  // pick a token the grammar rules out and make llama.cpp abort.
  assert.is((await rejection(ctx.complete('x', { repeatPenalty: 0, grammar: 'root ::= [a-z]+' }))).message,
    'Expected number greater than 0 and at most 100 for repeatPenalty but received 0 of type number');
  assert.is((await rejection(ctx.generate([]).result)).message,
    'the prompt is empty: give at least one token (a string prompt gets BOS when the model uses one)');
  const gone = await within(model.createContext({ contextSize: 64 }));
  void gone.dispose();
  assert.is((await rejection(gone.complete('x'))).code, 'DISPOSED');
  assert.is((await rejection(gone.generate('x').result)).code, 'DISPOSED');
});

test('a failed generation nobody looks at raises no unhandled rejection', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    ctx.generate('x', { temperature: -1 });
    ctx.chat([], { template: 'chatml' });
    ctx.generate('x', { grammar: 'root ::= <[100000]>', maxTokens: 2 });
    await within(ctx.complete('Once', { maxTokens: 2 }));
    // Node reports unhandled rejections once the microtasks of a macrotask are done.
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test("a caller's own error with a Node-style code (ENOENT) comes back unchanged, not as NATIVE_ERROR", async () => {
  const mine = Object.assign(new Error('my getter'), { code: 'ENOENT' });
  const options = { get maxTokens(): number { throw mine; } };
  assert.is(await rejection(ctx.complete('Once', options as never)), mine);
  assert.is(await rejection(ctx.generate('Once', options as never).result), mine);
});

test.run();
