// The dataset log: exactly one row per remote interaction under concurrency,
// nothing acknowledged lost and nothing corrupt after SIGKILL, and a JSONL
// export in the chat format training tools read.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRouter, MockBackend, type Router } from '../src/index.js';
import { rejection, root, thrown } from './helpers.js';
import { freshDir } from './router-fixture.js';
import { startTeacher, type Teacher } from './teacher.js';

let teacher: Teacher;
const open: Router[] = [];

async function remoteOnly(cacheDir = freshDir('dataset')): Promise<Router> {
  const r = await createRouter({ apiBase: teacher.url, apiKey: 'sk-parent-key-0123456789', apiModel: 'teacher-1', cacheDir, local: false, quiet: true, env: {} });
  open.push(r);
  return r;
}

test.before(async () => {
  teacher = await startTeacher();
});
test.after(async () => {
  await teacher.close();
});
test.after.each(async () => {
  for (const r of open.splice(0)) await r.close();
  teacher.requests.length = 0;
});

test('100 concurrent distinct calls: 100 rows, none lost, none duplicated', async () => {
  const r = await remoteOnly();
  const results = await Promise.all(Array.from({ length: 100 }, (_, i) =>
    r.chat({ task: 'many', messages: [{ role: 'user', content: `question ${i}` }] })));
  assert.ok(results.every((x, i) => x.route === 'remote' && x.text === `Answer: question ${i}`));
  const rows = r.datasetRows('many');
  assert.is(rows.length, 100);
  const asked = rows.map((row) => row.messages![0]!.content).sort();
  assert.equal(asked, Array.from({ length: 100 }, (_, i) => `question ${i}`).sort());
  assert.ok(rows.every((row) => row.answer === `Answer: ${row.messages![0]!.content}`));
});

test('100 concurrent identical calls share one remote call and one row', async () => {
  const r = await remoteOnly();
  const results = await Promise.all(Array.from({ length: 100 }, () =>
    r.chat({ task: 'same', messages: [{ role: 'user', content: 'the same question' }] })));
  assert.ok(results.every((x) => x.text === 'Answer: the same question'));
  assert.is(results.filter((x) => !x.cached).length, 1);
  assert.is(teacher.requests.filter((q) => q.path.endsWith('/chat/completions')).length, 1);
  assert.is(r.datasetRows('same').length, 1);
});

test('a process killed with SIGKILL mid-burst leaves every acknowledged row, readable', async () => {
  const cacheDir = freshDir('kill');
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test', 'fixtures', 'dataset-writer.ts'), teacher.url, cacheDir], { cwd: root });
  const acked = new Set<number>();
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  let buffer = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child made too few calls: ${acked.size}; stderr: ${stderr}`)), 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) if (line.startsWith('ack ')) acked.add(Number(line.slice(4)));
      if (acked.size >= 150) {
        clearTimeout(timer);
        child.kill('SIGKILL');
        resolve();
      }
    });
    child.on('exit', (code) => code !== null && reject(new Error(`child exited with ${code}: ${stderr}`)));
  });
  await new Promise((resolve) => child.once('close', resolve));
  assert.is(child.signalCode, 'SIGKILL');

  const db = new Database(join(cacheDir, 'dataset.db'), { readonly: true });
  assert.is(db.pragma('integrity_check', { simple: true }), 'ok');
  db.close();
  const r = await remoteOnly(cacheDir);
  const rows = r.datasetRows('burst');
  const logged = rows.map((row) => Number(row.messages![0]!.content.replace('burst question ', '')));
  assert.is(new Set(logged).size, logged.length, 'a row was written twice');
  for (const n of acked) assert.ok(logged.includes(n), `acknowledged row ${n} was lost`);
  assert.ok(rows.every((row) => row.answer === `Answer: ${row.messages![0]!.content}`), 'a row is corrupt');
  // The kill may land between a commit and its "ack": at most the calls in flight are extra.
  assert.ok(logged.length - acked.size <= 8, `${logged.length} rows for ${acked.size} acks`);
});

test('the dataset exports as JSONL in chat format, one task or all', async () => {
  const r = await remoteOnly();
  await r.chat({ task: 'summarize', messages: [{ role: 'system', content: 'Summarize.' }, { role: 'user', content: 'A long text.' }] });
  await r.complete({ task: 'story', prompt: 'Once upon a time' });
  const all = join(r.cacheDir, 'all.jsonl');
  assert.is(await r.exportDataset(all), 2);
  const lines = readFileSync(all, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines[0], {
    messages: [{ role: 'system', content: 'Summarize.' }, { role: 'user', content: 'A long text.' }, { role: 'assistant', content: 'Answer: A long text.' }],
    task: 'summarize',
  });
  assert.equal(lines[1], { prompt: 'Once upon a time', completion: 'Answer: Once upon a time', task: 'story' });
  const one = join(r.cacheDir, 'one.jsonl');
  assert.is(await r.exportDataset(one, { task: 'story' }), 1);
});

test('an export into a missing folder, or onto a folder, is IO_ERROR and leaves no temporary file', async () => {
  const r = await remoteOnly();
  await r.chat({ task: 'x', messages: [{ role: 'user', content: 'something to export' }] });
  const missing = join(r.cacheDir, 'no', 'such', 'folder');
  const err = await rejection(r.exportDataset(join(missing, 'train.jsonl')));
  assert.is(err.code, 'IO_ERROR');
  assert.is(err.message, `cannot write the export to ${join(missing, 'train.jsonl')}: the folder ${missing} does not exist`);
  const folder = join(r.cacheDir, 'a-folder');
  mkdirSync(folder);
  const onto = await rejection(r.exportDataset(folder));
  assert.is(onto.code, 'IO_ERROR');
  assert.match(onto.message, /^the export to .*a-folder failed: EISDIR/);
  assert.equal(readdirSync(r.cacheDir).filter((f) => f.includes('.tmp')), []);
  assert.equal(readdirSync(folder), []);
});

test('a row whose stored JSON does not parse: readers get INVALID_DATASET naming it (the export too, leaving no file); a lenient read marks it', async () => {
  const r = await remoteOnly();
  await r.chat({ task: 'ok', messages: [{ role: 'user', content: 'a good row' }] });
  // Another tool (or a damaged page) writes what the router never would.
  const db = new Database(join(r.cacheDir, 'dataset.db'));
  db.prepare(`INSERT INTO dataset (task, kind, input, answer, params, usage, model, source, latency_ms, created_at)
    VALUES ('bad', 'chat', '[{"role":"user","content":"x"}]', 'y', '{"maxTokens":', '{}', 'm', 'call', 1, 0)`).run();
  db.close();
  const expected = /^dataset row 2 \(task "bad"\) cannot be read: its params column is not valid JSON \(.+\)$/;
  const err = thrown(() => r.datasetRows());
  assert.is(err.code, 'INVALID_DATASET');
  assert.match(err.message, expected);
  const out = join(r.cacheDir, 'out.jsonl');
  const exported = await rejection(r.exportDataset(out));
  assert.is(exported.code, 'INVALID_DATASET');
  assert.match(exported.message, expected);
  assert.equal(readdirSync(r.cacheDir).filter((f) => f.startsWith('out.jsonl')), [], 'no export and no temporary file');
  assert.is(r.datasetRows('ok').length, 1, 'the readable task still reads');
  const { Dataset } = await import('../src/router/dataset.js');
  const db2 = new Database(join(r.cacheDir, 'dataset.db'));
  const lenient = [...new Dataset(db2).rows(undefined, 0, { lenient: true })];
  db2.close();
  assert.equal(lenient.map((x) => [x.id, x.task, x.unreadable?.replace(/\(.+\)$/, '(…)')]), [[1, 'ok', undefined], [2, 'bad', 'its params column is not valid JSON (…)']]);
});

test('a task is derived from the system prompt when none is given', async () => {
  const r = await createRouter({ remote: new MockBackend(), local: false, cacheDir: freshDir('derive'), quiet: true, env: {} });
  open.push(r);
  const a = await r.chat({ messages: [{ role: 'system', content: 'You translate to French.' }, { role: 'user', content: 'cat' }] });
  const b = await r.chat({ messages: [{ role: 'system', content: 'You translate to French.' }, { role: 'user', content: 'dog' }] });
  const c = await r.chat({ messages: [{ role: 'user', content: 'no system prompt' }] });
  assert.is(a.task, b.task);
  assert.match(a.task, /^system-[0-9a-f]{12}$/);
  assert.is(c.task, 'default');
});

test.run();
