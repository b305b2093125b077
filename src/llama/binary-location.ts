// Where the native addon comes from, in order: UNDERSTUDY_BINDING (an explicit
// file), the package's own build/ or prebuilds/ (node-gyp-build's rules: what a
// git checkout builds), then the platform packages npm installed through
// optionalDependencies. The CUDA package is used only once its binary loaded in
// a child process and saw a CUDA device, so a broken driver cannot crash the
// application; otherwise the CPU package is used and the reason kept.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { UnderstudyError } from '../errors.js';
import { showValue } from '../validate.js';

export type BinaryDevice = 'auto' | 'cpu' | 'cuda' | 'hip';

export interface BinaryChoice {
  path: string;
  /** 'UNDERSTUDY_BINDING', 'local' (build/ or prebuilds/) or 'package'. */
  source: 'UNDERSTUDY_BINDING' | 'local' | 'package';
  /** The platform package it came from. */
  packageName?: string;
  reason: string;
}

export interface PlatformPackages {
  cpu: string;
  cuda: string;
}

/** glibc or musl on Linux (read from Node's own report, as detect-libc does), else null. */
export function currentLibc(): 'glibc' | 'musl' | null {
  if (process.platform !== 'linux') return null;
  const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
  return header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

/** The names of the platform packages that would fit (published or not). */
export function platformPackageNames(platform = process.platform, arch = process.arch, libc = currentLibc()): PlatformPackages {
  const cpu = `understudy-llm-${platform}-${arch}${libc === 'musl' ? '-musl' : ''}`;
  return { cpu, cuda: `${cpu}-cuda` };
}

/** The binary of an installed platform package, resolved from the main package's root; null when absent. */
export function packageBinary(root: string, name: string): string | null {
  let manifest: string;
  try {
    manifest = createRequire(join(root, 'package.json')).resolve(`${name}/package.json`);
  } catch {
    return null;
  }
  const main = (JSON.parse(readFileSync(manifest, 'utf8')) as { main?: string }).main ?? 'understudy.node';
  const path = join(dirname(manifest), main);
  return existsSync(path) ? path : null;
}

export interface TestLoad {
  ok: boolean;
  reason: string;
}

// The child loads the binary and looks for a CUDA device; it exits 3 when there
// is none. Plain CommonJS so no loader of ours runs in it.
const CHILD = `
const b = require(process.env.UNDERSTUDY_TEST_LOAD);
if (typeof b.loadBackends === 'function') b.loadBackends(require('node:path').dirname(process.env.UNDERSTUDY_TEST_LOAD), null);
const info = b.systemInfo();
const cuda = info.devices.filter((d) => d.backend === 'CUDA' && d.type === 'gpu');
process.stdout.write(JSON.stringify(cuda.map((d) => d.description)));
process.exit(cuda.length > 0 ? 0 : 3);`;

/** Loads a GPU binary in a child process: usable only when it exits 0 having listed a CUDA device. */
export function testLoadCuda(path: string, timeoutMs = 120_000): TestLoad {
  const r = spawnSync(process.execPath, ['-e', CHILD], {
    env: { ...process.env, UNDERSTUDY_TEST_LOAD: path },
    encoding: 'utf8',
    timeout: timeoutMs,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.error) return { ok: false, reason: `its test load failed: ${r.error.message}` };
  if (r.signal) return { ok: false, reason: `its test load crashed (${r.signal})` };
  if (r.status === 3) return { ok: false, reason: 'its test load found no CUDA device' };
  if (r.status !== 0) {
    const line = r.stderr.split('\n').find((l) => /error/i.test(l)) ?? r.stderr.trim().split('\n')[0] ?? '';
    return { ok: false, reason: `its test load exited with ${r.status}${line ? `: ${line.trim().slice(0, 200)}` : ''}` };
  }
  return { ok: true, reason: `its test load found ${r.stdout.trim()}` };
}

// Worker threads get a copy of process.env when they start: a test load done
// once is passed on to them so no thread repeats it.
const TESTED_KEY = 'UNDERSTUDY_CUDA_TEST_LOADED';

function cachedTestLoad(path: string, run: (path: string) => TestLoad): TestLoad {
  const prior = process.env[TESTED_KEY];
  if (prior) {
    const saved = JSON.parse(prior) as TestLoad & { path: string };
    if (saved.path === path) return { ok: saved.ok, reason: saved.reason };
  }
  const result = run(path);
  process.env[TESTED_KEY] = JSON.stringify({ path, ...result });
  return result;
}

/** UNDERSTUDY_DEVICE as the binary choice reads it (blank is auto), worded as config.ts words it. */
export function deviceFromEnv(raw = process.env.UNDERSTUDY_DEVICE): BinaryDevice {
  const value = raw?.trim() || 'auto';
  if (value === 'auto' || value === 'cpu' || value === 'cuda' || value === 'hip') return value;
  throw new UnderstudyError('INVALID_CONFIG', `UNDERSTUDY_DEVICE must be one of auto, cpu, cuda, hip, got ${showValue(raw)}`);
}

export interface ChoiceInputs {
  root: string;
  device: BinaryDevice;
  /** UNDERSTUDY_BINDING. */
  explicit?: string;
  /** node-gyp-build's pick in build/ or prebuilds/, or null. */
  local: string | null;
  names?: PlatformPackages;
  testLoad?: (path: string) => TestLoad;
}

/** Picks the binary to load, or throws BINDING_NOT_FOUND / INVALID_CONFIG saying what to install. */
export function chooseBinary(inputs: ChoiceInputs): BinaryChoice {
  const { root, device } = inputs;
  if (inputs.explicit) {
    if (!existsSync(inputs.explicit)) {
      throw new UnderstudyError('BINDING_NOT_FOUND', `UNDERSTUDY_BINDING is ${showValue(inputs.explicit)} but there is no file there`);
    }
    return { path: inputs.explicit, source: 'UNDERSTUDY_BINDING', reason: 'UNDERSTUDY_BINDING names it' };
  }
  if (inputs.local) return { path: inputs.local, source: 'local', reason: 'the package\'s own build (build/ or prebuilds/)' };
  const names = inputs.names ?? platformPackageNames();
  const cpu = packageBinary(root, names.cpu);
  const cuda = packageBinary(root, names.cuda);
  const fromPackage = (path: string, packageName: string, reason: string): BinaryChoice => ({ path, source: 'package', packageName, reason });
  if (device === 'hip') {
    throw new UnderstudyError('INVALID_CONFIG', 'UNDERSTUDY_DEVICE is hip but there is no prebuilt HIP package: ' +
      'build from source with UNDERSTUDY_GPU=hip UNDERSTUDY_BUILD_FROM_SOURCE=1 npm rebuild understudy-llm');
  }
  if (device === 'cuda' && !cuda) {
    throw new UnderstudyError('INVALID_CONFIG', `UNDERSTUDY_DEVICE is cuda but ${names.cuda} is not installed: ` +
      `npm install ${names.cuda}, or build from source with UNDERSTUDY_GPU=cuda UNDERSTUDY_BUILD_FROM_SOURCE=1 npm rebuild understudy-llm`);
  }
  if (cuda && device !== 'cpu') {
    const tested = cachedTestLoad(cuda, inputs.testLoad ?? testLoadCuda);
    if (tested.ok) return fromPackage(cuda, names.cuda, `UNDERSTUDY_DEVICE=${device}: ${names.cuda} is usable (${tested.reason})`);
    if (device === 'cuda') {
      throw new UnderstudyError('INVALID_CONFIG', `UNDERSTUDY_DEVICE is cuda but ${names.cuda} is not usable here: ${tested.reason} ` +
        '(check the NVIDIA driver with nvidia-smi, or use UNDERSTUDY_DEVICE=auto)');
    }
    if (cpu) return fromPackage(cpu, names.cpu, `${names.cuda} is installed but not usable: ${tested.reason}; using the CPU`);
  }
  if (cpu) {
    const why = device === 'cpu' ? 'UNDERSTUDY_DEVICE=cpu' : `${names.cuda} is not installed`;
    return fromPackage(cpu, names.cpu, `${why}; using the CPU package`);
  }
  throw new UnderstudyError('BINDING_NOT_FOUND',
    `no native build of Understudy for ${process.platform}-${process.arch} (Node-API): no build/ or prebuilds/ ` +
    `and ${names.cpu} is not installed. Use a supported platform (linux-x64 with glibc), ` +
    'or build from source: install cmake and a C++ compiler, then ' +
    'UNDERSTUDY_BUILD_FROM_SOURCE=1 npm rebuild understudy-llm (UNDERSTUDY_GPU=cuda or hip for a GPU build)');
}
