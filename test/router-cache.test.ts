// The exact and semantic caches: what they answer, what they must not, and
// that both survive restarts and stay consistent through eviction and expiry.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createRouter, MockBackend, type Router } from '../src/index.js';
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
  const r = await router({ cacheTtl: 0.3 });
  await r.chat(ask('short-lived'));
  assert.is((await r.chat(ask('short-lived'))).route, 'cache');
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.is((await r.chat(ask('short-lived'))).route, 'remote');
});

test('route "cache" answers from a cache or fails with CACHE_MISS', async () => {
  const r = await router();
  const err = await rejection(r.chat(ask('never asked', { route: 'cache' })));
  assert.is(err.code, 'CACHE_MISS');
  assert.match(err.message, /no cached answer matches this chat call of task qa/);
  await r.chat(ask('asked'));
  assert.is((await r.chat(ask('asked', { route: 'cache' }))).route, 'cache');
});

const cat = 'Tell me a story about a cat named Tom who likes milk.';

test('a near-duplicate prompt is a semantic hit; an unrelated one is a miss', async () => {
  const r = await router();
  const original = await r.chat(ask(cat));
  const near = await r.chat(ask(cat.replace('.', '!')));
  assert.is(near.route, 'semantic-cache');
  assert.is(near.text, original.text);
  assert.ok(near.similarity! >= 0.95 && near.similarity! <= 1.0001, String(near.similarity));
  const far = await r.chat(ask('What is the capital of France?'));
  assert.is(far.route, 'remote');
  assert.is(completions(), 2);
});

test('a semantic hit needs the same task and the same sampling settings', async () => {
  const r = await router();
  await r.chat(ask(cat));
  assert.is((await r.chat(ask(cat.replace('.', '!'), { task: 'other' }))).route, 'remote');
  assert.is((await r.chat(ask(cat.replace('.', '!'), { maxTokens: 30 }))).route, 'remote');
});

test('a semantic hit needs the same system prompt (it is not embedded)', async () => {
  const r = await router();
  const doc = (name: string) => ({ task: 'qa', maxTokens: 24, messages: [{ role: 'system', content: `Context: doc ${name}` }, { role: 'user', content: cat }] });
  await r.chat(doc('A'));
  const other = await r.chat(doc('B'));
  assert.is(other.route, 'remote');
});

test('a local answer the policy did not choose (forced) is not served to later callers', async () => {
  const r = await router();
  assert.is((await r.chat(ask('forced local answer', { route: 'local' }))).route, 'local');
  assert.is((await r.chat(ask('forced local answer'))).route, 'remote');
});

test('the semantic index is saved, survives a restart, and is rebuilt if its files are lost', async () => {
  const cacheDir = freshDir('semantic');
  const first = await router({ cacheDir });
  await first.chat(ask(cat));
  await first.close();
  assert.ok(readdirSync(join(cacheDir, 'semantic')).some((f) => f.endsWith('.hnsw')), 'no index file written');
  const second = await router({ cacheDir });
  assert.is((await second.chat(ask(cat.replace('.', '!')))).route, 'semantic-cache');
  await second.close();
  rmSync(join(cacheDir, 'semantic'), { recursive: true });
  const third = await router({ cacheDir });
  assert.is((await third.chat(ask(cat.replace('.', '?')))).route, 'semantic-cache');
  assert.is(completions(), 1);
});

test('an evicted entry leaves the semantic index too, across a restart', async () => {
  const cacheDir = freshDir('evict');
  const first = await router({ cacheDir, cacheMaxEntries: 1 });
  await first.chat(ask(cat));
  await first.close();
  // A saved index that still holds the first entry; evicting it must not leave a dangling hit.
  const second = await router({ cacheDir, cacheMaxEntries: 1 });
  await second.chat(ask('What is the capital of France?'));
  assert.is((await second.chat(ask(cat.replace('.', '!')))).route, 'remote');
  await second.close();
  const third = await router({ cacheDir, cacheMaxEntries: 1 });
  const r = await third.chat(ask(cat.replace('.', '?')));
  assert.ok(r.route === 'remote' || r.text === `Answer: ${cat.replace('.', '!')}`, `stale answer: ${r.route} ${r.text}`);
});

/** Deterministic unit vectors from text: a stand-in embedder to fill an index quickly. */
function hashEmbed(texts: string[]): Promise<Float32Array[]> {
  return Promise.resolve(texts.map((t) => {
    const v = new Float32Array(32);
    const bytes = createHash('sha256').update(t).digest();
    for (let i = 0; i < 32; i++) v[i] = bytes[i]! - 127.5;
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  }));
}

test('the semantic index grows past its initial capacity and reloads whole', async () => {
  const cacheDir = freshDir('grow');
  const options = { cacheDir, local: false as const, remote: new MockBackend(), embedder: hashEmbed, quiet: true, env: {} };
  const first = await createRouter(options);
  open.push(first);
  for (let i = 0; i < 1500; i++) await first.chat({ task: 'bulk', messages: [{ role: 'user', content: `question ${i}` }] });
  await first.close();
  const second = await createRouter(options);
  open.push(second);
  for (const i of [0, 777, 1499]) {
    // Same embedding, different text: only the semantic index can answer it.
    const embed = hashEmbed;
    const r = await createRouter({ ...options, embedder: async (texts) => embed(texts.map(() => `user: question ${i}`)) });
    open.push(r);
    const hit = await r.chat({ task: 'bulk', messages: [{ role: 'user', content: `unseen ${i}` }] });
    assert.is(hit.route, 'semantic-cache');
    assert.is(hit.text, `Echo: question ${i}`);
    await r.close();
  }
  assert.ok(existsSync(join(cacheDir, 'cache.db')));
});

test.run();
