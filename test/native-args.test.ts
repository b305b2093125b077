// The native binding called directly, past the TypeScript checks, with wrong
// types and values: every call throws (or rejects) a JS error; none crashes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { binding } from '../src/llama/binding.js';
import { storiesModel, within } from './helpers.js';

type AnyFn = (...args: unknown[]) => unknown;
const GARBAGE: unknown[] = [undefined, null, 0, -1, 1.5, NaN, '', 'x', {}, [], [[]], new Float32Array(2), () => 1, Symbol('s'), 2n ** 70n];

async function settlesWithError(call: () => unknown): Promise<boolean> {
  try {
    const r = call();
    if (r instanceof Promise) await within(r, 30_000);
    return false;
  } catch (err) {
    assert.instance(err, Error);
    return true;
  }
}

test('module functions reject garbage', async () => {
  const b = binding() as unknown as Record<string, AnyFn>;
  for (const g of GARBAGE) {
    assert.ok(await settlesWithError(() => b.loadModel(g)), `loadModel(${String(g)})`);
    if (typeof g !== 'number') assert.ok(await settlesWithError(() => b.setLogLevel(g)), `setLogLevel(${String(g)})`);
  }
  assert.ok(await settlesWithError(() => b.loadModel(storiesModel, 'opts')));
  assert.ok(await settlesWithError(() => b.loadModel(storiesModel, { gpuLayers: 'many' })));
  assert.ok(await settlesWithError(() => b.loadModel(storiesModel, {}, 'not a function')));
  assert.ok(await settlesWithError(() => b.loadModel(storiesModel, {}, undefined, {})));
});

test('model and context methods reject garbage', async () => {
  const model = await within(binding().loadModel(storiesModel, {})) as unknown as Record<string, AnyFn>;
  const ctx = await within((model.createContext as AnyFn)({ contextSize: 64 }) as Promise<Record<string, AnyFn>>);
  const calls: Array<[string, () => unknown]> = [];
  const notString = GARBAGE.filter((g) => typeof g !== 'string');
  const each = (name: string, values: unknown[], call: (g: unknown) => unknown) =>
    values.forEach((g) => calls.push([`${name}(${String(g)})`, () => call(g)]));
  each('tokenize', notString, (g) => model.tokenize(g));
  each('detokenize', GARBAGE, (g) => model.detokenize(g));
  each('tokenPiece', GARBAGE.filter((g) => g !== 0), (g) => model.tokenPiece(g));
  each('applyChatTemplate', GARBAGE.filter((g) => !(Array.isArray(g) && g.length === 0)), (g) => model.applyChatTemplate(g));
  each('applyChatTemplate message', GARBAGE, (g) => model.applyChatTemplate([g]));
  // (Any object, arrays included, is an options bag to the binding; the TS layer is stricter.)
  each('createContext', GARBAGE.filter((g) => g !== undefined && typeof g !== 'function' && (typeof g !== 'object' || g === null)), (g) => model.createContext(g));
  each('createContext contextSize', [-5, 1.5, 'big', NaN], (g) => model.createContext({ contextSize: g }));
  each('loadLora', [...GARBAGE, '/nonexistent.gguf', storiesModel], (g) => model.loadLora(g));
  each('generate', GARBAGE, (g) => ctx.generate(g));
  each('generate maxTokens', [0, -1, 1.5, 'x', NaN], (g) => ctx.generate(new Int32Array([1]), { maxTokens: g }));
  each('generate stop', ['x', [1], {}], (g) => ctx.generate(new Int32Array([1]), { stop: g }));
  // Grammars: not strings, not parsing, or naming a token the vocabulary lacks (that one fails while sampling).
  each('generate grammar', [...notString.filter((g) => g !== undefined), 'root ::= (', 'start ::= "a"', 'root ::= <[100000]>'],
    (g) => ctx.generate(new Int32Array([1]), { grammar: g }));
  each('embed', GARBAGE, (g) => ctx.embed(g));
  each('setAdapters', GARBAGE, (g) => ctx.setAdapters([[g, 1]]));
  for (const [name, call] of calls) assert.ok(await settlesWithError(call), name);
  // Out-of-range token ids are refused before llama.cpp indexes with them.
  assert.ok(await settlesWithError(() => model.detokenize(new Int32Array([1, 1 << 30]))));
  assert.ok(await settlesWithError(() => ctx.generate(new Int32Array([-3]))));
  (ctx.dispose as AnyFn)();
  (model.dispose as AnyFn)();
  assert.ok(await settlesWithError(() => model.tokenize('x')));
  assert.ok(await settlesWithError(() => ctx.generate(new Int32Array([1]))));
});

test.run();
