#!/usr/bin/env node
// Builds the native addon with cmake-js from CMakeLists.txt (the one build
// description). Options, as flags or environment variables:
//   --gpu=cpu|cuda|hip      UNDERSTUDY_GPU      (default cpu)
//   --tools=none|simple|all UNDERSTUDY_TOOLS    reference programs from the same tree:
//                           simple = llama-simple and llama-completion (what the
//                           tests run), all = + llama-bench and friends
//   --jobs=N                UNDERSTUDY_JOBS     (default: all cores)
//   --cuda-arch=90          CMAKE_CUDA_ARCHITECTURES, for CUDA builds
//   --out=DIR               UNDERSTUDY_BUILD_DIR (default build; the addon loads from build/)
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetchLlama } from './fetch-llama.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function flag(name, env, fallback) {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg ? arg.slice(name.length + 3) : process.env[env] || fallback;
}

const gpu = flag('gpu', 'UNDERSTUDY_GPU', 'cpu');
const tools = flag('tools', 'UNDERSTUDY_TOOLS', process.argv.includes('--tools') ? 'all' : 'none');
const jobs = flag('jobs', 'UNDERSTUDY_JOBS', String(availableParallelism()));
const cudaArch = flag('cuda-arch', 'CMAKE_CUDA_ARCHITECTURES', '');
const out = flag('out', 'UNDERSTUDY_BUILD_DIR', 'build');

if (!['cpu', 'cuda', 'hip'].includes(gpu)) {
  console.error(`build-native: --gpu must be cpu, cuda or hip, not ${JSON.stringify(gpu)}`);
  process.exit(2);
}
if (!['none', 'simple', 'all'].includes(tools)) {
  console.error(`build-native: --tools must be none, simple or all, not ${JSON.stringify(tools)}`);
  process.exit(2);
}

fetchLlama();
const cmakeJs = join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
const defines = [`--CDUNDERSTUDY_GPU=${gpu}`, `--CDUNDERSTUDY_TOOLS=${tools}`];
if (cudaArch) defines.push(`--CDCMAKE_CUDA_ARCHITECTURES=${cudaArch}`);
// Prebuilt binaries must run on other machines: no -march=native. On Linux x64
// and arm64 they carry ggml's CPU code once per CPU generation and load the best
// fit at run time (UNDERSTUDY_CPU_VARIANTS in CMakeLists.txt); elsewhere they
// target one baseline (x86-64-v3: AVX2, FMA, F16C, BMI2), as they do with
// UNDERSTUDY_CPU_VARIANTS=off (prebuildify's prebuilds/ hold a single file).
const variants = process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64') &&
  process.env.UNDERSTUDY_CPU_VARIANTS !== 'off';
if (process.env.UNDERSTUDY_NATIVE_ARCH === 'off') {
  defines.push('--CDGGML_NATIVE=OFF', `--CDUNDERSTUDY_CPU_VARIANTS=${variants ? 'ON' : 'OFF'}`);
  if (!variants && process.arch === 'x64') {
    for (const f of ['AVX', 'AVX2', 'FMA', 'F16C', 'BMI2']) defines.push(`--CDGGML_${f}=ON`);
  }
} else {
  // Said every time: CMake's cache would otherwise keep a portable setting from
  // an earlier prebuild in the same folder.
  defines.push('--CDGGML_NATIVE=ON', '--CDUNDERSTUDY_CPU_VARIANTS=OFF');
}
console.error(`build-native: ${gpu} build, tools=${tools}, ${jobs} jobs, into ${out}/`);
const started = Date.now();
// Configure every time: `cmake-js build` alone keeps an existing configuration
// and would ignore changed options. With the cache in place it takes seconds.
for (const step of [['configure', ...defines], ['build', '--parallel', jobs]]) {
  const r = spawnSync(process.execPath, [cmakeJs, ...step, '--out', out], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`build-native: cmake-js ${step[0]} failed (exit ${r.status ?? r.signal}); see the output above`);
    process.exit(1);
  }
}
console.error(`build-native: done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
