#!/usr/bin/env node
// `npm run package`: builds this machine's platform binary portably (no
// -march=native; on Linux x64 and arm64 ggml's CPU code once per CPU generation,
// loaded at run time as the best fit: UNDERSTUDY_CPU_VARIANTS in CMakeLists.txt,
// so understudy.node comes with its shared libraries and libggml-cpu-*.so
// modules), writes its platform package, and packs
// it and the main package (with the platform packages as optionalDependencies,
// pinned to its version) into dist-packages/. Options:
//   --gpu=cpu|cuda      the CPU package (default) or the CUDA one (built on a
//                       machine with the CUDA toolkit; untested so far). It links
//                       the CUDA runtime and cuBLAS dynamically: users need the
//                       driver and the CUDA runtime of the same major version,
//                       else its test load fails and the CPU package is used.
//   --cuda-arch=LIST    CMAKE_CUDA_ARCHITECTURES. Default: llama.cpp's release
//                       list for a non-native build (ggml-cuda/CMakeLists.txt):
//                       50/61/70-virtual (CUDA < 13), 75-virtual, 80-virtual,
//                       86-real, 89-real, 90-virtual, and Blackwell (120a-real,
//                       121a-real) with CUDA >= 12.8/12.9
//   --no-build          reuse the portable build already in --build-dir
//   --build-dir=DIR     default build-portable (build-portable-cuda for CUDA)
//   --no-tsc            pack the dist/ already there (default: npm run build first)
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { currentLibc, platformPackageNames } from './install-decision.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const flag = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const gpu = flag('gpu', 'cpu');
if (!['cpu', 'cuda'].includes(gpu)) fail(`--gpu must be cpu or cuda (HIP is a source build: UNDERSTUDY_GPU=hip), not ${JSON.stringify(gpu)}`);
const buildDir = flag('build-dir', gpu === 'cpu' ? 'build-portable' : 'build-portable-cuda');
const out = join(root, 'dist-packages');
const main = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const libc = currentLibc();
const [cpuName, cudaName] = platformPackageNames();
const name = gpu === 'cpu' ? cpuName : cudaName;

function fail(message) {
  console.error(`package: ${message}`);
  process.exit(1);
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...options });
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
  return r;
}

// 1. The binary, portable.
if (!process.argv.includes('--no-build')) {
  // --tools=none: the reference programs are no part of a package.
  const args = [join(root, 'scripts', 'build-native.mjs'), `--gpu=${gpu}`, '--tools=none', `--out=${buildDir}`];
  const arch = flag('cuda-arch', '');
  if (arch) args.push(`--cuda-arch=${arch}`);
  run(process.execPath, args, { env: { ...process.env, UNDERSTUDY_NATIVE_ARCH: 'off' } });
}
const binary = join(root, buildDir, 'Release', 'understudy.node');
if (!existsSync(binary)) fail(`no build at ${binary}: run without --no-build`);
// A build made without UNDERSTUDY_NATIVE_ARCH=off would carry -march=native into a package.
const cache = readFileSync(join(root, buildDir, 'CMakeCache.txt'), 'utf8');
if (!/^GGML_NATIVE:BOOL=OFF$/m.test(cache)) fail(`${buildDir} is a -march=native build (GGML_NATIVE is not OFF): rebuild it without --no-build`);
const variants = /^UNDERSTUDY_CPU_VARIANTS:BOOL=ON$/m.test(cache);

/** readelf -d of a file, in the C locale (its wording is what is parsed). */
function dynamicSection(path) {
  const r = spawnSync('readelf', ['-d', path], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  if (r.status !== 0) fail(`readelf -d ${path} failed: ${r.stderr}`);
  return {
    needed: [...r.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[(.+?)\]/g)].map((m) => m[1]),
    soname: /\(SONAME\)\s+Library soname: \[(.+?)\]/.exec(r.stdout)?.[1] ?? null,
  };
}

/**
 * What a build with CPU variants needs beside understudy.node: ggml's backend
 * modules (libggml-cpu-<variant>.so, libggml-cuda.so: loaded by path, no SONAME)
 * and every library of the build that they or the addon load by name, each
 * under that name (its SONAME), followed through symbolic links. Nothing else
 * in bin/ (a reference tool's libraries, a stale version) comes along.
 */
function sharedLibraries(dir) {
  const modules = readdirSync(dir).filter((f) => /^libggml-[a-z0-9_]+(-[a-z0-9_.]+)?\.so$/.test(f) && !lstatSync(join(dir, f)).isSymbolicLink());
  const out = new Map(modules.map((f) => [f, join(dir, f)]));
  const queue = [binary, ...out.values()];
  while (queue.length) {
    for (const name of dynamicSection(queue.pop()).needed) {
      if (out.has(name) || !existsSync(join(dir, name))) continue; // a system library
      const path = realpathSync(join(dir, name));
      const { soname } = dynamicSection(path);
      if (soname !== name) fail(`${path} is loaded as ${name} but its SONAME is ${soname ?? 'missing'}`);
      out.set(name, path);
      queue.push(path);
    }
  }
  return [...out].map(([name, path]) => ({ name, path }));
}

// 2. The platform package: the binary, a package.json and a README line.
const platformDir = join(out, name);
rmSync(platformDir, { recursive: true, force: true });
mkdirSync(platformDir, { recursive: true });
run('strip', ['--strip-unneeded', '-o', join(platformDir, 'understudy.node'), binary]);
const libraries = variants ? sharedLibraries(join(root, buildDir, 'bin')) : [];
if (variants && !libraries.some((l) => /^libggml-cpu-.+\.so$/.test(l.name))) fail(`no CPU modules (libggml-cpu-*.so) in ${buildDir}/bin`);
for (const lib of libraries) run('strip', ['--strip-unneeded', '-o', join(platformDir, lib.name), lib.path]);
if (libraries.length) console.error(`package: ${libraries.length} libraries beside understudy.node: ${libraries.map((l) => l.name).join(', ')}`);
writeFileSync(join(platformDir, 'package.json'), JSON.stringify({
  name,
  version: main.version,
  description: `The ${gpu === 'cpu' ? 'CPU' : 'CUDA'} binary of understudy-llm for ${process.platform}-${process.arch}${libc ? ` (${libc})` : ''}`,
  license: main.license,
  main: 'understudy.node',
  files: ['understudy.node', 'README.md', ...libraries.map((l) => l.name)],
  os: [process.platform],
  cpu: [process.arch],
  ...(libc ? { libc: [libc] } : {}),
  engines: main.engines,
}, null, 2) + '\n');
writeFileSync(join(platformDir, 'README.md'),
  `The ${gpu === 'cpu' ? 'CPU' : 'CUDA'} native binary of [understudy-llm](https://www.npmjs.com/package/understudy-llm), installed by it as an optional dependency; not for use on its own.` +
  (gpu === 'cuda' ? ' Needs an NVIDIA driver and the CUDA runtime and cuBLAS libraries; understudy-llm test-loads it and falls back to the CPU package when they are missing.\n' : '\n'));

// 3. The main package, from a staged copy whose package.json lists the platform packages.
if (!process.argv.includes('--no-tsc')) run('npm', ['run', 'build']);
if (!existsSync(join(root, 'dist', 'index.js'))) fail('dist/ is not built: run without --no-tsc');
const stage = join(out, 'stage', 'understudy-llm');
rmSync(join(out, 'stage'), { recursive: true, force: true });
mkdirSync(stage, { recursive: true });
for (const entry of [...main.files, 'README.md']) {
  if (existsSync(join(root, entry))) cpSync(join(root, entry), join(stage, entry), { recursive: true });
}
const optional = Object.fromEntries([cpuName, cudaName].map((n) => [n, main.version]));
writeFileSync(join(stage, 'package.json'), JSON.stringify({ ...main, optionalDependencies: optional }, null, 2) + '\n');

// 4. The tarballs. --ignore-scripts: dist/ is built above; the stage has no sources for `prepare`.
for (const dir of [stage, platformDir]) run('npm', ['pack', '--ignore-scripts', '--pack-destination', out], { cwd: dir });
rmSync(join(out, 'stage'), { recursive: true });
for (const tgz of [`understudy-llm-${main.version}.tgz`, `${name}-${main.version}.tgz`]) {
  console.error(`package: dist-packages/${tgz} ${(statSync(join(out, tgz)).size / 2 ** 20).toFixed(1)} MiB`);
}
