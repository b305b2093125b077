// The semantic cache: opt-in, on only with an embedder that tells texts apart,
// never answering a prompt whose numbers, quotes, code, names or negations
// differ from the cached one's, and an index that survives restarts, loss,
// eviction and growth.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { MockBackend, type Router } from '../src/index.js';
import { checkEmbedder } from '../src/router/semantic-fitness.js';
import { promptFacts } from '../src/router/semantic-guard.js';
import { freshDir, routerFor } from './router-fixture.js';
import { bagEmbed, chatOf, constantEmbed, fromCache, hashEmbed, pairs, semanticRouter } from './semantic-fixture.js';

const open: Router[] = [];
async function router(options: Parameters<typeof semanticRouter>[0] = {}): Promise<Router> {
  const r = await semanticRouter(options);
  open.push(r);
  return r;
}
test.after.each(async () => {
  for (const r of open.splice(0)) await r.close();
});

const cat = 'Tell me a story about a cat named Tom who likes milk.';

test('the semantic cache is off unless asked for: a near-duplicate goes to the backend', async () => {
  const r = await router({ semanticCache: undefined });
  assert.is(r.semanticCache, false);
  await r.chat(chatOf(cat));
  assert.is((await r.chat(chatOf(cat.replace('.', '!')))).route, 'remote');
});

test('UNDERSTUDY_SEMANTIC_CACHE turns it on', async () => {
  const r = await router({ semanticCache: undefined, env: { UNDERSTUDY_SEMANTIC_CACHE: 'true' } });
  assert.is(r.semanticCache, true);
  await r.chat(chatOf(cat));
  assert.is((await r.chat(chatOf(cat.replace('.', '!')))).route, 'semantic-cache');
});

test('an embedder that cannot tell unrelated texts apart leaves it off, with one warning', async () => {
  // stories260K as the embedder: the local chat model, which UNDERSTUDY_EMBEDDING_MODEL would replace.
  const r = await routerFor(undefined, { semanticCache: true });
  open.push(r);
  const warnings: string[] = [];
  r.on('warning', (w: string) => warnings.push(w));
  await new Promise((resolve) => setImmediate(resolve));
  assert.is(r.semanticCache, false);
  assert.is(warnings.length, 1, warnings.join('\n'));
  assert.match(warnings[0]!, /^the semantic cache stays off: the local model, as the embedder, does not tell unrelated texts apart \(".+" and ".+" are at similarity 0?\.\d{3}, at least 0\.85\); set UNDERSTUDY_EMBEDDING_MODEL to an embedding model$/);
  const q = { task: 't', messages: [{ role: 'user' as const, content: 'What is 2+2?' }], maxTokens: 4 };
  await r.chat(q);
  assert.is((await r.chat({ ...q, messages: [{ role: 'user' as const, content: 'What is 3+5?' }] })).route, 'local');
});

test('the fitness check: unrelated pairs must stay below cacheThreshold - 0.1', async () => {
  const fit = await checkEmbedder(bagEmbed, 0.95);
  assert.ok(fit.fit && fit.worst.similarity < 0.85, JSON.stringify(fit));
  const unfit = await checkEmbedder(constantEmbed, 0.95);
  assert.is(unfit.fit, false);
  assert.ok(Math.abs(unfit.worst.similarity - 1) < 1e-6);
  assert.ok(Math.abs(unfit.bound - 0.85) < 1e-9);
});

test('near-miss prompts never hit, whatever the embedder; paraphrases with the same facts do', async () => {
  // Every prompt embeds to the same vector: only the guard tells the pairs apart.
  const r = await router({ embedder: constantEmbed });
  let falseHits = 0;
  const wrong: string[] = [];
  for (const [i, p] of pairs.nearMiss.entries()) {
    await r.chat(chatOf(p.a, { task: `near-${i}` }));
    const b = await r.chat(chatOf(p.b, { task: `near-${i}` }));
    if (b.route === 'semantic-cache') {
      falseHits++;
      wrong.push(`${p.kind}: ${JSON.stringify(p.b)} answered as ${JSON.stringify(p.a)}`);
    }
  }
  assert.is(falseHits, 0, wrong.join('\n'));
  let hits = 0;
  for (const [i, p] of pairs.paraphrase.entries()) {
    await r.chat(chatOf(p.a, { task: `para-${i}` }));
    if ((await r.chat(chatOf(p.b, { task: `para-${i}` }))).route === 'semantic-cache') hits++;
  }
  // Two of the paraphrases add a fact ("one day", "what year"): the guard turns those away too.
  assert.ok(hits >= pairs.paraphrase.length - 2, `${hits} of ${pairs.paraphrase.length} paraphrases hit`);
});

test('the guard compares normalised facts: digits, number words, operators, units, quotes, code, names, negations', () => {
  assert.equal(promptFacts('What is 3+5?').numbers, ['3+5']);
  assert.equal(promptFacts("What's 3 + 5?").numbers, ['3+5']);
  assert.equal(promptFacts('Give me three ideas, or 1,000.').numbers, ['3', '1000']);
  assert.equal(promptFacts('Walk 5 kilometres, then 2 km').numbers, ['5 km', '2 km']);
  assert.equal(promptFacts('It costs $20').numbers, ['usd 20']);
  assert.equal(promptFacts('Translate "good morning" and \'hi\', but don\'t touch it').quoted, ['good morning', 'hi']);
  assert.equal(promptFacts('Run `ls  -la` or\n```sh\necho  hi\n```').code, ['ls -la', 'echo hi']);
  assert.equal(promptFacts('What did Alice tell Bob in Paris?').names, ['alice', 'bob', 'paris']);
  assert.is(promptFacts("I don't know, it is not never without a reason").negations, 4);
  assert.is(promptFacts('Tell me about the constructor and toString').numbers.length, 0);
});

test('entries embedded by another embedder are never hits (their vectors do not compare)', async () => {
  const cacheDir = freshDir('semantic');
  const remote = new MockBackend();
  // The local backend is the embedder: its model names it, as a model file's path would.
  const student = (model: string) => ({ cacheDir, remote, embedder: undefined, local: new MockBackend({ model, embed: bagEmbed }) });
  const first = await router(student('student-a'));
  assert.is(first.semanticCache, true);
  await first.chat(chatOf(cat));
  await first.close();
  const second = await router(student('student-b'));
  // The index is open and answers this embedder's own entries...
  await second.chat(chatOf('Tell me a story about a dog named Rex who likes bones.'));
  assert.is((await fromCache(second, chatOf('Tell me a story about a dog named Rex who likes bones!'))).route, 'semantic-cache');
  // ...but not the first embedder's.
  const err = await second.chat({ ...chatOf(cat.replace('.', '!')), route: 'cache' }).catch((e: { code?: string }) => e);
  assert.is((err as { code?: string }).code, 'CACHE_MISS');
  await second.close();
  const third = await router(student('student-a'));
  assert.is((await fromCache(third, chatOf(cat.replace('.', '!')))).route, 'semantic-cache', 'the same embedder still hits');
});

test('a near-duplicate prompt is a semantic hit; an unrelated one is a miss', async () => {
  const remote = new MockBackend();
  const r = await router({ remote });
  const original = await r.chat(chatOf(cat));
  const near = await r.chat(chatOf(cat.replace('.', '!')));
  assert.is(near.route, 'semantic-cache');
  assert.is(near.text, original.text);
  assert.ok(near.similarity! >= 0.95 && near.similarity! <= 1.0001, String(near.similarity));
  const far = await r.chat(chatOf('What is the capital of France?'));
  assert.is(far.route, 'remote');
  assert.is(remote.calls.length, 2);
});

test('a semantic hit needs the same task and the same sampling settings', async () => {
  const r = await router();
  await r.chat(chatOf(cat));
  assert.is((await r.chat(chatOf(cat.replace('.', '!'), { task: 'other' }))).route, 'remote');
  assert.is((await r.chat(chatOf(cat.replace('.', '!'), { maxTokens: 30 }))).route, 'remote');
});

test('a semantic hit needs the same system prompt (it is not embedded)', async () => {
  const r = await router();
  const doc = (name: string) => ({ task: 'qa', maxTokens: 24, messages: [{ role: 'system', content: `Context: doc ${name}` }, { role: 'user', content: cat }] });
  await r.chat(doc('A'));
  assert.is((await r.chat(doc('B'))).route, 'remote');
});

test('the semantic index is saved, survives a restart, and is rebuilt if its files are lost', async () => {
  const cacheDir = freshDir('semantic');
  const remote = new MockBackend();
  const first = await router({ cacheDir, remote });
  await first.chat(chatOf(cat));
  await first.close();
  const second = await router({ cacheDir, remote });
  assert.is((await fromCache(second, chatOf(cat.replace('.', '!')))).route, 'semantic-cache');
  await second.close();
  rmSync(join(cacheDir, 'semantic'), { recursive: true });
  const third = await router({ cacheDir, remote });
  assert.is((await fromCache(third, chatOf(cat.replace('.', '?')))).route, 'semantic-cache');
  assert.is(remote.calls.length, 1);
});

test('an evicted entry leaves the semantic index too, across a restart', async () => {
  const cacheDir = freshDir('evict');
  const first = await router({ cacheDir, cacheMaxEntries: 1 });
  await first.chat(chatOf(cat));
  await first.close();
  // A saved index that still holds the first entry; evicting it must not leave a dangling hit.
  const second = await router({ cacheDir, cacheMaxEntries: 1 });
  await second.chat(chatOf('What is the capital of France?'));
  assert.is((await second.chat(chatOf(cat.replace('.', '!')))).route, 'remote');
  await second.close();
  const third = await router({ cacheDir, cacheMaxEntries: 1 });
  // The surviving entry answers, with its own text: the index has opened (a miss
  // while it is still loading would look like a correct eviction) and the
  // evicted entry's dangling vector does not win.
  const survivor = await fromCache(third, chatOf(cat.replace('.', '?')));
  assert.is(survivor.route, 'semantic-cache');
  assert.is(survivor.text, `Echo: ${cat.replace('.', '!')}`);
  const r = await third.chat(chatOf(cat.replace('.', '?')));
  assert.ok(r.route === 'remote' || r.text === `Echo: ${cat.replace('.', '!')}`, `stale answer: ${r.route} ${r.text}`);
});

test('the semantic index grows past its initial capacity and reloads whole', async () => {
  const cacheDir = freshDir('grow');
  const first = await router({ cacheDir, embedder: hashEmbed });
  for (let i = 0; i < 1500; i++) await first.chat({ task: 'bulk', messages: [{ role: 'user', content: `question ${i}` }] });
  await first.close();
  for (const i of [0, 777, 1499]) {
    // Same embedding, different text: only the semantic index can answer it.
    const r = await router({ cacheDir, embedder: async (texts) => hashEmbed(texts.map(() => `user: question ${i}`)) });
    const hit = await fromCache(r, { task: 'bulk', messages: [{ role: 'user', content: `unseen ${i}` }] });
    assert.is(hit.route, 'semantic-cache');
    assert.is(hit.text, `Echo: question ${i}`);
    await r.close();
  }
});

test.run();
