// Native calls on the JS thread, and the JS callbacks the addon calls, never end
// the process: a C++ exception becomes a coded error (node-addon-api passes only
// Napi::Error on; anything else would reach std::terminate), and a throwing
// onProgress callback fails the load with its own error rather than being an
// uncaught exception. Each scenario runs in a child process of its own.
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run, storiesModel } from './helpers.js';

const child = fileURLToPath(new URL('./fixtures/js-thread-child.ts', import.meta.url));

async function inChild(scenario: string): Promise<Record<string, unknown>> {
  const r = await run(process.execPath, ['--import', 'tsx', child, scenario, storiesModel], 120_000);
  assert.is(r.signal, null, `${scenario}: killed by ${r.signal}\n${r.stderr.slice(-1500)}`);
  assert.is(r.code, 0, `${scenario}: exit ${r.code}\n${r.stderr.slice(-1500)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

test('a C++ allocation failure in tokenize() is an OUT_OF_MEMORY error, and the model still works', async () => {
  const out = await inChild('tokenize-oom');
  assert.equal(out, { code: 'OUT_OF_MEMORY', message: 'out of memory', after: true });
});

test('an onProgress callback that throws fails the load with that error, called no more', async () => {
  const out = await inChild('progress-throws');
  assert.equal(out, { same: true, calls: 1, after: true });
});

test.run();
