// The `understudy` command's contract: generate prints exactly llama-simple's
// continuation; tokenize prints one JSON array; info and doctor print JSON; a
// failure prints "understudy: error [CODE]: message" and exits 1, a usage error
// exits 2, and nothing ends in a signal.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeLoraAdapter } from '../scripts/make-lora.js';
import { parseLoraFlags } from '../src/cli/lora-flag.js';
import { loadModel } from '../src/index.js';
import { cli, llamaSimpleContinuation, run, storiesModel, within } from './helpers.js';

const understudy = (...args: string[]) => run(process.execPath, [cli, ...args]);

test('generate prints the same continuation as llama-simple -n 40', async () => {
  const prompt = 'Once upon a time';
  const [ours, reference] = await Promise.all([
    understudy('generate', '--model', storiesModel, '--max-tokens', '40', '--temperature', '0', prompt),
    llamaSimpleContinuation(storiesModel, prompt, 40),
  ]);
  assert.is(ours.code, 0, ours.stderr);
  // llama-simple: "<s>" + " Once upon a time" + continuation + "\n"
  assert.is(reference, `<s> ${prompt}${ours.stdout}\n`);
  assert.match(ours.stderr, /generated 40 tokens .* stop: maxTokens/);
});

test('tokenize prints the ids as one JSON array', async () => {
  const r = await understudy('tokenize', '--model', storiesModel, '--vocab-only', 'Hello world');
  assert.is(r.code, 0, r.stderr);
  const ids = JSON.parse(r.stdout);
  assert.ok(Array.isArray(ids) && ids[0] === 1 && ids.length > 2);
  const plain = JSON.parse((await understudy('tokenize', '--model', storiesModel, '--no-special', 'Hello world')).stdout);
  assert.equal(plain, ids.slice(1));
});

test('info prints the metadata as JSON', async () => {
  const r = await understudy('info', '--model', storiesModel);
  assert.is(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.is(info.architecture, 'llama');
  assert.is(info.metadata['llama.block_count'], '5');
});

test('doctor prints the backends, devices and build', async () => {
  const r = await understudy('doctor');
  assert.is(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout);
  assert.ok(d.backends.includes('CPU'));
  assert.ok(d.devices.some((x: { type: string }) => x.type === 'cpu'));
  assert.match(d.llamaCommit, /^[0-9a-f]{40}$/);
});

test('embed prints one unit-length JSON array per text, the same as the API', async () => {
  const r = await understudy('embed', '--model', storiesModel, 'a cat', 'a dog');
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as number[]);
  assert.is(lines.length, 2);
  const model = await within(loadModel(storiesModel));
  const ctx = await within(model.createContext({ embeddings: true }));
  const [cat] = await within(ctx.embed(['a cat']));
  model.dispose();
  assert.ok(lines[0].every((x, i) => Math.abs(x - cat[i]) < 1e-6));
  assert.ok(Math.abs(lines[1].reduce((s, x) => s + x * x, 0) - 1) < 1e-5);
});

test('chat answers each piped line as a turn, with a named template', async () => {
  const child = spawn(process.execPath, [cli, 'chat', '--model', storiesModel, '--template', 'chatml', '--max-tokens', '12',
    '--temperature', '0'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stdin.end('Tell me a story\nAnd then?\n');
  const code = await new Promise((resolve) => child.on('close', resolve));
  assert.is(code, 0);
  const model = await within(loadModel(storiesModel));
  const ctx = await within(model.createContext({ contextSize: 512 }));
  const first = await within(ctx.chat([{ role: 'user', content: 'Tell me a story' }], { template: 'chatml', maxTokens: 12, temperature: 0 }).result);
  model.dispose();
  assert.ok(stdout.startsWith(first.text + '\n'), JSON.stringify(stdout));
  assert.is(stdout.split('\n').length >= 3, true, 'two answers');
});

test('chat without a usable template: exit 1 and error [TEMPLATE_MISSING]', async () => {
  const r = await understudy('chat', '--model', storiesModel);
  assert.is(r.code, 1);
  assert.match(r.stderr, /^understudy: error \[TEMPLATE_MISSING\]: /);
});

test('--lora applies an adapter; a wrong one is error [INVALID_ADAPTER]', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-cli-lora-'));
  const good = await makeLoraAdapter({ model: storiesModel, out: join(dir, 'good.gguf') });
  const bad = await makeLoraAdapter({ model: storiesModel, out: join(dir, 'bad.gguf'), wrongShape: true });
  const args = ['generate', '--model', storiesModel, '--max-tokens', '16', '--temperature', '0'];
  const base = await understudy(...args, 'Once upon a time');
  const adapted = await understudy(...args, '--lora', `${good.path}:1`, 'Once upon a time');
  const zero = await understudy(...args, '--lora', `${good.path}:0`, 'Once upon a time');
  assert.is(adapted.code, 0, adapted.stderr);
  assert.is.not(adapted.stdout, base.stdout);
  assert.is(zero.stdout, base.stdout);
  const wrong = await understudy(...args, '--lora', bad.path, 'Once upon a time');
  assert.is(wrong.code, 1);
  assert.match(wrong.stderr, /^understudy: error \[INVALID_ADAPTER\]: .*incorrect shape/);
});

const notGguf = join(tmpdir(), `understudy-cli-${process.pid}.gguf`);
writeFileSync(notGguf, 'not a model');

const FAILURES: Array<[string, string[], string]> = [
  ['a missing model', ['generate', '--model', '/nonexistent/model.gguf', 'hi'], 'MODEL_NOT_FOUND'],
  ['a file that is not GGUF', ['info', '--model', notGguf], 'INVALID_MODEL_FILE'],
  ['a prompt longer than the context', ['generate', '--model', storiesModel, '--context-size', '256', 'Once upon a time there was a big dog. '.repeat(60)], 'CONTEXT_OVERFLOW'],
  ['a bad option value', ['generate', '--model', storiesModel, '--temperature=-3', 'hi'], 'INVALID_ARGUMENT'],
];

for (const [what, args, code] of FAILURES) {
  test(`${what}: exit 1 and error [${code}]`, async () => {
    const r = await understudy(...args);
    assert.is(r.signal, null);
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^understudy: error \\[${code}\\]: .+`));
    assert.is(r.stdout, '');
  });
}

test('Ctrl-C stops a generation: what was generated stays, exit 130', async () => {
  const child = spawn(process.execPath, [cli, 'generate', '--model', storiesModel, '--max-tokens', '1000000',
    '--context-size', '2048', '--ignore-eos', '--temperature', '1', '--seed', '3', 'Once'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  // One Ctrl-C, once output has started (a second one would end the process at once, by design).
  child.stdout.on('data', (d) => {
    if (stdout === '') child.kill('SIGINT');
    stdout += d;
  });
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  assert.is(signal, null);
  assert.is(code, 130, stderr);
  assert.ok(stdout.length > 0);
  assert.match(stderr, /interrupted/);
});

test('--lora PATH:SCALE: a scale that is not a number is a usage error that says so', async () => {
  assert.equal(parseLoraFlags(['a.gguf', 'b.gguf:0.5', 'c.gguf:-1', '/x/y:z/d.gguf', 'C:\\e.gguf']), [
    { path: 'a.gguf', scale: 1 }, { path: 'b.gguf', scale: 0.5 }, { path: 'c.gguf', scale: -1 }, { path: '/x/y:z/d.gguf', scale: 1 }, { path: 'C:\\e.gguf', scale: 1 },
  ]);
  for (const bad of ['NaN', '', '1e3', 'Infinity', ' 1']) {
    const r = await understudy('generate', '--model', storiesModel, '--lora', `/tmp/adapter.gguf:${bad}`, 'hi');
    assert.is(r.code, 2, r.stderr);
    assert.is(r.stderr, `understudy: --lora scale must be a decimal number, got ${JSON.stringify(bad)} in ${JSON.stringify(`/tmp/adapter.gguf:${bad}`)}\nRun \`understudy --help\` for usage.\n`);
  }
});

test('numeric flags are plain decimals: --threads 0x10 is a usage error', async () => {
  const r = await understudy('generate', '--model', storiesModel, '--threads', '0x10', 'hi');
  assert.is(r.code, 2);
  assert.is(r.stderr, 'understudy: --threads expects an integer, got "0x10"\nRun `understudy --help` for usage.\n');
});

test('usage errors exit 2', async () => {
  for (const args of [[], ['frobnicate'], ['generate', 'hi'], ['generate', '--model', storiesModel], ['generate', '--model', storiesModel, '--max-tokens', 'ten', 'hi'], ['tokenize', '--bogus']]) {
    const r = await understudy(...args);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.is(r.signal, null);
  }
});

test.run();
