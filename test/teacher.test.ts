// Checks the teacher fixture (test/teacher.ts) through the real `openai` client,
// and pins down which error each fault produces in openai v6.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import OpenAI from 'openai';
import { refusedUrl, startTeacher, type Teacher } from './teacher.js';

let teacher: Teacher;
let client: OpenAI;

test.before(async () => {
  teacher = await startTeacher();
  client = new OpenAI({ baseURL: teacher.url, apiKey: 'test-key', maxRetries: 0, timeout: 2_000 });
});

test.after(async () => {
  await teacher.close();
});

test.before.each(() => {
  teacher.faults.length = 0;
  teacher.requests.length = 0;
  teacher.setAnswer(undefined);
});

/** Awaits `work` and returns what it threw; fails if it succeeds. */
async function rejection(work: Promise<unknown>): Promise<any> {
  try {
    await work;
  } catch (err) {
    return err;
  }
  assert.unreachable('expected a rejection, but the call succeeded');
}

const ask = { model: 'teacher-1', messages: [{ role: 'user' as const, content: 'What is two plus two?' }] };

test('non-stream chat answer, usage and headers', async () => {
  const r = await client.chat.completions.create(ask);
  assert.is(r.object, 'chat.completion');
  assert.is(r.choices[0].message.content, 'Answer: What is two plus two?');
  assert.is(r.choices[0].finish_reason, 'stop');
  assert.equal(r.usage, { prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 });
  assert.is(teacher.requests.length, 1);
  const seen = teacher.requests[0];
  assert.is(seen.method, 'POST');
  assert.is(seen.path, '/v1/chat/completions');
  assert.is(seen.headers.authorization, 'Bearer test-key');
  assert.equal(seen.body.messages, ask.messages);
});

test('streamed chat reassembles to the non-stream answer', async () => {
  teacher.setAnswer(() => 'A longer answer, split into several pieces.');
  const whole = await client.chat.completions.create(ask);
  const stream = await client.chat.completions.create({ ...ask, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish: string | null = null;
  let usage: unknown;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    text += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    if (chunk.usage) usage = chunk.usage;
  }
  assert.is(text, whole.choices[0].message.content);
  assert.is(finish, 'stop');
  assert.equal(usage, whole.usage);
  assert.is(chunks, Math.ceil(text.length / 8) + 2); // pieces, finish chunk, usage chunk
});

test('max_tokens truncates to that many words', async () => {
  const r = await client.chat.completions.create({ ...ask, max_tokens: 2 });
  assert.is(r.choices[0].message.content, 'Answer: What');
  assert.is(r.choices[0].finish_reason, 'length');
});

test('legacy completion, plain and streamed', async () => {
  const r = await client.completions.create({ model: 'teacher-1', prompt: 'Once upon a time' });
  assert.is(r.object, 'text_completion');
  assert.is(r.choices[0].text, 'Answer: Once upon a time');
  let text = '';
  for await (const chunk of await client.completions.create({ model: 'teacher-1', prompt: 'Once upon a time', stream: true })) {
    text += chunk.choices[0]?.text ?? '';
  }
  assert.is(text, r.choices[0].text);
  assert.is(teacher.requests[0].path, '/v1/completions');
});

test('models.list', async () => {
  const ids: string[] = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.equal(ids, ['teacher-1']);
});

test('unknown path is 404', async () => {
  const err = await rejection(client.embeddings.create({ model: 'teacher-1', input: 'x' }));
  assert.instance(err, OpenAI.NotFoundError);
  assert.is(err.status, 404);
});

test('fault: 500 → InternalServerError (an APIError) with status 500', async () => {
  teacher.faults.push({ kind: 'status', status: 500 });
  const err = await rejection(client.chat.completions.create(ask));
  assert.instance(err, OpenAI.APIError);
  assert.instance(err, OpenAI.InternalServerError);
  assert.is(err.status, 500);
  assert.is(err.error?.type, 'server_error');
  assert.is(teacher.requests.length, 1); // recorded even though it failed
  // The queue is used up: the next request is answered normally.
  assert.ok((await client.chat.completions.create(ask)).choices[0].message.content);
});

test('fault: 429 with Retry-After → RateLimitError, header on err.headers (a fetch Headers)', async () => {
  teacher.faults.push({ kind: 'status', status: 429, retryAfter: '1' });
  const err = await rejection(client.chat.completions.create(ask));
  assert.instance(err, OpenAI.RateLimitError);
  assert.is(err.status, 429);
  assert.instance(err.headers, Headers);
  assert.is(err.headers.get('retry-after'), '1');
});

test('fault: delay past the client timeout → APIConnectionTimeoutError', async () => {
  teacher.faults.push({ kind: 'delay', ms: 1_500 });
  const started = Date.now();
  const err = await rejection(client.chat.completions.create(ask, { timeout: 200 }));
  assert.instance(err, OpenAI.APIConnectionTimeoutError);
  assert.ok(Date.now() - started < 1_000);
});

test('fault: malformed JSON → the client throws a SyntaxError (not wrapped)', async () => {
  teacher.faults.push({ kind: 'malformed' });
  const err = await rejection(client.chat.completions.create(ask));
  assert.is(err.constructor.name, 'SyntaxError');
  assert.not.instance(err, OpenAI.OpenAIError);
});

test('fault: cut-stream → iterating the stream throws after the sent chunks', async () => {
  teacher.faults.push({ kind: 'cut-stream', afterChunks: 2 });
  const stream = await client.chat.completions.create({ ...ask, stream: true });
  let received = 0;
  const err = await rejection((async () => {
    for await (const _ of stream) received++;
  })());
  assert.is(received, 2);
  assert.is(err.constructor.name, 'TypeError'); // undici's "terminated"
  assert.is(err.message, 'terminated');
});

test('fault: cut-stream on a non-stream request → the client throws', async () => {
  teacher.faults.push({ kind: 'cut-stream', afterChunks: 0 });
  const err = await rejection(client.chat.completions.create(ask));
  assert.is(err.constructor.name, 'TypeError');
  assert.is(err.message, 'terminated');
});

test('fault: drop → APIConnectionError', async () => {
  teacher.faults.push({ kind: 'drop' });
  const err = await rejection(client.chat.completions.create(ask));
  assert.instance(err, OpenAI.APIConnectionError);
  assert.not.instance(err, OpenAI.APIConnectionTimeoutError);
});

test('refusedUrl → APIConnectionError', async () => {
  const refused = new OpenAI({ baseURL: await refusedUrl(), apiKey: 'test-key', maxRetries: 0, timeout: 2_000 });
  const err = await rejection(refused.chat.completions.create(ask));
  assert.instance(err, OpenAI.APIConnectionError);
  assert.is(err.cause?.cause?.code, 'ECONNREFUSED');
});

test('bad JSON body → 400', async () => {
  const r = await fetch(`${teacher.url}/chat/completions`, { method: 'POST', body: '{nope', headers: { 'content-type': 'application/json' } });
  assert.is(r.status, 400);
  assert.is(((await r.json()) as any).error.code, 'bad_request');
  assert.is(teacher.requests[0].body, '{nope');
});

test('close() does not wait for a pending delay', async () => {
  const t = await startTeacher();
  t.faults.push({ kind: 'delay', ms: 60_000 });
  const pending = fetch(`${t.url}/chat/completions`, { method: 'POST', body: JSON.stringify(ask) }).catch((e) => e);
  while (t.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
  const started = Date.now();
  await t.close();
  assert.ok(Date.now() - started < 500);
  assert.instance(await pending, TypeError); // the socket was destroyed under it
});

test.run();
