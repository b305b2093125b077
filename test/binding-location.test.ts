// Which native binary loads: UNDERSTUDY_BINDING, the package's own build, then
// the platform packages, CUDA only after a child process test-loaded it. The
// packages here are fake directories laid out as npm installs them; the "CUDA
// binaries" are real child processes: a copy of our CPU build (which sees no
// CUDA device), scripts that crash or exit non-zero, and one that reports a device.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseBinary, currentLibc, deviceFromEnv, platformPackageNames, testLoadCuda, type ChoiceInputs } from '../src/llama/binary-location.js';
import { root, thrown } from './helpers.js';

const cpuBuild = join(root, 'build', 'Release', 'understudy.node');
const names = { cpu: 'understudy-llm-linux-x64', cuda: 'understudy-llm-linux-x64-cuda' };

/** An app's node_modules with the main package and the given platform packages (name -> [file, contents or a path to copy]). */
function app(packages: Record<string, { file: string; copy?: string; text?: string }>): string {
  const modules = join(mkdtempSync(join(tmpdir(), 'understudy-binloc-')), 'node_modules');
  const main = join(modules, 'understudy-llm');
  mkdirSync(main, { recursive: true });
  writeFileSync(join(main, 'package.json'), '{"name":"understudy-llm","version":"0.1.0"}');
  for (const [name, p] of Object.entries(packages)) {
    const dir = join(modules, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '0.1.0', main: p.file }));
    if (p.copy) copyFileSync(p.copy, join(dir, p.file));
    else writeFileSync(join(dir, p.file), p.text ?? '');
  }
  return main;
}

const cpuPackage = { file: 'understudy.node', copy: cpuBuild };
const crashing = { file: 'crash.js', text: 'process.kill(process.pid, "SIGSEGV");' };
const failing = { file: 'fail.js', text: 'console.error("error: libcuda.so.1: cannot open shared object file"); process.exit(7);' };
const working = { file: 'ok.js', text: 'exports.systemInfo = () => ({ gpu: "cuda", devices: [{ backend: "CUDA", type: "gpu", description: "Fake GPU" }] });' };

function choose(main: string, extra: Partial<ChoiceInputs> = {}) {
  delete process.env.UNDERSTUDY_CUDA_TEST_LOADED;
  return chooseBinary({ root: main, device: 'auto', local: null, names, ...extra });
}

test('package names follow the platform, arch and libc; this machine is glibc', () => {
  assert.equal(platformPackageNames('linux', 'x64', 'glibc'), names);
  assert.equal(platformPackageNames('linux', 'arm64', 'musl'), { cpu: 'understudy-llm-linux-arm64-musl', cuda: 'understudy-llm-linux-arm64-musl-cuda' });
  assert.equal(platformPackageNames('darwin', 'arm64', null).cpu, 'understudy-llm-darwin-arm64');
  // An independent reference: glibc's own getconf answers only on glibc.
  assert.match(execFileSync('getconf', ['GNU_LIBC_VERSION'], { encoding: 'utf8' }), /^glibc /);
  assert.is(currentLibc(), 'glibc');
});

test('UNDERSTUDY_BINDING comes first, then the local build, then the packages', () => {
  const main = app({ [names.cpu]: cpuPackage });
  assert.is(choose(main, { explicit: cpuBuild, local: '/elsewhere.node' }).source, 'UNDERSTUDY_BINDING');
  const local = choose(main, { local: cpuBuild });
  assert.equal([local.source, local.path], ['local', cpuBuild]);
  const pkg = choose(main);
  assert.equal([pkg.source, pkg.packageName, pkg.path], ['package', names.cpu, join(main, '..', names.cpu, 'understudy.node')]);
  assert.is(pkg.reason, `${names.cuda} is not installed; using the CPU package`);
});

test('a missing UNDERSTUDY_BINDING file is BINDING_NOT_FOUND', () => {
  const err = thrown(() => choose(app({}), { explicit: '/nowhere/understudy.node' }));
  assert.is(err.code, 'BINDING_NOT_FOUND');
  assert.is(err.message, 'UNDERSTUDY_BINDING is "/nowhere/understudy.node" but there is no file there');
});

test('no build and no package: BINDING_NOT_FOUND naming both ways out', () => {
  const err = thrown(() => choose(app({})));
  assert.is(err.code, 'BINDING_NOT_FOUND');
  assert.match(err.message, `and ${names.cpu} is not installed. Use a supported platform (linux-x64 with glibc), or build from source: install cmake and a C++ compiler, then UNDERSTUDY_BUILD_FROM_SOURCE=1 npm rebuild understudy-llm`);
});

test('auto: a CUDA binary that crashes in its test load leaves the CPU', () => {
  const c = choose(app({ [names.cpu]: cpuPackage, [names.cuda]: crashing }));
  assert.is(c.packageName, names.cpu);
  assert.is(c.reason, `${names.cuda} is installed but not usable: its test load crashed (SIGSEGV); using the CPU`);
});

test('auto: a CUDA binary that exits non-zero leaves the CPU, with its error line', () => {
  const c = choose(app({ [names.cpu]: cpuPackage, [names.cuda]: failing }));
  assert.is(c.packageName, names.cpu);
  assert.match(c.reason, 'its test load exited with 7: error: libcuda.so.1: cannot open shared object file');
});

test('auto: a real binary that sees no CUDA device leaves the CPU', () => {
  const c = choose(app({ [names.cpu]: cpuPackage, [names.cuda]: { file: 'understudy.node', copy: cpuBuild } }));
  assert.is(c.packageName, names.cpu);
  assert.match(c.reason, 'its test load found no CUDA device');
});

test('auto and cuda: a CUDA binary whose test load lists a device is chosen', () => {
  const main = app({ [names.cpu]: cpuPackage, [names.cuda]: working });
  for (const device of ['auto', 'cuda'] as const) {
    const c = choose(main, { device });
    assert.equal([c.packageName, c.path], [names.cuda, join(main, '..', names.cuda, 'ok.js')]);
    assert.is(c.reason, `UNDERSTUDY_DEVICE=${device}: ${names.cuda} is usable (its test load found ["Fake GPU"])`);
  }
});

test('cpu: the CUDA package is not even test-loaded', () => {
  const c = choose(app({ [names.cpu]: cpuPackage, [names.cuda]: working }), {
    device: 'cpu', testLoad: () => { throw new Error('test-loaded'); },
  });
  assert.equal([c.packageName, c.reason], [names.cpu, 'UNDERSTUDY_DEVICE=cpu; using the CPU package']);
});

test('the test load runs once per binary per process', () => {
  const main = app({ [names.cpu]: cpuPackage, [names.cuda]: crashing });
  let runs = 0;
  const testLoad = (path: string) => { runs++; return testLoadCuda(path); };
  choose(main, { testLoad });
  assert.is(runs, 1);
  // The env key is what worker threads inherit; choose() clears it, chooseBinary does not.
  chooseBinary({ root: main, device: 'auto', local: null, names, testLoad });
  assert.is(runs, 1);
});

test('cuda with no CUDA package, or an unusable one, is INVALID_CONFIG naming what to install', () => {
  let err = thrown(() => choose(app({ [names.cpu]: cpuPackage }), { device: 'cuda' }));
  assert.is(err.code, 'INVALID_CONFIG');
  assert.is(err.message, `UNDERSTUDY_DEVICE is cuda but ${names.cuda} is not installed: npm install ${names.cuda}, ` +
    'or build from source with UNDERSTUDY_GPU=cuda UNDERSTUDY_BUILD_FROM_SOURCE=1 npm rebuild understudy-llm');
  err = thrown(() => choose(app({ [names.cpu]: cpuPackage, [names.cuda]: crashing }), { device: 'cuda' }));
  assert.is(err.code, 'INVALID_CONFIG');
  assert.is(err.message, `UNDERSTUDY_DEVICE is cuda but ${names.cuda} is not usable here: its test load crashed (SIGSEGV) ` +
    '(check the NVIDIA driver with nvidia-smi, or use UNDERSTUDY_DEVICE=auto)');
  err = thrown(() => choose(app({ [names.cpu]: cpuPackage }), { device: 'hip' }));
  assert.is(err.code, 'INVALID_CONFIG');
  assert.match(err.message, 'UNDERSTUDY_DEVICE is hip but there is no prebuilt HIP package: build from source with UNDERSTUDY_GPU=hip');
});

test('UNDERSTUDY_DEVICE is read strictly (blank is auto)', () => {
  assert.is(deviceFromEnv(undefined), 'auto');
  assert.is(deviceFromEnv(' cuda '), 'cuda');
  assert.is(deviceFromEnv(''), 'auto');
  const err = thrown(() => deviceFromEnv('gpu'));
  assert.is(err.code, 'INVALID_CONFIG');
  assert.is(err.message, 'UNDERSTUDY_DEVICE must be one of auto, cpu, cuda, hip, got "gpu"');
});

test('doctor shows the binary, its source and reason, and NODE_DEBUG=understudy logs the choice', () => {
  const script = "const m = await import('./src/cli/inspect.ts'); process.exitCode = await m.doctorCommand([]);";
  const run = (env: Record<string, string>) => spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script],
    { cwd: root, encoding: 'utf8', env: { ...process.env, NODE_DEBUG: 'understudy', ...env }, timeout: 60_000 });
  let r = run({});
  assert.is(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).binary, { path: cpuBuild, source: 'local', package: null, reason: 'the package\'s own build (build/ or prebuilds/)' });
  assert.match(r.stderr, `native binary ${cpuBuild} (local): the package's own build`);
  r = run({ UNDERSTUDY_BINDING: cpuBuild });
  assert.is(r.status, 0, r.stderr);
  assert.is(JSON.parse(r.stdout).binary.source, 'UNDERSTUDY_BINDING');
});

test.run();
