// The backends check their options when made, so that a bad one fails at once
// with a coded INVALID_ARGUMENT naming it, and never later: a NaN or missing
// retry count made a failing remote call retry for ever, an empty API key gave
// the openai client's raw "Missing credentials" error, a symbol for timeoutMs
// or contextSize a raw TypeError from deep inside.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LocalBackend, RemoteBackend } from '../src/index.js';
import type { BackendCall } from '../src/router/backend.js';
import { rejection, storiesModel, thrown } from './helpers.js';

// A closed port on this machine: every attempt fails at once, as a connection refused.
const offline = { baseURL: 'http://127.0.0.1:9/v1', model: 'm', timeoutMs: 2000, retryDelayMs: 1, maxRetryDelayMs: 5, cooldownAfter: 3, cooldownMs: 10 };
const call: BackendCall = { kind: 'complete', task: 't', prompt: 'x', params: { temperature: 0, maxTokens: 4, topP: 1, stop: [] } };

/** Settles as `promise` does, or fails the test (instead of hanging it) after `ms`. */
async function settledWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stall = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} neither answered nor failed within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, stall]);
  } finally {
    clearTimeout(timer);
  }
}

const code = (err: Error & { code?: string }) => ({ code: err.code, message: err.message });

test('a NaN retry count is refused when the backend is made (it made answer() retry for ever)', async () => {
  // Before the check, construction succeeded and this never settled.
  const attempt = Promise.resolve().then(async () => {
    const remote = new RemoteBackend({ ...offline, retries: Number.NaN });
    try {
      return await remote.answer(call);
    } finally {
      await remote.close();
    }
  });
  const err = await settledWithin(rejection(attempt), 10_000, 'a call with retries: NaN');
  assert.equal(code(err), { code: 'INVALID_ARGUMENT', message: 'Expected integer between 0 and 100 for retries but received NaN of type number' });
});

test('without a retry count, a failing call gives up after the default retries instead of looping', async () => {
  const remote = new RemoteBackend({ ...offline });
  try {
    const err = await settledWithin(rejection(remote.answer(call)), 10_000, 'a call without retries');
    assert.is(err.code, 'REMOTE_UNAVAILABLE');
    assert.match(err.message, /^cannot reach the remote at http:\/\/127\.0\.0\.1:9: /);
  } finally {
    await remote.close();
  }
});

test('every numeric option of RemoteBackend is finite, in range and an integer where it counts', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ timeoutMs: Symbol('t') }, 'Expected number between 1 and 86400000 for timeoutMs but received Symbol(t) of type symbol'],
    [{ timeoutMs: 0 }, 'Expected number between 1 and 86400000 for timeoutMs but received 0 of type number'],
    [{ streamTimeoutMs: Number.POSITIVE_INFINITY }, 'Expected number between 1 and 86400000 for streamTimeoutMs but received Infinity of type number'],
    [{ retries: 1.5 }, 'Expected integer between 0 and 100 for retries but received 1.5 of type number'],
    [{ retries: -1 }, 'Expected integer between 0 and 100 for retries but received -1 of type number'],
    [{ retries: '3' }, 'Expected integer between 0 and 100 for retries but received "3" of type string'],
    [{ retryDelayMs: Number.NaN }, 'Expected number between 0 and 3600000 for retryDelayMs but received NaN of type number'],
    [{ maxRetryDelayMs: -5 }, 'Expected number between 0 and 3600000 for maxRetryDelayMs but received -5 of type number'],
    [{ cooldownAfter: 0 }, 'Expected integer between 1 and 1000000 for cooldownAfter but received 0 of type number'],
    [{ cooldownMs: null }, 'Expected number between 0 and 86400000 for cooldownMs but received null'],
    [{ model: '' }, 'Expected non-empty string for model but received "" of type string'],
  ];
  for (const [bad, message] of cases) {
    assert.equal(code(thrown(() => new RemoteBackend({ ...offline, ...bad } as never))), { code: 'INVALID_ARGUMENT', message }, message);
  }
});

test('an empty API key is INVALID_ARGUMENT, not the openai client\'s "Missing credentials"', () => {
  assert.equal(code(thrown(() => new RemoteBackend({ ...offline, apiKey: '' }))),
    { code: 'INVALID_ARGUMENT', message: 'Expected non-empty string for apiKey but received an empty string' });
  // A key that is not a string is described by its type alone: it may still be a secret.
  const err = thrown(() => new RemoteBackend({ ...offline, apiKey: 12345678 as never }));
  assert.equal(code(err), { code: 'INVALID_ARGUMENT', message: 'Expected non-empty string for apiKey but received a value of type number' });
  // As createRouter refuses it: a 2-character key would be redacted out of every message.
  const short = thrown(() => new RemoteBackend({ ...offline, apiKey: 'ab' }));
  assert.equal(code(short), { code: 'INVALID_ARGUMENT', message: 'Expected a key of at least 4 characters for apiKey but received one of 2 (a shorter one could not be kept out of the logs without mangling them)' });
  assert.not.match(short.message, /ab\b/);
});

test('LocalBackend.open rejects bad options before loading anything', async () => {
  const cases: [unknown, string][] = [
    [undefined, 'Expected non-empty string for model but received undefined of type undefined'],
    [{ model: storiesModel, contextSize: Symbol('c') }, 'Expected integer between 16 and 16777216 for contextSize but received Symbol(c) of type symbol'],
    [{ model: storiesModel, contextSize: Number.NaN }, 'Expected integer between 16 and 16777216 for contextSize but received NaN of type number'],
    [{ model: storiesModel, sequences: 0 }, 'Expected integer between 1 and 256 for sequences but received 0 of type number'],
    [{ model: storiesModel, threads: 2.5 }, 'Expected integer between 1 and 1024 for threads but received 2.5 of type number'],
    [{ model: storiesModel, chatTemplate: 5 }, 'Expected non-empty string for chatTemplate but received 5 of type number'],
    [{ model: storiesModel, device: 'tpu' }, 'Expected one of auto, cpu, cuda, hip for device but received "tpu" of type string'],
  ];
  for (const [options, message] of cases) {
    // open() is async: it rejects, it never throws.
    let promise: Promise<unknown> | undefined;
    assert.not.throws(() => { promise = LocalBackend.open(options as never); });
    assert.equal(code(await rejection(promise!)), { code: 'INVALID_ARGUMENT', message }, message);
  }
});

test('answer() and fits() check the call they are given (the backends are public; the router\'s calls are always good)', async () => {
  const bad: [unknown, string][] = [
    [undefined, 'Expected call object for call but received undefined of type undefined'],
    [{ ...call, kind: 'embed' }, "Expected 'chat' or 'complete' for kind but received \"embed\" of type string"],
    [{ ...call, prompt: undefined }, 'Expected string for prompt but received undefined of type undefined'],
    [{ ...call, kind: 'chat' }, 'Expected non-empty array of messages for messages but received undefined of type undefined'],
    [{ ...call, params: null }, 'Expected object for params but received null'],
    [{ ...call, params: { ...call.params, maxTokens: Number.NaN } }, 'Expected integer between 1 and 1048576 for params.maxTokens but received NaN of type number'],
    [{ ...call, params: { ...call.params, stop: [5] } }, 'Expected non-empty string or array of non-empty strings for params.stop but received an array of type object'],
    [{ ...call, signal: {} }, 'Expected AbortSignal for signal but received an object of type object'],
    [{ ...call, onText: 'x' }, 'Expected function for onText but received "x" of type string'],
  ];
  const remote = new RemoteBackend({ ...offline, retries: 0 });
  const local = await LocalBackend.open({ model: storiesModel, contextSize: 64, sequences: 1, threads: 1 });
  try {
    for (const [c, message] of bad) {
      assert.equal(code(await rejection(remote.answer(c as never))), { code: 'INVALID_ARGUMENT', message }, `remote: ${message}`);
      assert.equal(code(await rejection(local.answer(c as never))), { code: 'INVALID_ARGUMENT', message }, `local: ${message}`);
      assert.equal(code(thrown(() => local.fits(c as never))), { code: 'INVALID_ARGUMENT', message }, `fits: ${message}`);
    }
    // A good call still goes through.
    assert.ok(local.fits(call));
    assert.type((await local.answer(call)).text, 'string');
  } finally {
    await local.close();
    await remote.close();
  }
});

test.run();
