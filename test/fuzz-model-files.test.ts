// Fuzz: hundreds of seeded mutations of the test model (test/fuzz/
// model-mutations.ts: byte damage in the header, metadata and tensor index,
// truncation, extreme and retyped values, duplicated tokens, changed tensor
// types, shapes and offsets), each loaded normally and vocabOnly, then
// tokenized, generated from and embedded with when it loads; in child
// processes. No case may kill its process or stall it, and every failure must
// be an UnderstudyError with a known code.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runCases, summarize } from './fuzz/child.js';

const SEED = 20261201;
const CASES = 800;
const dir = mkdtempSync(join(tmpdir(), 'understudy-fuzz-models-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test(`${CASES} mutated model files: no deaths, no stalls, every failure coded`, async () => {
  const results = await runCases({ worker: 'test/fuzz/model-worker.ts', args: ['--seed', String(SEED), '--dir', dir], to: CASES, idleMs: 20_000 });
  const { counts, codes, problems } = summarize(results);
  console.log(`  ${results.length} cases: ${JSON.stringify(counts)}; codes ${JSON.stringify(codes)}`);
  for (const p of problems) console.log(`  PROBLEM ${p}`);
  assert.is(results.length, CASES, 'every case ran');
  assert.equal(problems, [], `${problems.length} cases died, stalled or failed without a code`);
  // The mutations must reach generation, not only the file checks.
  assert.ok((counts.ok ?? 0) >= CASES / 20, `only ${counts.ok ?? 0} mutated files loaded and generated`);
});

test.run();
