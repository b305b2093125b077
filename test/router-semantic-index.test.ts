// The semantic index's files: a saved graph is checked against the checksum
// written beside it before hnswlib reads it (hnswlib trusts its files blindly:
// a few hundred changed bytes made it crash on the first lookup, and on every
// restart after). A graph that does not match is rebuilt from the cache rows,
// with a warning. Each restart runs in a child process, so a crash fails the
// test instead of ending the run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AnswerCache } from '../src/router/answer-cache.js';
import { SemanticIndex } from '../src/router/semantic-index.js';
import { openDatabase } from '../src/router/store.js';
import { root, run } from './helpers.js';
import { freshDir } from './router-fixture.js';

const ENTRIES = 200;

/** A seeded uniform generator in [0, 1) (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const child = (...args: string[]) => run(process.execPath, ['--import', 'tsx', join(root, 'test', 'fixtures', 'semantic-child.ts'), ...args], 120_000);

let filled: string;
const files = (dir: string) => {
  const names = readdirSync(join(dir, 'semantic'));
  return { graph: join(dir, 'semantic', names.find((f) => f.endsWith('.hnsw'))!), meta: join(dir, 'semantic', names.find((f) => f.endsWith('.json'))!) };
};

test.before(async () => {
  filled = freshDir('semantic-filled');
  const r = await child('fill', filled, String(ENTRIES));
  assert.is(r.signal, null, r.stderr);
  assert.is(r.code, 0, r.stderr);
});

/** A copy of the filled cache directory, its files then spoiled by `spoil`. */
function spoiled(spoil: (f: { graph: string; meta: string }) => void): string {
  const dir = freshDir('semantic-spoiled');
  cpSync(filled, dir, { recursive: true });
  spoil(files(dir));
  return dir;
}

/**
 * Restarts on each of `dirs` in turn (one child process) and asks a paraphrase
 * of question `i`: each must be answered from the index, after one warning
 * matching the dir's pattern (a rebuild), or none (undefined: a verified load).
 */
async function restartsAndHits(i: number, dirs: [string, RegExp | undefined][]): Promise<void> {
  const r = await child('ask', String(i), ...dirs.map(([dir]) => dir));
  assert.is(r.signal, null, `child died by ${r.signal}: ${r.stderr.slice(-2000)}`);
  assert.is(r.code, 0, r.stderr.slice(-2000));
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { dir: string; route: string; text: string; warnings: string[] });
  assert.is(lines.length, dirs.length);
  for (const [k, [dir, warning]] of dirs.entries()) {
    const out = lines[k]!;
    assert.is(out.dir, dir);
    assert.is(out.route, 'semantic-cache');
    assert.is(out.text, `Echo: Tell me about item number ${i} in the warehouse.`);
    if (warning) {
      assert.is(out.warnings.length, 1, out.warnings.join('\n'));
      assert.match(out.warnings[0]!, /^the saved semantic index of task qa was not used \(.+\); rebuilt it from 200 cached entries$/);
      assert.match(out.warnings[0]!, warning);
    } else {
      assert.equal(out.warnings, []);
    }
  }
}

/** Changes `count` bytes of a file at offsets drawn from `seed`. */
function flipBytes(path: string, seed: number, count = 300): void {
  const bytes = readFileSync(path);
  const next = rng(seed);
  for (let k = 0; k < count; k++) bytes[Math.floor(next() * bytes.length)] ^= 1 + Math.floor(next() * 255);
  writeFileSync(path, bytes);
}

test('a graph with a few hundred changed bytes is rebuilt from the rows, not loaded, and later restarts load the rebuilt one', async () => {
  // Seeds 11 and 19 spoil this (deterministic) graph so that loading it
  // unchecked and searching it killed the process with SIGSEGV; seed 1 so that hnswlib refused it.
  const dirs = [11, 19, 1].map((seed) => spoiled(({ graph }) => flipBytes(graph, seed)));
  const sha = /graph does not match its sha256/;
  await restartsAndHits(7, [[dirs[0]!, sha], [dirs[0]!, undefined], [dirs[1]!, sha], [dirs[2]!, sha]]);
});

test('a truncated or emptied graph, a garbled meta file, or one whose count disagrees are rebuilt too', async () => {
  await restartsAndHits(3, [
    [spoiled(({ graph }) => truncateSync(graph, Math.floor(statSync(graph).size / 2))), /graph is \d+ bytes, the meta file says \d+/],
    [spoiled(({ graph }) => truncateSync(graph, 0)), /graph is 0 bytes/],
    [spoiled(({ meta }) => writeFileSync(meta, '{"format": 2, "dim": ')), /unreadable meta file/],
    [spoiled(({ meta }) => writeFileSync(meta, readFileSync(meta, 'utf8').replace(/"count":\d+/, '"count":7'))), /graph holds \d+ points, the meta file says 7/],
  ]);
});

test('lookups while an index opens miss instead of blocking; changes made meanwhile are not lost, removals never answer', async () => {
  const dir = freshDir('semantic-opening');
  const db = openDatabase(dir, 'cache.db', false);
  const cache = new AnswerCache(db, { maxEntries: 100_000 });
  const next = rng(4);
  const vector = () => {
    const v = Float32Array.from({ length: 8 }, () => next() - 0.5);
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };
  const usage = { promptTokens: 1, completionTokens: 1, totalTokens: 2 };
  const rows = Array.from({ length: 2000 }, (_, i) => {
    const v = vector();
    return { id: cache.put({ key: `k${i}`, task: 't', signature: 's', answer: `a${i}`, usage, model: 'm', embedding: v }), v };
  });
  // No saved index: the first lookup starts a rebuild in the worker and, not waiting at all, misses.
  const index = new SemanticIndex(join(dir, 'semantic'), db, { onError: (e) => { throw e; }, waitMs: 0 });
  assert.is(await index.nearest('t', rows[0]!.v, 's'), undefined);
  // While it opens: one entry removed (its row deleted first, as the cache does), one added.
  const gone = rows[1]!;
  db.prepare('DELETE FROM entries WHERE id = ?').run(gone.id);
  index.remove([{ id: gone.id, task: 't' }]);
  const late = vector();
  const lateId = cache.put({ key: 'late', task: 't', signature: 's', answer: 'late', usage, model: 'm', embedding: late });
  index.add('t', lateId, late, 's');
  await index.settled('t');
  assert.is((await index.nearest('t', rows[0]!.v, 's'))?.id, rows[0]!.id);
  assert.is((await index.nearest('t', late, 's'))?.id, lateId);
  assert.is.not((await index.nearest('t', gone.v, 's'))?.id, gone.id);
  await index.close();
  cache.close();
  db.close();
});

test('an index that fills up is grown by the worker while it answers; no entry is lost, and it reloads whole', async () => {
  const dir = freshDir('semantic-grow');
  const db = openDatabase(dir, 'cache.db', false);
  const warnings: string[] = [];
  let index: SemanticIndex | undefined;
  const cache = new AnswerCache(db, { maxEntries: 100_000, onRemove: (rows) => index?.remove(rows) });
  // From 2,048 points on (16,384 by default), the worker grows the index.
  const make = () => new SemanticIndex(join(dir, 'semantic'), db, { onError: (e) => warnings.push(String(e)), onWarning: (w) => warnings.push(w), growInWorkerFrom: 2048 });
  index = make();
  const next = rng(9);
  const vector = () => {
    const v = Float32Array.from({ length: 8 }, () => next() - 0.5);
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };
  const usage = { promptTokens: 1, completionTokens: 1, totalTokens: 2 };
  // Past 90% of 2,048 and then of 4,096 points, the worker makes a larger copy; adds go on meanwhile.
  const stored: { id: number; v: Float32Array }[] = [];
  for (let i = 0; i < 4_000; i++) {
    const v = vector();
    const id = cache.put({ key: `k${i}`, task: 't', signature: 's', answer: `a${i}`, usage, model: 'm', embedding: v });
    index.add('t', id, v, 's');
    stored.push({ id, v });
    if (i % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await index.settled('t');
  const sample = [...stored.slice(0, 20), ...stored.slice(1_800, 1_900), ...stored.slice(3_650, 3_720), ...stored.slice(-40)];
  for (const { id, v } of sample) assert.is((await index.nearest('t', v, 's'))?.id, id);
  await index.close();
  index = make();
  for (const { id, v } of sample.slice(-10)) assert.is((await index.nearest('t', v, 's'))?.id ?? (await index.opened('t'), (await index.nearest('t', v, 's'))?.id), id);
  await index.close();
  cache.close();
  db.close();
  assert.equal(warnings, []);
});

test.run();
