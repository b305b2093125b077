// Every status of the server's error table over raw HTTP, each with its exact
// OpenAI-shaped body {"error": {message, type, code, param}}: bad JSON, bad
// parameters, a prompt too long for the context, unknown paths, a cache miss,
// a body over the limit, a full queue (429 + Retry-After), the remote's
// failures with nothing to fall back on (a forced remote route), the request
// timeout, a router still loading (or failed to load), and anything else (500).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRouter, MockBackend, UnderstudyError, type Router } from '../src/index.js';
import type { ErrorCode } from '../src/errors.js';
import { startServer, type UnderstudyServer } from '../src/server/app.js';
import { within } from './helpers.js';
import { fixtureRouterOptions, http, startServerFixture, until, type ServerFixture } from './server-fixture.js';

let f: ServerFixture;
const extra: { close(): Promise<unknown> }[] = [];
const dirs: string[] = [];

test.before(async () => {
  // timeout 1 s: a remote that does not answer fails fast with REMOTE_TIMEOUT.
  f = await startServerFixture({ router: { timeout: 1 } });
});
test.after(async () => {
  for (const x of extra.reverse()) await x.close();
  await f?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
test.before.each(() => {
  f.teacher.faults.length = 0;
});

const chat = (content: string, more: Record<string, unknown> = {}) => ({ model: 'x', messages: [{ role: 'user', content }], ...more });
/** What JSON.parse says of `text` (its wording varies between Node versions). */
function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('valid JSON');
}
const err = (message: string, type: string, code: string, param: string | null = null) => ({ error: { message, type, code, param } });

async function another(router: Router | Promise<Router>, options: Parameters<typeof startServer>[1] = {}): Promise<UnderstudyServer> {
  const server = await startServer(router, { port: 0, ...options });
  extra.push(server);
  return server;
}

/** A router whose only backend is a mock failing with the code its last user message names. */
async function failingRouter(): Promise<Router> {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-server-mock-'));
  dirs.push(dir);
  const local = new MockBackend({
    answer: (call) => {
      const code = call.messages!.at(-1)!.content as ErrorCode;
      throw new UnderstudyError(code, `the mock fails with ${code}`);
    },
  });
  const router = await createRouter({ local, remote: false, cacheDir: dir, quiet: true, env: {}, trainLocal: false });
  extra.push(router);
  return router;
}

test('400: a body that is not JSON', async () => {
  const r = await http(`${f.url}/v1/chat/completions`, { body: '{"model": "x", "messages": [' });
  assert.is(r.status, 400);
  assert.equal(r.json, err('the request body is not valid JSON', 'invalid_request_error', 'INVALID_ARGUMENT'));
});

test('400: schema failures name the parameter as the client spelled it', async () => {
  const cases: [unknown, string, string][] = [
    [chat('hi', { temperature: 3 }), 'Expected number <= 2 for temperature but received 3 of type number', 'temperature'],
    [chat('hi', { max_tokens: '5' }), 'Expected integer for max_tokens but received "5" of type string', 'max_tokens'],
    [{ model: 'x', messages: [{ role: 'robot', content: 'hi' }] }, 'Expected one of "system", "developer", "user", "assistant", "tool" for messages[0].role but received "robot" of type string', 'messages[0].role'],
    [chat('hi', { stop: 7 }), 'Expected string or array of strings for stop but received 7 of type number', 'stop'],
    [{ model: 'x' }, 'Missing required parameter: messages', 'messages'],
    [chat('hi', { n: 2 }), 'Expected 1 for n (one choice per request is supported) but received 2 of type number', 'n'],
  ];
  for (const [body, message, param] of cases) {
    const r = await http(`${f.url}/v1/chat/completions`, { body: body as object });
    assert.is(r.status, 400, message);
    assert.equal(r.json, err(message, 'invalid_request_error', 'INVALID_ARGUMENT', param));
  }
  // The router's own check (a task name) comes back the same way.
  const r = await http(`${f.url}/v1/chat/completions`, { body: chat('hi', { metadata: { task: 'no spaces allowed' } }) });
  assert.is(r.status, 400);
  assert.equal(r.json, err('Expected task name of 1 to 100 letters, digits or . : / @ - _ for task but received "no spaces allowed" of type string',
    'invalid_request_error', 'INVALID_ARGUMENT', 'task'));
  // ...and its names are spelled as OpenAI's (tools[0].name is tools[0].function.name there).
  const tool = await http(`${f.url}/v1/chat/completions`, { body: chat('hi', { tools: [{ type: 'function', function: { name: 'bad name!' } }] }) });
  assert.is(tool.status, 400);
  assert.equal(tool.json, err('Expected name of 1 to 64 letters, digits, _ or - for tools[0].name but received "bad name!" of type string',
    'invalid_request_error', 'INVALID_ARGUMENT', 'tools[0].function.name'));
  const choice = await http(`${f.url}/v1/chat/completions`, {
    body: chat('hi', { tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: { type: 'function', function: { name: 'g' } } }),
  });
  assert.is(choice.status, 400);
  assert.equal(choice.json, err('Expected name of one of the tools (f) for toolChoice.name but received "g" of type string',
    'invalid_request_error', 'INVALID_ARGUMENT', 'tool_choice.function.name'));
  // Unknown fields pass; unsupported content parts and a body that is not an object do not.
  const extras = await http(`${f.url}/v1/chat/completions`, { body: chat('extras', { user: 'u1', logit_bias: {}, store: false, parallel_tool_calls: true, some_new_field: [1] }) });
  assert.is(extras.status, 200);
  assert.is(extras.json.choices[0].message.content, 'Answer: extras');
  // null is the same as left out (some clients send every field).
  const nulls = await http(`${f.url}/v1/chat/completions`, {
    body: {
      model: null, messages: [{ role: 'user', content: 'nulls', name: null, tool_call_id: null, tool_calls: null }], max_tokens: null, temperature: null,
      top_p: null, stop: null, seed: null, n: null, stream: null, stream_options: null, metadata: null, response_format: null, tools: null, tool_choice: null,
    },
  });
  assert.is(nulls.status, 200, nulls.text);
  assert.is(nulls.json.choices[0].message.content, 'Answer: nulls');
  const image = await http(`${f.url}/v1/chat/completions`, { body: { model: 'x', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] } });
  assert.is(image.status, 400);
  assert.equal(image.json, err('Expected string, array of text parts or null for messages[0].content but received an array of type object',
    'invalid_request_error', 'INVALID_ARGUMENT', 'messages[0].content'));
  const array = await http(`${f.url}/v1/chat/completions`, { body: '[]' });
  assert.is(array.status, 400);
  assert.equal(array.json, err('Expected object for body but received an array of type object', 'invalid_request_error', 'INVALID_ARGUMENT', 'body'));
  const route = await http(`${f.url}/v1/chat/completions`, { body: chat('hi'), headers: { 'x-understudy-route': 'elsewhere' } });
  assert.is(route.status, 400);
  assert.equal(route.json, err(`Expected 'auto', 'local', 'remote' or 'cache' for X-Understudy-Route but received "elsewhere"`,
    'invalid_request_error', 'INVALID_ARGUMENT', 'X-Understudy-Route'));
});

test('400: completions refuse what they cannot do (no prompt, several prompts, suffix, echo)', async () => {
  const cases: [object, string, string][] = [
    [{ model: 'x' }, 'Missing required parameter: prompt', 'prompt'],
    [{ model: 'x', prompt: ['one', 'two'] }, 'Expected string or array of one string for prompt but received an array of type object', 'prompt'],
    [{ model: 'x', prompt: 'hi', suffix: 'the end' }, 'Expected null (suffix is not supported) for suffix but received "the end" of type string', 'suffix'],
    [{ model: 'x', prompt: 'hi', echo: true }, 'Expected false for echo (echo is not supported) but received true of type boolean', 'echo'],
  ];
  const before = f.teacher.requests.length;
  for (const [body, message, param] of cases) {
    const r = await http(`${f.url}/v1/completions`, { body });
    assert.is(r.status, 400, message);
    assert.equal(r.json, err(message, 'invalid_request_error', 'INVALID_ARGUMENT', param));
  }
  assert.is(f.teacher.requests.length, before, 'no refused request reached the remote');
});

test('400/5xx: embeddings refuse an empty input, an unknown encoding, other dimensions; no embedder is NO_BACKEND', async () => {
  const empty = await http(`${f.url}/v1/embeddings`, { body: { model: 'x', input: [] } });
  assert.is(empty.status, 400);
  // Its message is left out here: it reads "Expected string or array of strings ... but received an array", which does not say the array must not be empty.
  const { message: _emptyMessage, ...emptyRest } = empty.json.error;
  assert.equal(emptyRest, { type: 'invalid_request_error', code: 'INVALID_ARGUMENT', param: 'input' });
  const hex = await http(`${f.url}/v1/embeddings`, { body: { model: 'x', input: 'a cat', encoding_format: 'hex' } });
  assert.is(hex.status, 400);
  assert.equal(hex.json, err('Expected one of "float", "base64" for encoding_format but received "hex" of type string', 'invalid_request_error', 'INVALID_ARGUMENT', 'encoding_format'));
  // The model's own size, read from the router: any other number is refused (no shortening).
  const size = (await within(f.router.embed(['a cat']))).vectors[0]!.length;
  const dims = await http(`${f.url}/v1/embeddings`, { body: { model: 'x', input: 'a cat', dimensions: size + 1 } });
  assert.is(dims.status, 400);
  assert.equal(dims.json, err(`Expected ${size} for dimensions (the embedding model's size; shortening is not supported) but received ${size + 1} of type number`,
    'invalid_request_error', 'INVALID_ARGUMENT', 'dimensions'));
  const same = await http(`${f.url}/v1/embeddings`, { body: { model: 'x', input: 'a cat', dimensions: size, encoding_format: 'float' } });
  assert.is(same.status, 200, same.text);
  assert.is(same.json.data[0].embedding.length, size);

  const dir = mkdtempSync(join(tmpdir(), 'understudy-server-noembed-'));
  dirs.push(dir);
  const router = await createRouter({ local: new MockBackend({ answer: () => 'x' }), remote: false, embedder: false, cacheDir: dir, quiet: true, env: {}, trainLocal: false });
  extra.push(router);
  const server = await another(router);
  const none = await http(`${server.url}/v1/embeddings`, { body: { model: 'x', input: 'a cat' } });
  // 501, not 503: waiting will not bring an embedder, so clients must not retry.
  assert.is(none.status, 501, none.text);
  assert.equal(none.json, err('no embedder: set UNDERSTUDY_EMBEDDING_MODEL, load a local model, or pass the embedder option', 'api_error', 'NO_BACKEND'));
});

test('400: a chat forced local with a schema no grammar can hold', async () => {
  const schema = { type: 'object', properties: { code: { type: 'string', pattern: '^[A-Z]{3}$' } }, required: ['code'] };
  const r = await http(`${f.url}/v1/chat/completions`, {
    body: chat('a code', { response_format: { type: 'json_schema', json_schema: { name: 'code', schema } } }), headers: { 'x-understudy-route': 'local' },
  });
  assert.is(r.status, 400);
  assert.equal(r.json, err('unsupported schema keyword "pattern" at #/properties/code', 'invalid_request_error', 'INVALID_ARGUMENT'));
});

test('400 context_length_exceeded: a prompt longer than the local context, with no remote', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-server-local-'));
  dirs.push(dir);
  const router = await createRouter(fixtureRouterOptions(f.teacher, dir, [], { remote: false, contextSize: 64 }));
  extra.push(router);
  const server = await another(router);
  const r = await http(`${server.url}/v1/chat/completions`, { body: chat('word '.repeat(200)) });
  assert.is(r.status, 400);
  // The prompt as the rwkv-world template renders it, in stories260K's tokens; the context llama.cpp made for contextSize 64 holds 256.
  assert.equal(r.json, err('the prompt has 616 tokens but the context holds 256: shorten the prompt or create the context with a larger contextSize',
    'invalid_request_error', 'context_length_exceeded'));
});

test('404: an unknown path or method, and a cache miss on a forced cache route', async () => {
  const path = await http(`${f.url}/v1/nothing-here?x=1`);
  assert.is(path.status, 404);
  assert.equal(path.json, err('no route for GET /v1/nothing-here', 'invalid_request_error', 'NOT_FOUND'));
  const method = await http(`${f.url}/v1/chat/completions`);
  assert.is(method.status, 404);
  assert.equal(method.json, err('no route for GET /v1/chat/completions', 'invalid_request_error', 'NOT_FOUND'));
  const miss = await http(`${f.url}/v1/chat/completions`, { body: chat('never asked before'), headers: { 'x-understudy-route': 'cache' } });
  assert.is(miss.status, 404);
  assert.equal(miss.json, err('route "cache" was asked for but no cached answer matches this chat call of task default',
    'invalid_request_error', 'CACHE_MISS'));
});

test('413: a body over the limit', async () => {
  const server = await another(f.router, { bodyLimit: 1024 });
  const r = await http(`${server.url}/v1/chat/completions`, { body: chat('x'.repeat(2000)) });
  assert.is(r.status, 413);
  assert.equal(r.json, err("the request body is larger than the server's limit of 1024 bytes", 'invalid_request_error', 'PAYLOAD_TOO_LARGE'));
});

test('429 with Retry-After: QUEUE_FULL and BUSY; 500 for anything else; 503 NO_BACKEND', async () => {
  const server = await another(await failingRouter());
  for (const code of ['QUEUE_FULL', 'BUSY'] as const) {
    const r = await http(`${server.url}/v1/chat/completions`, { body: chat(code) });
    assert.is(r.status, 429);
    assert.is(r.headers.get('retry-after'), '1');
    assert.equal(r.json, err(`the mock fails with ${code}`, 'rate_limit_error', code));
  }
  const other = await http(`${server.url}/v1/chat/completions`, { body: chat('IO_ERROR') });
  assert.is(other.status, 500);
  assert.is(other.headers.get('retry-after'), null);
  assert.equal(other.json, err('the mock fails with IO_ERROR', 'server_error', 'IO_ERROR'));
  const remote = await http(`${server.url}/v1/chat/completions`, { body: chat('hi'), headers: { 'x-understudy-route': 'remote' } });
  assert.is(remote.status, 503);
  assert.equal(remote.json, err('route "remote" was asked for but the remote API is off or not configured', 'api_error', 'NO_BACKEND'));
});

test("502/503/504: the teacher's faults on a forced remote route (no fallback)", async () => {
  const remote = { 'x-understudy-route': 'remote' };
  // The router names the remote by its origin.
  const where = `the remote at ${new URL(f.teacher.url).origin}`;
  const cases: [Parameters<typeof f.teacher.faults.push>[0], number, string, string][] = [
    [{ kind: 'status', status: 400 }, 502, 'REMOTE_REJECTED', `${where} answered HTTP 400: teacher fault: status 400`],
    [{ kind: 'malformed' }, 502, 'REMOTE_BAD_RESPONSE', `${where} sent a response that could not be read: ${jsonError('{"id": "x", "choices": [')}`],
    [{ kind: 'status', status: 503 }, 503, 'REMOTE_UNAVAILABLE', `${where} answered HTTP 503: teacher fault: status 503`],
    [{ kind: 'drop' }, 503, 'REMOTE_UNAVAILABLE', `cannot reach ${where}: UND_ERR_SOCKET`],
    [{ kind: 'delay', ms: 5000 }, 504, 'REMOTE_TIMEOUT', `${where} did not answer in time (1 s)`],
  ];
  for (const [fault, status, code, message] of cases) {
    f.teacher.faults.length = 0;
    f.teacher.faults.push(fault);
    const r = await within(http(`${f.url}/v1/chat/completions`, { body: chat(`fault ${fault.kind}`), headers: remote }));
    assert.is(r.status, status, `${fault.kind}: ${r.text}`);
    assert.equal(r.json, err(message, 'api_error', code), `${fault.kind}: ${r.text}`);
  }
});

test('504 TIMEOUT: the request timeout aborts the call; on a stream already answering, an error event ends it', async () => {
  // A remote-only router with a long remote timeout, so the server's request timeout (1.5 s) is what ends the call.
  const dir = mkdtempSync(join(tmpdir(), 'understudy-server-timeout-'));
  dirs.push(dir);
  const router = await createRouter(fixtureRouterOptions(f.teacher, dir, [], { local: false, timeout: 60 }));
  extra.push(router);
  const server = await another(router, { requestTimeoutMs: 1500 });
  const timedOut = err('the answer was not finished within the request timeout of 1500 ms, so the call was aborted', 'api_error', 'TIMEOUT');
  f.teacher.faults.push({ kind: 'delay', ms: 10_000 });
  const r = await within(http(`${server.url}/v1/chat/completions`, { body: chat('too slow'), headers: { 'x-understudy-route': 'remote' } }));
  assert.is(r.status, 504);
  assert.equal(r.json, timedOut);

  // Pieces every 20 ms without end: the headers went out, so the timeout is an event.
  f.teacher.faults.push({ kind: 'trickle', everyMs: 20 });
  const s = await within(http(`${server.url}/v1/chat/completions`, { body: chat('trickle', { stream: true }), headers: { 'x-understudy-route': 'remote' } }));
  assert.is(s.status, 200);
  assert.is(s.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const events = s.text.split('\n\n').filter(Boolean);
  assert.ok(events.some((e) => e.includes('"drip ')), s.text);
  assert.is(events.at(-1), `data: ${JSON.stringify(timedOut)}`);
  assert.not.ok(s.text.includes('[DONE]'));
});

test('503 while the router loads (health says loading), 200 once it has; 503 with the reason when it failed', async () => {
  let resolve!: (r: Router) => void;
  const server = await another(new Promise<Router>((r) => (resolve = r)));
  const health = await http(`${server.url}/health`);
  assert.is(health.status, 503);
  assert.equal(health.json, { status: 'loading' });
  const early = await http(`${server.url}/v1/chat/completions`, { body: chat('hi') });
  assert.is(early.status, 503);
  assert.equal(early.json, err('the router is still loading: try again shortly', 'api_error', 'NOT_READY'));
  const models = await http(`${server.url}/v1/models`);
  assert.is(models.status, 503);
  assert.is(models.json.error.code, 'NOT_READY');

  resolve(f.router);
  await new Promise((r) => setImmediate(r));
  assert.is((await http(`${server.url}/health`)).status, 200);
  assert.equal((await http(`${server.url}/health`)).json, { status: 'ok' });
  const ready = await http(`${server.url}/v1/chat/completions`, { body: chat('now ready'), headers: { 'x-understudy-route': 'remote' } });
  assert.is(ready.status, 200);
  assert.is(ready.json.choices[0].message.content, 'Answer: now ready');

  const failed = await another(Promise.reject(new UnderstudyError('MODEL_NOT_FOUND', 'no model at /nowhere.gguf')));
  await new Promise((r) => setImmediate(r));
  const h = await http(`${failed.url}/health`);
  assert.is(h.status, 503);
  assert.equal(h.json, { status: 'failed', message: 'the router failed to start: MODEL_NOT_FOUND: no model at /nowhere.gguf' });
  const c = await http(`${failed.url}/v1/chat/completions`, { body: chat('hi') });
  assert.is(c.status, 503);
  assert.equal(c.json, err('the router failed to start: MODEL_NOT_FOUND: no model at /nowhere.gguf', 'api_error', 'NOT_READY'));
});

test('503 CLOSED: close() lets calls finish for its grace, then aborts them (a stream ends with an error event)', async () => {
  // In `extra` too, so a failure before the close below still closes it (a second close is harmless).
  const server = await another(f.router);
  f.teacher.faults.push({ kind: 'delay', ms: 5000 }, { kind: 'trickle', everyMs: 50 });
  const remote = { 'x-understudy-route': 'remote' };
  const before = f.teacher.requests.length;
  const slow = http(`${server.url}/v1/chat/completions`, { body: chat('slow one'), headers: remote });
  // The teacher takes its faults in the order requests reach it: the slow call must be first.
  await until(() => f.teacher.requests.length > before, 'the teacher to receive the slow call');
  // The stream has begun (its headers are out) before the server closes.
  const res = await within(fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...remote }, body: JSON.stringify(chat('trickling', { stream: true })),
  }));
  assert.is(res.status, 200);
  assert.is(f.teacher.requests.length, before + 2);
  await within(server.close({ graceMs: 200 }));
  const closed = err('the server is shutting down: the call was aborted', 'api_error', 'CLOSED');
  const r = await within(slow);
  assert.is(r.status, 503);
  assert.equal(r.json, closed);
  const text = await within(res.text());
  assert.ok(text.includes('"drip '), text);
  assert.ok(text.endsWith(`data: ${JSON.stringify(closed)}\n\n`), text);
  // It no longer listens.
  const after = await fetch(`${server.url}/health`).then(() => 'answered', () => 'refused');
  assert.is(after, 'refused');
});

test.run();
