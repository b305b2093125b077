// Fuzz: odd arguments to every public function (test/fuzz/api-sites.ts), one
// hostile value (test/fuzz/hostile-values.ts) in one argument or option at a
// time, in child processes. No case may kill its process or stall it, and every
// failure must be an UnderstudyError with a known code (or the hostile value's
// own exception, passed through unchanged).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cases } from './fuzz/api-sites.js';
import { runCases, summarize } from './fuzz/child.js';

const dir = mkdtempSync(join(tmpdir(), 'understudy-fuzz-args-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('hostile arguments: no deaths, no stalls, every failure coded', async () => {
  const total = cases().length;
  const results = await runCases({ worker: 'test/fuzz/api-worker.ts', args: ['--dir', dir], to: total, idleMs: 15_000 });
  const { counts, codes, problems } = summarize(results);
  console.log(`  ${results.length} of ${total} cases: ${JSON.stringify(counts)}; codes ${JSON.stringify(codes)}`);
  for (const p of problems) console.log(`  PROBLEM ${p}`);
  assert.is(results.length, total, 'every case ran');
  assert.equal(problems, [], `${problems.length} cases died, stalled or failed without a code`);
});

test.run();
