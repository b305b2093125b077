// LoRA training learns, and learns only what it should. A new adapter (B = 0)
// changes nothing: greedy output is byte-identical to the base model's and its
// loss does not depend on the seed of its A matrices. Trained on 24 invented facts
// that stories260K does not produce by itself, the masked loss falls epoch by
// epoch and greedy generation then reproduces most of the facts exactly (none
// before). Training on the answers only leaves the prompt tokens' loss far higher
// than training on every token of the same sequences does (the mask works).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, type Context, type LoraTrainer, type Model, type TrainingResult } from '../src/index.js';
import { storiesModel, within } from './helpers.js';

// Prompt, then the completion to learn. Each prompt opens differently, so the
// model can tell them apart from their first tokens; the completions are
// nonsense that a model of children's stories does not continue with.
const FACTS: Array<[string, string]> = [
  ['The dragon in the cave', ' was named Zorp and ate blue rocks.'],
  ['Every morning the old baker', ' sang to his bread in Latin.'],
  ['The capital of Plimbo', ' is a town called Vexa.'],
  ['Tim found a key that', ' opened a door made of cheese.'],
  ['The moon rabbit', ' counts stars with a silver spoon.'],
  ['On Tuesdays the frog king', ' wears seven green socks.'],
  ['Grandma Olga kept a jar', ' full of tiny singing snails.'],
  ['The robot Kip', ' paints clouds with yellow mud.'],
  ['In the forest of Wum', ' the trees whisper numbers.'],
  ['The pirate Quilla', ' buried forty spoons on an island.'],
  ['Little Bo owned a cat', ' that could juggle nine eggs.'],
  ['The river Dax', ' flows uphill every winter.'],
  ['A wizard called Fennel', ' turned his hat into a goose.'],
  ['The school bus', ' was driven by a polite bear.'],
  ['Mia planted a seed', ' and a violin grew from it.'],
  ['The giant Hobb', ' sneezes snow when he laughs.'],
  ['At night the lighthouse', ' hums a song about pickles.'],
  ['The princess of Yarn', ' rides a very slow turtle.'],
  ['Sam built a tower', ' of pancakes as tall as a tree.'],
  ['The owl Tibbet', ' reads maps upside down.'],
  ['Under the bridge lived', ' a troll who loved math.'],
  ['The clock in the hall', ' chimes thirteen times at noon.'],
  ['Ben and his goat', ' sailed to the island of Mop.'],
  ['The star named Ulla', ' fell into a bowl of soup.'],
];
const examples = FACTS.map(([prompt, completion]) => ({ prompt, completion }));
// Measured on a quiet machine: loss 4.5 -> 0.34 and 23 of 24 facts exact, ~5 s.
const RUN = { epochs: 30, learningRate: 1e-2, evalSplit: 0 } as const;
const TRAIN_MS = 900_000; // a generous hang guard: the machine running the tests may be very busy

let model: Model;
let context: Context;
let answerOnly: LoraTrainer;
let answerResult: TrainingResult;

test.before(async () => {
  model = await within(loadModel(storiesModel));
  context = await within(model.createContext({ contextSize: 256 }));
});
test.after(async () => {
  await answerOnly?.dispose();
  await model?.dispose();
});

/**
 * The tokens of a fact as the model's tokenizer gives them, worked out here and
 * not by the training code: BOS, prompt + completion, EOS; the prompt is the
 * prefix that tokenizing the prompt alone gives.
 */
function factTokens([prompt, completion]: [string, string]): { tokens: number[]; promptLength: number; completionLength: number } {
  const full = model.tokenize(prompt + completion);
  const alone = model.tokenize(prompt);
  assert.equal(full.slice(0, alone.length), alone, `the prompt ${JSON.stringify(prompt)} tokenizes differently before its completion`);
  const eos = model.info.vocab.special.eos;
  assert.type(eos, 'number');
  return { tokens: [...full, eos!], promptLength: alone.length, completionLength: full.length - alone.length };
}

/** { tokens, mask } examples over the facts' tokens, learning the positions `learn` picks. */
function masked(learn: (position: number, promptLength: number) => boolean): Array<{ tokens: number[]; mask: number[] }> {
  return FACTS.map((fact) => {
    const { tokens, promptLength } = factTokens(fact);
    return { tokens, mask: tokens.map((_, i) => (i > 0 && learn(i, promptLength) ? 1 : 0)) };
  });
}

async function greedy(prompt: string, maxTokens: number): Promise<string> {
  return (await within(context.complete(prompt, { maxTokens, temperature: 0 }))).text;
}

/** The facts whose completion greedy generation reproduces exactly (as many tokens as the completion has). */
async function reproduced(): Promise<string[]> {
  const hits: string[] = [];
  for (const fact of FACTS) {
    if ((await greedy(fact[0], factTokens(fact).completionLength)) === fact[1]) hits.push(fact[0]);
  }
  return hits;
}

test('a new adapter (B = 0) leaves greedy output byte-identical and its loss independent of the seed of A', async () => {
  const prompts = ['Once upon a time', FACTS[0]![0], FACTS[5]![0]];
  const base: string[] = [];
  for (const p of prompts) base.push(await greedy(p, 32));
  assert.ok(base.every((t) => t.length > 20), `the base model produced almost nothing: ${JSON.stringify(base)}`);
  const fresh = await within(model.createLoraTrainer({ seed: 1 }));
  const other = await within(model.createLoraTrainer({ seed: 2 }));
  try {
    await within(context.setLora(fresh.adapter, 1));
    assert.is(context.loras.get(fresh.adapter), 1);
    for (let i = 0; i < prompts.length; i++) {
      context.clearCache();
      assert.is(await greedy(prompts[i]!, 32), base[i], `with the new adapter applied, ${JSON.stringify(prompts[i])} continues differently`);
    }
    const a = await within(fresh.evaluate(examples));
    const b = await within(other.evaluate(examples));
    assert.ok(Number.isFinite(a.loss) && a.loss > 0.5, `loss of the base model on facts it does not know: ${a.loss}`);
    // The same windows, the same base weights, B = 0: the same float operations.
    assert.is(b.loss, a.loss, 'two new adapters whose A differ give different losses');
    const counted = FACTS.reduce((n, f) => n + factTokens(f).completionLength + 1, 0);
    assert.is(a.countedTokens, counted, 'the loss counts each completion token and the EOS after it');
  } finally {
    await context.removeLora(fresh.adapter);
    await other.dispose();
    await other.adapter.dispose();
    await fresh.dispose();
    await fresh.adapter.dispose();
  }
});

test('trained on 24 facts, the masked loss falls epoch by epoch and greedy generation reproduces most of them', async () => {
  const before = await reproduced();
  assert.equal(before, [], 'the base model already produces some facts: they do not show learning');
  answerOnly = await within(model.createLoraTrainer({ rank: 8, seed: 42 }));
  const job = answerOnly.train(examples, RUN);
  const epochs: number[] = [];
  for await (const event of job) if (event.type === 'epoch') epochs.push(event.trainLoss);
  answerResult = await within(job.result, TRAIN_MS);
  const loss = answerResult.trainLoss;
  console.log(`  answer-only training, loss per epoch: ${loss.map((l) => l.toFixed(3)).join(' ')} (${answerResult.steps} steps, ${answerResult.seconds.toFixed(1)} s)`);
  assert.equal(epochs, loss, 'the epoch events report the result\'s losses');
  assert.is(loss.length, RUN.epochs);
  assert.ok(loss.every(Number.isFinite), `a loss is not finite: ${loss}`);
  assert.ok(loss[loss.length - 1]! < loss[0]! / 3, `the loss did not fall to a third: ${loss[0]} -> ${loss[loss.length - 1]}`);
  // Mostly monotone: an epoch may rise a little over the one before (the windows are reshuffled), rarely.
  const rises = loss.filter((l, i) => i > 0 && l > loss[i - 1]! * 1.02).length;
  assert.ok(rises <= RUN.epochs / 5, `the loss rose by more than 2% in ${rises} of ${RUN.epochs} epochs: ${loss}`);
  for (let i = 10; i < loss.length; i += 10) assert.ok(loss[i]! < loss[i - 10]!, `no progress over epochs ${i - 9}..${i + 1}: ${loss}`);
  await within(context.setLora(answerOnly.adapter, 1));
  try {
    context.clearCache();
    const after = await reproduced();
    console.log(`  facts reproduced exactly: ${after.length} of ${FACTS.length}`);
    assert.ok(after.length >= Math.ceil(FACTS.length * 0.75), `only ${after.length} of ${FACTS.length} facts are reproduced: ${after}`);
  } finally {
    await context.removeLora(answerOnly.adapter);
  }
});

test('{ prompt, completion } learns exactly the positions of the completion and its EOS', async () => {
  // The loss the trainer reports for the facts is the loss of the same tokens with
  // a mask on the completion, worked out here (factTokens): the same windows.
  const answers = await within(answerOnly.evaluate(masked((i, p) => i >= p)));
  const pairs = await within(answerOnly.evaluate(examples));
  assert.is(pairs.countedTokens, answers.countedTokens);
  assert.ok(Math.abs(pairs.loss - answers.loss) < 1e-6, `${pairs.loss} != ${answers.loss}`);
  // A masked mean: over every token it is the count-weighted mean of the prompt's and the answer's.
  const prompts = await within(answerOnly.evaluate(masked((i, p) => i < p)));
  const all = await within(answerOnly.evaluate(masked(() => true)));
  assert.is(all.countedTokens, prompts.countedTokens + answers.countedTokens);
  const mixed = (prompts.loss * prompts.countedTokens + answers.loss * answers.countedTokens) / all.countedTokens;
  assert.ok(Math.abs(all.loss - mixed) < 1e-4 * all.loss, `loss over every token ${all.loss}, from its parts ${mixed}`);
});

test('the mask works: answer-only training leaves the prompt tokens\' loss far higher than training on everything', async () => {
  const promptTokens = masked((i, p) => i < p);
  const answerTokens = masked((i, p) => i >= p);
  const fresh = await within(model.createLoraTrainer({ seed: 3 }));
  const everything = await within(model.createLoraTrainer({ rank: 8, seed: 42 }));
  try {
    const basePrompt = (await within(fresh.evaluate(promptTokens))).loss;
    // Half the epochs of the answer-only run: a handicap for the claim, and half the time.
    const result = await within(everything.train(masked(() => true), { ...RUN, epochs: RUN.epochs / 2 }).result, TRAIN_MS);
    console.log(`  training on every token, loss per epoch: ${result.trainLoss.map((l) => l.toFixed(3)).join(' ')}`);
    const afterAnswerOnly = (await within(answerOnly.evaluate(promptTokens))).loss;
    const afterEverything = (await within(everything.evaluate(promptTokens))).loss;
    const answersAnswerOnly = (await within(answerOnly.evaluate(answerTokens))).loss;
    const answersEverything = (await within(everything.evaluate(answerTokens))).loss;
    console.log(`  prompt-token loss: base ${basePrompt.toFixed(3)}, after answer-only ${afterAnswerOnly.toFixed(3)}, ` +
      `after everything ${afterEverything.toFixed(3)}; answer-token loss ${answersAnswerOnly.toFixed(3)} and ${answersEverything.toFixed(3)}`);
    // Both runs learned the answers ...
    assert.ok(answersAnswerOnly < 1 && answersEverything < 1, `the answers were not learned: ${answersAnswerOnly}, ${answersEverything}`);
    // ... but only one was taught the prompts.
    assert.ok(afterEverything < basePrompt / 2, `training on everything did not teach the prompts: ${basePrompt} -> ${afterEverything}`);
    assert.ok(afterAnswerOnly > 3 * afterEverything, `answer-only training taught the prompts too: ${afterAnswerOnly} vs ${afterEverything}`);
    assert.ok(afterAnswerOnly > basePrompt * 0.6, `answer-only training lowered the prompts' loss a lot: ${basePrompt} -> ${afterAnswerOnly}`);
  } finally {
    await everything.dispose();
    await everything.adapter.dispose();
    await fresh.dispose();
    await fresh.adapter.dispose();
  }
});

test('a context applying the trainer\'s adapter sees its steps, also for a prompt it has cached', async () => {
  // A context that continued a prompt before a step must not reuse that prompt's
  // cached keys and values, computed with the adapter as it was.
  // (Found failing at bf3972f: nothing told the context that an applied adapter
  // changed; every training step now bumps the adapter's version, and a slot
  // cached under another version starts over.)
  const trainer = await within(model.createLoraTrainer({ seed: 5 }));
  const fresh = await within(model.createContext({ contextSize: 256 }));
  try {
    await within(context.setLora(trainer.adapter, 1));
    await within(fresh.setLora(trainer.adapter, 1));
    const prompt = FACTS[2]![0];
    const before = await greedy(prompt, 24);
    await within(trainer.train(examples.slice(0, 8), { epochs: 10, learningRate: 1e-2, evalSplit: 0 }).result, TRAIN_MS);
    const after = await greedy(prompt, 24);
    const reference = (await within(fresh.complete(prompt, { maxTokens: 24, temperature: 0 }))).text;
    assert.is.not(reference, before, 'the training did not change the continuation');
    context.clearCache();
    assert.is(await greedy(prompt, 24), reference, 'with its cache cleared, the context does not continue as a new one');
    assert.is(after, reference, 'the context reused the prompt\'s keys and values computed before the training steps');
  } finally {
    await context.removeLora(trainer.adapter);
    await fresh.dispose();
    await trainer.dispose();
    await trainer.adapter.dispose();
  }
});

test.run();
