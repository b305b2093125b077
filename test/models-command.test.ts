// `understudy models` lists what pull put in the models directory, and a pulled
// model's short name works wherever a model path does: --model (generate, in a
// child process), UNDERSTUDY_MODEL / the model option of createRouter. A name
// found nowhere fails with an error that names both places it looked.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRouter } from '../src/router/create-router.js';
import { resolveSettings } from '../src/router/config.js';
import { pullModel } from '../src/models/pull.js';
import { modelsDir } from '../src/models/models-dir.js';
import { cli, rejection, storiesModel, thrown } from './helpers.js';
import { modelServer, sha256, type ModelServer } from './model-server.js';

const body = readFileSync(storiesModel);
const bodySha = sha256(body);
let server: ModelServer;
let dir: string;

test.before(async () => {
  server = await modelServer();
  server.routes.set('/m/stories260K.gguf', { body });
  dir = mkdtempSync(join(tmpdir(), 'understudy-models-'));
  await pullModel(`${server.url}/m/stories260K.gguf`, { dir });
  await pullModel(`${server.url}/m/stories260K.gguf`, { dir, name: 'tiny' });
  // A file put there by hand counts too (no manifest entry: no sha256 or source).
  copyFileSync(storiesModel, join(dir, 'byhand.gguf'));
  writeFileSync(join(dir, 'notes.txt'), 'not a model');
});
test.after(() => server.close());

function understudy(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH!, ...env }, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

test('understudy models --json lists the pulled models and the hand-placed one', async () => {
  const r = await understudy(['models', '--json'], { UNDERSTUDY_MODELS_DIR: dir });
  assert.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { dir: string; models: Record<string, unknown>[] };
  assert.is(out.dir, dir);
  assert.equal(out.models.map((m) => [m.name, m.path, m.size, m.sha256, m.source]), [
    ['byhand', join(dir, 'byhand.gguf'), body.length, null, null],
    ['stories260K', join(dir, 'stories260K.gguf'), body.length, bodySha, `${server.url}/m/stories260K.gguf`],
    ['tiny', join(dir, 'tiny.gguf'), body.length, bodySha, `${server.url}/m/stories260K.gguf`],
  ]);
  for (const m of out.models) assert.ok(!Number.isNaN(Date.parse(m.pulledAt as string)));
});

test('understudy models prints a table; an empty directory says how to fill it', async () => {
  const r = await understudy(['models', '--models-dir', dir], {});
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^NAME\s+SIZE\s+SHA256\s+PULLED\s+SOURCE$/);
  assert.match(lines[1]!, /^byhand\s+1\.1 MiB\s+-\s+\d{4}-\d\d-\d\d\s+-$/);
  assert.match(lines[2]!, new RegExp(`^stories260K\\s+1\\.1 MiB\\s+${bodySha.slice(0, 12)}\\s+\\d{4}-\\d\\d-\\d\\d\\s+${server.url}/m/stories260K\\.gguf$`));
  assert.is(lines[4], `(in ${dir})`);
  const empty = mkdtempSync(join(tmpdir(), 'understudy-models-empty-'));
  const none = await understudy(['models'], { UNDERSTUDY_MODELS_DIR: empty });
  assert.is(none.stdout, `no models in ${empty} (\`understudy pull\` fetches one)\n`);
});

test('the models directory: UNDERSTUDY_MODELS_DIR, else XDG_CACHE_HOME, else ~/.cache', () => {
  assert.is(modelsDir({ UNDERSTUDY_MODELS_DIR: '/srv/models', XDG_CACHE_HOME: '/x' }), '/srv/models');
  assert.is(modelsDir({ XDG_CACHE_HOME: '/x/cache' }), '/x/cache/understudy/models');
  assert.is(modelsDir({ HOME: '/home/u' }), '/home/u/.cache/understudy/models');
  assert.is(modelsDir({ HOME: '/home/u', XDG_CACHE_HOME: 'relative' }), '/home/u/.cache/understudy/models');
});

test('generate --model NAME runs the pulled model: the same continuation as by its path', async () => {
  const args = ['--temperature', '0', '--max-tokens', '12', 'Once upon a time'];
  const byPath = await understudy(['generate', '--model', storiesModel, ...args], {});
  const byName = await understudy(['generate', '--model', 'tiny', ...args], { UNDERSTUDY_MODELS_DIR: dir });
  assert.is(byPath.code, 0, byPath.stderr);
  assert.is(byName.code, 0, byName.stderr);
  assert.ok(byPath.stdout.length > 0);
  assert.is(byName.stdout, byPath.stdout);
  const missing = await understudy(['generate', '--model', 'nosuch', ...args], { UNDERSTUDY_MODELS_DIR: dir });
  assert.is(missing.code, 1);
  assert.is(missing.stderr, `understudy: error [MODEL_NOT_FOUND]: --model: model file not found: nosuch (no such file, and no model named "nosuch" in ${dir}; ` +
    '`understudy models` lists the pulled models, `understudy pull` fetches one)\n');
  // A value that reads as a path is never looked up by name.
  const path = await understudy(['generate', '--model', 'tiny.gguf', ...args], { UNDERSTUDY_MODELS_DIR: dir });
  assert.is(path.stderr, 'understudy: error [MODEL_NOT_FOUND]: model file not found: tiny.gguf\n');
});

test('UNDERSTUDY_MODEL and the model option take a short name; an unknown one names both places', async () => {
  const env = { UNDERSTUDY_MODELS_DIR: dir, UNDERSTUDY_MODEL: 'stories260K', UNDERSTUDY_EMBEDDING_MODEL: 'tiny' };
  const settings = resolveSettings(undefined, env);
  assert.is(settings.model, join(dir, 'stories260K.gguf'));
  assert.is(settings.embeddingModel, join(dir, 'tiny.gguf'));
  assert.is(resolveSettings({ model: 'byhand' }, env).model, join(dir, 'byhand.gguf'));
  const router = await createRouter({ env: { UNDERSTUDY_MODELS_DIR: dir, UNDERSTUDY_MODEL: 'tiny', UNDERSTUDY_USE_API: 'false', UNDERSTUDY_QUIET: 'true',
    UNDERSTUDY_CACHE_DIR: mkdtempSync(join(tmpdir(), 'understudy-models-router-')) } });
  try {
    const r = await router.complete({ prompt: 'Once upon a time', maxTokens: 4, temperature: 0 });
    assert.is(r.route, 'local');
    assert.ok(r.text.length > 0);
  } finally {
    await router.close();
  }
  const err = thrown(() => resolveSettings(undefined, { ...env, UNDERSTUDY_MODEL: 'nosuch' }));
  assert.is(err.code, 'MODEL_NOT_FOUND');
  assert.is(err.message, `UNDERSTUDY_MODEL: model file not found: nosuch (no such file, and no model named "nosuch" in ${dir}; ` +
    '`understudy models` lists the pulled models, `understudy pull` fetches one)');
  const option = await rejection(createRouter({ model: 'nosuch', env: { UNDERSTUDY_MODELS_DIR: dir } }));
  assert.is(option.code, 'MODEL_NOT_FOUND');
  assert.match(option.message, /^option model: model file not found: nosuch \(no such file, and no model named "nosuch" in /);
});

test.run();
