// Details of OpenAI's API that clients read and the other server tests do not
// reach: GET /v1/models/{id} (the client's models.retrieve), a tool call
// demanded without tools, system_fingerprint, and the usage field that every
// chunk of an include_usage stream carries (null until the last). Over a
// router of MockBackends: no model is needed for the shapes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import OpenAI from 'openai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRouter, MockBackend, startServer, type Router, type UnderstudyServer } from '../src/index.js';
import { http } from './server-fixture.js';
import { startTeacher } from './teacher.js';

let router: Router;
let server: UnderstudyServer;
let client: OpenAI;

test.before(async () => {
  router = await createRouter({
    local: new MockBackend({ answer: 'a local answer', model: 'small-local' }),
    remote: new MockBackend({ answer: 'a remote answer', model: 'openai/big-remote' }),
    embedder: false, cacheDir: mkdtempSync(join(tmpdir(), 'understudy-compat-')), quiet: true, env: {}, trainLocal: false,
  });
  server = await startServer(router, { port: 0 });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

test.after(async () => {
  await server?.close();
  await router?.close();
});

test('models.retrieve: each listed model by its id, slashes included; an unknown one is 404', async () => {
  const listed = (await client.models.list()).data.map((m) => m.id);
  assert.equal(listed, ['openai/big-remote', 'small-local']);
  for (const id of listed) {
    const model = await client.models.retrieve(id);
    assert.is(model.id, id);
    assert.is(model.object, 'model');
  }
  const missing = await http(`${server.url}/v1/models/gpt-9`);
  assert.is(missing.status, 404);
  assert.equal(missing.json, { error: { message: 'The model "gpt-9" does not exist', type: 'invalid_request_error', code: 'NOT_FOUND', param: 'model' } });
});

test('tool_choice required or named without tools is 400; auto and none without tools answer as text', async () => {
  const messages = [{ role: 'user', content: 'hello' }];
  for (const tool_choice of ['required', { type: 'function', function: { name: 'f' } }]) {
    const r = await http(`${server.url}/v1/chat/completions`, { body: { model: 'm', messages, tool_choice } });
    assert.is(r.status, 400, r.text);
    assert.equal(r.json, { error: {
      message: 'Expected tools with tool_choice (a required or named tool call needs tools) but received no tools',
      type: 'invalid_request_error', code: 'INVALID_ARGUMENT', param: 'tool_choice',
    } });
  }
  for (const tool_choice of ['auto', 'none']) {
    const r = await http(`${server.url}/v1/chat/completions`, { body: { model: 'm', messages, tool_choice } });
    assert.is(r.status, 200, r.text);
    assert.is(r.json.choices[0].message.content, 'a remote answer');
  }
});

test('system_fingerprint is null on answers and chunks; with include_usage every chunk has usage, null until the last', async () => {
  const messages = [{ role: 'user' as const, content: 'fingerprint' }];
  const whole = await http(`${server.url}/v1/chat/completions`, { body: { model: 'm', messages } });
  assert.ok('system_fingerprint' in whole.json, whole.text);
  assert.is(whole.json.system_fingerprint, null);

  const streamed = await http(`${server.url}/v1/chat/completions`, { body: { model: 'm', messages, stream: true, stream_options: { include_usage: true } } });
  const chunks = streamed.text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)));
  assert.ok(chunks.length >= 3, streamed.text);
  for (const c of chunks) assert.is(c.system_fingerprint, null);
  for (const c of chunks.slice(0, -1)) assert.is(c.usage, null, JSON.stringify(c));
  assert.equal(chunks.at(-1).choices, []);
  assert.ok(chunks.at(-1).usage.total_tokens >= 0);

  const plain = await http(`${server.url}/v1/chat/completions`, { body: { model: 'm', messages: [{ role: 'user', content: 'no usage' }], stream: true } });
  const plainChunks = plain.text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)));
  assert.ok(plainChunks.length >= 2, plain.text);
  for (const c of plainChunks) assert.not.ok('usage' in c, JSON.stringify(c));
});

test('a remote resting after failures: 503 REMOTE_UNAVAILABLE with Retry-After for the rest it has left', async () => {
  const teacher = await startTeacher();
  const resting = await createRouter({
    local: false, apiBase: teacher.url, apiKey: 'sk-compat-remote-key-1234', retries: 0, cooldownAfter: 1, cooldownMs: 30_000,
    embedder: false, cacheDir: mkdtempSync(join(tmpdir(), 'understudy-compat-rest-')), quiet: true, env: {}, trainLocal: false,
  });
  const restingServer = await startServer(resting, { port: 0 });
  try {
    teacher.faults.push({ kind: 'status', status: 500 });
    const body = { model: 'm', messages: [{ role: 'user', content: 'are you there?' }] };
    const failed = await http(`${restingServer.url}/v1/chat/completions`, { body });
    assert.is(failed.status, 503, failed.text);
    assert.match(failed.json.error.message, /answered HTTP 500: teacher fault: status 500$/);
    const asked = teacher.requests.length;
    const rest = await http(`${restingServer.url}/v1/chat/completions`, { body });
    assert.is(rest.status, 503, rest.text);
    assert.is(rest.json.error.code, 'REMOTE_UNAVAILABLE');
    assert.match(rest.json.error.message, /failed 1 calls in a row; not trying it again for \d+ s$/);
    // Not sent: the remote is resting.
    assert.is(teacher.requests.length, asked);
    const seconds = Number(rest.headers.get('retry-after'));
    assert.ok(Number.isInteger(seconds) && seconds >= 1 && seconds <= 30, `retry-after ${rest.headers.get('retry-after')}`);
  } finally {
    await restingServer.close();
    await resting.close();
    await teacher.close();
  }
});

test.run();
