// The adapter registry on real files (promotion, versions, rollback, rounds,
// per-model histories, recovery from a corrupt manifest, a missing file and a
// crash mid-promotion) and the base model key it files adapters under.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdapterRegistry, type PromoteEntry } from '../src/train/registry.js';
import { baseModelKey } from '../src/train/base-key.js';
import { copyModel, scaleOutputNorm } from './fixtures/model-copy.js';
import { rejection, root, storiesModel, thrown, tinyModel, fixtureDir } from './helpers.js';

const KEY = '0123456789abcdef';
const OTHER = 'fedcba9876543210';

// Not router-fixture's freshDir: this file must not load the router.
function freshDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `understudy-${name}-`));
}

function opened(cacheDir = freshDir('registry')): { registry: AdapterRegistry; warnings: string[]; dir: string; cacheDir: string } {
  const warnings: string[] = [];
  const registry = AdapterRegistry.open(cacheDir, (m) => warnings.push(m));
  return { registry, warnings, dir: join(cacheDir, 'adapters'), cacheDir };
}

function entry(overrides: Partial<PromoteEntry> = {}): PromoteEntry {
  return {
    baseKey: KEY, baseName: 'stories', parent: null, rowsUsed: 10, round: 1,
    tasks: { greet: { trainRows: 8, heldOutRows: 2, before: 0.5, after: 0.75 } },
    heldOut: { before: 0.5, after: 0.75 },
    ...overrides,
  };
}

/** Writes a candidate adapter with `content` and promotes it. */
function promote(registry: AdapterRegistry, content: string, overrides: Partial<PromoteEntry> = {}) {
  const file = registry.candidatePath();
  writeFileSync(file, content);
  return registry.promote(file, entry(overrides));
}

function manifest(dir: string): { format: number; models: Record<string, { current: number | null; lastRowId: number; rounds: number }>; adapters: Array<Record<string, unknown>> } {
  return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
}

test('promote moves the candidate to v1.gguf and writes the manifest, leaving no temporary file', () => {
  const { registry, dir, warnings } = opened();
  const candidate = registry.candidatePath();
  assert.ok(candidate.startsWith(join(dir, '.candidate-')) && candidate.endsWith('.gguf'), candidate);
  writeFileSync(candidate, 'adapter one');
  const info = registry.promote(candidate, entry());
  assert.is(info.version, 1);
  assert.is(info.file, join(dir, 'v1.gguf'));
  assert.is(info.status, 'current');
  assert.is(info.parent, null);
  assert.equal(info.tasks, entry().tasks);
  assert.ok(!Number.isNaN(Date.parse(info.createdAt)));
  assert.is(readFileSync(info.file, 'utf8'), 'adapter one');
  assert.not.ok(existsSync(candidate), 'the candidate is gone');
  assert.equal(readdirSync(dir).sort(), ['manifest.json', 'v1.gguf']);
  const m = manifest(dir);
  assert.is(m.format, 1);
  assert.equal(m.models[KEY], { current: 1, lastRowId: 0, rounds: 0 });
  assert.is(m.adapters[0]!.file, 'v1.gguf', 'stored relative');
  assert.not.ok('status' in m.adapters[0]!);
  assert.equal(warnings, []);
});

test('versions increase; list is newest first with statuses; current and reopening agree', () => {
  const { registry, cacheDir } = opened();
  const v1 = promote(registry, 'one');
  const v2 = promote(registry, 'two', { parent: v1.version, round: 2 });
  const v3 = promote(registry, 'three', { parent: v2.version, round: 3 });
  assert.equal([v1.version, v2.version, v3.version], [1, 2, 3]);
  for (const r of [registry, opened(cacheDir).registry]) {
    assert.equal(r.list().map((a) => [a.version, a.status, a.parent]), [[3, 'current', 2], [2, 'previous', 1], [1, 'previous', null]]);
    assert.equal(r.list(KEY).map((a) => a.version), [3, 2, 1]);
    assert.equal(r.list(OTHER), []);
    assert.is(r.current(KEY)!.version, 3);
    assert.is(readFileSync(r.current(KEY)!.file, 'utf8'), 'three');
    assert.is(r.current(OTHER), null);
  }
});

test('rollback walks the chain: v3 → v2 → v1 → base model, then NO_ADAPTER', () => {
  const { registry, cacheDir, dir } = opened();
  const v1 = promote(registry, 'one');
  const v2 = promote(registry, 'two', { parent: v1.version });
  promote(registry, 'three', { parent: v2.version });
  // Readiness's lineage: the ancestors, nearest first, then the base model.
  assert.equal([registry.lineage(3), registry.lineage(2), registry.lineage(1)], [[2, 1, 0], [1, 0], [0]]);

  const first = registry.rollback(KEY);
  assert.is(first.from.version, 3);
  assert.is(first.from.status, 'rolled-back');
  assert.ok(first.from.rolledBackAt);
  assert.is(first.to!.version, 2);
  assert.is(first.to!.status, 'current');
  const second = registry.rollback(KEY);
  assert.equal([second.from.version, second.to?.version], [2, 1]);
  assert.is(registry.current(KEY)!.version, 1);
  assert.equal(opened(cacheDir).registry.list().map((a) => [a.version, a.status]), [[3, 'rolled-back'], [2, 'rolled-back'], [1, 'current']]);

  const third = registry.rollback(KEY);
  assert.equal([third.from.version, third.to], [1, null]);
  assert.is(registry.current(KEY), null);
  const err = thrown(() => registry.rollback(KEY));
  assert.is(err.code, 'NO_ADAPTER');
  assert.is(err.message, `no adapter to roll back: the base model is already in use for stories (${KEY})`);
  const none = thrown(() => registry.rollback(OTHER));
  assert.is(none.code, 'NO_ADAPTER');
  assert.is(none.message, `no adapter to roll back: the base model is already in use for base model ${OTHER}`);
  // Every file is still there: a rollback deletes nothing.
  assert.equal(readdirSync(dir).filter((f) => f.endsWith('.gguf')).sort(), ['v1.gguf', 'v2.gguf', 'v3.gguf']);
  // A new adapter after all that continues the numbering.
  assert.is(promote(registry, 'four').version, 4);
});

test('rollback skips an ancestor that was rolled back itself or lost its file', () => {
  const { registry, dir, warnings } = opened();
  const v1 = promote(registry, 'one');
  const v2 = promote(registry, 'two', { parent: 1 });
  // A round started from v2; meanwhile v2 was rolled back; the round then promoted v3 on top of v2.
  registry.rollback(KEY);
  promote(registry, 'three', { parent: v2.version });
  const back = registry.rollback(KEY);
  assert.equal([back.from.version, back.to?.version], [3, v1.version]);
  // v4 on v1, v1's file lost: rolling back v4 reaches the base model.
  promote(registry, 'four', { parent: 1 });
  rmSync(join(dir, 'v1.gguf'));
  const toBase = registry.rollback(KEY);
  assert.equal([toBase.from.version, toBase.to], [4, null]);
  assert.ok(warnings.some((w) => w.includes(join(dir, 'v1.gguf'))), warnings.join('\n'));
});

test('rollbackTarget says where rollback goes and changes nothing', () => {
  const { registry, dir } = opened();
  promote(registry, 'one');
  promote(registry, 'two', { parent: 1 });
  promote(registry, 'three', { parent: 2 });
  rmSync(join(dir, 'v2.gguf'));
  const text = readFileSync(join(dir, 'manifest.json'), 'utf8');
  const peek = registry.rollbackTarget(KEY);
  assert.equal([peek.from.version, peek.from.status, peek.to?.version, peek.to?.status], [3, 'current', 1, 'previous']);
  assert.is(readFileSync(join(dir, 'manifest.json'), 'utf8'), text, 'the manifest is untouched');
  const done = registry.rollback(KEY);
  assert.equal([done.from.version, done.to?.version], [peek.from.version, peek.to?.version]);
  // The current adapter's file is gone: current() says base model, but the manifest still names it, and rollback leaves it.
  rmSync(join(dir, 'v1.gguf'));
  assert.is(registry.current(KEY), null);
  assert.equal([registry.rollbackTarget(KEY).from.version, registry.rollbackTarget(KEY).to], [1, null]);
  registry.rollback(KEY);
  const err = thrown(() => registry.rollbackTarget(KEY));
  assert.is(err.code, 'NO_ADAPTER');
  assert.is(err.message, `no adapter to roll back: the base model is already in use for stories (${KEY})`);
});

test('two base models keep separate histories in one manifest; versions are global', () => {
  const { registry, dir } = opened();
  const a1 = promote(registry, 'a1');
  const b1 = promote(registry, 'b1', { baseKey: OTHER, baseName: 'tiny' });
  const a2 = promote(registry, 'a2', { parent: a1.version });
  assert.equal([a1.version, b1.version, a2.version], [1, 2, 3]);
  assert.equal(registry.lineage(3), [1, 0], 'the other model\'s v2 is not in v3\'s lineage');
  assert.equal(registry.list(KEY).map((a) => [a.version, a.status]), [[3, 'current'], [1, 'previous']]);
  assert.equal(registry.list(OTHER).map((a) => [a.version, a.status]), [[2, 'current']]);
  assert.equal(registry.list().map((a) => a.version), [3, 2, 1]);
  registry.rollback(OTHER);
  assert.is(registry.current(OTHER), null);
  assert.is(registry.current(KEY)!.version, 3, 'the other model is untouched');
  registry.finishRound(OTHER, 7);
  assert.equal(registry.state(KEY), { lastRowId: 0, rounds: 0 });
  const m = manifest(dir);
  assert.equal(Object.keys(m.models).sort(), [OTHER, KEY].sort());
  assert.equal(m.models[OTHER], { current: null, lastRowId: 7, rounds: 1 });
  // A parent from another model's history is refused.
  const err = thrown(() => promote(registry, 'x', { parent: b1.version }));
  assert.is(err.code, 'INVALID_ARGUMENT');
  assert.is(err.message, `Expected an adapter of base model ${KEY} for parent but received 2 of type number`);
});

test('finishRound counts rounds and keeps the newest row id; nextRound and state follow; reopening keeps them', () => {
  const { registry, cacheDir } = opened();
  assert.equal(registry.state(KEY), { lastRowId: 0, rounds: 0 });
  assert.is(registry.nextRound(KEY), 1);
  assert.is(registry.finishRound(KEY, 40), 1);
  assert.equal(registry.state(KEY), { lastRowId: 40, rounds: 1 });
  assert.is(registry.nextRound(KEY), 2);
  promote(registry, 'one', { round: 2 });
  assert.is(registry.finishRound(KEY, 30), 2);
  assert.equal(registry.state(KEY), { lastRowId: 40, rounds: 2 }, 'the mark never moves back');
  const again = opened(cacheDir).registry;
  assert.equal(again.state(KEY), { lastRowId: 40, rounds: 2 });
  assert.is(again.nextRound(KEY), 3);
  assert.is(again.current(KEY)!.round, 2);
  const err = thrown(() => registry.finishRound(KEY, -1));
  assert.is(err.code, 'INVALID_ARGUMENT');
  assert.is(err.message, 'Expected non-negative integer for lastRowId but received -1 of type number');
});

test('a corrupt manifest is set aside with a warning naming it; the registry starts empty and keeps the adapter files', () => {
  // A real manifest, cut short, is the truncated case.
  const good = opened();
  promote(good.registry, 'one');
  const valid = readFileSync(join(good.dir, 'manifest.json'), 'utf8');
  const withAdapter = JSON.parse(valid);
  const cases: Array<[string, string, RegExp]> = [
    ['garbage', 'not json at all \u0000\u00ff', /unusable \(not JSON: /],
    ['truncated', valid.slice(0, Math.floor(valid.length / 2)), /unusable \(not JSON: /],
    ['empty', '', /unusable \(not JSON: /],
    ['an array', '[]', /wrong shape: the manifest is not an object/],
    ['another format', JSON.stringify({ ...withAdapter, format: 2 }), /wrong shape: format is not 1/],
    ['a bad version', JSON.stringify({ ...withAdapter, adapters: [{ ...withAdapter.adapters[0], version: 'one' }] }), /wrong shape: adapters\[0\]\.version is not a positive integer/],
    ['a file outside the folder', JSON.stringify({ ...withAdapter, adapters: [{ ...withAdapter.adapters[0], file: '../../etc/passwd' }] }), /wrong shape: adapters\[0\]\.file is not "v1\.gguf"/],
    ['a current that does not exist', JSON.stringify({ ...withAdapter, models: { [KEY]: { current: 5, lastRowId: 0, rounds: 0 } } }), /wrong shape: models\["0123456789abcdef"\]\.current is not an adapter of that model/],
    ['models missing', JSON.stringify({ format: 1, adapters: [] }), /wrong shape: models is not an object/],
  ];
  for (const [name, text, reason] of cases) {
    const cacheDir = freshDir('registry-corrupt');
    const dir = join(cacheDir, 'adapters');
    mkdirSync(dir);
    writeFileSync(join(dir, 'manifest.json'), text);
    writeFileSync(join(dir, 'v1.gguf'), 'adapter one');
    const { registry, warnings } = opened(cacheDir);
    const aside = readdirSync(dir).filter((f) => f.startsWith('manifest.json.corrupt-'));
    assert.is(aside.length, 1, name);
    assert.is(readFileSync(join(dir, aside[0]!), 'utf8'), text, `${name}: set aside as it was`);
    assert.is(warnings.length, 1, name);
    assert.ok(warnings[0]!.includes(join(dir, 'manifest.json')) && warnings[0]!.includes(join(dir, aside[0]!)), warnings[0]);
    assert.match(warnings[0]!, reason, name);
    assert.match(warnings[0]!, /starting with no adapters \(the adapter files are kept\)/);
    assert.equal(registry.list(), [], name);
    assert.is(registry.current(KEY), null);
    assert.is(readFileSync(join(dir, 'v1.gguf'), 'utf8'), 'adapter one', `${name}: the adapter file is kept`);
    // The kept file's number is not reused.
    assert.is(promote(registry, 'two').version, 2, name);
    assert.is(readFileSync(join(dir, 'v1.gguf'), 'utf8'), 'adapter one');
    assert.is(warnings.length, 1, `${name}: the new manifest is good`);
  }
});

test('a current adapter whose file is gone: current() is null with one warning naming the file', () => {
  const { registry, warnings, dir } = opened();
  promote(registry, 'one');
  rmSync(join(dir, 'v1.gguf'));
  assert.is(registry.current(KEY), null);
  assert.is(registry.current(KEY), null);
  assert.equal(warnings, [`adapter v1, current for stories (${KEY}), has no file at ${join(dir, 'v1.gguf')}: using the base model`]);
  assert.equal(registry.list().map((a) => [a.version, a.status]), [[1, 'current']], 'the entry stays');
});

test('open removes temporary files of processes that are gone, and keeps everything else', () => {
  const cacheDir = freshDir('registry-leftovers');
  const dir = join(cacheDir, 'adapters');
  mkdirSync(dir);
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  const files = {
    [`.candidate-${dead}-0a1b2c.gguf`]: false,
    [`.manifest-${dead}-0a1b2c.tmp`]: false,
    '.candidate-unnamed.gguf': false,
    [`.candidate-${process.pid}-in-progress.gguf`]: true, // a live process's round
    'v7.gguf': true,
    'notes.txt': true,
  };
  for (const name of Object.keys(files)) writeFileSync(join(dir, name), name);
  opened(cacheDir);
  for (const [name, kept] of Object.entries(files)) assert.is(existsSync(join(dir, name)), kept, name);
});

test('a crash between moving the file and writing the manifest: the orphan stays, the next version skips it', async () => {
  const { registry, cacheDir, dir } = opened();
  promote(registry, 'one');
  promote(registry, 'two', { parent: 1 });
  const before = readFileSync(join(dir, 'manifest.json'), 'utf8');
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test', 'fixtures', 'registry-crash-child.ts'), cacheDir, KEY, '2'],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const signal = await new Promise<string | null>((resolve) => child.on('exit', (_code, s) => resolve(s)));
  assert.is(signal, 'SIGKILL', output);
  // What the crash left: v3.gguf with no entry, the old manifest whole, a manifest temp file.
  assert.is(readFileSync(join(dir, 'v3.gguf'), 'utf8'), 'the adapter whose manifest entry never got written');
  assert.is(readFileSync(join(dir, 'manifest.json'), 'utf8'), before);
  assert.ok(readdirSync(dir).some((f) => f.startsWith('.manifest-')), readdirSync(dir).join(' '));

  const after = opened(cacheDir);
  assert.equal(after.warnings, []);
  assert.not.ok(readdirSync(dir).some((f) => f.startsWith('.manifest-')), 'the dead process\'s temp file is removed');
  assert.equal(after.registry.list().map((a) => a.version), [2, 1]);
  assert.is(after.registry.current(KEY)!.version, 2);
  const v4 = promote(after.registry, 'four', { parent: 2 });
  assert.is(v4.version, 4);
  assert.is(readFileSync(join(dir, 'v3.gguf'), 'utf8'), 'the adapter whose manifest entry never got written', 'never overwritten');
  assert.is(readFileSync(join(dir, 'v4.gguf'), 'utf8'), 'four');
});

test('a second registry on the same folder sees the first one\'s changes', () => {
  const a = opened();
  const b = opened(a.cacheDir);
  promote(a.registry, 'one');
  assert.is(b.registry.current(KEY)!.version, 1);
  b.registry.rollback(KEY);
  assert.is(a.registry.current(KEY), null);
  assert.is(promote(a.registry, 'two').version, 2);
});

test('promote refuses bad entries and missing candidates without touching anything', () => {
  const { registry, dir } = opened();
  const file = registry.candidatePath();
  writeFileSync(file, 'x');
  const bad: Array<[Partial<PromoteEntry>, string]> = [
    [{ rowsUsed: -1 }, 'invalid adapter entry: entry.rowsUsed is not a non-negative integer'],
    [{ round: 0 }, 'invalid adapter entry: entry.round is not a positive integer'],
    [{ heldOut: { before: Number.NaN, after: 1 } }, 'invalid adapter entry: entry.heldOut.before is not a number or null'],
    [{ tasks: { t: { trainRows: 1, heldOutRows: 1, before: 0.5 } as never } }, 'invalid adapter entry: entry.tasks["t"].after is not a number or null'],
    [{ parent: 9 }, `Expected an adapter of base model ${KEY} for parent but received 9 of type number`],
  ];
  for (const [overrides, message] of bad) {
    const err = thrown(() => registry.promote(file, entry(overrides)));
    assert.is(err.code, 'INVALID_ARGUMENT');
    assert.is(err.message, message);
  }
  const key = thrown(() => registry.promote(file, entry({ baseKey: '' })));
  assert.is(key.message, 'Expected non-empty string for baseKey but received "" of type string');
  assert.ok(existsSync(file));
  const missing = join(dir, '.candidate-missing.gguf');
  const err = thrown(() => registry.promote(missing, entry()));
  assert.is(err.code, 'IO_ERROR');
  assert.is(err.message, `cannot promote ${missing}: the candidate adapter file does not exist`);
  assert.equal(readdirSync(dir).filter((f) => !f.startsWith('.candidate-')), []);
});

test('baseModelKey: a stable 16-hex key from the content, not the path; another model gets another', async () => {
  const stories = await baseModelKey(storiesModel);
  assert.match(stories.key, /^[0-9a-f]{16}$/);
  assert.equal(await baseModelKey(storiesModel), stories);
  mkdirSync(fixtureDir, { recursive: true });
  const moved = join(fixtureDir, 'stories-moved.gguf');
  copyFileSync(storiesModel, moved);
  assert.equal(await baseModelKey(moved), stories, 'a copy elsewhere is the same base model');
  // Same shapes and vocabulary, other weights: another model.
  const scaled = await copyModel(storiesModel, join(fixtureDir, 'stories-scaled.gguf'), (f) => scaleOutputNorm(f));
  const other = await baseModelKey(scaled);
  assert.match(other.key, /^[0-9a-f]{16}$/);
  assert.is.not(other.key, stories.key);
  const tiny = await baseModelKey(await tinyModel());
  assert.is.not(tiny.key, stories.key);
  assert.is.not(tiny.key, other.key);
});

test('baseModelKey: a missing file is MODEL_NOT_FOUND, a file that is not GGUF INVALID_MODEL_FILE', async () => {
  const dir = freshDir('base-key');
  const missing = join(dir, 'nope.gguf');
  const err = await rejection(baseModelKey(missing));
  assert.is(err.code, 'MODEL_NOT_FOUND');
  assert.is(err.message, `model file not found: ${missing}`);
  const folder = await rejection(baseModelKey(dir));
  assert.is(folder.code, 'MODEL_NOT_FOUND');
  assert.is(folder.message, `model path is not a file: ${dir}`);
  const text = join(dir, 'model.gguf');
  writeFileSync(text, 'this is not a model file');
  const invalid = await rejection(baseModelKey(text));
  assert.is(invalid.code, 'INVALID_MODEL_FILE');
  assert.match(invalid.message, new RegExp(`^invalid model file ${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a GGUF file`));
});

test.run();
