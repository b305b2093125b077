// What can be made again is made again: a corrupt, truncated or misplaced
// cache.db is set aside with a warning and a fresh cache starts, while the
// dataset (which cannot be remade) is never touched that way. A folder that
// cannot be used is a coded error, never a raw one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRouter, MockBackend, type Router } from '../src/index.js';
import { cli, rejection, root } from './helpers.js';
import { freshDir } from './router-fixture.js';

const NOW = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
const clock = { now: () => NOW, sleep: async () => {} };

async function withRows(): Promise<string> {
  const cacheDir = freshDir('recover');
  const r = await createRouter({ remote: new MockBackend(), local: false, cacheDir, quiet: true, env: {} });
  for (const q of ['one', 'two', 'three']) await r.chat({ task: 'kept', messages: [{ role: 'user', content: q }] });
  await r.close();
  return cacheDir;
}

/** Opens a router on `cacheDir` with stderr captured until `done()`; returns the warnings it emitted and wrote. */
async function reopen(cacheDir: string): Promise<{ router: Router; warnings: string[]; stderr: () => string; done: () => void }> {
  const original = process.stderr.write;
  let stderr = '';
  process.stderr.write = ((chunk: string) => {
    stderr += chunk;
    return true;
  }) as typeof process.stderr.write;
  const done = () => {
    process.stderr.write = original;
  };
  try {
    const router = await createRouter({ remote: new MockBackend(), local: false, cacheDir, env: {}, clock });
    const warnings: string[] = [];
    router.on('warning', (w: string) => warnings.push(w));
    await new Promise((resolve) => setImmediate(resolve));
    return { router, warnings, stderr: () => stderr, done };
  } catch (err) {
    done();
    throw err;
  }
}

const breakages: [string, (path: string) => void][] = [
  ['corrupt', (path) => writeFileSync(path, Buffer.alloc(8192, 0x5a))],
  ['truncated', (path) => truncateSync(path, 1000)],
  ['directory', (path) => mkdirSync(path)],
];

for (const [what, breakIt] of breakages) {
  test(`${what === 'directory' ? 'a directory in place of' : `a ${what}`} cache.db is set aside with a warning and a fresh one starts; the dataset stays`, async () => {
    const cacheDir = await withRows();
    const path = join(cacheDir, 'cache.db');
    if (what === 'directory') for (const f of readdirSync(cacheDir).filter((f) => f.startsWith('cache.db'))) rmSync(join(cacheDir, f));
    breakIt(path);
    const { router, warnings, stderr, done } = await reopen(cacheDir);
    try {
      const aside = `${path}.broken-2026-01-02T03-04-05-678Z`;
      assert.ok(existsSync(aside), `set aside as ${aside}: ${readdirSync(cacheDir).join(', ')}`);
      assert.is(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0]!, /^the answer cache could not be opened \(cannot open .*cache\.db as a database: .+; set it aside as .*cache\.db\.broken-2026-01-02T03-04-05-678Z and started an empty one\)$/);
      assert.ok(stderr().includes(`[understudy] warning: ${warnings[0]}`), stderr());
      assert.equal(router.datasetTasks(), [{ task: 'kept', rows: 3 }]);
      // The fresh cache works: a call is answered, then answered from it.
      assert.is((await router.chat({ task: 'kept', messages: [{ role: 'user', content: 'four' }] })).route, 'remote');
      assert.is((await router.chat({ task: 'kept', messages: [{ role: 'user', content: 'four' }] })).route, 'cache');
      await router.close();
    } finally {
      done();
    }
  });
}

test('a corrupt dataset.db is never set aside: startup stops with INVALID_CONFIG and the file is left as it was', async () => {
  const cacheDir = await withRows();
  const path = join(cacheDir, 'dataset.db');
  for (const f of readdirSync(cacheDir).filter((f) => f.startsWith('dataset.db-'))) rmSync(join(cacheDir, f));
  const garbage = Buffer.alloc(8192, 0x5a);
  writeFileSync(path, garbage);
  const err = await rejection(createRouter({ remote: new MockBackend(), local: false, cacheDir, quiet: true, env: {} }));
  assert.is(err.code, 'INVALID_CONFIG');
  assert.match(err.message, /^cannot open .*dataset\.db as a database: file is not a database$/);
  assert.ok(readFileSync(path).equals(garbage));
  assert.not.ok(readdirSync(cacheDir).some((f) => f.includes('broken')));
});

test('a dataset.db that is not a regular file (a pipe) is INVALID_CONFIG saying so', () => {
  const cacheDir = freshDir('recover');
  execFileSync('mkfifo', [join(cacheDir, 'dataset.db')]);
  // In a child: SQLite reading a pipe nobody writes to would block this process for good.
  const script = "import('./src/index.ts').then((u) => u.createRouter({ remote: new u.MockBackend(), local: false, cacheDir: process.argv[1], quiet: true, env: {} })).then(() => console.log('opened'), (e) => console.log(e.code + ': ' + e.message));";
  const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', script, cacheDir], { cwd: root, encoding: 'utf8', timeout: 30_000 });
  assert.is(child.signal, null, 'the child hung and was killed');
  assert.match(child.stdout.trim(), /^INVALID_CONFIG: cannot open .*dataset\.db as a database: it is not a file$/);
});

test('a file where the semantic folder should be is INVALID_CONFIG, not a raw EEXIST', async () => {
  const cacheDir = freshDir('recover');
  writeFileSync(join(cacheDir, 'semantic'), 'not a folder');
  const err = await rejection(createRouter({
    remote: new MockBackend(), local: false, embedder: async (t) => t.map(() => new Float32Array([1, 0])), semanticCache: true,
    cacheDir, quiet: true, env: {},
  }));
  assert.is(err.code, 'INVALID_CONFIG');
  assert.match(err.message, /^cannot use .*semantic for the semantic index: EEXIST/);
});

test('understudy dataset tasks and export work over a corrupt cache.db', async () => {
  const cacheDir = await withRows();
  writeFileSync(join(cacheDir, 'cache.db'), Buffer.alloc(4096, 0x33));
  const env = { PATH: process.env.PATH!, UNDERSTUDY_CACHE_DIR: cacheDir };
  const tasks = await understudy(['dataset', 'tasks'], env);
  assert.is(tasks.code, 0, tasks.stderr);
  assert.is(tasks.stdout, 'kept\t3 rows\treadiness - over 0\n');
  const out = join(cacheDir, 'train.jsonl');
  const exported = await understudy(['dataset', 'export', '--out', out], env);
  assert.is(exported.code, 0, exported.stderr);
  assert.is(readFileSync(out, 'utf8').trim().split('\n').length, 3);
});

function understudy(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { env, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test.run();
