// The prebuilt binary with CPU variants (`npm run package`: ggml's CPU code once
// per CPU generation, the best one loaded at run time): it picks a variant this
// CPU runs, prints llama-simple's greedy continuation with it and with the
// baseline x64 variant (what a CPU without AVX2 gets), and a forced variant that
// is missing, malformed or beyond this CPU fails with INVALID_CONFIG instead of
// an illegal instruction. Each case is a child process: the variant is chosen
// once per process.
//
// The package build takes about 8 minutes on 2 cores, so `npm test` does not
// make it: these tests run when `npm run package` has (dist-packages/ or
// build-portable/), or on UNDERSTUDY_TEST_PREBUILT=FILE, and are reported as
// skipped otherwise.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { platformPackageNames } from '../scripts/install-decision.mjs';
import { cpuModuleDir } from '../src/llama/binding.js';
import { cli, llamaSimpleContinuation, root, run, storiesModel } from './helpers.js';

// A binary with its CPU modules beside it (a package) or in ../bin (a build folder).
// The baseline module the tests force must be there too.
const hasModules = (p: string) => { const dir = cpuModuleDir(p); return dir !== null && existsSync(join(dir, 'libggml-cpu-x64.so')); };
const prebuilt = [
  process.env.UNDERSTUDY_TEST_PREBUILT,
  join(root, 'dist-packages', platformPackageNames()[0]!, 'understudy.node'),
  join(root, 'build-portable', 'Release', 'understudy.node'),
].find((p): p is string => Boolean(p && existsSync(p) && hasModules(p)));
const variantBuild = prebuilt !== undefined && process.platform === 'linux' && process.arch === 'x64';
if (!variantBuild) console.log('cpu-variants: no prebuilt binary with CPU variants here (run `npm run package` on linux-x64): skipped');
const it = variantBuild ? test : test.skip;

const understudy = (env: Record<string, string>, ...args: string[]) =>
  run('/usr/bin/env', [...Object.entries({ UNDERSTUDY_BINDING: prebuilt!, ...env }).map(([k, v]) => `${k}=${v}`), process.execPath, cli, ...args]);

// The independent reference for what the CPU has: the kernel's flag list.
const cpuFlags = new Set(/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim().split(/\s+/) ?? []);
// ggml's feature names against the kernel's (ggml-cpu's features list; CMake's variant list).
const KERNEL_FLAG: Record<string, string> = {
  SSE3: 'pni', SSSE3: 'ssse3', AVX: 'avx', AVX2: 'avx2', F16C: 'f16c', FMA: 'fma', BMI2: 'bmi2', AVX_VNNI: 'avx_vnni',
  AVX512: 'avx512f', AVX512_VBMI: 'avx512vbmi', AVX512_VNNI: 'avx512_vnni', AVX512_BF16: 'avx512_bf16', AMX_INT8: 'amx_int8',
};

async function doctor(env: Record<string, string> = {}) {
  const r = await understudy(env, 'doctor');
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { binary: { path: string; source: string }; cpu: { variant: string | null; module: string | null; features: string[] } };
}

it('picks a CPU variant this CPU runs, and not the baseline when the CPU has AVX2', async () => {
  const d = await doctor();
  assert.is(d.binary.source, 'UNDERSTUDY_BINDING');
  assert.ok(d.cpu.variant && d.cpu.variant !== 'built in', `no variant: ${JSON.stringify(d.cpu)}`);
  assert.is(basename(d.cpu.module ?? ''), `libggml-cpu-${d.cpu.variant}.so`);
  for (const f of d.cpu.features) {
    const flag = KERNEL_FLAG[f];
    if (flag) assert.ok(cpuFlags.has(flag), `the ${d.cpu.variant} variant uses ${f}, which /proc/cpuinfo does not list`);
  }
  if (cpuFlags.has('avx2')) assert.ok(d.cpu.features.includes('AVX2'), `an AVX2 CPU got ${d.cpu.variant} (${d.cpu.features.join(' ')})`);
  if (cpuFlags.has('avx512f')) assert.ok(d.cpu.features.includes('AVX512'), `an AVX-512 CPU got ${d.cpu.variant}`);
});

it('prints llama-simple\'s greedy continuation, with the chosen variant and with the baseline x64 one', async () => {
  const prompt = 'Once upon a time';
  const reference = await llamaSimpleContinuation(storiesModel, prompt, 40);
  for (const env of [{}, { UNDERSTUDY_CPU_VARIANT: 'x64' }] as Array<Record<string, string>>) {
    const r = await understudy(env, 'generate', '--model', storiesModel, '--max-tokens', '40', '--temperature', '0', prompt);
    assert.is(r.code, 0, r.stderr);
    assert.is(reference, `<s> ${prompt}${r.stdout}\n`, JSON.stringify(env));
  }
  const baseline = await doctor({ UNDERSTUDY_CPU_VARIANT: 'x64' });
  assert.is(baseline.cpu.variant, 'x64');
  assert.not.ok(baseline.cpu.features.includes('AVX'), baseline.cpu.features.join(' '));
});

it('a forced variant that is missing or malformed fails with INVALID_CONFIG', async () => {
  const missing = await understudy({ UNDERSTUDY_CPU_VARIANT: 'pentium4' }, 'doctor');
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /error \[INVALID_CONFIG\]: UNDERSTUDY_CPU_VARIANT is pentium4 but there is no libggml-cpu-pentium4\.so in /);
  const malformed = await understudy({ UNDERSTUDY_CPU_VARIANT: '../../etc/x' }, 'doctor');
  assert.is(malformed.code, 1);
  assert.match(malformed.stderr, /error \[INVALID_CONFIG\]: UNDERSTUDY_CPU_VARIANT must be a CPU variant's name such as x64, haswell or zen4, got "\.\.\/\.\.\/etc\/x"/);
});

it('a libggml-*.so in the working directory is never loaded (ggml would look there on its own)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-plant-'));
  const marker = join(dir, 'LOADED');
  writeFileSync(join(dir, 'plant.c'), `#include <stdio.h>\n__attribute__((constructor)) static void ran(void) { FILE* f = fopen("${marker}", "w"); if (f) fclose(f); }\n`);
  for (const name of ['libggml-cpu-zzz.so', 'libggml-cuda.so']) {
    const cc = await run('cc', ['-shared', '-fPIC', '-o', join(dir, name), join(dir, 'plant.c')]);
    assert.is(cc.code, 0, cc.stderr);
  }
  const r = await run('/bin/sh', ['-c', `cd ${JSON.stringify(dir)} && UNDERSTUDY_BINDING=${JSON.stringify(prebuilt!)} ${JSON.stringify(process.execPath)} ${JSON.stringify(cli)} doctor`]);
  assert.is(r.code, 0, r.stderr);
  assert.not.ok(existsSync(marker), 'a library planted in the working directory ran');
  assert.not.ok((JSON.parse(r.stdout) as { cpu: { module: string } }).cpu.module.startsWith(dir), r.stdout);
});

// A variant needing an instruction set this CPU lacks (by /proc/cpuinfo): refused by
// ggml's score check before any of its code runs, so no SIGILL.
const beyond = [['sapphirerapids', 'amx_int8'], ['zen4', 'avx512_bf16'], ['icelake', 'avx512_vnni'], ['skylakex', 'avx512f'], ['haswell', 'avx2']]
  .find(([, flag]) => !cpuFlags.has(flag!));
(beyond ? it : test.skip)(`a forced variant beyond this CPU (${beyond?.[0] ?? 'none: this CPU runs them all'}) fails with INVALID_CONFIG, no crash`, async () => {
  const r = await understudy({ UNDERSTUDY_CPU_VARIANT: beyond![0]! }, 'generate', '--model', storiesModel, '--max-tokens', '4', 'Hi');
  assert.is(r.signal, null);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`error \\[INVALID_CONFIG\\]: UNDERSTUDY_CPU_VARIANT is ${beyond![0]} but this CPU lacks instructions it needs`));
});

test.run();
