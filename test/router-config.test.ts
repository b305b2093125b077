// Configuration from options and UNDERSTUDY_* variables (options win), the
// error that names a bad variable, the log line and events, and the mock
// backend users test with.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { createRouter, LocalBackend, MockBackend, type CallEvent, type ChatRequest, type Router } from '../src/index.js';
import { resolveSettings, type RouterSettings } from '../src/router/config.js';
import { shareThreads } from '../src/router/threads.js';
import { rejection, root, storiesModel, thrown } from './helpers.js';
import { freshDir } from './router-fixture.js';

const open: Router[] = [];
test.after.each(async () => {
  for (const r of open.splice(0)) await r.close();
});

test('defaults, with no options and an empty environment', () => {
  const s = resolveSettings(undefined, {});
  assert.is(s.simThreshold, 0.72);
  assert.is(s.cacheThreshold, 0.95);
  assert.is(s.cacheDir, './.understudy');
  assert.is(s.useApi, true);
  assert.is(s.trainLocal, true);
  assert.is(s.device, 'auto');
  assert.is(s.enableCache, true);
  assert.is(s.model, undefined);
});

test('every documented variable is read', () => {
  const s = resolveSettings(undefined, {
    UNDERSTUDY_MODEL: '/m.gguf', UNDERSTUDY_DEVICE: 'cpu', UNDERSTUDY_CACHE_DIR: '/tmp/c', UNDERSTUDY_SIM_THRESHOLD: '0.8',
    UNDERSTUDY_CACHE_THRESHOLD: '0.9', UNDERSTUDY_USE_API: 'false', UNDERSTUDY_TRAIN_LOCAL: '0', UNDERSTUDY_API_BASE: 'http://127.0.0.1:1/v1',
    UNDERSTUDY_API_MODEL: 'm', UNDERSTUDY_API_KEY: 'key-1', UNDERSTUDY_TEMPERATURE: '0.5', UNDERSTUDY_MAX_TOKENS: '99', UNDERSTUDY_TOP_P: '0.9',
    UNDERSTUDY_TIMEOUT: '2.5', UNDERSTUDY_ENABLE_CACHE: 'no', OPENAI_API_KEY: 'key-2', UNDERSTUDY_THREADS: '3', UNDERSTUDY_STREAM_TIMEOUT: '30',
  });
  assert.equal(
    [s.model, s.device, s.cacheDir, s.simThreshold, s.cacheThreshold, s.useApi, s.trainLocal, s.apiBase, s.apiModel, s.apiKey, s.temperature, s.maxTokens, s.topP, s.timeout, s.enableCache],
    ['/m.gguf', 'cpu', '/tmp/c', 0.8, 0.9, false, false, 'http://127.0.0.1:1/v1', 'm', 'key-1', 0.5, 99, 0.9, 2.5, false],
  );
  assert.equal([s.threads, s.streamTimeout], [3, 30]);
  assert.is(resolveSettings(undefined, { OPENAI_API_KEY: 'key-2' }).apiKey, 'key-2');
});

test('chatTemplate: chatml by default, UNDERSTUDY_CHAT_TEMPLATE, the option winning', () => {
  assert.is(resolveSettings(undefined, {}).chatTemplate, 'chatml');
  assert.is(resolveSettings(undefined, { UNDERSTUDY_CHAT_TEMPLATE: 'rwkv-world' }).chatTemplate, 'rwkv-world');
  assert.is(resolveSettings({ chatTemplate: 'llama3' }, { UNDERSTUDY_CHAT_TEMPLATE: 'rwkv-world' }).chatTemplate, 'llama3');
});

test('options win over the environment', () => {
  const s = resolveSettings({ simThreshold: 0.5, cacheDir: '/opt' }, { UNDERSTUDY_SIM_THRESHOLD: '0.9', UNDERSTUDY_CACHE_DIR: '/env' });
  assert.is(s.simThreshold, 0.5);
  assert.is(s.cacheDir, '/opt');
});

test('trainEvery: default 32, UNDERSTUDY_TRAIN_EVERY, the option winning, and a count of at least 1', () => {
  assert.is(resolveSettings(undefined, {}).trainEvery, 32);
  assert.is(resolveSettings(undefined, { UNDERSTUDY_TRAIN_EVERY: '5' }).trainEvery, 5);
  assert.is(resolveSettings({ trainEvery: 7 }, { UNDERSTUDY_TRAIN_EVERY: '5' }).trainEvery, 7);
  const cases: [RouterSettings | undefined, Record<string, string>, string][] = [
    [undefined, { UNDERSTUDY_TRAIN_EVERY: '0' }, 'UNDERSTUDY_TRAIN_EVERY must be an integer between 1 and 1000000000, got 0'],
    [undefined, { UNDERSTUDY_TRAIN_EVERY: '2.5' }, 'UNDERSTUDY_TRAIN_EVERY must be an integer between 1 and 1000000000, got 2.5'],
    [undefined, { UNDERSTUDY_TRAIN_EVERY: 'often' }, 'UNDERSTUDY_TRAIN_EVERY must be a decimal integer between 1 and 1000000000, got "often"'],
    [{ trainEvery: -1 }, {}, 'option trainEvery must be an integer between 1 and 1000000000, got -1'],
  ];
  for (const [options, env, message] of cases) {
    const err = thrown(() => resolveSettings(options, env));
    assert.is(err.code, 'INVALID_CONFIG');
    assert.is(err.message, message);
  }
});

test('a bad value stops startup with a message naming the variable', () => {
  const cases: [Record<string, string>, string][] = [
    [{ UNDERSTUDY_SIM_THRESHOLD: 'high' }, 'UNDERSTUDY_SIM_THRESHOLD must be a decimal number between 0 and 1, got "high"'],
    [{ UNDERSTUDY_SIM_THRESHOLD: '1.5' }, 'UNDERSTUDY_SIM_THRESHOLD must be a number between 0 and 1, got 1.5'],
    [{ UNDERSTUDY_USE_API: 'maybe' }, 'UNDERSTUDY_USE_API must be true or false, got "maybe"'],
    [{ UNDERSTUDY_DEVICE: 'tpu' }, 'UNDERSTUDY_DEVICE must be one of auto, cpu, cuda, hip, got "tpu"'],
    [{ UNDERSTUDY_MAX_TOKENS: '12.5' }, 'UNDERSTUDY_MAX_TOKENS must be an integer between 1 and 1048576, got 12.5'],
    [{ UNDERSTUDY_TIMEOUT: '-1' }, 'UNDERSTUDY_TIMEOUT must be a number between 0.001 and 86400, got -1'],
    [{ UNDERSTUDY_TEMPERATURE: 'NaN' }, 'UNDERSTUDY_TEMPERATURE must be a decimal number between 0 and 2, got "NaN"'],
  ];
  for (const [env, message] of cases) {
    const err = thrown(() => resolveSettings(undefined, env));
    assert.is(err.code, 'INVALID_CONFIG');
    assert.is(err.message, message);
  }
  const opt = thrown(() => resolveSettings({ cacheThreshold: 2 }, {}));
  assert.is(opt.message, 'option cacheThreshold must be a number between 0 and 1, got 2');
  assert.is(thrown(() => resolveSettings({ simThreshhold: 0.5 } as never, {})).message, 'unknown router option "simThreshhold"');
});

test('numbers in the environment are plain decimals: hex, exponents, -0, blanks and padding are refused', () => {
  const cases: [string, string, string][] = [
    ['UNDERSTUDY_TIMEOUT', '0x10', 'a decimal number between 0.001 and 86400'],
    ['UNDERSTUDY_TIMEOUT', '1e-400', 'a decimal number between 0.001 and 86400'],
    ['UNDERSTUDY_TIMEOUT', '1e3', 'a decimal number between 0.001 and 86400'],
    ['UNDERSTUDY_TEMPERATURE', '-0', 'a decimal number between 0 and 2'],
    ['UNDERSTUDY_MAX_TOKENS', '', 'a decimal integer between 1 and 1048576'],
    ['UNDERSTUDY_MAX_TOKENS', ' 5', 'a decimal integer between 1 and 1048576'],
    ['UNDERSTUDY_MAX_TOKENS', '5 ', 'a decimal integer between 1 and 1048576'],
    ['UNDERSTUDY_MAX_TOKENS', '0b101', 'a decimal integer between 1 and 1048576'],
    ['UNDERSTUDY_THREADS', '+4', 'a decimal integer between 1 and 1024'],
    ['UNDERSTUDY_SIM_THRESHOLD', '.5', 'a decimal number between 0 and 1'],
    ['UNDERSTUDY_USE_API', '', 'true or false'],
    ['UNDERSTUDY_USE_API', ' true', 'true or false'],
  ];
  for (const [name, value, expected] of cases) {
    const err = thrown(() => resolveSettings(undefined, { [name]: value }));
    assert.is(err.code, 'INVALID_CONFIG', `${name}=${JSON.stringify(value)}`);
    assert.is(err.message, `${name} must be ${expected}, got ${JSON.stringify(value)}`);
  }
  assert.is(resolveSettings(undefined, { UNDERSTUDY_TIMEOUT: '0.25' }).timeout, 0.25);
  assert.is(resolveSettings(undefined, { UNDERSTUDY_MAX_TOKENS: '16' }).maxTokens, 16);
});

test('a key too short to be redacted is refused, naming its variable and not echoing it', () => {
  for (const [env, options, name] of [[{ UNDERSTUDY_API_KEY: 'abc' }, {}, 'UNDERSTUDY_API_KEY'], [{ OPENAI_API_KEY: 'xyz' }, {}, 'OPENAI_API_KEY'], [{}, { apiKey: 'q7' }, 'option apiKey']] as const) {
    const err = thrown(() => resolveSettings(options, env));
    assert.is(err.code, 'INVALID_CONFIG');
    assert.is(err.message, `${name} is ${name === 'option apiKey' ? 2 : 3} characters long; a key needs at least 4 to be kept out of the logs and the dataset (leave it unset for a server that takes no key)`);
  }
});

test('credentials in the API base URL are refused at startup without echoing them', () => {
  for (const url of ['http://user:hunter2-pass@127.0.0.1:1/v1', 'https://hunter2-pass@host.example/v1?key=hunter2-pass', 'http://user:hunter2/pass@host/v1']) {
    const err = thrown(() => resolveSettings(undefined, { UNDERSTUDY_API_BASE: url }));
    assert.is(err.code, 'INVALID_CONFIG', url);
    assert.match(err.message, /^UNDERSTUDY_API_BASE must (not carry a user name or password|be an http:\/\/ or https:\/\/ URL)/);
    assert.not.ok(err.message.includes('hunter2'), err.message);
    assert.not.ok(err.message.includes('user:'), err.message);
  }
  const opt = thrown(() => resolveSettings({ apiBase: 'http://user:hunter2-pass@127.0.0.1:1/v1' }, {}));
  assert.is(opt.message, 'option apiBase must not carry a user name or password (put the key in UNDERSTUDY_API_KEY or the apiKey option), got "http://127.0.0.1:1/v1"');
});

test('a model, embedding model or cache directory that fails names its variable', async () => {
  const missing = join(root, 'nope.gguf');
  const model = await rejection(createRouter({ env: { UNDERSTUDY_MODEL: missing, UNDERSTUDY_CACHE_DIR: freshDir('named') } }));
  assert.is(model.code, 'MODEL_NOT_FOUND');
  assert.is(model.message, `UNDERSTUDY_MODEL: model file not found: ${missing}`);
  const embedding = await rejection(createRouter({ remote: new MockBackend(), local: false, env: { UNDERSTUDY_EMBEDDING_MODEL: missing, UNDERSTUDY_CACHE_DIR: freshDir('named') } }));
  assert.is(embedding.code, 'MODEL_NOT_FOUND');
  assert.is(embedding.message, `UNDERSTUDY_EMBEDDING_MODEL: model file not found: ${missing}`);
  const file = join(freshDir('named'), 'a-file');
  writeFileSync(file, 'not a folder');
  // The directory is checked before any model loads: the missing model is never reached.
  const dir = await rejection(createRouter({ env: { UNDERSTUDY_MODEL: missing, UNDERSTUDY_CACHE_DIR: join(file, 'cache') } }));
  assert.is(dir.code, 'INVALID_CONFIG');
  assert.match(dir.message, /^UNDERSTUDY_CACHE_DIR: cannot create the cache directory .*a-file\/cache: ENOTDIR/);
  const opt = await rejection(createRouter({ remote: new MockBackend(), local: false, cacheDir: file, env: {} }));
  assert.match(opt.message, /^option cacheDir: cannot create the cache directory .*a-file: /);
});

test('threads: the default shares the cores between generation and embedding; UNDERSTUDY_THREADS and threads set the budget', async () => {
  assert.equal(shareThreads(undefined, 2), { generation: 1, embedding: 1 });
  assert.equal(shareThreads(undefined, 16), { generation: 10, embedding: 5 });
  assert.equal(shareThreads(6, 64), { generation: 4, embedding: 2 });
  assert.equal(shareThreads(1, 64), { generation: 1, embedding: 1 });
  assert.is(thrown(() => resolveSettings(undefined, { UNDERSTUDY_THREADS: '0' })).message, 'UNDERSTUDY_THREADS must be an integer between 1 and 1024, got 0');
  const cores = availableParallelism();
  const byDefault = await createRouter({ model: storiesModel, useApi: false, contextSize: 64, sequences: 1, cacheDir: freshDir('threads'), quiet: true, env: {} });
  open.push(byDefault);
  const local = byDefault.local as LocalBackend;
  await local.embed(['warm']);
  const used = await local.threads();
  // ggml's threads spin: both contexts together stay within the cores (each needs one at least).
  assert.ok(used.generation + used.embedding! <= Math.max(2, cores), `${JSON.stringify(used)} on ${cores} cores`);
  const set = await createRouter({ model: storiesModel, useApi: false, contextSize: 64, sequences: 1, cacheDir: freshDir('threads'), quiet: true, env: { UNDERSTUDY_THREADS: '3' } });
  open.push(set);
  await (set.local as LocalBackend).embed(['warm']);
  assert.equal(await (set.local as LocalBackend).threads(), { generation: 2, embedding: 1 });
});

test('createRouter() with no argument is configured from the environment alone', () => {
  const script = "import('./src/index.ts').then(async (u) => { const r = await u.createRouter(); const x = await r.chat({ messages: [{ role: 'user', content: 'hi' }], maxTokens: 8 }); console.log(JSON.stringify({ route: x.route, dir: r.cacheDir, threshold: r.settings.simThreshold })); await r.close(); }).catch((e) => { console.log(JSON.stringify({ code: e.code, message: e.message })); });";
  const cacheDir = freshDir('env');
  const env = { PATH: process.env.PATH, UNDERSTUDY_MODEL: storiesModel, UNDERSTUDY_USE_API: 'false', UNDERSTUDY_CACHE_DIR: cacheDir, UNDERSTUDY_SIM_THRESHOLD: '0.8', UNDERSTUDY_QUIET: 'true' };
  const ok = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: root, env, encoding: 'utf8' });
  assert.equal(JSON.parse(ok.stdout), { route: 'local', dir: cacheDir, threshold: 0.8 });
  const bad = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: root, env: { ...env, UNDERSTUDY_CACHE_THRESHOLD: 'x' }, encoding: 'utf8' });
  assert.equal(JSON.parse(bad.stdout), { code: 'INVALID_CONFIG', message: 'UNDERSTUDY_CACHE_THRESHOLD must be a decimal number between 0 and 1, got "x"' });
});

test('no backend at all is NO_BACKEND; a missing model is MODEL_NOT_FOUND', async () => {
  const none = await rejection(createRouter({ env: {}, cacheDir: freshDir('none') }));
  assert.is(none.code, 'NO_BACKEND');
  assert.match(none.message, /set UNDERSTUDY_MODEL to a local GGUF model, or UNDERSTUDY_API_KEY/);
  const offline = await rejection(createRouter({ env: {}, useApi: false, cacheDir: freshDir('none') }));
  assert.match(offline.message, /UNDERSTUDY_USE_API is false and no local model is set/);
  const missing = await rejection(createRouter({ env: {}, model: join(root, 'nope.gguf'), cacheDir: freshDir('none') }));
  assert.is(missing.code, 'MODEL_NOT_FOUND');
});

test('bad requests get INVALID_ARGUMENT with the usual message', async () => {
  const r = await createRouter({ remote: new MockBackend(), local: false, cacheDir: freshDir('bad'), quiet: true, env: {} });
  open.push(r);
  const cases: [unknown, string][] = [
    [null, 'Expected request object for request but received null'],
    [{ messages: [] }, 'Expected non-empty array of messages for messages but received an array of type object'],
    [{ messages: [{ role: 'user', content: 'x' }], temperature: -1 }, 'Expected number between 0 and 2 for temperature but received -1 of type number'],
    [{ messages: [{ role: 'user', content: 'x' }], task: 'has spaces' }, 'Expected task name of 1 to 100 letters, digits or . : / @ - _ for task but received "has spaces" of type string'],
    [{ messages: [{ role: 'user', content: 'x' }], route: 'gpu' }, "Expected 'auto', 'local', 'remote' or 'cache' for route but received \"gpu\" of type string"],
  ];
  for (const [request, message] of cases) {
    const err = await rejection(r.chat(request as ChatRequest));
    assert.is(err.code, 'INVALID_ARGUMENT');
    assert.is(err.message, message);
  }
});

test('one stderr line per call, the same facts as an event, and quiet silences the line', async () => {
  const cacheDir = freshDir('log');
  const script = "import('./src/index.ts').then(async (u) => { const r = await u.createRouter({ remote: new u.MockBackend({ latencyMs: 5 }), local: false, env: {}, cacheDir: process.argv[1], quiet: process.argv[2] === 'quiet' }); r.on('call', (e) => console.log(JSON.stringify(e))); await r.chat({ task: 'summarize', messages: [{ role: 'user', content: 'hi' }] }); await r.chat({ task: 'summarize', messages: [{ role: 'user', content: 'hi' }] }); await r.close(); });";
  const loud = spawnSync(process.execPath, ['--import', 'tsx', '-e', script, cacheDir, 'loud'], { cwd: root, encoding: 'utf8' });
  const lines = loud.stderr.trim().split('\n');
  assert.is(lines.length, 2, loud.stderr);
  assert.match(lines[0]!, /^\[understudy\] remote  task=summarize  \d+ ms$/);
  assert.match(lines[1]!, /^\[understudy\] cache   task=summarize  \d+ ms$/);
  const events = loud.stdout.trim().split('\n').map((l) => JSON.parse(l) as CallEvent);
  assert.equal(events.map((e) => [e.route, e.task, e.reason]), [['remote', 'summarize', 'no local model'], ['cache', 'summarize', 'exact hit']]);
  const quiet = spawnSync(process.execPath, ['--import', 'tsx', '-e', script, freshDir('log'), 'quiet'], { cwd: root, encoding: 'utf8' });
  assert.is(quiet.stderr, '');
  assert.is(quiet.stdout.trim().split('\n').length, 2);
});

test('the mock backend: answers, records calls, fails on demand, reports health', async () => {
  const remote = new MockBackend({ answer: (call) => `mock says ${call.messages!.length}` });
  const local = new MockBackend({ failWith: 'DECODE_FAILED', model: 'broken-local' });
  const r = await createRouter({ remote, local, embedder: false, cacheDir: freshDir('mock'), quiet: true, env: {} });
  open.push(r);
  const a = await r.chat({ messages: [{ role: 'user', content: 'x' }] });
  assert.is(a.text, 'mock says 1');
  assert.is(remote.calls.length, 1);
  const forced = await rejection(r.chat({ messages: [{ role: 'user', content: 'y' }], route: 'local' }));
  assert.is(forced.code, 'DECODE_FAILED');
  assert.is(local.calls.length, 1);
  const health = await r.health();
  assert.ok(health.local!.ok && health.remote!.ok);
  assert.is(health.remote!.detail, 'mock mock');
});

test('a local failure falls back to the remote once the task is local', async () => {
  let broken = false;
  const local = new MockBackend({ model: 'student', answer: () => { if (broken) throw new Error('out of memory'); return 'same answer'; } });
  const remote = new MockBackend({ model: 'teacher', answer: 'same answer' });
  const unit = new Float32Array([1, 0, 0]);
  const r = await createRouter({
    local, remote, embedder: async (texts) => texts.map(() => unit), shadowRate: 1, readinessMin: 1, readinessWindow: 1,
    enableCache: false, cacheDir: freshDir('fallback'), quiet: true, env: {},
  });
  open.push(r);
  assert.is((await r.chat({ task: 't', messages: [{ role: 'user', content: 'a' }] })).route, 'remote');
  await r.idle();
  assert.ok(r.readiness('t').ready);
  assert.is((await r.chat({ task: 't', messages: [{ role: 'user', content: 'b' }] })).route, 'local');
  broken = true;
  const fell = await r.chat({ task: 't', messages: [{ role: 'user', content: 'c' }] });
  assert.is(fell.route, 'remote');
  assert.is(fell.fallbackFrom, 'local');
  assert.is(fell.model, 'teacher');
});

test('a failing embedder or fits() check never stops a call', async () => {
  const local = new MockBackend({ model: 'student' });
  (local as unknown as { fits: () => boolean }).fits = () => { throw new Error('template not supported'); };
  const warnings: string[] = [];
  const r = await createRouter({
    local, remote: new MockBackend({ model: 'teacher' }), embedder: async () => { throw new Error('embedding model crashed'); },
    semanticCache: true, cacheDir: freshDir('robust'), quiet: true, env: {},
  });
  open.push(r);
  r.on('warning', (w: string) => warnings.push(w));
  const a = await r.chat({ task: 't', messages: [{ role: 'user', content: 'a' }] });
  assert.is(a.route, 'remote');
  assert.is(a.model, 'teacher');
  assert.ok(warnings.some((w) => w.includes('semantic cache skipped: embedding model crashed')), warnings.join('\n'));
  assert.is((await r.chat({ task: 't', messages: [{ role: 'user', content: 'a' }] })).route, 'cache');
});

test('UNDERSTUDY_DEVICE naming a GPU this build lacks is INVALID_CONFIG', async () => {
  const { systemInfo } = await import('../src/index.js');
  const other = systemInfo().gpu === 'cuda' ? 'hip' : 'cuda';
  const err = await rejection(createRouter({ model: storiesModel, device: other, useApi: false, cacheDir: freshDir('device'), env: {} }));
  assert.is(err.code, 'INVALID_CONFIG');
  assert.match(err.message, new RegExp(`UNDERSTUDY_DEVICE is ${other} but this build of the addon is for`));
});

test('calls after close() fail with CLOSED', async () => {
  const r = await createRouter({ remote: new MockBackend(), local: false, cacheDir: freshDir('closed'), quiet: true, env: {} });
  await r.close();
  const err = await rejection(r.chat({ messages: [{ role: 'user', content: 'x' }] }));
  assert.is(err.code, 'CLOSED');
  assert.is(err.message, 'the router has been closed');
});

test.run();
