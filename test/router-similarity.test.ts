// answerSimilarity: identical texts, JSON scored by structure (expected values
// worked out by hand from the rules in src/router/similarity.ts), and the
// embedding cosine for everything else, with one embed call per batch.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { answerSimilarities, answerSimilarity, jsonSimilarity, parseStructured } from '../src/router/similarity.js';
import { rejection } from './helpers.js';

/** A tiny deterministic embedder: counts of a, b, c (unit length); it records what it was asked. */
function counting() {
  const calls: string[][] = [];
  const embed = async (texts: string[]) => {
    calls.push(texts);
    return texts.map((t) => {
      const v = new Float32Array([...'abc'].map((ch) => t.split(ch).length - 1));
      const norm = Math.hypot(...v);
      return norm ? v.map((x) => x / norm) : v;
    });
  };
  return { embed, calls };
}
const near = (actual: number, expected: number) => assert.ok(Math.abs(actual - expected) < 1e-9, `${actual} is not ${expected}`);

test('identical strings score 1 without embedding, also after trimming', async () => {
  const { embed, calls } = counting();
  assert.is(await answerSimilarity('hello', 'hello', embed), 1);
  assert.is(await answerSimilarity('  hello\n', 'hello', embed), 1);
  assert.equal(calls, []);
});

test('JSON: same keys and values score exactly 1, in any key order; empty vs empty is 1', async () => {
  const { embed, calls } = counting();
  assert.is(await answerSimilarity('{"a":1,"b":[true,null,"x y"]}', '{ "b": [true, null, "x y"], "a": 1 }', embed), 1);
  assert.is(await answerSimilarity('{}', '{ }', embed), 1);
  assert.is(await answerSimilarity('[]', '[ ]', embed), 1);
  assert.equal(calls, []);
});

test('JSON: hand-computed structural scores', () => {
  // keys {a, b, c}: a equal (1), b only on one side (0), c numbers 4 vs 2 (1 - 2/4 = 0.5) -> 1.5 / 3
  near(jsonSimilarity({ a: 'x', b: 1, c: 4 }, { a: 'x', c: 2 }), 0.5);
  // arrays by position over the longer length: [1, 2, 3] vs [1, 5]: 1, 1 - 3/5 = 0.4, missing 0 -> 1.4 / 3
  near(jsonSimilarity([1, 2, 3], [1, 5]), 1.4 / 3);
  // strings: word sets {the, red, fox} vs {the, brown, fox}: 2 shared of 4 -> 0.5
  near(jsonSimilarity('The red fox', 'the brown fox'), 0.5);
  // case and punctuation are not words: same set -> 1, though the strings differ
  near(jsonSimilarity('Yes!', 'yes'), 1);
  // numbers: 10 vs -10: 1 - 20/10 < 0 -> 0; 0 vs 0 -> 1; 3 vs 0 -> 0
  near(jsonSimilarity(10, -10), 0);
  near(jsonSimilarity(0, 0), 1);
  near(jsonSimilarity(3, 0), 0);
  // booleans, null, and types that differ
  near(jsonSimilarity(true, false), 0);
  near(jsonSimilarity(null, null), 1);
  near(jsonSimilarity(null, {}), 0);
  near(jsonSimilarity('1', 1), 0);
  near(jsonSimilarity([1], { 0: 1 }), 0);
  near(jsonSimilarity({}, { a: 1 }), 0);
  // nested: {"p": {"x": 1, "y": 2}, "q": [true]} vs {"p": {"x": 1, "y": 4}, "q": [false]}
  //   p: (1 + (1 - 2/4)) / 2 = 0.75; q: 0 -> (0.75 + 0) / 2
  near(jsonSimilarity({ p: { x: 1, y: 2 }, q: [true] }, { p: { x: 1, y: 4 }, q: [false] }), 0.375);
});

test('JSON in one ```json fence is parsed; a fence on one side only still compares structurally', async () => {
  const { embed, calls } = counting();
  near(await answerSimilarity('```json\n{"a": 1, "b": 2}\n```', '{"a": 1, "b": 1}', embed), 0.75);
  near(await answerSimilarity('```\n[1, 2]\n```', '  ```JSON\n[1, 2]\n```  ', embed), 1);
  assert.equal(calls, []);
  assert.equal(parseStructured('```json\n{"a": 1}\n```'), { a: 1 });
  // Two fences, a bare number or string, or text around the fence: not structured.
  assert.is(parseStructured('```json\n{"a": 1}\n```\n```json\n{"b": 2}\n```'), undefined);
  assert.is(parseStructured('42'), undefined);
  assert.is(parseStructured('"text"'), undefined);
  assert.is(parseStructured('Here: {"a": 1}'), undefined);
  assert.is(parseStructured('{"a": 1'), undefined);
});

test('prose, and JSON on one side only, fall back to the embedding cosine', async () => {
  const { embed, calls } = counting();
  // "ab" -> (1,1,0)/√2, "a" -> (1,0,0): cosine 1/√2
  near(await answerSimilarity('ab', 'a', embed), Math.SQRT1_2);
  assert.equal(calls, [['ab', 'a']]);
  // '{"a":1}' has no b or c: its vector is (1,0,0); "ab" -> cosine 1/√2
  near(await answerSimilarity('{"a":1}', 'ab', embed), Math.SQRT1_2);
  // "c" vs "a": orthogonal
  near(await answerSimilarity('c', 'a', embed), 0);
});

test('many pairs: one embed call for every pair that needs one, each text once, scores in order', async () => {
  const { embed, calls } = counting();
  const scores = await answerSimilarities([
    ['ab', 'a'],
    ['same', ' same '],
    ['{"n": 3}', '{"n": 4}'],
    ['a', 'c'],
    ['bb', 'b'],
  ], embed);
  assert.is(scores.length, 5);
  near(scores[0]!, Math.SQRT1_2);
  assert.is(scores[1], 1);
  near(scores[2]!, 0.75);
  near(scores[3]!, 0);
  near(scores[4]!, 1);
  assert.equal(calls, [['ab', 'a', 'c', 'bb', 'b']]);
  assert.equal(await answerSimilarities([], embed), []);
  assert.is(calls.length, 1);
});

test('an embedder that returns the wrong number of vectors is an error, not a NaN score', async () => {
  const err = await rejection(answerSimilarity('a', 'b', async () => []));
  assert.is(err.code, 'NATIVE_ERROR');
  assert.is(err.message, 'the embedder returned 0 vectors for 2 texts');
});

test.run();
