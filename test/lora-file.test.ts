// src/llama/lora-file.ts: the adapter files LoRA training starts from, resumes from and
// saves. Plans are checked against the model's header (independently read here); a new
// adapter (B = 0) leaves greedy output byte-identical; a saved one with B != 0 loads in
// llama.cpp, changes the output and carries its training metadata; files to resume from
// are refused for every fault with a code and a message; writes are atomic.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeLoraAdapter } from '../scripts/make-lora.js';
import { GgmlType, GgufValueType } from '../src/gguf/format.js';
import { readGguf } from '../src/gguf/reader.js';
import { Rng } from '../src/gguf/random-tensors.js';
import { loadModel, type Context, type Model } from '../src/index.js';
import {
  DEFAULT_TARGETS, initialA, planAdapter, planFromAdapter, saveAdapter, writeNewAdapter,
  type AdapterPlan, type AdapterTensor, type TrainingMetadata,
} from '../src/llama/lora-file.js';
import { copyModel, scaleOutputNorm } from './fixtures/model-copy.js';
import { llamaCompletionContinuation, rejection, storiesModel, within } from './helpers.js';

let dir = '';
let model: Model;
let ctx: Context;
let plan: AdapterPlan;
const greedy = { maxTokens: 24, temperature: 0 } as const;
const prompt = 'Once upon a time';
// llama.cpp's own program (built with the tests' reference tools), the independent reader of our files.
const options = { rank: 4, alpha: 8, targets: DEFAULT_TARGETS };
const meta: TrainingMetadata = { steps: 12, epochs: 3, trainLoss: [2.5, 1.75, 1.25], evalLoss: [2.25, 2, 1.5], tokens: 3072 };

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'understudy-lora-file-'));
  plan = await planAdapter(storiesModel, options);
  model = await within(loadModel(storiesModel));
  ctx = await within(model.createContext({ contextSize: 256 }));
});
test.after(async () => {
  await model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Trained-looking tensors for `plan`: A and B from a seeded generator, B != 0. */
function randomTensors(p: AdapterPlan, seed = 7, std = 0.3): AdapterTensor[] {
  const rng = new Rng(seed);
  const fill = (n: number) => Float32Array.from({ length: n }, () => (rng.float() * 2 - 1) * std * Math.sqrt(3));
  return p.tensors.flatMap((t) => [
    { name: `${t.base}.lora_a`, ne: [t.nIn, p.rank], data: fill(t.nIn * p.rank) },
    { name: `${t.base}.lora_b`, ne: [p.rank, t.nOut], data: fill(p.rank * t.nOut) },
  ]);
}

async function expectError(promise: Promise<unknown>, code: string, message: string | RegExp): Promise<void> {
  const err = await rejection(promise);
  assert.is(err.code, code, `code of: ${err.message}`);
  if (typeof message === 'string') assert.is(err.message, message);
  else assert.match(err.message, message);
}

test('planAdapter: one entry per adapted matrix, with the base weight\'s ne', async () => {
  // Reference: the model's own tensor index, read here.
  const file = await readGguf(storiesModel);
  const dims = new Map(file.tensors.map((t) => [t.name, t.dims]));
  assert.equal(plan.rank, 4);
  assert.equal(plan.alpha, 8);
  assert.equal(plan.targets, DEFAULT_TARGETS);
  assert.is(plan.tensors.length, 5 * DEFAULT_TARGETS.length);
  for (let l = 0, i = 0; l < 5; l++) {
    for (const stem of DEFAULT_TARGETS) {
      const t = plan.tensors[i++];
      assert.is(t.base, `blk.${l}.${stem}.weight`);
      assert.equal([t.nIn, t.nOut], dims.get(t.base));
    }
  }
  assert.equal(plan.tensors.find((t) => t.base === 'blk.2.ffn_down.weight'), { base: 'blk.2.ffn_down.weight', nIn: 172, nOut: 64 });
  const one = await planAdapter(storiesModel, { rank: 64, alpha: 0.5, targets: ['ffn_up'] });
  assert.equal(one.tensors.map((t) => t.base), [0, 1, 2, 3, 4].map((l) => `blk.${l}.ffn_up.weight`));
});

test('planAdapter refuses bad targets, ranks and alphas with a code and a message', async () => {
  const has = 'attn_q, attn_output, ffn_gate, ffn_up, ffn_down';
  const plan = (o: Partial<typeof options>) => planAdapter(storiesModel, { ...options, ...o } as typeof options);
  await expectError(plan({ targets: ['attn_k'] }), 'TRAINING_UNSUPPORTED',
    'cannot train the target attn_k: attn_k and attn_v get no gradient at this llama.cpp version: attention reads K and V back from the cache');
  await expectError(plan({ targets: ['attn_q', 'attn_v'] }), 'TRAINING_UNSUPPORTED', /^cannot train the target attn_v: attn_k and attn_v get no gradient/);
  await expectError(plan({ targets: ['attn_qkv'] }), 'INVALID_ARGUMENT',
    `unknown target "attn_qkv": targets are the stems of per-layer weights blk.N.<target>.weight that training can adapt, ${has}; the model ${storiesModel} has ${has}`);
  await expectError(plan({ targets: ['output'] }), 'INVALID_ARGUMENT', /^unknown target "output": /);
  await expectError(plan({ targets: ['attn_q', 'ffn_up', 'attn_q'] }), 'INVALID_ARGUMENT', 'targets names "attn_q" twice');
  await expectError(plan({ targets: [] }), 'INVALID_ARGUMENT', `targets is empty: name at least one tensor stem (the default targets are ${has})`);
  await expectError(plan({ targets: 'attn_q' as unknown as string[] }), 'INVALID_ARGUMENT', 'Expected array of tensor stems for targets but received "attn_q" of type string');
  await expectError(plan({ targets: ['attn_q', ''] }), 'INVALID_ARGUMENT', 'Expected non-empty string for targets[1] but received "" of type string');
  await expectError(plan({ rank: 0 }), 'INVALID_ARGUMENT', 'Expected positive integer for rank but received 0 of type number');
  await expectError(plan({ rank: 2.5 }), 'INVALID_ARGUMENT', 'Expected positive integer for rank but received 2.5 of type number');
  await expectError(plan({ rank: 65 }), 'INVALID_ARGUMENT',
    'Expected integer between 1 and 64 for rank but received 65 of type number: the smallest adapted matrix, blk.0.attn_q.weight, is 64 × 64');
  await expectError(plan({ alpha: 0 }), 'INVALID_ARGUMENT', 'Expected positive finite number for alpha but received 0 of type number');
  await expectError(plan({ alpha: Infinity }), 'INVALID_ARGUMENT', 'Expected positive finite number for alpha but received Infinity of type number');
  await expectError(plan({ alpha: '8' as unknown as number }), 'INVALID_ARGUMENT', 'Expected positive finite number for alpha but received "8" of type string');

  // A model whose layer 3 lacks ffn_gate (only its header is read, so it need not load).
  const gapped = await copyModel(storiesModel, join(dir, 'gapped.gguf'), (f) => {
    f.tensors = f.tensors.filter((t) => t.name !== 'blk.3.ffn_gate.weight');
  });
  await expectError(planAdapter(gapped, options), 'INVALID_ARGUMENT',
    `the model ${gapped} has no 2-D weight blk.3.ffn_gate.weight for the target ffn_gate; it has attn_q, attn_output, ffn_up, ffn_down in every layer`);
  const none = join(dir, 'no-model.gguf');
  await expectError(planAdapter(none, options), 'IO_ERROR', new RegExp(`^the model ${none} cannot be read: ENOENT`));
  const text = join(dir, 'text.gguf');
  writeFileSync(text, 'secret text that is not a model');
  await expectError(planAdapter(text, options), 'INVALID_MODEL_FILE', `the model ${text} cannot be read: it is not a GGUF file`);
});

test('writeNewAdapter: seeded uniform A in ±1/sqrt(nIn), B = 0, llama.cpp\'s adapter keys, the base recorded', async () => {
  const path = join(dir, 'new.gguf');
  await writeNewAdapter(path, storiesModel, plan, 42);
  const file = await readGguf(path, { readTensorData: true });
  const md = (key: string) => file.metadata.get(key);
  assert.equal(md('general.architecture'), { type: GgufValueType.STRING, value: 'llama' });
  assert.equal(md('general.type'), { type: GgufValueType.STRING, value: 'adapter' });
  assert.equal(md('adapter.type'), { type: GgufValueType.STRING, value: 'lora' });
  assert.equal(md('adapter.lora.alpha'), { type: GgufValueType.FLOAT32, value: 8 });
  assert.equal(md('understudy.training.rank'), { type: GgufValueType.UINT32, value: 4 });
  assert.equal(md('understudy.training.targets'), { type: GgufValueType.ARRAY, value: { itemType: GgufValueType.STRING, items: DEFAULT_TARGETS } });
  assert.equal(md('general.base_model.0.name'), { type: GgufValueType.STRING, value: 'llama' });
  assert.ok(md('understudy.base_model.shapes') && md('understudy.base_model.weights'));
  assert.is(md('understudy.training.steps'), undefined);

  assert.is(file.tensors.length, 2 * plan.tensors.length);
  const all: number[] = [];
  for (const [i, t] of plan.tensors.entries()) {
    const a = file.tensors[2 * i], b = file.tensors[2 * i + 1];
    assert.equal([a.name, a.dims, a.type], [`${t.base}.lora_a`, [t.nIn, 4], GgmlType.F32]);
    assert.equal([b.name, b.dims, b.type], [`${t.base}.lora_b`, [4, t.nOut], GgmlType.F32]);
    const av = new Float32Array(a.data!.buffer, a.data!.byteOffset, a.data!.length / 4);
    const bound = Math.fround(1 / Math.sqrt(t.nIn));
    assert.ok(av.every((x) => Math.abs(x) <= bound), `${a.name} out of ±${bound}`);
    for (const x of av) all.push(x * Math.sqrt(t.nIn));
    assert.equal(av, initialA(42, t.base, t.nIn, 4));
    assert.ok(b.data!.every((x) => x === 0), `${b.name} is not zero`);
  }
  // Scaled to U(-1, 1): mean 0, standard deviation 1/sqrt(3) (≈ 7,800 samples).
  const mean = all.reduce((s, x) => s + x, 0) / all.length;
  const std = Math.sqrt(all.reduce((s, x) => s + (x - mean) ** 2, 0) / all.length);
  assert.ok(Math.abs(mean) < 0.03, `mean ${mean}`);
  assert.ok(Math.abs(std - 1 / Math.sqrt(3)) < 0.02, `std ${std}`);

  // Deterministic for a seed, different for another.
  await writeNewAdapter(join(dir, 'new-again.gguf'), storiesModel, plan, 42);
  await writeNewAdapter(join(dir, 'new-other.gguf'), storiesModel, plan, 43);
  const again = await readGguf(join(dir, 'new-again.gguf'), { readTensorData: true });
  const other = await readGguf(join(dir, 'new-other.gguf'), { readTensorData: true });
  assert.ok(again.tensors.every((t, i) => t.data!.equals(file.tensors[i].data!)));
  assert.not.ok(other.tensors[0].data!.equals(file.tensors[0].data!));

  assert.equal(await planFromAdapter(path, storiesModel), { ...plan, steps: 0, history: { steps: 0, epochs: 0, trainLoss: [], evalLoss: [], tokens: 0 } });
  await expectError(writeNewAdapter(join(dir, 'x.gguf'), storiesModel, plan, -1), 'INVALID_ARGUMENT', 'Expected integer between 0 and 4294967295 for seed but received -1 of type number');
});

test('a new adapter (B = 0) leaves greedy output byte-identical; a saved one with B != 0 changes it and reads back', async () => {
  const base = await within(ctx.complete(prompt, greedy));
  const fresh = join(dir, 'fresh.gguf');
  await writeNewAdapter(fresh, storiesModel, plan, 1);
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  const noop = await within(model.loadLora(fresh));
  await new Promise((resolve) => setImmediate(resolve));
  process.off('warning', onWarning);
  assert.equal(warnings, [], 'the adapter records its base: it loads without a warning');
  await ctx.setLora(noop, 1);
  assert.is((await within(ctx.complete(prompt, greedy))).text, base.text);
  await ctx.removeLora(noop);
  await noop.dispose();

  const saved = join(dir, 'saved.gguf');
  const tensors = randomTensors(plan);
  await saveAdapter(saved, storiesModel, plan, [...tensors].reverse(), meta);
  const adapter = await within(model.loadLora(saved));
  await ctx.setLora(adapter, 1);
  const adapted = await within(ctx.complete(prompt, greedy));
  assert.is.not(adapted.text, base.text, 'the saved adapter did not change the output');
  await ctx.removeLora(adapter);
  assert.is(await llamaCompletionContinuation(storiesModel, prompt, 24, saved), adapted.text, 'llama-completion --lora continues otherwise');
  const m = adapter.metadata;
  assert.is(m['general.name'], 'saved');
  assert.is(m['general.type'], 'adapter');
  assert.is(m['understudy.training.steps'], '12');
  assert.is(m['understudy.training.epochs'], '3');
  assert.is(m['understudy.training.tokens'], '3072');
  assert.is(m['understudy.training.rank'], '4');
  // llama.cpp leaves arrays out of an adapter's metadata map: they read back from the file.
  assert.is(m['understudy.training.train_loss'], undefined);
  await adapter.dispose();
  const file = await readGguf(saved, { readTensorData: true });
  const array = (key: string) => file.metadata.get(key) as { type: GgufValueType; value: { itemType: GgufValueType; items: ArrayLike<unknown> } };
  assert.equal([array('understudy.training.train_loss').type, array('understudy.training.train_loss').value.itemType], [GgufValueType.ARRAY, GgufValueType.FLOAT32]);
  assert.equal(Array.from(array('understudy.training.train_loss').value.items), meta.trainLoss);
  assert.equal(Array.from(array('understudy.training.eval_loss').value.items), meta.evalLoss);
  assert.equal(array('understudy.training.targets').value.items, DEFAULT_TARGETS);
  assert.equal(file.metadata.get('understudy.training.steps'), { type: GgufValueType.UINT32, value: 12 });
  assert.equal(file.metadata.get('understudy.training.tokens'), { type: GgufValueType.UINT64, value: 3072n });

  // The tensors went out in plan order, bit for bit.
  assert.equal(file.tensors.map((t) => t.name), tensors.map((t) => t.name));
  for (const [i, t] of tensors.entries()) assert.ok(file.tensors[i].data!.equals(Buffer.from(t.data.buffer)), t.name);
  assert.equal(await planFromAdapter(saved, storiesModel), {
    ...plan, steps: 12, history: { steps: 12, epochs: 3, trainLoss: meta.trainLoss, evalLoss: meta.evalLoss, tokens: 3072 },
  });
  // No evaluation split, another name.
  const plain = join(dir, 'plain.gguf');
  await saveAdapter(plain, storiesModel, plan, tensors, { ...meta, evalLoss: [], name: 'dragon stories' });
  const again = await within(model.loadLora(plain));
  assert.is(again.metadata['general.name'], 'dragon stories');
  await ctx.setLora(again, 1);
  assert.is((await within(ctx.complete(prompt, greedy))).text, adapted.text);
  await ctx.removeLora(again);
  await again.dispose();
  const evalLoss = (await readGguf(plain)).metadata.get('understudy.training.eval_loss')?.value as { items: ArrayLike<number> };
  assert.is(evalLoss.items.length, 0);
});

test('saveAdapter refuses tensors and metadata that do not match the plan', async () => {
  const out = join(dir, 'refused.gguf');
  const good = randomTensors(plan);
  const save = (tensors: AdapterTensor[], m: TrainingMetadata = meta, p: AdapterPlan = plan) => saveAdapter(out, storiesModel, p, tensors, m);
  await expectError(save(good.slice(1)), 'INVALID_ARGUMENT', 'tensors lacks 1 of the plan\'s tensors: blk.0.attn_q.weight.lora_a');
  await expectError(save([...good, good[3]]), 'INVALID_ARGUMENT', 'tensors has blk.0.attn_output.weight.lora_b twice');
  await expectError(save([...good, { ...good[0], name: 'blk.0.attn_k.weight.lora_a' }]), 'INVALID_ARGUMENT',
    `tensors[${good.length}] is "blk.0.attn_k.weight.lora_a", which the adapter plan does not have`);
  await expectError(save(good.map((t, i) => (i === 2 ? { ...t, ne: [4, 64] } : t))), 'INVALID_ARGUMENT',
    'Expected ne [64, 4] for blk.0.attn_output.weight.lora_a but received [4, 64]');
  await expectError(save(good.map((t, i) => (i === 2 ? { ...t, data: t.data.subarray(1) } : t))), 'INVALID_ARGUMENT',
    'Expected Float32Array of 256 elements for the data of blk.0.attn_output.weight.lora_a but received a Float32Array of 1020 bytes of type object');
  await expectError(save(good.map((t, i) => (i === 2 ? { ...t, data: new Float64Array(256) as unknown as Float32Array } : t))), 'INVALID_ARGUMENT',
    /^Expected Float32Array of 256 elements for the data of blk\.0\.attn_output\.weight\.lora_a but received a Float64Array/);
  const nan = good.map((t) => ({ ...t, data: t.data.slice() }));
  nan[5].data[17] = NaN;
  await expectError(save(nan), 'INVALID_ARGUMENT', `the data of ${nan[5].name} has the non-finite value NaN at index 17: the adapter is not saved`);
  await expectError(save(good, { ...meta, steps: -1 }), 'INVALID_ARGUMENT', 'Expected integer between 0 and 4294967295 for meta.steps but received -1 of type number');
  await expectError(save(good, { ...meta, trainLoss: ['1'] as unknown as number[] }), 'INVALID_ARGUMENT', 'Expected array of numbers for meta.trainLoss but received an array of type object');
  await expectError(save(good, { ...meta, tokens: 1.5 }), 'INVALID_ARGUMENT', 'Expected non-negative integer for meta.tokens but received 1.5 of type number');
  const short = { ...plan, tensors: plan.tensors.slice(1) };
  await expectError(save(good, meta, short), 'INVALID_ARGUMENT',
    `the adapter plan's tensors are not those of its targets in the model ${storiesModel}: make the plan with planAdapter() or planFromAdapter()`);
  await expectError(save(good, meta, { ...plan, targets: ['attn_v'] }), 'TRAINING_UNSUPPORTED', /^cannot train the target attn_v/);
  await expectError(save(good, meta, { ...plan, rank: 0 }), 'INVALID_ARGUMENT', 'Expected positive integer for rank but received 0 of type number');
  assert.equal(readdirSync(dir).filter((f) => f.includes('refused')), [], 'a refused save wrote something');
});

test('writes are atomic: a failed write leaves nothing, a successful one no temp file', async () => {
  const box = join(dir, 'atomic');
  mkdirSync(box);
  const tensors = randomTensors(plan);
  const nowhere = join(box, 'missing', 'adapter.gguf');
  await expectError(saveAdapter(nowhere, storiesModel, plan, tensors, meta), 'IO_ERROR', new RegExp(`^cannot write the LoRA adapter ${nowhere}: ENOENT`));
  await expectError(writeNewAdapter(nowhere, storiesModel, plan, 1), 'IO_ERROR', new RegExp(`^cannot write the LoRA adapter ${nowhere}: ENOENT`));
  assert.equal(readdirSync(box), []);
  // The rename onto a directory fails after the whole file was written: the temp file goes.
  mkdirSync(join(box, 'taken.gguf'));
  await expectError(saveAdapter(join(box, 'taken.gguf'), storiesModel, plan, tensors, meta), 'IO_ERROR',
    new RegExp(`^cannot write the LoRA adapter ${join(box, 'taken.gguf')}: E(ISDIR|EXIST|NOTEMPTY)`));
  assert.equal(readdirSync(box), ['taken.gguf']);
  rmSync(join(box, 'taken.gguf'), { recursive: true });
  // Success, then an overwrite: one file, no temp beside it.
  await writeNewAdapter(join(box, 'a.gguf'), storiesModel, plan, 3);
  await saveAdapter(join(box, 'a.gguf'), storiesModel, plan, tensors, meta);
  assert.equal(readdirSync(box), ['a.gguf']);
  assert.is((await planFromAdapter(join(box, 'a.gguf'), storiesModel)).steps, 12);
});

test('planFromAdapter accepts another tool\'s adapter for this base; alpha 0 means alpha = rank', async () => {
  const made = await makeLoraAdapter({ model: storiesModel, out: join(dir, 'made.gguf'), targets: ['ffn_up', 'attn_q'], rank: 2, alpha: 3, recordBase: false });
  assert.equal(await planFromAdapter(made.path, storiesModel),
    { ...(await planAdapter(storiesModel, { rank: 2, alpha: 3, targets: ['attn_q', 'ffn_up'] })), steps: 0, history: { steps: 0, epochs: 0, trainLoss: [], evalLoss: [], tokens: 0 } });
  const zero = await makeLoraAdapter({ model: storiesModel, out: join(dir, 'alpha0.gguf'), targets: ['attn_q'], rank: 2, alpha: 0 });
  assert.is((await planFromAdapter(zero.path, storiesModel)).alpha, 2);
});

test('planFromAdapter refuses every fault with INVALID_ADAPTER (or TRAINING_UNSUPPORTED) and the file\'s path', async () => {
  const good = join(dir, 'resume.gguf');
  await saveAdapter(good, storiesModel, plan, randomTensors(plan), meta);
  let n = 0;
  const variant = (edit: Parameters<typeof copyModel>[2]) => copyModel(good, join(dir, `variant-${n++}.gguf`), edit);
  const refused = async (path: string, why: string | RegExp, code = 'INVALID_ADAPTER') => {
    const prefix = `cannot resume training from the LoRA adapter ${path}: `;
    const err = await rejection(planFromAdapter(path, storiesModel));
    assert.is(err.code, code, err.message);
    assert.ok(err.message.startsWith(prefix), err.message);
    if (typeof why === 'string') assert.is(err.message.slice(prefix.length), why);
    else assert.match(err.message.slice(prefix.length), why);
  };

  const withV = await makeLoraAdapter({ model: storiesModel, out: join(dir, 'with-v.gguf') });
  await refused(withV.path, 'it adapts attn_v, and attn_k and attn_v get no gradient at this llama.cpp version: attention reads K and V back from the cache', 'TRAINING_UNSUPPORTED');
  const arch = await makeLoraAdapter({ model: storiesModel, out: join(dir, 'arch.gguf'), targets: ['attn_q'], wrongArchitecture: true });
  await refused(arch.path, 'it was made for the architecture "gpt2", and this model is "llama"');
  const shape = await makeLoraAdapter({ model: storiesModel, out: join(dir, 'shape.gguf'), targets: ['attn_q'], wrongShape: true, recordBase: false });
  await refused(shape.path, 'the shapes of blk.0.attn_q.weight.lora_a [65, 4] and .lora_b [4, 64] do not fit the base weight [64, 64]: they must be [64, rank] and [rank, 64]');
  const output = await makeLoraAdapter({ model: storiesModel, out: join(dir, 'output.gguf'), targets: ['output'] });
  await refused(output.path, 'it adapts "output.weight", which is not a per-layer weight blk.N.<target>.weight; training adapts attn_q, attn_output, ffn_gate, ffn_up, ffn_down');
  const wide = await makeLoraAdapter({ model: storiesModel, out: join(dir, 'wide.gguf'), targets: ['attn_q'], rank: 65 });
  await refused(wide.path, 'its rank 65 is larger than the smaller side of blk.0.attn_q.weight (64 × 64)');
  const reweighted = await copyModel(storiesModel, join(dir, 'reweighted.gguf'), (f) => scaleOutputNorm(f));
  const foreign = await makeLoraAdapter({ model: reweighted, out: join(dir, 'foreign.gguf'), targets: ['attn_q'] });
  await refused(foreign.path, 'it does not fit this model: it was made for another model ("llama") of the same shape: that model\'s weights differ from this one\'s');
  await refused(storiesModel, 'it is not an adapter (general.type is undefined, expected "adapter")');

  await refused(await variant((f) => f.metadata.set('adapter.type', { type: GgufValueType.STRING, value: 'ia3' })),
    'it is not a LoRA adapter (adapter.type is "ia3", expected "lora")');
  await refused(await variant((f) => f.metadata.set('adapter.lora.alpha', { type: GgufValueType.UINT32, value: 8 })),
    'its adapter.lora.alpha is UINT32, not FLOAT32 (llama.cpp cannot read it)');
  await refused(await variant((f) => f.metadata.set('adapter.lora.alpha', { type: GgufValueType.FLOAT32, value: -1 })),
    'its adapter.lora.alpha -1 is not a finite number ≥ 0');
  await refused(await variant((f) => f.metadata.set('understudy.training.steps', { type: GgufValueType.INT64, value: 5n })),
    'its understudy.training.steps is INT64, not UINT32');
  await refused(await variant((f) => { f.tensors = f.tensors.filter((t) => t.name !== 'blk.2.ffn_up.weight.lora_b'); }),
    '"blk.2.ffn_up.weight.lora_a" has no matching .lora_b tensor');
  await refused(await variant((f) => { f.tensors = f.tensors.filter((t) => !t.name.startsWith('blk.4.ffn_gate.')); }),
    'it adapts ffn_gate but not blk.4.ffn_gate.weight; training adapts each target in every layer');
  await refused(await variant((f) => { f.tensors = []; }), 'it has no LoRA tensors');
  await refused(await variant((f) => { f.tensors[0].name = 'blk.0.attn_q.weight.lora_x'; }),
    'its tensor "blk.0.attn_q.weight.lora_x" is not a LoRA A or B tensor (<base>.lora_a or <base>.lora_b)');
  await refused(await variant((f) => {
    const t = f.tensors[0];
    t.type = GgmlType.F16;
    t.data = t.data!.subarray(0, t.data!.length / 2);
  }), 'its tensor "blk.0.attn_q.weight.lora_a" is F16; training needs F32 adapter tensors');
  await refused(await variant((f) => {
    // Layer 1's attn_q at rank 2: consistent in itself, not with the others.
    const [a, b] = f.tensors.filter((t) => t.name.startsWith('blk.1.attn_q.'));
    a.dims = [64, 2]; a.data = a.data!.subarray(0, 64 * 2 * 4);
    b.dims = [2, 64]; b.data = b.data!.subarray(0, 2 * 64 * 4);
  }), 'its tensors do not all have one rank: blk.1.attn_q.weight has rank 2, the tensors before it rank 4');

  const missing = join(dir, 'no-such-adapter.gguf');
  await expectError(planFromAdapter(missing, storiesModel), 'IO_ERROR', new RegExp(`^the LoRA adapter ${missing} cannot be read: ENOENT`));
  const text = join(dir, 'notes.gguf');
  writeFileSync(text, 'GGUX private notes');
  await expectError(planFromAdapter(text, storiesModel), 'INVALID_ADAPTER', `the LoRA adapter ${text} cannot be read: it is not a GGUF file`);
});

test.run();
