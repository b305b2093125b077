// PushStream: the one buffered producer/consumer stream under generations,
// router streams and the server's SSE writer. Pure TypeScript, no model.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PushStream } from '../src/push-stream.js';
import { UnderstudyError } from '../src/errors.js';

const join = (texts: string[]) => texts.join('');

async function readAll<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

// The error a promise rejects with; fails the test if it resolves.
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but it resolved');
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

test('items come out in the order they were pushed, one by one without coalesce', async () => {
  const stream = new PushStream<number>();
  stream.push(1);
  stream.push(2);
  const reading = readAll(stream);
  await turn();
  stream.push(3);
  stream.end();
  assert.equal(await reading, [1, 2, 3]);
});

test('a reader that waits gets each item as it comes; buffered items are coalesced', async () => {
  const stream = new PushStream<string>({ coalesce: join });
  const it = stream[Symbol.asyncIterator]();
  // The reader is waiting: the next push goes straight to it.
  const first = it.next();
  stream.push('a');
  assert.equal(await first, { done: false, value: 'a' });
  // No reader waiting: these pile up and come out as one.
  stream.push('b');
  stream.push('c');
  stream.push('d');
  assert.equal(await it.next(), { done: false, value: 'bcd' });
  stream.end();
  assert.equal(await it.next(), { done: true, value: undefined });
});

test('coalesce sees only what piled up, in order', async () => {
  const seen: string[][] = [];
  const stream = new PushStream<string>({ coalesce: (items) => (seen.push([...items]), items.join('+')) });
  stream.push('x');
  const it = stream[Symbol.asyncIterator]();
  // A single buffered item is handed over as it is.
  assert.equal(await it.next(), { done: false, value: 'x' });
  stream.push('y');
  stream.push('z');
  assert.equal(await it.next(), { done: false, value: 'y+z' });
  assert.equal(seen, [['y', 'z']]);
});

test('end after buffered items: the reader gets them all, then the end', async () => {
  const stream = new PushStream<string>({ coalesce: join });
  stream.push('he');
  stream.push('llo');
  stream.end();
  assert.ok(stream.settled);
  assert.equal(await readAll(stream), ['hello']);
});

test('fail after buffered items: the reader gets them, then the error, once', async () => {
  const stream = new PushStream<number>();
  const boom = new UnderstudyError('ABORTED', 'generation was aborted');
  stream.push(1);
  stream.push(2);
  stream.fail(boom);
  assert.ok(stream.settled);
  const it = stream[Symbol.asyncIterator]();
  assert.equal(await it.next(), { done: false, value: 1 });
  assert.equal(await it.next(), { done: false, value: 2 });
  assert.is(await rejection(it.next()), boom);
  // Like a generator after a throw: done from then on.
  assert.equal(await it.next(), { done: true, value: undefined });
});

test('a reader waiting when the stream fails gets the error', async () => {
  const stream = new PushStream<string>();
  const got: string[] = [];
  const reading = (async () => {
    for await (const item of stream) got.push(item);
  })();
  stream.push('a');
  await turn();
  stream.fail(new UnderstudyError('REMOTE_UNAVAILABLE', 'the remote went away'));
  const err = (await rejection(reading)) as UnderstudyError;
  assert.equal({ code: err.code, message: err.message }, { code: 'REMOTE_UNAVAILABLE', message: 'the remote went away' });
  assert.equal(got, ['a']);
});

test('push, end and fail after the end are ignored', async () => {
  const stream = new PushStream<string>({ coalesce: join });
  stream.push('a');
  stream.end();
  stream.push('b');
  stream.fail(new Error('late'));
  stream.end();
  assert.equal(await readAll(stream), ['a']);
});

test('push after fail is ignored and the first failure wins', async () => {
  const stream = new PushStream<string>();
  const first = new Error('first');
  stream.fail(first);
  stream.push('late');
  stream.fail(new Error('second'));
  assert.is(await rejection(readAll(stream)), first);
});

test('leaving early calls onReturn exactly once and drops what is buffered', async () => {
  let returns = 0;
  const stream = new PushStream<string>({ onReturn: () => returns++ });
  stream.push('a');
  stream.push('b');
  const it = stream[Symbol.asyncIterator]();
  for await (const item of { [Symbol.asyncIterator]: () => it }) {
    assert.is(item, 'a');
    break;
  }
  assert.is(returns, 1);
  // 'b' was dropped, and whatever comes after the reader left goes nowhere and calls nothing.
  stream.push('c');
  stream.end();
  assert.equal(await it.next(), { done: true, value: undefined });
  assert.is(returns, 1);
});

test('onReturn fires once for a reader that throws, and not again on a second return()', async () => {
  let returns = 0;
  const stream = new PushStream<number>({ onReturn: () => returns++ });
  stream.push(1);
  const it = stream[Symbol.asyncIterator]();
  const thrownOut = await rejection(
    (async () => {
      for await (const _ of { [Symbol.asyncIterator]: () => it }) throw new Error('reader failed');
    })(),
  );
  assert.is((thrownOut as Error).message, 'reader failed');
  assert.is(returns, 1);
  await it.return!();
  assert.is(returns, 1);
  assert.equal(await it.next(), { done: true, value: undefined });
});

test('return() while a read is pending ends that read and calls onReturn', async () => {
  let returns = 0;
  const stream = new PushStream<number>({ onReturn: () => returns++ });
  const it = stream[Symbol.asyncIterator]();
  const pending = it.next();
  await it.return!();
  assert.equal(await pending, { done: true, value: undefined });
  assert.is(returns, 1);
});

test('a reader that saw the whole stream, or left after it settled, does not call onReturn', async () => {
  let returns = 0;
  const whole = new PushStream<number>({ onReturn: () => returns++ });
  whole.push(1);
  whole.end();
  assert.equal(await readAll(whole), [1]);
  // The producer had finished: there is nothing to stop.
  const settled = new PushStream<number>({ onReturn: () => returns++ });
  settled.push(1);
  settled.push(2);
  settled.end();
  for await (const _ of settled) break;
  assert.is(returns, 0);
});

test('a second iteration is refused with a clear error', async () => {
  const stream = new PushStream<string>({ name: 'a generation' });
  stream[Symbol.asyncIterator]();
  let err: (Error & { code?: string }) | undefined;
  try {
    stream[Symbol.asyncIterator]();
  } catch (e) {
    err = e as Error & { code?: string };
  }
  assert.instance(err, UnderstudyError);
  assert.equal(
    { code: err!.code, message: err!.message },
    { code: 'INVALID_ARGUMENT', message: 'a generation can be iterated only once; it already has a reader' },
  );
  // In a for-await loop it surfaces as the loop's error.
  const again = (await rejection(readAll(stream))) as UnderstudyError;
  assert.is(again.code, 'INVALID_ARGUMENT');
});

test('a slow reader never blocks the producer: pushes pile up and arrive merged', async () => {
  const count = 10_000;
  const stream = new PushStream<string>({ coalesce: join });
  let pushed = 0;
  let release!: () => void;
  const readerMayGoOn = new Promise<void>((resolve) => (release = resolve));
  const chunks: string[] = [];
  let pushedWhenSecondChunkArrived = -1;
  const reading = (async () => {
    for await (const chunk of stream) {
      if (chunks.length === 1) pushedWhenSecondChunkArrived = pushed;
      chunks.push(chunk);
      // The reader stalls after its first chunk until the producer is done.
      if (chunks.length === 1) await readerMayGoOn;
    }
  })();
  // The producer yields to the event loop between pushes, so a push that
  // waited for the reader would never get past the first one.
  for (let i = 0; i < count; i++) {
    stream.push(`${i},`);
    pushed++;
    if (i % 1000 === 0) await turn();
  }
  stream.end();
  release();
  await reading;
  assert.is(pushedWhenSecondChunkArrived, count);
  assert.is(chunks.length, 2);
  const expected = Array.from({ length: count }, (_, i) => `${i},`).join('');
  assert.is(chunks.join(''), expected);
});

test.run();
