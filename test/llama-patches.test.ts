// Our patches to llama.cpp (patches/*.patch): each says why it exists, and
// scripts/fetch-llama.mjs applies every one after the hash check and records it
// in the stamp. This checks that the vendored tree the addon is built from has
// every line each patch adds, and that the stamp names exactly these patches.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { patchList } from '../scripts/fetch-llama.mjs';
import { root } from './helpers.js';

const patchDir = join(root, 'patches');
const vendor = join(root, 'vendor', 'llama.cpp');

interface Hunk {
  file: string;
  /** The hunk's lines as the patch leaves them (context and added), and as it found them (context and removed). */
  after: string;
  before: string;
}

function parse(text: string): Hunk[] {
  const hunks: Hunk[] = [];
  let file = '';
  let after: string[] | undefined;
  let before: string[] = [];
  const flush = () => {
    if (after) hunks.push({ file, after: after.join('\n'), before: before.join('\n') });
    after = undefined;
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('+++ b/')) {
      flush();
      file = line.slice(6);
    } else if (line.startsWith('--- ')) {
      flush();
    } else if (line.startsWith('@@')) {
      flush();
      after = [];
      before = [];
    } else if (after) {
      const body = line.slice(1);
      if (line.startsWith('+')) after.push(body);
      else if (line.startsWith('-')) before.push(body);
      else if (line.startsWith(' ') || line === '') {
        after.push(body);
        before.push(body);
      }
    }
  }
  flush();
  return hunks;
}

test('every patch explains itself and is applied to the vendored tree', () => {
  const names = readdirSync(patchDir).filter((f) => f.endsWith('.patch')).sort();
  assert.ok(names.length > 0);
  for (const name of names) {
    const text = readFileSync(join(patchDir, name), 'utf8');
    const header = text.slice(0, text.indexOf('\n--- a/'));
    assert.match(header, /Why:/, `${name} has no "Why:" paragraph before its diff`);
    const hunks = parse(text);
    assert.ok(hunks.length > 0, `${name} changes nothing`);
    for (const h of hunks) {
      const vendored = readFileSync(join(vendor, h.file), 'utf8');
      assert.ok(vendored.includes(h.after.trimEnd()), `${name}: vendor/llama.cpp/${h.file} is not patched: run node scripts/fetch-llama.mjs`);
      assert.not.ok(vendored.includes(h.before.trimEnd()), `${name}: vendor/llama.cpp/${h.file} still has the unpatched code`);
    }
  }
});

test('the stamp names exactly the patches in patches/, with their hashes', () => {
  const stamp = JSON.parse(readFileSync(join(vendor, '.understudy-source.json'), 'utf8'));
  assert.equal(stamp.patches, patchList());
  assert.equal(patchList().map((p: { file: string }) => p.file), readdirSync(patchDir).filter((f) => f.endsWith('.patch')).sort());
});

test.run();
