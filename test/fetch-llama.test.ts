// scripts/fetch-llama.mjs: the stamp it leaves in vendor/llama.cpp names the pin and
// the trim, so a tree trimmed by an older version of the script (one without
// tools/completion, say) is fetched again, and a second run with the same pin and
// trim does nothing.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PIN, TRIM, patchList, stampIsCurrent } from '../scripts/fetch-llama.mjs';
import { root, run } from './helpers.js';

const stamp = join(root, 'vendor', 'llama.cpp', '.understudy-source.json');

test('a stamp is current only with this pin, this trim and these patches', () => {
  const current = { ...PIN, trim: TRIM, patches: patchList() };
  assert.ok(stampIsCurrent(JSON.stringify(current)));
  // A tree made before a patch was added, or with an older version of one.
  assert.not.ok(stampIsCurrent(JSON.stringify({ ...current, patches: [] })));
  assert.not.ok(stampIsCurrent(JSON.stringify({ ...current, patches: current.patches.map((p) => ({ ...p, sha256: '0'.repeat(64) })) })));
  // What the script wrote before trims were versioned: the pin alone.
  assert.not.ok(stampIsCurrent(JSON.stringify(PIN)));
  assert.not.ok(stampIsCurrent(JSON.stringify({ ...current, trim: TRIM - 1 })));
  assert.not.ok(stampIsCurrent(JSON.stringify({ ...current, commit: '0'.repeat(40) })));
  assert.not.ok(stampIsCurrent(JSON.stringify({ ...current, sha256: '0'.repeat(64) })));
  assert.not.ok(stampIsCurrent('{"package":'));
});

test('the vendored tree is current and keeps the reference tools the tests build', () => {
  assert.ok(stampIsCurrent(readFileSync(stamp, 'utf8')), 'vendor/llama.cpp is stale: run node scripts/fetch-llama.mjs');
  for (const dir of ['examples/simple', 'tools/completion']) {
    assert.ok(statSync(join(root, 'vendor', 'llama.cpp', dir, 'CMakeLists.txt')).isFile(), dir);
  }
});

test('a second run with the same pin and trim does nothing', async () => {
  // On a stale tree the script would fetch: never from a test, while others may be building.
  assert.ok(stampIsCurrent(readFileSync(stamp, 'utf8')), 'vendor/llama.cpp is stale: run node scripts/fetch-llama.mjs');
  const before = statSync(stamp).mtimeMs;
  const r = await run(process.execPath, [join(root, 'scripts', 'fetch-llama.mjs')], 60_000);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stderr, `[fetch-llama] vendor/llama.cpp is already at ${PIN.commit.slice(0, 12)}\n`);
  assert.is(statSync(stamp).mtimeMs, before);
});

test.run();
