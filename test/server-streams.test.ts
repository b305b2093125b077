// The server under streaming load and at its edges: many concurrent streams
// queued on a small local context, a client that leaves mid-stream (its
// generation must stop and free the sequence for the next caller), and a
// graceful close that lets streams in flight finish and loses no dataset row.
// Cause and effect only, never timing: the local backend is wrapped so the
// test sees each call's start, queue depth, pieces and outcome.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ajv } from 'ajv';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRouter, type Router } from '../src/index.js';
import type { Backend, BackendAnswer, BackendCall } from '../src/router/backend.js';
import { LocalBackend } from '../src/router/local-backend.js';
import { startServer, type UnderstudyServer } from '../src/server/app.js';
import { storiesModel, within } from './helpers.js';
import { fixtureRouterOptions, until } from './server-fixture.js';
import { startTeacher, type Teacher } from './teacher.js';

// ---------------------------------------------------------------- helpers

/** What the wrapper saw of one call that reached the local model. */
interface LocalCall {
  task: string;
  /** The last message's content. */
  prompt: string;
  /** Generations waiting for a sequence, read right after this one was submitted. */
  depth: number;
  /** Pieces the model delivered to this call. */
  pieces: number;
  outcome: Promise<{ ok: true; answer: BackendAnswer } | { ok: false; error: Error & { code?: string } }>;
}

/**
 * The real local backend behind a see-through wrapper. With `gate` set, no
 * call starts until that many have arrived, so all of them are submitted to
 * the context at once and the queue they form does not depend on timing.
 */
function observed(inner: LocalBackend, gate = 0): { backend: Backend; calls: LocalCall[] } {
  const calls: LocalCall[] = [];
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const backend = {
    kind: 'local' as const,
    model: inner.model,
    fits: (call: BackendCall) => inner.fits(call),
    queueDepth: () => inner.queueDepth(),
    health: () => inner.health(),
    close: async () => undefined,
    async answer(call: BackendCall): Promise<BackendAnswer> {
      const seen: LocalCall = { task: call.task, prompt: String(call.messages?.at(-1)?.content ?? call.prompt ?? ''), depth: -1, pieces: 0, outcome: undefined! };
      calls.push(seen);
      if (gate > 0) {
        if (calls.length === gate) open();
        // Bounded: a call that never arrives fails the waiting ones instead of hanging the run.
        await within(opened, 120_000, `all ${gate} calls to reach the model`);
      }
      const onText = call.onText;
      const answer = inner.answer({ ...call, ...(onText ? { onText: (piece: string) => (seen.pieces++, onText(piece)) } : {}) });
      seen.depth = inner.queueDepth();
      seen.outcome = answer.then((a) => ({ ok: true as const, answer: a }), (error) => ({ ok: false as const, error }));
      return answer;
    },
  };
  return { backend, calls };
}

interface LocalServer {
  router: Router;
  server: UnderstudyServer;
  calls: LocalCall[];
  close(): Promise<void>;
}

/** A local-only router over stories260K (rwkv-world template, see distill-fixture.ts) and the server over it. */
async function localServer(sequences: number, contextSize: number, gate = 0): Promise<LocalServer> {
  const cacheDir = mkdtempSync(join(tmpdir(), 'understudy-streams-'));
  const inner = await LocalBackend.open({ model: storiesModel, sequences, contextSize, chatTemplate: 'rwkv-world', threads: 1 });
  const { backend, calls } = observed(inner, gate);
  const router = await createRouter({
    local: backend, useApi: false, embedder: false, cacheDir, quiet: true, trainLocal: false, shadowRate: 0, auditRate: 0, env: {},
  });
  const server = await startServer(router, { port: 0 });
  return {
    router, server, calls,
    async close() {
      await server.close({ graceMs: 1000 });
      await router.close();
      await inner.close();
      rmSync(cacheDir, { recursive: true, force: true });
    },
  };
}

/** The `data:` payloads of an SSE body, in order. */
function sseData(text: string): string[] {
  return text.split('\n\n').filter((e) => e.trim() !== '').map((e) => {
    assert.ok(e.startsWith('data: '), `not an SSE data event: ${JSON.stringify(e)}`);
    return e.slice('data: '.length);
  });
}

const ajv = new Ajv({ allErrors: true });
const validChunk = ajv.compile({
  type: 'object',
  required: ['id', 'object', 'created', 'model', 'choices'],
  properties: {
    id: { type: 'string', pattern: '^chatcmpl-' },
    object: { const: 'chat.completion.chunk' },
    created: { type: 'integer' },
    model: { type: 'string', minLength: 1 },
    choices: {
      type: 'array',
      maxItems: 1,
      items: {
        type: 'object',
        required: ['index', 'delta', 'finish_reason'],
        properties: {
          index: { const: 0 },
          delta: { type: 'object', properties: { role: { const: 'assistant' }, content: { type: 'string' } } },
          finish_reason: { enum: [null, 'stop', 'length'] },
        },
      },
    },
    // With include_usage, OpenAI's chunks carry usage: null until the last one.
    usage: {
      anyOf: [{ type: 'null' }, {
        type: 'object',
        required: ['prompt_tokens', 'completion_tokens', 'total_tokens'],
        properties: { prompt_tokens: { type: 'integer', minimum: 1 }, completion_tokens: { type: 'integer', minimum: 1 }, total_tokens: { type: 'integer' } },
      }],
    },
  },
});

/**
 * Checks one streamed chat answer from end to end and returns its text: valid
 * chunks with one id, the role first, text deltas, one finish, the usage
 * chunk (when asked for), then [DONE] and nothing after it.
 */
function checkChatStream(body: string, includeUsage: boolean): { text: string; usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } } {
  const data = sseData(body);
  assert.is(data.at(-1), '[DONE]', `no [DONE] at the end: ${body.slice(-300)}`);
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
  for (const c of chunks) assert.ok(validChunk(c), `invalid chunk ${JSON.stringify(c)}: ${ajv.errorsText(validChunk.errors)}`);
  assert.is(new Set(chunks.map((c) => c.id)).size, 1, 'chunks of one answer carry one id');
  assert.equal(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
  const usageChunk = includeUsage ? chunks.pop() : undefined;
  for (const c of chunks) assert.is(c.usage, includeUsage ? null : undefined, `usage of a chunk before the last: ${JSON.stringify(c)}`);
  const finish = chunks.pop();
  assert.equal(finish.choices[0].delta, {});
  assert.ok(['stop', 'length'].includes(finish.choices[0].finish_reason));
  const texts = chunks.slice(1).map((c) => {
    assert.is(c.choices[0].finish_reason, null);
    return c.choices[0].delta.content as string;
  });
  if (!usageChunk) return { text: texts.join('') };
  assert.equal(usageChunk.choices, []);
  const u = usageChunk.usage;
  assert.is(u.total_tokens, u.prompt_tokens + u.completion_tokens);
  return { text: texts.join(''), usage: u };
}

async function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

const chatBody = (content: string, extra: Record<string, unknown> = {}) => ({
  model: 'any', messages: [{ role: 'user', content }], stream: true, ...extra,
});

/** A raw streamed request whose socket the test can cut; resolves once `enough` content deltas arrived. */
function openStream(url: string, body: unknown, enough: number): Promise<{ req: ClientRequest; res: IncomingMessage; received: string[] }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = httpRequest(`${url}/v1/chat/completions`, {
      method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
      const received: string[] = [];
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (text: string) => {
        buffer += text;
        const events = buffer.split('\n\n');
        buffer = events.pop()!;
        for (const e of events) {
          const chunk = JSON.parse(e.slice('data: '.length));
          const content = chunk.choices?.[0]?.delta?.content;
          if (content) received.push(content);
        }
        if (received.length >= enough) resolve({ req, res, received });
      });
      res.on('error', () => undefined);
    });
    req.end(payload);
  });
}

// ---------------------------------------------------------------- tests

test('64 concurrent streamed chats on a 4-sequence context: most queue, all finish with [DONE] and valid chunks', async () => {
  const COUNT = 64;
  const SEQUENCES = 4;
  const s = await localServer(SEQUENCES, 128, COUNT);
  try {
    const prompts = Array.from({ length: COUNT }, (_, i) => `Tell me story number ${i} about a cat.`);
    const answers = await within(Promise.all(prompts.map((content, i) =>
      postJson(`${s.server.url}/v1/chat/completions`, chatBody(content, {
        max_tokens: 8,
        ...(i % 2 === 0 ? { stream_options: { include_usage: true } } : {}),
        metadata: { task: 'load' },
      })))), 180_000, 'the 64 streams');
    // Every call reached the model, and while all were submitted at once
    // all but SEQUENCES of them waited for a sequence.
    assert.is(s.calls.length, COUNT);
    assert.is(Math.max(...s.calls.map((c) => c.depth)), COUNT - SEQUENCES);
    assert.is(s.router.local?.queueDepth?.(), 0);
    const texts = answers.map((a, i) => {
      assert.is(a.status, 200, a.text);
      assert.match(a.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.is(a.headers.get('x-understudy-route'), 'local');
      assert.is(a.headers.get('x-understudy-task'), 'load');
      const { text, usage } = checkChatStream(a.text, i % 2 === 0);
      assert.ok(text.length > 0, `stream ${i} carried no text`);
      if (usage) assert.ok(usage.completion_tokens <= 8, JSON.stringify(usage));
      return text;
    });
    // The pieces, however they were coalesced, add up to the whole answer the
    // model gave that call (as the backend returned it, beside the stream).
    // (Answers cut at max_tokens are not cached, so the cache cannot be the reference.)
    for (let i = 0; i < COUNT; i++) {
      const calls = s.calls.filter((c) => c.prompt === prompts[i]);
      assert.is(calls.length, 1, prompts[i]);
      const outcome = await within(calls[0]!.outcome);
      assert.ok(outcome.ok, prompts[i]);
      if (outcome.ok) assert.is(texts[i], outcome.answer.text, prompts[i]);
    }
  } finally {
    await s.close();
  }
});

test('a client that leaves mid-stream aborts its generation and frees the only sequence for the next call', async () => {
  const s = await localServer(1, 1024);
  try {
    const failures: { task?: string; code: string }[] = [];
    s.router.on('failure', (e) => failures.push(e));
    // stories260K never ends a story on its own here (measured: 1900 of 1900
    // tokens with rwkv-world), so this call would hold the one sequence for
    // hundreds of tokens if nothing stopped it.
    const long = await openStream(s.server.url, chatBody('Tell me a long story about a dog.', { max_tokens: 960, metadata: { task: 'long' } }), 3);
    assert.is(s.calls.length, 1);
    const first = s.calls[0]!;
    assert.is(first.task, 'long');
    long.req.destroy();
    // The cut aborts the generation: its call fails with ABORTED, not a whole answer.
    const outcome = await first.outcome;
    assert.not.ok(outcome.ok, 'the generation ran to its end after the client left');
    if (!outcome.ok) assert.equal({ code: outcome.error.code, message: outcome.error.message }, { code: 'ABORTED', message: 'generation was aborted' });
    const piecesAtAbort = first.pieces;
    assert.ok(piecesAtAbort >= 3 && piecesAtAbort < 960, `${piecesAtAbort} pieces`);
    assert.is(s.router.local?.queueDepth?.(), 0);

    const next = await postJson(`${s.server.url}/v1/chat/completions`, chatBody('Tell me about a red ball.', {
      max_tokens: 16, stream_options: { include_usage: true }, metadata: { task: 'short' },
    }));
    assert.is(next.status, 200, next.text);
    const { usage } = checkChatStream(next.text, true);
    const second = s.calls[1]!;
    assert.is(second.task, 'short');
    // Nothing was ahead of it: the aborted generation had let go of the sequence.
    assert.is(second.depth, 0);
    const done = await second.outcome;
    assert.ok(done.ok);
    if (done.ok) assert.is(usage!.completion_tokens, done.answer.usage.completionTokens);
    // The aborted call delivered nothing more, and the router reported it as aborted.
    assert.is(first.pieces, piecesAtAbort);
    assert.equal(failures.map((f) => ({ task: f.task, code: f.code })), [{ task: 'long', code: 'ABORTED' }]);
  } finally {
    await s.close();
  }
});

test('a client that leaves before a non-streamed answer is finished aborts its generation and frees the only sequence', async () => {
  const s = await localServer(1, 1024);
  try {
    const failures: { task?: string; code: string }[] = [];
    s.router.on('failure', (e) => failures.push(e));
    // A long answer (see above: stories260K does not stop on its own), asked for whole, on a socket the test can cut.
    const payload = JSON.stringify(chatBody('Tell me a long story about a cat.', { stream: false, max_tokens: 960, metadata: { task: 'whole' } }));
    const req = httpRequest(`${s.server.url}/v1/chat/completions`, {
      method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    });
    const answered = new Promise<string>((resolve) => {
      req.on('error', (e) => resolve(`error: ${e.message}`));
      req.on('response', (res) => resolve(`response ${res.statusCode}`));
    });
    req.end(payload);
    // Cut once the backend call has started (the generation is running, nothing has been sent back).
    await until(() => s.calls.length === 1, 'the local call to start');
    const first = s.calls[0]!;
    assert.is(first.task, 'whole');
    req.destroy();
    assert.is(await within(answered), 'error: socket hang up');
    const outcome = await within(first.outcome);
    assert.not.ok(outcome.ok, 'the generation ran to its end after the client left');
    if (!outcome.ok) assert.equal({ code: outcome.error.code, message: outcome.error.message }, { code: 'ABORTED', message: 'generation was aborted' });
    assert.is(s.router.local?.queueDepth?.(), 0);

    const next = await within(postJson(`${s.server.url}/v1/chat/completions`, { ...chatBody('Tell me about a red ball.', { max_tokens: 8, metadata: { task: 'after' } }), stream: false }));
    assert.is(next.status, 200, next.text);
    const second = s.calls[1]!;
    assert.is(second.task, 'after');
    // Nothing was ahead of it: the aborted generation had let go of the sequence.
    assert.is(second.depth, 0);
    const done = await within(second.outcome);
    assert.ok(done.ok);
    if (done.ok) assert.is(JSON.parse(next.text).choices[0].message.content, done.answer.text);
    assert.equal(failures.map((f) => ({ task: f.task, code: f.code })), [{ task: 'whole', code: 'ABORTED' }]);
  } finally {
    await s.close();
  }
});

/** A router with the loopback teacher as its remote (so every answer is a dataset row) and no local model. */
async function teacherServer(teacher: Teacher, cacheDir: string): Promise<{ router: Router; server: UnderstudyServer }> {
  const router = await createRouter(fixtureRouterOptions(teacher, cacheDir, [], { local: false }));
  const server = await startServer(router, { port: 0 });
  return { router, server };
}

function countRows(cacheDir: string, task: string): { rows: number; answers: string[] } {
  const db = new Database(join(cacheDir, 'dataset.db'), { readonly: true });
  try {
    const rows = db.prepare('SELECT answer FROM dataset WHERE task = ? ORDER BY id').all(task) as { answer: string }[];
    return { rows: rows.length, answers: rows.map((r) => r.answer) };
  } finally {
    db.close();
  }
}

/** One streamed chat over node:http without keep-alive: `started` settles at its first text delta, `body` with the whole SSE body. */
function plainStream(url: string, body: unknown): { started: Promise<void>; body: Promise<string> } {
  let started!: () => void;
  const first = new Promise<void>((resolve) => (started = resolve));
  const whole = new Promise<string>((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = httpRequest(`${url}/v1/chat/completions`, {
      method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (t: string) => {
        text += t;
        if (text.includes('"content":"drip')) started();
      });
      res.on('end', () => resolve(text));
      res.on('error', reject);
    });
    req.end(payload);
  });
  return { started: first, body: whole };
}

/** One streamed chat through the official client, which keeps its connection alive after the answer. */
function clientStream(client: OpenAI, content: string): { started: Promise<void>; text: Promise<{ text: string; finish: string | null }> } {
  let started!: () => void;
  const first = new Promise<void>((resolve) => (started = resolve));
  const text = (async () => {
    const stream = await client.chat.completions.create({
      // metadata.task names the router's task (OpenAI stores metadata; we route by it).
      model: 'teacher-1', stream: true, messages: [{ role: 'user', content }], metadata: { task: 'grace' },
    });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      const content = chunk.choices[0]?.delta?.content;
      if (content) {
        text += content;
        started();
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    return { text, finish };
  })();
  return { started: first, text };
}

/**
 * N streams in flight, then server.close with a grace far longer than they
 * need: they all finish whole, a new request is refused, close returns
 * because they finished (`within` only turns a hang into a failure: the grace
 * is ten minutes), and the router then closes with one row per stream on disk.
 */
async function gracefulClose(keepAlive: boolean): Promise<void> {
  const N = 6;
  const PIECES = 8;
  const teacher = await startTeacher();
  const cacheDir = mkdtempSync(join(tmpdir(), 'understudy-grace-'));
  try {
    const { router, server } = await teacherServer(teacher, cacheDir);
    // Each remote answer trickles in: 'drip ' × PIECES, one piece at a time.
    for (let i = 0; i < N; i++) teacher.faults.push({ kind: 'trickle', everyMs: 20, pieces: PIECES });
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const streams = Array.from({ length: N }, (_, i) => {
      const content = `grace question ${i}`;
      if (keepAlive) return clientStream(client, content);
      const plain = plainStream(server.url, chatBody(content, { metadata: { task: 'grace' } }));
      return {
        started: plain.started,
        text: plain.body.then((body) => {
          const { text } = checkChatStream(body, false);
          const finish = JSON.parse(sseData(body).at(-2)!).choices[0].finish_reason as string;
          return { text, finish };
        }),
      };
    });
    // Every stream is under way (its first piece came) before the close starts.
    await Promise.all(streams.map((st) => st.started));
    const closing = server.close({ graceMs: 600_000 });
    // A new connection is no longer served.
    const refused = await postJson(`${server.url}/v1/chat/completions`, chatBody('too late', { metadata: { task: 'grace' } }))
      .then((r) => `status ${r.status}`, (err: Error & { cause?: { code?: string } }) => err.cause?.code ?? err.message);
    assert.ok(['ECONNREFUSED', 'status 503'].includes(refused), refused);
    const results = await Promise.all(streams.map((st) => st.text));
    for (const r of results) assert.equal(r, { text: 'drip '.repeat(PIECES), finish: 'stop' });
    await within(closing, 30_000, 'server.close() after every stream in flight had finished');
    await router.close();
    // Reopened from disk: one row per answered stream, none for the refused call.
    const { rows, answers } = countRows(cacheDir, 'grace');
    assert.is(rows, N);
    assert.ok(answers.every((a) => a === 'drip '.repeat(PIECES)), JSON.stringify(answers));
    assert.is(teacher.requests.filter((r) => r.path.endsWith('/chat/completions')).length, N);
  } finally {
    await teacher.close();
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

test('graceful close: streams in flight finish, new requests are refused, then the router closes with every row written', async () => {
  await gracefulClose(false);
});

// A keep-alive client's socket outlives its finished stream; close() must not
// wait out the grace for it (fastify closes only the connections idle when close starts).
test('graceful close with keep-alive clients (the official openai client) returns once their streams finished', async () => {
  await gracefulClose(true);
});

test('close whose grace runs out: streams still running end with a CLOSED error event, the rows of finished ones are kept', async () => {
  const teacher = await startTeacher();
  const cacheDir = mkdtempSync(join(tmpdir(), 'understudy-grace-'));
  try {
    const { router, server } = await teacherServer(teacher, cacheDir);
    const done = await postJson(`${server.url}/v1/chat/completions`, { ...chatBody('finished question'), stream: false, metadata: { task: 'cut' } });
    assert.is(done.status, 200, done.text);
    assert.is(JSON.parse(done.text).choices[0].message.content, 'Answer: finished question');
    // A stream that never ends by itself: one piece every 20 ms until the client leaves.
    teacher.faults.push({ kind: 'trickle', everyMs: 20 });
    const endless = await openStream(server.url, chatBody('endless question', { metadata: { task: 'cut' } }), 2);
    const body = new Promise<string>((resolve) => {
      let text = '';
      endless.res.on('data', (t: string) => (text += t));
      endless.res.on('end', () => resolve(text));
      endless.res.on('close', () => resolve(text));
    });
    await server.close({ graceMs: 0 });
    // The data handler of openStream saw the start; this one, everything after it: the last event is whole.
    const last = JSON.parse(sseData((await body).split('\n\n').filter((e) => e.trim()).at(-1)! + '\n\n').at(-1)!);
    assert.equal({ code: last.error?.code, message: last.error?.message }, { code: 'CLOSED', message: 'the server is shutting down: the call was aborted' });
    await router.close();
    const { rows, answers } = countRows(cacheDir, 'cut');
    assert.is(rows, 1);
    assert.equal(answers, ['Answer: finished question']);
  } finally {
    await teacher.close();
    rmSync(cacheDir, { recursive: true, force: true });
  }
});

test.run();
