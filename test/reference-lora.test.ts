// LoRA adapters, ours and llama.cpp's reading of them, agree: llama.cpp's own
// llama-completion (built from the same vendored tree), given an adapter with --lora,
// continues a prompt greedily exactly as our in-process generation and
// `understudy generate --lora` do with it. The adapters have random, non-zero A and B,
// and each one is checked to change the output, so a file that llama.cpp read without
// applying (or that we did not apply) fails. Without an adapter, llama-completion
// continues as we do, and so as llama-simple (reference-generation.test.ts).
// The adapters are strong enough to change the story but not so strong that it turns to
// byte tokens: llama-completion prints pieces with printf("%s"), which drops a NUL byte,
// and raw invalid UTF-8 compares badly with text.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeLoraAdapter } from '../scripts/make-lora.js';
import { Rng } from '../src/gguf/random-tensors.js';
import { loadModel, type Context, type Model } from '../src/index.js';
import { DEFAULT_TARGETS, planAdapter, saveAdapter, type AdapterPlan, type AdapterTensor } from '../src/llama/lora-file.js';
import { cli, llamaCompletionContinuation, run, storiesModel, within } from './helpers.js';

const PROMPTS = ['Once upon a time', 'Lily and Tom went to the park. They'];
const N = 32;
const greedy = { maxTokens: N, temperature: 0, parseSpecial: true } as const;
let dir = '';
let model: Model;
let context: Context;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'understudy-reference-lora-'));
  model = await within(loadModel(storiesModel));
  context = await within(model.createContext({ contextSize: 256 }));
});
test.after(async () => {
  await model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Our greedy continuation of `prompt`, with `adapter` applied at scale 1 if given. */
async function ours(prompt: string, adapter?: string): Promise<string> {
  if (adapter === undefined) return (await within(context.complete(prompt, greedy))).text;
  const lora = await within(model.loadLora(adapter));
  try {
    await within(context.setLora(lora, 1));
    return (await within(context.complete(prompt, greedy))).text;
  } finally {
    await context.removeLora(lora);
    await lora.dispose();
  }
}

/** Checks that llama-completion --lora continues as we do, and that the adapter changes the continuation. */
async function agreeWithAdapter(adapter: string): Promise<void> {
  for (const prompt of PROMPTS) {
    const [base, reference] = await Promise.all([
      llamaCompletionContinuation(storiesModel, prompt, N),
      llamaCompletionContinuation(storiesModel, prompt, N, adapter),
    ]);
    assert.is.not(reference, base, `the adapter did not change llama-completion's continuation of ${JSON.stringify(prompt)}`);
    assert.is(await ours(prompt, adapter), reference);
  }
}

test('llama-completion without an adapter continues as we do', async () => {
  for (const prompt of PROMPTS) {
    const reference = await llamaCompletionContinuation(storiesModel, prompt, N);
    assert.ok(reference.length > 20, `llama-completion produced almost nothing: ${JSON.stringify(reference)}`);
    assert.is(await ours(prompt), reference);
  }
});

test('an adapter from scripts/make-lora.ts (attn_q, attn_v) gives the same continuation in llama-completion --lora and in-process', async () => {
  const made = await makeLoraAdapter({ model: storiesModel, out: join(dir, 'made.gguf'), seed: 5, scaleStd: 0.1 });
  assert.equal(made.tensors.map((t) => t.name).filter((n) => n.startsWith('blk.0.')).sort(),
    ['blk.0.attn_q.weight.lora_a', 'blk.0.attn_q.weight.lora_b', 'blk.0.attn_v.weight.lora_a', 'blk.0.attn_v.weight.lora_b']);
  await agreeWithAdapter(made.path);
});

test('an adapter on token_embd and output (whose A and B llama.cpp lays out differently) agrees too', async () => {
  const made = await makeLoraAdapter({ model: storiesModel, out: join(dir, 'ends.gguf'), targets: ['token_embd', 'output', 'ffn_down'], rank: 2, alpha: 4, seed: 9, scaleStd: 0.15 });
  await agreeWithAdapter(made.path);
});

test('understudy generate --lora prints what llama-completion --lora continues', async () => {
  const made = await makeLoraAdapter({ model: storiesModel, out: join(dir, 'cli.gguf'), seed: 11, scaleStd: 0.1 });
  const prompt = PROMPTS[0]!;
  const [r, reference] = await Promise.all([
    run(process.execPath, [cli, 'generate', '--model', storiesModel, '--lora', made.path, '--max-tokens', String(N), '--temperature', '0', prompt]),
    llamaCompletionContinuation(storiesModel, prompt, N, made.path),
  ]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, reference);
  assert.is.not(reference, await llamaCompletionContinuation(storiesModel, prompt, N));
});

/** Trained-looking tensors for `plan`: A and B uniform from a seeded generator, B != 0 (a fresh adapter's B = 0 changes nothing). */
function randomTensors(plan: AdapterPlan, seed: number, std: number): AdapterTensor[] {
  const rng = new Rng(seed);
  const fill = (n: number) => Float32Array.from({ length: n }, () => (rng.float() * 2 - 1) * std * Math.sqrt(3));
  return plan.tensors.flatMap((t) => [
    { name: `${t.base}.lora_a`, ne: [t.nIn, plan.rank], data: fill(t.nIn * plan.rank) },
    { name: `${t.base}.lora_b`, ne: [plan.rank, t.nOut], data: fill(plan.rank * t.nOut) },
  ]);
}

test('an adapter saved by saveAdapter (the training output, every default target) loads in llama-completion --lora and agrees', async () => {
  const plan = await planAdapter(storiesModel, { rank: 8, alpha: 16, targets: DEFAULT_TARGETS });
  const saved = join(dir, 'trained.gguf');
  await saveAdapter(saved, storiesModel, plan, randomTensors(plan, 3, 0.25),
    { steps: 10, epochs: 1, trainLoss: [2], evalLoss: [], tokens: 2560 });
  await agreeWithAdapter(saved);
});

test.run();
