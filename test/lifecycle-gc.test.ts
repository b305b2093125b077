// Contexts dropped without dispose() are collected: the model holds its children
// weakly, a collected context frees its memory and stops its threads (a
// scheduler thread and the CPU pool), and V8 is told how much native memory a
// context holds, so that it collects dropped ones on its own. Run in child
// processes, so that only their threads and native handles are counted.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { root, storiesModel } from './helpers.js';

const child = join(root, 'test', 'fixtures', 'lifecycle-child.ts');

test('dropped contexts are collected: their threads end and no native context is left', async () => {
  const count = 10;
  const { stdout } = await promisify(execFile)(process.execPath,
    ['--expose-gc', '--import', 'tsx', child, storiesModel, String(count), 'gc'], { cwd: root, timeout: 120_000, encoding: 'utf8' });
  const r = JSON.parse(stdout.trim().split('\n').at(-1)!);
  // Each context ran threads of its own while it lived (at least the scheduler's).
  assert.ok(r.peak >= r.before.threads + count, `expected at least ${count} more threads at the peak: ${stdout}`);
  assert.equal(r.after, r.before, `after collection: ${stdout}`);
  assert.equal(r.end, { threads: r.before.threads, models: 0, contexts: 0, adapters: 0, trainers: 0 });
});

test('without explicit collection, V8 collects dropped contexts as their native memory grows', async () => {
  const count = 60;
  const { stdout } = await promisify(execFile)(process.execPath,
    ['--import', 'tsx', child, storiesModel, String(count), 'pressure'], { cwd: root, timeout: 120_000, encoding: 'utf8' });
  const { peak } = JSON.parse(stdout.trim().split('\n').at(-1)!);
  // Unreported, all of them stay alive (the JS objects are too small to prompt a collection).
  assert.ok(peak < count / 2, `${peak} of ${count} dropped contexts were alive at once`);
});

test.run();
