// Held-out calls are answered the way serving answers: under the grammar the
// local backend would use (local-prompt.ts localGrammar), a tool call read
// back as its canonical text, and a shape the local model is never asked
// (no grammar for its schema) left out. Plain rows replay exactly as before.
// The last test runs stories260K under a held-out call's grammar and checks
// the answer with ajv, an independent validator.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ajv } from 'ajv';
import { loadModel } from '../src/index.js';
import { UnderstudyError } from '../src/errors.js';
import type { DatasetRow } from '../src/router/dataset.js';
import { localGrammar, localMessages } from '../src/router/local-prompt.js';
import { heldOutCall, type HeldOutCall } from '../src/train/examples.js';
import { answerAll } from '../src/train/round-worker.js';
import { storiesModel, within } from './helpers.js';

const COLOR = { type: 'object', properties: { color: { enum: ['red', 'blue'] } }, required: ['color'], additionalProperties: false };
const WEATHER = { name: 'get_weather', description: 'The weather', parameters: { type: 'object', properties: { city: { enum: ['Paris', 'Rome'] } }, required: ['city'] } };
const TIME = { name: 'get_time', parameters: { type: 'object', properties: {} } };
const MESSAGES = [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: 'A color?' }];

let nextId = 1;
function row(extra: Partial<DatasetRow> = {}): DatasetRow {
  return {
    id: nextId++, task: 't', kind: 'chat', messages: MESSAGES, answer: '{"color":"red"}',
    params: { temperature: 0, maxTokens: 64, topP: 1, stop: [] }, usage: { promptTokens: 1, completionTokens: 1 } as never,
    model: 'teacher', source: 'call', latencyMs: 1, createdAt: 0, ...extra,
  };
}

test('a plain row replays as it always did: no grammar, no tools', () => {
  assert.equal(heldOutCall(row()), { kind: 'chat', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'A color?' }], maxTokens: 64, stop: [] });
  assert.equal(heldOutCall(row({ kind: 'complete', messages: undefined, prompt: 'Once' })), { kind: 'complete', prompt: 'Once', maxTokens: 64, stop: [] });
});

/** localGrammar's grammar for `call`, checked to be one: undefined on both sides would compare equal. */
function grammarOf(call: Parameters<typeof localGrammar>[0]): string {
  const grammar = localGrammar(call);
  assert.type(grammar, 'string', JSON.stringify(call));
  assert.ok(grammar!.length > 0);
  return grammar!;
}

test("a json_schema row's held-out call carries serving's grammar; json_object its any-object grammar; a complete row too", () => {
  const responseFormat = { type: 'json_schema' as const, name: 'Color', schema: COLOR, strict: true };
  const call = heldOutCall(row({ responseFormat }));
  assert.type(call.grammar, 'string');
  assert.is(call.grammar, localGrammar({ responseFormat }));
  assert.is(call.tools, undefined);
  assert.is(call.unanswerable, undefined);
  assert.is(heldOutCall(row({ responseFormat: { type: 'json_object' } })).grammar, grammarOf({ responseFormat: { type: 'json_object' } }));
  const complete = heldOutCall(row({ kind: 'complete', messages: undefined, prompt: 'Once', responseFormat }));
  assert.is(complete.grammar, grammarOf({ responseFormat }));
});

test('tools: a required or named choice carries the tool-call grammar and the tools; auto only the tools; none neither', () => {
  const tools = [WEATHER, TIME];
  const required = heldOutCall(row({ tools, toolChoice: 'required' }));
  assert.is(required.grammar, grammarOf({ tools, toolChoice: 'required' }));
  assert.equal(required.tools, tools);
  // The prompt is serving's, with the tools described.
  assert.equal(required.messages, localMessages({ messages: MESSAGES, tools, toolChoice: 'required' }));
  const named = heldOutCall(row({ tools, toolChoice: { name: 'get_time' } }));
  assert.is(named.grammar, grammarOf({ tools, toolChoice: { name: 'get_time' } }));
  assert.is.not(named.grammar, required.grammar);
  const auto = heldOutCall(row({ tools }));
  assert.is(auto.grammar, undefined);
  assert.equal(auto.tools, tools);
  const none = heldOutCall(row({ tools, toolChoice: 'none' }));
  assert.is(none.grammar, undefined);
  assert.is(none.tools, undefined);
});

test('a schema serving cannot hold the model to is unanswerable (serving sends it to the remote), with the grammar error as the reason', () => {
  const responseFormat = { type: 'json_schema' as const, schema: { type: 'string', pattern: '^(a|b)+$' } };
  let expected = '';
  try {
    localGrammar({ responseFormat });
  } catch (err) {
    assert.instance(err, UnderstudyError);
    expected = (err as UnderstudyError).message;
  }
  assert.ok(expected, 'the converter refuses a pattern');
  const call = heldOutCall(row({ responseFormat }));
  assert.is(call.unanswerable, expected);
  assert.is(call.grammar, undefined);
});

test('answerAll passes the grammar, reads a tool call back as canonical text, and answers null for an unanswerable call without asking', async () => {
  const seen: Array<{ kind: string; grammar: unknown }> = [];
  const answers = ['```json\n{"arguments": {"city": "Rome"}, "name": "get_weather"}\n```', '{"color": "blue"}', 'plain words'];
  let i = 0;
  const context = {
    clearCache() {},
    chat: (_messages: unknown, options: { grammar?: string }) => {
      seen.push({ kind: 'chat', grammar: options.grammar });
      return { result: Promise.resolve({ text: answers[i++]! }) };
    },
    complete: async (_prompt: unknown, options: { grammar?: string }) => {
      seen.push({ kind: 'complete', grammar: options.grammar });
      return { text: answers[i++]! };
    },
  };
  const calls: HeldOutCall[] = [
    { kind: 'chat', messages: [{ role: 'user', content: 'weather?' }], maxTokens: 8, stop: [], tools: [WEATHER] },
    { kind: 'complete', prompt: 'p', maxTokens: 8, stop: [], grammar: 'root ::= "x"' },
    { kind: 'chat', messages: [{ role: 'user', content: 'q' }], maxTokens: 8, stop: [], unanswerable: 'no grammar' },
    { kind: 'chat', messages: [{ role: 'user', content: 'q' }], maxTokens: 8, stop: [], tools: [WEATHER] },
  ];
  const out = await answerAll(context as never, calls, undefined, new AbortController().signal);
  assert.equal(out, ['{"name":"get_weather","arguments":{"city":"Rome"}}', '{"color": "blue"}', null, 'plain words']);
  assert.equal(seen, [{ kind: 'chat', grammar: undefined }, { kind: 'complete', grammar: 'root ::= "x"' }, { kind: 'chat', grammar: undefined }]);
});

test('stories260K answers a json_schema held-out call with JSON of the schema (ajv), as it would when serving', async () => {
  const model = await within(loadModel(storiesModel, { gpuLayers: 0 }));
  try {
    const context = await within(model.createContext({ contextSize: 512 }));
    const call = heldOutCall(row({ responseFormat: { type: 'json_schema', schema: COLOR } }));
    const [answer] = await within(answerAll(context, [call], 'rwkv-world', new AbortController().signal));
    const validate = new Ajv({ strict: false }).compile(COLOR);
    const value = JSON.parse(answer!);
    assert.ok(validate(value), `${answer}: ${JSON.stringify(validate.errors)}`);
  } finally {
    await model.dispose();
  }
});

test.run();
