// npm install's native step: a fitting prebuilt binary means nothing to build
// (outside a git checkout), else a source build, and with no cmake or compiler
// one message naming both ways out instead of a cmake trace.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPrebuilt, installDecision, isSourceCheckout, missingTools, platformPackageNames, type InstallFacts } from '../scripts/install-decision.mjs';
import { root } from './helpers.js';

const base: InstallFacts = { fromSource: false, checkout: false, prebuilt: 'the platform package understudy-llm-linux-x64', missing: [], platform: 'linux-x64 (glibc)' };
const WAYS_OUT = [
  'Two ways out:',
  '  - install on a platform with a prebuilt package (linux-x64 with glibc: understudy-llm-linux-x64, which npm',
  '    installs as an optional dependency; do not omit optional dependencies), or',
  '  - install cmake and a C++ compiler (g++ or clang++) and run npm install again: it builds from source',
  '    (UNDERSTUDY_BUILD_FROM_SOURCE=1 makes it do so even where a prebuilt package fits).',
].join('\n');

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'understudy-install-'));
}

test('a fitting prebuilt binary outside a checkout: nothing to build, even with no compiler', () => {
  assert.equal(installDecision({ ...base, missing: ['cmake', 'a C++ compiler'] }),
    { action: 'skip', message: 'understudy: using the platform package understudy-llm-linux-x64; nothing to build' });
});

test('a git checkout, UNDERSTUDY_BUILD_FROM_SOURCE=1 or UNDERSTUDY_GPU build from source', () => {
  assert.is(installDecision({ ...base, checkout: true }).action, 'build');
  assert.is(installDecision({ ...base, fromSource: true }).action, 'build');
  assert.is(installDecision({ ...base, prebuilt: null }).action, 'build');
});

test('no prebuilt binary and no tools: one message naming both ways out', () => {
  assert.equal(installDecision({ ...base, prebuilt: null, missing: ['cmake', 'a C++ compiler'] }), {
    action: 'fail',
    message: `understudy: no prebuilt binary fits linux-x64 (glibc), and building from source needs cmake and a C++ compiler on PATH.\n${WAYS_OUT}`,
  });
  assert.equal(installDecision({ ...base, checkout: true, missing: ['cmake'] }), {
    action: 'fail', message: `understudy: building from source needs cmake on PATH.\n${WAYS_OUT}`,
  });
});

test('this repository is a checkout; an installed package is not', () => {
  assert.ok(isSourceCheckout(root));
  assert.not.ok(isSourceCheckout(tempDir()));
});

test('findPrebuilt: an installed platform package, then prebuilds/', () => {
  const modules = join(tempDir(), 'node_modules');
  const main = join(modules, 'understudy-llm');
  mkdirSync(main, { recursive: true });
  const names = platformPackageNames('linux', 'x64', 'glibc');
  assert.is(findPrebuilt(main, names), null);
  mkdirSync(join(main, 'prebuilds', `${process.platform}-${process.arch}`), { recursive: true });
  writeFileSync(join(main, 'prebuilds', `${process.platform}-${process.arch}`, 'understudy.napi.node'), '');
  assert.is(findPrebuilt(main, names), `prebuilds/${process.platform}-${process.arch}`);
  mkdirSync(join(modules, 'understudy-llm-linux-x64-cuda'));
  writeFileSync(join(modules, 'understudy-llm-linux-x64-cuda', 'package.json'), '{"name":"understudy-llm-linux-x64-cuda"}');
  assert.is(findPrebuilt(main, names), 'the platform package understudy-llm-linux-x64-cuda');
});

test('missingTools looks on PATH (and at CXX)', () => {
  const bin = tempDir();
  assert.equal(missingTools({ PATH: bin }), ['cmake', 'a C++ compiler']);
  for (const tool of ['cmake', 'clang++']) {
    writeFileSync(join(bin, tool), '#!/bin/sh\n');
    chmodSync(join(bin, tool), 0o755);
  }
  assert.equal(missingTools({ PATH: bin }), []);
  assert.equal(missingTools({ PATH: bin, CXX: '/nowhere/g++ -O2' }), ['a C++ compiler']);
});

test('install.mjs in an installed copy with an empty PATH: the message, exit 1, no build', () => {
  const pkg = tempDir();
  mkdirSync(join(pkg, 'scripts'));
  for (const f of ['install.mjs', 'install-decision.mjs']) copyFileSync(join(root, 'scripts', f), join(pkg, 'scripts', f));
  writeFileSync(join(pkg, 'package.json'), '{"name":"understudy-llm","version":"0.1.0","type":"module"}');
  const env = { HOME: process.env.HOME ?? '/', PATH: '' };
  const r = spawnSync(process.execPath, [join(pkg, 'scripts', 'install.mjs')], { encoding: 'utf8', env, timeout: 30_000 });
  assert.is(r.status, 1);
  assert.is(r.stdout, '');
  // This machine is glibc (binding-location.test.ts checks it against getconf).
  assert.is(r.stderr, `understudy: no prebuilt binary fits ${process.platform}-${process.arch} (glibc), ` +
    `and building from source needs cmake and a C++ compiler on PATH.\n${WAYS_OUT}\n`);
});

test.run();
