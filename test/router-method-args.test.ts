// The router's methods check their arguments: a bad one is a coded
// INVALID_ARGUMENT naming it (sync methods throw, async ones reject), never a
// better-sqlite3 error (readiness({}), datasetRows([1, 2])) or a raw TypeError
// from fs (exportDataset(5), a NUL in the path, null options). A caller's own
// exception, from a getter of their request, reaches them unchanged and by
// rejection, as every failure of an async method does.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRouter, MockBackend, type Router } from '../src/index.js';
import { rejection, thrown } from './helpers.js';
import { freshDir } from './router-fixture.js';

const TASK = 'Expected task name of 1 to 100 letters, digits or . : / @ - _ for task but received';
const code = (err: Error & { code?: string }) => ({ code: err.code, message: err.message });
const open = () => createRouter({ remote: new MockBackend(), local: false, cacheDir: freshDir('method-args'), quiet: true, env: {} });
class Mine extends Error {}
const throwing = () => { throw new Mine('the caller\'s own'); };

test('readiness and datasetRows refuse a task that is not a task name', async () => {
  const r: Router = await open();
  try {
    assert.equal(code(thrown(() => r.readiness({} as never))), { code: 'INVALID_ARGUMENT', message: `${TASK} an object of type object` });
    assert.equal(code(thrown(() => r.readiness(undefined as never))), { code: 'INVALID_ARGUMENT', message: `${TASK} undefined of type undefined` });
    assert.equal(code(thrown(() => r.datasetRows([1, 2] as never))), { code: 'INVALID_ARGUMENT', message: `${TASK} an array of type object` });
    assert.equal(code(thrown(() => r.datasetRows(''))), { code: 'INVALID_ARGUMENT', message: `${TASK} "" of type string` });
    // Still fine: no task, or a good one.
    assert.equal(r.datasetRows(), []);
    assert.is(r.readiness('t').ready, false);
  } finally {
    await r.close();
  }
});

test('exportDataset refuses a bad path or options by rejecting', async () => {
  const r = await open();
  const dir = freshDir('method-args-export');
  try {
    const cases: [() => Promise<unknown>, string][] = [
      [() => r.exportDataset(5 as never), 'Expected non-empty string for path but received 5 of type number'],
      [() => r.exportDataset('\0'), 'Expected file path without NUL characters for path but received "\\u0000" of type string'],
      [() => r.exportDataset(join(dir, 'a\0b.jsonl')), 'Expected file path without NUL characters for path but received'],
      [() => r.exportDataset(join(dir, 'x.jsonl'), null as never), 'Expected object for options but received null'],
      [() => r.exportDataset(join(dir, 'x.jsonl'), { task: 7 as never }), `${TASK} 7 of type number`],
    ];
    for (const [call, message] of cases) {
      let promise: Promise<unknown> | undefined;
      assert.not.throws(() => { promise = call(); }, message);
      const err = await rejection(promise!);
      assert.is(err.code, 'INVALID_ARGUMENT', message);
      assert.ok(err.message.startsWith(message), err.message);
    }
    assert.equal(readdirSync(dir), [], 'nothing written');
    assert.is(await r.exportDataset(join(dir, 'ok.jsonl'), {}), 0);
  } finally {
    await r.close();
  }
});

test('chat and complete reject (never throw) when reading the request throws, with the caller\'s own error', async () => {
  const r = await open();
  try {
    const proxy = new Proxy({}, { get: throwing });
    let promise: Promise<unknown> | undefined;
    assert.not.throws(() => { promise = r.chat(proxy as never) as unknown as Promise<unknown>; });
    assert.instance(await rejection(promise!), Mine);
    // A trap the router no longer runs: the request is read, not copied or probed with `in`.
    const probed = new Proxy({ messages: [{ role: 'user', content: 'hi' }] }, { has: throwing, ownKeys: throwing });
    assert.is((await (r.chat(probed as never) as unknown as Promise<{ text: string }>)).text, 'Echo: hi');
    const getter = { prompt: 'x', get maxTokens(): number { return throwing(); } };
    const err = await rejection(r.complete(getter as never) as unknown as Promise<unknown>);
    assert.instance(err, Mine, 'not wrapped as NATIVE_ERROR');
    // The stream form too: its result fails with the caller's error.
    const stream = r.chat({ messages: [{ role: 'user', content: 'hi' }], stream: true, get task(): string { return throwing(); } } as never);
    assert.instance(await rejection(stream.result), Mine);
  } finally {
    await r.close();
  }
});

test('stream must be a boolean', async () => {
  const r = await open();
  try {
    const err = await rejection(r.chat({ messages: [{ role: 'user', content: 'hi' }], stream: 'yes' } as never) as unknown as Promise<unknown>);
    assert.equal(code(err), { code: 'INVALID_ARGUMENT', message: 'Expected boolean for stream but received "yes" of type string' });
    // A streamed call still streams, and its abort still works.
    const s = r.chat({ messages: [{ role: 'user', content: 'hi' }], stream: true });
    const pieces: string[] = [];
    for await (const p of s) pieces.push(p);
    assert.is(pieces.join(''), 'Echo: hi');
  } finally {
    await r.close();
  }
});

test('health() reports a caller\'s backend without health(), or whose health() throws, as not ok instead of rejecting', async () => {
  const answer = async () => ({ text: 'a', usage: { promptTokens: 0, completionTokens: 0, totalTokens: 0 }, model: 'b' });
  const r = await createRouter({
    local: { kind: 'local', model: 'l', answer, health: () => { throw new Mine('no disk'); } } as never,
    remote: { kind: 'remote', model: 'r', answer } as never,
    embedder: false, cacheDir: freshDir('method-args-health'), quiet: true, env: {},
  });
  try {
    const h = await r.health();
    assert.equal({ ok: h.local?.ok, detail: h.local?.detail }, { ok: false, detail: 'no disk' });
    assert.equal({ ok: h.remote?.ok, detail: h.remote?.detail }, { ok: false, detail: 'this backend has no health()' });
  } finally {
    await r.close();
  }
});

test('after close(), CLOSED comes before any argument check', async () => {
  const r = await open();
  await r.close();
  assert.is(thrown(() => r.readiness({} as never)).code, 'CLOSED');
  assert.is(thrown(() => r.datasetRows([1, 2] as never)).code, 'CLOSED');
  assert.is((await rejection(r.exportDataset(5 as never))).code, 'CLOSED');
});

test.run();
