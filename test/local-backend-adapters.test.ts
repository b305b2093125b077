// LocalBackend's adapter hot swap (useAdapter, adapterFile) and trainingSource.
// Answers are compared with the greedy text of a separate quiet context that has
// only that adapter applied: calls running when a swap starts finish with the old
// adapter, calls made once it resolved get the new one, none fails. A file that
// does not load leaves the old adapter applied and serving.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeLoraAdapter } from '../scripts/make-lora.js';
import { loadModel } from '../src/index.js';
import type { BackendCall } from '../src/router/backend.js';
import { LocalBackend } from '../src/router/local-backend.js';
import { copyModel, scaleOutputNorm } from './fixtures/model-copy.js';
import { rejection, storiesModel, tinyModel, within } from './helpers.js';

const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Tom'];
const dir = mkdtempSync(join(tmpdir(), 'understudy-local-adapters-'));
let backend: LocalBackend;
const files: Record<'x' | 'y' | 'reweighted' | 'tiny' | 'junk' | 'missing', string> = {
  x: join(dir, 'x.gguf'), y: join(dir, 'y.gguf'), reweighted: join(dir, 'for-reweighted.gguf'),
  tiny: join(dir, 'for-tiny.gguf'), junk: join(dir, 'junk.gguf'), missing: join(dir, 'missing.gguf'),
};
/** Greedy text of each prompt with no adapter, x alone, y alone. */
const reference: Record<'base' | 'x' | 'y', string[]> = { base: [], x: [], y: [] };

const call = (prompt: string, onText?: (text: string) => void): BackendCall => ({
  kind: 'complete', task: 'story', prompt, params: { temperature: 0, maxTokens: 24, topP: 1, stop: [] },
  ...(onText ? { onText } : {}),
});

test.before(async () => {
  await makeLoraAdapter({ model: storiesModel, out: files.x, seed: 1 });
  await makeLoraAdapter({ model: storiesModel, out: files.y, seed: 2 });
  const reweighted = await copyModel(storiesModel, join(dir, 'reweighted.gguf'), (f) => scaleOutputNorm(f));
  await makeLoraAdapter({ model: reweighted, out: files.reweighted });
  await makeLoraAdapter({ model: await tinyModel(), out: files.tiny });
  writeFileSync(files.junk, 'junk, not an adapter');
  const model = await within(loadModel(storiesModel));
  try {
    const quiet = await within(model.createContext({ contextSize: 256 }));
    for (const name of ['base', 'x', 'y'] as const) {
      const adapter = name === 'base' ? null : await within(model.loadLora(files[name]));
      await within(quiet.setLoras(adapter ? [[adapter, 1]] : []));
      for (const p of PROMPTS) {
        quiet.clearCache();
        reference[name].push((await within(quiet.complete(p, { temperature: 0, maxTokens: 24 }))).text);
      }
    }
  } finally {
    await model.dispose();
  }
  // A relative model path: trainingSource gives it absolute.
  backend = await within(LocalBackend.open({ model: relative(process.cwd(), storiesModel), device: 'cpu', contextSize: 256, sequences: 4, threads: 2 }));
});
test.after(async () => {
  await backend?.close();
  rmSync(dir, { recursive: true, force: true });
});

const answers = () => within(Promise.all(PROMPTS.map((p) => backend.answer(call(p)).then((a) => a.text))));

/** Starts a streamed answer; `started` resolves at its first piece, `done` with its text (checked against the pieces). */
function stream(prompt: string) {
  let first!: () => void;
  const started = new Promise<void>((resolve) => { first = resolve; });
  let pieces = '';
  const done = backend.answer(call(prompt, (piece) => { pieces += piece; first(); })).then((a) => {
    first();
    assert.is(pieces, a.text, 'the streamed pieces join to the answer');
    return a.text;
  });
  return { started, done };
}

test('the references differ (else the swaps below prove nothing)', () => {
  for (let i = 0; i < PROMPTS.length; i++) {
    assert.is(new Set([reference.base[i], reference.x[i], reference.y[i]]).size, 3, PROMPTS[i]);
  }
});

test('trainingSource: the absolute model path, the template applied to chat, the per-sequence context', () => {
  // stories260K's GGUF has no chat template, so the backend applies chatml.
  assert.equal(backend.trainingSource(), { path: storiesModel, chatTemplate: 'chatml', contextSize: 256 });
  assert.is(backend.contextSize, 256);
});

test('useAdapter applies a file, another replaces it, null restores the base model exactly', async () => {
  assert.is(backend.adapterFile, null);
  assert.equal(await answers(), reference.base);
  await within(backend.useAdapter(files.x));
  assert.is(backend.adapterFile, files.x);
  assert.equal(await answers(), reference.x);
  await within(backend.useAdapter(files.y));
  assert.is(backend.adapterFile, files.y);
  assert.equal(await answers(), reference.y);
  await within(backend.useAdapter(null));
  assert.is(backend.adapterFile, null);
  assert.equal(await answers(), reference.base);
});

test('a swap while answers stream: running calls finish with the old adapter, calls after it with the new, none fails', async () => {
  for (const [from, to] of [['base', 'x'], ['x', 'y'], ['y', 'base']] as const) {
    await within(backend.useAdapter(from === 'base' ? null : files[from]));
    const before = PROMPTS.map(stream);
    await within(Promise.all(before.map((s) => s.started)));
    const swap = backend.useAdapter(to === 'base' ? null : files[to]);
    // Made while the new file loads: either adapter, but exactly one of them.
    const during = PROMPTS.map(stream);
    await within(swap);
    const after = PROMPTS.map(stream);
    assert.equal(await within(Promise.all(before.map((s) => s.done))), reference[from], `${from} -> ${to}: before`);
    const meanwhile = await within(Promise.all(during.map((s) => s.done)));
    meanwhile.forEach((text, i) => assert.ok(text === reference[from][i] || text === reference[to][i], `${from} -> ${to}: during, ${text}`));
    assert.equal(await within(Promise.all(after.map((s) => s.done))), reference[to], `${from} -> ${to}: after`);
  }
});

test('useAdapter calls made at once take effect one after another, in call order', async () => {
  const order = [files.x, null, files.y, files.x, files.y];
  const settled = await within(Promise.all(order.map((file) => backend.useAdapter(file).then(() => backend.adapterFile))));
  assert.equal(settled, order, 'each call resolves with its own file applied');
  assert.is(backend.adapterFile, files.y);
  assert.equal(await answers(), reference.y);
});

test('a file that does not load: its code and message, and the old adapter stays applied and serving', async () => {
  await within(backend.useAdapter(files.x));
  const cases: Array<[string, string, string]> = [
    [files.missing, 'MODEL_NOT_FOUND', `LoRA adapter file not found: ${files.missing}`],
    [files.junk, 'INVALID_MODEL_FILE', `not a GGUF LoRA adapter file: ${files.junk} (it starts with "junk, not an ada", expected "GGUF")`],
    [files.reweighted, 'INVALID_ADAPTER', `the LoRA adapter ${files.reweighted} does not fit this model: it was made for another model ("llama") of the same shape: that model's weights differ from this one's`],
    [files.tiny, 'INVALID_ADAPTER', `the LoRA adapter ${files.tiny} does not fit this model: it was made for another model ("understudy-random-llama"): that model's tensors or vocabulary differ from this one's`],
  ];
  for (const [file, code, message] of cases) {
    // Streams running across the failed swap are not disturbed either.
    const running = PROMPTS.map(stream);
    const [err, texts] = await within(Promise.all([rejection(backend.useAdapter(file)), Promise.all(running.map((s) => s.done))]));
    assert.is(err.code, code, file);
    assert.is(err.message, message);
    assert.is(backend.adapterFile, files.x);
    assert.equal(texts, reference.x, `${file}: running`);
    assert.equal(await answers(), reference.x, `${file}: after`);
  }
  // A failed call does not block the ones queued behind it.
  const [failed, next] = await within(Promise.allSettled([backend.useAdapter(files.missing), backend.useAdapter(files.y)]));
  assert.is(failed.status, 'rejected');
  assert.is(next.status, 'fulfilled');
  assert.is(backend.adapterFile, files.y);
  const bad = await rejection(backend.useAdapter('' as string));
  assert.is(bad.code, 'INVALID_ARGUMENT');
  assert.is(bad.message, 'Expected non-empty string for file but received "" of type string');
  assert.is(backend.adapterFile, files.y);
});

test.run();
