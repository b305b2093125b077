// Which CPU code the addon runs, on the source build every checkout and CI
// makes (-march=native, its CPU code built in): `doctor` says so, with the
// instruction sets the kernel reports; UNDERSTUDY_CPU_VARIANT is checked before
// any native call and, on a build with nothing to choose, ignored with a
// warning; the native loadBackends() refuses wrong argument types. The prebuilt
// binary's variants are in cpu-variants.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { NativeBinding } from '../src/llama/binding.js';
import { cli, root, run, storiesModel, thrown } from './helpers.js';

const build = join(root, 'build', 'Release', 'understudy.node');
const understudy = (env: Record<string, string>, ...args: string[]) =>
  run('/usr/bin/env', [...Object.entries({ UNDERSTUDY_BINDING: build, ...env }).map(([k, v]) => `${k}=${v}`), process.execPath, cli, ...args]);
const cpuFlags = new Set(/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim().split(/\s+/) ?? []);

test('doctor: a source build runs its own CPU code, with the instruction sets this CPU has', async () => {
  const r = await understudy({}, 'doctor');
  assert.is(r.code, 0, r.stderr);
  const cpu = (JSON.parse(r.stdout) as { cpu: { variant: string; module: string; features: string[] } }).cpu;
  assert.is(cpu.variant, 'built in');
  assert.is(realpathSync(cpu.module), realpathSync(build));
  // -march=native: what ggml reports follows what the kernel lists.
  assert.is(cpu.features.includes('AVX2'), cpuFlags.has('avx2'), cpu.features.join(' '));
  assert.is(cpu.features.includes('AVX512'), cpuFlags.has('avx512f'), cpu.features.join(' '));
});

test('UNDERSTUDY_CPU_VARIANT that is not a name fails with INVALID_CONFIG before anything loads', async () => {
  for (const bad of ['../lib/evil', 'Zen4', 'a b']) {
    const r = await understudy({ UNDERSTUDY_CPU_VARIANT: bad }, 'generate', '--model', storiesModel, '--max-tokens', '2', 'Hi');
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, `understudy: error [INVALID_CONFIG]: UNDERSTUDY_CPU_VARIANT must be a CPU variant's name such as x64, haswell or zen4, got ${JSON.stringify(bad)}`);
  }
});

test('UNDERSTUDY_CPU_VARIANT on a source build is ignored with one warning, and generation goes on', async () => {
  const r = await understudy({ UNDERSTUDY_CPU_VARIANT: 'haswell' }, 'generate', '--model', storiesModel, '--max-tokens', '8', '--temperature', '0', 'Once upon a time');
  assert.is(r.code, 0, r.stderr);
  assert.ok(r.stdout.length > 0);
  const warnings = r.stderr.split('\n').filter((l) => l.includes('UNDERSTUDY_CPU_VARIANT_IGNORED'));
  assert.is(warnings.length, 1, r.stderr);
  assert.match(warnings[0]!, 'UNDERSTUDY_CPU_VARIANT=haswell is ignored: ');
});

test('the native loadBackends() refuses wrong argument types with INVALID_ARGUMENT', () => {
  const native = createRequire(import.meta.url)(build) as NativeBinding & { loadBackends(...args: unknown[]): unknown };
  const noDir = thrown(() => native.loadBackends(5));
  assert.equal([noDir.code, noDir.message], ['INVALID_ARGUMENT', 'Expected string for dir']);
  const badVariant = thrown(() => native.loadBackends('/nowhere', 7));
  assert.equal([badVariant.code, badVariant.message], ['INVALID_ARGUMENT', 'Expected string or null for cpuVariant']);
  const path = thrown(() => native.loadBackends('/nowhere', '../x'));
  assert.equal([path.code, path.message], ['INVALID_CONFIG', 'UNDERSTUDY_CPU_VARIANT must be a variant name such as haswell or x64']);
  // A build with its CPU code built in loads nothing, and says where the code is.
  const ok = native.loadBackends('/nowhere', null) as { dynamic: boolean; cpu: { module: string } };
  assert.is(ok.dynamic, false);
  assert.is(realpathSync(ok.cpu.module), realpathSync(build));
});

test.run();
