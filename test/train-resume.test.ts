// Resuming training from a saved adapter continues its history: the file saved
// after the second session counts the steps, epochs, tokens and per-epoch
// losses of both, not just its own.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GgufValueType } from '../src/gguf/format.js';
import { readGguf } from '../src/gguf/reader.js';
import { loadModel, type Model } from '../src/index.js';
import { storiesModel, within } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'understudy-train-resume-'));
let model: Model;

test.before(async () => {
  model = await within(loadModel(storiesModel, { trainable: true }));
});
test.after(async () => {
  await model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const examples = [
  { prompt: 'The red fox', completion: ' jumped over the old fence.' },
  { prompt: 'A small bird', completion: ' sang in the tall tree.' },
];

async function history(path: string) {
  const file = await readGguf(path);
  const get = (key: string) => file.metadata.get(`understudy.training.${key}`);
  const losses = (key: string) => Array.from((get(key)!.value as { items: ArrayLike<number> }).items);
  assert.is(get('train_loss')!.type, GgufValueType.ARRAY);
  return { steps: Number(get('steps')!.value), epochs: Number(get('epochs')!.value), tokens: Number(get('tokens')!.value), trainLoss: losses('train_loss') };
}

test('a resumed adapter saves the history of both sessions', async () => {
  const first = join(dir, 'first.gguf');
  const a = await within(model.trainLora(examples, { out: first, epochs: 2, evalSplit: 0, threads: 1, rank: 4 }).result);
  const h1 = await history(first);
  assert.equal(h1, { steps: a.steps, epochs: 2, tokens: a.tokens, trainLoss: h1.trainLoss });
  assert.is(h1.trainLoss.length, 2);

  const second = join(dir, 'second.gguf');
  const b = await within(model.trainLora(examples, { out: second, resumeFrom: first, epochs: 3, evalSplit: 0, threads: 1 }).result);
  const h2 = await history(second);
  assert.is(h2.steps, a.steps + b.steps);
  assert.is(h2.epochs, 5);
  assert.is(h2.tokens, a.tokens + b.tokens);
  assert.equal(h2.trainLoss.slice(0, 2), h1.trainLoss);
  assert.is(h2.trainLoss.length, 5);
});

test.run();
