// What `npm install` does with the native addon, as a pure function of what it
// finds (install.mjs gathers the facts): use a prebuilt binary that fits, build
// from source, or stop with one message naming both ways out.
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join, resolve } from 'node:path';

/** The platform packages that could fit here (what npm's os/cpu/libc fields select). */
export function platformPackageNames(platform = process.platform, arch = process.arch, libc = currentLibc()) {
  const cpu = `understudy-llm-${platform}-${arch}${libc === 'musl' ? '-musl' : ''}`;
  return [cpu, `${cpu}-cuda`];
}

export function currentLibc() {
  if (process.platform !== 'linux') return null;
  return process.report.getReport().header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

/** A prebuilt binary for this platform: an installed platform package or prebuilds/; null when none. */
export function findPrebuilt(root, names = platformPackageNames()) {
  const require = createRequire(resolve(root, 'package.json'));
  for (const name of names) {
    try {
      require.resolve(`${name}/package.json`);
      return `the platform package ${name}`;
    } catch { /* not installed: npm skipped it or it does not exist */ }
  }
  const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('.node'))) return `prebuilds/${process.platform}-${process.arch}`;
  return null;
}

/** A git checkout (or a copy of the sources) builds from source, as CI and contributors need. */
export function isSourceCheckout(root) {
  return existsSync(join(root, '.git')) || existsSync(join(root, 'src', 'llama', 'binding.ts'));
}

function onPath(command, path) {
  for (const dir of (path ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch { /* not here */ }
  }
  return false;
}

/** Which of the source build's tools are missing from PATH (cmake, a C++ compiler). */
export function missingTools(env = process.env) {
  if (process.platform === 'win32') return []; // MSVC is found by cmake itself, not on PATH.
  const missing = [];
  if (!onPath('cmake', env.PATH)) missing.push('cmake');
  const cxx = env.CXX?.trim().split(/\s+/)[0];
  const compilers = cxx ? [cxx] : ['c++', 'g++', 'clang++'];
  if (!compilers.some((c) => (c.includes('/') ? existsSync(c) : onPath(c, env.PATH)))) missing.push('a C++ compiler');
  return missing;
}

/**
 * facts: { fromSource (UNDERSTUDY_BUILD_FROM_SOURCE=1 or UNDERSTUDY_GPU set), checkout,
 * prebuilt (what fits, or null), missing (tools), platform (e.g. linux-x64 (glibc)) }.
 * Returns { action: 'skip' | 'build' | 'fail', message }.
 */
export function installDecision(facts) {
  if (!facts.fromSource && !facts.checkout && facts.prebuilt) {
    return { action: 'skip', message: `understudy: using ${facts.prebuilt}; nothing to build` };
  }
  if (facts.missing.length === 0) return { action: 'build', message: 'understudy: building the native addon from source' };
  const why = facts.checkout || facts.fromSource
    ? `understudy: building from source needs ${facts.missing.join(' and ')} on PATH.`
    : `understudy: no prebuilt binary fits ${facts.platform}, and building from source needs ${facts.missing.join(' and ')} on PATH.`;
  return {
    action: 'fail',
    message: [
      why,
      'Two ways out:',
      '  - install on a platform with a prebuilt package (linux-x64 with glibc: understudy-llm-linux-x64, which npm',
      '    installs as an optional dependency; do not omit optional dependencies), or',
      '  - install cmake and a C++ compiler (g++ or clang++) and run npm install again: it builds from source',
      '    (UNDERSTUDY_BUILD_FROM_SOURCE=1 makes it do so even where a prebuilt package fits).',
    ].join('\n'),
  };
}
