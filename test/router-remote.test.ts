// The remote through the real `openai` client against the teacher on
// 127.0.0.1, with faults injected there: each case checks the route taken, the
// error or the fallback, and that the dataset holds exactly the rows it should.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, createReadStream, openSync } from 'node:fs';
import { join } from 'node:path';
import type { Router } from '../src/index.js';
import { rejection, within } from './helpers.js';
import { API_KEY, allBytes, ask, routerFor } from './router-fixture.js';
import { refusedUrl, startTeacher, type Teacher } from './teacher.js';

let teacher: Teacher;
let router: Router;
const warnings: string[] = [];

test.before(async () => {
  teacher = await startTeacher();
});
test.after(async () => {
  await teacher.close();
});
test.before.each(async () => {
  teacher.faults.length = 0;
  teacher.requests.length = 0;
  teacher.setAnswer(undefined);
  warnings.length = 0;
  router = await routerFor(teacher, { timeout: 0.5, retries: 2 });
  router.on('warning', (w: string) => warnings.push(w));
});
test.after.each(async () => {
  await router.close();
});

const completions = () => teacher.requests.filter((r) => r.path.endsWith('/completions'));

test('a remote answer is returned, logged once, and sent with the key', async () => {
  const r = await router.chat(ask('What is a cat?'));
  assert.is(r.route, 'remote');
  assert.is(r.text, 'Answer: What is a cat?');
  assert.is(r.cached, false);
  assert.is(r.model, 'teacher-1');
  assert.ok(r.usage.completionTokens > 0);
  assert.is(teacher.requests[0]!.headers.authorization, `Bearer ${API_KEY}`);
  const rows = router.datasetRows();
  assert.is(rows.length, 1);
  assert.equal(rows[0]!.messages, [{ role: 'user', content: 'What is a cat?' }]);
  assert.is(rows[0]!.answer, 'Answer: What is a cat?');
  assert.is(rows[0]!.model, 'teacher-1');
  assert.is(rows[0]!.params.maxTokens, 24);
});

test('HTTP 500 is retried, and the retry answers', async () => {
  teacher.faults.push({ kind: 'status', status: 500 });
  const r = await router.chat(ask('retry me'));
  assert.is(r.route, 'remote');
  assert.is(completions().length, 2);
  assert.ok(warnings.some((w) => w.includes('HTTP 500')), warnings.join('\n'));
  assert.is(router.datasetRows().length, 1);
});

test('429 with Retry-After waits as long as the server asked', async () => {
  await router.close();
  // The router's clock records each wait instead of sleeping through it.
  const waits: number[] = [];
  router = await routerFor(teacher, { timeout: 0.5, retries: 2, clock: { now: Date.now, sleep: async (ms) => void waits.push(ms) } });
  teacher.faults.push({ kind: 'status', status: 429, retryAfter: '7' }, { kind: 'status', status: 503, retryAfter: '120' });
  const r = await router.chat(ask('rate limited'));
  assert.is(r.route, 'remote');
  assert.is(completions().length, 3);
  // As asked, and at most maxRetryDelayMs (30 s by default).
  assert.equal(waits, [7000, 30_000]);
  assert.is(router.datasetRows().length, 1);
});

test('the cooldown ends when the clock says so', async () => {
  await router.close();
  let now = Date.UTC(2026, 0, 1);
  router = await routerFor(teacher, { retries: 0, cooldownAfter: 1, cooldownMs: 60_000, model: undefined, clock: { now: () => now, sleep: async () => {} } });
  teacher.faults.push({ kind: 'status', status: 500 });
  assert.is((await rejection(router.chat(ask('fails')))).code, 'REMOTE_UNAVAILABLE');
  now += 59_999;
  const cooling = await rejection(router.chat(ask('too soon')));
  assert.match(cooling.message, /failed 1 calls in a row; not trying it again for 1 s/);
  now += 1;
  assert.is((await router.chat(ask('in time'))).route, 'remote');
  assert.is(completions().length, 2);
});

test('every attempt failing falls back to the local model, and nothing is logged', async () => {
  teacher.faults.push({ kind: 'status', status: 500 }, { kind: 'status', status: 502 }, { kind: 'status', status: 503 });
  const r = await router.chat(ask('all fail'));
  assert.is(r.route, 'local');
  assert.is(r.fallbackFrom, 'remote');
  assert.ok(r.text.length > 0);
  assert.is(completions().length, 3);
  assert.is(router.datasetRows().length, 0);
});

test('an answer slower than the timeout is REMOTE_TIMEOUT, and local answers', async () => {
  teacher.faults.push({ kind: 'delay', ms: 3000 }, { kind: 'delay', ms: 3000 }, { kind: 'delay', ms: 3000 });
  const r = await router.chat(ask('slow'));
  assert.is(r.route, 'local');
  assert.ok(warnings.some((w) => w.includes('REMOTE_TIMEOUT')), warnings.join('\n'));
  assert.is(router.datasetRows().length, 0);
});

test('malformed JSON is REMOTE_BAD_RESPONSE; with the local route off the caller gets it', async () => {
  await router.close();
  router = await routerFor(teacher, { retries: 0, model: undefined });
  teacher.faults.push({ kind: 'malformed' });
  const err = await rejection(router.chat(ask('garbage')));
  assert.is(err.code, 'REMOTE_BAD_RESPONSE');
  assert.match(err.message, /sent a response that could not be read/);
  assert.is(router.datasetRows().length, 0);
});

test('a stream cut off midway fails with REMOTE_BAD_RESPONSE after the text so far, and logs nothing', async () => {
  teacher.setAnswer(() => 'This answer is long enough to be sent in several streamed pieces.');
  teacher.faults.push({ kind: 'cut-stream', afterChunks: 2 });
  const stream = router.chat({ ...ask('stream me'), stream: true });
  const pieces: string[] = [];
  const err = await rejection((async () => {
    for await (const piece of stream) pieces.push(piece);
  })());
  assert.is(err.code, 'REMOTE_BAD_RESPONSE');
  assert.match(err.message, /cut its stream off midway/);
  assert.ok(pieces.join('').startsWith('This answ'), pieces.join(''));
  assert.is(completions().length, 1, 'text already streamed is never retried');
  assert.is(router.datasetRows().length, 0);
});

test('a whole stream arrives piece by piece and is logged once', async () => {
  teacher.setAnswer(() => 'Streamed answers arrive in pieces.');
  const stream = router.chat({ ...ask('stream ok'), stream: true });
  const pieces: string[] = [];
  for await (const piece of stream) pieces.push(piece);
  const result = await stream.result;
  assert.is(pieces.join(''), 'Streamed answers arrive in pieces.');
  assert.is(result.text, pieces.join(''));
  assert.is(result.route, 'remote');
  assert.is(router.datasetRows().length, 1);
});

test('connection refused: REMOTE_UNAVAILABLE, then a cooldown skips the remote', async () => {
  await router.close();
  const url = await refusedUrl();
  router = await routerFor(undefined, { apiBase: url, apiKey: API_KEY, useApi: true, retries: 0, cooldownAfter: 2, cooldownMs: 60_000, model: undefined });
  const first = await rejection(router.chat(ask('one')));
  assert.is(first.code, 'REMOTE_UNAVAILABLE');
  assert.match(first.message, /cannot reach the remote at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
  await rejection(router.chat(ask('two')));
  const cooled = await rejection(router.chat(ask('three')));
  assert.is(cooled.code, 'REMOTE_UNAVAILABLE');
  assert.match(cooled.message, /failed 2 calls in a row; not trying it again for 60 s/);
});

test('during a cooldown, calls go to the local model without trying the remote', async () => {
  await router.close();
  router = await routerFor(teacher, { retries: 0, cooldownAfter: 1, cooldownMs: 60_000 });
  teacher.faults.push({ kind: 'drop' });
  const first = await router.chat(ask('dropped'));
  assert.is(first.route, 'local');
  assert.is(first.fallbackFrom, 'remote');
  const before = completions().length;
  const second = await router.chat(ask('while cooling'));
  assert.is(second.route, 'local');
  assert.is(second.fallbackFrom, undefined);
  assert.is(completions().length, before, 'the remote was not tried');
});

test('a rejected key (401) is not retried and is REMOTE_REJECTED without a local model', async () => {
  await router.close();
  router = await routerFor(teacher, { model: undefined });
  teacher.faults.push({ kind: 'status', status: 401 });
  const err = await rejection(router.chat(ask('who am i')));
  assert.is(err.code, 'REMOTE_REJECTED');
  assert.match(err.message, /answered HTTP 401/);
  assert.is(completions().length, 1);
});

test('an aborted call is ABORTED, never falls back, and logs nothing', async () => {
  teacher.faults.push({ kind: 'delay', ms: 30_000 });
  const controller = new AbortController();
  const call = router.chat(ask('abort me', { signal: controller.signal }));
  await until(() => completions().length === 1);
  controller.abort();
  const err = await rejection(call);
  assert.is(err.code, 'ABORTED');
  assert.is(router.datasetRows().length, 0);
});

test('the API key never reaches the log, the dataset or the cache', async () => {
  const lines: string[] = [];
  router.on('warning', (w: string) => lines.push(w));
  router.on('call', (e) => lines.push(JSON.stringify(e)));
  teacher.faults.push({ kind: 'status', status: 401, body: JSON.stringify({ error: { message: `bad key ${API_KEY}` } }) });
  await router.chat(ask(`my key is ${API_KEY}, keep it safe`));
  await router.chat(ask('plain question'));
  await router.close();
  const onDisk = allBytes(router.cacheDir).toString('latin1');
  assert.not.ok(onDisk.includes(API_KEY), 'key found in the cache directory');
  assert.not.ok(onDisk.includes('SECRET-0123'), 'part of the key found in the cache directory');
  assert.ok(onDisk.includes('plain question'), 'the dataset was written (sanity check of the scan)');
  assert.not.ok(lines.join('\n').includes(API_KEY), 'key found in log lines or events');
  assert.not.ok(JSON.stringify(router.settings).includes(API_KEY), 'key visible in router.settings');
});

test('health checks: the teacher lists its model; a refused remote is unhealthy', async () => {
  const health = await router.health();
  assert.ok(health.remote?.ok, health.remote?.detail);
  assert.match(health.remote!.detail, /model teacher-1 listed/);
  assert.ok(health.local?.ok);
  await router.close();
  router = await routerFor(undefined, { apiBase: await refusedUrl(), apiKey: API_KEY, useApi: true, model: undefined });
  const down = await router.health();
  assert.is(down.remote?.ok, false);
});

test('the timeout covers the body too: headers then silence is REMOTE_TIMEOUT', async () => {
  await router.close();
  router = await routerFor(teacher, { timeout: 0.3, retries: 0, model: undefined });
  teacher.faults.push({ kind: 'stall' });
  const err = await rejection(router.chat(ask('stalled body')), 10_000);
  assert.is(err.code, 'REMOTE_TIMEOUT');
  assert.match(err.message, /did not answer in time/);
});

test('leaving a remote stream early settles the call as ABORTED, without a cooldown', async () => {
  await router.close();
  router = await routerFor(teacher, { cooldownAfter: 1, model: undefined });
  teacher.setAnswer(() => 'word '.repeat(400));
  for (let i = 0; i < 2; i++) {
    const stream = router.chat({ ...ask('leave early'), stream: true });
    for await (const piece of stream) if (piece) break;
    const err = await rejection(stream.result, 10_000);
    assert.is(err.code, 'ABORTED');
  }
  teacher.setAnswer(undefined);
  const after = await router.chat(ask('leave early'));
  assert.is(after.route, 'remote', 'the remote is not cooling down after the caller left');
  assert.is(router.datasetRows().length, 1);
});

test('a call that joined an identical one gets its own answer when the first is aborted', async () => {
  teacher.faults.push({ kind: 'delay', ms: 30_000 });
  const controller = new AbortController();
  const first = router.chat(ask('shared', { signal: controller.signal }));
  await until(() => completions().length === 1);
  // router.chat() decides synchronously whether to join; a call that did not
  // would send its own request now, before the different call made after it.
  const second = router.chat(ask('shared'));
  await router.chat(ask('something else'));
  assert.equal(completions().map((q) => q.body.messages[0].content), ['shared', 'something else'], 'the second call joined the first');
  controller.abort();
  assert.is((await rejection(first)).code, 'ABORTED');
  const r = await second;
  assert.is(r.text, 'Answer: shared');
  assert.is(r.cached, false);
  assert.equal(completions().map((q) => q.body.messages[0].content), ['shared', 'something else', 'shared']);
  assert.is(router.datasetRows().length, 2);
});

test('calls made during a dataset export are answered and logged while the export is under way', async () => {
  // Enough to outgrow every buffer between the export and its reader (some 150 KB).
  teacher.setAnswer(({ messages }) => `${messages!.at(-1)!.content} ${'z'.repeat(1000)}`);
  for (let i = 0; i < 300; i++) await router.chat(ask(`fill ${i}`, { cache: false }));
  const path = join(router.cacheDir, 'export.jsonl');
  // The export writes through a temporary file: make it a pipe that nobody reads
  // yet, so the export is held midway, deterministically, while the calls run.
  const fifo = `${path}.${process.pid}.tmp`;
  execFileSync('mkfifo', [fifo]);
  const reader = createReadStream(fifo, { encoding: 'utf8' })[Symbol.asyncIterator]();
  // Bounded reads: were the export to write elsewhere (its temporary file renamed),
  // nothing would ever open the pipe and the test would hang instead of failing.
  const read = (what: string) => within(reader.next(), 30_000, what).catch((err: unknown) => {
    // Unblock the reader's open (it holds a libuv thread), so the process can still exit.
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {}
    throw err;
  });
  let settled = false;
  const exporting = router.exportDataset(path).finally(() => (settled = true));
  // Once its first bytes arrive the export is reading rows, and it cannot finish before we read on.
  let text = (await read('the export\'s first bytes')).value as string;
  const calls = Promise.all([router.chat(ask('during 1', { cache: false })), router.chat(ask('during 2', { cache: false }))]);
  const during = await calls.catch((err: Error) => err);
  const logged = router.datasetRows().length;
  const underWay = !settled;
  // Read the rest whatever happened, so that the export (and close()) can finish.
  for (let next = await read('the export\'s next bytes'); !next.done; next = await read('the export\'s next bytes')) text += next.value;
  const count = await within(exporting, 30_000, 'the export');
  if (during instanceof Error) throw during;
  assert.equal(during.map((d) => d.route), ['remote', 'remote']);
  assert.is(logged, 302);
  assert.ok(underWay, 'the export was still under way when the calls were logged');
  assert.is(count, 302);
  const exported = text.trim().split('\n').map((l) => JSON.parse(l).messages[0].content as string);
  assert.is(exported.length, 302);
  assert.equal(exported.slice(-2).sort(), ['during 1', 'during 2']);
});

/** Resolves once `condition` holds, checking on each turn of the event loop. */
async function until(condition: () => boolean): Promise<void> {
  for (let turns = 0; !condition(); turns++) {
    if (turns > 100_000) throw new Error('condition never held');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('a failed call gets its own line and a failure event, with the key redacted', async () => {
  await router.close();
  router = await routerFor(teacher, { model: undefined });
  const failures: { code: string; message: string; task?: string }[] = [];
  router.on('failure', (f) => failures.push(f));
  teacher.faults.push({ kind: 'status', status: 401, body: JSON.stringify({ error: { message: `bad key ${API_KEY}` } }) });
  const err = await rejection(router.chat(ask('rejected')));
  assert.is(err.code, 'REMOTE_REJECTED');
  assert.not.ok(err.message.includes(API_KEY), err.message);
  assert.match(err.message, /\[REDACTED\]/);
  assert.is(failures.length, 1);
  assert.is(failures[0]!.code, 'REMOTE_REJECTED');
  assert.is(failures[0]!.task, 'qa');
  assert.not.ok(failures[0]!.message.includes(API_KEY));
});

test('an API base that is not an http(s) URL stops startup, without echoing credentials', async () => {
  const err = await rejection(routerFor(teacher, { apiBase: 'localhost:11434/v1' }));
  assert.is(err.code, 'INVALID_CONFIG');
  assert.is(err.message, 'option apiBase must be an http:// or https:// URL, got "localhost:11434/v1"');
  const env = await rejection(routerFor(undefined, { useApi: true, model: undefined, env: { UNDERSTUDY_API_BASE: 'ftp://user:pw@host/v1' } }));
  assert.is(env.message, 'UNDERSTUDY_API_BASE must be an http:// or https:// URL, got "ftp://host/v1"');
});

test.run();
