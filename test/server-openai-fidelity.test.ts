// Where the server follows OpenAI's API closely enough for its clients: what it
// refuses (log probabilities), how text parts join, the first chunk of a
// tool-call stream, text beside tool calls, and the embeddings endpoint's
// errors in its own terms. Routers are mocks and callers' own backends.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Backend, BackendCall } from '../src/index.js';
import { createRouter, MockBackend, type Router } from '../src/index.js';
import { startServer, type UnderstudyServer } from '../src/server/app.js';
import { freshDir } from './router-fixture.js';
import { http } from './server-fixture.js';

const weather = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };

/** A caller's own backend: tool calls with text beside them when tools are offered, else an echo. */
const own: Backend = {
  kind: 'mock',
  model: 'own',
  async answer(call: BackendCall) {
    const usage = { promptTokens: 1, completionTokens: 1, totalTokens: 2 };
    if (call.tools?.length) {
      return { text: '', toolCalls: [{ id: 'x', name: 'get_weather', arguments: '{"city":"Oslo"}' }], content: 'Checking the weather.', usage, model: 'own' };
    }
    const last = call.messages?.at(-1)?.content ?? call.prompt ?? '';
    return { text: `Echo: ${last}`, usage, model: 'own' };
  },
  async health() {
    return { ok: true, latencyMs: 0, detail: 'own' };
  },
  async close() {},
};

let router: Router;
let server: UnderstudyServer;
let embedless: Router;
let embedlessServer: UnderstudyServer;

test.before(async () => {
  router = await createRouter({
    local: false, remote: own, embedder: async (texts) => texts.map(() => new Float32Array([1, 0])),
    cacheDir: freshDir('fidelity'), quiet: true, env: {}, shadowRate: 0, auditRate: 0,
  });
  server = await startServer(router, { port: 0 });
  embedless = await createRouter({
    local: false, remote: new MockBackend(), embedder: false, cacheDir: freshDir('fidelity-none'), quiet: true, env: {}, shadowRate: 0, auditRate: 0,
  });
  embedlessServer = await startServer(embedless, { port: 0 });
});
test.after(async () => {
  await server.close();
  await embedlessServer.close();
  await router.close();
  await embedless.close();
});

const chat = (body: object) => http(`${server.url}/v1/chat/completions`, { body });
const invalid = (message: string, param: string) => ({ error: { message, type: 'invalid_request_error', code: 'INVALID_ARGUMENT', param } });

test('log probabilities are refused (400), as n > 1 is, rather than silently left out', async () => {
  const messages = [{ role: 'user', content: 'hi' }];
  const a = await chat({ messages, logprobs: true });
  assert.is(a.status, 400);
  assert.equal(a.json, invalid('Expected false for logprobs (log probabilities are not supported) but received true of type boolean', 'logprobs'));
  const b = await chat({ messages, top_logprobs: 3 });
  assert.equal(b.json, invalid('Expected 0 for top_logprobs (log probabilities are not supported) but received 3 of type number', 'top_logprobs'));
  const c = await http(`${server.url}/v1/completions`, { body: { prompt: 'hi', logprobs: 2 } });
  assert.is(c.status, 400);
  assert.equal(c.json, invalid('Expected null for logprobs (log probabilities are not supported) but received 2 of type number', 'logprobs'));
  // Said off, they are no request for anything.
  assert.is((await chat({ messages, logprobs: false, top_logprobs: 0 })).status, 200);
});

test("text content parts are joined by newlines", async () => {
  const r = await chat({ messages: [{ role: 'user', content: [{ type: 'text', text: 'first' }, { type: 'text', text: 'second' }] }] });
  assert.is(r.json.choices[0].message.content, 'Echo: first\nsecond');
});

test('tool calls keep the text beside them: the message content, and a stream whose first chunk says content null', async () => {
  const messages = [{ role: 'user', content: 'weather?' }];
  const whole = await chat({ messages, tools: [weather] });
  const message = whole.json.choices[0].message;
  assert.is(message.content, 'Checking the weather.');
  assert.equal(message.tool_calls.map((c: any) => [c.type, c.function.name, c.function.arguments]), [['function', 'get_weather', '{"city":"Oslo"}']]);
  assert.is(whole.json.choices[0].finish_reason, 'tool_calls');

  const streamed = await chat({ messages: [{ role: 'user', content: 'weather, streamed?' }], tools: [weather], stream: true });
  const chunks = streamed.text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)));
  const deltas = chunks.map((c) => c.choices[0]?.delta);
  assert.equal(deltas[0], { role: 'assistant', content: null });
  assert.equal(deltas[1], { content: 'Checking the weather.' });
  assert.is(deltas[2].tool_calls[0].function.name, 'get_weather');
  assert.is(chunks.at(-1).choices[0].finish_reason, 'tool_calls');

  // A text stream still opens with content ''.
  const text = await chat({ messages: [{ role: 'user', content: 'plain' }], stream: true });
  const first = JSON.parse(text.text.split('\n\n')[0]!.slice(6));
  assert.equal(first.choices[0].delta, { role: 'assistant', content: '' });
});

test('embeddings: errors name input, the parameter the client sent; no embedder is 501 (waiting will not help)', async () => {
  const many = await http(`${server.url}/v1/embeddings`, { body: { input: Array.from({ length: 2049 }, () => 'x') } });
  assert.is(many.status, 400);
  assert.equal(many.json, invalid('Expected at most 2048 texts for input but received an array of length 2049', 'input'));
  const none = await http(`${embedlessServer.url}/v1/embeddings`, { body: { input: 'x' } });
  assert.is(none.status, 501);
  assert.is(none.json.error.code, 'NO_BACKEND');
  assert.is(none.json.error.type, 'api_error');
  assert.is(none.headers.get('retry-after'), null);
});

test.run();
