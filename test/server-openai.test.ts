// The official `openai` client, unchanged, against the server: what the
// client's users rely on. Remote answers come from the loopback teacher
// (deterministic: "Answer: <last user message>"); stories260K writes junk, so
// forced local answers under a grammar (json_schema, tools) are the real test
// that structured answers are valid: they are parsed and checked with ajv, an
// independent validator.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ajv } from 'ajv';
import OpenAI from 'openai';
import type { AdapterInfo } from '../src/router/learner.js';
import { within } from './helpers.js';
import { startServerFixture, type ServerFixture } from './server-fixture.js';

type ChatChunk = OpenAI.Chat.Completions.ChatCompletionChunk;

let f: ServerFixture;
let client: OpenAI;

test.before(async () => {
  f = await startServerFixture();
  client = new OpenAI({ baseURL: `${f.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
});
test.after(async () => {
  await f?.close();
});

const user = (content: string) => [{ role: 'user' as const, content }];

test('chat: the remote answer, its model and usage, and where it came from in the headers', async () => {
  const { data, response } = await within(client.chat.completions.create({ model: 'anything', messages: user('plain chat') }).withResponse());
  assert.is(data.object, 'chat.completion');
  assert.match(data.id, /^chatcmpl-/);
  assert.is(data.model, 'teacher-1');
  assert.is(data.choices.length, 1);
  assert.is(data.choices[0]!.message.role, 'assistant');
  assert.is(data.choices[0]!.message.content, 'Answer: plain chat');
  assert.is(data.choices[0]!.finish_reason, 'stop');
  // The teacher counts words: 2 in, 3 out.
  assert.equal(data.usage, { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });
  assert.is(response.headers.get('x-understudy-route'), 'remote');
  assert.is(response.headers.get('x-understudy-task'), 'default');
});

test('chat streamed: the deltas join to the answer, the role comes first and the finish last', async () => {
  const stream = await within(client.chat.completions.create({ model: 'x', messages: user('streamed chat'), stream: true }));
  const chunks: ChatChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.is(chunks[0]!.choices[0]!.delta.role, 'assistant');
  const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
  assert.is(text, 'Answer: streamed chat');
  assert.is(chunks.at(-1)!.choices[0]!.finish_reason, 'stop');
  assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0]!.id && c.model === 'teacher-1'));
  assert.ok(chunks.every((c) => !c.usage), 'no usage without include_usage');
});

test('chat streamed with include_usage: a final chunk without choices carries the usage', async () => {
  const stream = await within(client.chat.completions.create({
    model: 'x', messages: user('count my words please'), stream: true, stream_options: { include_usage: true },
  }));
  const chunks: ChatChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  const last = chunks.at(-1)!;
  assert.equal(last.choices, []);
  assert.equal(last.usage, { prompt_tokens: 4, completion_tokens: 5, total_tokens: 9 });
  assert.is(chunks.at(-2)!.choices[0]!.finish_reason, 'stop');
});

test('a forced route and the task by header (defaultHeaders), and the task from metadata', async () => {
  const local = new OpenAI({
    baseURL: `${f.url}/v1`, apiKey: 'unused', maxRetries: 0,
    defaultHeaders: { 'X-Understudy-Route': 'local', 'X-Understudy-Task': 'greeting' },
  });
  const { data, response } = await within(local.chat.completions.create({ model: 'x', messages: user('Once upon a time'), max_tokens: 8 }).withResponse());
  assert.is(response.headers.get('x-understudy-route'), 'local');
  assert.is(response.headers.get('x-understudy-task'), 'greeting');
  assert.is(data.model, f.router.local!.model);
  assert.type(data.choices[0]!.message.content, 'string');
  assert.ok(data.usage!.completion_tokens <= 8);

  const viaMetadata = await within(client.chat.completions.create(
    { model: 'x', messages: user('metadata task'), metadata: { task: 'from-metadata' } },
    { headers: { 'X-Understudy-Route': 'remote' } },
  ).withResponse());
  assert.is(viaMetadata.response.headers.get('x-understudy-task'), 'from-metadata');
  assert.is(viaMetadata.response.headers.get('x-understudy-route'), 'remote');
  assert.is(f.router.datasetRows('from-metadata').length, 1);
});

test('sampling parameters reach the remote as the client sent them', async () => {
  const remote = { headers: { 'X-Understudy-Route': 'remote' } };
  const data = await within(client.chat.completions.create({
    model: 'x', messages: user('sampled chat'), temperature: 0.5, top_p: 0.9, stop: ['zzz', 'yyy'], seed: 42, max_tokens: 50,
  }, remote));
  assert.is(data.choices[0]!.message.content, 'Answer: sampled chat');
  const body = f.teacher.requests.at(-1)!.body;
  assert.equal(
    { temperature: body.temperature, top_p: body.top_p, stop: body.stop, seed: body.seed, max_tokens: body.max_tokens },
    { temperature: 0.5, top_p: 0.9, stop: ['zzz', 'yyy'], seed: 42, max_tokens: 50 },
  );
  assert.equal(body.messages, [{ role: 'user', content: 'sampled chat' }]);

  const text = await within(client.completions.create({ model: 'x', prompt: 'sampled prompt', temperature: 1.5, top_p: 0.25, stop: 'qqq', seed: 7, max_tokens: 30 }, remote));
  assert.is(text.choices[0]!.text, 'Answer: sampled prompt');
  const tbody = f.teacher.requests.at(-1)!.body;
  assert.equal(
    { temperature: tbody.temperature, top_p: tbody.top_p, stop: tbody.stop, seed: tbody.seed, max_tokens: tbody.max_tokens },
    { temperature: 1.5, top_p: 0.25, stop: ['qqq'], seed: 7, max_tokens: 30 },
  );
});

test('max_completion_tokens wins over max_tokens: the answer is cut at 2 words with finish_reason length', async () => {
  const remote = { headers: { 'X-Understudy-Route': 'remote' } };
  // The teacher cuts its answer at the limit it receives ("Answer: <3 words>" is 4 words).
  const chat = await within(client.chat.completions.create({ model: 'x', messages: user('three more words'), max_completion_tokens: 2, max_tokens: 50 }, remote));
  assert.is(f.teacher.requests.at(-1)!.body.max_tokens, 2);
  assert.is(chat.choices[0]!.message.content, 'Answer: three');
  assert.is(chat.choices[0]!.finish_reason, 'length');
  assert.is(chat.usage!.completion_tokens, 2);

  // The client's completions type has no max_completion_tokens: sent raw.
  const res = await within(fetch(`${f.url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-understudy-route': 'remote' },
    body: JSON.stringify({ model: 'x', prompt: 'four words right here', max_completion_tokens: 2, max_tokens: 50 }),
  }).then((r) => r.json() as Promise<OpenAI.Completions.Completion>));
  assert.is(f.teacher.requests.at(-1)!.body.max_tokens, 2);
  assert.is(res.choices[0]!.text, 'Answer: four');
  assert.is(res.choices[0]!.finish_reason, 'length');
  assert.is(res.usage!.completion_tokens, 2);
});

test('the exact cache answers a repeated call, and the headers say so', async () => {
  const first = await within(client.chat.completions.create({ model: 'x', messages: user('cache me') }).withResponse());
  const again = await within(client.chat.completions.create({ model: 'x', messages: user('cache me') }).withResponse());
  assert.is(first.response.headers.get('x-understudy-route'), 'remote');
  assert.is(again.response.headers.get('x-understudy-route'), 'cache');
  assert.is(again.data.choices[0]!.message.content, first.data.choices[0]!.message.content);
});

test('completions: plain and streamed', async () => {
  const plain = await within(client.completions.create({ model: 'x', prompt: 'continue this' }));
  assert.is(plain.object, 'text_completion');
  assert.is(plain.choices[0]!.text, 'Answer: continue this');
  assert.is(plain.choices[0]!.finish_reason, 'stop');
  assert.equal(plain.usage, { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });

  const stream = await within(client.completions.create({ model: 'x', prompt: 'stream this', stream: true, stream_options: { include_usage: true } }));
  const chunks: OpenAI.Completions.Completion[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.is(chunks.map((c) => c.choices[0]?.text ?? '').join(''), 'Answer: stream this');
  assert.is(chunks.at(-2)!.choices[0]!.finish_reason, 'stop');
  assert.equal(chunks.at(-1)!.usage, { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });
});

test("embeddings: the client's default (base64) and float give the router's own vectors", async () => {
  const texts = ['a small red cat', 'the old ship at sea'];
  const own = await within(f.router.embed(texts));
  const viaBase64 = await within(client.embeddings.create({ model: 'x', input: texts }));
  const viaFloat = await within(client.embeddings.create({ model: 'x', input: texts, encoding_format: 'float' }));
  for (const res of [viaBase64, viaFloat]) {
    assert.is(res.object, 'list');
    assert.is(res.model, own.model);
    assert.is(res.data.length, 2);
    res.data.forEach((d, i) => {
      assert.is(d.index, i);
      assert.equal(Array.from(Float32Array.from(d.embedding)), Array.from(own.vectors[i]!));
    });
    assert.equal(res.usage, { prompt_tokens: own.promptTokens, total_tokens: own.promptTokens });
  }
  // One text alone is embedded in a batch of its own (float sums in another order): compare with the router's own single embed.
  const ownSingle = await within(f.router.embed([texts[1]!]));
  const single = await within(client.embeddings.create({ model: 'x', input: texts[1]!, encoding_format: 'float' }));
  assert.equal(Array.from(Float32Array.from(single.data[0]!.embedding)), Array.from(ownSingle.vectors[0]!));
});

/** An adapter entry as the learner reports it (only version and status matter to /v1/models). */
function adapterInfo(version: number, status: AdapterInfo['status']): AdapterInfo {
  return {
    version, parent: version > 1 ? version - 1 : null, file: `/nowhere/adapter-${version}.gguf`, baseModel: 'stories260K.gguf', baseName: null,
    rowsUsed: 10, round: version, tasks: {}, heldOut: { before: null, after: null }, createdAt: '2026-01-01T00:00:00.000Z', status,
  };
}

test('models: the remote model and the local one; with a learner, its current adapter', async () => {
  const list = async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push([m.id, m.owned_by]);
    return ids;
  };
  assert.equal(await list(), [['teacher-1', 'remote'], [f.router.local!.model, 'local']]);
  // A stub learner (nothing is trained): adapter 2 is current, 1 was before it.
  f.router.attachLearner(() => ({
    train: () => Promise.reject(new Error('not in this test')),
    adapters: () => [adapterInfo(3, 'rolled-back'), adapterInfo(2, 'current'), adapterInfo(1, 'previous')],
    rollback: () => Promise.reject(new Error('not in this test')),
    close: async () => undefined,
  }));
  const model = f.router.local!.model;
  assert.equal(await list(), [['teacher-1', 'remote'], [model, 'local'], [`${model}:adapter-2`, 'adapter']]);
});

const ajv = new Ajv({ strict: true });

test('json_schema (strict), answered locally under a grammar: the answer parses and validates', async () => {
  const schema = {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 12 },
      mood: { enum: ['happy', 'sad'] },
      friends: { type: 'array', items: { type: 'object', properties: { kind: { enum: ['cat', 'dog'] }, big: { type: 'boolean' } }, required: ['kind', 'big'], additionalProperties: false }, maxItems: 2 },
    },
    required: ['name', 'mood', 'friends'],
    additionalProperties: false,
  };
  const { data, response } = await within(client.chat.completions.create({
    model: 'x', messages: user('Describe a character.'), max_tokens: 200,
    response_format: { type: 'json_schema', json_schema: { name: 'character', schema, strict: true } },
  }, { headers: { 'X-Understudy-Route': 'local' } }).withResponse());
  assert.is(response.headers.get('x-understudy-route'), 'local');
  const text = data.choices[0]!.message.content!;
  const value = JSON.parse(text);
  assert.ok(ajv.validate(schema, value), `${text}: ${ajv.errorsText()}`);
  assert.is(data.choices[0]!.finish_reason, 'stop');
});

test('a tool call, answered locally under a grammar: its arguments validate against the function schema', async () => {
  const parameters = {
    type: 'object',
    properties: { city: { type: 'string', maxLength: 10 }, unit: { enum: ['celsius', 'fahrenheit'] }, days: { enum: [1, 2, 3] } },
    required: ['city', 'unit', 'days'],
    additionalProperties: false,
  };
  const tools = [{ type: 'function' as const, function: { name: 'get_weather', description: 'The forecast for a city', parameters, strict: true } }];
  const { data, response } = await within(client.chat.completions.create({
    model: 'x', messages: user('What is the weather in Paris?'), max_tokens: 200, tools, tool_choice: 'required',
  }, { headers: { 'X-Understudy-Route': 'local' } }).withResponse());
  assert.is(response.headers.get('x-understudy-route'), 'local');
  const choice = data.choices[0]!;
  assert.is(choice.finish_reason, 'tool_calls');
  assert.is(choice.message.content, null);
  assert.is(choice.message.tool_calls!.length, 1);
  const call = choice.message.tool_calls![0]!;
  assert.is(call.type, 'function');
  assert.match(call.id, /^call_/);
  if (call.type !== 'function') throw new Error('not a function call');
  assert.is(call.function.name, 'get_weather');
  const args = JSON.parse(call.function.arguments);
  assert.ok(ajv.validate(parameters, args), `${call.function.arguments}: ${ajv.errorsText()}`);

  // Streamed: the whole call in one delta, then finish_reason tool_calls.
  const stream = await within(client.chat.completions.create({
    model: 'x', messages: user('And in Rome?'), max_tokens: 200, tools, tool_choice: { type: 'function', function: { name: 'get_weather' } }, stream: true,
  }, { headers: { 'X-Understudy-Route': 'local' } }));
  const chunks: ChatChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
  assert.is(calls.length, 1);
  assert.is(calls[0]!.index, 0);
  assert.is(calls[0]!.function!.name, 'get_weather');
  assert.ok(ajv.validate(parameters, JSON.parse(calls[0]!.function!.arguments!)), ajv.errorsText());
  assert.is(chunks.at(-1)!.choices[0]!.finish_reason, 'tool_calls');
});

test.run();
