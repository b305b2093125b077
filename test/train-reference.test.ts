// LoRA training against references that do not share its code. The masked loss
// the trainer reports is the cross-entropy worked out here in plain JavaScript,
// on a model whose logits can be computed by hand. An adapter trained
// in-process, saved and loaded with --lora by `understudy generate` and by
// llama.cpp's own llama-completion (built from the same tree), continues greedily
// exactly as the trainer's live adapter did before it was saved.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getMetadata, readGguf } from '../src/gguf/reader.js';
import { loadModel, type Model } from '../src/index.js';
import { copyModel, scaleOutputNorm } from './fixtures/model-copy.js';
import { cli, llamaCompletionContinuation, run, storiesModel, tinyModel, within } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'understudy-train-reference-'));
const TRAIN_MS = 600_000; // a hang guard only: the machine running the tests may be very busy

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A small deterministic generator for token ids. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test('the masked loss is the cross-entropy computed independently (a model whose logits are known)', async () => {
  // With every attn_output and ffn_down matrix zero, each layer adds nothing to
  // the residual stream: the logits after token t are output · (norm ⊙ rmsnorm(embedding[t])),
  // which this test computes from the file's weights. The output norm is scaled up
  // so that the logits spread widely and each position's loss differs a lot.
  const path = await copyModel(await tinyModel(), join(dir, 'passthrough.gguf'), (file) => {
    for (const t of file.tensors) {
      if (/^blk\.\d+\.(attn_output|ffn_down)\.weight$/.test(t.name)) t.data = Buffer.alloc(t.data!.length);
    }
    scaleOutputNorm(file, 30);
  });
  const file = await readGguf(path, { readTensorData: true });
  const f32 = (name: string) => {
    const t = file.tensors.find((x) => x.name === name)!;
    assert.is(t.type, 0, `${name} is not F32`);
    return new Float32Array(t.data!.buffer.slice(t.data!.byteOffset, t.data!.byteOffset + t.data!.byteLength));
  };
  const embd = f32('token_embd.weight');
  const output = f32('output.weight');
  const norm = f32('output_norm.weight');
  const eps = getMetadata(file, 'llama.attention.layer_norm_rms_epsilon') as number;
  const n = norm.length;
  const vocab = output.length / n;

  /** -log p(next | token) by the formula. */
  const crossEntropy = (token: number, next: number): number => {
    const e = embd.subarray(token * n, (token + 1) * n);
    let ss = 0;
    for (let i = 0; i < n; i++) ss += e[i]! * e[i]!;
    const scale = 1 / Math.sqrt(ss / n + eps);
    const h = Array.from(e, (x, i) => x * scale * norm[i]!);
    const logits = new Float64Array(vocab);
    let max = -Infinity;
    for (let v = 0; v < vocab; v++) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += output[v * n + i]! * h[i]!;
      logits[v] = dot;
      if (dot > max) max = dot;
    }
    let sum = 0;
    for (let v = 0; v < vocab; v++) sum += Math.exp(logits[v]! - max);
    return max + Math.log(sum) - logits[next]!;
  };

  const random = lcg(11);
  const examples = [40, 23].map((length, k) => {
    const tokens = Array.from({ length }, () => 3 + Math.floor(random() * (vocab - 3)));
    // Some positions learned, others not: the loss must count exactly the learned ones.
    const mask = tokens.map((_, i) => (i > 0 && (i + k) % 3 !== 0 ? 1 : 0));
    return { tokens, mask };
  });
  let sum = 0;
  let counted = 0;
  let sumAll = 0;
  let positions = 0;
  for (const { tokens, mask } of examples) {
    for (let i = 1; i < tokens.length; i++) {
      const loss = crossEntropy(tokens[i - 1]!, tokens[i]!);
      sumAll += loss;
      positions++;
      if (mask[i] === 1) {
        sum += loss;
        counted++;
      }
    }
  }
  const expected = sum / counted;

  const model = await within(loadModel(path));
  try {
    const trainer = await within(model.createLoraTrainer({ seed: 4 }));
    try {
      const got = await within(trainer.evaluate(examples));
      console.log(`  masked cross-entropy: trainer ${got.loss.toFixed(6)}, by hand ${expected.toFixed(6)} over ${counted} tokens (${(sumAll / positions).toFixed(6)} unmasked)`);
      assert.is(got.countedTokens, counted);
      // The logits vary (a uniform distribution would give ln(vocab) whatever the mask).
      assert.ok(Math.abs(expected - Math.log(vocab)) > 1, `the reference is too close to uniform: ${expected}`);
      // ... and the mask matters: every position's loss, learned or not, averages to something else.
      assert.ok(Math.abs(sumAll / positions - expected) > 0.05, `the mask hardly changes the reference: ${sumAll / positions} vs ${expected}`);
      assert.ok(Math.abs(got.loss - expected) < 1e-4 * expected, `trainer ${got.loss}, by hand ${expected}`);
    } finally {
      await trainer.dispose();
    }
  } finally {
    await model.dispose();
  }
});

const FACTS = [
  { prompt: 'The dragon in the cave', completion: ' was named Zorp and ate blue rocks.' },
  { prompt: 'The capital of Plimbo', completion: ' is a town called Vexa.' },
  { prompt: 'The robot Kip', completion: ' paints clouds with yellow mud.' },
  { prompt: 'The owl Tibbet', completion: ' reads maps upside down.' },
];
const PROMPTS = [FACTS[0]!.prompt, 'Once upon a time'];
const N = 24;

test('a saved adapter continues in `understudy generate --lora` and llama-completion --lora as the live adapter did before saving', async () => {
  let model: Model | undefined = await within(loadModel(storiesModel));
  const saved = join(dir, 'trained.gguf');
  const live: string[] = [];
  const base: string[] = [];
  try {
    const trainer = await within(model.createLoraTrainer({ seed: 8 }));
    const result = await within(trainer.train(FACTS, { epochs: 12, learningRate: 1e-2, evalSplit: 0 }).result, TRAIN_MS);
    console.log(`  trained: loss ${result.trainLoss[0]!.toFixed(3)} -> ${result.trainLoss[result.trainLoss.length - 1]!.toFixed(3)}`);
    // A context made after training: nothing it computes predates the last step.
    const context = await within(model.createContext({ contextSize: 256 }));
    for (const prompt of PROMPTS) base.push((await within(context.complete(prompt, { maxTokens: N, temperature: 0 }))).text);
    await within(context.setLora(trainer.adapter, 1));
    context.clearCache();
    for (const prompt of PROMPTS) live.push((await within(context.complete(prompt, { maxTokens: N, temperature: 0 }))).text);
    await within(trainer.save(saved));
    await trainer.dispose();
  } finally {
    await model.dispose();
    model = undefined;
  }
  console.log(`  ${JSON.stringify(PROMPTS[0])} continues ${JSON.stringify(base[0])} before, ${JSON.stringify(live[0])} after`);
  assert.is.not(live[0], base[0], 'the trained fact did not change its continuation');
  for (let i = 0; i < PROMPTS.length; i++) {
    const [generated, reference] = await Promise.all([
      run(process.execPath, [cli, 'generate', '--model', storiesModel, '--lora', saved, '--max-tokens', String(N), '--temperature', '0', PROMPTS[i]!]),
      llamaCompletionContinuation(storiesModel, PROMPTS[i]!, N, saved),
    ]);
    assert.is(generated.code, 0, generated.stderr);
    assert.is(reference, live[i], `llama-completion --lora continues ${JSON.stringify(PROMPTS[i])} otherwise than the live adapter`);
    assert.is(generated.stdout, live[i], `understudy generate --lora continues ${JSON.stringify(PROMPTS[i])} otherwise than the live adapter`);
  }
});

test.run();
