// `understudy ask` and `understudy dataset` as a user runs them, against the
// teacher on loopback and the real local model.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, storiesModel } from './helpers.js';
import { freshDir } from './router-fixture.js';
import { startTeacher, type Teacher } from './teacher.js';

let teacher: Teacher;
test.before(async () => {
  teacher = await startTeacher();
});
test.after(async () => {
  await teacher.close();
});

// Asynchronous on purpose: the teacher answers from this process's event loop.
function understudy(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH!, ...env }, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('ask offline answers locally, then from the cache', async () => {
  const env = { UNDERSTUDY_CACHE_DIR: freshDir('cli'), UNDERSTUDY_MODEL: storiesModel, UNDERSTUDY_USE_API: 'false' };
  const first = await understudy(['ask', '-n', '16', '--task', 'story', 'Once upon a time'], env);
  assert.is(first.code, 0, first.stderr);
  assert.ok(first.stdout.trim().length > 0);
  assert.match(first.stderr, /\[understudy\] local   task=story  \d+ ms/);
  const second = await understudy(['ask', '-n', '16', '--task', 'story', 'Once upon a time'], env);
  assert.is(second.stdout, first.stdout);
  assert.match(second.stderr, /\[understudy\] cache   task=story/);
});

test('ask remote, then dataset tasks and dataset export', async () => {
  const dir = freshDir('cli');
  const env = { UNDERSTUDY_CACHE_DIR: dir, UNDERSTUDY_API_BASE: teacher.url, UNDERSTUDY_API_KEY: 'sk-cli-key-0123456789' };
  const asked = await understudy(['ask', '--task', 'qa', 'What is a cat?'], env);
  assert.is(asked.code, 0, asked.stderr);
  assert.is(asked.stdout, 'Answer: What is a cat?\n');
  assert.match(asked.stderr, /\[understudy\] remote  task=qa/);
  const tasks = await understudy(['dataset', 'tasks'], env);
  assert.is(tasks.stdout, 'qa\t1 rows\treadiness - over 0\n');
  const out = join(dir, 'train.jsonl');
  const exported = await understudy(['dataset', 'export', '--out', out], env);
  assert.is(exported.code, 0, exported.stderr);
  assert.equal(JSON.parse(readFileSync(out, 'utf8')), {
    messages: [{ role: 'user', content: 'What is a cat?' }, { role: 'assistant', content: 'Answer: What is a cat?' }], task: 'qa',
  });
});

test('a bad variable stops ask with INVALID_CONFIG naming it', async () => {
  const r = await understudy(['ask', 'x'], { UNDERSTUDY_SIM_THRESHOLD: 'high', UNDERSTUDY_CACHE_DIR: freshDir('cli') });
  assert.is(r.code, 1);
  assert.is(r.stderr, 'understudy: error [INVALID_CONFIG]: UNDERSTUDY_SIM_THRESHOLD must be a decimal number between 0 and 1, got "high"\n');
});

test.run();
