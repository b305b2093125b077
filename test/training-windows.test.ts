// Packing tokenized examples into training windows (checked position by
// position, and against a plain first-fit written out here), the padding that
// packing saves, and the seeded shuffle and held-out split.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../src/index.js';
import { tokenizeExamples, type TokenizedExample } from '../src/llama/training-data.js';
import { packWindows, shuffled, splitForEval, type TrainingWindows } from '../src/llama/training-windows.js';
import { storiesModel, thrown, within } from './helpers.js';

const PAD = 0;

/** Every invariant of a packing, from the examples alone. */
function checkPacking(examples: TokenizedExample[], w: TrainingWindows): void {
  const { window } = w;
  assert.is(w.tokens.length, w.count * window);
  assert.is(w.labels.length, w.count * window);
  assert.is(w.mask.length, w.count * window);
  const owner = new Int32Array(w.count * window).fill(-1);
  let real = 0;
  let counted = 0;
  examples.forEach((e, i) => {
    const at = w.starts[i]!;
    const length = e.tokens.length;
    assert.ok(at % window + length <= window, `example ${i} crosses a window edge`);
    for (let j = 0; j < length; j++) {
      assert.is(owner[at + j], -1, `example ${i} overlaps example ${owner[at + j]}`);
      owner[at + j] = i;
      assert.is(w.tokens[at + j], e.tokens[j]);
      // The label is the example's own next token; its last position predicts nothing.
      const last = j === length - 1;
      assert.is(w.labels[at + j], last ? PAD : e.tokens[j + 1]);
      assert.is(w.mask[at + j], last ? 0 : e.mask[j + 1]);
      counted += last ? 0 : e.mask[j + 1]!;
    }
    real += length;
  });
  for (let p = 0; p < owner.length; p++) {
    if (owner[p] !== -1) continue;
    assert.equal([w.tokens[p], w.labels[p], w.mask[p]], [PAD, PAD, 0], `padding at ${p}`);
  }
  assert.is(w.realTokens, real);
  assert.is(w.countedTokens, counted);
  assert.is(w.mask.reduce((a, b) => a + b, 0), counted);
  // No window is all padding.
  for (let k = 0; k < w.count; k++) assert.ok(owner.subarray(k * window, (k + 1) * window).some((o) => o !== -1), `window ${k} is empty`);
}

/** First-fit the plain way, window by window: the reference for the tree in packWindows. */
function firstFitStarts(lengths: number[], window: number): number[] {
  const used: number[] = [];
  return lengths.map((length) => {
    let k = used.findIndex((u) => u + length <= window);
    if (k === -1) k = used.push(0) - 1;
    used[k] += length;
    return k * window + used[k]! - length;
  });
}

function example(tokens: number[], mask: number[]): TokenizedExample {
  return { tokens: Int32Array.from(tokens), mask: Uint8Array.from(mask) };
}

test('packing: labels are the next token of the same example, padding and example ends masked', () => {
  const examples = [
    example([1, 10, 11, 12], [0, 0, 1, 1]),
    example([1, 20, 21], [0, 1, 1]),
    example([1, 30, 31, 32, 33, 34, 35], [0, 0, 0, 1, 1, 1, 1]),
    example([1, 40], [0, 1]),
  ];
  const w = packWindows(examples, 8, PAD);
  // [a a a a b b b -] [c c c c c c c -] [d d - - - - - -]: d needs 2 positions, and the first two have 1 left each.
  assert.equal(Array.from(w.starts), [0, 4, 8, 16]);
  assert.is(w.count, 3);
  assert.equal(Array.from(w.tokens.subarray(0, 8)), [1, 10, 11, 12, 1, 20, 21, PAD]);
  assert.equal(Array.from(w.labels.subarray(0, 8)), [10, 11, 12, PAD, 20, 21, PAD, PAD]);
  assert.equal(Array.from(w.mask.subarray(0, 8)), [0, 1, 1, 0, 1, 1, 0, 0]);
  assert.is(w.realTokens, 16);
  assert.is(w.countedTokens, 2 + 2 + 4 + 1);
  checkPacking(examples, w);
  // A later short example goes back to the first window with room for it.
  const back = packWindows([...examples, example([1, 50], [0, 1])], 9, PAD);
  assert.equal(Array.from(back.starts), [0, 4, 9, 7, 16]);
  checkPacking([...examples, example([1, 50], [0, 1])], back);
});

test('packing: random examples against a plain first-fit, edge cases', () => {
  let state = 7;
  const random = (n: number) => ((state = (state * 1103515245 + 12345) % 2 ** 31), state % n);
  for (const window of [2, 5, 64, 256]) {
    const examples = Array.from({ length: 300 }, () => {
      const length = 1 + random(window);
      return example(Array.from({ length }, () => random(512)), Array.from({ length }, (_, j) => (j > 0 ? random(2) : 0)));
    });
    const w = packWindows(examples, window, PAD);
    assert.equal(Array.from(w.starts), firstFitStarts(examples.map((e) => e.tokens.length), window), `window ${window}`);
    checkPacking(examples, w);
  }
  const none = packWindows([], 16, PAD);
  assert.equal([none.count, none.tokens.length, none.realTokens, none.countedTokens], [0, 0, 0, 0]);
  const full = packWindows([example([1, 2, 3, 4], [0, 1, 1, 1])], 4, 7);
  assert.equal([Array.from(full.labels), Array.from(full.mask)], [[2, 3, 4, 7], [1, 1, 1, 0]]);
});

test('packing: refusals', () => {
  const long = thrown(() => packWindows([example([1, 2], [0, 1]), example([1, 2, 3], [0, 1, 1])], 2, PAD));
  assert.is(long.code, 'INVALID_DATASET');
  assert.is(long.message, 'examples[1]: is 3 tokens long, longer than the window of 2 tokens: raise the window option, or shorten or split the example');
  const checks: Array<[() => unknown, string]> = [
    [() => packWindows([], 1, PAD), 'Expected integer between 2 and 1048576 for window but received 1 of type number'],
    [() => packWindows([], 16, -1), 'Expected integer between 0 and 2147483647 for padToken but received -1 of type number'],
    [() => packWindows({} as never, 16, PAD), 'Expected array of tokenized examples for examples but received an object of type object'],
    [() => packWindows([{ tokens: [1, 2], mask: [0, 1] } as never], 16, PAD),
      'Expected tokenized example (non-empty Int32Array tokens, Uint8Array mask of the same length) for examples[0] but received an object of type object'],
  ];
  for (const [call, message] of checks) {
    const err = thrown(call);
    assert.is(err.code, 'INVALID_ARGUMENT');
    assert.is(err.message, message);
  }
});

// The realistic set the padding figures in src/llama/training-windows.ts come from.
const names = ['Lily', 'Tom', 'Sue', 'Ben', 'Mia', 'Max', 'Anna', 'Sam'];
const things = ['a red ball', 'a big dog', 'a little bird', 'a shiny rock', 'a blue kite', 'a soft teddy bear', 'a tall tree', 'a small boat'];
const places = ['in the park', 'by the river', 'at the beach', 'in the garden', 'near the house'];
const endings = ['They played all day.', 'She smiled and said thank you.', 'He went home and told his mom.', 'It was the best day ever.',
  'They became good friends.', 'The sun was warm and the sky was blue.', 'The end.'];
function stories(n: number): Array<{ prompt: string; completion: string }> {
  return Array.from({ length: n }, (_, i) => {
    const name = names[i % names.length]!;
    const thing = things[(i * 3) % things.length]!;
    const prompt = i % 3 === 0 ? `Once upon a time, ${name} found ${thing} ${places[(i * 7) % places.length]}.` : `${name} saw ${thing}.`;
    const parts = Array.from({ length: 1 + ((i * 5) % 3) }, (_, k) => endings[(i + 2 * k) % endings.length]);
    return { prompt, completion: ` ${parts.join(' ')}` };
  });
}

test('padding: first-fit against one example per window, on 40 short stories', async () => {
  const model = await within(loadModel(storiesModel, { vocabOnly: true }));
  try {
    const examples = tokenizeExamples(model, stories(40), { window: 256 });
    const lengths = examples.map((e) => e.tokens.length);
    assert.equal([Math.min(...lengths), Math.max(...lengths)], [25, 54]);
    const w = packWindows(examples, 256, PAD);
    checkPacking(examples, w);
    assert.is(w.realTokens, 1544);
    assert.is(w.count, Math.ceil(1544 / 256), 'the fewest windows that hold every token');
    const packed = 1 - w.realTokens / (w.count * 256);
    const single = 1 - w.realTokens / (examples.length * 256);
    assert.is(packed.toFixed(3), '0.138');
    assert.is(single.toFixed(3), '0.849');
  } finally {
    await model.dispose();
  }
});

test('shuffled: a seeded permutation, the same for the same seed, unbiased', () => {
  const items = Array.from({ length: 50 }, (_, i) => i);
  const a = shuffled(items, 42);
  assert.equal(shuffled(items, 42), a);
  assert.equal([...a].sort((x, y) => x - y), items);
  assert.equal(items, Array.from({ length: 50 }, (_, i) => i), 'the input is untouched');
  assert.not.equal(a, items);
  assert.not.equal(shuffled(items, 43), a);
  assert.not.equal(shuffled(items, 2 ** 32 + 42), a, 'a seed above 2^32 is not folded onto a small one');
  // Pinned: the same order on every platform and version, as a resumed run needs.
  assert.equal(shuffled(items.slice(0, 10), 42), [0, 7, 3, 5, 2, 1, 8, 9, 4, 6]);
  assert.equal(shuffled([], 1), []);
  // Each of the 6 orders of 3 items about equally often over 6000 seeds
  // (an off-by-one in Fisher–Yates skews them far beyond these bounds).
  const seen = new Map<string, number>();
  for (let seed = 0; seed < 6000; seed++) {
    const key = shuffled(['a', 'b', 'c'], seed).join('');
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  assert.is(seen.size, 6);
  for (const [order, count] of seen) assert.ok(count > 850 && count < 1150, `${order}: ${count}`);
});

test('splitForEval: sizes, disjoint sides in the given order, determinism', () => {
  const items = Array.from({ length: 10 }, (_, i) => `x${i}`);
  const sizes = (n: number, split: number) => {
    const r = splitForEval(items.slice(0, n), split, 42);
    return [r.train.length, r.eval.length];
  };
  assert.equal(sizes(10, 0.1), [9, 1]);
  assert.equal(sizes(10, 0.25), [7, 3]);
  assert.equal(sizes(10, 0), [10, 0]);
  assert.equal(sizes(10, 0.99), [1, 9], 'at least one left to train on');
  assert.equal(sizes(2, 0.01), [1, 1], 'at least one held out');
  assert.equal(sizes(1, 0.5), [1, 0], 'the only item is trained on');
  assert.equal(sizes(0, 0.5), [0, 0]);
  const r = splitForEval(items, 0.3, 7);
  assert.equal(splitForEval(items, 0.3, 7), r);
  assert.equal([...r.train, ...r.eval].sort(), items);
  const inOrder = (xs: string[]) => xs.every((x, i) => i === 0 || items.indexOf(xs[i - 1]!) < items.indexOf(x));
  assert.ok(inOrder(r.train) && inOrder(r.eval));
  const evalSets = new Set(Array.from({ length: 20 }, (_, seed) => splitForEval(items, 0.3, seed).eval.join()));
  assert.ok(evalSets.size > 10, 'the seed chooses the held-out items');
  const checks: Array<[() => unknown, string]> = [
    [() => splitForEval(items, 1, 1), 'Expected number from 0 up to (not including) 1 for evalSplit but received 1 of type number'],
    [() => splitForEval(items, -0.1, 1), 'Expected number from 0 up to (not including) 1 for evalSplit but received -0.1 of type number'],
    [() => splitForEval(items, NaN, 1), 'Expected number from 0 up to (not including) 1 for evalSplit but received NaN of type number'],
    [() => splitForEval(items, '0.1' as never, 1), 'Expected number from 0 up to (not including) 1 for evalSplit but received "0.1" of type string'],
    [() => splitForEval(items, 0.1, -1), 'Expected non-negative integer for seed but received -1 of type number'],
    [() => shuffled(items, 1.5), 'Expected non-negative integer for seed but received 1.5 of type number'],
    [() => shuffled(items, undefined as never), 'Expected non-negative integer for seed but received undefined of type undefined'],
    [() => shuffled('abc' as never, 1), 'Expected array for items but received "abc" of type string'],
  ];
  for (const [call, message] of checks) {
    const err = thrown(call);
    assert.is(err.code, 'INVALID_ARGUMENT');
    assert.is(err.message, message);
  }
});

test.run();
