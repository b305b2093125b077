// A router's life ends with close(): after it every method fails with CLOSED
// (sync ones throw, async ones reject), close() can be called again, `await
// using` closes it, and close() always finishes its work (caches written,
// files closed, models freed) even when a step fails, reporting the first
// failure with a code.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRouter, MockBackend, type Router } from '../src/index.js';
import { rejection, storiesModel, thrown } from './helpers.js';
import { freshDir } from './router-fixture.js';

const mock = (cacheDir = freshDir('life')) => createRouter({ remote: new MockBackend(), local: false, cacheDir, quiet: true, env: {} });

test('after close(), every method fails with CLOSED: async ones reject, sync ones throw', async () => {
  const r = await mock();
  await r.chat({ messages: [{ role: 'user', content: 'x' }] });
  await r.close();
  const closed = (err: Error & { code?: string }, what: string) => {
    assert.is(err.code, 'CLOSED', what);
    assert.is(err.message, 'the router has been closed', what);
  };
  closed(await rejection(r.chat({ messages: [{ role: 'user', content: 'x' }] })), 'chat');
  closed(await rejection(r.complete({ prompt: 'x' })), 'complete');
  closed(await rejection(r.chat({ messages: [{ role: 'user', content: 'x' }], stream: true }).result), 'chat stream');
  closed(await rejection(r.exportDataset(join(r.cacheDir, 'x.jsonl'))), 'exportDataset');
  closed(await rejection(r.health()), 'health');
  closed(await rejection(r.idle()), 'idle');
  closed(thrown(() => r.readiness('t')), 'readiness');
  closed(thrown(() => r.datasetRows()), 'datasetRows');
  closed(thrown(() => r.datasetTasks()), 'datasetTasks');
});

test('close() is idempotent: calls made together or later share one shutdown', async () => {
  const r = await mock();
  const first = r.close();
  const second = r.close();
  assert.is(first, second);
  await first;
  await r.close();
});

test('`await using` closes the router at the end of the block', async () => {
  let kept: Router | undefined;
  {
    await using r = await mock();
    kept = r;
    await r.chat({ messages: [{ role: 'user', content: 'x' }] });
  }
  assert.is(thrown(() => kept!.datasetRows()).code, 'CLOSED');
  assert.is(typeof kept[Symbol.asyncDispose], 'function');
});

/** Deterministic unit vectors: an embedder the semantic cache accepts without a model. */
async function hashEmbed(texts: string[]): Promise<Float32Array[]> {
  return texts.map((t) => {
    const v = new Float32Array(16);
    const bytes = createHash('sha256').update(t).digest();
    for (let i = 0; i < 16; i++) v[i] = bytes[i]! - 127.5;
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  });
}

test('close() finishes when a step fails: the models are freed, the failure is coded', async () => {
  const cacheDir = freshDir('life');
  const r = await createRouter({
    model: storiesModel, contextSize: 64, sequences: 1, remote: new MockBackend(), embedder: hashEmbed, semanticCache: true,
    cacheDir, quiet: true, env: {},
  });
  await r.chat({ task: 't', messages: [{ role: 'user', content: 'to be indexed' }] });
  // The semantic index can no longer be saved where it lives.
  rmSync(join(cacheDir, 'semantic'), { recursive: true, force: true });
  writeFileSync(join(cacheDir, 'semantic'), 'in the way');
  const err = await rejection(r.close());
  assert.is(err.code, 'IO_ERROR');
  assert.match(err.message, /^close: saving the semantic index failed: /);
  assert.is((await rejection(r.close())).code, 'IO_ERROR', 'a second close() reports the same');
  // The steps after the failing one ran: the local model is released and the dataset is readable by another router.
  const health = await r.local!.health();
  assert.is(health.ok, false);
  assert.match(health.detail, /closed|disposed/);
  rmSync(join(cacheDir, 'semantic'));
  const again = await mock(cacheDir);
  assert.equal(again.datasetTasks(), [{ task: 't', rows: 1 }]);
  await again.close();
});

test.run();
