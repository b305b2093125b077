// The task a call gets when it names none. byLLM sends one system prompt for
// every `by llm()` function, so calls that differ only in their return schema
// or their tools must still land in different tasks; plain calls keep the
// names they always had (checked against names worked out here with
// node:crypto, and against literals, so dataset.db files on disk keep their tasks).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson, normalize } from '../src/router/request.js';
import { resolveSettings } from '../src/router/config.js';
import { root } from './helpers.js';

const settings = resolveSettings({}, {});
const SYSTEM = 'You are a helpful assistant.';
const messages = [{ role: 'system' as const, content: SYSTEM }, { role: 'user' as const, content: 'Plan a day in Porto.' }];
const task = (extra: object = {}, kind: 'chat' | 'complete' = 'chat') =>
  normalize(kind, kind === 'chat' ? { messages, ...extra } : { prompt: 'Once', ...extra }, settings).task;

const sha12 = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12);

const PLAN = { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city', 'days'] };
const TAG = { type: 'object', properties: { tagline: { type: 'string' } }, required: ['tagline'] };
const schema = (name: string, s: object) => ({ responseFormat: { type: 'json_schema', name, schema: s, strict: true } });
const FORECAST = { name: 'get_forecast', description: 'The forecast', parameters: { type: 'object', properties: { city: { type: 'string' } } } };
const FINISH = { name: 'finish_tool', description: 'The result', parameters: { type: 'object', properties: { final_output: PLAN } } };

test('plain calls keep the names they always had', () => {
  assert.is(task(), `system-${sha12(SYSTEM)}`);
  assert.is(task(), 'system-75357d685f23');
  const two = [{ role: 'system' as const, content: 'Rule one.' }, { role: 'system' as const, content: 'Rule two.' }, { role: 'user' as const, content: 'hi' }];
  assert.is(normalize('chat', { messages: two }, settings).task, `system-${sha12('Rule one.\nRule two.')}`);
  assert.is(normalize('chat', { messages: two }, settings).task, 'system-1d62e26ee3e2');
  assert.is(normalize('chat', { messages: [{ role: 'user', content: 'hi' }] }, settings).task, 'default');
  assert.is(task({}, 'complete'), 'default');
  // What does not tell functions apart leaves the name as it is.
  assert.is(task({ responseFormat: { type: 'text' } }), 'system-75357d685f23');
  assert.is(task({ responseFormat: { type: 'json_object' } }), 'system-75357d685f23');
  assert.is(task({ tools: [FORECAST], toolChoice: 'none' }), 'system-75357d685f23');
  assert.is(task({ tools: [] }), 'system-75357d685f23');
});

test('one system prompt, two return schemas: two tasks; the same schema: the same task', () => {
  const plan = task(schema('TripPlan', PLAN));
  const tag = task(schema('Tagline', TAG));
  assert.match(plan, /^system-75357d685f23-[0-9a-f]{12}$/);
  assert.match(tag, /^system-75357d685f23-[0-9a-f]{12}$/);
  assert.is.not(plan, tag);
  assert.is(task(schema('TripPlan', PLAN)), plan);
  // The name alone tells two functions apart too.
  assert.is.not(task(schema('Itinerary', PLAN)), plan);
  // Key order is the client's spelling, not the schema: the same task.
  const reordered = { required: ['city', 'days'], properties: { days: { type: 'integer' }, city: { type: 'string' } }, type: 'object' };
  assert.is(task(schema('TripPlan', reordered)), plan);
  // strict is how it is enforced, not what is asked for.
  assert.is(task({ responseFormat: { type: 'json_schema', name: 'TripPlan', schema: PLAN } }), plan);
  // The hash is of the name and schema as canonical JSON.
  const expected = sha12(JSON.stringify({ schema: { name: 'TripPlan', schema: { properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city', 'days'], type: 'object' } }, tools: null }));
  assert.is(plan, `system-75357d685f23-${expected}`);
});

test('tools: their names and parameters, in any order, name the task; descriptions and tool choice do not', () => {
  const both = task({ tools: [FORECAST, FINISH], toolChoice: 'required' });
  assert.match(both, /^system-75357d685f23-[0-9a-f]{12}$/);
  assert.is(task({ tools: [FINISH, FORECAST], toolChoice: 'required' }), both);
  assert.is(task({ tools: [FORECAST, FINISH] }), both);
  assert.is(task({ tools: [{ ...FORECAST, description: 'Reworded' }, FINISH] }), both);
  assert.is.not(task({ tools: [FINISH] }), both);
  assert.is.not(task({ tools: [FORECAST, { ...FINISH, parameters: { type: 'object', properties: { final_output: TAG } } }] }), both);
  // A schema and tools together are another shape again.
  assert.is.not(task({ tools: [FORECAST, FINISH], ...schema('TripPlan', PLAN) }), both);
  // Without a system prompt the shape still tells calls apart.
  const bare = normalize('chat', { messages: [{ role: 'user', content: 'hi' }], tools: [FINISH] }, settings).task;
  assert.match(bare, /^default-[0-9a-f]{12}$/);
});

test('an explicit task wins over the derived one', () => {
  assert.is(task({ task: 'plan_trip', ...schema('TripPlan', PLAN) }), 'plan_trip');
});

test('canonicalJson sorts keys at every depth and keeps array order', () => {
  assert.is(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } }), '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}');
});

test("byLLM's fixtures: one system prompt, a task per shape", () => {
  const fixture = (name: string): any => JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'byllm', `${name}.json`), 'utf8'));
  const of = (body: any) => normalize('chat', {
    // Only the system turn counts for the task (byLLM's user turns are content parts).
    messages: [{ role: 'system', content: body.messages[0].content }, { role: 'user', content: 'call' }],
    ...(body.response_format ? { responseFormat: { type: 'json_schema', name: body.response_format.json_schema.name, schema: body.response_format.json_schema.schema } } : {}),
    ...(body.tools ? { tools: body.tools.map((t: any) => ({ name: t.function.name, parameters: t.function.parameters })) } : {}),
  }, settings).task;
  const typed = fixture('typed-return');
  const stream = fixture('stream');
  const toolsCall = fixture('tools-call');
  const finishOnly = fixture('finish-only');
  assert.is(typed.messages[0].content, stream.messages[0].content);
  // The plain str function keeps the system prompt's task; the typed one gets its own.
  assert.is(of(stream), `system-${sha12(stream.messages[0].content)}`);
  assert.ok(of(typed).startsWith(`system-${sha12(typed.messages[0].content)}-`));
  assert.is.not(of(toolsCall), of(finishOnly));
});

test.run();
