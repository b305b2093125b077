// One table of error codes (src/error-codes.ts) for both sides of the binding:
// every code the native addon raises is in it, and the README documents
// exactly the codes it holds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES } from '../src/error-codes.js';
import { fromNative } from '../src/errors.js';
import { root } from './helpers.js';

const table = new Set<string>(ERROR_CODES);
const nativeDir = join(root, 'native');
const sources = readdirSync(nativeDir).filter((f) => /\.(cpp|h)$/.test(f)).map((f) => ({ file: f, text: readFileSync(join(nativeDir, f), 'utf8') }));

test('the table has no duplicates, and every code reads like one', () => {
  assert.is(table.size, ERROR_CODES.length);
  for (const code of ERROR_CODES) assert.match(code, /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
});

test('every code the native addon passes to Failure, ThrowError, MakeError or Fail is in the table', () => {
  const call = /\b(?:Failure|ThrowError|MakeError|Fail)\s*\(\s*(?:[A-Za-z_][\w.>()-]*\s*,\s*)?"([^"]*)"/g;
  const used = new Map<string, string>();
  for (const { file, text } of sources) for (const m of text.matchAll(call)) used.set(m[1]!, file);
  assert.ok(used.size >= 10, `only ${used.size} codes found: has the way native code raises errors changed?`);
  for (const [code, file] of used) assert.ok(table.has(code), `${file} raises ${code}, which src/error-codes.ts does not list`);
});

test('every code-like string in the native sources is in the table', () => {
  // Codes also travel through variables (a Failure's code, CodeOf(e)): any quoted constant in upper case counts.
  for (const { file, text } of sources) {
    for (const m of text.matchAll(/"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z]{5,})"/g)) {
      assert.ok(table.has(m[1]!), `${file} has "${m[1]}", which src/error-codes.ts does not list`);
    }
  }
});

test('a native error with a code from the table keeps it; any other code becomes NATIVE_ERROR', () => {
  for (const code of ERROR_CODES) assert.is(fromNative(Object.assign(new Error('x'), { code })).code, code);
  assert.is(fromNative(Object.assign(new Error('x'), { code: 'EACCES' })).code, 'NATIVE_ERROR');
});

test("the README's lists of codes are the table", () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const documented = new Set<string>();
  // The library's list (under "Errors:") and the router's ("Errors carry stable codes").
  for (const start of ['**Errors:**', 'Errors carry stable codes']) {
    const at = readme.indexOf(start);
    assert.ok(at >= 0, `README has no "${start}"`);
    // The list runs to the end of its sentence.
    const end = readme.indexOf('.\n', at);
    const paragraph = readme.slice(at, end === -1 ? undefined : end);
    for (const m of paragraph.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) documented.add(m[1]!);
  }
  const missing = ERROR_CODES.filter((c) => !documented.has(c));
  const unknown = [...documented].filter((c) => !table.has(c));
  assert.equal(missing, [], 'codes the README does not document');
  assert.equal(unknown, [], 'codes the README documents that do not exist');
});

test.run();
