// Response formats through the router: local answers held to a JSON schema by
// the grammar (nested objects, arrays, enums, anyOf), checked with ajv, an
// independent validator; json_object; a schema the grammar cannot express
// makes the call not fit locally (the policy sends it to the remote, and
// without a remote it fails naming the schema's part); the remote gets
// response_format in OpenAI's shape, strict as the caller sent it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ajv } from 'ajv';
import { rmSync } from 'node:fs';
import { createRouter, LocalBackend, type Router } from '../src/index.js';
import { decide } from '../src/router/policy.js';
import type { ReadinessState } from '../src/router/readiness.js';
import { rejection, storiesModel, within } from './helpers.js';
import { API_KEY, freshDir } from './router-fixture.js';
import { startTeacher, type Teacher } from './teacher.js';

const NESTED = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 12 },
    tags: { type: 'array', items: { enum: ['red', 'green', 'blue'] }, maxItems: 3 },
    size: { anyOf: [{ type: 'integer' }, { type: 'null' }] },
    owner: {
      type: 'object',
      properties: { ok: { type: 'boolean' }, level: { enum: [1, 2, 3] } },
      required: ['ok', 'level'],
    },
  },
  required: ['name', 'tags', 'size', 'owner'],
};
// `pattern` is beyond the grammar converter: such a schema cannot be held locally.
const UNSUPPORTED = { type: 'object', properties: { code: { type: 'string', pattern: '^[A-Z]{3}$' } }, required: ['code'] };
const USER = { role: 'user', content: 'Describe the little red cat.' };

let local: Router;
let teacher: Teacher;
let remote: Router;
const dirs: string[] = [];

test.before(async () => {
  local = await within(createRouter({
    model: storiesModel, cacheDir: freshDir('format-local'), quiet: true, useApi: false, env: {}, chatTemplate: 'rwkv-world',
    sequences: 2, contextSize: 1024, shadowRate: 0, auditRate: 0, enableCache: false,
  }), 120_000);
  teacher = await startTeacher({ answer: () => '{"code":"ABC"}' });
  remote = await createRouter({ apiBase: teacher.url, apiModel: 'teacher-1', apiKey: API_KEY, cacheDir: freshDir('format-remote'), local: false, quiet: true, env: {} });
  dirs.push(local.cacheDir, remote.cacheDir);
});
test.after(async () => {
  await local.close();
  await remote.close();
  await teacher.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('json_schema: local answers parse and validate (nested object, array of enum, anyOf)', async () => {
  const validate = new Ajv().compile(NESTED);
  for (const seed of [1, 2, 3]) {
    const r = await within(local.chat({
      task: 'describe', messages: [USER], maxTokens: 200, temperature: 0.8, seed,
      responseFormat: { type: 'json_schema', name: 'cat', schema: NESTED, strict: true },
    }));
    assert.is(r.route, 'local');
    assert.is(r.finishReason, 'stop', r.text);
    const value = JSON.parse(r.text);
    assert.ok(validate(value), `${r.text}: ${JSON.stringify(validate.errors)}`);
  }
});

/**
 * Whether `text` is the start of some JSON object: some filler (the rest of a
 * literal or number, a closing quote, a missing value) and the closing
 * brackets make it parse. stories260K never closes a free-form object, so its
 * json_object answer ends at maxTokens; this checks what it wrote up to there.
 */
function jsonObjectPrefix(text: string): boolean {
  if (!text.startsWith('{')) return false;
  const stack: string[] = [];
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') stack.push('}');
    else if (c === '[') stack.push(']');
    else if (c === '}' || c === ']') stack.pop();
  }
  const partial = ['', 'ue', 'rue', 'e', 'alse', 'lse', 'se', 'ull', 'll', 'l', '0', '1'];
  const quote = inString ? ['"', '0"', 'u0000"'] : [''];
  const missing = ['', ':null', 'null', '"k":null', '"":null'];
  const closers = stack.reverse().join('');
  for (const p of partial) for (const q of quote) for (const m of missing) {
    try {
      JSON.parse(text + p + q + m + closers);
      return true;
    } catch {
      // Not this completion.
    }
  }
  return false;
}

test('json_object: the local answer is (the start of) a JSON object, cut off at maxTokens with finishReason length', async () => {
  const r = await within(local.chat({ task: 'describe', messages: [USER], maxTokens: 120, responseFormat: { type: 'json_object' } }));
  assert.is(r.finishReason, 'length');
  assert.ok(jsonObjectPrefix(r.text), r.text);
  // The check is not vacuous: text no JSON object starts with fails it.
  assert.not.ok(jsonObjectPrefix('{ "a" : 1 } x'));
  assert.not.ok(jsonObjectPrefix('{ "a" 1'));
  assert.not.ok(jsonObjectPrefix('Once upon a time'));
});

test('an unsupported schema does not fit locally: a ready task goes to the remote; without a remote the call fails naming the part', async () => {
  const backend = local.local as LocalBackend;
  const call = (schema: Record<string, unknown>) => ({
    kind: 'chat' as const, task: 'codes', messages: [USER], params: { temperature: 0, maxTokens: 32, topP: 1, stop: [] },
    responseFormat: { type: 'json_schema' as const, schema },
  });
  assert.is(backend.fits(call(UNSUPPORTED)), false);
  assert.is(backend.fits(call(NESTED)), true);
  const ready = { task: 'codes', ready: true, readiness: 0.99, comparisons: 50 } as ReadinessState;
  const input = { choice: 'auto' as const, local: backend, remote: remote.remote!, remoteCoolingMs: 0, readiness: ready };
  assert.equal(decide({ ...input, call: call(UNSUPPORTED) }), { primary: 'remote', reason: 'prompt does not fit the local context' });
  assert.is(decide({ ...input, call: call(NESTED) }).primary, 'local');
  const err = await rejection(local.chat({ task: 'codes', messages: [USER], responseFormat: { type: 'json_schema', schema: UNSUPPORTED } }));
  assert.is(err.code, 'INVALID_ARGUMENT');
  assert.is(err.message, 'unsupported schema keyword "pattern" at #/properties/code');
});

test('the remote gets response_format in OpenAI\'s shape, strict as sent', async () => {
  const body = () => teacher.requests.at(-1)!.body;
  const r = await remote.chat({ task: 'codes', messages: [USER], responseFormat: { type: 'json_schema', name: 'code', schema: UNSUPPORTED, strict: true } });
  assert.is(r.text, '{"code":"ABC"}');
  assert.equal(body().response_format, { type: 'json_schema', json_schema: { name: 'code', schema: UNSUPPORTED, strict: true } });
  await remote.chat({ task: 'codes', messages: [USER], responseFormat: { type: 'json_schema', schema: UNSUPPORTED, strict: false } });
  assert.equal(body().response_format, { type: 'json_schema', json_schema: { name: 'response', schema: UNSUPPORTED, strict: false } });
  await remote.chat({ task: 'codes', messages: [USER], responseFormat: { type: 'json_schema', schema: NESTED } });
  assert.equal(body().response_format, { type: 'json_schema', json_schema: { name: 'response', schema: NESTED } });
  await remote.chat({ task: 'codes', messages: [USER], responseFormat: { type: 'json_object' } });
  assert.equal(body().response_format, { type: 'json_object' });
  // 'text' is every call's default: not sent, and the same call (one cache key) as without it.
  const before = teacher.requests.length;
  await remote.chat({ task: 'codes', messages: [USER], responseFormat: { type: 'text' } });
  await remote.chat({ task: 'codes', messages: [USER] });
  assert.is(teacher.requests.length, before + 1);
  assert.not.ok('response_format' in body());
});

test.run();
