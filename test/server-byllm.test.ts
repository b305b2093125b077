// Jac's byLLM against the server: the request bodies byLLM sends (through
// LiteLLM, or through the openai client in its proxy mode), replayed from
// test/fixtures/byllm/ with plain HTTP, and checked the way byLLM reads the
// answers: a typed return parses and validates against the schema it sent, a
// finish_tool call's arguments validate against that tool's parameters, a
// stream ends with a usage chunk. Validation is ajv's, not ours. Forced local
// calls show the grammar holds stories260K to the schema.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { createRouter, type Router } from '../src/index.js';
import { deriveTask } from '../src/router/request.js';
import { startServer, type UnderstudyServer } from '../src/server/app.js';
import { API_KEY, freshDir } from './distill-fixture.js';
import { root, storiesModel } from './helpers.js';
import { ngramEmbed } from './ngram-embedder.js';
import { startTeacher, type Teacher } from './teacher.js';

const fixture = (name: string): any => JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'byllm', `${name}.json`), 'utf8'));

const typed = fixture('typed-return');
const toolsCall = fixture('tools-call');
const toolsResult = fixture('tools-result');
const finishOnly = fixture('finish-only');
const streamed = fixture('stream');
const withMetadata = fixture('metadata');

// What a remote model would answer: a TripPlan valid for the fixtures' schema.
const PLAN = {
  city: 'Porto',
  pace: 'relaxed',
  stops: [{ place: 'Livraria Lello', hours: 1 }, { place: 'Ribeira', hours: 3 }],
  note: null,
};
const FORECAST_ARGS = { city: 'Porto', days: 1 };
const TAGLINE = 'Lisbon: seven hills, one tram, endless light.';

const ajv = new Ajv({ strict: false, allErrors: true });
/** ajv's verdict on `value` against `schema`, with its errors when it fails. */
function check(schema: object, value: unknown): string {
  const validate = ajv.compile(schema);
  return validate(value) ? 'valid' : ajv.errorsText(validate.errors);
}

const toolParameters = (body: any, name: string) => body.tools.find((t: any) => t.function.name === name).function.parameters;

const cacheDir = freshDir('byllm');
let teacher: Teacher;
let router: Router;
let server: UnderstudyServer;

test.before(async () => {
  teacher = await startTeacher({
    // The remote's side of byLLM's loop: a typed return as JSON text; with
    // tools, a get_forecast call first, then (once a tool result is in) finish_tool,
    // as message.tool_calls.
    answer: ({ body }) => {
      if (body.response_format?.type === 'json_schema') return JSON.stringify(PLAN);
      if (Array.isArray(body.tools)) {
        const toolRan = body.messages.some((m: any) => m.role === 'tool');
        return toolRan
          ? { toolCalls: [{ name: 'finish_tool', arguments: { final_output: PLAN } }] }
          : { toolCalls: [{ name: 'get_forecast', arguments: FORECAST_ARGS }] };
      }
      return TAGLINE;
    },
  });
  router = await createRouter({
    model: storiesModel,
    cacheDir,
    quiet: true,
    env: {},
    apiBase: teacher.url,
    apiModel: 'teacher-1',
    apiKey: API_KEY,
    // stories260K has no chat template; rwkv-world is the one it handles (see distill-fixture.ts).
    chatTemplate: 'rwkv-world',
    contextSize: 4096,
    sequences: 1,
    // Room for a whole JSON answer: byLLM sends no max_tokens, and a cut answer is not JSON.
    maxTokens: 1024,
    enableCache: false,
    trainLocal: false,
    shadowRate: 0,
    auditRate: 0,
    retryDelayMs: 10,
    embedder: ngramEmbed,
  } as Parameters<typeof createRouter>[0]);
  server = await startServer(router, { port: 0 });
});

test.after(async () => {
  await server?.close();
  await router?.close();
  await teacher?.close();
  rmSync(cacheDir, { recursive: true, force: true });
});

async function post(body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return res;
}

async function postJson(body: unknown, headers: Record<string, string> = {}) {
  const res = await post(body, headers);
  const json: any = await res.json();
  assert.is(res.status, 200, JSON.stringify(json));
  return { res, json, route: res.headers.get('x-understudy-route'), task: res.headers.get('x-understudy-task') };
}

/** The body the router sent the teacher for the last completion. */
const forwarded = () => teacher.requests.filter((r) => r.path.endsWith('/chat/completions')).at(-1)!.body;
const remoteCalls = () => teacher.requests.filter((r) => r.path.endsWith('/chat/completions')).length;

test('typed return: the json_schema answer parses and validates against the schema byLLM sent', async () => {
  const { json, route } = await postJson(typed);
  assert.is(route, 'remote');
  const choice = json.choices[0];
  assert.is(choice.finish_reason, 'stop');
  // The teacher's answer passes through unchanged (the forced-local test below is the one the schema can fail).
  assert.equal(JSON.parse(choice.message.content), PLAN);
  // The remote got the schema as byLLM sent it, and both text parts of the user turn.
  const sent = forwarded();
  assert.equal(sent.response_format, typed.response_format);
  const user = JSON.stringify(sent.messages.find((m: any) => m.role === 'user').content);
  for (const part of typed.messages[1].content) assert.ok(user.includes(JSON.stringify(part.text).slice(1, -1)), part.text);
});

test('typed return, forced local: the grammar makes stories260K write JSON of the schema', async () => {
  const before = remoteCalls();
  const { json, route } = await postJson(typed, { 'x-understudy-route': 'local' });
  assert.is(route, 'local');
  assert.is(remoteCalls(), before);
  const choice = json.choices[0];
  assert.is(choice.finish_reason, 'stop');
  const value = JSON.parse(choice.message.content);
  assert.is(check(typed.response_format.json_schema.schema, value), 'valid');
});

test('tools: the first ReAct request gets a get_forecast call whose arguments validate; tools and tool_choice reach the remote', async () => {
  const { json, route } = await postJson(toolsCall);
  assert.is(route, 'remote');
  const choice = json.choices[0];
  assert.is(choice.finish_reason, 'tool_calls');
  assert.is(choice.message.content, null);
  assert.is(choice.message.tool_calls.length, 1);
  const call = choice.message.tool_calls[0];
  assert.is(call.type, 'function');
  assert.match(call.id, /^call_/);
  assert.is(call.function.name, 'get_forecast');
  const args = JSON.parse(call.function.arguments);
  assert.is(check(toolParameters(toolsCall, 'get_forecast'), args), 'valid');
  assert.equal(args, FORECAST_ARGS);
  const sent = forwarded();
  assert.equal(sent.tools, toolsCall.tools);
  assert.is(sent.tool_choice, 'required');
});

test('tools: the follow-up with the tool result gets finish_tool, its arguments valid; the tool turns reach the remote', async () => {
  const { json } = await postJson(toolsResult);
  const choice = json.choices[0];
  assert.is(choice.finish_reason, 'tool_calls');
  const call = choice.message.tool_calls[0];
  assert.is(call.function.name, 'finish_tool');
  const args = JSON.parse(call.function.arguments);
  assert.equal(args, { final_output: PLAN });
  const sent = forwarded();
  assert.equal(sent.tools, toolsResult.tools);
  assert.is(sent.tool_choice, 'required');
  const assistant = sent.messages.find((m: any) => m.role === 'assistant');
  assert.equal(assistant.tool_calls, toolsResult.messages[2].tool_calls);
  const tool = sent.messages.find((m: any) => m.role === 'tool');
  assert.is(tool.tool_call_id, 'call_wx01');
  assert.is(tool.content, toolsResult.messages[3].content);
});

test('tools, forced local: stories260K calls one of the offered tools, with valid arguments', async () => {
  const { json, route } = await postJson(toolsCall, { 'x-understudy-route': 'local' });
  assert.is(route, 'local');
  const choice = json.choices[0];
  assert.is(choice.finish_reason, 'tool_calls');
  const call = choice.message.tool_calls[0];
  assert.ok(['get_forecast', 'finish_tool'].includes(call.function.name), call.function.name);
  assert.is(check(toolParameters(toolsCall, call.function.name), JSON.parse(call.function.arguments)), 'valid');
});

test('finish_tool alone, forced local: the answer is a finish_tool call whose arguments validate', async () => {
  const { json, route } = await postJson(finishOnly, { 'x-understudy-route': 'local' });
  assert.is(route, 'local');
  const choice = json.choices[0];
  assert.is(choice.finish_reason, 'tool_calls');
  assert.is(choice.message.content, null);
  const call = choice.message.tool_calls[0];
  assert.is(call.function.name, 'finish_tool');
  assert.is(check(toolParameters(finishOnly, 'finish_tool'), JSON.parse(call.function.arguments)), 'valid');
});

/** The `data:` payloads of an SSE body, in order. */
function events(text: string): string[] {
  return text.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6));
}

test('stream: pieces, a finish chunk, then the usage chunk include_usage asked for, then [DONE]', async () => {
  const res = await post(streamed);
  assert.is(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  assert.is(res.headers.get('x-understudy-route'), 'remote');
  const data = events(await res.text());
  assert.is(data.at(-1), '[DONE]');
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
  for (const c of chunks) assert.is(c.object, 'chat.completion.chunk');
  assert.equal(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
  const usage = chunks.at(-1);
  assert.equal(usage.choices, []);
  for (const k of ['prompt_tokens', 'completion_tokens', 'total_tokens']) assert.ok(Number.isInteger(usage.usage[k]), k);
  assert.is(usage.usage.total_tokens, usage.usage.prompt_tokens + usage.usage.completion_tokens);
  assert.ok(usage.usage.completion_tokens > 0);
  const finish = chunks.at(-2);
  assert.is(finish.choices[0].finish_reason, 'stop');
  const text = chunks.slice(0, -1).map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.is(text, TAGLINE);
});

test('metadata: proxy mode nulls and byLLM metadata are accepted; a plain call\'s task is derived from the system prompt alone', async () => {
  const { json, task, route } = await postJson(withMetadata);
  assert.is(route, 'remote');
  assert.is(json.choices[0].message.content, TAGLINE);
  const system = withMetadata.messages.find((m: any) => m.role === 'system').content;
  assert.is(task, `system-${createHash('sha256').update(system).digest('hex').slice(0, 12)}`);
});

test('metadata.task names the task: X-Understudy-Task says it, and the dataset row is logged under it', async () => {
  const body = { ...withMetadata, metadata: { ...withMetadata.metadata, task: 'trip-notes' } };
  const { task } = await postJson(body);
  assert.is(task, 'trip-notes');
  const rows = router.datasetRows('trip-notes');
  assert.is(rows.length, 1);
  assert.is(rows[0]!.answer, TAGLINE);
});

test('a finish_tool answer is logged as its call, with the tools it was offered', async () => {
  const rows = router.datasetRows().filter((r) => r.answer.includes('finish_tool'));
  assert.is(rows.length, 1);
  const logged = JSON.parse(rows[0]!.answer);
  assert.is(logged.name, 'finish_tool');
  assert.equal(logged.arguments, { final_output: PLAN });
  assert.equal((rows[0] as any).tools.map((t: any) => t.name), ['get_forecast', 'finish_tool']);
});

test('one system prompt for every function: the return schema and the tools tell their tasks apart', async () => {
  const plain = (await postJson(withMetadata)).task!;
  const typedTask = (await postJson(typed)).task!;
  const loopFirst = (await postJson(toolsCall)).task!;
  const loopNext = (await postJson(toolsResult)).task!;
  const finishTask = (await postJson(finishOnly)).task!;
  assert.is(typed.messages[0].content, withMetadata.messages[0].content);
  assert.is(plain, deriveTask(withMetadata.messages));
  assert.match(typedTask, new RegExp(`^${plain}-[0-9a-f]{12}$`));
  // One function's tool loop stays one task; another set of tools is another.
  assert.is(loopNext, loopFirst);
  assert.is.not(finishTask, loopFirst);
  assert.match(loopFirst, new RegExp(`^${deriveTask(toolsCall.messages)}-[0-9a-f]{12}$`));
});

test.run();
