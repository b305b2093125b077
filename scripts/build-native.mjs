#!/usr/bin/env node
// Builds the native addon with cmake-js from CMakeLists.txt (the one build
// description). Options, as flags or environment variables:
//   --gpu=cpu|cuda|hip      UNDERSTUDY_GPU      (default cpu)
//   --tools=none|simple|all UNDERSTUDY_TOOLS    reference programs from the same tree
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
const args = [cmakeJs, 'build', '--out', out, '--parallel', jobs, `--CDUNDERSTUDY_GPU=${gpu}`, `--CDUNDERSTUDY_TOOLS=${tools}`];
if (cudaArch) args.push(`--CDCMAKE_CUDA_ARCHITECTURES=${cudaArch}`);
if (process.env.UNDERSTUDY_NATIVE_ARCH === 'off') args.push('--CDGGML_NATIVE=OFF');
console.error(`build-native: ${gpu} build, tools=${tools}, ${jobs} jobs`);
const started = Date.now();
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error(`build-native: the build failed (exit ${r.status ?? r.signal}); see the compiler output above`);
  process.exit(1);
}
console.error(`build-native: done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
