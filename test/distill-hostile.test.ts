// The distillation loop against what goes wrong around it: a round that
// fails (automatic rounds must not retry on the same rows, forever), a round
// with nothing to learn, rows waiting at start-up, a worker or embedder that
// fails uncoded, an embedder that returns NaN, listeners that throw, an
// adapter that serves neither at start nor in the manifest, and a version
// number used a second time. Most run a round with stand-ins for the hooks and
// the worker pool (no model); the last ones run real rounds over stories260K.
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Database from 'better-sqlite3';
import { UnderstudyError } from '../src/errors.js';
import type { DatasetRow } from '../src/router/dataset.js';
import type { AdapterInfo, LearnerHooks, RoundReport } from '../src/router/learner.js';
import { createRouter as createBareRouter } from '../src/router/create-router.js';
import { MockBackend } from '../src/router/mock-backend.js';
import { Distiller } from '../src/train/distiller.js';
import { distillSettings } from '../src/train/options.js';
import { AdapterRegistry } from '../src/train/registry.js';
import { runRound, type RoundInput } from '../src/train/round.js';
import { answerAll } from '../src/train/round-worker.js';
import type { RoundWorkerTask } from '../src/train/round-worker.js';
import { rejection, storiesModel, within } from './helpers.js';
import { distillRouter, freshDir, record, startDistillTeacher, type DistillTeacher } from './distill-fixture.js';
import { ngramEmbed } from './ngram-embedder.js';

const dirs: string[] = [];
const dir = (name: string) => {
  const d = freshDir(name);
  dirs.push(d);
  return d;
};
let teacher: DistillTeacher | undefined;
test.after(async () => {
  await teacher?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A readable chat row of task `task`. */
function row(id: number, task = 't', extra: Partial<DatasetRow> = {}): DatasetRow {
  return {
    id, task, kind: 'chat', messages: [{ role: 'user', content: `question ${id}` }], answer: `answer ${id}`,
    params: { temperature: 0, maxTokens: 8, topP: 1, stop: [] }, usage: { promptTokens: 1, completionTokens: 1 } as never,
    model: 'm', source: 'call', latencyMs: 1, createdAt: 0, ...extra,
  };
}

interface Fake {
  hooks: LearnerHooks;
  warnings: string[];
  events: Array<[string, any]>;
  calls: string[];
  /** Rows the next reads return (ids only matter for counting). */
  rows: DatasetRow[];
  /** Calls rows(): what a round reads (start-up reads are not counted once `started`). */
  reads: number;
  started: boolean;
  failRows: boolean;
  row(id: number): void;
}

function fakeHooks(cacheDir: string, o: { trainEvery?: number; adopt?: (v: number) => Promise<void>; similarities?: LearnerHooks['similarities']; emitThrows?: string } = {}): Fake {
  let listener: ((r: { id: number; task: string; source: 'call' }) => void) | undefined;
  const f: Fake = {
    warnings: [], events: [], calls: [], rows: [], reads: 0, started: false, failRows: false,
    row: (id) => listener?.({ id, task: 't', source: 'call' }),
    hooks: {
      settings: { trainLocal: true, trainEvery: o.trainEvery ?? 2, cacheDir } as never,
      cacheDir,
      rows: (after = 0) => {
        if (f.started) f.reads++;
        // A raw SyntaxError, as a broken row once made one.
        if (f.started && f.failRows) throw new SyntaxError('Unexpected token n in JSON at position 1');
        return f.rows.filter((r) => r.id > after);
      },
      similarities: o.similarities ?? (async (pairs) => pairs.map(([a]) => (a === 'good' ? 0.9 : 0.2))),
      localModel: { path: storiesModel, contextSize: 256 },
      adopt: async (version, file) => {
        f.calls.push(`adopt ${version} ${file === null ? 'null' : 'file'}`);
        await o.adopt?.(version);
      },
      forget: (version) => void f.calls.push(`forget ${version}`),
      onRow: (l) => {
        listener = l;
        return () => (listener = undefined);
      },
      log: () => {},
      warn: (m) => void f.warnings.push(m),
      emit: (event, payload) => {
        f.events.push([event, payload]);
        if (event === o.emitThrows) throw new Error('listener bug');
      },
    },
  };
  return f;
}

const settle = () => new Promise((r) => setTimeout(r, 50));
const rounds = (f: Fake) => f.events.filter(([e, p]) => e === 'training' && p.phase === 'start').length;

test('a failed automatic round waits for trainEvery new rows; a failed manual one starts no automatic round on its rows', async () => {
  const f = fakeHooks(dir('hostile-auto'));
  const d = new Distiller(f.hooks, { auto: true });
  await d.start();
  f.started = true;
  f.failRows = true;
  f.row(1);
  f.row(2);
  await settle();
  assert.is(f.reads, 1, 'one automatic round, not one retry after another');
  assert.equal(f.warnings, ["the automatic training round failed (the next starts after 2 more rows): the training round failed: Unexpected token n in JSON at position 1"]);
  f.row(3);
  await settle();
  assert.is(f.reads, 1, 'one new row is not enough');
  f.row(4);
  await settle();
  assert.is(f.reads, 2, 'two new rows start the next one');
  // A manual round that fails with rows arriving meanwhile: those rows were its data.
  const manual = d.train();
  f.row(5);
  f.row(6);
  const err = await rejection(manual);
  assert.instance(err, UnderstudyError);
  assert.is(err.code, 'NATIVE_ERROR');
  assert.is(err.message, "the training round failed: Unexpected token n in JSON at position 1");
  await settle();
  assert.is(f.reads, 3, 'no automatic round on the rows the manual round failed on');
  await d.close();
});

test('a skipped automatic round ("not enough data") is not rerun on every new row; rows waiting at start-up start a round', async () => {
  const f = fakeHooks(dir('hostile-skip'));
  // Rows no round can use: every one is refused, so each round is skipped.
  f.rows = [row(1, 't', { messages: [] }), row(2, 't', { messages: [] })];
  const d = new Distiller(f.hooks, { auto: true });
  await d.start();
  f.started = true;
  await settle();
  const reports = () => f.events.filter(([e]) => e === 'round').map(([, p]) => p as RoundReport);
  assert.is(reports().length, 1, 'the two rows logged while the router was down start a round after start()');
  assert.is(reports()[0]!.trigger, 'auto');
  assert.is(reports()[0]!.reason, 'not enough data: no training rows yet (0 held out)');
  assert.is(reports()[0]!.skippedRows, 2);
  assert.equal(f.warnings, ['round 1 left out 2 dataset rows it cannot use (ids 1, 2): dataset row 1 (task "t") cannot be used: it is a chat row without messages']);
  f.rows.push(row(3, 't', { messages: [] }));
  f.row(3);
  await settle();
  assert.is(reports().length, 1, 'one new row after a skipped round starts none');
  f.rows.push(row(4, 't', { messages: [] }));
  f.row(4);
  await settle();
  assert.is(reports().length, 2);
  assert.is(reports()[1]!.round, 1, 'a skipped round is not counted');
  await d.close();
});

/** A worker pool stand-in: writes the candidate file, answers 'bad' before and 'good' after. */
function fakePool(seen: RoundWorkerTask[] = [], fail?: Error) {
  return {
    run: async (task: RoundWorkerTask) => {
      seen.push(task);
      if (fail) throw fail;
      writeFileSync(task.candidateFile, 'candidate');
      return {
        ok: true, before: task.heldOut.map(() => 'bad'), after: task.heldOut.map(() => 'good'), trained: true, steps: 1, loss: 1,
        used: task.train.map(() => true), window: 256, trainMs: 1, evalMs: 1,
      };
    },
  };
}

function roundInput(f: Fake, cacheDir: string, pool: unknown, parent: AdapterInfo | null = null): RoundInput {
  f.rows = Array.from({ length: 16 }, (_, i) => row(i + 1));
  f.started = true;
  return {
    hooks: f.hooks, registry: AdapterRegistry.open(cacheDir, (m) => f.warnings.push(m)), base: { key: 'k', name: null },
    source: { path: storiesModel, contextSize: 256 }, settings: distillSettings({}), pool: pool as never, trigger: 'manual',
    signal: new AbortController().signal, parent,
  };
}

test("a promoted version forgets that number's old comparisons before it is adopted; a throwing 'adapter' listener undoes nothing", async () => {
  const cacheDir = dir('hostile-promote');
  const f = fakeHooks(cacheDir, { emitThrows: 'adapter' });
  const report = await runRound(roundInput(f, cacheDir, fakePool()));
  assert.is(report.version, 1);
  assert.ok(report.promoted);
  assert.equal(f.calls, ['forget 1', 'adopt 1 file'], 'forget, then adopt; no rollback adopt');
  assert.is(AdapterRegistry.open(cacheDir, () => {}).current('k')?.version, 1, 'the manifest still names v1');
  assert.equal(f.warnings, ["a listener of the 'adapter' event failed: listener bug"]);
});

test('a crashed worker, an embedder that throws, and NaN similarities fail the round with a coded error and leave nothing', async () => {
  const cases: Array<[string, unknown, Partial<Parameters<typeof fakeHooks>[1]>, string, string]> = [
    ['worker', fakePool([], new Error('worker exited with code 134')), {}, 'NATIVE_ERROR', 'the training round failed: worker exited with code 134'],
    ['embedder', fakePool(), { similarities: async () => { throw new TypeError('embed is not a function'); } },
      'NATIVE_ERROR', 'the training round could not compare held-out answers: the embedder failed: embed is not a function'],
    ['embedder-coded', fakePool(), { similarities: async () => { throw new UnderstudyError('OUT_OF_MEMORY', 'no memory for the batch'); } },
      'OUT_OF_MEMORY', 'the training round could not compare held-out answers: the embedder failed: no memory for the batch'],
    ['nan', fakePool(), { similarities: async (pairs) => pairs.map(() => Number.NaN) }, 'NATIVE_ERROR',
      'the embedder returned non-finite similarities (6 of 6, the first NaN): held-out answers cannot be compared, so the candidate is not judged'],
  ];
  for (const [name, pool, options, code, message] of cases) {
    const cacheDir = dir(`hostile-${name}`);
    const f = fakeHooks(cacheDir, options);
    const err = await rejection(runRound(roundInput(f, cacheDir, pool)));
    assert.instance(err, UnderstudyError, name);
    assert.is(err.code, code, name);
    assert.is(err.message, message, name);
    assert.equal(f.calls, [], `${name}: nothing adopted`);
    assert.equal(readdirSync(join(cacheDir, 'adapters')).filter((x) => x.endsWith('.gguf')), [], `${name}: no adapter file left`);
    assert.is(f.events.at(-1)?.[1].phase, 'failed', name);
  }
});

test('a round starts from the adapter that serves, not from an unloadable current one, and says so', async () => {
  const cacheDir = dir('hostile-parent');
  const f = fakeHooks(cacheDir);
  const first = await runRound(roundInput(f, cacheDir, fakePool()));
  assert.is(first.version, 1);
  // v1 is the manifest's current, but (say) failed to load: the base model serves.
  const seen: RoundWorkerTask[] = [];
  f.warnings.length = 0;
  const second = await runRound(roundInput(f, cacheDir, fakePool(seen), null));
  assert.is(seen[0]!.parentFile, null, 'the worker measures and trains from the base model');
  assert.is(second.parent, null);
  assert.is(second.version, 2);
  assert.is(AdapterRegistry.open(cacheDir, () => {}).list('k').find((a) => a.version === 2)?.parent, null);
  assert.equal(f.warnings, ["round 2 starts from base model, which serves, not from v1, the manifest's current (it is not loaded)"]);
});

test('answerAll: a held-out call the model layer refuses is unanswered (null); an abort or a decode failure still fails', async () => {
  const fail = (err: Error) => ({ clearCache() {}, complete: async () => { throw err; }, chat: () => ({ result: Promise.reject(err) }) });
  const calls = [{ kind: 'complete' as const, prompt: 'p', maxTokens: 4, stop: [] }, { kind: 'chat' as const, messages: [{ role: 'user', content: 'q' }], maxTokens: 4, stop: [] }];
  const signal = new AbortController().signal;
  for (const code of ['INVALID_ARGUMENT', 'INVALID_DATASET', 'CONTEXT_OVERFLOW'] as const) {
    assert.equal(await answerAll(fail(new UnderstudyError(code, 'refused')) as never, calls, undefined, signal), [null, null], code);
  }
  const err = await rejection(answerAll(fail(new UnderstudyError('DECODE_FAILED', 'decode failed')) as never, calls, undefined, signal));
  assert.is(err.code, 'DECODE_FAILED');
  assert.is(err.message, 'decode failed');
});

test("the router's hooks: a listener that throws on a learner's event is a warning, not the learner's exception", async () => {
  class Adapting extends MockBackend {
    async useAdapter(): Promise<void> {}
    trainingSource() {
      return { path: '/models/base.gguf', contextSize: 512 };
    }
  }
  const lines: string[] = [];
  const router = await createBareRouter({
    local: new Adapting({ model: 'local' }) as never, remote: false as never, cacheDir: dir('hostile-hooks'), embedder: ngramEmbed,
    log: (l: string) => lines.push(l), env: {},
  } as never);
  let hooks: LearnerHooks | undefined;
  router.attachLearner((h) => {
    hooks = h;
    return { train: async () => ({}) as RoundReport, adapters: () => [], rollback: async () => null, close: async () => {} };
  });
  const warnings: string[] = [];
  router.on('warning', (m: string) => warnings.push(m));
  router.on('training', () => { throw new Error('listener bug'); });
  router.on('round', () => { throw new Error('round listener bug'); });
  hooks!.emit('training', { round: 1, phase: 'start' });
  hooks!.emit('round', { round: 1 } as RoundReport);
  assert.equal(warnings, ["a listener of the 'training' event failed: listener bug", "a listener of the 'round' event failed: round listener bug"]);
  // A 'warning' listener that throws too: the line is logged, the learner is not hit.
  router.on('warning', () => { throw new Error('warning listener bug'); });
  hooks!.emit('training', { round: 1, phase: 'done' });
  hooks!.warn('plain warning');
  assert.ok(lines.some((l) => l.includes('plain warning')), lines.join('\n'));
  await router.close();
});

// Real rounds over stories260K (about a second each on a quiet machine).
const FAST = { training: { epochs: 1, learningRate: 1e-2, threads: 1, minHeldOut: 1 } };

function insertRows(cacheDir: string, rows: Array<[string, string, string]>): void {
  const db = new Database(join(cacheDir, 'dataset.db'));
  const ins = db.prepare('INSERT INTO dataset (task, kind, input, answer, params, usage, model, source, latency_ms, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)');
  for (const [task, input, params] of rows) ins.run(task, 'chat', input, 'An answer.', params, '{"promptTokens":1,"completionTokens":1}', 'm', 'call', 1, Date.now());
  db.close();
}

test('a corrupt row and rows with bad params or content: createRouter works, the round skips and counts them, with one warning', async () => {
  teacher ??= await startDistillTeacher();
  const cacheDir = dir('hostile-rows');
  await (await within(distillRouter(teacher, cacheDir, FAST))).close();
  const P = '{"maxTokens":20,"stop":["\\n"]}';
  insertRows(cacheDir, [
    ...Array.from({ length: 8 }, (_, i) => ['t', JSON.stringify([{ role: 'user', content: `hello ${i}` }]), P] as [string, string, string]),
    ['t', '{not json', P],
    ['u', JSON.stringify([{ role: 'user', content: 7 }]), P],
    ['u', JSON.stringify([{ role: '', content: 'x' }]), P],
  ]);
  const router = await within(distillRouter(teacher, cacheDir, FAST));
  try {
    const warnings = record(router, 'warning');
    const report = await within(router.train(), 300_000);
    assert.is(report.skippedRows, 3);
    assert.is(report.rows + report.tasks.reduce((n, t) => n + t.heldOutRows, 0), 8);
    const mine = warnings.filter((w) => w.startsWith('round 1 left out'));
    assert.is(mine.length, 1, warnings.join('\n'));
    assert.ok(mine[0]!.startsWith('round 1 left out 3 dataset rows it cannot use (ids 9, 10, 11): dataset row 9 (task "t") cannot be read: its input column is not valid JSON ('), mine[0]);
    const err = await rejection(router.exportDataset(join(cacheDir, 'out.jsonl')));
    assert.is(err.code, 'INVALID_DATASET');
    assert.ok(err.message.startsWith('dataset row 9 (task "t") cannot be read: its input column is not valid JSON ('), err.message);
    assert.not.ok(existsSync(join(cacheDir, 'out.jsonl')));
  } finally {
    await router.close();
  }
});

test('an adapter that fails to load at start: the base model serves, and rounds start from it (and promote) rather than fail on the file', async () => {
  teacher ??= await startDistillTeacher();
  const cacheDir = dir('hostile-unloadable');
  await (await within(distillRouter(teacher, cacheDir, FAST))).close();
  const P = '{"maxTokens":20,"stop":["\\n"]}';
  insertRows(cacheDir, Array.from({ length: 40 }, (_, i) => ['t', JSON.stringify([{ role: 'user', content: `hello ${i}` }]), P] as [string, string, string]));
  let router = await within(distillRouter(teacher, cacheDir, FAST));
  const first = await within(router.train(), 300_000);
  assert.is(first.version, 1, first.reason);
  await router.close();
  writeFileSync(join(cacheDir, 'adapters', 'v1.gguf'), 'not a gguf file');
  const lines: string[] = [];
  router = await within(distillRouter(teacher, cacheDir, FAST, lines));
  try {
    assert.ok(lines.some((l) => l.includes('the current adapter v1') && l.includes('could not be loaded, serving the base model')), lines.join('\n'));
    const report = await within(router.train(), 300_000);
    assert.is(report.parent, null);
    assert.ok(report.version === 2 || report.version === null, report.reason);
    assert.ok(lines.some((l) => l.includes("round 2 starts from base model, which serves, not from v1, the manifest's current (it is not loaded)")), lines.join('\n'));
  } finally {
    await router.close();
  }
});

test.run();
