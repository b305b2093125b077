// Tools through the router: a remote tool call round trip through the real
// openai client (request and answer in OpenAI's shape), the canonical text the
// cache, dataset and training keep, a local tool call on stories260K held to
// the tool's schema by the grammar (checked with ajv, an independent
// validator), the stream's info, and the exact messages for bad values.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ajv } from 'ajv';
import Database from 'better-sqlite3';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createRouter, LocalBackend, type Router } from '../src/index.js';
import { Dataset } from '../src/router/dataset.js';
import { DATASET_SCHEMA } from '../src/router/store.js';
import { cacheKey, normalize } from '../src/router/request.js';
import { resolveSettings } from '../src/router/config.js';
import { localMessages } from '../src/router/local-prompt.js';
import { rowExample } from '../src/train/examples.js';
import { rejection, storiesModel, within } from './helpers.js';
import { API_KEY, freshDir } from './router-fixture.js';
import { startTeacher, type Teacher } from './teacher.js';

const WEATHER = {
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: {
    type: 'object',
    properties: { city: { enum: ['Paris', 'Rome', 'Oslo'] }, days: { type: 'integer' } },
    required: ['city', 'days'],
  },
};
const TIME = { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string', maxLength: 8 } }, required: ['zone'] } };
const USER = { role: 'user', content: 'What is the weather in Paris?' };

let teacher: Teacher;
let remote: Router;
let local: Router | undefined;
const dirs: string[] = [];

function completions(): any[] {
  return teacher.requests.filter((q) => q.path.endsWith('/chat/completions')).map((q) => q.body);
}

test.before(async () => {
  teacher = await startTeacher();
  // Tools offered and no tool result yet: call get_weather; after the result, answer in words.
  teacher.setAnswer(({ messages, body }) => {
    if (body.tools && messages?.at(-1)?.role !== 'tool') return { toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris', days: 2 } }] };
    return `It is ${messages?.at(-1)?.content ?? '?'} in Paris.`;
  });
  const cacheDir = freshDir('tools');
  dirs.push(cacheDir);
  remote = await createRouter({
    apiBase: teacher.url, apiModel: 'teacher-1', apiKey: API_KEY, cacheDir, local: false, quiet: true, env: {}, retryDelayMs: 10,
  });
});
test.after(async () => {
  await remote.close();
  await local?.close();
  await teacher.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('a remote tool call: tools and tool_choice sent in OpenAI shape, tool_calls read back with the canonical text', async () => {
  const before = completions().length;
  const r = await remote.chat({ task: 'weather', messages: [USER], tools: [WEATHER], toolChoice: 'auto' });
  assert.is(r.route, 'remote');
  assert.is(r.finishReason, 'tool_calls');
  assert.is(r.toolCalls?.length, 1);
  assert.is(r.toolCalls![0]!.name, 'get_weather');
  assert.equal(JSON.parse(r.toolCalls![0]!.arguments), { city: 'Paris', days: 2 });
  assert.ok(r.toolCalls![0]!.id.length > 0);
  assert.is(r.text, '{"name":"get_weather","arguments":{"city":"Paris","days":2}}');
  const body = completions()[before];
  assert.equal(body.tools, [{ type: 'function', function: WEATHER }]);
  assert.is(body.tool_choice, 'auto');
  // Asked whole: an answer that may be a tool call is never streamed from the remote.
  assert.not.ok(body.stream);
});

test('the tool result goes back as a tool message; the answer is text again', async () => {
  const first = await remote.chat({ task: 'weather', messages: [USER], tools: [WEATHER], cache: false });
  const calls = first.toolCalls!;
  const before = completions().length;
  const r = await remote.chat({
    task: 'weather', tools: [WEATHER], cache: false,
    messages: [USER, { role: 'assistant', content: '', toolCalls: calls }, { role: 'tool', toolCallId: calls[0]!.id, content: 'sunny' }],
  });
  assert.is(r.text, 'It is sunny in Paris.');
  assert.is(r.finishReason, 'stop');
  assert.is(r.toolCalls, undefined);
  const sent = completions()[before].messages;
  assert.equal(sent[1], {
    role: 'assistant', content: null,
    tool_calls: [{ id: calls[0]!.id, type: 'function', function: { name: 'get_weather', arguments: calls[0]!.arguments } }],
  });
  assert.equal(sent[2], { role: 'tool', content: 'sunny', tool_call_id: calls[0]!.id });
});

test('a named tool choice is sent as OpenAI\'s { type: function, function: { name } }', async () => {
  const before = completions().length;
  await remote.chat({ task: 'weather', messages: [USER], tools: [WEATHER, TIME], toolChoice: { name: 'get_weather' }, cache: false });
  assert.equal(completions()[before].tool_choice, { type: 'function', function: { name: 'get_weather' } });
});

test('the cache keeps the canonical text: a hit gives the tool calls back; the same call without tools is another key', async () => {
  const call = { task: 'cached-weather', messages: [USER], tools: [WEATHER] };
  const first = await remote.chat(call);
  const before = completions().length;
  const hit = await remote.chat(call);
  assert.is(hit.route, 'cache');
  assert.is(hit.finishReason, 'tool_calls');
  assert.equal(hit.toolCalls!.map((c) => [c.name, JSON.parse(c.arguments)]), first.toolCalls!.map((c) => [c.name, JSON.parse(c.arguments)]));
  assert.is(completions().length, before);
  const plain = await remote.chat({ task: 'cached-weather', messages: [USER] });
  assert.is(plain.route, 'remote');
  assert.is(plain.text, 'It is What is the weather in Paris? in Paris.');
  assert.is(plain.finishReason, 'stop');
  // The keys themselves differ (tools, and the tool choice, are part of them).
  const settings = resolveSettings({}, {});
  const key = (extra: object) => cacheKey(normalize('chat', { task: 't', messages: [USER], ...extra }, settings), 'm');
  assert.is.not(key({ tools: [WEATHER] }), key({}));
  assert.is.not(key({ tools: [WEATHER], toolChoice: 'required' }), key({ tools: [WEATHER] }));
  assert.is(key({ tools: [] }), key({}));
});

test('the dataset row keeps tools, tool choice and the canonical answer; the export has tools and tool_calls', async () => {
  await remote.chat({ task: 'logged-weather', messages: [USER], tools: [WEATHER], toolChoice: 'required', cache: false });
  const [row] = remote.datasetRows('logged-weather');
  assert.equal(row!.tools, [WEATHER]);
  assert.is(row!.toolChoice, 'required');
  assert.is(row!.answer, '{"name":"get_weather","arguments":{"city":"Paris","days":2}}');
  const file = join(dirs[0]!, 'export.jsonl');
  await remote.exportDataset(file, { task: 'logged-weather' });
  const line = JSON.parse(readFileSync(file, 'utf8').trim());
  assert.equal(line.tools, [{ type: 'function', function: WEATHER }]);
  assert.equal(line.messages.at(-1), {
    role: 'assistant', content: null,
    tool_calls: [{ id: 'call_0', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","days":2}' } }],
  });
  // Training renders the row as serving renders the call.
  const example = rowExample(row!) as { messages: unknown };
  assert.equal(example.messages, [...localMessages({ messages: row!.messages!, tools: row!.tools, toolChoice: row!.toolChoice }),
    { role: 'assistant', content: row!.answer }]);
});

test('a dataset.db from before tools gets the column on open: old rows read without tools, new ones with', () => {
  const db = new Database(':memory:');
  db.exec(DATASET_SCHEMA);
  db.prepare(`INSERT INTO dataset (task, kind, input, answer, params, usage, model, source, latency_ms, created_at)
    VALUES ('old', 'chat', '[{"role":"user","content":"hi"}]', 'hello', '{"maxTokens":8,"stop":[]}', '{}', 'm', 'call', 1, 1)`).run();
  const dataset = new Dataset(db);
  const [old] = [...dataset.rows('old')];
  assert.is(old!.answer, 'hello');
  assert.is(old!.tools, undefined);
  dataset.append({
    task: 'new', kind: 'chat', messages: [USER], answer: '{"name":"get_weather","arguments":{}}', tools: [WEATHER], toolChoice: { name: 'get_weather' },
    responseFormat: { type: 'json_object' }, params: { temperature: 0, maxTokens: 8, topP: 1, stop: [] }, usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2 },
    model: 'm', source: 'call', latencyMs: 1,
  });
  const [row] = [...dataset.rows('new')];
  assert.equal([row!.tools, row!.toolChoice, row!.responseFormat], [[WEATHER], { name: 'get_weather' }, { type: 'json_object' }]);
  // Opening it again does not add the column twice.
  new Dataset(db);
  db.close();
});

test('finishReason length when the remote stops at maxTokens', async () => {
  const r = await remote.chat({ task: 'plain', messages: [{ role: 'user', content: 'one two three four five' }], maxTokens: 2, cache: false });
  assert.is(r.finishReason, 'length');
  assert.is(r.text, 'It is');
});

test('a streamed call with tools: no text pieces for a tool call; info names the route before the result', async () => {
  const stream = remote.chat({ task: 'weather', messages: [USER], tools: [WEATHER], cache: false, stream: true });
  const pieces: string[] = [];
  for await (const piece of stream) pieces.push(piece);
  const r = await stream.result;
  assert.equal(pieces, []);
  assert.is(r.finishReason, 'tool_calls');
  assert.equal(await stream.info, { route: 'remote', task: 'weather', model: 'teacher-1' });
  assert.not.ok(completions().at(-1).stream);
});

test('a streamed text answer: info is settled when the first piece arrives', async () => {
  const stream = remote.chat({ task: 'plain', messages: [{ role: 'user', content: 'a longer question to stream in pieces' }], cache: false, stream: true });
  let seen: unknown;
  for await (const _ of stream) {
    // info settled before the piece was pushed: it wins a race with a promise settled now.
    seen ??= await Promise.race([stream.info, Promise.resolve('pending')]);
  }
  assert.equal(seen, { route: 'remote', task: 'plain', model: 'teacher-1' });
  assert.is((await stream.result).text, 'It is a longer question to stream in pieces in Paris.');
});

test('a failed stream rejects info as it rejects result', async () => {
  const stream = remote.chat({ task: 'plain', messages: [USER], route: 'cache', stream: true });
  const err = await rejection(stream.info);
  assert.is(err.code, 'CACHE_MISS');
  assert.is((await rejection(stream.result)).message, err.message);
});

const BAD: [string, Record<string, unknown>, string][] = [
  ['tools not an array', { tools: 'x' }, 'Expected array of { name, description?, parameters? } tools for tools but received "x" of type string'],
  ['a tool name with a space', { tools: [{ name: 'get weather' }] }, 'Expected name of 1 to 64 letters, digits, _ or - for tools[0].name but received "get weather" of type string'],
  ['a repeated tool name', { tools: [{ name: 'f' }, { name: 'f' }] }, 'Expected unique tool names but tools[1].name repeats "f"'],
  ['parameters not an object', { tools: [{ name: 'f', parameters: 5 }] }, 'Expected JSON schema object for tools[0].parameters but received 5 of type number'],
  ['a description not a string', { tools: [{ name: 'f', description: 1 }] }, 'Expected string for tools[0].description but received 1 of type number'],
  ['an unknown tool choice', { tools: [{ name: 'f' }], toolChoice: 'always' },
    'Expected \'auto\', \'none\', \'required\' or { name } object for toolChoice but received "always" of type string'],
  ['a named choice of no offered tool', { tools: [{ name: 'f' }], toolChoice: { name: 'g' } },
    'Expected name of one of the tools (f) for toolChoice.name but received "g" of type string'],
  ['required without tools', { toolChoice: 'required' }, 'Expected tools for toolChoice \'required\' but received none'],
  ['an unknown response format', { responseFormat: { type: 'xml' } }, 'Expected \'text\', \'json_object\' or \'json_schema\' for responseFormat.type but received "xml" of type string'],
  ['json_schema without a schema', { responseFormat: { type: 'json_schema' } }, 'Expected JSON schema object for responseFormat.schema but received undefined of type undefined'],
  ['strict not a boolean', { responseFormat: { type: 'json_schema', schema: {}, strict: 'yes' } }, 'Expected boolean for responseFormat.strict but received "yes" of type string'],
  ['a tool call without an id', { messages: [USER, { role: 'assistant', content: '', toolCalls: [{ id: '', name: 'f', arguments: '{}' }] }] },
    'Expected non-empty string for messages[1].toolCalls[0].id but received "" of type string'],
  ['tool call arguments as an object', { messages: [USER, { role: 'assistant', content: '', toolCalls: [{ id: 'c', name: 'f', arguments: {} }] }] },
    'Expected string for messages[1].toolCalls[0].arguments but received an object of type object'],
];

for (const [what, extra, message] of BAD) {
  test(`INVALID_ARGUMENT: ${what}`, async () => {
    const before = teacher.requests.length;
    const err = await rejection(remote.chat({ task: 'bad', messages: [USER], ...extra } as Parameters<Router['chat']>[0] & { stream?: false }));
    assert.is(err.code, 'INVALID_ARGUMENT');
    assert.is(err.message, message);
    assert.is(teacher.requests.length, before);
  });
}

test('INVALID_ARGUMENT: tools on a complete call', async () => {
  const err = await rejection(remote.complete({ prompt: 'x', tools: [WEATHER] } as { prompt: string }));
  assert.is(err.code, 'INVALID_ARGUMENT');
  assert.is(err.message, 'Expected no tools for a complete call (tools are for chat calls) but received some');
});

test('the local prompt: tools described in the system turn, tool calls as canonical text, results as user turns', () => {
  const messages = localMessages({
    tools: [WEATHER], toolChoice: 'required',
    messages: [{ role: 'system', content: 'Be brief.' }, USER,
      { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Rome","days":1}' }] },
      { role: 'tool', toolCallId: 'call_1', content: 'rain' }],
  });
  assert.is(messages.length, 4);
  assert.is(messages[0]!.role, 'system');
  assert.ok(messages[0]!.content.startsWith('Be brief.\n\nYou can call these tools:\n- get_weather: The weather in a city\n'));
  assert.ok(messages[0]!.content.includes(JSON.stringify(WEATHER.parameters)));
  assert.ok(messages[0]!.content.endsWith('Call one of them: answer with only a JSON object {"name": <tool name>, "arguments": {...}}.'));
  assert.equal(messages[2], { role: 'assistant', content: '{"name":"get_weather","arguments":{"city":"Rome","days":1}}' });
  assert.equal(messages[3], { role: 'user', content: 'Result of get_weather (call 1): rain' });
  // No tools in play: the turns as given.
  assert.equal(localMessages({ messages: [USER], tools: [WEATHER], toolChoice: 'none' }), [USER]);
});

test('a local tool call with toolChoice required: stories260K\'s arguments validate against the tool\'s schema (ajv)', async () => {
  local = await within(createRouter({
    model: storiesModel, cacheDir: freshDir('tools-local'), quiet: true, useApi: false, env: {}, chatTemplate: 'rwkv-world',
    sequences: 2, contextSize: 1024, shadowRate: 0, auditRate: 0, enableCache: false,
  }), 120_000);
  dirs.push(local.cacheDir);
  const validate = new Ajv().compile(WEATHER.parameters);
  for (const [i, choice] of (['required', { name: 'get_time' }] as const).entries()) {
    const r = await within(local.chat({ task: 'weather', messages: [USER], tools: [WEATHER, TIME], toolChoice: choice, maxTokens: 120, seed: i }));
    assert.is(r.route, 'local');
    assert.is(r.finishReason, 'tool_calls', r.text);
    assert.is(r.toolCalls!.length, 1);
    const call = r.toolCalls![0]!;
    const args = JSON.parse(call.arguments);
    if (choice === 'required') {
      assert.ok(call.name === 'get_weather' || call.name === 'get_time', call.name);
      const schema = call.name === 'get_weather' ? WEATHER.parameters : TIME.parameters;
      assert.ok(new Ajv().validate(schema, args), JSON.stringify(args));
    } else {
      assert.is(call.name, 'get_time');
      assert.ok(new Ajv().validate(TIME.parameters, args), JSON.stringify(args));
    }
    assert.is(r.text, JSON.stringify({ name: call.name, arguments: args }));
  }
  // Generations waiting for one of the 2 sequences: the third of three submitted at once.
  const backend = local.local as LocalBackend;
  const call = { kind: 'chat' as const, task: 'q', messages: [USER], params: { temperature: 0, maxTokens: 4, topP: 1, stop: [] } };
  assert.is(backend.queueDepth(), 0);
  const running = [backend.answer(call), backend.answer(call), backend.answer(call)];
  assert.is(backend.queueDepth(), 1);
  await within(Promise.all(running));
  assert.is(backend.queueDepth(), 0);
  // The weather schema itself, on a call that may only pick get_weather.
  const r = await within(local.chat({ task: 'weather', messages: [USER], tools: [WEATHER], toolChoice: { name: 'get_weather' }, maxTokens: 120 }));
  assert.ok(validate(JSON.parse(r.toolCalls![0]!.arguments)), r.text);
});

test.run();
