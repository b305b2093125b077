// `understudy adapters list|rollback` as a user runs them: the real binary over
// a cache directory whose adapters were promoted through the registry's own API
// (real adapter files for stories260K, made by scripts/make-lora.ts), so the
// command is checked against what the registry recorded, not against itself.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeLoraAdapter } from '../scripts/make-lora.js';
import type { AdapterInfo } from '../src/router/learner.js';
import { baseModelKey } from '../src/train/base-key.js';
import { AdapterRegistry } from '../src/train/registry.js';
import { cli, storiesModel } from './helpers.js';
import { freshDir } from './router-fixture.js';

const HINT = 'Run `understudy --help` for usage.\n';
const OTHER_KEY = '0123456789abcdef';

// Only PATH from this machine: its own UNDERSTUDY_* variables must not leak in.
function understudy(args: string[], env: Record<string, string> = {}, cwd?: string) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH!, ...env }, cwd, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let base: { key: string; name: string | null };
let adapterFile: string;
test.before(async () => {
  base = await baseModelKey(storiesModel);
  adapterFile = (await makeLoraAdapter({ model: storiesModel, out: join(freshDir('cli-adapters-src'), 'a.gguf'), rank: 2, targets: ['attn_q'] })).path;
});

const noWarnings = (message: string) => assert.unreachable(`registry warning: ${message}`);

/** Promotes a copy of the adapter file as the registry's next version for `baseKey`. */
function promote(registry: AdapterRegistry, baseKey: string, parent: number | null, rows: number, before: number | null, after: number): AdapterInfo {
  const candidate = registry.candidatePath();
  copyFileSync(adapterFile, candidate);
  return registry.promote(candidate, {
    baseKey, baseName: baseKey === base.key ? base.name : 'other', parent, rowsUsed: rows, round: 1,
    tasks: { qa: { trainRows: rows, heldOutRows: 3, before, after } }, heldOut: { before, after },
  });
}

/** The cells of the table's lines (columns are at least two spaces apart). */
function cells(stdout: string): string[][] {
  return stdout.trimEnd().split('\n').map((line) => line.split(/ {2,}/));
}

test('list on a cache directory without adapters: a plain line, [] with --json, and no folder made', async () => {
  const dir = freshDir('cli-adapters');
  const r = await understudy(['adapters', 'list', '--cache-dir', dir]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, `no adapters in ${join(dir, 'adapters')}\n`);
  assert.is(r.stderr, '');
  const json = await understudy(['adapters', 'list', '--json', '--cache-dir', join(dir, 'missing')]);
  assert.is(json.code, 0, json.stderr);
  assert.is(json.stdout, '[]\n');
  assert.equal(readdirSync(dir), []);
});

test('list shows what the registry promoted, newest first; --model keeps one base model; --json is the registry list', async () => {
  const dir = freshDir('cli-adapters');
  const registry = AdapterRegistry.open(dir, noWarnings);
  const v1 = promote(registry, base.key, null, 12, 0.41, 0.55);
  const v2 = promote(registry, OTHER_KEY, null, 7, null, 0.3);
  const v3 = promote(registry, base.key, v1.version, 20, 0.55, 0.72);
  assert.equal([v1.version, v2.version, v3.version], [1, 2, 3]);

  const r = await understudy(['adapters', 'list', '--cache-dir', dir]);
  assert.is(r.code, 0, r.stderr);
  const stamp = (a: AdapterInfo) => a.createdAt.replace(/\.\d+Z$/, 'Z');
  assert.equal(cells(r.stdout), [
    ['version', 'status', 'parent', 'base model', 'rows', 'held-out', 'created'],
    ['v3', 'current', 'v1', `llama (${base.key})`, '20', '0.55 → 0.72', stamp(v3)],
    ['v2', 'current', 'base', `other (${OTHER_KEY})`, '7', '- → 0.30', stamp(v2)],
    ['v1', 'previous', 'base', `llama (${base.key})`, '12', '0.41 → 0.55', stamp(v1)],
  ]);

  const mine = await understudy(['adapters', 'list', '--json', '--model', storiesModel, '--cache-dir', dir]);
  assert.is(mine.code, 0, mine.stderr);
  const listed = JSON.parse(mine.stdout) as AdapterInfo[];
  assert.equal(listed.map((a) => [a.version, a.status, a.parent, a.rowsUsed, a.baseModel]), [[3, 'current', 1, 20, base.key], [1, 'previous', null, 12, base.key]]);
  assert.equal(listed, registry.list(base.key));
  assert.is(listed[0]!.file, join(dir, 'adapters', 'v3.gguf'));
  assert.ok(existsSync(listed[0]!.file));

  // UNDERSTUDY_CACHE_DIR and UNDERSTUDY_MODEL stand in for the flags; without either, ./.understudy.
  const byEnv = await understudy(['adapters', 'list', '--json'], { UNDERSTUDY_CACHE_DIR: dir, UNDERSTUDY_MODEL: storiesModel });
  assert.is(byEnv.stdout, mine.stdout);
  const cwd = freshDir('cli-adapters-cwd');
  mkdirSync(join(cwd, '.understudy'));
  AdapterRegistry.open(join(cwd, '.understudy'), noWarnings);
  promote(AdapterRegistry.open(join(cwd, '.understudy'), noWarnings), base.key, null, 5, 0.2, 0.4);
  const byCwd = await understudy(['adapters', 'list', '--json'], {}, cwd);
  assert.equal((JSON.parse(byCwd.stdout) as AdapterInfo[]).map((a) => [a.version, a.rowsUsed]), [[1, 5]]);
});

test('rollback walks back to the parent, then the base model, then fails with NO_ADAPTER', async () => {
  const dir = freshDir('cli-adapters');
  const registry = AdapterRegistry.open(dir, noWarnings);
  const v1 = promote(registry, base.key, null, 12, 0.41, 0.55);
  const v2 = promote(registry, base.key, v1.version, 20, 0.55, 0.72);
  const env = { UNDERSTUDY_CACHE_DIR: dir };

  const first = await understudy(['adapters', 'rollback', '--model', storiesModel], env);
  assert.is(first.code, 0, first.stderr);
  assert.is(first.stdout, `rolled back v${v2.version}: v${v1.version} is current (${join(dir, 'adapters', 'v1.gguf')})\n`);
  const after = AdapterRegistry.open(dir, noWarnings);
  assert.is(after.current(base.key)?.version, v1.version);
  assert.equal(after.list(base.key).map((a) => [a.version, a.status]), [[2, 'rolled-back'], [1, 'current']]);
  // The rolled-back adapter's file stays: adapter files are never deleted.
  assert.ok(existsSync(join(dir, 'adapters', 'v2.gguf')));

  const second = await understudy(['adapters', 'rollback', '--json', '--model', storiesModel], env);
  assert.is(second.code, 0, second.stderr);
  const moved = JSON.parse(second.stdout) as { from: AdapterInfo; to: AdapterInfo | null };
  assert.is(moved.from.version, v1.version);
  assert.is(moved.to, null);
  assert.is(AdapterRegistry.open(dir, noWarnings).current(base.key), null);

  const third = await understudy(['adapters', 'rollback'], { ...env, UNDERSTUDY_MODEL: storiesModel });
  assert.is(third.code, 1);
  assert.is(third.stderr, `understudy: error [NO_ADAPTER]: no adapter to roll back: the base model is already in use for ${base.name} (${base.key})\n`);
  assert.is(third.stdout, '');
  const manifest = JSON.parse(readFileSync(join(dir, 'adapters', 'manifest.json'), 'utf8'));
  assert.is(manifest.models[base.key].current, null);
});

test('a model file that is missing: MODEL_NOT_FOUND, exit 1', async () => {
  const dir = freshDir('cli-adapters');
  const missing = join(dir, 'no-model.gguf');
  const r = await understudy(['adapters', 'rollback', '--cache-dir', dir, '--model', missing]);
  assert.is(r.code, 1);
  assert.is(r.stderr, `understudy: error [MODEL_NOT_FOUND]: model file not found: ${missing}\n`);
});

test('usage errors exit 2 with the problem and the hint', async () => {
  const dir = freshDir('cli-adapters');
  const cases: Array<[string[], string]> = [
    [['adapters'], 'adapters takes "list" or "rollback"'],
    [['adapters', 'remove'], 'adapters takes "list" or "rollback", got "remove"'],
    [['adapters', 'list', 'v3'], 'adapters list takes no other arguments, got "v3"'],
    [['adapters', 'list', '--cache-dir', ''], '--cache-dir expects a path, got ""'],
    [['adapters', 'rollback', '--cache-dir', dir], 'adapters rollback needs the base model whose adapter to roll back: --model PATH or UNDERSTUDY_MODEL'],
  ];
  for (const [args, message] of cases) {
    const r = await understudy(args);
    assert.is(r.code, 2, r.stderr);
    assert.is(r.stderr, `understudy: ${message}\n${HINT}`);
    assert.is(r.stdout, '');
  }
  const unknown = await understudy(['adapters', 'list', '--verbose']);
  assert.is(unknown.code, 2);
  assert.match(unknown.stderr, /^understudy: Unknown option '--verbose'/);
  assert.equal(readdirSync(dir), []);
});

test.run();
