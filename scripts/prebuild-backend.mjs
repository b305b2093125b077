#!/usr/bin/env node
// prebuildify runs this in place of node-gyp (`--node-gyp`). node-gyp's arguments
// are ignored: the one build is CMakeLists.txt through cmake-js, here made
// portable (no -march=native), and prebuildify then copies build/Release/*.node
// into prebuilds/<platform>-<arch>/.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], {
  cwd: root,
  stdio: 'inherit',
  // One file, x86-64-v3 on x64: prebuildify copies build/Release/*.node alone, so the
  // CPU-variant modules of a platform package (npm run package) cannot come along.
  env: { ...process.env, UNDERSTUDY_NATIVE_ARCH: 'off', UNDERSTUDY_CPU_VARIANTS: 'off' },
});
process.exit(r.status ?? 1);
