// The server's key: off (every route open) and on (every route but /health
// needs Bearer or X-Api-Key), a wrong or missing key, and that neither the
// server's key nor the remote's ever appears in a response body, a header or
// a log line, even when the remote's error message quotes its key.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import OpenAI from 'openai';
import { startServer, type UnderstudyServer } from '../src/server/app.js';
import { within } from './helpers.js';
import { REMOTE_KEY, SERVER_KEY, http, startServerFixture, type ServerFixture } from './server-fixture.js';

let f: ServerFixture;
let guarded: UnderstudyServer;
const guardedLines: string[] = [];
/** Every response seen: status line, headers and body, to search for keys. */
const seen: string[] = [];

test.before(async () => {
  f = await startServerFixture();
  guarded = await startServer(f.router, { port: 0, apiKey: SERVER_KEY, log: (line) => guardedLines.push(line) });
});
test.after(async () => {
  await guarded?.close();
  await f?.close();
});

async function call(url: string, init: Parameters<typeof http>[1] = {}) {
  const r = await within(http(url, init));
  seen.push(`${r.status} ${JSON.stringify([...r.headers])} ${r.text}`);
  return r;
}

const chat = (content: string) => ({ model: 'x', messages: [{ role: 'user', content }] });
const unauthorized = (message: string) => ({ error: { message, type: 'authentication_error', code: 'invalid_api_key', param: null } });

test('auth off: every route answers without a key', async () => {
  assert.is((await call(`${f.url}/v1/models`)).status, 200);
  const r = await call(`${f.url}/v1/chat/completions`, { body: chat('no key needed') });
  assert.is(r.status, 200);
  assert.is(r.json.choices[0].message.content, 'Answer: no key needed');
});

test('auth on: a missing key and a wrong one get 401; /health stays open', async () => {
  const missing = await call(`${guarded.url}/v1/chat/completions`, { body: chat('hi') });
  assert.is(missing.status, 401);
  assert.equal(missing.json, unauthorized('Missing API key: send it as "Authorization: Bearer KEY" or "X-Api-Key: KEY"'));
  const wrongs: Record<string, string>[] = [
    { authorization: 'Bearer wrong-key' },
    { authorization: `Bearer ${SERVER_KEY}x` },
    { authorization: `Bearer ${SERVER_KEY.slice(0, -1)}` },
    { 'x-api-key': 'wrong-key' },
    { authorization: `Basic ${SERVER_KEY}` },
  ];
  for (const headers of wrongs) {
    const r = await call(`${guarded.url}/v1/models`, { headers });
    assert.is(r.status, 401, JSON.stringify(headers));
    const expected = headers.authorization?.startsWith('Basic') ? 'Missing API key: send it as "Authorization: Bearer KEY" or "X-Api-Key: KEY"' : 'Incorrect API key provided';
    assert.equal(r.json, unauthorized(expected));
  }
  // Unknown paths too: nothing is told about the server to a caller without the key.
  const unknown = await call(`${guarded.url}/v1/secret-path`);
  assert.is(unknown.status, 401);
  assert.equal(unknown.json, unauthorized('Missing API key: send it as "Authorization: Bearer KEY" or "X-Api-Key: KEY"'));
  const health = await call(`${guarded.url}/health`);
  assert.is(health.status, 200);
  assert.equal(health.json, { status: 'ok' });
});

test('auth on: the right key as Bearer or X-Api-Key, and through the openai client', async () => {
  const bearer = await call(`${guarded.url}/v1/chat/completions`, { body: chat('with bearer'), headers: { authorization: `Bearer ${SERVER_KEY}` } });
  assert.is(bearer.status, 200);
  assert.is(bearer.json.choices[0].message.content, 'Answer: with bearer');
  const header = await call(`${guarded.url}/v1/models`, { headers: { 'x-api-key': SERVER_KEY } });
  assert.is(header.status, 200);
  assert.is(header.json.object, 'list');
  // A key in the query string is no key, and the log line does not show it.
  assert.is((await call(`${guarded.url}/v1/models?api_key=${SERVER_KEY}`)).status, 401);

  const client = new OpenAI({ baseURL: `${guarded.url}/v1`, apiKey: SERVER_KEY, maxRetries: 0 });
  const answer = await within(client.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'through the client' }] }));
  assert.is(answer.choices[0]!.message.content, 'Answer: through the client');
  const wrong = new OpenAI({ baseURL: `${guarded.url}/v1`, apiKey: 'not-the-key', maxRetries: 0 });
  const e = await within(wrong.models.list().then(() => undefined, (err: unknown) => err));
  assert.instance(e, OpenAI.AuthenticationError);
  assert.is((e as InstanceType<typeof OpenAI.AuthenticationError>).code, 'invalid_api_key');
});

test("the remote's key: sent to the remote, never in a response or a log line, even when the remote quotes it", async () => {
  f.teacher.faults.push({ kind: 'status', status: 401, body: JSON.stringify({ error: { message: `invalid key ${REMOTE_KEY}`, type: 'invalid_request_error' } }) });
  const r = await call(`${f.url}/v1/chat/completions`, { body: chat('quote the key'), headers: { 'x-understudy-route': 'remote' } });
  assert.is(r.status, 502);
  assert.is(r.json.error.code, 'REMOTE_REJECTED');
  assert.match(r.json.error.message, /answered HTTP 401: invalid key \[REDACTED\]$/);
  // The remote did get it (so the checks below could fail).
  assert.ok(f.teacher.requests.some((q) => q.headers.authorization === `Bearer ${REMOTE_KEY}`));
  const stream = await call(`${f.url}/v1/chat/completions`, { body: { ...chat('streamed'), stream: true } });
  assert.is(stream.status, 200);
});

test('no key in any response, header or log line', async () => {
  assert.ok(seen.length >= 15, `${seen.length} responses`);
  // A line is written when its response closes, which may be just after the client has read it:
  // wait for all of them (13 requests to the guarded server, 4 to the open one).
  await within((async () => {
    while (guardedLines.length < 13 || f.serverLines.length < 4) await new Promise((r) => setTimeout(r, 5));
  })(), 10_000, 'log lines');
  assert.is(guardedLines.length, 13, guardedLines.join('\n'));
  assert.is(f.serverLines.length, 4, f.serverLines.join('\n'));
  assert.ok(f.routerLines.length >= 3);
  for (const text of [...seen, ...guardedLines, ...f.serverLines, ...f.routerLines]) {
    assert.not.ok(text.includes(SERVER_KEY), text);
    assert.not.ok(text.includes(REMOTE_KEY), text);
  }
  // Every request got its one log line (method, path without the query, status).
  assert.ok(guardedLines.some((l) => /^GET \/v1\/models 401 [\d.]+ms route=- task=-$/.test(l)), guardedLines.join('\n'));
  assert.ok(f.serverLines.some((l) => /^POST \/v1\/chat\/completions 502 [\d.]+ms route=- task=-$/.test(l)), f.serverLines.join('\n'));
});

test.run();
