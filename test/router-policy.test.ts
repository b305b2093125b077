// The policy: a task moves to the local model when its readiness (rolling
// similarity of local to remote answers, measured by shadow checks with the
// real model and its embeddings) reaches the threshold, and back when audits
// show it has fallen; offline, everything is local.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, type Context, type Model, type Router, type ShadowEvent } from '../src/index.js';
import { rejection, storiesModel } from './helpers.js';
import { ask, freshDir, routerFor } from './router-fixture.js';
import { startTeacher, type Teacher } from './teacher.js';

let teacher: Teacher;
let model: Model;
let context: Context;
const open: Router[] = [];

// An answer unlike anything stories260K writes. Its embeddings are coarse (any
// two stories score about 0.9); this text measured 0.59–0.65 against its
// answers to the questions below, under the 0.72 threshold.
const UNLEARNED = 'ZZZZZZZZZZZZ';

test.before(async () => {
  teacher = await startTeacher();
  model = await loadModel(storiesModel);
  context = await model.createContext({ contextSize: 512 });
});
test.after(async () => {
  context.dispose();
  model.dispose();
  await teacher.close();
});
test.after.each(async () => {
  for (const r of open.splice(0)) await r.close();
});

/** What the local model answers, straight from the model: the teacher's answer once the student has learned it. */
async function studentAnswer(question: string): Promise<string> {
  const done = await context.chat([{ role: 'user', content: question }], { template: 'chatml', temperature: 0, maxTokens: 24 }).result;
  return done.text;
}

async function router(options: Parameters<typeof routerFor>[1] = {}): Promise<Router> {
  const r = await routerFor(teacher, { readinessWindow: 4, readinessMin: 3, ...options });
  open.push(r);
  return r;
}

test('readiness crosses the threshold: the task moves from remote to local, and back when it falls', async () => {
  const cacheDir = freshDir('policy');
  // Caches off: stories260K's embeddings find every short question alike.
  const r = await router({ cacheDir, shadowRate: 1, auditRate: 1, enableCache: false });
  const shadows: ShadowEvent[] = [];
  const changes: boolean[] = [];
  r.on('shadow', (e: ShadowEvent) => shadows.push(e));
  r.on('readiness', (e: { ready: boolean }) => changes.push(e.ready));

  // 1. The teacher says things the student does not: it stays remote.
  teacher.setAnswer(() => UNLEARNED);
  for (let i = 0; i < 3; i++) {
    assert.is((await r.chat(ask(`unlearned question ${i}`))).route, 'remote');
    await r.idle();
  }
  assert.ok(shadows.every((s) => s.similarity < 0.72), shadows.map((s) => s.similarity).join(' '));
  assert.is(r.readiness('qa').ready, false);
  assert.is((await r.chat(ask('still remote'))).route, 'remote');
  await r.idle();

  // 2. The teacher's answers are what the student says: readiness rises to the threshold.
  const learned = new Map<string, string>();
  for (let i = 0; i < 4; i++) learned.set(`learned question ${i}`, await studentAnswer(`learned question ${i}`));
  teacher.setAnswer(({ messages }) => learned.get(messages!.at(-1)!.content) ?? UNLEARNED);
  const routes: string[] = [];
  for (const q of learned.keys()) {
    routes.push((await r.chat(ask(q))).route);
    await r.idle();
  }
  const state = r.readiness('qa');
  assert.ok(state.ready, JSON.stringify(state));
  assert.ok(state.readiness! >= 0.72);
  assert.equal(changes, [true]);
  assert.ok(routes.includes('remote'), 'it was remote before it was ready');
  const local = await r.chat(ask('a new question for the local model'));
  assert.is(local.route, 'local');
  assert.ok(local.similarity! >= 0.72);
  await r.idle();

  // 3. Audits of local answers find the teacher disagreeing again: back to remote.
  teacher.setAnswer(() => UNLEARNED);
  for (let i = 0; i < 6 && r.readiness('qa').ready; i++) {
    assert.is((await r.chat(ask(`audited question ${i}`))).route, 'local');
    await r.idle();
  }
  assert.is(r.readiness('qa').ready, false);
  assert.equal(changes, [true, false]);
  assert.is((await r.chat(ask('back to the teacher'))).route, 'remote');
  // Audits are remote interactions too: they are in the dataset, marked as such.
  assert.ok(r.datasetRows('qa').some((row) => row.source === 'audit'));
});

test('readiness is stored and survives a restart', async () => {
  const cacheDir = freshDir('persist');
  const first = await router({ cacheDir, shadowRate: 1, enableCache: false });
  const learned = new Map<string, string>();
  for (let i = 0; i < 3; i++) learned.set(`persist ${i}`, await studentAnswer(`persist ${i}`));
  teacher.setAnswer(({ messages }) => learned.get(messages!.at(-1)!.content) ?? UNLEARNED);
  for (const q of learned.keys()) {
    await first.chat(ask(q));
    await first.idle();
  }
  const before = first.readiness('qa');
  assert.ok(before.ready, JSON.stringify(before));
  await first.close();
  const second = await router({ cacheDir });
  assert.equal(second.readiness('qa'), before);
  assert.is((await second.chat(ask('after the restart'))).route, 'local');
});

test('a prompt too long for the local context goes remote even when the task is ready', async () => {
  const r = await router({ shadowRate: 1, readinessMin: 1, readinessWindow: 1 });
  const q = 'fits';
  const answer = await studentAnswer(q);
  teacher.setAnswer(() => answer);
  await r.chat(ask(q));
  await r.idle();
  assert.ok(r.readiness('qa').ready);
  const long = 'word '.repeat(600);
  const events: { reason: string }[] = [];
  r.on('call', (e: { reason: string }) => events.push(e));
  assert.is((await r.chat(ask(long))).route, 'remote');
  assert.is(events[0]!.reason, 'prompt does not fit the local context');
});

test('offline (useApi false): everything is local and nothing is logged', async () => {
  const r = await router({ useApi: false });
  const a = await r.chat(ask('Once upon a time'));
  assert.is(a.route, 'local');
  assert.ok(a.text.length > 0);
  assert.is(r.remote, undefined);
  assert.is(r.datasetRows().length, 0);
  const c = await r.complete({ task: 'story', prompt: 'Once upon a time', maxTokens: 16 });
  assert.is(c.route, 'local');
  const again = await r.complete({ task: 'story', prompt: 'Once upon a time', maxTokens: 16 });
  // Local answers are cached offline, but not one cut off by maxTokens (a hit could not say 'length').
  assert.is(again.route, c.finishReason === 'length' ? 'local' : 'cache');
  assert.is(again.text, c.text);
  const err = await rejection(r.chat(ask('x', { route: 'remote' })));
  assert.is(err.code, 'NO_BACKEND');
  assert.match(err.message, /remote API is off or not configured/);
});

test('offline, a prompt longer than the context is CONTEXT_OVERFLOW', async () => {
  const r = await router({ useApi: false });
  const err = await rejection(r.chat(ask('word '.repeat(2000))));
  assert.is(err.code, 'CONTEXT_OVERFLOW');
});

test('a forced route is obeyed: local for a task that is not ready, remote for one that is', async () => {
  const r = await router();
  assert.is((await r.chat(ask('force local', { route: 'local' }))).route, 'local');
  assert.is((await r.chat(ask('force remote', { route: 'remote' }))).route, 'remote');
  // A forced route skips the caches: the remote is asked again.
  teacher.requests.length = 0;
  assert.is((await r.chat(ask('force remote', { route: 'remote' }))).route, 'remote');
  assert.is(teacher.requests.length, 1);
});

test('complete() goes through the legacy completions endpoint remotely', async () => {
  const r = await router();
  teacher.setAnswer(({ prompt }) => `${prompt} ... and they lived happily.`);
  const c = await r.complete({ task: 'story', prompt: 'Once upon a time' });
  assert.is(c.route, 'remote');
  assert.is(c.text, 'Once upon a time ... and they lived happily.');
  assert.ok(teacher.requests.at(-1)!.path.endsWith('/v1/completions'));
  const row = r.datasetRows('story')[0]!;
  assert.is(row.prompt, 'Once upon a time');
  assert.is(row.kind, 'complete');
});

test.run();
