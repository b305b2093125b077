// The remote's answers are bounded in size, streams time out on silence and
// not while pieces keep coming (with a separate limit on the whole), and a
// settled remote call leaves no timer or listener behind.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getEventListeners } from 'node:events';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Router } from '../src/index.js';
import { rejection } from './helpers.js';
import { API_KEY, ask, freshDir } from './router-fixture.js';
import { startTeacher, type Teacher } from './teacher.js';
import { createRouter } from '../src/index.js';

let teacher: Teacher;
const open: Router[] = [];
const completions = () => teacher.requests.filter((r) => r.path.endsWith('/completions')).length;

test.before(async () => {
  teacher = await startTeacher({ chunkSize: 1 << 20 });
});
test.after(async () => {
  await teacher.close();
});
test.after.each(async () => {
  for (const r of open.splice(0)) await r.close();
  teacher.faults.length = 0;
  teacher.requests.length = 0;
  teacher.setAnswer(undefined);
});

async function remoteOnly(options: Record<string, unknown> = {}): Promise<Router> {
  const r = await createRouter({
    apiBase: teacher.url, apiModel: 'teacher-1', apiKey: API_KEY, local: false, cacheDir: freshDir('limits'),
    quiet: true, retries: 2, retryDelayMs: 1, env: {}, ...options,
  });
  open.push(r);
  return r;
}

// One "word" (no spaces), so the teacher's own maxTokens cut does not shorten it.
const HUGE = 'x'.repeat(6 * 1024 * 1024);

for (const stream of [false, true]) {
  test(`a ${HUGE.length >> 20} MB answer to a maxTokens: 16 call (${stream ? 'streamed' : 'whole'}) is REMOTE_BAD_RESPONSE, not retried, logged or cached`, async () => {
    const r = await remoteOnly();
    teacher.setAnswer(() => HUGE);
    const call = ask('be brief', { maxTokens: 16 });
    const err = stream
      ? await rejection(r.chat({ ...call, stream: true }).result)
      : await rejection(r.chat(call));
    assert.is(err.code, 'REMOTE_BAD_RESPONSE');
    assert.match(err.message, /^the remote at http:\/\/127\.0\.0\.1:\d+ sent an answer larger than 81920 bytes, more than maxTokens allows$/);
    assert.is(completions(), 1, 'a remote that answers too much is not asked again');
    assert.is(r.datasetRows().length, 0);
    teacher.setAnswer(undefined);
    assert.is((await rejection(r.chat({ ...call, route: 'cache' }))).code, 'CACHE_MISS');
  });
}

test('an answer within its bound still arrives whole', async () => {
  const r = await remoteOnly();
  const long = 'y'.repeat(60_000);
  teacher.setAnswer(() => long);
  assert.is((await r.chat(ask('long but fine', { maxTokens: 16 }))).text, long);
});

test('a stream that keeps delivering is not cut at the timeout: the timeout is for silence', async () => {
  // 40 pieces 100 ms apart take 4 s, longer than the 3 s timeout, so a timeout
  // that counted the whole stream would cut it; no gap comes near it, even on
  // a loaded machine whose timers run late (the timers are real: no clock to inject).
  const r = await remoteOnly({ timeout: 3, retries: 0 });
  teacher.faults.push({ kind: 'trickle', everyMs: 100, pieces: 40 });
  const stream = r.chat({ ...ask('drip'), stream: true });
  let text = '';
  for await (const piece of stream) text += piece;
  assert.is(text, 'drip '.repeat(40));
  assert.is((await stream.result).route, 'remote');
});

test('a stream that never ends is cut at streamTimeout with REMOTE_TIMEOUT', async () => {
  const r = await remoteOnly({ timeout: 0.5, streamTimeout: 1, retries: 0 });
  teacher.faults.push({ kind: 'trickle', everyMs: 50 });
  const stream = r.chat({ ...ask('endless'), stream: true });
  const pieces: string[] = [];
  const err = await rejection((async () => {
    for await (const piece of stream) pieces.push(piece);
  })(), 20_000);
  assert.is(err.code, 'REMOTE_BAD_RESPONSE');
  assert.match(err.message, /cut its stream off midway: the remote at .* did not finish its stream within 1 s$/);
  assert.is((err.cause as { code?: string }).code, 'REMOTE_TIMEOUT');
  assert.ok(pieces.join('').startsWith('drip drip'), pieces.join(''));
  assert.is(r.datasetRows().length, 0);
});

test('a stream that goes silent is REMOTE_TIMEOUT after the timeout, before any text', async () => {
  const r = await remoteOnly({ timeout: 0.3, streamTimeout: 60, retries: 0 });
  teacher.faults.push({ kind: 'delay', ms: 5000 });
  const err = await rejection(r.chat({ ...ask('silent'), stream: true }).result, 20_000);
  assert.is(err.code, 'REMOTE_TIMEOUT');
  assert.match(err.message, /did not answer in time: nothing came for 0\.3 s$/);
});

const timeouts = () => process.getActiveResourcesInfo().filter((k) => k === 'Timeout').length;

// Live AbortSignals after a full collection: each remote attempt makes a few,
// and they must die with the attempt, not when its timeout would have fired.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
async function liveSignals(): Promise<number> {
  // Weak references and finalizers need turns of the event loop between collections.
  for (let i = 0; i < 10; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return (v8 as unknown as { queryObjects(c: unknown, o: { format: 'count' }): number }).queryObjects(AbortSignal, { format: 'count' });
}

test('settled remote calls leave no timers, signals or listeners behind', async () => {
  const r = await remoteOnly({ timeout: 600, enableCache: false });
  const caller = new AbortController();
  await r.chat(ask('warm up', { signal: caller.signal }));
  const timersBefore = timeouts();
  const signalsBefore = await liveSignals();
  const listenersBefore = getEventListeners(caller.signal, 'abort').length;
  for (let i = 0; i < 150; i++) await r.chat(ask(`call ${i}`, { signal: caller.signal }));
  for (let i = 0; i < 20; i++) {
    const s = r.chat({ ...ask(`streamed ${i}`, { signal: caller.signal }), stream: true });
    for await (const _ of s) { /* drain */ }
  }
  // Each call's 600 s timeout would still be waiting, holding its signals; a few unrelated ones may come and go.
  assert.ok(timeouts() - timersBefore < 10, `${timeouts() - timersBefore} more timers after 170 calls`);
  const signals = await liveSignals();
  assert.ok(signals - signalsBefore < 20, `${signals - signalsBefore} more live AbortSignals after 170 calls`);
  assert.is(getEventListeners(caller.signal, 'abort').length, listenersBefore, 'listeners left on the caller\'s signal');
});

test.run();
