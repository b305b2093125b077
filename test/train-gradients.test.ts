// The optimizer sees each step's own gradient: llama.cpp's training path never
// clears its gradient accumulators between steps (../shared/TRAINING-NOTES.md),
// so without the trainer's reset step k would apply g1 + ... + gk and the norm
// of the same window's gradient would grow with every step. Clipping caps the
// norm the optimizer gets, and the masked loss ignores the positions it must.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, type Model, type TrainingStepEvent } from '../src/index.js';
import { storiesModel, within } from './helpers.js';

let model: Model;

test.before(async () => {
  model = await within(loadModel(storiesModel, { trainable: true }));
});
test.after(async () => {
  await model?.dispose();
});

// One 200-token example seen again every epoch (one step each).
function example(): { tokens: number[]; mask: number[] } {
  const tokens = model.tokenize('Bob was a big dragon. Bob lived in a cave by the sea. '.repeat(12)).slice(0, 200);
  return { tokens, mask: tokens.map((_, i) => (i >= 100 ? 1 : 0)) };
}

async function steps(options: object): Promise<TrainingStepEvent[]> {
  const trainer = await within(model.createLoraTrainer({ rank: 4, threads: 2, seed: 3 }));
  try {
    const job = trainer.train([example()], { evalSplit: 0, warmup: 0, decay: 'none', ...options });
    const events: TrainingStepEvent[] = [];
    for await (const e of job) if (e.type === 'step') events.push(e);
    await within(job.result);
    return events;
  } finally {
    await trainer.dispose();
    await trainer.adapter.dispose();
  }
}

test('the same window gives the same gradient step after step (no accumulation)', async () => {
  // A rate so small that the adapter barely moves: the gradient of the same
  // window should then stay put. With accumulation it would grow about
  // linearly (step 6 about 6 times step 1, and the first step's is zero-B's).
  const events = await steps({ epochs: 6, learningRate: 1e-7, maxGradNorm: 0 });
  assert.is(events.length, 6);
  const first = events[0]!.gradNorm;
  assert.ok(first > 0 && Number.isFinite(first), `gradient norm ${first}`);
  for (const e of events) {
    assert.ok(Math.abs(e.gradNorm / first - 1) < 0.05, `step ${e.step}: gradient norm ${e.gradNorm} against ${first} at step 1`);
    assert.ok(Math.abs(e.loss - events[0]!.loss) < 1e-3, `step ${e.step}: loss ${e.loss} against ${events[0]!.loss}`);
  }
});

test('clipping: steps whose gradient norm exceeds maxGradNorm are reported clipped; the first never is', async () => {
  const events = await steps({ epochs: 4, learningRate: 1e-7, maxGradNorm: 1e-6 });
  const norms = events.map((e) => e.gradNorm);
  assert.ok(norms.every((n) => n > 1e-6), `norms ${norms}`);
  // The first step's norm is only known once its gradients are: nothing to clip before.
  assert.equal(events.map((e) => e.clipped), [false, true, true, true]);
});

test('a run aborted part-way still counts the steps the adapter took', async () => {
  const trainer = await within(model.createLoraTrainer({ rank: 4, threads: 2, seed: 3 }));
  try {
    const job = trainer.train([example()], { epochs: 50, evalSplit: 0 });
    let seen = 0;
    for await (const e of job) {
      if (e.type === 'step' && ++seen === 3) job.abort();
    }
  } catch (err) {
    assert.is((err as { code?: string }).code, 'ABORTED');
  } finally {
    await trainer.dispose();
    await trainer.adapter.dispose();
  }
  // The step running when abort() came finishes; nothing after it starts.
  assert.ok(trainer.steps >= 3 && trainer.steps <= 4, `steps ${trainer.steps}`);
});

test.run();
