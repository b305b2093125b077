// The server against clients and starts that go wrong: a request body that
// trickles, task names invented without end, a port already taken, a health
// probe without the key while the load failed, and a request whose body was
// still arriving when close() began. Routers here are mocks: no model needed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from 'node:net';
import { once } from 'node:events';
import { createRouter, MockBackend, type Router } from '../src/index.js';
import { startServer } from '../src/server/app.js';
import { run, within } from './helpers.js';
import { freshDir } from './router-fixture.js';
import { http, SERVER_KEY } from './server-fixture.js';

function mockRouter(): Promise<Router> {
  return createRouter({
    local: false, remote: new MockBackend({ model: 'mock-remote' }), embedder: false,
    cacheDir: freshDir('hardening'), quiet: true, env: {}, shadowRate: 0, auditRate: 0,
  });
}

test("node's own request timeout is set: the request timeout, at most 60 s", async () => {
  const router = await mockRouter();
  const short = await startServer(router, { port: 0, requestTimeoutMs: 5000 });
  const long = await startServer(router, { port: 0 });
  try {
    assert.is(short.app.server.requestTimeout, 5000);
    assert.is(long.app.server.requestTimeout, 60_000);
  } finally {
    await short.close();
    await long.close();
    await router.close();
  }
});

test('the HTTP counter keeps at most 200 task label values; the rest count as "other"', async () => {
  const router = await mockRouter();
  const server = await startServer(router, { port: 0 });
  try {
    for (let i = 0; i < 205; i++) {
      const r = await http(`${server.url}/v1/chat/completions`, {
        method: 'POST', headers: { 'x-understudy-task': `t${i}` }, body: { messages: [{ role: 'user', content: `q${i}` }] },
      });
      assert.is(r.status, 200);
    }
    const text = (await http(`${server.url}/metrics`)).text;
    const lines = text.split('\n').filter((l) => l.startsWith('understudy_http_requests_total{') && l.includes('endpoint="/v1/chat/completions"'));
    const tasks = new Set(lines.map((l) => /task="([^"]*)"/.exec(l)![1]));
    assert.is(tasks.size, 201);
    assert.ok(tasks.has('t199'));
    assert.not.ok(tasks.has('t200'));
    const other = lines.find((l) => l.includes('task="other"'))!;
    assert.is(Number(other.split(' ').pop()), 5);
  } finally {
    await server.close();
    await router.close();
  }
});

test('a port already taken: IO_ERROR naming the address, and nothing of the failed server keeps the process alive', async () => {
  // In a child: the process must end by itself after the failure (no interval, hook or socket left).
  const script = `
    import { startServer } from './src/server/app.ts';
    const first = await startServer(Promise.resolve(undefined), { port: 0 });
    const port = Number(new URL(first.url).port);
    try { await startServer(Promise.resolve(undefined), { port }); }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, port })); }
    await first.close();
  `;
  const r = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], 60_000);
  assert.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim());
  assert.is(out.code, 'IO_ERROR');
  assert.is(out.message, `cannot listen on 127.0.0.1:${out.port}: the port is in use`);
});

test('/health while loading says so with Retry-After; after a failed load, only a request with the key hears why', async () => {
  let fail!: (e: Error) => void;
  const loading = new Promise<Router>((_resolve, reject) => (fail = reject));
  const server = await startServer(loading, { port: 0, apiKey: SERVER_KEY });
  try {
    const early = await http(`${server.url}/health`);
    assert.is(early.status, 503);
    assert.equal(early.json, { status: 'loading' });
    assert.is(early.headers.get('retry-after'), '5');
    const notReady = await http(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${SERVER_KEY}` } });
    assert.is(notReady.status, 503);
    assert.is(notReady.headers.get('retry-after'), '5');
    fail(new Error('model file /secret/path/model.gguf is missing'));
    await loading.catch(() => undefined);
    const anonymous = await http(`${server.url}/health`);
    assert.is(anonymous.status, 503);
    assert.equal(anonymous.json, { status: 'failed' });
    const keyed = await http(`${server.url}/health`, { headers: { authorization: `Bearer ${SERVER_KEY}` } });
    assert.equal(keyed.json, { status: 'failed', message: 'the router failed to start: model file /secret/path/model.gguf is missing' });
    assert.is(keyed.headers.get('retry-after'), null);
  } finally {
    await server.close();
  }
});

test('a request whose body was still arriving when close() began is answered, and its keep-alive connection then closed', async () => {
  const router = await mockRouter();
  const server = await startServer(router, { port: 0 });
  const port = Number(new URL(server.url).port);
  try {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    let received = '';
    socket.on('data', (d) => (received += d));
    const ended = once(socket, 'close');
    const body = JSON.stringify({ messages: [{ role: 'user', content: 'late' }] });
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`);
    // The request is in: past the closing check, its body not yet whole.
    await new Promise((resolve) => setTimeout(resolve, 200));
    // A grace far longer than the test's own limit: only closing the idle connection lets close() end in time.
    const closing = server.close({ graceMs: 600_000 });
    socket.write(body.slice(10));
    await within(ended, 30_000, 'the connection to close');
    await within(closing, 30_000, 'close()');
    assert.match(received, /^HTTP\/1\.1 200 /);
    assert.match(received, /"content":"Echo: late"/);
  } finally {
    await router.close();
  }
});

test.run();
