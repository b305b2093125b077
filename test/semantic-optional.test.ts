// hnswlib-node is an optional dependency (it compiles from source, so npm
// leaves it out where there is no compiler): without it a router asked for the
// semantic cache starts anyway, with the semantic cache off and one warning
// saying why and how to get it. Each case runs in a child process whose
// hnswlib-node resolution is made to fail (test/fixtures/no-hnswlib.cjs).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { root, run } from './helpers.js';

interface ChildResult { hnswlib: string; semanticCache: boolean; routes: string[]; texts: string[]; warnings: string[] }

async function child(failure?: 'missing' | 'broken'): Promise<ChildResult> {
  const preload = failure ? ['--require', join(root, 'test', 'fixtures', 'no-hnswlib.cjs')] : [];
  const script = join(root, 'test', 'fixtures', 'semantic-optional-child.ts');
  const env = failure ? `HNSWLIB_FAILURE=${failure}` : '';
  const r = await run('/usr/bin/env', [...(env ? [env] : []), process.execPath, '--import', 'tsx', ...preload, script], 120_000);
  assert.is(r.code, 0, `child exited with ${r.code} (${r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as ChildResult;
}

const how = 'it compiles from source, so install a C++ toolchain (a C++ compiler, make and Python) ' +
  'and run npm rebuild hnswlib-node, or npm install hnswlib-node';
const question = 'Tell me a story about a cat named Tom who likes milk.';

test('without hnswlib-node: the router starts and answers, the exact cache works, the semantic cache is off with one warning', async () => {
  const r = await child('missing');
  assert.is(r.hnswlib, "failed: Cannot find module 'hnswlib-node'");
  assert.is(r.semanticCache, false);
  assert.equal(r.warnings, [`the semantic cache stays off: hnswlib-node is not installed; ${how}`]);
  // Asked, asked again (the exact cache answers), then a paraphrase: the remote, as with no semantic cache.
  assert.equal(r.routes, ['remote', 'cache', 'remote']);
  assert.equal(r.texts, [`Echo: ${question}`, `Echo: ${question}`, `Echo: ${question.replace('.', '!')}`]);
});

test('an hnswlib-node that fails to load (its native build unusable) says so, and the router still starts', async () => {
  const r = await child('broken');
  assert.is(r.semanticCache, false);
  assert.equal(r.warnings, [`the semantic cache stays off: hnswlib-node failed to load (Could not locate the bindings file. Tried:); ${how}`]);
  assert.equal(r.routes, ['remote', 'cache', 'remote']);
});

test('with hnswlib-node: nothing changes (the same child, not patched, answers the paraphrase from the semantic cache)', async () => {
  const r = await child();
  assert.is(r.hnswlib, 'loaded');
  assert.is(r.semanticCache, true);
  assert.equal(r.warnings, []);
  assert.equal(r.routes, ['remote', 'cache', 'semantic-cache']);
});

test('doctor says whether the semantic cache is available, and how to get hnswlib-node', async () => {
  const inspect = pathToFileURL(join(root, 'src', 'cli', 'inspect.ts')).href;
  const doctor = `const m = await import(${JSON.stringify(inspect)}); process.exitCode = await m.doctorCommand([]);`;
  const semanticCache = async (preload: string[]) => {
    const r = await run(process.execPath, ['--import', 'tsx', ...preload, '--input-type=module', '-e', doctor], 60_000);
    assert.is(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { semanticCache: string }).semanticCache;
  };
  assert.is(await semanticCache(['--require', join(root, 'test', 'fixtures', 'no-hnswlib.cjs')]),
    `unavailable: hnswlib-node is not installed; ${how}`);
  assert.is(await semanticCache([]), 'available (hnswlib-node loaded)');
});

test.run();
