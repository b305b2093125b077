// npm runs `preX` and `postX` around script X (and around its own commands:
// install, pack, publish, test, ...). A script named that way by accident runs
// where nobody asked for it: `prebuild` made every `npm run build` a native
// prebuild. No script may be such a hook unless it is listed here on purpose.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root } from './helpers.js';

// npm's own commands and lifecycle events, which have hooks of their own.
const NPM_EVENTS = ['install', 'uninstall', 'publish', 'pack', 'version', 'test', 'start', 'stop', 'restart', 'shrinkwrap', 'prepare', 'prepublishOnly', 'dependencies'];
// Hooks that exist on purpose (none today).
const INTENDED = new Set<string>();

/** The scripts npm would run as a hook of another script or of one of its own commands. */
function hooks(scripts: string[]): string[] {
  const hooked = new Set([...scripts, ...NPM_EVENTS]);
  return scripts.filter((name) => {
    const m = /^(pre|post)(.+)$/.exec(name);
    return m !== null && hooked.has(m[2]!) && !INTENDED.has(name);
  });
}

test('package.json has no script that npm would run as the pre- or post-hook of another', () => {
  const scripts = Object.keys((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts);
  assert.equal(hooks(scripts), [], 'rename them (for example build:prebuilt rather than prebuild)');
});

test('the check finds the hooks npm would run', () => {
  assert.equal(hooks(['build', 'prebuild', 'postbuild', 'pretest', 'prepare', 'build:prebuilt', 'preview']), ['prebuild', 'postbuild', 'pretest']);
});

test.run();
