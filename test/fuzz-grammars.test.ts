// Fuzz: hostile grammars and JSON schemas (test/fuzz/grammar-cases.ts) given
// to a generation, in child processes. No case may kill its process or stall
// it, and every failure must be an UnderstudyError with a known code.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runCases, summarize } from './fuzz/child.js';
import { GRAMMARS } from './fuzz/grammar-cases.js';

test('hostile grammars and schemas: no deaths, no stalls, every failure coded', async () => {
  const results = await runCases({ worker: 'test/fuzz/grammar-worker.ts', to: GRAMMARS.length, idleMs: 20_000 });
  const { counts, codes, problems } = summarize(results);
  console.log(`  ${results.length} cases: ${JSON.stringify(counts)}; codes ${JSON.stringify(codes)}`);
  for (const p of problems) console.log(`  PROBLEM ${p}`);
  assert.is(results.length, GRAMMARS.length, 'every case ran');
  assert.equal(problems, [], `${problems.length} cases died, stalled or failed without a code`);
});

test.run();
