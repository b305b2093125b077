// Secrets never leave the process: not a short key, not a key inside an
// error's cause, not credentials in the API base URL. Every byte the router
// writes (cache directory, export, stderr) and every error as util.inspect
// prints it is searched for the secret.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { inspect } from 'node:util';
import { join } from 'node:path';
import { createRouter, type Router } from '../src/index.js';
import { rejection } from './helpers.js';
import { allBytes, ask, freshDir } from './router-fixture.js';
import { startTeacher, type Teacher } from './teacher.js';

let teacher: Teacher;
const open: Router[] = [];

test.before(async () => {
  teacher = await startTeacher();
});
test.after(async () => {
  await teacher.close();
});
test.after.each(async () => {
  for (const r of open.splice(0)) await r.close();
  teacher.faults.length = 0;
  teacher.setAnswer(undefined);
});

/** Runs `fn` with everything written to stderr captured (and not shown). */
async function capturingStderr<T>(fn: () => Promise<T>): Promise<{ value: T; stderr: string }> {
  const original = process.stderr.write;
  let stderr = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  }) as typeof process.stderr.write;
  try {
    return { value: await fn(), stderr };
  } finally {
    process.stderr.write = original;
  }
}

function remote(apiKey: string, extra: Record<string, unknown> = {}): Promise<Router> {
  return createRouter({
    apiBase: teacher.url, apiModel: 'teacher-1', apiKey, local: false, cacheDir: freshDir('secrets'), retries: 1, retryDelayMs: 1,
    env: {}, ...extra,
  }).then((r) => {
    open.push(r);
    return r;
  });
}

test('a short key (6 characters) never reaches the dataset, the cache, an export, stderr or an error', async () => {
  const key = 'k3y-6z';
  const { value: r, stderr } = await capturingStderr(async () => {
    const router = await remote(key);
    teacher.faults.push({ kind: 'status', status: 500, body: JSON.stringify({ error: { message: `server saw ${key}` } }) });
    await router.chat(ask(`my key is ${key}`));
    await router.complete({ task: 'story', prompt: `Once ${key} upon a time` });
    teacher.faults.push({ kind: 'status', status: 401, body: JSON.stringify({ error: { message: `bad key ${key}` } }) });
    const err = await rejection(router.chat(ask('rejected')));
    assert.is(err.code, 'REMOTE_REJECTED');
    assert.not.ok(inspect(err, { depth: Infinity, showHidden: true }).includes(key), 'key in the error');
    await router.exportDataset(join(router.cacheDir, 'export.jsonl'));
    await router.close();
    return router;
  });
  const onDisk = allBytes(r.cacheDir).toString('latin1');
  assert.ok(onDisk.includes('my key is [REDACTED]'), 'the scan sees the dataset');
  assert.ok(onDisk.includes('"task":"story"'), 'the scan sees the export');
  assert.not.ok(onDisk.includes(key), 'key in the cache directory or the export');
  assert.ok(stderr.includes('HTTP 500'), stderr);
  assert.not.ok(stderr.includes(key), stderr);
});

test("an error's cause chain carries no key: util.inspect and console.error show none", async () => {
  const key = 'sk-live-CAUSE-0123456789abcdef';
  const r = await remote(key, { retries: 0, quiet: true });
  teacher.faults.push({ kind: 'status', status: 401, body: JSON.stringify({ error: { message: `Incorrect API key provided: ${key}` } }) });
  const err = await rejection(r.chat(ask('who am i')));
  assert.is(err.code, 'REMOTE_REJECTED');
  assert.ok(err.cause instanceof Error, 'the cause is kept, redacted');
  const printed = inspect(err, { depth: Infinity, showHidden: true, getters: true });
  assert.match(printed, /answered HTTP 401/);
  assert.not.ok(printed.includes(key), printed);
  assert.not.ok(printed.includes('CAUSE-0123'), 'part of the key');
  assert.not.ok(/Bearer\s+sk-/.test(printed), 'a bearer token');
  // A request that never reached the server (refused) also carries its headers in the cause.
  const refused = await createRouter({ apiBase: 'http://127.0.0.1:1/v1', apiKey: key, local: false, cacheDir: freshDir('secrets'), retries: 0, quiet: true, env: {} });
  open.push(refused);
  const down = await rejection(refused.chat(ask('anyone there')));
  assert.is(down.code, 'REMOTE_UNAVAILABLE');
  assert.not.ok(inspect(down, { depth: Infinity, showHidden: true, getters: true }).includes(key));
});

test('credentials in the API base URL stop startup, and appear nowhere', async () => {
  const url = teacher.url.replace('http://', 'http://alice:hunter2-secret@');
  const { value: err, stderr } = await capturingStderr(() => rejection(createRouter({ env: { UNDERSTUDY_API_BASE: url }, local: false, cacheDir: freshDir('secrets') })));
  assert.is(err.code, 'INVALID_CONFIG');
  assert.is(err.message, `UNDERSTUDY_API_BASE must not carry a user name or password (put the key in UNDERSTUDY_API_KEY or the apiKey option), got "${teacher.url}"`);
  const printed = inspect(err, { depth: Infinity, showHidden: true }) + stderr;
  assert.not.ok(printed.includes('hunter2'), printed);
  assert.not.ok(printed.includes('alice'), printed);
});

test.run();
