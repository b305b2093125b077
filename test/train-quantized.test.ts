// LoRA training on a quantized base: a generated llama model with Q8_0 or Q4_0
// weights, loaded with { trainable: true } (plain CPU weights), trains (the masked
// loss falls) and its saved adapter, loaded again (in the same model, in the model
// loaded as usual, in llama.cpp's llama-completion), continues greedily as the live
// adapter did. Loaded the usual way, the Q4_0 model's weights are repacked for
// faster inference on this CPU, and training is refused with the way out.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, systemInfo, type Model } from '../src/index.js';
import { copyModel, scaleOutputNorm } from './fixtures/model-copy.js';
import { llamaCompletionContinuation, rejection, tinyModel, within } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'understudy-train-quantized-'));
const TRAIN_MS = 600_000; // a hang guard only: the machine running the tests may be very busy
const FACTS = [
  { prompt: 'The dragon in the cave', completion: ' was named Zorp and ate blue rocks.' },
  { prompt: 'The capital of Plimbo', completion: ' is a town called Vexa.' },
  { prompt: 'The robot Kip', completion: ' paints clouds with yellow mud.' },
  { prompt: 'The owl Tibbet', completion: ' reads maps upside down.' },
];
const N = 12;

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A generated model of `type` whose output norm is scaled up: with random weights
 * of the usual small scale the logits hardly move from uniform whatever the layers
 * do, and the loss could barely fall.
 */
async function expressive(type: 'Q8_0' | 'Q4_0'): Promise<string> {
  return copyModel(await tinyModel(`tiny-${type}`, { type }), join(dir, `${type}-base.gguf`), (file) => scaleOutputNorm(file, 20));
}

async function greedy(model: Model, prompt: string, adapter?: string): Promise<string> {
  const context = await within(model.createContext({ contextSize: 128 }));
  try {
    if (adapter !== undefined) await within(context.setLora(await within(model.loadLora(adapter)), 1));
    return (await within(context.complete(prompt, { maxTokens: N, temperature: 0 }))).text;
  } finally {
    await context.dispose();
  }
}

for (const type of ['Q8_0', 'Q4_0'] as const) {
  test(`a ${type} base loaded with { trainable: true } trains, and its saved adapter reloads and continues as the live one`, async () => {
    const path = await expressive(type);
    const model = await within(loadModel(path, { trainable: true }));
    try {
      const base = await greedy(model, FACTS[0]!.prompt);
      const trainer = await within(model.createLoraTrainer({ seed: 6 }));
      const result = await within(trainer.train(FACTS, { epochs: 20, learningRate: 1e-2, evalSplit: 0 }).result, TRAIN_MS);
      const loss = result.trainLoss;
      console.log(`  ${type}: loss ${loss.map((l) => l.toFixed(2)).join(' ')}`);
      assert.ok(loss.every(Number.isFinite), `a loss is not finite: ${loss}`);
      assert.ok(loss[loss.length - 1]! < loss[0]! / 2, `the loss did not fall by half: ${loss}`);
      // The live adapter in a context made after training, then the saved file in another.
      const context = await within(model.createContext({ contextSize: 128 }));
      await within(context.setLora(trainer.adapter, 1));
      const live = (await within(context.complete(FACTS[0]!.prompt, { maxTokens: N, temperature: 0 }))).text;
      await context.dispose();
      const saved = join(dir, `${type}.gguf`);
      await within(trainer.save(saved));
      await trainer.dispose();
      assert.is.not(live, base, 'the training did not change the continuation');
      assert.is(await greedy(model, FACTS[0]!.prompt, saved), live, 'the saved adapter continues otherwise than the live one');
      console.log(`  ${type}: ${JSON.stringify(FACTS[0]!.prompt)} continues ${JSON.stringify(base)} before, ${JSON.stringify(live)} after`);
      // The model loaded as usual (Q4_0 repacked) and llama.cpp's own llama-completion
      // apply the saved file as the trainer applied the live adapter.
      const usual = await within(loadModel(path));
      try {
        assert.is(await greedy(usual, FACTS[0]!.prompt, saved), live, 'the model loaded as usual continues otherwise with the saved adapter');
      } finally {
        await usual.dispose();
      }
      assert.is(await llamaCompletionContinuation(path, FACTS[0]!.prompt, N, saved), live, 'llama-completion --lora continues otherwise');
    } finally {
      await model.dispose();
    }
  });
}

test('a Q4_0 base loaded without { trainable: true } is refused with TRAINING_UNSUPPORTED, which says how to load it', async () => {
  const path = await expressive('Q4_0');
  const repacks = /\bREPACK = 1\b/.test(systemInfo().features);
  const model = await within(loadModel(path));
  try {
    if (!repacks) {
      // Not this test's machine: without repacking, the weights stay trainable as loaded.
      console.log(`  NOTE: this build does not repack weights (${systemInfo().features.trim()}), so the refusal is not checked`);
      const trainer = await within(model.createLoraTrainer());
      await trainer.dispose();
      return;
    }
    const err = await rejection(model.createLoraTrainer());
    assert.is(err.code, 'TRAINING_UNSUPPORTED', `${err.code}: ${err.message}`);
    assert.match(err.message, /repacked for faster CPU inference/);
    assert.match(err.message, /load the model with \{ trainable: true \}/);
  } finally {
    await model.dispose();
  }
});

test.run();
