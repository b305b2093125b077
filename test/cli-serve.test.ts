// `understudy serve` as a user runs it: the real binary in a child process,
// stories260K as the local model and the teacher on loopback as the remote.
// It says where it listens once ready, answers through the router, enforces
// UNDERSTUDY_SERVER_KEY, and on SIGTERM lets a request in flight finish and
// writes its dataset row before exiting 0; a second signal exits 130 at once;
// bad flags are usage errors (exit 2) before anything loads.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { createRouter } from '../src/index.js';
import { cli, storiesModel } from './helpers.js';
import { serveOptions } from '../src/cli/serve.js';
import { API_KEY, freshDir } from './router-fixture.js';
import { until } from './server-fixture.js';
import { startTeacher, type Teacher } from './teacher.js';

const HINT = 'Run `understudy --help` for usage.\n';
const SERVER_KEY = 'sk-understudy-server-0123456789';

let teacher: Teacher;
test.before(async () => {
  teacher = await startTeacher();
});
test.after(async () => {
  await teacher.close();
});

interface Served {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: string | null }>;
}

/** Starts `understudy serve --port 0 ...`; resolves with its URL once it says it listens. */
function serve(args: string[], env: Record<string, string>): Promise<Served> {
  // Only PATH from this machine: its own UNDERSTUDY_* variables must not leak in.
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', ...args], { env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  // A child that never exits would hang the run: after 2 minutes it is killed, and its exit reads as SIGKILL.
  const guard = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => {
    clearTimeout(guard);
    resolve({ code, signal });
  }));
  return new Promise((resolve, reject) => {
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      const m = /^understudy: listening on (http:\/\/\S+:\d+)$/m.exec(stderr);
      if (m) resolve({ child, url: m[1]!, stderr: () => stderr, exit });
    });
    void exit.then(({ code }) => reject(new Error(`serve exited (${code}) before listening:\n${stderr}`)));
  });
}

/** Resolves once `stderr()` matches `pattern` (the child said it did something). */
async function said(served: Served, pattern: RegExp): Promise<void> {
  await until(() => pattern.test(served.stderr()), `serve's stderr to match ${pattern}`);
}

function chat(url: string, content: string, headers: Record<string, string>) {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], max_tokens: 16, metadata: { task: 'qa' } }),
  });
}

function understudy(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH!, ...env }, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('serve answers through the router with its key, and SIGTERM finishes the request in flight and keeps its row', async () => {
  const dir = freshDir('cli-serve');
  const served = await serve(['--threads', '2'], {
    UNDERSTUDY_MODEL: storiesModel, UNDERSTUDY_CACHE_DIR: dir, UNDERSTUDY_API_BASE: teacher.url, UNDERSTUDY_API_KEY: API_KEY,
    UNDERSTUDY_SERVER_KEY: SERVER_KEY, UNDERSTUDY_SHADOW_RATE: '0', UNDERSTUDY_AUDIT_RATE: '0',
  });
  try {
    const auth = { authorization: `Bearer ${SERVER_KEY}` };
    // The default host: this machine only.
    assert.match(served.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.is((await fetch(`${served.url}/health`)).status, 200);
    const refused = await chat(served.url, 'What is a cat?', {});
    assert.is(refused.status, 401);
    assert.is(((await refused.json()) as any).error.code, 'invalid_api_key');
    assert.is((await chat(served.url, 'What is a cat?', { authorization: 'Bearer sk-wrong-key-0123456789' })).status, 401);

    const answered = await chat(served.url, 'What is a cat?', auth);
    assert.is(answered.status, 200);
    assert.is(answered.headers.get('x-understudy-route'), 'remote');
    assert.is(((await answered.json()) as any).choices[0].message.content, 'Answer: What is a cat?');
    const byHeader = await fetch(`${served.url}/v1/models`, { headers: { 'x-api-key': SERVER_KEY } });
    assert.is(byHeader.status, 200);

    // The teacher holds the next answer back; SIGTERM arrives once the request is with it.
    teacher.faults.push({ kind: 'delay', ms: 1500 });
    const seen = teacher.requests.length;
    const inFlight = chat(served.url, 'Where do dogs sleep?', auth);
    await until(() => teacher.requests.length > seen, 'the teacher to receive the request');
    served.child.kill('SIGTERM');
    const late = await inFlight;
    assert.is(late.status, 200);
    assert.is(((await late.json()) as any).choices[0].message.content, 'Answer: Where do dogs sleep?');
    const exit = await served.exit;
    assert.equal(exit, { code: 0, signal: null }, served.stderr());
    assert.not.ok(served.stderr().includes(SERVER_KEY) || served.stderr().includes(API_KEY));
  } finally {
    served.child.kill('SIGKILL');
  }
  // Both rows were written out before the exit.
  const reader = await createRouter({ cacheDir: dir, apiBase: teacher.url, apiKey: API_KEY, local: false, embedder: false, quiet: true, env: {} });
  try {
    assert.equal(reader.datasetRows('qa').map((r) => r.answer), ['Answer: What is a cat?', 'Answer: Where do dogs sleep?']);
  } finally {
    await reader.close();
  }
});

test('a second signal exits 130 without waiting for a request that does not finish', async () => {
  const served = await serve([], { UNDERSTUDY_CACHE_DIR: freshDir('cli-serve'), UNDERSTUDY_API_BASE: teacher.url, UNDERSTUDY_API_KEY: API_KEY, UNDERSTUDY_TRAIN_LOCAL: 'false' });
  try {
    teacher.faults.push({ kind: 'stall' });
    const seen = teacher.requests.length;
    const stuck = chat(served.url, 'Anyone there?', {}).catch((err: Error) => err);
    await until(() => teacher.requests.length > seen, 'the teacher to receive the request');
    served.child.kill('SIGTERM');
    await said(served, /understudy: SIGTERM: stopping/);
    served.child.kill('SIGTERM');
    assert.equal(await served.exit, { code: 130, signal: null }, served.stderr());
    assert.instance(await stuck, Error);
  } finally {
    served.child.kill('SIGKILL');
  }
});

test('SIGINT stops serve as SIGTERM does: exit 0; --host is where it listens', async () => {
  const served = await serve(['--host', 'localhost'], { UNDERSTUDY_CACHE_DIR: freshDir('cli-serve'), UNDERSTUDY_API_BASE: teacher.url, UNDERSTUDY_API_KEY: API_KEY, UNDERSTUDY_TRAIN_LOCAL: 'false' });
  try {
    assert.match(served.url, /^http:\/\/localhost:\d+$/);
    assert.is((await fetch(`${served.url}/health`)).status, 200);
    served.child.kill('SIGINT');
    assert.equal(await served.exit, { code: 0, signal: null }, served.stderr());
    assert.match(served.stderr(), /^understudy: SIGINT: stopping \(requests in flight may finish; SIGINT again exits at once\)$/m);
    // Loopback: no warning about the missing key.
    assert.not.match(served.stderr(), /without a key/);
  } finally {
    served.child.kill('SIGKILL');
  }
});

test('a non-loopback --host without a key is warned about on stderr', async () => {
  const served = await serve(['--host', '0.0.0.0'], { UNDERSTUDY_CACHE_DIR: freshDir('cli-serve'), UNDERSTUDY_API_BASE: teacher.url, UNDERSTUDY_API_KEY: API_KEY, UNDERSTUDY_TRAIN_LOCAL: 'false' });
  try {
    assert.ok(served.stderr().includes('understudy: warning: listening on 0.0.0.0 without a key: anyone who can reach this address can use the server ' +
      "and spend the remote's budget; set UNDERSTUDY_SERVER_KEY\n"), served.stderr());
    served.child.kill('SIGTERM');
    assert.equal(await served.exit, { code: 0, signal: null }, served.stderr());
  } finally {
    served.child.kill('SIGKILL');
  }
});

test('--chat-template reaches the router options (as UNDERSTUDY_CHAT_TEMPLATE would)', () => {
  assert.is(serveOptions(['--chat-template', 'rwkv-world'], {}).router.chatTemplate, 'rwkv-world');
  assert.not.ok('chatTemplate' in serveOptions([], {}).router);
});

test('--api-key is trimmed as a presented key is', () => {
  assert.is(serveOptions(['--api-key', '  key-abc-123\n'], {}).server.apiKey, 'key-abc-123');
  assert.is(serveOptions([], { UNDERSTUDY_SERVER_KEY: ' key-abc-123 ' }).server.apiKey, 'key-abc-123');
});

test('bad flags and variables stop serve before it loads anything', async () => {
  const port = await understudy(['serve', '--port', '70000']);
  assert.equal(port, { code: 2, stdout: '', stderr: `understudy: --port expects an integer from 0 to 65535, got "70000"\n${HINT}` });
  const grace = await understudy(['serve', '--grace=-1']);
  assert.equal(grace, { code: 2, stdout: '', stderr: `understudy: --grace expects an integer from 0 to 2147483647, got "-1"\n${HINT}` });
  // The server's own bounds (a Node timer's limit): a value startServer would refuse is a usage error naming the flag.
  const body = await understudy(['serve', '--body-limit', '2147483648']);
  assert.equal(body, { code: 2, stdout: '', stderr: `understudy: --body-limit expects an integer from 1 to 2147483647, got "2147483648"\n${HINT}` });
  const timeout = await understudy(['serve', '--request-timeout', '0']);
  assert.equal(timeout, { code: 2, stdout: '', stderr: `understudy: --request-timeout expects an integer from 1 to 2147483647, got "0"\n${HINT}` });
  const timeoutHigh = await understudy(['serve', '--request-timeout=9999999999']);
  assert.equal(timeoutHigh, { code: 2, stdout: '', stderr: `understudy: --request-timeout expects an integer from 1 to 2147483647, got "9999999999"\n${HINT}` });
  const key = await understudy(['serve', '--api-key', 'abc']);
  assert.equal(key, { code: 2, stdout: '', stderr: `understudy: --api-key is 3 characters long; a key needs at least 4 (leave it unset for a server that takes no key)\n${HINT}` });
  const extra = await understudy(['serve', 'hello']);
  assert.equal(extra, { code: 2, stdout: '', stderr: `understudy: serve takes no arguments, got "hello"\n${HINT}` });
  // The key from the command line is kept out of whatever is printed (here, a key pasted twice).
  const pasted = await understudy(['serve', '--api-key', SERVER_KEY, SERVER_KEY]);
  assert.equal(pasted, { code: 2, stdout: '', stderr: `understudy: serve takes no arguments, got "[REDACTED]"\n${HINT}` });
  const variable = await understudy(['serve'], { UNDERSTUDY_PORT: 'http' });
  assert.equal(variable, { code: 1, stdout: '', stderr: 'understudy: error [INVALID_CONFIG]: UNDERSTUDY_PORT must be an integer from 0 to 65535, got "http"\n' });
  const unknown = await understudy(['serve', '--bogus']);
  assert.is(unknown.code, 2);
  // Node's own wording after the option's name varies between versions.
  assert.match(unknown.stderr, /^understudy: Unknown option '--bogus'/);
});

test('a port that is taken is error [IO_ERROR] naming it', async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as AddressInfo).port;
  try {
    const r = await understudy(['serve', '--port', String(port)], { UNDERSTUDY_CACHE_DIR: freshDir('cli-serve') });
    assert.equal(r, { code: 1, stdout: '', stderr: `understudy: error [IO_ERROR]: cannot listen on 127.0.0.1:${port}: the port is in use\n` });
  } finally {
    taken.close();
  }
});

test.run();
