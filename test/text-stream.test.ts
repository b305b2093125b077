// The native text stream never splits a UTF-8 character across chunks and never
// releases text that could still become a stop string. Driven directly with the
// byte pieces a tokenizer with byte fallback produces.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { binding } from '../src/llama/binding.js';

const chunks = (pieces: Array<string | number[]>, stops: string[] = []) =>
  binding().testing.textStreamChunks(
    pieces.map((p) => (typeof p === 'string' ? new Uint8Array(Buffer.from(p, 'utf8')) : new Uint8Array(p))),
    stops,
  );

test('a character split over byte tokens comes out whole', () => {
  // 🦙 is F0 9F A6 99; é is C3 A9: one byte per token, as byte-fallback vocabularies emit them.
  const r = chunks([' I', [0xf0], [0x9f], [0xa6], [0x99], ' caf', [0xc3], [0xa9]]);
  assert.not.ok(r.chunks.some((c) => c.includes('\ufffd')), JSON.stringify(r.chunks));
  assert.equal(r.chunks, [' I', '', '', '', '🦙', ' caf', '', 'é', '']);
});

test('a stop string split across tokens ends the text before it', () => {
  const r = chunks(['The end', '.\n', '\nUser', ': hi'], ['\n\nUser:']);
  assert.ok(r.stopped);
  assert.is(r.chunks.join(''), 'The end.');
  // Nothing of the stop string was released while it was still only a prefix.
  assert.not.ok(r.chunks.some((c) => c.includes('\n')));
});

test('a held-back prefix that does not become a stop string is released', () => {
  const r = chunks(['a', '\n', 'b'], ['\n\n']);
  assert.not.ok(r.stopped);
  assert.equal(r.chunks, ['a', '', '\nb', '']);
});

test('the earliest of several stop strings wins', () => {
  const r = chunks(['x ENDSTOP'], ['STOP', 'END']);
  assert.ok(r.stopped);
  assert.equal(r.chunks, ['x ']);
});

test('invalid UTF-8 is not held forever', () => {
  const r = chunks([[0xe3], 'a', 'b']);
  assert.is(r.chunks.join(''), '\ufffdab');
});

test('pending bytes are released at the end', () => {
  const r = chunks(['ok', [0xc3]], []);
  assert.is(r.chunks.at(-1), '\ufffd');
});

test.run();
