#!/usr/bin/env node
// `npm install` hook: use a prebuilt binary when one fits this platform, else
// fetch llama.cpp and build from source.
import { existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const prebuilds = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const fromSource = process.env.UNDERSTUDY_BUILD_FROM_SOURCE === '1' || process.env.UNDERSTUDY_GPU;

if (!fromSource && existsSync(prebuilds) && readdirSync(prebuilds).some((f) => f.endsWith('.node'))) {
  console.error(`understudy: using the prebuilt binary in prebuilds/${process.platform}-${process.arch}`);
  process.exit(0);
}
const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { stdio: 'inherit' });
process.exit(r.status ?? 1);
