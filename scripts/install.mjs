#!/usr/bin/env node
// `npm install` hook: nothing to do when a prebuilt binary fits (a platform
// package from optionalDependencies, or prebuilds/), else fetch llama.cpp and
// build from source. A git checkout always builds from source. The decision
// itself is install-decision.mjs.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { currentLibc, findPrebuilt, installDecision, isSourceCheckout, missingTools } from './install-decision.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const libc = currentLibc();
const decision = installDecision({
  fromSource: process.env.UNDERSTUDY_BUILD_FROM_SOURCE === '1' || Boolean(process.env.UNDERSTUDY_GPU),
  checkout: isSourceCheckout(root),
  prebuilt: findPrebuilt(root),
  missing: missingTools(),
  platform: `${process.platform}-${process.arch}${libc ? ` (${libc})` : ''}`,
});
console.error(decision.message);
if (decision.action === 'skip') process.exit(0);
if (decision.action === 'fail') process.exit(1);
const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { stdio: 'inherit' });
process.exit(r.status ?? 1);
