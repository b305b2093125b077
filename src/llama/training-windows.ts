// Tokenized examples laid out in fixed-size training windows, and the seeded
// shuffle and held-out split that decide which examples go where.
//
// Packing: short examples share a window, placed first-fit in the order given,
// never split. Measured on 40 stories260K { prompt, completion } examples of 25
// to 54 tokens, 1544 in all (test/training-windows.test.ts builds that set), with
// 256-token windows: one example per window takes 40 windows and pads 84.9% of
// them; first-fit takes 7, the fewest that can hold 1544 tokens, and pads 13.8%.
// A step costs the whole window whatever it holds, so an epoch is 5.7 times
// cheaper. Examples sharing a window are one causal sequence: a later one attends
// to the earlier ones' tokens, as in the usual packed fine-tuning; its loss
// positions still predict only its own tokens (labels never cross examples).
import { invalidArgument } from '../errors.js';
import * as v from '../validate.js';
import { datasetError, MAX_WINDOW, type TokenizedExample } from './training-data.js';

export interface TrainingWindows {
  count: number;
  window: number;
  /** count × window each: the input token at each position, the token it must predict, whether that counts. */
  tokens: Int32Array;
  labels: Int32Array;
  mask: Uint8Array;
  /** Tokens of examples placed (the rest is padding). */
  realTokens: number;
  /** Label positions with mask 1. */
  countedTokens: number;
  /** Where each example (in the order given) starts: window index × window + offset. */
  starts: Int32Array;
}

/**
 * Packs examples (in the given order) into windows of `window` tokens: label[p] = token[p+1] of the same
 * example, mask[p] = that token's mask; the last position of an example and padding have mask 0.
 */
export function packWindows(examples: TokenizedExample[], window: number, padToken: number): TrainingWindows {
  v.integer(window, 'window', 0, 2, MAX_WINDOW);
  v.integer(padToken, 'padToken', 0, 0, 2 ** 31 - 1);
  if (!Array.isArray(examples)) v.fail('array of tokenized examples', 'examples', examples);
  const n = examples.length;
  for (let i = 0; i < n; i++) {
    const e = examples[i];
    if (!(e?.tokens instanceof Int32Array) || !(e.mask instanceof Uint8Array) || e.tokens.length !== e.mask.length || e.tokens.length === 0) {
      v.fail('tokenized example (non-empty Int32Array tokens, Uint8Array mask of the same length)', `examples[${i}]`, e);
    }
    if (e.tokens.length > window) {
      throw datasetError(`examples[${i}]: is ${e.tokens.length} tokens long, longer than the window of ${window} tokens: raise the window option, or shorten or split the example`);
    }
  }
  const starts = firstFit(examples, window);
  let count = 0;
  for (let i = 0; i < n; i++) count = Math.max(count, Math.floor(starts[i]! / window) + 1);
  const size = count * window;
  const tokens = new Int32Array(size).fill(padToken);
  const labels = new Int32Array(size).fill(padToken);
  const mask = new Uint8Array(size);
  let realTokens = 0;
  let countedTokens = 0;
  for (let i = 0; i < n; i++) {
    const e = examples[i]!;
    const at = starts[i]!;
    const length = e.tokens.length;
    tokens.set(e.tokens, at);
    // Position p predicts token p + 1 of the same example. The example's last
    // position keeps the padding's label and mask 0: what follows it (another
    // example, or padding) is not its continuation.
    labels.set(e.tokens.subarray(1), at);
    mask.set(e.mask.subarray(1), at);
    realTokens += length;
    for (let j = 1; j < length; j++) countedTokens += e.mask[j]!;
  }
  return { count, window, tokens, labels, mask, realTokens, countedTokens, starts };
}

// First-fit: each example goes into the earliest window with room left, a new
// one if none. A max-tree over the windows' free space finds that window in
// O(log n) steps, so packing is O(tokens + n log n) rather than n × windows.
// Windows not yet opened have the whole window free, so "earliest with room"
// opens the next new window when no open one fits.
function firstFit(examples: TokenizedExample[], window: number): Int32Array {
  const n = examples.length;
  const starts = new Int32Array(n);
  let leaves = 1;
  while (leaves < n) leaves *= 2;
  const free = new Int32Array(2 * leaves).fill(window);
  for (let i = 0; i < n; i++) {
    const length = examples[i]!.tokens.length;
    let node = 1;
    while (node < leaves) node = free[2 * node]! >= length ? 2 * node : 2 * node + 1;
    const w = node - leaves;
    starts[i] = w * window + (window - free[node]!);
    free[node] -= length;
    for (node >>= 1; node >= 1; node >>= 1) free[node] = Math.max(free[2 * node]!, free[2 * node + 1]!);
  }
  return starts;
}

/** Deterministic shuffle (seeded): a new array, the input untouched. */
export function shuffled<T>(items: T[], seed: number): T[] {
  if (!Array.isArray(items)) v.fail('array', 'items', items);
  const random = generator(checkSeed(seed));
  const out = items.slice();
  // Fisher–Yates, from the end.
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}

/**
 * The held-out split: a seeded choice of about evalSplit × n items for evaluation,
 * the rest for training, each in the order given. With evalSplit > 0 and at least
 * two items, each side gets at least one; evalSplit 0 holds nothing out.
 */
export function splitForEval<T>(items: T[], evalSplit: number, seed: number): { train: T[]; eval: T[] } {
  if (!Array.isArray(items)) v.fail('array', 'items', items);
  if (typeof evalSplit !== 'number' || !(evalSplit >= 0 && evalSplit < 1)) {
    throw invalidArgument(`Expected number from 0 up to (not including) 1 for evalSplit but received ${v.describeValue(evalSplit)}`);
  }
  checkSeed(seed);
  const n = items.length;
  const held = evalSplit === 0 || n < 2 ? 0 : Math.min(n - 1, Math.max(1, Math.round(n * evalSplit)));
  const chosen = new Uint8Array(n);
  for (const i of shuffled([...Array(n).keys()], seed).slice(0, held)) chosen[i] = 1;
  const train: T[] = [];
  const evalItems: T[] = [];
  for (let i = 0; i < n; i++) (chosen[i] ? evalItems : train).push(items[i]!);
  return { train, eval: evalItems };
}

function checkSeed(seed: unknown): number {
  if (seed === undefined) v.fail('non-negative integer', 'seed', seed);
  return v.integer(seed, 'seed', 0, 0);
}

// mulberry32: a 32-bit state, a full-period counter mixed by two multiply-xorshift
// rounds; plenty for shuffling, and the same sequence on every platform. A seed
// above 2^32 folds its high part in, so nearby large seeds still differ.
function generator(seed: number): () => number {
  let state = (seed ^ Math.imul(Math.floor(seed / 2 ** 32), 0x9e3779b1)) | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
