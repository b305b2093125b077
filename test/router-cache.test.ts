// The exact cache: what it answers, what it must not, and that it survives
// restarts and stays consistent through eviction and expiry.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Router } from '../src/index.js';
import { rejection } from './helpers.js';
import { ask, freshDir, routerFor } from './router-fixture.js';
import { startTeacher, type Teacher } from './teacher.js';

let teacher: Teacher;
const open: Router[] = [];
const completions = () => teacher.requests.filter((r) => r.path.endsWith('/completions')).length;

async function router(options: Parameters<typeof routerFor>[1] = {}): Promise<Router> {
  const r = await routerFor(teacher, options);
  open.push(r);
  return r;
}

test.before(async () => {
  teacher = await startTeacher();
});
test.after(async () => {
  await teacher.close();
});
test.before.each(() => {
  teacher.requests.length = 0;
});
test.after.each(async () => {
  for (const r of open.splice(0)) await r.close();
});

test('an exact hit survives a restart and asks no backend', async () => {
  const cacheDir = freshDir('exact');
  const first = await router({ cacheDir });
  const a = await first.chat(ask('What is a cat?'));
  await first.close();
  const second = await router({ cacheDir });
  const b = await second.chat(ask('What is a cat?'));
  assert.is(a.route, 'remote');
  assert.is(b.route, 'cache');
  assert.is(b.cached, true);
  assert.is(b.text, a.text);
  assert.equal(b.usage, a.usage);
  assert.is(completions(), 1);
});

test('the key covers task, messages and sampling: any change misses', async () => {
  const r = await router({ embedder: false });
  await r.chat(ask('same'));
  const variants = [ask('same', { task: 'other' }), ask('same', { maxTokens: 25 }), ask('same', { topP: 0.5 }), ask('same', { stop: ['x'] }),
    { task: 'qa', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'same' }], maxTokens: 24 }];
  for (const v of variants) assert.is((await r.chat(v)).route, 'remote', JSON.stringify(v));
  assert.is((await r.chat(ask('same'))).route, 'cache');
});

test('sampled calls are not cached unless cacheSampled is on', async () => {
  const r = await router();
  await r.chat(ask('sampled', { temperature: 0.7 }));
  assert.is((await r.chat(ask('sampled', { temperature: 0.7 }))).route, 'remote');
  const s = await router({ cacheSampled: true });
  await s.chat(ask('sampled', { temperature: 0.7 }));
  assert.is((await s.chat(ask('sampled', { temperature: 0.7 }))).route, 'cache');
});

test('cache: false and enableCache: false bypass the caches', async () => {
  const r = await router();
  await r.chat(ask('bypass'));
  assert.is((await r.chat(ask('bypass', { cache: false }))).route, 'remote');
  const off = await router({ enableCache: false });
  await off.chat(ask('off'));
  assert.is((await off.chat(ask('off'))).route, 'remote');
});

test('the least recently used entry is evicted past cacheMaxEntries', async () => {
  const r = await router({ cacheMaxEntries: 3, embedder: false });
  for (const q of ['a', 'b', 'c']) await r.chat(ask(q));
  assert.is((await r.chat(ask('a'))).route, 'cache');
  await r.chat(ask('d'));
  assert.is((await r.chat(ask('b'))).route, 'remote', 'b was least recently used and should be gone');
  assert.is((await r.chat(ask('a'))).route, 'cache');
});

test('entries expire after cacheTtl seconds', async () => {
  // The router's clock, moved by hand: no waiting on the wall clock.
  let now = Date.UTC(2026, 0, 1);
  const r = await router({ cacheTtl: 30, clock: { now: () => now, sleep: async () => {} } });
  await r.chat(ask('short-lived'));
  now += 29_999;
  assert.is((await r.chat(ask('short-lived'))).route, 'cache');
  now += 1;
  assert.is((await r.chat(ask('short-lived'))).route, 'remote');
  assert.is((await r.chat(ask('short-lived'))).route, 'cache', 'the fresh answer is cached again');
});

test('route "cache" answers from a cache or fails with CACHE_MISS', async () => {
  const r = await router();
  const err = await rejection(r.chat(ask('never asked', { route: 'cache' })));
  assert.is(err.code, 'CACHE_MISS');
  assert.match(err.message, /no cached answer matches this chat call of task qa/);
  await r.chat(ask('asked'));
  assert.is((await r.chat(ask('asked', { route: 'cache' }))).route, 'cache');
});

test('a local answer the policy did not choose (forced) is not served to later callers', async () => {
  const r = await router();
  assert.is((await r.chat(ask('forced local answer', { route: 'local' }))).route, 'local');
  assert.is((await r.chat(ask('forced local answer'))).route, 'remote');
});

// The semantic cache (opt-in) is tested in router-semantic-cache.test.ts.

test.run();
