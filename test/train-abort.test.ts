// Stopping training: job.abort() mid-epoch, an already-aborted signal, a second
// run on a busy trainer, a progress consumer that throws, and the event loop
// staying free while steps run. Disposing the model, the trainer or its adapter
// mid-run, and a trainer left to the garbage collector, run in a child process
// (test/train-child.ts), where a use-after-free would only kill the child.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, type Model, type TrainingEvent } from '../src/index.js';
import { binding } from '../src/llama/binding.js';
import { rejection, storiesModel, within } from './helpers.js';
import { exitedNormally, inTrainChild, longExamples } from './train-child.js';

const dir = mkdtempSync(join(tmpdir(), 'understudy-train-abort-'));
let model: Model;
let examples: ReturnType<typeof longExamples>;
// Small and quick: one attention matrix per layer, no held-out split, one thread
// (on a loaded machine more threads wait at barriers: a step took 25 times longer with 2).
const quick = { rank: 2, targets: ['attn_q'], evalSplit: 0, threads: 1 };
const handles = () => binding().testing.liveHandles();

test.before(async () => {
  model = await within(loadModel(storiesModel));
  // 200-token examples: one window, so one step, each.
  examples = longExamples(6, model.info.vocab.size);
});
test.after(async () => {
  await model.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const aborted = { code: 'ABORTED', message: 'training was aborted' };
const codeAndMessage = (e: { code?: unknown; message?: unknown }) => ({ code: e.code, message: e.message });

test('job.abort() after the first step: ABORTED from result and iteration, no adapter file, the session freed', async () => {
  const before = handles();
  const out = join(dir, 'aborted.gguf');
  const job = model.trainLora(examples, { ...quick, epochs: 3, out });
  const seen: TrainingEvent[] = [];
  const iterated = (async () => {
    for await (const event of job) {
      seen.push(event);
      if (seen.length === 1) job.abort();
    }
  })();
  assert.equal(codeAndMessage(await rejection(job.result)), aborted);
  assert.equal(codeAndMessage(await rejection(iterated)), aborted);
  assert.ok(job.signal.aborted);
  // Mid-epoch: the first epoch (6 steps) never ended.
  assert.is(seen[0]?.type, 'step');
  assert.ok(seen.every((e) => e.type === 'step') && seen.length < 6, `stopped within the first epoch: ${seen.length} steps`);
  assert.not.ok(existsSync(out), 'no adapter file');
  assert.equal(readdirSync(dir), [], 'no temporary file beside it either');
  // trainLora frees its session and adapter before the job settles.
  assert.equal(handles(), before);
});

test('an already-aborted signal: ABORTED, no step, no file, nothing left alive', async () => {
  const before = handles();
  const controller = new AbortController();
  controller.abort();
  const out = join(dir, 'pre-aborted.gguf');
  const job = model.trainLora(examples, { ...quick, out, signal: controller.signal });
  const events: TrainingEvent[] = [];
  const iterated = (async () => {
    for await (const event of job) events.push(event);
  })();
  assert.equal(codeAndMessage(await rejection(job.result)), aborted);
  assert.equal(codeAndMessage(await rejection(iterated)), aborted);
  assert.equal(events, []);
  assert.not.ok(existsSync(out));
  assert.equal(handles(), before);
});

test('the caller\'s signal aborted mid-run, on a LoraTrainer: ABORTED, and the trainer trains again', async () => {
  const trainer = await within(model.createLoraTrainer(quick));
  try {
    const controller = new AbortController();
    const job = trainer.train(examples, { epochs: 2, evalSplit: 0, signal: controller.signal });
    let steps = 0;
    for await (const event of job) {
      if (event.type === 'step' && ++steps === 1) controller.abort();
      if (steps > 0) break;
    }
    assert.equal(codeAndMessage(await rejection(job.result)), aborted);
    assert.ok(trainer.steps < 12, `stopped early: ${trainer.steps} steps`);
    const again = await within(trainer.train(examples.slice(0, 2), { epochs: 1, evalSplit: 0 }).result);
    assert.is(again.steps, 2);
    assert.ok(again.trainLoss.every(Number.isFinite));
  } finally {
    await trainer.dispose();
    await trainer.adapter.dispose();
  }
});

test('train() twice at once on one trainer: the second is BUSY, the first finishes', async () => {
  const trainer = await within(model.createLoraTrainer(quick));
  try {
    const first = trainer.train(examples.slice(0, 3), { epochs: 1, evalSplit: 0 });
    const second = trainer.train(examples.slice(0, 3), { epochs: 1, evalSplit: 0 });
    assert.equal(codeAndMessage(await rejection(second.result)), { code: 'BUSY', message: 'the trainer is already running a training job' });
    // Saving reads the adapter, which a running step is writing.
    const path = join(dir, 'busy.gguf');
    assert.equal(codeAndMessage(await rejection(trainer.save(path))), { code: 'BUSY', message: 'the trainer is already running a step or reading its adapter' });
    assert.not.ok(existsSync(path));
    const result = await within(first.result);
    assert.is(result.steps, 3);
    assert.is(trainer.steps, 3);
    // Once the first is done, the trainer takes another run.
    assert.is((await within(trainer.train(examples.slice(0, 1), { epochs: 1, evalSplit: 0 }).result)).steps, 1);
  } finally {
    await trainer.dispose();
    await trainer.adapter.dispose();
  }
});

test('a progress consumer that throws: its own error reaches it, the job is unharmed and the process lives', async () => {
  const out = join(dir, 'consumer.gguf');
  const job = model.trainLora(examples.slice(0, 3), { ...quick, epochs: 1, out });
  const mistake = new Error('the consumer failed');
  const consumed = (async () => {
    for await (const event of job) {
      if (event.type === 'step') throw mistake;
    }
  })();
  assert.is(await rejection(consumed), mistake);
  // Another iterator still sees every event, and the job ends as it would have.
  const events: TrainingEvent[] = [];
  for await (const event of job) events.push(event);
  const result = await within(job.result);
  assert.equal(events.map((e) => e.type), ['step', 'step', 'step', 'epoch']);
  assert.is(result.adapter, out);
  assert.ok(existsSync(out));
  rmSync(out);
});

test('the event loop keeps ticking while steps run', async () => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  try {
    const job = model.trainLora(examples, { ...quick, epochs: 2, out: join(dir, 'ticking.gguf') });
    const atStep: number[] = [];
    for await (const event of job) if (event.type === 'step') atStep.push(ticks);
    await within(job.result);
    assert.is(atStep.length, 12);
    // Timers fired between the first and the last step event (11 steps apart): the
    // steps ran off the main thread. A blocked loop would show no tick at all.
    assert.ok(atStep[11]! - atStep[0]! >= 3, `ticks during training: ${atStep.join(', ')}`);
  } finally {
    clearInterval(timer);
    rmSync(join(dir, 'ticking.gguf'), { force: true });
  }
});

test('disposing the model, the trainer or its adapter mid-run; a trainer left to GC (child process)', async () => {
  const o = exitedNormally(await inTrainChild('disposal', 180_000));
  const trainerDisposed = { code: 'DISPOSED', message: 'the trainer was disposed while it was training' };
  // model.dispose() during model.trainLora(): the run stops, nothing is written, everything is freed.
  assert.equal(o.modelDisposedResult, trainerDisposed);
  assert.equal(o.modelDisposedIterate, trainerDisposed);
  assert.equal(o.modelDisposedFile, { exists: false, files: 0 });
  assert.equal(o.modelDisposedHandles, { models: 0, contexts: 0, adapters: 0, trainers: 0 });
  // trainer.dispose() mid-run; then train() and save() are refused.
  assert.equal(o.trainerDisposedResult, trainerDisposed);
  assert.equal(o.trainerDisposedTrainAgain, { code: 'DISPOSED', message: 'the LoRA trainer has been disposed' });
  assert.equal(o.trainerDisposedSave, { code: 'DISPOSED', message: 'the LoRA trainer has been disposed' });
  assert.equal(o.trainerDisposedHandles, { models: 1, contexts: 0, adapters: 1, trainers: 0 });
  assert.equal(o.adapterAfterTrainer, { ok: 'generated', nonEmpty: true });
  // The adapter disposed mid-run: the trainer keeps it until it is disposed itself.
  assert.equal(o.adapterDisposedResult, { ok: 'trained', steps: 3 });
  assert.equal(o.adapterDisposedSave, { ok: 'saved' });
  assert.equal(o.adapterFreedBeforeTrainer, { freed: false });
  assert.equal(o.modelDisposedWhileCreating, { code: 'DISPOSED', message: 'the model has been disposed' });
  assert.equal(o.collected, { before: 1, after: 0 });
  assert.equal(o.finalHandles, { models: 0, contexts: 0, adapters: 0, trainers: 0 });
});

test.run();
