// GET /metrics: after remote, cached and local answers and a few failed
// requests through the server, the Prometheus text parses (a small parser
// written here, not prom-client's) and every counter equals what was done:
// answers by route, cache hits, tokens (the teacher counts words), remote calls
// saved, the local share, requests by endpoint/route/task/status, latency
// counts, readiness as the router reports it. The remote's key is nowhere in it,
// and closing the server removes its listeners from the router.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRouter, MockBackend, type Router } from '../src/index.js';
import { startServer, type UnderstudyServer } from '../src/server/app.js';
import { API_KEY, freshDir, routerFor } from './router-fixture.js';
import { startTeacher, type Teacher } from './teacher.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The text exposition format, version 0.0.4: `# HELP`/`# TYPE` lines and `name{a="b",...} value` samples. */
function parseMetrics(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE ([a-zA-Z_:][\w:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    const label = /([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)",?/gy;
    let at = 0;
    for (let l = label.exec(body); l; l = label.exec(body)) {
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      at = label.lastIndex;
    }
    if (at !== body.length) throw new Error(`bad labels: ${JSON.stringify(line)}`);
    // Prometheus reads values with Go's ParseFloat: NaN and Inf in any case (prom-client writes "Nan").
    const special = /^([+-]?)(inf|nan)$/i.exec(m[3]!);
    const value = special ? (special[2]!.toLowerCase() === 'nan' ? NaN : special[1] === '-' ? -Infinity : Infinity) : Number(m[3]);
    if (!special && (Number.isNaN(value) || !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(m[3]!))) throw new Error(`bad value: ${JSON.stringify(line)}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { samples, types };
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when none. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

let teacher: Teacher;
let router: Router;
let server: UnderstudyServer;
let listenersBefore: { call: number; failure: number };
let closed = false;
test.before(async () => {
  teacher = await startTeacher();
  // Every remote answer is also answered locally, so readiness has a comparison to show.
  router = await routerFor(teacher, { shadowRate: 1 });
  listenersBefore = { call: router.listenerCount('call'), failure: router.listenerCount('failure') };
  server = await startServer(router, { port: 0 });
});
test.after(async () => {
  if (!closed) await server?.close();
  await router?.close();
  await teacher.close();
});

async function chat(content: string, headers: Record<string, string> = {}, extra: Record<string, unknown> = {}) {
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'any', messages: [{ role: 'user', content }], max_tokens: 8, ...extra }),
  });
  return { status: res.status, route: res.headers.get('x-understudy-route'), body: (await res.json()) as any };
}

async function scrape(): Promise<Sample[]> {
  return parseMetrics(await (await fetch(`${server.url}/metrics`)).text()).samples;
}

test('training rounds are counted by decision', async () => {
  // Before any call, nothing to train on: the round is skipped (and says why).
  const report = await router.train();
  assert.match(report.reason, /^not enough data: no training rows yet/);
  const samples = await scrape();
  assert.is(value(samples, 'understudy_training_rounds_total', { decision: 'skipped' }), 1);
  for (const decision of ['promoted', 'kept', 'failed', 'aborted']) {
    assert.is(value(samples, 'understudy_training_rounds_total', { decision }), 0, decision);
  }
});

test('the counters equal what was done, readiness is the router\'s, and no key shows', async () => {
  const remote = await chat('What is a cat?', { 'x-understudy-task': 'qa' });
  assert.is(remote.status, 200);
  assert.is(remote.route, 'remote');
  const cached = await chat('What is a cat?', { 'x-understudy-task': 'qa' });
  assert.is(cached.route, 'cache');
  const cached2 = await chat('What is a cat?', { 'x-understudy-task': 'qa' });
  assert.is(cached2.route, 'cache');
  const local = await chat('Once upon a time', { 'x-understudy-task': 'story', 'x-understudy-route': 'local' });
  assert.is(local.status, 200);
  assert.is(local.route, 'local');
  const bad = await chat('x', {}, { n: 2 });
  assert.is(bad.status, 400);
  const missing = await fetch(`${server.url}/v1/nothing?key=${API_KEY}`);
  assert.is(missing.status, 404);
  await router.idle();

  const res = await fetch(`${server.url}/metrics`);
  assert.is(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  assert.not.ok(text.includes(API_KEY), 'the remote key is in /metrics');
  const { samples, types } = parseMetrics(text);

  assert.is(types.get('understudy_answers_total'), 'counter');
  assert.is(value(samples, 'understudy_answers_total', { route: 'remote' }), 1);
  assert.is(value(samples, 'understudy_answers_total', { route: 'cache' }), 2);
  assert.is(value(samples, 'understudy_answers_total', { route: 'local' }), 1);
  assert.is(value(samples, 'understudy_answers_total', { route: 'semantic-cache' }), 0);
  assert.is(value(samples, 'understudy_cache_hits_total', { kind: 'exact' }), 2);
  assert.is(value(samples, 'understudy_cache_hits_total', { kind: 'semantic' }), 0);
  assert.is(value(samples, 'understudy_remote_calls_saved_total'), 3);
  assert.is(value(samples, 'understudy_local_share'), 1 / 4);

  // The teacher counts words: 4 in "What is a cat?", 5 in "Answer: What is a cat?".
  assert.is(value(samples, 'understudy_tokens_total', { direction: 'in', route: 'remote' }), 4);
  assert.is(value(samples, 'understudy_tokens_total', { direction: 'out', route: 'remote' }), 5);
  // Counted, not merely equal (a zero on both sides would pass the equalities below).
  assert.ok(local.body.usage.prompt_tokens > 0 && local.body.usage.completion_tokens > 0, JSON.stringify(local.body.usage));
  assert.ok(cached.body.usage.completion_tokens > 0, JSON.stringify(cached.body.usage));
  assert.is(value(samples, 'understudy_tokens_total', { direction: 'in', route: 'local' }), local.body.usage.prompt_tokens);
  assert.is(value(samples, 'understudy_tokens_total', { direction: 'out', route: 'local' }), local.body.usage.completion_tokens);
  assert.is(value(samples, 'understudy_tokens_total', { direction: 'out', route: 'cache' }),
    cached.body.usage.completion_tokens + cached2.body.usage.completion_tokens);

  const chatPath = '/v1/chat/completions';
  assert.is(value(samples, 'understudy_http_requests_total', { endpoint: chatPath, route: 'remote', task: 'qa', status: '200' }), 1);
  assert.is(value(samples, 'understudy_http_requests_total', { endpoint: chatPath, route: 'cache', task: 'qa', status: '200' }), 2);
  assert.is(value(samples, 'understudy_http_requests_total', { endpoint: chatPath, route: 'local', task: 'story', status: '200' }), 1);
  assert.is(value(samples, 'understudy_http_requests_total', { endpoint: chatPath, route: '', status: '400' }), 1);
  // An unknown path is not a label value (it could be anything, a key among it).
  assert.is(value(samples, 'understudy_http_requests_total', { endpoint: 'unmatched', status: '404' }), 1);
  // Six requests, besides the scrapes of /metrics (which count too).
  const http = samples.filter((s) => s.name === 'understudy_http_requests_total');
  assert.is(http.filter((s) => s.labels.endpoint !== '/metrics').reduce((n, s) => n + s.value, 0), 6);
  assert.is(value(samples, 'understudy_http_requests_total', { endpoint: '/metrics', status: '200' }), 1);
  assert.is(types.get('understudy_http_request_duration_seconds'), 'histogram');
  assert.is(value(samples, 'understudy_http_request_duration_seconds_count', { endpoint: chatPath, route: 'cache' }), 2);
  assert.is(value(samples, 'understudy_http_request_duration_seconds_bucket', { endpoint: chatPath, route: 'cache', le: '+Inf' }), 2);

  const readiness = router.readiness('qa');
  assert.is(readiness.comparisons, 1);
  assert.is(value(samples, 'understudy_readiness', { task: 'qa' }), readiness.readiness!);
  assert.is(value(samples, 'understudy_readiness_comparisons', { task: 'qa' }), 1);
  assert.is(value(samples, 'understudy_task_ready', { task: 'qa' }), 0);
  assert.is(value(samples, 'understudy_queue_depth'), 0);
  assert.is(value(samples, 'understudy_requests_in_flight'), 0);
  // prom-client's default process metrics come along.
  assert.ok(value(samples, 'process_cpu_seconds_total') !== undefined);
  assert.ok(value(samples, 'nodejs_eventloop_lag_seconds') !== undefined);
});


test('a client that leaves mid-stream is counted as 499, its aborted call as a failure', async () => {
  // The teacher sends a word at a time until the client leaves.
  teacher.faults.push({ kind: 'trickle', everyMs: 20 });
  const controller = new AbortController();
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-understudy-task': 'trickle', 'x-understudy-route': 'remote' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Tell me everything.' }], stream: true }),
    signal: controller.signal,
  });
  assert.is(res.status, 200);
  const reader = res.body!.getReader();
  await reader.read();
  // The stream is open: one request in flight (a scrape is not counted as one).
  assert.is(value(await scrape(), 'understudy_requests_in_flight'), 1);
  controller.abort();
  // The server learns of the close on its own time: wait for it to be counted (bounded, so a miss fails).
  const labels = { endpoint: '/v1/chat/completions', route: 'remote', task: 'trickle', status: '499' };
  let samples = await scrape();
  for (let i = 0; i < 250 && value(samples, 'understudy_failures_total', { code: 'ABORTED' }) === undefined; i++) {
    await new Promise((r) => setTimeout(r, 20));
    samples = await scrape();
  }
  assert.is(value(samples, 'understudy_http_requests_total', labels), 1);
  assert.is(value(samples, 'understudy_failures_total', { code: 'ABORTED' }), 1);
  // An aborted call is no answer.
  assert.is(value(samples, 'understudy_answers_total', { route: 'remote' }), 1);
});

test('closing the server removes its listeners from the router', async () => {
  assert.ok(router.listenerCount('call') > listenersBefore.call);
  closed = true;
  await server.close();
  assert.is(router.listenerCount('call'), listenersBefore.call);
  assert.is(router.listenerCount('failure'), listenersBefore.failure);
});

test('a router without a remote or a learner: its local queue depth, nothing saved, no training metric', async () => {
  let depth = 3;
  const local = new (class extends MockBackend {
    queueDepth(): number {
      return depth;
    }
  })({ model: 'mock-local' });
  const bare = await createRouter({ local, useApi: false, embedder: false, cacheDir: freshDir('metrics'), quiet: true, env: {} });
  const other = await startServer(bare, { port: 0 });
  try {
    const res = await fetch(`${other.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.is(res.status, 200);
    const read = async () => parseMetrics(await (await fetch(`${other.url}/metrics`)).text()).samples;
    let samples = await read();
    assert.is(value(samples, 'understudy_queue_depth'), 3);
    assert.is(value(samples, 'understudy_answers_total', { route: 'local' }), 1);
    assert.is(value(samples, 'understudy_local_share'), 1);
    // With no remote there is no remote call to save.
    assert.is(value(samples, 'understudy_remote_calls_saved_total'), 0);
    assert.not.ok(samples.some((s) => s.name === 'understudy_training_rounds_total'));
    depth = 0;
    samples = await read();
    assert.is(value(samples, 'understudy_queue_depth'), 0);
  } finally {
    await other.close();
    await bare.close();
  }
});

test.run();
