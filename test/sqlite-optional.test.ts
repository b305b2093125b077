// better-sqlite3 is an optional dependency: where npm leaves it out (its
// prebuilt binary comes from GitHub, else it compiles), the package still
// generates, and a router refuses to start with BINDING_NOT_FOUND saying how to
// get it, without touching the files already in its cache directory (the
// answer cache is never set aside as if it were corrupt). Each case runs in a
// child whose better-sqlite3 resolution fails (test/fixtures/no-sqlite.cjs).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, root, run, storiesModel } from './helpers.js';

const preload = ['--require', join(root, 'test', 'fixtures', 'no-sqlite.cjs')];
const how = 'better-sqlite3 is not installed: its install downloads a prebuilt binary from GitHub, or compiles one with a C++ toolchain ' +
  '(a C++ compiler, make and Python), and npm leaves it out where neither works; run npm install better-sqlite3 where one of them does';

async function routerChild(cacheDir: string, hide: boolean) {
  const script = join(root, 'test', 'fixtures', 'sqlite-optional-child.ts');
  const r = await run(process.execPath, ['--import', 'tsx', ...(hide ? preload : []), script, cacheDir], 120_000);
  assert.is(r.code, 0, `child exited with ${r.code} (${r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { code?: string; message: string; files: string[] };
}

test('without better-sqlite3: a router refuses to start with BINDING_NOT_FOUND, and its cache directory is left as it was', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-nosqlite-'));
  const first = await routerChild(dir, false);
  assert.is(first.message, 'started');
  const before = first.files;
  assert.ok(before.includes('cache.db') && before.includes('dataset.db'), before.join(' '));
  const r = await routerChild(dir, true);
  assert.is(r.code, 'BINDING_NOT_FOUND');
  assert.is(r.message, `the router keeps its cache and dataset in SQLite, but ${how}`);
  assert.equal(r.files, before);
});

test('without better-sqlite3: generate prints the same text, and doctor says why the router cannot start', async () => {
  const args = ['generate', '--model', storiesModel, '--max-tokens', '24', '--temperature', '0', 'Once upon a time'];
  const [plain, hidden] = await Promise.all([run(process.execPath, [cli, ...args]), run(process.execPath, [...preload, cli, ...args])]);
  assert.is(hidden.code, 0, hidden.stderr);
  assert.is(hidden.stdout, plain.stdout);
  assert.ok(plain.stdout.length > 20);
  const doctor = await run(process.execPath, [...preload, cli, 'doctor']);
  assert.is(doctor.code, 0, doctor.stderr);
  assert.is((JSON.parse(doctor.stdout) as { routerStores: string }).routerStores, `unavailable, so the router cannot start: ${how}`);
  const withIt = JSON.parse((await run(process.execPath, [cli, 'doctor'])).stdout) as { routerStores: string };
  assert.is(withIt.routerStores, 'available (better-sqlite3 loaded)');
});

// The children above hide better-sqlite3 from require() only (Node 20's resolve
// hooks do not reach createRequire): a static import of it anywhere in the
// package would load before any of that and crash where it is missing, so
// none may exist. Type-only imports vanish from the compiled JavaScript.
test('nothing in the package imports better-sqlite3 at load: type imports only, and the lazy load in sqlite-module.ts', () => {
  const staticImport = /^\s*(import|export)\s+(?!type\b)[^;]*from\s+'better-sqlite3'/;
  const otherLoad = /(require|import)\s*\(\s*'better-sqlite3'\s*\)/;
  const offenders: string[] = [];
  let lazy = 0;
  for (const dir of ['src', 'bin']) {
    for (const file of readdirSync(join(root, dir), { recursive: true }) as string[]) {
      if (!/\.(ts|js|mjs|cjs)$/.test(file)) continue;
      for (const line of readFileSync(join(root, dir, file), 'utf8').split('\n')) {
        if (staticImport.test(line) || otherLoad.test(line)) offenders.push(`${dir}/${file}: ${line.trim()}`);
        if (line.includes("loadOptional<SqliteConstructor>('better-sqlite3')")) lazy++;
      }
    }
  }
  assert.equal(offenders, []);
  assert.is(lazy, 1, 'sqlite-module.ts no longer loads it through loadOptional: update this test');
  // And the compiled package agrees: no dist file imports it for real.
  const compiled = readFileSync(join(root, 'dist', 'router', 'store.js'), 'utf8');
  assert.not.match(compiled, /from 'better-sqlite3'/);
});

test.run();
