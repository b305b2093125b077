// What the router keeps of a backend's answer, against a bare OpenAI-shaped
// server on 127.0.0.1 whose every reply the test writes: usage it cannot
// trust, answers cut off by max_tokens, text that looks like a tool call,
// tool calls a cache must give back exactly, tool calls when none were allowed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Counter, Registry } from 'prom-client';
import { createRouter, MockBackend, parseToolCalls, type Router } from '../src/index.js';
import { localMessages } from '../src/router/local-prompt.js';
import { rejection } from './helpers.js';
import { API_KEY, freshDir } from './router-fixture.js';

type Reply = (body: any) => { message?: Record<string, unknown>; finish?: string; usage?: unknown; chunks?: unknown[] };

let server: Server;
let url: string;
let reply: Reply = () => ({ message: { role: 'assistant', content: 'hello' } });
let requests = 0;

test.before(async () => {
  server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      requests++;
      const body = JSON.parse(raw);
      const r = reply(body);
      if (body.stream) {
        res.setHeader('content-type', 'text/event-stream');
        for (const c of r.chunks ?? []) res.write(`data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', model: 'teacher-1', choices: [c] })}\n\n`);
        res.end('data: [DONE]\n\n');
        return;
      }
      res.setHeader('content-type', 'application/json');
      // Written by hand so that a number JSON cannot spell (Infinity) can be sent as 1e400.
      const usage = typeof r.usage === 'string' ? r.usage : JSON.stringify(r.usage ?? { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 });
      const choice = JSON.stringify({ index: 0, message: r.message, finish_reason: r.finish ?? 'stop' });
      res.end(`{"id":"x","object":"chat.completion","model":"teacher-1","choices":[${choice}],"usage":${usage}}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
test.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
test.before.each(() => {
  requests = 0;
});

function remoteRouter(): Promise<Router> {
  return createRouter({
    local: false, embedder: false, apiBase: url, apiKey: API_KEY, apiModel: 'teacher-1', retries: 0,
    cacheDir: freshDir('integrity'), quiet: true, env: {}, shadowRate: 0, auditRate: 0,
  });
}

const tools = [{ name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
const ask = (content: string, extra: Record<string, unknown> = {}) => ({ task: 'qa', messages: [{ role: 'user', content }], temperature: 0, ...extra });
const rows = (router: Router) => router.datasetTasks().reduce((n, t) => n + t.rows, 0);

test('usage a remote reports as negative or infinite is kept as sound counts, and a throwing call listener fails no call', async () => {
  reply = () => ({ message: { role: 'assistant', content: 'hello' }, usage: '{"prompt_tokens":-3,"completion_tokens":1e400,"total_tokens":-1}' });
  const router = await remoteRouter();
  const warnings: string[] = [];
  router.on('warning', (w) => warnings.push(w));
  // prom-client's Counter.inc throws on a negative amount: the metrics hook of the server, in small.
  const tokens = new Counter({ name: 'tokens', help: 'tokens', registers: [new Registry()] });
  router.on('call', (e) => tokens.inc(e.usage.promptTokens));
  router.on('call', () => {
    throw new Error('listener broke');
  });
  try {
    const live = await router.chat(ask('a'));
    const hit = await router.chat(ask('a'));
    assert.equal(live.usage, { promptTokens: 0, completionTokens: 0, totalTokens: 0 });
    assert.is(hit.route, 'cache');
    assert.equal(hit.usage, live.usage);
    assert.is(requests, 1);
    assert.is(warnings.filter((w) => w === "a listener of the 'call' event failed: listener broke").length, 2);
  } finally {
    await router.close();
  }
});

test('an answer cut off by max_tokens is not cached: the same call asks again and still says length', async () => {
  reply = () => ({ message: { role: 'assistant', content: '{"a": [1, 2' }, finish: 'length' });
  const router = await remoteRouter();
  try {
    const first = await router.chat(ask('cut'));
    const second = await router.chat(ask('cut'));
    assert.is(first.finishReason, 'length');
    assert.is(second.finishReason, 'length');
    assert.is(second.route, 'remote');
    assert.is(requests, 2);
  } finally {
    await router.close();
  }
});

test("a remote's plain text that reads as a tool call stays text, live and from the cache", async () => {
  const text = '{"name":"get_weather","arguments":{"city":"Paris"}}';
  reply = () => ({ message: { role: 'assistant', content: text } });
  const router = await remoteRouter();
  try {
    for (const route of ['remote', 'cache']) {
      const r = await router.chat(ask('paris', { tools }));
      assert.is(r.route, route);
      assert.is(r.text, text);
      assert.is(r.toolCalls, undefined);
      assert.is(r.finishReason, 'stop');
    }
  } finally {
    await router.close();
  }
});

test("a remote's tool calls come back from the cache as they went out live: unoffered name, non-JSON arguments, text beside them", async () => {
  reply = () => ({
    message: { role: 'assistant', content: 'Let me look.', tool_calls: [
      { id: 'call_a', type: 'function', function: { name: 'lookup', arguments: 'not json' } },
      { id: 'call_b', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Rome"}' } },
    ] },
    finish: 'tool_calls',
  });
  const router = await remoteRouter();
  try {
    const live = await router.chat(ask('rome', { tools }));
    const hit = await router.chat(ask('rome', { tools }));
    const shape = (r: typeof live) => r.toolCalls?.map((c) => [c.name, c.arguments]);
    assert.equal(shape(live), [['lookup', 'not json'], ['get_weather', '{"city": "Rome"}']]);
    assert.is(hit.route, 'cache');
    assert.equal(shape(hit), shape(live));
    assert.is(live.content, 'Let me look.');
    assert.is(hit.content, 'Let me look.');
    assert.is(hit.finishReason, 'tool_calls');
    assert.is(hit.text, live.text);
    // Ids name one answer's calls: a hit gets its own.
    assert.not.equal(hit.toolCalls![0]!.id, live.toolCalls![0]!.id);
  } finally {
    await router.close();
  }
});

test("tool calls from the remote when tool_choice is 'none' are a bad response, neither cached nor logged", async () => {
  reply = () => ({ message: { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] }, finish: 'tool_calls' });
  const router = await remoteRouter();
  try {
    for (let i = 0; i < 2; i++) {
      const err = await rejection(router.chat(ask('oslo', { tools, toolChoice: 'none' })));
      assert.is(err.code, 'REMOTE_BAD_RESPONSE');
      assert.match(err.message, /sent a response that could not be read: the answer calls tools although the call allowed none/);
    }
    assert.is(requests, 2);
    assert.is(rows(router), 0);
  } finally {
    await router.close();
  }
});

test('a streamed answer (no tools) carrying tool_calls deltas is a bad response', async () => {
  reply = () => ({ chunks: [
    { index: 0, delta: { role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] } },
    { index: 0, delta: {}, finish_reason: 'tool_calls' },
  ] });
  const router = await remoteRouter();
  try {
    const stream = router.chat({ ...ask('stream'), stream: true });
    const err = await rejection(stream.result);
    assert.is(err.code, 'REMOTE_BAD_RESPONSE');
    assert.match(err.message, /the stream calls tools although the call allowed none/);
    assert.is(rows(router), 0);
  } finally {
    await router.close();
  }
});

test('parseToolCalls: a call states its arguments, and they must fit the tool schema', () => {
  assert.is(parseToolCalls('{"name":"get_weather"}', tools), undefined);
  assert.is(parseToolCalls('{"name":"get_weather","arguments":{}}', tools), undefined, 'city is required');
  assert.is(parseToolCalls('{"name":"get_weather","arguments":{"city":5}}', tools), undefined);
  assert.is(parseToolCalls('{"name":"get_weather","arguments":"{\\"city\\":\\"x\\"}"}', tools), undefined, 'arguments as a string');
  const calls = parseToolCalls('[{"name":"get_weather","arguments":{"city":"Oslo"}},{"name":"get_weather","arguments":{"city":"Rome"}}]', tools);
  assert.equal(calls?.map((c) => [c.name, c.arguments]), [['get_weather', '{"city":"Oslo"}'], ['get_weather', '{"city":"Rome"}']]);
  // A schema with keywords ajv does not know is still checked by those it does.
  const loose = [{ name: 'f', parameters: { type: 'object', 'x-vendor': 1, properties: { n: { type: 'integer' } } } }];
  assert.ok(parseToolCalls('{"name":"f","arguments":{"n":1}}', loose));
  assert.is(parseToolCalls('{"name":"f","arguments":{"n":"one"}}', loose), undefined);
});

test("a caller's own backend's text is parsed into calls only when they fit the schema; otherwise the answer stays text", async () => {
  let text = '{"name":"get_weather","arguments":{"city":7}}';
  const own = new MockBackend({ model: 'own', answer: () => text });
  const router = await createRouter({ local: false, remote: own, embedder: false, cacheDir: freshDir('integrity-own'), quiet: true, env: {}, shadowRate: 0, auditRate: 0 });
  try {
    const bad = await router.chat(ask('seven', { tools }));
    assert.is(bad.toolCalls, undefined);
    assert.is(bad.text, text);
    text = '{"name":"get_weather","arguments":{"city":"Lima"}}';
    const good = await router.chat(ask('lima', { tools }));
    assert.equal(good.toolCalls?.map((c) => [c.name, c.arguments]), [['get_weather', '{"city":"Lima"}']]);
    assert.is(good.finishReason, 'tool_calls');
  } finally {
    await router.close();
  }
});

test('the dataset export gives back what the remote answered: text that reads as a call stays text, calls the schema refuses stay calls', async () => {
  const text = '{"name":"get_weather","arguments":{"city":"Paris"}}';
  reply = (body) => (body.messages[0].content === 'as text'
    ? { message: { role: 'assistant', content: text } }
    : { message: { role: 'assistant', content: null, tool_calls: [{ id: 'c9', type: 'function', function: { name: 'get_weather', arguments: '{"city":42}' } }] }, finish: 'tool_calls' });
  const router = await remoteRouter();
  try {
    await router.chat(ask('as text', { tools }));
    await router.chat(ask('as call', { tools }));
    const file = join(freshDir('integrity-export'), 'rows.jsonl');
    await router.exportDataset(file);
    const answers = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l).messages.at(-1));
    assert.equal(answers[0], { role: 'assistant', content: text });
    assert.equal(answers[1], { role: 'assistant', content: null, tool_calls: [{ id: 'call_0', type: 'function', function: { name: 'get_weather', arguments: '{"city":42}' } }] });
  } finally {
    await router.close();
  }
});

test('a tool conversation replayed with other call ids hits the cache; the local prompt names results by position', async () => {
  const turns = (a: string, b: string) => [
    { role: 'user', content: 'weather in two cities?' },
    { role: 'assistant', content: '', toolCalls: [{ id: a, name: 'get_weather', arguments: '{"city":"Oslo"}' }, { id: b, name: 'get_weather', arguments: '{"city":"Rome"}' }] },
    { role: 'tool', toolCallId: b, content: 'sun' },
    { role: 'tool', toolCallId: a, content: 'snow' },
  ];
  reply = () => ({ message: { role: 'assistant', content: 'Oslo: snow, Rome: sun.' } });
  const router = await remoteRouter();
  try {
    const first = await router.chat({ task: 'qa', messages: turns('call_abc', 'call_def'), tools, temperature: 0 });
    const again = await router.chat({ task: 'qa', messages: turns('call_XYZ', 'call_123'), tools, temperature: 0 });
    assert.is(first.route, 'remote');
    assert.is(again.route, 'cache');
    // The calls in the other order (each result still answering its city) is another conversation.
    const swapped = await router.chat({ task: 'qa', messages: turns('call_def', 'call_abc').map((m, i) => (i === 1 ? { ...m, toolCalls: [...m.toolCalls!].reverse() } : m)), tools, temperature: 0 });
    assert.is(swapped.route, 'remote');
  } finally {
    await router.close();
  }
  const prompt = localMessages({ messages: turns('call_r4nd0m', 'call_n01se') as any, tools });
  assert.equal(prompt.slice(-2), [
    { role: 'user', content: 'Result of get_weather (call 2): sun' },
    { role: 'user', content: 'Result of get_weather (call 1): snow' },
  ]);
  assert.not.ok(JSON.stringify(prompt).includes('call_'));
});

test.run();
