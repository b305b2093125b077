// The canonical tool-call text and its parser (src/router/tool-calls.ts):
// what counts as a call of an offered tool and what stays text, the round trip
// toolCallText -> parseToolCalls, and a local answer under tool_choice 'auto'
// (no grammar: the router parses what the model wrote) becoming toolCalls only
// when it names a known tool.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRouter, MockBackend, parseToolCalls, toolCallText, type ToolSpec } from '../src/index.js';
import { within } from './helpers.js';

const weather: ToolSpec = {
  name: 'get_weather',
  description: 'The forecast for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city'], additionalProperties: false },
};
const time: ToolSpec = { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } } } };
const tools = [weather, time];

/** The calls without their fresh ids (names and parsed arguments), or undefined. */
function parsed(text: string, offered: readonly ToolSpec[] | undefined = tools) {
  return parseToolCalls(text, offered)?.map((c) => ({ name: c.name, arguments: JSON.parse(c.arguments) as unknown }));
}

test('one canonical call: name and arguments, a fresh call_ id each time', () => {
  const text = '{"name":"get_weather","arguments":{"city":"Paris","days":2}}';
  assert.equal(parsed(text), [{ name: 'get_weather', arguments: { city: 'Paris', days: 2 } }]);
  const a = parseToolCalls(text, tools)!;
  const b = parseToolCalls(text, tools)!;
  assert.match(a[0]!.id, /^call_[A-Za-z0-9_-]{16}$/);
  assert.is.not(a[0]!.id, b[0]!.id);
  // Arguments come back as compact JSON text, as OpenAI sends them.
  assert.is(a[0]!.arguments, '{"city":"Paris","days":2}');
  // Whitespace around it is no matter.
  assert.equal(parsed(`\n  ${text}  \n`), [{ name: 'get_weather', arguments: { city: 'Paris', days: 2 } }]);
});

test('an array of calls, in order; an empty array is no call', () => {
  const text = '[{"name":"get_time","arguments":{"zone":"UTC"}},{"name":"get_weather","arguments":{"city":"Rome"}}]';
  assert.equal(parsed(text), [
    { name: 'get_time', arguments: { zone: 'UTC' } },
    { name: 'get_weather', arguments: { city: 'Rome' } },
  ]);
  assert.is(parseToolCalls('[]', tools), undefined);
  // One item that is not a call makes the whole answer text.
  assert.is(parseToolCalls('[{"name":"get_time","arguments":{}},{"name":"nope","arguments":{}}]', tools), undefined);
  assert.is(parseToolCalls('[{"name":"get_time","arguments":{}}, 3]', tools), undefined);
});

test('a call in a ```json (or bare ```) fence is a call; a call inside prose is not', () => {
  const call = '{"name":"get_weather","arguments":{"city":"Oslo"}}';
  assert.equal(parsed('```json\n' + call + '\n```'), [{ name: 'get_weather', arguments: { city: 'Oslo' } }]);
  assert.equal(parsed('```\n' + call + '\n```'), [{ name: 'get_weather', arguments: { city: 'Oslo' } }]);
  assert.is(parseToolCalls(`Sure, I will call it: ${call}`, tools), undefined);
  assert.is(parseToolCalls(`${call} is what I would send.`, tools), undefined);
  assert.is(parseToolCalls(`Here:\n\`\`\`json\n${call}\n\`\`\`\nDone.`, tools), undefined);
});

test('not calls: an unknown tool, extra keys, arguments that are not an object or that the schema refuses, no arguments', () => {
  const notCalls = [
    '{"name":"launch_rocket","arguments":{}}',
    '{"name":"get_weather","arguments":{"city":"Paris"},"id":"call_1"}',
    '{"name":"get_weather","arguments":{"city":"Paris"},"type":"function"}',
    '{"name":"get_weather","arguments":"{\\"city\\":\\"Paris\\"}"}',
    '{"name":"get_weather","arguments":["Paris"]}',
    '{"name":"get_weather","arguments":null}',
    '{"name":"get_weather","arguments":7}',
    '{"name":"get_weather"}',
    '{"name":"get_weather","arguments":{"town":"Paris"}}',
    '{"name":"get_weather","arguments":{"city":"Paris","days":"two"}}',
    '{"name":7,"arguments":{}}',
    '{"arguments":{"city":"Paris"}}',
    '"get_weather"',
    'get_weather(city="Paris")',
    '{"name":"get_weather","arguments":{"city":"Paris"}',
    '',
  ];
  for (const text of notCalls) assert.is(parseToolCalls(text, tools), undefined, text);
  // Without tools offered nothing is a call.
  const call = '{"name":"get_weather","arguments":{"city":"Paris"}}';
  assert.is(parseToolCalls(call, undefined), undefined);
  assert.is(parseToolCalls(call, []), undefined);
  // A tool without a parameters schema takes any arguments object.
  assert.equal(parsed('{"name":"free","arguments":{"anything":[1,2]}}', [{ name: 'free' }]), [{ name: 'free', arguments: { anything: [1, 2] } }]);
});

test('toolCallText: one call is an object, several an array; parseToolCalls reads it back', () => {
  const one = [{ id: 'call_a', name: 'get_weather', arguments: '{"city":"Lima","days":3}' }];
  assert.is(toolCallText(one), '{"name":"get_weather","arguments":{"city":"Lima","days":3}}');
  const two = [...one, { id: 'call_b', name: 'get_time', arguments: '{"zone":"CET"}' }];
  assert.is(toolCallText(two), '[{"name":"get_weather","arguments":{"city":"Lima","days":3}},{"name":"get_time","arguments":{"zone":"CET"}}]');
  for (const calls of [one, two]) {
    const back = parseToolCalls(toolCallText(calls), tools)!;
    assert.equal(back.map((c) => [c.name, c.arguments]), calls.map((c) => [c.name, c.arguments]));
    assert.ok(back.every((c, i) => c.id !== calls[i]!.id), 'read back with fresh ids');
    assert.is(toolCallText(back), toolCallText(calls));
  }
});

test("a local answer under tool_choice 'auto': a known tool's call becomes toolCalls, an unknown name stays text", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-tool-calls-'));
  // The local backend writes, for each question, what a model might: a call, a call of a tool not offered, prose.
  const answers: Record<string, string> = {
    'weather?': '{"name":"get_weather","arguments":{"city":"Paris"}}',
    'rocket?': '{"name":"launch_rocket","arguments":{"when":"now"}}',
    'hello?': 'Hello there.',
  };
  const local = new MockBackend({ answer: (call) => answers[String(call.messages!.at(-1)!.content)]! });
  const router = await createRouter({ local, remote: false, embedder: false, cacheDir: dir, quiet: true, env: {}, trainLocal: false });
  try {
    const ask = (content: string) => within(router.chat({ messages: [{ role: 'user', content }], tools, toolChoice: 'auto', route: 'local' }));
    const call = await ask('weather?');
    assert.is(call.route, 'local');
    assert.is(call.finishReason, 'tool_calls');
    assert.equal(call.toolCalls!.map((c) => [c.name, c.arguments]), [['get_weather', '{"city":"Paris"}']]);
    assert.match(call.toolCalls![0]!.id, /^call_/);
    assert.is(call.text, '{"name":"get_weather","arguments":{"city":"Paris"}}');
    // The backend was offered the tools under 'auto'.
    assert.is(local.calls[0]!.toolChoice, 'auto');
    assert.equal(local.calls[0]!.tools!.map((t) => t.name), ['get_weather', 'get_time']);

    const unknown = await ask('rocket?');
    assert.is(unknown.finishReason, 'stop');
    assert.is(unknown.toolCalls, undefined);
    assert.is(unknown.text, answers['rocket?']);

    const prose = await ask('hello?');
    assert.is(prose.finishReason, 'stop');
    assert.is(prose.toolCalls, undefined);
    assert.is(prose.text, 'Hello there.');
  } finally {
    await router.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
