// The router's seams for a learner (src/router/learner.ts): attachLearner and
// the train/adapters/rollback delegation, TRAINING_UNSUPPORTED without one,
// close() closing the learner before the stores, adopt() swapping the local
// adapter and the readiness generation (with readiness-change events), forget(),
// onRow(), and the one log sink every line goes through. The learner here is a
// plain object implementing the interface; the local backend is a MockBackend
// that takes adapters.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
// The router's own createRouter: the package's attaches a real learner when it can.
import { createRouter } from '../src/router/create-router.js';
import { MockBackend } from '../src/router/mock-backend.js';
import type { Router, RouterOptions } from '../src/router/router.js';
import { UnderstudyError } from '../src/errors.js';
import type { BackendCall } from '../src/router/backend.js';
import type { AdapterInfo, Learner, LearnerHooks, RoundReport } from '../src/router/learner.js';
import type { ReadinessChangeEvent } from '../src/router/log.js';
import { rejection, root, thrown } from './helpers.js';
import { ngramEmbed } from './ngram-embedder.js';
import { API_KEY, freshDir } from './router-fixture.js';

/** A mock local model that takes adapters, as LocalBackend does; 'bad.gguf' fails to load. */
class AdaptingBackend extends MockBackend {
  readonly applied: (string | null)[] = [];
  async useAdapter(file: string | null): Promise<void> {
    if (file?.endsWith('bad.gguf')) throw new UnderstudyError('INVALID_ADAPTER', `${file} was trained for another base model`);
    this.applied.push(file);
  }
  trainingSource() {
    return { path: '/models/base.gguf', chatTemplate: 'chatml', contextSize: 512 };
  }
}

const REPORT = { round: 1, trigger: 'manual', rows: 3 } as RoundReport;
const ADAPTER = { version: 1, parent: null, file: '/a/v1.gguf' } as AdapterInfo;

function fakeLearner(log: string[], onClose: () => void = () => {}): Learner {
  return {
    train: async (options) => {
      log.push(`train ${options?.signal ? 'signal' : 'none'}`);
      return REPORT;
    },
    adapters: () => {
      log.push('adapters');
      return [ADAPTER];
    },
    rollback: async () => {
      log.push('rollback');
      return null;
    },
    close: async () => {
      log.push('learner.close');
      onClose();
    },
  };
}

const open: Router[] = [];
test.after.each(async () => {
  for (const r of open.splice(0)) await r.close();
});

async function router(options: RouterOptions = {}): Promise<Router> {
  const r = await createRouter({
    cacheDir: freshDir('learner'), quiet: true, env: {}, shadowRate: 0, auditRate: 0,
    local: new AdaptingBackend({ answer: 'local answer' }), remote: new MockBackend({ answer: 'remote answer' }),
    embedder: ngramEmbed, simThreshold: 0.72, readinessMin: 2, readinessWindow: 4, ...options,
  });
  open.push(r);
  return r;
}

function attach(r: Router, calls: string[] = []): LearnerHooks {
  let hooks: LearnerHooks | undefined;
  r.attachLearner((h) => {
    hooks = h;
    return fakeLearner(calls);
  });
  return hooks!;
}

const ask = (content: string, task = 'greet') => ({ task, messages: [{ role: 'user' as const, content }] });

test('without a learner: train, adapters and rollback fail with TRAINING_UNSUPPORTED saying why', async () => {
  const cases: [RouterOptions, string][] = [
    [{ local: new MockBackend() }, 'training is off: it needs a local model file (UNDERSTUDY_MODEL) whose backend can take adapters'],
    [{ trainLocal: false }, 'training is off: UNDERSTUDY_TRAIN_LOCAL is off'],
    [{ embedder: false }, 'training is off: it needs an embedder to compare answers (UNDERSTUDY_EMBEDDING_MODEL, the local model, or the embedder option)'],
    [{}, "training is off: no learner is attached to this router (the package's createRouter attaches one)"],
  ];
  for (const [options, message] of cases) {
    const r = await router(options);
    for (const err of [await rejection(r.train()), thrown(() => r.adapters()), await rejection(r.rollback())]) {
      assert.is(err.code, 'TRAINING_UNSUPPORTED');
      assert.is(err.message, message);
    }
  }
});

test('attachLearner: once; train, adapters and rollback delegate to it; a bad make or learner is refused', async () => {
  const r = await router();
  const calls: string[] = [];
  const hooks = attach(r, calls);
  assert.is(hooks.cacheDir, r.cacheDir);
  assert.is(hooks.settings.trainEvery, 32);
  assert.is(hooks.settings.cacheDir, r.cacheDir);
  assert.is(Object.isFrozen(hooks.settings), true);
  assert.equal(hooks.localModel, { path: '/models/base.gguf', chatTemplate: 'chatml', contextSize: 512 });
  assert.is(await r.train(), REPORT);
  assert.is(await r.train({ signal: new AbortController().signal }), REPORT);
  assert.equal(r.adapters(), [ADAPTER]);
  assert.is(await r.rollback(), null);
  assert.equal(calls, ['train none', 'train signal', 'adapters', 'rollback']);
  const again = thrown(() => r.attachLearner(() => fakeLearner([])));
  assert.is(again.code, 'INVALID_ARGUMENT');
  assert.is(again.message, 'a learner is already attached to this router');

  const other = await router();
  const notFn = thrown(() => other.attachLearner(42 as never));
  assert.is(notFn.code, 'INVALID_ARGUMENT');
  assert.is(notFn.message, 'Expected function for make but received 42 of type number');
  const notLearner = thrown(() => other.attachLearner(() => ({ train: () => undefined }) as never));
  assert.is(notLearner.code, 'INVALID_ARGUMENT');
  assert.match(notLearner.message, /^Expected learner \(an object with train, adapters, rollback and close\) for the value make returned but received /);
  // The refused learner was not kept: a good one can still be attached.
  attach(other);
});

test('the log option must be a function', async () => {
  const err = await rejection(createRouter({ cacheDir: freshDir('learner'), env: {}, remote: new MockBackend(), local: false, log: 42 as never }));
  assert.is(err.code, 'INVALID_ARGUMENT');
  assert.is(err.message, 'Expected function for log but received 42 of type number');
});

test('localModel is null when the local backend cannot take adapters', async () => {
  const r = await router({ local: new MockBackend() });
  assert.is(attach(r).localModel, null);
});

test('close() closes the learner first, while the dataset is still open', async () => {
  const r = await router();
  await r.chat(ask('hello'));
  const order: string[] = [];
  let hooks: LearnerHooks | undefined;
  let rowsAtClose = -1;
  r.attachLearner((h) => {
    hooks = h;
    return fakeLearner(order, () => {
      rowsAtClose = [...hooks!.rows()].length;
      order.push(thrown(() => r.datasetRows()).code!);
    });
  });
  await r.close();
  assert.equal(order, ['learner.close', 'CLOSED']);
  assert.is(rowsAtClose, 1);
  // The stores are closed now: the hooks say so.
  for (const err of [thrown(() => [...hooks!.rows()]), thrown(() => hooks!.forget(1)), await rejection(hooks!.adopt(1, '/a/v1.gguf'))]) {
    assert.is(err.code, 'CLOSED');
    assert.is(err.message, 'the router has been closed');
  }
  const err = await rejection(r.train());
  assert.is(err.code, 'CLOSED');
});

test('adopt: swaps the adapter and the generation, records held-out scores, emits a change for each flip', async () => {
  const local = new AdaptingBackend({ answer: 'local answer' });
  const lines: string[] = [];
  const r = await router({ local, log: (line) => lines.push(line) });
  const changes: ReadinessChangeEvent[] = [];
  r.on('readiness', (e) => changes.push(e));
  const hooks = attach(r);
  await r.chat(ask('hello', 'other'));
  lines.length = 0;

  await hooks.adopt(1, '/a/v1.gguf', new Map([['greet', [0.9, 0.8]], ['empty', []]]));
  assert.equal(local.applied, ['/a/v1.gguf']);
  assert.is(changes.length, 1);
  const up = changes[0]!;
  assert.equal([up.task, up.ready, up.comparisons, up.threshold], ['greet', true, 2, 0.72]);
  assert.ok(Math.abs(up.readiness! - 0.85) < 1e-12);
  assert.equal(lines, ['[understudy] task=greet is now served locally: readiness 0.85 ≥ 0.72 over 2 comparisons']);
  assert.is(r.readiness('greet').ready, true);

  // A ready task is answered locally, by adapter 1.
  const events: { adapter?: number; route: string }[] = [];
  r.on('call', (e) => events.push(e));
  const answer = await r.chat(ask('hi there'));
  assert.equal([answer.route, answer.adapter], ['local', 1]);
  assert.equal(events.map((e) => [e.route, e.adapter]), [['local', 1]]);
  assert.match(lines.at(-1)!, /^\[understudy\] local   task=greet  \d+ ms  sim=0\.85  adapter=v1$/);

  // Back to the base model: it has no comparisons for greet.
  await hooks.adopt(0, null);
  assert.equal(local.applied, ['/a/v1.gguf', null]);
  assert.equal(changes.slice(1).map((e) => [e.task, e.ready, e.comparisons]), [['greet', false, 0]]);
  const base = await r.chat(ask('hi again'));
  assert.equal([base.route, base.adapter], ['remote', undefined]);

  // Adopting 1 again finds its held-out scores on disk.
  await hooks.adopt(1, '/a/v1.gguf');
  assert.equal(changes.slice(2).map((e) => [e.task, e.ready, e.comparisons]), [['greet', true, 2]]);
});

test('a local answer names the adapter the backend says made it, also while a swap is pending', async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  /** Like LocalBackend: calls sent after useAdapter() was called run with the new adapter, and say which answered. */
  class Reporting extends AdaptingBackend {
    current: string | null = null;
    override async useAdapter(file: string | null): Promise<void> {
      this.current = file;
      await gate;
    }
    override async answer(call: BackendCall) {
      const adapter = this.current;
      return { ...(await super.answer(call)), adapter };
    }
  }
  const r = await router({ local: new Reporting({ answer: 'local answer' }) });
  const hooks = attach(r);
  const adopting = hooks.adopt(1, '/a/v1.gguf');
  const during = await r.chat({ ...ask('sent while the swap is pending'), route: 'local' });
  assert.equal([during.route, during.adapter], ['local', 1]);
  release();
  await adopting;
  const after = await r.chat({ ...ask('after the swap'), route: 'local' });
  assert.is(after.adapter, 1);
  // A file the router never adopted: the generation when the call was sent (1).
  (r.local as Reporting).current = '/a/other.gguf';
  assert.is((await r.chat({ ...ask('unknown file'), route: 'local' })).adapter, 1);
  (r.local as Reporting).current = null;
  assert.is((await r.chat({ ...ask('base model'), route: 'local' })).adapter, undefined);
});

test('adopt: a failed load leaves the adapter, the generation and readiness as they were', async () => {
  const local = new AdaptingBackend();
  const r = await router({ local });
  const changes: unknown[] = [];
  r.on('readiness', (e) => changes.push(e));
  const hooks = attach(r);
  await hooks.adopt(2, '/a/v2.gguf', new Map([['greet', [1, 1]]]));
  const err = await rejection(hooks.adopt(3, '/a/bad.gguf', new Map([['greet', [0, 0]]])));
  assert.is(err.code, 'INVALID_ADAPTER');
  assert.is(err.message, '/a/bad.gguf was trained for another base model');
  assert.equal(local.applied, ['/a/v2.gguf']);
  assert.equal([r.readiness('greet').ready, r.readiness('greet').readiness], [true, 1]);
  assert.is(changes.length, 1);
  const bad = await rejection(hooks.adopt(-1, null));
  assert.is(bad.code, 'INVALID_ARGUMENT');
  assert.is(bad.message, 'Expected non-negative integer for version but received -1 of type number');
});

test('adopt without a local backend that takes adapters: TRAINING_UNSUPPORTED', async () => {
  const r = await router({ local: new MockBackend() });
  const err = await rejection(attach(r).adopt(1, '/a/v1.gguf'));
  assert.is(err.code, 'TRAINING_UNSUPPORTED');
  assert.is(err.message, 'training is off: the local backend cannot take adapters');
});

test('forget: the active version\'s comparisons go, readiness resets, and the flip is announced', async () => {
  const r = await router();
  const changes: [string, boolean][] = [];
  r.on('readiness', (e) => changes.push([e.task, e.ready]));
  const hooks = attach(r);
  await hooks.adopt(4, '/a/v4.gguf', new Map([['greet', [0.95, 0.9]]]));
  hooks.forget(4);
  assert.equal(r.readiness('greet'), { task: 'greet', readiness: null, comparisons: 0, ready: false, threshold: 0.72, min: 2 });
  assert.equal(changes, [['greet', true], ['greet', false]]);
});

test('a shadow check records under the generation it started in, even if a swap happens meanwhile', async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let started!: () => void;
  const localStarted = new Promise<void>((resolve) => (started = resolve));
  const local = new AdaptingBackend({ answer: async () => { started(); await gate; return 'remote answer'; } });
  const r = await router({ local, shadowRate: 1 });
  const hooks = attach(r);
  await r.chat(ask('hello'));
  await localStarted;
  await hooks.adopt(2, '/a/v2.gguf');
  release();
  await r.idle();
  assert.is(r.readiness('greet').comparisons, 0);
  await hooks.adopt(0, null);
  assert.equal([r.readiness('greet').comparisons, r.readiness('greet').readiness], [1, 1]);
});

test('onRow fires after each dataset append (calls and audits), with the row already readable; unsubscribe stops it', async () => {
  const r = await router({ auditRate: 1 });
  const hooks = attach(r);
  const seen: { id: number; task: string; source: string; readable: boolean }[] = [];
  const stop = hooks.onRow((row) => seen.push({ ...row, readable: [...hooks.rows(row.id - 1)].some((x) => x.id === row.id) }));
  const events: unknown[] = [];
  r.on('dataset', (e) => events.push(e));
  await r.chat(ask('one'));
  await r.chat(ask('two', 'other'));
  assert.equal(seen, [
    { id: 1, task: 'greet', source: 'call', readable: true },
    { id: 2, task: 'other', source: 'call', readable: true },
  ]);
  // A ready task's local answer is audited: the remote's answer is a row too.
  await hooks.adopt(1, '/a/v1.gguf', new Map([['greet', [1, 1]]]));
  await r.chat(ask('three'));
  await r.idle();
  assert.equal(seen.slice(2).map((s) => [s.task, s.source, s.readable]), [['greet', 'audit', true]]);
  assert.is(events.length, 3);
  assert.equal([...hooks.rows(2)].map((row) => row.id), [3]);
  stop();
  await r.chat(ask('four', 'other'));
  assert.is(seen.length, 3);
  assert.is(events.length, 4);
});

test('similarities: answerSimilarity for many pairs; without an embedder it rejects', async () => {
  const hooks = attach(await router());
  const [same, json] = await hooks.similarities([['a b', ' a b'], ['{"x": 1, "y": "z"}', '{"x": 2, "y": "z"}']]);
  assert.equal([same, json], [1, 0.75]);
  const none = attach(await router({ embedder: false }));
  const err = await rejection(none.similarities([['a', 'b']]));
  assert.is(err.code, 'TRAINING_UNSUPPORTED');
  assert.is(err.message, 'training is off: comparing answers needs an embedder (UNDERSTUDY_EMBEDDING_MODEL, the local model, or the embedder option)');
});

test('the log sink gets every line, redacted, and warn/emit reach listeners', async () => {
  const lines: string[] = [];
  const r = await router({ log: (line) => lines.push(line), apiKey: API_KEY, remote: new MockBackend({ failWith: 'REMOTE_UNAVAILABLE' }) });
  const warnings: string[] = [];
  r.on('warning', (w) => warnings.push(w));
  const training: unknown[] = [];
  r.on('training', (e) => training.push(e));
  const hooks = attach(r);
  await r.chat(ask('falls back'));
  await rejection(r.chat({ task: 'greet', messages: [] }));
  hooks.log(`[understudy] train   key ${API_KEY}`);
  hooks.warn(`no key ${API_KEY} here`);
  hooks.emit('training', { round: 1, phase: 'start' });
  assert.equal(training, [{ round: 1, phase: 'start' }]);
  assert.equal(warnings.at(-1), 'no key [REDACTED] here');
  assert.is(lines.length, 5, lines.join('\n'));
  assert.match(lines[0]!, /^\[understudy\] warning: remote failed \(REMOTE_UNAVAILABLE: /);
  assert.match(lines[1]!, /^\[understudy\] local   task=greet  \d+ ms  \(fallback: remote failed\)$/);
  assert.match(lines[2]!, /^\[understudy\] failed  task=greet  \d+ ms  INVALID_ARGUMENT: /);
  assert.equal(lines.slice(3), ['[understudy] train   key [REDACTED]', '[understudy] warning: no key [REDACTED] here']);
});

test('with a log sink nothing reaches stderr, quiet or not', () => {
  const script = "Promise.all([import('./src/router/create-router.ts'), import('./src/router/mock-backend.ts')]).then(async ([c, m]) => { const r = await c.createRouter({ remote: new m.MockBackend({ failWith: 'REMOTE_UNAVAILABLE' }), local: new m.MockBackend(), embedder: false, env: {}, cacheDir: process.argv[1], log: (l) => console.log(l) }); await r.chat({ task: 't', messages: [{ role: 'user', content: 'hi' }] }); await r.chat({ task: 't', messages: [] }).catch(() => {}); await r.close(); });";
  const run = spawnSync(process.execPath, ['--import', 'tsx', '-e', script, freshDir('sink')], { cwd: root, encoding: 'utf8' });
  assert.is(run.status, 0, run.stderr);
  assert.is(run.stderr, '');
  const lines = run.stdout.trim().split('\n');
  assert.is(lines.length, 3, run.stdout);
  assert.ok(lines.every((l) => l.startsWith('[understudy] ')), run.stdout);
});

test.run();
