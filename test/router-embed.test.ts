// router.embed(): the router's own embedder's vectors (a caller's function,
// or the local model's embedding context), its name, token counts by the
// model's tokenizer, and NO_BACKEND / INVALID_ARGUMENT / ABORTED.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { createRouter, loadModel, type Router } from '../src/index.js';
import { rejection, storiesModel, within } from './helpers.js';
import { ngramEmbed } from './ngram-embedder.js';
import { API_KEY, freshDir } from './router-fixture.js';
import { startTeacher, type Teacher } from './teacher.js';

const TEXTS = ['The cat sat on the mat.', 'A dog ran in the park.', ''];
let teacher: Teacher;
const routers: Router[] = [];

test.before(async () => {
  teacher = await startTeacher();
});
test.after(async () => {
  for (const r of routers) {
    await r.close();
    rmSync(r.cacheDir, { recursive: true, force: true });
  }
  await teacher.close();
});

function remoteRouter(extra: Record<string, unknown>): Promise<Router> {
  return createRouter({ apiBase: teacher.url, apiModel: 'teacher-1', apiKey: API_KEY, cacheDir: freshDir('embed'), local: false, quiet: true, env: {}, ...extra })
    .then((r) => (routers.push(r), r));
}

test('with an embedder function: its vectors, named custom, no token count', async () => {
  const r = await remoteRouter({ embedder: ngramEmbed });
  assert.is(r.embeddingModel, 'custom');
  const out = await r.embed(TEXTS);
  assert.equal(out.vectors, await ngramEmbed(TEXTS));
  assert.is(out.model, 'custom');
  assert.is(out.promptTokens, 0);
});

test('with the local model as the embedder: the model\'s own vectors and tokens', async () => {
  const r = await within(createRouter({
    model: storiesModel, cacheDir: freshDir('embed-local'), quiet: true, useApi: false, env: {}, sequences: 1, contextSize: 256,
  }), 120_000);
  routers.push(r);
  assert.is(r.embeddingModel, r.local!.model);
  const out = await within(r.embed(TEXTS.slice(0, 2)));
  // The reference: the backend's own embed(), and the model's tokenizer, loaded apart.
  const direct = await within(r.local!.embed!(TEXTS.slice(0, 2)));
  assert.is(out.vectors.length, 2);
  assert.equal(out.vectors, direct);
  const model = await within(loadModel(storiesModel, { gpuLayers: 0 }));
  try {
    assert.is(out.promptTokens, TEXTS.slice(0, 2).reduce((n, t) => n + model.tokenize(t).length, 0));
  } finally {
    await model.dispose();
  }
  assert.is(out.model, r.local!.model);
});

test('NO_BACKEND without an embedder', async () => {
  const r = await remoteRouter({ embedder: false });
  assert.is(r.embeddingModel, undefined);
  const err = await rejection(r.embed(['x']));
  assert.is(err.code, 'NO_BACKEND');
  assert.is(err.message, 'no embedder: set UNDERSTUDY_EMBEDDING_MODEL, load a local model, or pass the embedder option');
});

test('bad texts and an aborted signal', async () => {
  const r = await remoteRouter({ embedder: ngramEmbed });
  let err = await rejection(r.embed([] as string[]));
  assert.is(err.code, 'INVALID_ARGUMENT');
  assert.is(err.message, 'Expected non-empty array of strings for texts but received an array of type object');
  err = await rejection(r.embed(['a', 3] as never));
  assert.is(err.code, 'INVALID_ARGUMENT');
  assert.is(err.message, 'Expected string for texts[1] but received 3 of type number');
  err = await rejection(r.embed(['a'], { signal: AbortSignal.abort() }));
  assert.is(err.code, 'ABORTED');
  assert.is(err.message, 'the embedding call was aborted');
});

test.run();
