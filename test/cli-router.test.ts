// `understudy ask` and `understudy dataset` as a user runs them, against the
// teacher on loopback and the real local model.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
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

test('ask offline answers locally, then from the cache; an answer cut off by --max-tokens is not cached', async () => {
  const env = { UNDERSTUDY_CACHE_DIR: freshDir('cli'), UNDERSTUDY_MODEL: storiesModel, UNDERSTUDY_USE_API: 'false' };
  // stories260K does not stop by itself: 64 tokens are cut off (finish reason length)...
  const cut = await understudy(['ask', '-n', '64', '--task', 'story', 'Once upon a time'], env);
  assert.is(cut.code, 0, cut.stderr);
  assert.ok(cut.stdout.includes('.'), cut.stdout);
  const cutAgain = await understudy(['ask', '-n', '64', '--task', 'story', 'Once upon a time'], env);
  assert.is(cutAgain.stdout, cut.stdout);
  assert.match(cutAgain.stderr, /\[understudy\] local   task=story  \d+ ms/);
  // ...while the same answer ended by a stop text is whole, and the second ask reads it from the cache.
  const first = await understudy(['ask', '-n', '64', '--stop', '.', '--task', 'story', 'Once upon a time'], env);
  assert.is(first.code, 0, first.stderr);
  assert.is(first.stdout, `${cut.stdout.slice(0, cut.stdout.indexOf('.'))}\n`);
  assert.match(first.stderr, /\[understudy\] local   task=story  \d+ ms/);
  const second = await understudy(['ask', '-n', '64', '--stop', '.', '--task', 'story', 'Once upon a time'], env);
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

test('credentials in UNDERSTUDY_API_BASE stop ask with INVALID_CONFIG, and stderr never shows them', async () => {
  const url = teacher.url.replace('http://', 'http://alice:hunter2-secret@');
  const r = await understudy(['ask', 'x'], { UNDERSTUDY_API_BASE: url, UNDERSTUDY_API_KEY: 'sk-cli-key-0123456789', UNDERSTUDY_CACHE_DIR: freshDir('cli') });
  assert.is(r.code, 1);
  assert.is(r.stderr, `understudy: error [INVALID_CONFIG]: UNDERSTUDY_API_BASE must not carry a user name or password (put the key in UNDERSTUDY_API_KEY or the apiKey option), got "${teacher.url}"\n`);
  assert.not.ok(r.stderr.includes('hunter2') || r.stderr.includes('alice'));
});

test('dataset export into a missing folder is error [IO_ERROR] and leaves no temporary file', async () => {
  const dir = freshDir('cli');
  const missing = join(dir, 'missing');
  const r = await understudy(['dataset', 'export', '--out', join(missing, 'train.jsonl')], { UNDERSTUDY_CACHE_DIR: dir });
  assert.is(r.code, 1);
  assert.is(r.stderr, `understudy: error [IO_ERROR]: cannot write the export to ${join(missing, 'train.jsonl')}: the folder ${missing} does not exist\n`);
  assert.equal(readdirSync(dir).filter((f) => f.includes('tmp')), []);
});

test('ask --threads sets the local model\'s thread budget; a bad count is a usage error', async () => {
  const env = { UNDERSTUDY_CACHE_DIR: freshDir('cli'), UNDERSTUDY_MODEL: storiesModel, UNDERSTUDY_USE_API: 'false' };
  const ok = await understudy(['ask', '--threads', '2', '-n', '4', 'Once'], env);
  assert.is(ok.code, 0, ok.stderr);
  const bad = await understudy(['ask', '--threads', '2.5', 'Once'], env);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /^understudy: --threads expects an integer, got "2\.5"/);
  const env0 = await understudy(['ask', 'Once'], { ...env, UNDERSTUDY_THREADS: '0x2' });
  assert.is(env0.stderr, 'understudy: error [INVALID_CONFIG]: UNDERSTUDY_THREADS must be a decimal integer between 1 and 1024, got "0x2"\n');
});

test.run();
