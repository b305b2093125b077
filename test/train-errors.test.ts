// LoRA training refuses what it cannot do with a code and a message that says
// why: every option of the wrong type or out of range (INVALID_ARGUMENT), bad
// data (INVALID_DATASET, naming the example, before any trainer is made), a
// resume file that is missing, corrupt or for another model, and models that
// load and run but cannot train (TRAINING_UNSUPPORTED: another architecture,
// experts, repacked weights, vocab only; checked in a child process, since a
// missing check would reach a ggml assert).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, type Model } from '../src/index.js';
import { binding } from '../src/llama/binding.js';
import { planAdapter, writeNewAdapter } from '../src/llama/lora-file.js';
import { fixtureDir, storiesModel, tinyModel, within } from './helpers.js';
import { exitedNormally, inTrainChild, type Outcome } from './train-child.js';

const dir = mkdtempSync(join(tmpdir(), 'understudy-train-errors-'));
let model: Model;
// How often the job asked for a trainer: bad input must fail before that.
let trainersAsked = 0;

test.before(async () => {
  model = await within(loadModel(storiesModel));
  const create = model.createLoraTrainer.bind(model);
  model.createLoraTrainer = (options) => {
    trainersAsked++;
    return create(options);
  };
});
test.after(async () => {
  await model.dispose();
  rmSync(dir, { recursive: true, force: true });
  // The model tinyModel() generated for this process alone.
  rmSync(fixtureDir, { recursive: true, force: true });
});

const good = [{ prompt: 'Once upon', completion: ' a time' }];

/** What a call did, thrown at once or rejected: its code and message. */
async function failureOf(call: () => Promise<unknown>): Promise<Outcome> {
  try {
    await within(call(), 60_000);
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    return { code: e.code, message: e.message };
  }
  return { ok: 'succeeded' };
}

const invalid = (message: string): Outcome => ({ code: 'INVALID_ARGUMENT', message });
const range = (kind: string, name: string, low: string, high: string, shown: string) =>
  invalid(`Expected ${kind} between ${low} and ${high} for ${name} but received ${shown}`);

// [option, value, what the job fails with]: every option of TrainLoraOptions.
const badOptions: Array<[string, unknown, Outcome]> = [
  ['rank', '8', range('integer', 'rank', '1', '4096', '"8" of type string')],
  ['rank', 0, range('integer', 'rank', '1', '4096', '0 of type number')],
  ['rank', 1.5, range('integer', 'rank', '1', '4096', '1.5 of type number')],
  ['alpha', 'x', invalid('Expected positive number up to 1000000 for alpha but received "x" of type string')],
  ['alpha', 0, invalid('Expected positive number up to 1000000 for alpha but received 0 of type number')],
  ['alpha', NaN, invalid('Expected positive number up to 1000000 for alpha but received NaN of type number')],
  ['targets', [], invalid('targets is empty: name at least one tensor stem (the default targets are attn_q, attn_output, ffn_gate, ffn_up, ffn_down)')],
  ['targets', [1], invalid('Expected non-empty string or array of non-empty strings for targets but received an array of type object')],
  ['targets', ['attn_q', 'attn_q'], invalid('targets names "attn_q" twice')],
  ['targets', ['nope'], invalid('unknown target "nope": targets are the stems of per-layer weights blk.N.<target>.weight that training can adapt, '
    + `attn_q, attn_output, ffn_gate, ffn_up, ffn_down; the model ${storiesModel} has attn_q, attn_output, ffn_gate, ffn_up, ffn_down`)],
  ['epochs', '3', range('integer', 'epochs', '1', '100000', '"3" of type string')],
  ['epochs', 0, range('integer', 'epochs', '1', '100000', '0 of type number')],
  ['epochs', Infinity, range('integer', 'epochs', '1', '100000', 'Infinity of type number')],
  ['learningRate', '1e-3', invalid('Expected positive number up to 1 for learningRate but received "1e-3" of type string')],
  ['learningRate', 0, invalid('Expected positive number up to 1 for learningRate but received 0 of type number')],
  ['learningRate', -1e-3, invalid('Expected positive number up to 1 for learningRate but received -0.001 of type number')],
  ['learningRate', NaN, invalid('Expected positive number up to 1 for learningRate but received NaN of type number')],
  ['learningRate', Infinity, invalid('Expected positive number up to 1 for learningRate but received Infinity of type number')],
  ['warmup', -0.1, range('number', 'warmup', '0', '1', '-0.1 of type number')],
  ['warmup', 'x', range('number', 'warmup', '0', '1', '"x" of type string')],
  ['decay', 'cosine', invalid('Expected \'linear\' or \'none\' for decay but received "cosine" of type string')],
  ['maxGradNorm', NaN, range('number', 'maxGradNorm', '0', '1000000000', 'NaN of type number')],
  ['maxGradNorm', -1, range('number', 'maxGradNorm', '0', '1000000000', '-1 of type number')],
  ['maxGradNorm', 'x', range('number', 'maxGradNorm', '0', '1000000000', '"x" of type string')],
  ['evalSplit', 1, range('number', 'evalSplit', '0', '0.9', '1 of type number')],
  ['evalSplit', 'x', range('number', 'evalSplit', '0', '0.9', '"x" of type string')],
  ['seed', -1, range('integer', 'seed', '0', '4294967295', '-1 of type number')],
  ['seed', 2 ** 32, range('integer', 'seed', '0', '4294967295', '4294967296 of type number')],
  ['window', 300, invalid('Expected a multiple of 256 for window but received 300 (llama.cpp sizes training contexts in steps of 256)')],
  ['window', 100, range('integer', 'window', '256', '8192', '100 of type number')],
  ['window', '256', range('integer', 'window', '256', '8192', '"256" of type string')],
  ['threads', 0, range('integer', 'threads', '1', '512', '0 of type number')],
  ['threads', 1.5, range('integer', 'threads', '1', '512', '1.5 of type number')],
  ['template', '', invalid('Expected non-empty string for template but received "" of type string')],
  ['template', 5, invalid('Expected non-empty string for template but received 5 of type number')],
  ['out', '', invalid('Expected non-empty string for out but received "" of type string')],
  ['out', 5, invalid('Expected non-empty string for out but received 5 of type number')],
  ['resumeFrom', '', invalid('Expected non-empty string for resumeFrom but received "" of type string')],
  ['resumeFrom', 5, invalid('Expected non-empty string for resumeFrom but received 5 of type number')],
  ['beta1', 1, range('number', 'beta1', '0', '0.999999', '1 of type number')],
  ['beta1', NaN, range('number', 'beta1', '0', '0.999999', 'NaN of type number')],
  ['beta2', 'x', range('number', 'beta2', '0', '0.999999', '"x" of type string')],
  ['epsilon', -1, range('number', 'epsilon', '0', '1', '-1 of type number')],
  ['weightDecay', 2, range('number', 'weightDecay', '0', '1', '2 of type number')],
];

test('every option of the wrong type or out of range: INVALID_ARGUMENT naming it, before any native trainer', async () => {
  const before = binding().testing.liveHandles();
  for (const [name, value, expected] of badOptions) {
    const got = await failureOf(() => model.trainLora(good, { epochs: 1, [name]: value }).result);
    assert.equal(got, expected, `${name}: ${String(value)}`);
  }
  // (Targets are checked against the model file's header, when the trainer is asked for.)
  assert.equal(binding().testing.liveHandles(), before, 'no native trainer or adapter was made');
  assert.equal(await failureOf(() => model.trainLora(good, 5 as never).result), invalid('Expected object for options but received 5 of type number'));
});

// Found at 94d8bc8, fixed since: TrainingJob's constructor calls options.signal.addEventListener
// before any check, so a signal that is not an AbortSignal throws a TypeError
// without a code ("external?.addEventListener is not a function").
test('a signal that is not an AbortSignal: INVALID_ARGUMENT', async () => {
  for (const [value, shown] of [[{}, 'an object of type object'], ['x', '"x" of type string']] as const) {
    assert.equal(await failureOf(async () => model.trainLora(good, { signal: value as never }).result),
      invalid(`Expected AbortSignal for signal but received ${shown}`), shown);
    const trainer = await within(model.createLoraTrainer({ rank: 2 }));
    try {
      assert.equal(await failureOf(async () => trainer.train(good, { signal: value as never }).result),
        invalid(`Expected AbortSignal for signal but received ${shown}`), shown);
    } finally {
      await trainer.dispose();
      await trainer.adapter.dispose();
    }
  }
});

test('createLoraTrainer() and train() check their own options', async () => {
  assert.equal(await failureOf(() => model.createLoraTrainer({ rank: -1 })), range('integer', 'rank', '1', '4096', '-1 of type number'));
  assert.equal(await failureOf(() => model.createLoraTrainer({ window: 257 })),
    invalid('Expected a multiple of 256 for window but received 257 (llama.cpp sizes training contexts in steps of 256)'));
  const trainer = await within(model.createLoraTrainer({ rank: 2, targets: ['attn_q'], threads: 1 }));
  try {
    assert.equal(await failureOf(() => trainer.train(good, { epochs: 0 }).result), range('integer', 'epochs', '1', '100000', '0 of type number'));
    assert.equal(await failureOf(() => trainer.train(good, { learningRate: NaN }).result), invalid('Expected positive number up to 1 for learningRate but received NaN of type number'));
    // The refusals left the trainer able to train.
    const result = await within(trainer.train(good, { epochs: 1, evalSplit: 0 }).result);
    assert.is(result.steps, 1);
  } finally {
    await trainer.dispose();
    await trainer.adapter.dispose();
  }
});

test('a rank larger than the smallest adapted matrix; attn_k and attn_v targets', async () => {
  assert.equal(await failureOf(() => model.trainLora(good, { rank: 65 }).result),
    invalid('Expected integer between 1 and 64 for rank but received 65 of type number: the smallest adapted matrix, blk.0.attn_q.weight, is 64 × 64'));
  for (const target of ['attn_k', 'attn_v']) {
    assert.equal(await failureOf(() => model.trainLora(good, { targets: ['attn_q', target] }).result), {
      code: 'TRAINING_UNSUPPORTED',
      message: `cannot train the target ${target}: attn_k and attn_v get no gradient at this llama.cpp version: attention reads K and V back from the cache`,
    });
  }
});

const dataset = (message: string): Outcome => ({ code: 'INVALID_DATASET', message });
const kinds = 'give one of { messages }, { prompt, completion } or { tokens, mask }';
const badData: Array<[string, unknown, Outcome]> = [
  ['not an array', good[0], dataset('Expected non-empty array of training examples for examples but received an object of type object')],
  ['empty', [], dataset('Expected non-empty array of training examples for examples but received an array of type object')],
  ['an empty example', [good[0], {}], dataset(`examples[1]: has none of messages, prompt and completion, or tokens and mask: ${kinds}`)],
  ['a null example', [good[0], null],
    dataset('examples[1]: expected { messages }, { prompt, completion } or { tokens, mask } object for examples[1] but received null')],
  ['longer than the window', [good[0], { prompt: 'Once upon a time '.repeat(80), completion: ' the end' }],
    dataset('examples[1]: is 326 tokens long, longer than the window of 256 tokens: raise the window option (the model was trained on 2048), or shorten or split the example')],
  ['a token id outside the vocabulary', [good[0], good[0], { tokens: [1, 2, 512], mask: [0, 1, 1] }],
    dataset('examples[2]: expected token id between 0 and 511 for tokens[2] but received 512 of type number')],
  ['a negative token id', [{ tokens: [1, -2, 3], mask: [0, 1, 1] }],
    dataset('examples[0]: expected token id between 0 and 511 for tokens[1] but received -2 of type number')],
  ['a mask value of 2', [{ tokens: [1, 2, 3], mask: [0, 2, 1] }], dataset('examples[0]: expected 0, 1, true or false for mask[1] but received 2 of type number')],
  ['no token to learn', [{ tokens: [1, 2, 3], mask: [1, 0, 0] }],
    dataset('examples[0]: no token is learned: the mask is 0 at every token after the first (mask[i] = 1 marks token i as one to learn)')],
  ['a conversation without an assistant turn', [good[0], { messages: [{ role: 'user', content: 'hi' }] }],
    dataset('examples[1]: has no assistant message, so nothing to learn: end the conversation with { role: "assistant", content: <the answer> }')],
  ['both shapes at once', [{ prompt: 'a', completion: 'b', messages: [{ role: 'user', content: 'hi' }] }],
    dataset(`examples[0]: has both messages and prompt, which belong to different kinds of example: ${kinds}`)],
  ['an empty completion', [good[0], { prompt: 'a', completion: '' }], dataset('examples[1]: the completion "" adds no token to the prompt: give a completion to learn')],
];

test('bad data: INVALID_DATASET naming the example, before any trainer or adapter is made', async () => {
  const asked = trainersAsked;
  const before = binding().testing.liveHandles();
  for (const [what, examples, expected] of badData) {
    const job = model.trainLora(examples as never, { epochs: 1, out: join(dir, 'never.gguf') });
    assert.equal(await failureOf(() => job.result), expected, what);
    // Iterating the job throws the same error.
    assert.equal(await failureOf(async () => {
      for await (const _ of job) assert.unreachable('no event');
    }), expected, what);
  }
  assert.is(trainersAsked, asked, 'no trainer was asked for');
  assert.equal(binding().testing.liveHandles(), before, 'no native trainer or adapter was made');
  // And LoraTrainer.train() checks its data before its first step.
  const trainer = await within(model.createLoraTrainer({ rank: 2, targets: ['attn_q'], threads: 1 }));
  try {
    assert.equal(await failureOf(() => trainer.train([good[0], {}] as never).result), badData[2]![2]);
    assert.is(trainer.steps, 0);
  } finally {
    await trainer.dispose();
    await trainer.adapter.dispose();
  }
});

test('resuming from a missing, corrupt, non-GGUF or wrong-base adapter file', async () => {
  const missing = join(dir, 'missing.gguf');
  assert.equal(await failureOf(() => model.trainLora(good, { resumeFrom: missing }).result),
    { code: 'IO_ERROR', message: `the LoRA adapter ${missing} cannot be read: ENOENT: no such file or directory, open '${missing}'` });
  const truncated = join(dir, 'truncated.gguf');
  writeFileSync(truncated, Buffer.concat([Buffer.from('GGUF'), Buffer.from([3, 0, 0, 0]), Buffer.alloc(7, 0xff)]));
  assert.equal(await failureOf(() => model.trainLora(good, { resumeFrom: truncated }).result), {
    code: 'INVALID_ADAPTER',
    message: `the LoRA adapter ${truncated} cannot be read: truncated GGUF header: needed 20 bytes at offset 4 while reading the header counts, but the file is only 15 bytes`,
  });
  const text = join(dir, 'text.gguf');
  writeFileSync(text, 'not a model at all');
  assert.equal(await failureOf(() => model.trainLora(good, { resumeFrom: text }).result),
    { code: 'INVALID_ADAPTER', message: `the LoRA adapter ${text} cannot be read: it is not a GGUF file` });
  // A valid adapter, made for another llama model.
  const tiny = await tinyModel();
  const foreign = join(dir, 'foreign.gguf');
  await writeNewAdapter(foreign, tiny, await planAdapter(tiny, { rank: 2, alpha: 4, targets: ['attn_q'] }), 1);
  assert.equal(await failureOf(() => model.trainLora(good, { resumeFrom: foreign }).result), {
    code: 'INVALID_ADAPTER',
    message: `cannot resume training from the LoRA adapter ${foreign}: it does not fit this model: it was made for another model ("understudy-random-llama"): that model's tensors or vocabulary differ from this one's`,
  });
  assert.equal(await failureOf(() => model.createLoraTrainer({ resumeFrom: foreign })), {
    code: 'INVALID_ADAPTER',
    message: `cannot resume training from the LoRA adapter ${foreign}: it does not fit this model: it was made for another model ("understudy-random-llama"): that model's tensors or vocabulary differ from this one's`,
  });
  assert.is(binding().testing.liveHandles().trainers, 0);
});

let unsupported: Record<string, Outcome>;
const refused = (message: string): Outcome => ({ code: 'TRAINING_UNSUPPORTED', message });

test('unsupported models: each loads and generates, and both ways of training are refused', async () => {
  unsupported = exitedNormally(await inTrainChild('unsupported', 120_000));
  const o = unsupported;
  const architecture = refused('LoRA training supports the llama architecture (Llama, Mistral and their kin) at this llama.cpp version, not \'mistral3\': '
    + 'its graph uses operations without a backward pass (LayerNorm, GELU, soft-capping, fused SwiGLU or experts)');
  const experts = refused('mixture-of-experts models cannot be trained at this llama.cpp version: expert routing (MUL_MAT_ID) has no backward pass');
  // This machine's CPU backend repacks Q4_0 weights for inference (AVX2).
  const repacked = refused('this model cannot be trained as loaded: its weights are repacked for faster CPU inference (blk.0.attn_q.weight is in CPU_REPACK), '
    + 'and repacked weights have no backward pass: load the model with { trainable: true }');
  for (const [name, expected] of [['mistral3', architecture], ['moe', experts], ['repacked', repacked]] as const) {
    assert.equal(o[`${name}.ran`], { ran: 'generates' }, name);
    assert.equal(o[`${name}.createLoraTrainer`], expected, name);
    assert.equal(o[`${name}.trainLora`], expected, name);
    assert.equal(o[`${name}.trainers`], { trainers: 0 }, name);
  }
  // Loaded with { trainable: true }, the same quantized model makes a trainer.
  assert.equal(o['repacked.trainable'], { ok: 'trainer made' });
});

test('a window whose logits could not be allocated: INVALID_ARGUMENT before any graph', () => {
  const o = unsupported;
  assert.ok(o, 'the child ran (see the test before)');
  const tooWide = invalid('a window of 8192 tokens needs 4008 MiB per logits tensor with this model\'s 128256-token vocabulary: use a smaller window');
  assert.equal(o['window.createLoraTrainer'], tooWide);
  assert.equal(o['window.trainLora'], tooWide);
  assert.equal(o['window.trainers'], { trainers: 0 });
});

// Found at 94d8bc8, fixed since: LoraTrainer.create() loads the new adapter before the native
// check for vocab-only models runs, and llama.cpp refuses the adapter of a model
// without weights: INVALID_ADAPTER "... LoRA tensor 'blk.0.attn_output.weight'
// does not exist in base model (hint: maybe wrong base model?)".
test('a vocab-only model: TRAINING_UNSUPPORTED, saying why', () => {
  const o = unsupported;
  assert.ok(o, 'the child ran (see the test before)');
  const vocabOnly = refused('a vocab-only model cannot be trained: load it without vocabOnly');
  assert.equal(o['vocabOnly.ran'], { ran: 'vocab only' });
  assert.equal(o['vocabOnly.createLoraTrainer'], vocabOnly);
  assert.equal(o['vocabOnly.trainLora'], vocabOnly);
  assert.equal(o['vocabOnly.trainers'], { trainers: 0 });
});

test.run();
