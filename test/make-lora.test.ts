// scripts/make-lora.ts: adapters read back with our GGUF reader must carry llama.cpp's
// adapter metadata and lora_a/lora_b shapes that pass llama-adapter.cpp's checks against
// the base model; the deliberately wrong variants must fail exactly one of those checks.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GgmlType, GgufError, GgufValueType } from '../src/gguf/format.js';
import { readGguf, type GgufFile } from '../src/gguf/reader.js';
import { dequantize } from '../src/gguf/random-tensors.js';
import { makeLlamaModel } from '../scripts/make-model.js';
import { loraDims, makeLoraAdapter } from '../scripts/make-lora.js';
import { modelFingerprint } from '../src/llama/lora-base.js';
import { copyModel, scaleOutputNorm } from './fixtures/model-copy.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const realModel = process.env.UNDERSTUDY_TEST_MODEL ?? join(repoRoot, '../shared/models/stories260K.gguf');

let dir = '';
let tinyModel = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'understudy-lora-'));
  tinyModel = join(dir, 'tiny.gguf');
  // ff = 48 != embd = 32 so that ffn_down ([ff, embd]) tells n_in from n_out apart.
  await makeLlamaModel({ out: tinyModel, layers: 3, embd: 32, ff: 48, heads: 4, kvHeads: 2, ctx: 128 });
});
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

const str = (f: GgufFile, key: string) => {
  const e = f.metadata.get(key);
  assert.ok(e, `missing metadata ${key}`);
  assert.is(e.type, GgufValueType.STRING, `${key} type`);
  return e.value;
};

/** Checks an adapter against its base the way llama_adapter_lora_init_impl does. */
function checkAgainstBase(adapter: GgufFile, base: GgufFile, targets: string[], rank: number): void {
  const baseByName = new Map(base.tensors.map((t) => [t.name, t]));
  const expected = base.tensors.filter((t) => targets.some((s) => new RegExp(`^(blk\\.\\d+\\.)?${s}\\.weight$`).test(t.name)));
  assert.ok(expected.length > 0);
  assert.is(adapter.tensors.length, expected.length * 2);
  for (const t of adapter.tensors) {
    assert.is(t.type, GgmlType.F32, `${t.name} type`);
    assert.ok(/\.lora_[ab]$/.test(t.name), `${t.name} suffix`);
  }
  const byName = new Map(adapter.tensors.map((t) => [t.name, t]));
  for (const w of expected) {
    const a = byName.get(`${w.name}.lora_a`);
    const b = byName.get(`${w.name}.lora_b`);
    assert.ok(a && b, `pair for ${w.name}`);
    assert.ok(baseByName.has(w.name));
    const [ne0, ne1] = w.dims;
    if (w.name === 'token_embd.weight') {
      assert.equal([ne0, ne1], [b.dims[1], a.dims[1]]);
    } else {
      // llama-adapter.cpp: model->ne[0] == a->ne[0], model->ne[1] == b->ne[1], a->ne[1] == b->ne[0].
      assert.equal(a.dims, [ne0, rank], `${a.name} dims`);
      assert.equal(b.dims, [rank, ne1], `${b.name} dims`);
    }
  }
}

test('adapter for the stories260K model: metadata, names and shapes', async () => {
  const out = join(dir, 'stories-lora.gguf');
  const r = await makeLoraAdapter({ model: realModel, out, rank: 4, alpha: 8, targets: ['attn_q', 'attn_v'] });
  const [base, adapter] = await Promise.all([readGguf(realModel), readGguf(out, { readTensorData: true })]);
  assert.is(str(adapter, 'general.architecture'), str(base, 'general.architecture'));
  assert.is(r.architecture, str(base, 'general.architecture'));
  assert.is(str(adapter, 'general.type'), 'adapter');
  assert.is(str(adapter, 'adapter.type'), 'lora');
  assert.type(str(adapter, 'general.name'), 'string');
  // FLOAT32 is required: llama.cpp reads it with gguf_get_val_f32, which asserts the type.
  assert.equal(adapter.metadata.get('adapter.lora.alpha'), { type: GgufValueType.FLOAT32, value: 8 });
  checkAgainstBase(adapter, base, ['attn_q', 'attn_v'], 4);
  assert.equal(r.tensors.map((t) => t.name), adapter.tensors.map((t) => t.name));

  // Both A and B are non-zero noise of roughly the requested std (B = 0 would be a no-op adapter).
  for (const t of adapter.tensors) {
    const v = dequantize(GgmlType.F32, t.data!);
    const std = Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
    assert.ok(std > 0.3 && std < 0.7, `${t.name} std ${std}`);
    assert.ok(v.every(Number.isFinite));
  }
});

test('adapter for a generated model: all targets, ffn_down orientation, token_embd, determinism', async () => {
  const targets = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down', 'output', 'token_embd'];
  const out1 = join(dir, 'tiny-lora-1.gguf');
  const out2 = join(dir, 'tiny-lora-2.gguf');
  const out3 = join(dir, 'tiny-lora-3.gguf');
  await makeLoraAdapter({ model: tinyModel, out: out1, rank: 3, alpha: 6, seed: 7, targets });
  await makeLoraAdapter({ model: tinyModel, out: out2, rank: 3, alpha: 6, seed: 7, targets });
  await makeLoraAdapter({ model: tinyModel, out: out3, rank: 3, alpha: 6, seed: 8, targets });
  const base = await readGguf(tinyModel);
  const [a1, a2, a3] = await Promise.all([out1, out2, out3].map((p) => readGguf(p, { readTensorData: true })));
  assert.is(str(a1, 'general.architecture'), 'llama');
  checkAgainstBase(a1, base, targets, 3);
  assert.is(a1.tensors.length, (7 * 3 + 2) * 2);
  const dims = (f: GgufFile, n: string) => f.tensors.find((t) => t.name === n)!.dims;
  assert.equal(dims(a1, 'blk.1.ffn_down.weight.lora_a'), [48, 3]);
  assert.equal(dims(a1, 'blk.1.ffn_down.weight.lora_b'), [3, 32]);
  assert.equal(dims(a1, 'blk.0.attn_k.weight.lora_b'), [3, 16]);
  assert.equal(dims(a1, 'token_embd.weight.lora_a'), [3, base.tensors[0].dims[1]]);
  assert.equal(dims(a1, 'token_embd.weight.lora_b'), [3, 32]);
  for (let i = 0; i < a1.tensors.length; i++) {
    assert.ok(a1.tensors[i].data!.equals(a2.tensors[i].data!), `same seed, same ${a1.tensors[i].name}`);
    assert.not.ok(a1.tensors[i].data!.equals(a3.tensors[i].data!), `other seed, other ${a1.tensors[i].name}`);
  }
  // A and B of one pair, and the same target in two layers, get independent noise.
  assert.not.ok(a1.tensors[0].data!.subarray(0, 12).equals(a1.tensors[1].data!.subarray(0, 12)));
  const q0 = a1.tensors.find((t) => t.name === 'blk.0.attn_q.weight.lora_a')!.data!;
  const q1 = a1.tensors.find((t) => t.name === 'blk.1.attn_q.weight.lora_a')!.data!;
  assert.not.ok(q0.equals(q1));
});

test('wrong-architecture and wrong-shape variants differ from the base as intended', async () => {
  const good = join(dir, 'good.gguf');
  const wrongArch = join(dir, 'wrong-arch.gguf');
  const wrongShape = join(dir, 'wrong-shape.gguf');
  const targets = ['attn_q', 'ffn_down', 'token_embd'];
  await makeLoraAdapter({ model: tinyModel, out: good, targets });
  await makeLoraAdapter({ model: tinyModel, out: wrongArch, targets, wrongArchitecture: true });
  await makeLoraAdapter({ model: tinyModel, out: wrongShape, targets, wrongShape: true });
  const [base, g, wa, ws] = await Promise.all([tinyModel, good, wrongArch, wrongShape].map((p) => readGguf(p)));

  assert.is(str(wa, 'general.architecture'), 'gpt2');
  assert.is(str(wa, 'general.type'), 'adapter');
  assert.equal(wa.tensors.map((t) => [t.name, t.dims]), g.tensors.map((t) => [t.name, t.dims]));

  assert.is(str(ws, 'general.architecture'), 'llama');
  assert.equal(ws.tensors.map((t) => t.name), g.tensors.map((t) => t.name));
  const baseDims = new Map(base.tensors.map((t) => [t.name, t.dims]));
  for (let i = 0; i < ws.tensors.length; i += 2) {
    const [a, b] = [ws.tensors[i], ws.tensors[i + 1]];
    const w = baseDims.get(a.name.replace(/\.lora_a$/, ''))!;
    assert.equal(b.dims, g.tensors[i + 1].dims, 'lora_b is untouched');
    if (a.name.startsWith('token_embd')) {
      assert.is(a.dims[1], w[1] + 1);
    } else {
      // Fails "incorrect shape" (model ne0 != a ne0) but still passes a->ne[1] == b->ne[0].
      assert.is(a.dims[0], w[0] + 1);
      assert.is(a.dims[1], b.dims[0]);
    }
  }
});

test('rejects bad options and unknown targets', async () => {
  const out = join(dir, 'never.gguf');
  const rejects = async (opts: Partial<Parameters<typeof makeLoraAdapter>[0]>, re: RegExp) => {
    try {
      await makeLoraAdapter({ model: tinyModel, out, ...opts });
    } catch (e) {
      assert.instance(e, GgufError);
      assert.match((e as Error).message, re);
      return;
    }
    assert.unreachable('expected an error');
  };
  await rejects({ rank: 0 }, /rank/);
  await rejects({ alpha: -1 }, /alpha/);
  await rejects({ scaleStd: 0 }, /scaleStd/);
  await rejects({ targets: ['attn_qq'] }, /attn_qq.*matches no tensor/);
  await rejects({ targets: ['attn_norm'] }, /only 2-D/);
  assert.equal(loraDims('blk.0.attn_q.weight', [64, 32], 2), { a: [64, 2], b: [2, 32] });
});

test('the adapter records its base model: its name and a fingerprint of its shapes, vocabulary and weights', async () => {
  const out = join(dir, 'based.gguf');
  await makeLoraAdapter({ model: realModel, out });
  const [base, adapter] = await Promise.all([readGguf(realModel, { readTensorData: true }), readGguf(out)]);
  assert.equal(adapter.metadata.get('general.base_model.count'), { type: GgufValueType.UINT32, value: 1 });
  assert.is(str(adapter, 'general.base_model.0.name'), str(base, 'general.name'));
  // The weights hash covers the 1-D tensors (norms), by name: computed here independently.
  const weights = createHash('sha256');
  for (const t of base.tensors.filter((x) => x.dims.length === 1).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    weights.update(`${t.name}\0`).update(t.data!);
  }
  assert.is(str(adapter, 'understudy.base_model.weights'), weights.digest('hex'));
  const fingerprint = await modelFingerprint(realModel, base);
  assert.is(str(adapter, 'understudy.base_model.shapes'), fingerprint.shapes);

  // Same shapes and vocabulary, other weights: the shapes hash agrees, the weights hash does not;
  // another shape or another vocabulary changes the shapes hash.
  const fingerprintOf = async (p: string) => modelFingerprint(p, await readGguf(p));
  const reweighted = await fingerprintOf(await copyModel(realModel, join(dir, 'reweighted.gguf'), (f) => scaleOutputNorm(f)));
  assert.is(reweighted.shapes, fingerprint.shapes);
  assert.is.not(reweighted.weights, fingerprint.weights);
  const retokenized = await fingerprintOf(await copyModel(realModel, join(dir, 'retokenized.gguf'), (f) => {
    const tokens = f.metadata.get('tokenizer.ggml.tokens')!.value as unknown as { items: string[] };
    tokens.items[100] = `${tokens.items[100]}x`;
  }));
  assert.is.not(retokenized.shapes, fingerprint.shapes);
  assert.is(retokenized.weights, fingerprint.weights);
  const other = join(dir, 'tiny-other.gguf');
  await makeLlamaModel({ out: other, layers: 3, embd: 32, ff: 64, heads: 4, kvHeads: 2, ctx: 128 });
  assert.is.not((await fingerprintOf(other)).shapes, (await fingerprintOf(tinyModel)).shapes);

  await makeLoraAdapter({ model: realModel, out, recordBase: false });
  const bare = await readGguf(out);
  assert.equal([...bare.metadata.keys()].filter((k) => k.includes('base_model')), []);
});

test('CLI writes an adapter', async () => {
  const out = join(dir, 'cli.gguf');
  const script = join(repoRoot, 'scripts', 'make-lora.ts');
  const { stdout } = await promisify(execFile)(process.execPath, [
    '--import', 'tsx', script, '--model', tinyModel, '--out', out, '--rank', '2', '--alpha', '4', '--targets', 'attn_v', '--arch-mismatch',
  ], { cwd: repoRoot });
  assert.match(stdout, /rank 2 alpha 4, 6 tensors/);
  const f = await readGguf(out);
  assert.is(str(f, 'general.architecture'), 'gpt2');
  assert.ok(f.metadata.has('understudy.base_model.shapes'));
  assert.equal(f.tensors.map((t) => t.dims), [[32, 2], [2, 16], [32, 2], [2, 16], [32, 2], [2, 16]]);
});

test.run();
