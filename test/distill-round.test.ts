// One distillation round end to end, through the router the package exports:
// a loopback teacher answers real router calls (the dataset), router.train()
// splits it, trains in the worker, scores the held-out answers and promotes.
// Checked: the report's numbers against splitRows run here on the same rows (the wiring; the split itself is tested in distill-split.test.ts),
// the manifest and v1.gguf, the adapter actually serving (the router's local
// answers equal greedy answers of the model with v1.gguf loaded here), the
// held-out scores in readiness, the event loop ticking through the round, and
// close() in the middle of a round leaving nothing behind. The broader
// workloads (learning curve, noise, rollback, restart, streaming swaps) are in
// the other test/distill-*.test.ts files.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRouter, loadModel, type RoundReport, type Router, type TrainingProgress } from '../src/index.js';
import { splitRows } from '../src/train/split.js';
import { storiesModel, within } from './helpers.js';
import { ngramEmbed, ngramVector } from './ngram-embedder.js';
import { startTeacher, type Teacher } from './teacher.js';

// Names stories260K never writes about, each with an answer of its own.
const NAMES = ['Zorp', 'Vexa', 'Kipo', 'Wumba', 'Daxel', 'Mopsy', 'Olgar', 'Ullo', 'Hobbit', 'Quilla', 'Fennel', 'Tibbet', 'Borka', 'Yarno', 'Samik', 'Miala'];
const answerOf = (name: string) => `${name} is a purple robot who sings.`;
const question = (name: string) => `Who is ${name}?`;
const taskOf = (i: number) => (i % 2 === 0 ? 'who-even' : 'who-odd');
// Settings that make stories260K learn a handful of facts in one round (see train-learning.test.ts).
const TRAINING = { epochs: 24, learningRate: 1e-2, threads: 1 } as const;
const MAX_TOKENS = 16;
const ROUND_MS = 900_000; // a hang guard only: the machine running the tests may be very busy

let teacher: Teacher;
const dirs: string[] = [];

test.before(async () => {
  teacher = await startTeacher({
    answer: ({ messages }) => {
      const text = messages?.at(-1)?.content ?? '';
      const name = NAMES.find((n) => text === question(n));
      return name ? answerOf(name) : 'I do not know.';
    },
  });
});
test.after(async () => {
  await teacher?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-distill-round-'));
  dirs.push(dir);
  return dir;
}

async function openRouter(cacheDir: string, lines: string[]): Promise<Router> {
  return within(createRouter({
    model: storiesModel, apiBase: teacher.url, apiModel: 'teacher-1', apiKey: 'sk-test-distill-round-0000',
    cacheDir, embedder: ngramEmbed, contextSize: 256, sequences: 2, shadowRate: 0, auditRate: 0,
    trainLocal: true, trainEvery: 1_000_000, log: (line) => lines.push(line), env: {}, training: TRAINING,
  }));
}

/** Every name asked once through the router: remote answers, logged as dataset rows. */
async function feed(router: Router): Promise<void> {
  for (let i = 0; i < NAMES.length; i++) {
    const result = await within(router.chat({ task: taskOf(i), messages: [{ role: 'user', content: question(NAMES[i]!) }], maxTokens: MAX_TOKENS }));
    assert.is(result.route, 'remote');
    assert.is(result.text, answerOf(NAMES[i]!));
  }
}

/** The router's local answers to every question, one call at a time, uncached. */
async function localAnswers(router: Router): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < NAMES.length; i++) {
    const r = await within(router.chat({ task: taskOf(i), messages: [{ role: 'user', content: question(NAMES[i]!) }], maxTokens: MAX_TOKENS, route: 'local', cache: false }));
    assert.is(r.route, 'local');
    out.push(r.text);
  }
  return out;
}

const cos = (a: string, b: string) => ngramVector(a).reduce((s, x, i) => s + x * ngramVector(b)[i]!, 0);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test('a round: the report matches the split, v1 is promoted into the manifest and serves, the event loop keeps ticking', async () => {
  const dir = freshDir();
  const lines: string[] = [];
  const router = await openRouter(dir, lines);
  try {
    await feed(router);
    const before = await localAnswers(router);
    const progress: TrainingProgress[] = [];
    const rounds: RoundReport[] = [];
    const adapters: unknown[] = [];
    router.on('training', (p) => progress.push(p));
    router.on('round', (r) => rounds.push(r));
    router.on('adapter', (a) => adapters.push(a));

    // Cause and effect rather than a time limit: timer callbacks must run between
    // the worker's progress messages. Had training or generation blocked this
    // thread, the messages would queue up and arrive back to back, with no tick
    // between them.
    let ticks = 0;
    const ticker = setInterval(() => { ticks++; }, 1);
    const ticksAtStep: number[] = [];
    const onProgress = (p: { phase: string; step?: number }) => {
      if (p.phase === 'train' && p.step !== undefined) ticksAtStep.push(ticks);
    };
    router.on('training', onProgress);
    let report: RoundReport;
    try {
      report = await within(router.train(), ROUND_MS, 'router.train()');
    } finally {
      clearInterval(ticker);
      router.off('training', onProgress);
    }
    const gaps = ticksAtStep.slice(1).map((n, i) => n - ticksAtStep[i]!);
    const ticked = gaps.filter((n) => n > 0).length;
    console.log(`  round: ${report.rows} rows, ${report.steps} steps, loss ${report.loss?.toFixed(3)}, held-out ${report.before?.toFixed(3)} -> ${report.after?.toFixed(3)}, `
      + `${(report.durationMs / 1000).toFixed(1)} s (train ${(report.trainMs / 1000).toFixed(1)} s, eval ${(report.evalMs / 1000).toFixed(1)} s), `
      + `timers ran between ${ticked} of ${gaps.length} pairs of progress messages`);

    // The event loop ran all along: training happened in the worker.
    assert.ok(gaps.length >= 3, `too few progress messages to tell (${ticksAtStep.length})`);
    assert.ok(ticked >= gaps.length / 2, `timers ran between only ${ticked} of ${gaps.length} pairs of progress messages`);

    // The report against the split computed here from the same rows.
    const rows = router.datasetRows();
    assert.is(rows.length, NAMES.length);
    const split = splitRows(rows);
    assert.equal(report.tasks.map((t) => t.task), [...split.keys()].sort());
    for (const t of report.tasks) {
      const side = split.get(t.task)!;
      assert.is(t.trainRows, side.train.length, `training rows of ${t.task}`);
      assert.is(t.heldOutRows, side.heldOut.length, `held-out rows of ${t.task}`);
      assert.ok(t.before !== null && t.after !== null, `${t.task} was not evaluated`);
      assert.is(t.change, t.after! > t.before! + 0.005 ? 'better' : t.after! < t.before! - 0.005 ? 'worse' : 'same');
    }
    assert.ok(report.tasks.every((t) => t.heldOutRows > 0), 'every task keeps held-out rows');
    assert.is(report.rows, report.tasks.reduce((n, t) => n + t.trainRows, 0));
    assert.is(report.skippedRows, 0);
    assert.is(report.before, mean(report.tasks.map((t) => t.before!)));
    assert.is(report.after, mean(report.tasks.map((t) => t.after!)));
    assert.ok(report.after! >= report.before! + 0.01, `held-out similarity did not improve: ${report.before} -> ${report.after}`);
    assert.equal({ round: report.round, trigger: report.trigger, promoted: report.promoted, version: report.version, parent: report.parent },
      { round: 1, trigger: 'manual', promoted: true, version: 1, parent: null });
    assert.is(report.lastRowId, Math.max(...rows.map((r) => r.id)));
    assert.ok(report.steps > 0 && Number.isFinite(report.loss), `steps ${report.steps}, loss ${report.loss}`);
    assert.ok(report.trainMs > 0 && report.evalMs > 0);

    // Events: the report itself, the promotion, and progress from start to done.
    assert.equal(rounds, [report]);
    assert.equal(adapters, [{ action: 'promoted', version: 1, previous: null }]);
    const phases = progress.map((p) => p.phase).filter((p, i, all) => p !== all[i - 1]);
    assert.equal(phases, ['start', 'baseline', 'train', 'evaluate', 'done']);
    const steps = progress.filter((p) => p.step !== undefined).map((p) => p.step!);
    assert.ok(steps.length > 0 && steps.every((s, i) => i === 0 || s > steps[i - 1]!) && steps.at(-1) === report.steps, `progress steps ${steps}`);
    assert.ok(progress.every((p) => p.round === 1));
    assert.ok(lines.some((l) => l.startsWith('[understudy] train   round 1  ') && l.endsWith('promoted v1')), `no round line in ${JSON.stringify(lines.slice(-3))}`);

    // The registry: v1.gguf and a manifest that names it current.
    const files = readdirSync(join(dir, 'adapters')).sort();
    assert.equal(files, ['manifest.json', 'v1.gguf']);
    const manifest = JSON.parse(readFileSync(join(dir, 'adapters', 'manifest.json'), 'utf8'));
    const [key] = Object.keys(manifest.models);
    assert.equal(manifest.models[key!], { current: 1, lastRowId: report.lastRowId, rounds: 1 });
    assert.is(manifest.adapters.length, 1);
    assert.is(manifest.adapters[0].file, 'v1.gguf');
    assert.is(manifest.adapters[0].rowsUsed, report.rows);
    assert.equal(Object.keys(manifest.adapters[0].tasks).sort(), report.tasks.map((t) => t.task));
    const listed = router.adapters();
    assert.equal(listed.map((a) => [a.version, a.status, a.file]), [[1, 'current', join(dir, 'adapters', 'v1.gguf')]]);

    // The held-out scores entered readiness under v1.
    for (const t of report.tasks) {
      const state = router.readiness(t.task);
      assert.is(state.comparisons, t.heldOutRows, `held-out comparisons of ${t.task}`);
      assert.ok(Math.abs(state.readiness! - t.after!) < 1e-9, `readiness of ${t.task}: ${state.readiness} vs ${t.after}`);
    }

    // The adapter serves: the router's local answers are the model's with v1.gguf, computed here.
    const after = await localAnswers(router);
    const source = router.local!.trainingSource!();
    const model = await within(loadModel(storiesModel, { gpuLayers: 0 }));
    try {
      const context = await within(model.createContext({ contextSize: 256 }));
      await within(context.setLora(await within(model.loadLora(join(dir, 'adapters', 'v1.gguf')))));
      for (let i = 0; i < NAMES.length; i++) {
        const expected = await within(context.chat([{ role: 'user', content: question(NAMES[i]!) }], {
          temperature: 0, maxTokens: MAX_TOKENS, ...(source.chatTemplate ? { template: source.chatTemplate } : {}),
        }).result);
        assert.is(after[i], expected.text, `local answer to ${question(NAMES[i]!)} is not v1's`);
      }
    } finally {
      await model.dispose();
    }
    const simBefore = mean(before.map((text, i) => cos(text, answerOf(NAMES[i]!))));
    const simAfter = mean(after.map((text, i) => cos(text, answerOf(NAMES[i]!))));
    console.log(`  local answers vs the teacher's: ${simBefore.toFixed(2)} before, ${simAfter.toFixed(2)} after; e.g. ${JSON.stringify(before[0])} -> ${JSON.stringify(after[0])}`);
    assert.ok(simAfter > simBefore + 0.2, `local answers did not move toward the teacher's: ${simBefore} -> ${simAfter}`);
  } finally {
    await router.close();
  }
});

test('close() during a round aborts it: no v*.gguf, no candidate file, no manifest entry', async () => {
  const dir = freshDir();
  const router = await openRouter(dir, []);
  let closed = false;
  try {
    await feed(router);
    const phases: string[] = [];
    const training = new Promise<void>((resolve) => router.on('training', (p) => {
      phases.push(p.phase);
      if (p.phase === 'train' && p.step !== undefined) resolve();
    }));
    const round = router.train();
    round.catch(() => undefined);
    await within(training, ROUND_MS, 'the first training step');
    // A candidate is being made in the adapter folder's temp name, never as v<N>.gguf.
    await within(router.close());
    closed = true;
    const err = await within(round.then(() => undefined, (e: Error & { code?: string }) => e));
    assert.ok(err, 'the round resolved although the router was closed during it');
    assert.is(err!.code, 'ABORTED');
    assert.is(err!.message, 'the training round was aborted');
    assert.is(phases.at(-1), 'aborted');
    const left = existsSync(join(dir, 'adapters')) ? readdirSync(join(dir, 'adapters')) : [];
    assert.equal(left.filter((f) => f !== 'manifest.json'), [], `files left: ${left}`);
    if (left.includes('manifest.json')) {
      const manifest = JSON.parse(readFileSync(join(dir, 'adapters', 'manifest.json'), 'utf8'));
      assert.equal(manifest.adapters, []);
      for (const state of Object.values(manifest.models) as Array<{ current: number | null; rounds: number }>) {
        assert.equal([state.current, state.rounds], [null, 0]);
      }
    }
  } finally {
    if (!closed) await router.close();
  }
});

test('training options are checked before anything is made', async () => {
  const cases: Array<[unknown, string]> = [
    ['fast', 'Expected object for training but received "fast" of type string'],
    [{ epochs: 0 }, 'Expected integer between 1 and 100000 for training.epochs but received 0 of type number'],
    [{ learningRate: 0 }, 'Expected positive number up to 1 for training.learningRate but received 0 of type number'],
    [{ margin: 2 }, 'Expected number between 0 and 1 for training.margin but received 2 of type number'],
    [{ maxHeldOut: 1.5 }, 'Expected integer between 1 and 10000 for training.maxHeldOut but received 1.5 of type number'],
    [{ auto: 'no' }, 'Expected boolean for training.auto but received "no" of type string'],
  ];
  for (const [training, message] of cases) {
    const cacheDir = join(freshDir(), 'cache');
    const err = await within(createRouter({ model: storiesModel, cacheDir, useApi: false, env: {}, training: training as never })
      .then(() => undefined, (e: Error & { code?: string }) => e));
    assert.ok(err, `training ${JSON.stringify(training)} was accepted`);
    assert.is(err!.code, 'INVALID_ARGUMENT');
    assert.is(err!.message, message);
    assert.not.ok(existsSync(cacheDir), 'the cache directory was made before the options were checked');
  }
});

test('auto: false: rows past trainEvery start no round, and train() still reaches the learner', async () => {
  const lines: string[] = [];
  const router = await within(createRouter({
    model: storiesModel, apiBase: teacher.url, apiModel: 'teacher-1', apiKey: 'sk-test-distill-round-0000',
    cacheDir: freshDir(), embedder: ngramEmbed, contextSize: 256, sequences: 2, shadowRate: 0, auditRate: 0,
    trainLocal: true, trainEvery: 1, log: (line) => lines.push(line), env: {}, training: { ...TRAINING, auto: false },
  }));
  try {
    const progress: TrainingProgress[] = [];
    router.on('training', (p) => progress.push(p));
    const rows: number[] = [];
    router.on('dataset', (r) => rows.push(r.id));
    for (const name of NAMES.slice(0, 3)) {
      await within(router.chat({ task: 'who', messages: [{ role: 'user', content: question(name) }], maxTokens: MAX_TOKENS }));
    }
    await within(router.idle());
    // With auto on, the first row (trainEvery 1) would have queued a round: its 'start' comes a few microtasks later.
    await new Promise((r) => setImmediate(r));
    assert.is(rows.length, 3, 'the calls were logged as dataset rows');
    assert.equal(progress, [], 'an automatic round started');
    // The learner is attached: a manual round runs (here aborted before it trains).
    const err = await within(router.train({ signal: AbortSignal.abort() }).then(() => undefined, (e: Error & { code?: string }) => e));
    assert.is(err?.code, 'ABORTED');
    assert.equal(progress.map((p) => p.phase), ['start', 'aborted']);
  } finally {
    await router.close();
  }
});

test('no learner without an embedder or with trainLocal off: train() says why, and no adapter folder is made', async () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ embedder: false }, 'training is off: it needs an embedder to compare answers (UNDERSTUDY_EMBEDDING_MODEL, the local model, or the embedder option)'],
    [{ embedder: ngramEmbed, trainLocal: false }, 'training is off: UNDERSTUDY_TRAIN_LOCAL is off'],
  ];
  for (const [options, message] of cases) {
    const cacheDir = freshDir();
    const router = await within(createRouter({ model: storiesModel, cacheDir, useApi: false, quiet: true, env: {}, ...options }));
    try {
      const err = await within(router.train().then(() => undefined, (e: Error & { code?: string }) => e));
      assert.ok(err, `train() ran with ${Object.keys(options)}`);
      assert.is(err!.code, 'TRAINING_UNSUPPORTED');
      assert.is(err!.message, message);
      assert.not.ok(existsSync(join(cacheDir, 'adapters')));
    } finally {
      await router.close();
    }
  }
});

test.run();
