// context.setLoras: the applied adapter set replaced in one exclusive step while
// streaming generations run. Every generation started before a swap gives, token
// for token, the greedy text of the set it started with; every one started after
// gives the new set's; none fails. The references come from a separate quiet
// context with only that set applied.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeLoraAdapter } from '../scripts/make-lora.js';
import { loadModel, type Context, type LoraAdapter, type Model } from '../src/index.js';
import { rejection, storiesModel, within } from './helpers.js';

const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Tom'];
const greedy = { maxTokens: 32, temperature: 0 } as const;
// The streams a swap must overlap run longer (stories260K does not stop before 200 tokens on
// these prompts), so they are still decoding when it is made. Not much longer: past ~100
// tokens the junk of adapter y (near-flat logits) comes out differently from a batch of three
// than from the quiet context, swap or no swap.
const long = { maxTokens: 96, temperature: 0 } as const;
const dir = mkdtempSync(join(tmpdir(), 'understudy-lora-swap-'));
let model: Model;
let busy: Context;
let x: LoraAdapter;
let y: LoraAdapter;
type Set = Array<[LoraAdapter, number]>;
const sets: Record<string, () => Set> = {
  base: () => [],
  x: () => [[x, 1]],
  y: () => [[y, 1]],
  both: () => [[x, 1], [y, 0.5]],
};
/** Greedy text of each prompt under each named set, from a context that does nothing else. */
const reference: Record<string, string[]> = {};
/** The same, `long`. */
const referenceLong: Record<string, string[]> = {};

test.before(async () => {
  model = await within(loadModel(storiesModel));
  x = await within(model.loadLora((await makeLoraAdapter({ model: storiesModel, out: join(dir, 'x.gguf'), seed: 1 })).path));
  y = await within(model.loadLora((await makeLoraAdapter({ model: storiesModel, out: join(dir, 'y.gguf'), seed: 2 })).path));
  const quiet = await within(model.createContext({ contextSize: 256 }));
  for (const [name, set] of Object.entries(sets)) {
    await within(quiet.setLoras(set()));
    reference[name] = [];
    referenceLong[name] = [];
    for (const p of PROMPTS) {
      quiet.clearCache();
      reference[name]!.push((await within(quiet.complete(p, greedy))).text);
      quiet.clearCache();
      referenceLong[name]!.push((await within(quiet.complete(p, long))).text);
    }
  }
  await quiet.dispose();
  busy = await within(model.createContext({ contextSize: 1024, sequences: 4 }));
});
test.after(async () => {
  await model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test('the sets give different greedy text for every prompt (else the swaps below prove nothing)', () => {
  const names = Object.keys(sets);
  for (let i = 0; i < PROMPTS.length; i++) {
    const texts = names.map((name) => reference[name]![i]);
    assert.is(new Set(texts).size, names.length, `${PROMPTS[i]}: ${JSON.stringify(texts)}`);
  }
});

/**
 * Streams a generation; resolves `started` at its first piece and `done` with the joined pieces
 * and the result; `ended()` says whether its last piece has come.
 */
function stream(ctx: Context, prompt: string, params: typeof greedy | typeof long = greedy) {
  const generation = ctx.generate(prompt, params);
  let first!: () => void;
  let over = false;
  const started = new Promise<void>((resolve) => { first = resolve; });
  const done = (async () => {
    let text = '';
    for await (const piece of generation) {
      text += piece;
      first();
    }
    over = true;
    first();
    const result = await generation.result;
    assert.is(text, result.text, 'the streamed pieces join to the result');
    return text;
  })();
  return { started, done, ended: () => over };
}

test('a swap made while streams run: those started before keep the old set, those after get the new one', async () => {
  for (const [from, to] of [['base', 'x'], ['x', 'y'], ['y', 'both'], ['both', 'base']] as const) {
    await within(busy.setLoras(sets[from]!()));
    const before = PROMPTS.map((p) => stream(busy, p, long));
    // Mid-stream: every earlier generation has produced text, and some are still decoding.
    await within(Promise.all(before.map((s) => s.started)));
    const decoding = before.filter((s) => !s.ended()).length;
    const swapped = busy.setLoras(sets[to]!());
    assert.ok(decoding >= 1, `${from} -> ${to}: every stream started before the swap had ended when it was made`);
    const after = PROMPTS.map((p) => stream(busy, p));
    const [old, , fresh] = await within(Promise.all([
      Promise.all(before.map((s) => s.done)), swapped, Promise.all(after.map((s) => s.done)),
    ]));
    assert.equal(old, referenceLong[from], `${from} -> ${to}: started before the swap`);
    assert.equal(fresh, reference[to], `${from} -> ${to}: started after the swap`);
    assert.equal([...busy.loras], sets[to]!());
  }
});

test('swaps queued back to back between generations: each generation runs with the set of its place in the queue', async () => {
  await within(busy.setLoras([]));
  const order = ['x', 'base', 'both', 'y', 'x'] as const;
  const runs: Array<{ name: string; streams: Array<ReturnType<typeof stream>> }> = [];
  const swaps: Array<Promise<void>> = [];
  runs.push({ name: 'base', streams: PROMPTS.map((p) => stream(busy, p)) });
  for (const name of order) {
    swaps.push(busy.setLoras(sets[name]!()));
    runs.push({ name, streams: PROMPTS.map((p) => stream(busy, p)) });
  }
  await within(Promise.all(swaps));
  for (const run of runs) {
    assert.equal(await within(Promise.all(run.streams.map((s) => s.done))), reference[run.name], run.name);
  }
});

test('setLora and removeLora still compose with setLoras in queue order', async () => {
  await within(busy.setLoras([[y, 1]]));
  const a = busy.setLora(x, 1);
  const b = busy.removeLora(y);
  const text = busy.complete(PROMPTS[0]!, greedy);
  await within(Promise.all([a, b]));
  assert.is((await within(text)).text, reference.x![0]);
  assert.equal([...busy.loras], [[x, 1]]);
});

test('bad entries: INVALID_ARGUMENT or DISPOSED, and the applied set is unchanged', async () => {
  await within(busy.setLoras([[x, 1]]));
  const cases: Array<[unknown, string]> = [
    [x, 'Expected array of [adapter, scale] pairs for entries but received an object of type object'],
    [[x], 'Expected [adapter, scale] pair for entries[0] but received an object of type object'],
    [[[x, 1, 2]], 'Expected [adapter, scale] pair for entries[0] but received an array of type object'],
    [[['x.gguf', 1]], 'Expected LoraAdapter for entries[0][0] but received "x.gguf" of type string'],
    [[[x, 200]], 'Expected number between -100 and 100 for entries[0][1] but received 200 of type number'],
    [[[y, 1], [y, 0.5]], `entries[1] repeats the adapter ${y.path}: give each adapter once, with its one scale`],
  ];
  for (const [entries, message] of cases) {
    const err = await rejection(busy.setLoras(entries as Set));
    assert.is(err.code, 'INVALID_ARGUMENT', message);
    assert.is(err.message, message);
  }
  const gone = await within(model.loadLora(x.path));
  await gone.dispose();
  const err = await rejection(busy.setLoras([[y, 1], [gone, 1]]));
  assert.is(err.code, 'DISPOSED');
  assert.is(err.message, 'the LoRA adapter has been disposed');
  assert.equal([...busy.loras], [[x, 1]]);
  assert.is((await within(busy.complete(PROMPTS[0]!, greedy))).text, reference.x![0]);
});

test.run();
