// Hostile JS values given to the router's public functions (createRouter, the
// Router's methods, MockBackend, RemoteBackend, LocalBackend.open): each one
// gives a coded UnderstudyError whose message names the option and describes
// the value in a few words, never a TypeError or RangeError from String() or
// from deep inside. The fuzz suite (test/fuzz-arguments.test.ts) tries every
// value in every slot; this file pins one of each kind with its exact message.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRouter, LocalBackend, MockBackend, RemoteBackend, type Router } from '../src/index.js';
import { modelEmbedder } from '../src/router/embedder.js';
import { describeValue, showValue } from '../src/validate.js';
import { rejection, storiesModel, thrown } from './helpers.js';
import { freshDir } from './router-fixture.js';

const nullProto = () => Object.create(null) as object;
const hugeSparse = () => new Array(2 ** 32 - 1);
class TrapError extends Error {}
const throwingProxy = () => new Proxy({}, { get: () => { throw new TrapError('trap'); }, getPrototypeOf: () => { throw new TrapError('trap'); } });
const revoked = () => {
  const r = Proxy.revocable({}, {});
  r.revoke();
  return r.proxy;
};

test('describeValue never throws and stays short, whatever the value', () => {
  const values: [unknown, string][] = [
    [null, 'null'],
    [nullProto(), 'an object of type object'],
    [hugeSparse(), 'an array of type object'],
    [Symbol('hostile'), 'Symbol(hostile) of type symbol'],
    [10n, '10n of type bigint'],
    [2n ** 700n, 'a bigint of more than 60 digits of type bigint'],
    [throwingProxy(), 'an object of type object'],
    [revoked(), 'a revoked Proxy of type object'],
    [new Uint8Array(1 << 20), 'a Uint8Array of 1048576 bytes of type object'],
    [-0, '-0 of type number'],
    ['x'.repeat(1 << 20), `"${'x'.repeat(60)}…" of type string`],
    [() => 1, 'a function of type function'],
  ];
  for (const [value, text] of values) assert.is(describeValue(value), text);
  // A getter on a shared prototype that throws is survived too.
  const desc = Object.getOwnPropertyDescriptor(Symbol.prototype, 'description')!;
  Object.defineProperty(Symbol.prototype, 'description', { get() { throw new TrapError('getter'); }, configurable: true });
  try {
    assert.is(showValue(Symbol('x')), 'a value');
  } finally {
    Object.defineProperty(Symbol.prototype, 'description', desc);
  }
});

// --- createRouter: options and settings ---

const base = () => ({ remote: new MockBackend(), local: false as const, env: {}, cacheDir: freshDir('hostile'), quiet: true });

test('createRouter(null) is INVALID_ARGUMENT, not a destructuring TypeError', async () => {
  const err = await rejection(createRouter(null as never));
  assert.is(err.code, 'INVALID_ARGUMENT');
  assert.is(err.message, 'Expected object for options but received null');
  const gone = await rejection(createRouter(revoked() as never));
  assert.is(gone.code, 'INVALID_ARGUMENT');
  assert.is(gone.message, 'Expected object for options but received a revoked Proxy of type object');
});

test('a hostile value in any setting is INVALID_CONFIG naming the option and describing the value', async () => {
  const cases: [string, unknown, string][] = [
    ['model', nullProto(), 'option model must be a non-empty string, got an object'],
    ['threads', hugeSparse(), 'option threads must be an integer between 1 and 1024, got an array'],
    ['simThreshold', Symbol('s'), 'option simThreshold must be a number between 0 and 1, got Symbol(s)'],
    ['maxTokens', 10n, 'option maxTokens must be an integer between 1 and 1048576, got 10n'],
    ['cacheDir', throwingProxy(), 'option cacheDir must be a non-empty string, got an object'],
    ['device', revoked(), 'option device must be one of auto, cpu, cuda, hip, got a revoked Proxy'],
    ['apiBase', nullProto(), 'option apiBase must be an http:// or https:// URL, got an object'],
    ['device', 'd'.repeat(1 << 20), `option device must be one of auto, cpu, cuda, hip, got "${'d'.repeat(60)}…"`],
  ];
  for (const [key, value, message] of cases) {
    const err = await rejection(createRouter({ ...base(), [key]: value }));
    assert.is(err.code, 'INVALID_CONFIG', key);
    assert.is(err.message, message);
  }
});

test('a caller\'s own exception from a throwing options Proxy reaches them unchanged', async () => {
  const err = await rejection(createRouter(throwingProxy() as never));
  assert.instance(err, TrapError);
});

test('local, remote, embedder, env and clock of the wrong kind are INVALID_ARGUMENT', async () => {
  const cases: [string, unknown, string][] = [
    ['local', nullProto(), 'Expected backend (an object with answer()) or false for local but received an object of type object'],
    ['remote', Symbol('r'), 'Expected backend (an object with answer()) or false for remote but received Symbol(r) of type symbol'],
    ['embedder', 10n, 'Expected function or false for embedder but received 10n of type bigint'],
    ['env', hugeSparse(), 'Expected object of environment variables for env but received an array of type object'],
    ['clock', {}, 'Expected object with now() and sleep() for clock but received an object of type object'],
  ];
  for (const [key, value, message] of cases) {
    const err = await rejection(createRouter({ ...base(), [key]: value }));
    assert.is(err.code, 'INVALID_ARGUMENT', key);
    assert.is(err.message, message);
  }
});

// --- Router methods ---

test('readiness, datasetRows and exportDataset check their task and path', async () => {
  const router: Router = await createRouter(base());
  try {
    const task = 'Expected task name of 1 to 100 letters, digits or . : / @ - _ for task but received';
    assert.equal(pick(thrown(() => router.readiness(true as never))), { code: 'INVALID_ARGUMENT', message: `${task} true of type boolean` });
    assert.equal(pick(thrown(() => router.datasetRows(nullProto() as never))), { code: 'INVALID_ARGUMENT', message: `${task} an object of type object` });
    assert.equal(pick(thrown(() => router.readiness([] as never))), { code: 'INVALID_ARGUMENT', message: `${task} an array of type object` });
    assert.equal(pick(await rejection(router.exportDataset(undefined as never))),
      { code: 'INVALID_ARGUMENT', message: 'Expected non-empty string for path but received undefined of type undefined' });
    assert.equal(pick(await rejection(router.exportDataset(freshDir('export') + '/x.jsonl', { task: Symbol('t') as never }))),
      { code: 'INVALID_ARGUMENT', message: `${task} Symbol(t) of type symbol` });
    assert.equal(pick(await rejection(router.exportDataset('x.jsonl', null as never))),
      { code: 'INVALID_ARGUMENT', message: 'Expected object for options but received null' });
  } finally {
    await router.close();
  }
});

// --- MockBackend ---

test('MockBackend checks its options when made', () => {
  const cases: [unknown, string][] = [
    [null, 'Expected object for options but received null'],
    [{ answer: 42 }, 'Expected string or function for answer but received 42 of type number'],
    [{ latencyMs: Symbol('l') }, 'Expected number between 0 and 2147483647 for latencyMs but received Symbol(l) of type symbol'],
    [{ latencyMs: 10n }, 'Expected number between 0 and 2147483647 for latencyMs but received 10n of type bigint'],
    [{ latencyMs: hugeSparse() }, 'Expected number between 0 and 2147483647 for latencyMs but received an array of type object'],
    [{ failWith: Infinity }, 'Expected error code such as REMOTE_UNAVAILABLE for failWith but received Infinity of type number'],
    [{ failWith: 'NOT_A_CODE' }, 'Expected error code such as REMOTE_UNAVAILABLE for failWith but received "NOT_A_CODE" of type string'],
    [{ model: nullProto() }, 'Expected non-empty string for model but received an object of type object'],
    [{ embed: 'no' }, 'Expected function for embed but received "no" of type string'],
  ];
  for (const [options, message] of cases) assert.equal(pick(thrown(() => new MockBackend(options as never))), { code: 'INVALID_ARGUMENT', message });
});

test('a MockBackend answer function that returns no string fails the call with INVALID_ARGUMENT', async () => {
  const mock = new MockBackend({ answer: (() => 1) as never });
  const err = await rejection(mock.answer({ kind: 'complete', task: 't', prompt: 'x', params: { temperature: 0, maxTokens: 4, topP: 1, stop: [] } }));
  assert.equal(pick(err), { code: 'INVALID_ARGUMENT', message: 'Expected string from the answer function but received 1 of type number' });
});

// --- RemoteBackend and LocalBackend.open ---

const remoteOptions = { baseURL: 'http://127.0.0.1:9/v1', model: 'm', timeoutMs: 2000, retries: 1, retryDelayMs: 1, maxRetryDelayMs: 5, cooldownAfter: 3, cooldownMs: 10 };

test('RemoteBackend checks its options when made (a NaN retry count retried for ever)', () => {
  const cases: [unknown, string, string][] = [
    [null, 'INVALID_ARGUMENT', 'Expected object for options but received null'],
    [{ ...remoteOptions, retries: Number.NaN }, 'INVALID_ARGUMENT', 'Expected integer between 0 and 100 for retries but received NaN of type number'],
    [{ ...remoteOptions, timeoutMs: nullProto() }, 'INVALID_ARGUMENT', 'Expected number between 1 and 86400000 for timeoutMs but received an object of type object'],
    [{ ...remoteOptions, cooldownAfter: Symbol('c') }, 'INVALID_ARGUMENT', 'Expected integer between 1 and 1000000 for cooldownAfter but received Symbol(c) of type symbol'],
    [{ ...remoteOptions, maxRetryDelayMs: 10n }, 'INVALID_ARGUMENT', 'Expected number between 0 and 3600000 for maxRetryDelayMs but received 10n of type bigint'],
    [{ ...remoteOptions, apiKey: '' }, 'INVALID_ARGUMENT', 'Expected non-empty string for apiKey but received an empty string'],
    [{ ...remoteOptions, apiKey: Number.NaN }, 'INVALID_ARGUMENT', 'Expected non-empty string for apiKey but received a value of type number'],
    [{ ...remoteOptions, baseURL: hugeSparse() }, 'INVALID_CONFIG', 'UNDERSTUDY_API_BASE must be an http:// or https:// URL'],
  ];
  for (const [options, code, message] of cases) assert.equal(pick(thrown(() => new RemoteBackend(options as never))), { code, message });
});

test('LocalBackend.open checks its options before loading a model', async () => {
  const cases: [unknown, string][] = [
    [null, 'Expected object for options but received null'],
    [{ model: storiesModel, device: Symbol('d') }, 'Expected one of auto, cpu, cuda, hip for device but received Symbol(d) of type symbol'],
    [{ model: storiesModel, sequences: 10n }, 'Expected integer between 1 and 256 for sequences but received 10n of type bigint'],
    [{ model: storiesModel, contextSize: hugeSparse() }, 'Expected integer between 16 and 16777216 for contextSize but received an array of type object'],
    [{ model: nullProto() }, 'Expected non-empty string for model but received an object of type object'],
  ];
  for (const [options, message] of cases) assert.equal(pick(await rejection(LocalBackend.open(options as never))), { code: 'INVALID_ARGUMENT', message });
});

// --- the embedding model's threads ---

test('a model embedder runs on the threads it is given, not on every core', async () => {
  const embedder = await modelEmbedder(storiesModel, 0, 1);
  try {
    assert.is(embedder.threads, 1);
  } finally {
    await embedder.close();
  }
});

function pick(err: Error & { code?: string }): { code?: string; message: string } {
  return { code: err.code, message: err.message };
}

test.run();
