// Readiness generations: comparisons are recorded under the adapter version
// that answered (0 = the base model) and only the active generation's count;
// held-out scores enter in bulk; a rolled-back version's comparisons are
// forgotten; a dataset.db made before the `adapter` column existed is migrated.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { createRouter, MockBackend } from '../src/index.js';
import { Readiness } from '../src/router/readiness.js';
import { readinessLine } from '../src/router/log.js';
import { Dataset } from '../src/router/dataset.js';
import { openStore } from '../src/router/store.js';
import { freshDir } from './router-fixture.js';

function open(dir = freshDir('readiness')) {
  const { db, value } = openStore(dir, 'dataset.db', true, (d) => ({
    dataset: new Dataset(d),
    readiness: new Readiness(d, { threshold: 0.7, window: 4, min: 2, now: () => 1000 }),
  }));
  return { db, dir, ...value };
}

test('only the active generation counts; record() under another version changes nothing', () => {
  const { db, readiness } = open();
  readiness.record('t', 0.9, 'shadow');
  readiness.record('t', 0.8, 'audit');
  const first = readiness.state('t');
  assert.equal([first.comparisons, first.ready, first.threshold], [2, true, 0.7]);
  assert.ok(Math.abs(first.readiness! - 0.85) < 1e-12);
  readiness.setGeneration(3);
  assert.is(readiness.generation, 3);
  assert.equal(readiness.state('t'), { task: 't', readiness: null, comparisons: 0, ready: false, threshold: 0.7, min: 2 });
  // A check that started under the base model records there, and the new generation does not see it.
  const { before, after } = readiness.record('t', 0.1, 'shadow', 0);
  assert.equal(before, after);
  assert.is(after.comparisons, 0);
  readiness.record('t', 0.75, 'shadow');
  assert.equal([readiness.state('t').readiness, readiness.state('t').comparisons], [0.75, 1]);
  readiness.setGeneration(0);
  const base = readiness.state('t');
  assert.equal([base.comparisons, base.ready], [3, false]);
  assert.ok(Math.abs(base.readiness! - 0.6) < 1e-12);
  const rows = db.prepare('SELECT similarity, source, adapter FROM comparisons ORDER BY id').all();
  assert.equal(rows, [
    { similarity: 0.9, source: 'shadow', adapter: 0 },
    { similarity: 0.8, source: 'audit', adapter: 0 },
    { similarity: 0.1, source: 'shadow', adapter: 0 },
    { similarity: 0.75, source: 'shadow', adapter: 3 },
  ]);
  db.close();
});

test('recordMany: held-out scores enter at once, the window keeps the newest; state survives reopening', () => {
  const { db, dir, readiness } = open();
  readiness.setGeneration(2);
  const { before, after } = readiness.recordMany(2, 'greet', [0.2, 0.9, 0.8, 0.7, 0.9], 'heldout');
  assert.equal([before.comparisons, before.ready], [0, false]);
  // Window 4: 0.9, 0.8, 0.7, 0.9 -> 0.825
  assert.equal([after.comparisons, after.ready], [4, true]);
  assert.ok(Math.abs(after.readiness! - 0.825) < 1e-12);
  assert.equal(db.prepare("SELECT count(*) FROM comparisons WHERE source = 'heldout' AND adapter = 2").pluck().get(), 5);
  db.close();
  const again = open(dir);
  assert.is(again.readiness.state('greet').comparisons, 0, 'a new process starts at generation 0 until told');
  again.readiness.setGeneration(2);
  assert.ok(Math.abs(again.readiness.state('greet').readiness! - 0.825) < 1e-12);
  again.db.close();
});

test('forget(version) deletes that version only, and resets its readiness when it is active', () => {
  const { db, readiness } = open();
  readiness.record('t', 0.9, 'shadow');
  readiness.setGeneration(5);
  readiness.recordMany(5, 't', [0.9, 0.9], 'heldout');
  assert.is(readiness.state('t').ready, true);
  assert.is(readiness.forget(5), 2);
  assert.equal([readiness.state('t').comparisons, readiness.state('t').ready], [0, false]);
  assert.is(readiness.forget(5), 0);
  readiness.setGeneration(0);
  assert.equal(readiness.state('t').comparisons, 1);
  db.close();
});

test('tasks(): tasks with comparisons or dataset rows', () => {
  const { db, dataset, readiness } = open();
  assert.equal(readiness.tasks(), []);
  readiness.record('b', 0.5, 'shadow', 7);
  dataset.append({
    task: 'a', kind: 'complete', prompt: 'p', answer: 'x', params: { temperature: 0, maxTokens: 4, topP: 1 } as never,
    usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2 }, model: 'm', source: 'call', latencyMs: 1,
  });
  assert.equal(readiness.tasks(), ['a', 'b']);
  db.close();
});

const OLD_SCHEMA = `
  CREATE TABLE dataset (
    id INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL, kind TEXT NOT NULL, input TEXT NOT NULL,
    answer TEXT NOT NULL, params TEXT NOT NULL, usage TEXT NOT NULL, model TEXT NOT NULL, source TEXT NOT NULL,
    latency_ms REAL NOT NULL, created_at INTEGER NOT NULL
  );
  CREATE INDEX dataset_task ON dataset (task, id);
  CREATE TABLE comparisons (
    id INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL, similarity REAL NOT NULL,
    source TEXT NOT NULL, created_at INTEGER NOT NULL
  );
  CREATE INDEX comparisons_task ON comparisons (task, id);
`;

function oldDb(dir: string): void {
  const db = new Database(join(dir, 'dataset.db'));
  db.exec(OLD_SCHEMA);
  const insert = db.prepare('INSERT INTO comparisons (task, similarity, source, created_at) VALUES (?, ?, ?, ?)');
  for (const s of [0.8, 0.9, 1]) insert.run('qa', s, 'shadow', 1);
  db.close();
}

test('a dataset.db made with the old schema is migrated: its comparisons are the base model\'s', () => {
  const dir = freshDir('readiness-old');
  oldDb(dir);
  const { db, readiness } = open(dir);
  const columns = (db.prepare('PRAGMA table_info(comparisons)').all() as { name: string }[]).map((c) => c.name);
  assert.ok(columns.includes('adapter'));
  const indexes = (db.prepare('PRAGMA index_list(comparisons)').all() as { name: string }[]).map((i) => i.name);
  assert.ok(indexes.includes('comparisons_adapter'), indexes.join());
  assert.equal((db.prepare('PRAGMA index_info(comparisons_adapter)').all() as { name: string }[]).map((c) => c.name), ['task', 'adapter', 'id']);
  const state = readiness.state('qa');
  assert.equal([state.comparisons, state.ready], [3, true]);
  assert.ok(Math.abs(state.readiness! - 0.9) < 1e-12);
  readiness.setGeneration(1);
  assert.is(readiness.state('qa').comparisons, 0);
  db.close();
  // Opening it again (already migrated) changes nothing.
  const again = open(dir);
  assert.is(again.readiness.state('qa').comparisons, 3);
  again.db.close();
});

test('a router opens an old dataset.db and reports its readiness', async () => {
  const dir = freshDir('readiness-router');
  oldDb(dir);
  const r = await createRouter({ cacheDir: dir, quiet: true, env: {}, local: new MockBackend(), remote: new MockBackend(), readinessMin: 3 });
  try {
    const state = r.readiness('qa');
    assert.equal([state.comparisons, state.ready], [3, true]);
  } finally {
    await r.close();
  }
});


test('lineage: until a generation has min comparisons of its own, its ancestors\' newest fill in up to min, and only that far', () => {
  // window 4, min 2, threshold 0.7
  const { db, readiness } = open();
  readiness.recordMany(0, 't', [0.1, 0.2], 'shadow');
  readiness.setGeneration(1, [0]);
  readiness.recordMany(1, 't', [0.5, 0.9, 0.8], 'heldout');
  readiness.setGeneration(2, [1, 0]);
  assert.equal(readiness.lineage, [1, 0]);
  // No comparison of v2 yet: v1's newest two (0.8, 0.9) stand in.
  let s = readiness.state('t');
  assert.equal([s.comparisons, s.ready], [2, true]);
  assert.ok(Math.abs(s.readiness! - 0.85) < 1e-12, String(s.readiness));
  // One of its own (0.6) and v1's newest (0.8): (0.6 + 0.8) / 2.
  readiness.record('t', 0.6, 'shadow');
  s = readiness.state('t');
  assert.equal([s.comparisons, s.ready], [2, true]);
  assert.ok(Math.abs(s.readiness! - 0.7) < 1e-12, String(s.readiness));
  // From min on, only its own count: 0.6, 0.4.
  readiness.record('t', 0.4, 'shadow');
  s = readiness.state('t');
  assert.equal([s.comparisons, s.ready], [2, false]);
  assert.ok(Math.abs(s.readiness! - 0.5) < 1e-12, String(s.readiness));
  // A task v1 never saw reaches back to the base model.
  readiness.recordMany(0, 'u', [0.3], 'shadow');
  s = readiness.state('u');
  assert.equal([s.comparisons, s.readiness], [1, 0.3]);
  // Without a lineage a generation stands alone (the behaviour before lineages).
  readiness.setGeneration(2);
  assert.is(readiness.state('u').comparisons, 0);
  db.close();
});

test('lineage: forgetting an ancestor and checks recorded under one update what fills in', () => {
  const { db, readiness } = open();
  readiness.setGeneration(2, [1, 0]);
  readiness.recordMany(1, 't', [0.9, 0.9], 'heldout');
  assert.equal(readiness.state('t').comparisons, 2);
  // A shadow check that started under v1 and ends now counts for v1, and so in v2's fill.
  readiness.record('t', 0.3, 'shadow', 1);
  assert.ok(Math.abs(readiness.state('t').readiness! - 0.6) < 1e-12);
  readiness.forget(1);
  assert.equal(readiness.state('t'), { task: 't', readiness: null, comparisons: 0, ready: false, threshold: 0.7, min: 2 });
  db.close();
});

test('the line of a task that goes back says when too few comparisons, not a low score, is why', () => {
  const base = { task: 't', ready: false, threshold: 0.72, min: 5 };
  assert.is(readinessLine({ ...base, readiness: 0.97, comparisons: 4 }),
    '[understudy] task=t goes back to remote: only 4 comparisons (needs 5), readiness 0.97');
  assert.is(readinessLine({ ...base, readiness: 0.61, comparisons: 5 }),
    '[understudy] task=t goes back to remote: readiness 0.61 < 0.72 over 5 comparisons');
  assert.is(readinessLine({ ...base, ready: true, readiness: 0.8, comparisons: 5 }),
    '[understudy] task=t is now served locally: readiness 0.80 ≥ 0.72 over 5 comparisons');
});

test.run();
