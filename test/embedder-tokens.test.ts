// A separate embedding model counts its own tokens: modelEmbedder's
// countTokens, and router.embed's promptTokens with UNDERSTUDY_EMBEDDING_MODEL
// set, against the model's own tokenize() on a copy loaded apart.
// (stories260K stands in for an embedding model: it is the one model the tests have.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { createRouter, loadModel, type Model, type Router } from '../src/index.js';
import { functionEmbedder, modelEmbedder } from '../src/router/embedder.js';
import { storiesModel, within } from './helpers.js';
import { ngramEmbed } from './ngram-embedder.js';
import { API_KEY, freshDir } from './router-fixture.js';
import { startTeacher, type Teacher } from './teacher.js';

const TEXTS = ['The cat sat on the mat.', 'A dog ran in the park, far away from home.', ''];
let reference: Model;
let teacher: Teacher;
let router: Router | undefined;

test.before(async () => {
  reference = await within(loadModel(storiesModel, { gpuLayers: 0 }));
  teacher = await startTeacher();
});
test.after(async () => {
  if (router) {
    await router.close();
    rmSync(router.cacheDir, { recursive: true, force: true });
  }
  await teacher.close();
  await reference.dispose();
});

const expected = (texts: string[]) => texts.reduce((n, t) => n + reference.tokenize(t).length, 0);

test("modelEmbedder counts with the embedding model's tokenizer; a function embedder has no count", async () => {
  const embedder = await within(modelEmbedder(storiesModel, 0, 1));
  try {
    assert.type(embedder.countTokens, 'function');
    assert.is(embedder.countTokens!(TEXTS), expected(TEXTS));
    assert.ok(expected(TEXTS) > TEXTS.length, 'more than one token a text');
    assert.is(embedder.countTokens!(['one']), reference.tokenize('one').length);
  } finally {
    await embedder.close();
  }
  assert.is(functionEmbedder(ngramEmbed).countTokens, undefined);
});

test('router.embed with a separate embedding model reports its token count and its name', async () => {
  router = await within(createRouter({
    apiBase: teacher.url, apiModel: 'teacher-1', apiKey: API_KEY, cacheDir: freshDir('embed-model'), local: false,
    quiet: true, env: {}, embeddingModel: storiesModel,
  }), 120_000);
  assert.is(router.embeddingModel, 'stories260K');
  const out = await within(router.embed(TEXTS));
  assert.is(out.vectors.length, TEXTS.length);
  assert.is(out.model, 'stories260K');
  assert.is(out.promptTokens, expected(TEXTS));
});

test.run();
