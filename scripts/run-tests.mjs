#!/usr/bin/env node
// Runs every test/*.test.ts in a process of its own (a crash in one file cannot
// take the others with it, and native state never leaks between files), then
// prints one closing line: "N passed, N failed".
//   node scripts/run-tests.mjs [name-filter...]
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const FILE_TIMEOUT_MS = 15 * 60 * 1000;

// The reference program the greedy-generation tests compare with, built from the
// same vendored llama.cpp (incremental: seconds once the library is built).
if (!existsSync(join(root, 'build', 'tools', 'simple', 'llama-simple')) || !existsSync(join(root, 'build', 'tools', 'completion', 'llama-completion'))) {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs'), '--tools=simple'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('run-tests: could not build the reference tools');
    process.exit(1);
  }
}

// The CLI and worker tests run the compiled package: compile the current source.
const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
if (tsc.status !== 0) {
  console.error('run-tests: the TypeScript build failed');
  process.exit(1);
}
// Tests, scripts and benches are type-checked too: tsx runs them without checking.
const check = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.check.json'], { cwd: root, stdio: 'inherit' });
if (check.status !== 0) {
  console.error('run-tests: the type check of tests, scripts and benches failed');
  process.exit(1);
}

const filters = process.argv.slice(2);
const files = readdirSync(join(root, 'test'))
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', join('test', file)], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
    child.stderr.on('data', (d) => { out += d; process.stderr.write(d); });
    const timer = setTimeout(() => child.kill('SIGKILL'), FILE_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ file, code, signal, out, ms: Date.now() - started });
    });
  });
}

// uvu ends each file with "Total: N / Passed: N / Skipped: N", where Total
// counts the tests that ran: the skipped ones are apart from it.
function counts(out) {
  const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? NaN);
  const passed = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? NaN);
  const skipped = Number(/Skipped:\s+(\d+)/.exec(out)?.[1] ?? 0);
  return { total, passed, skipped };
}

let passed = 0;
let failed = 0;
let skipped = 0;
const summary = [];
for (const file of files) {
  console.log(`\n── ${file}`);
  const r = await runFile(file);
  const c = counts(r.out);
  let fileFailed = Number.isNaN(c.total) ? 0 : Math.max(0, c.total - c.passed);
  // A file that crashed, was killed or exited non-zero without reporting a
  // failure still counts as one failure: nothing it did is trusted.
  if ((r.code !== 0 || r.signal || Number.isNaN(c.total)) && fileFailed === 0) fileFailed = 1;
  passed += Number.isNaN(c.passed) ? 0 : c.passed;
  skipped += c.skipped;
  failed += fileFailed;
  const how = r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
  summary.push(`${fileFailed ? 'FAIL' : 'ok  '} ${file} (${Number.isNaN(c.passed) ? 0 : c.passed} passed, ${fileFailed} failed, ${how}, ${(r.ms / 1000).toFixed(1)} s)`);
}

console.log('\n' + summary.join('\n'));
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
