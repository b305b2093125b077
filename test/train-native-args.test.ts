// The training binding called directly, past every TypeScript check
// (model._native().createTrainer(), NativeTrainer.run() / readAdapter()), with
// hostile arguments: each must give a coded error, never a ggml assert, and the
// trainer must still train afterwards. Run in child processes (test/train-child.ts):
// a missing check would kill the process, and the child's exit status shows it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isErrorCode } from '../src/errors.js';
import { exitedNormally, inTrainChild, type Outcome } from './train-child.js';

const invalid = (message: string): Outcome => ({ code: 'INVALID_ARGUMENT', message });
const notAdapter = invalid('Expected LoraAdapter for adapter but received another value');
const windowsMismatch = invalid('tokens, labels and mask must hold the same whole number of 256-token windows');
const outsideVocab = (i: number) => invalid(`token or label at index ${i} is outside the vocabulary (0..511)`);
const badRate = invalid('every learning rate must be a positive finite number');
const badNorm = invalid('Expected non-negative finite number for maxGradNorm');
const busy: Outcome = { code: 'BUSY', message: 'the trainer is already running a step or reading its adapter' };
const disposed: Outcome = { code: 'DISPOSED', message: 'the trainer has been disposed' };

let nativeArgs: Record<string, Outcome>;
test.before(async () => {
  nativeArgs = exitedNormally(await inTrainChild('nativeArgs', 180_000));
});

test('createTrainer: a wrong, disposed or foreign adapter, a vocab-only model', () => {
  const o = nativeArgs;
  assert.equal(o.adapterUndefined, notAdapter);
  assert.equal(o.adapterObject, notAdapter);
  assert.equal(o.adapterModel, notAdapter);
  assert.equal(o.adapterDisposed, { code: 'DISPOSED', message: 'the LoRA adapter has been disposed' });
  assert.equal(o.adapterOfOtherModel, invalid('the adapter was loaded for another model'));
  assert.equal(o.vocabOnlyModel, { code: 'TRAINING_UNSUPPORTED', message: 'a vocab-only model cannot be trained: load it without vocabOnly' });
});

test('createTrainer: adapters of attn_v or of a matrix outside the layers: TRAINING_UNSUPPORTED', () => {
  const o = nativeArgs;
  // Which tensor is named first depends on llama.cpp's map order: the message is checked up to it.
  assert.is(o.adapterAttnV?.code, 'TRAINING_UNSUPPORTED');
  assert.match(String(o.adapterAttnV?.message), /^adapter tensor blk\.\d+\.attn_v\.weight\.lora_[ab] adapts attn_k or attn_v, which get no gradient at this llama\.cpp version \(attention reads K and V back from the cache\)$/);
  assert.is(o.adapterOutput?.code, 'TRAINING_UNSUPPORTED');
  assert.match(String(o.adapterOutput?.message), /^adapter tensor output\.weight\.lora_[ab] is outside the repeating layers: only their matrices can be trained$/);
});

test('createTrainer: options of the wrong type or out of range', () => {
  const o = nativeArgs;
  assert.equal(o.optionsString, invalid('Expected object for options but received another value'));
  assert.equal(o.windowString, invalid('Expected number for window'));
  assert.equal(o.window300, invalid('Expected a multiple of 256 for window'));
  for (const k of ['window0', 'windowHuge', 'windowNaN']) assert.equal(o[k], invalid('Expected integer in range for window'), k);
  for (const k of ['threads0', 'threadsFraction']) assert.equal(o[k], invalid('Expected integer in range for threads'), k);
  assert.equal(o.beta1NaN, invalid('Expected number in range for beta1'));
  assert.equal(o.beta1Two, invalid('Expected number in range for beta1'));
  assert.equal(o.beta2Negative, invalid('Expected number in range for beta2'));
  assert.equal(o.epsInfinity, invalid('Expected number in range for eps'));
  assert.equal(o.weightDecayString, invalid('Expected number for weightDecay'));
});

test('run: arrays of the wrong type, empty, detached or of mismatched lengths', () => {
  const o = nativeArgs;
  for (const k of ['tokensUndefined', 'tokensPlainArray', 'tokensFloat32', 'tokensUint32']) {
    assert.equal(o[k], invalid('Expected typed array for tokens'), k);
  }
  for (const k of ['tokensEmpty', 'tokensNotWholeWindow', 'labelsLonger', 'maskShorter', 'tokensDetached']) {
    assert.equal(o[k], windowsMismatch, k);
  }
  assert.equal(o.ratesWrongLength, invalid('learningRates must hold one rate per window'));
  assert.equal(o.ratesFloat64, invalid('Expected typed array for learningRates'));
  assert.equal(o.ratesPlainArray, invalid('Expected typed array for learningRates'));
});

test('run: token and label ids outside the vocabulary, mask values above 1', () => {
  const o = nativeArgs;
  assert.equal(o.tokenNegative, outsideVocab(5));
  assert.equal(o.tokenVocab, outsideVocab(255));
  assert.equal(o.labelVocab, outsideVocab(7));
  assert.equal(o.labelHuge, outsideVocab(0));
  assert.equal(o.mask2, invalid('mask entries must be 0 or 1'));
  assert.equal(o.mask255, invalid('mask entries must be 0 or 1'));
});

test('run: NaN, negative, infinite or zero learning rates; NaN, negative or infinite maxGradNorm', () => {
  const o = nativeArgs;
  for (const k of ['rateNaN', 'rateNegative', 'rateInfinity', 'rateZero']) assert.equal(o[k], badRate, k);
  for (const k of ['normNaN', 'normNegative', 'normInfinity']) assert.equal(o[k], badNorm, k);
});

test('run: onStep and abort of the wrong type', () => {
  const o = nativeArgs;
  assert.equal(o.onStepString, invalid('Expected function for onStep'));
  assert.equal(o.abortObject, invalid('Expected AbortFlag for abort but received another value'));
  // An AbortSignal is not the binding's AbortFlag.
  assert.equal(o.abortSignal, invalid('Expected AbortFlag for abort but received another value'));
});

// Found at 94d8bc8, fixed since: native/trainer.cpp Trainer::Run reads maxGradNorm only when
// it is a number and takes anything else as 0 (clipping off), without an error.
test('run: a maxGradNorm that is not a number is refused', () => {
  assert.equal(nativeArgs.normString, badNorm);
});

test('after every refusal the trainer still trains, evaluates and reads its adapter', () => {
  const o = nativeArgs;
  // A window that counts no position: a step with a NaN loss over 0 tokens, not an error.
  assert.equal(o.maskAllZero, { ok: 'ran', steps: 1, counted: 0, lossIsNaN: true });
  assert.equal(o.evaluate, { ok: 'ran', steps: 1, finite: true });
  assert.equal(o.twoSteps, { ok: 'ran', steps: 2, finite: true, reported: 2 });
  assert.equal(o.firstRun, { ok: 'ran', steps: 3 });
  // attn_q and ffn_up of stories260K's 5 layers, rank 2: 10 A/B pairs.
  assert.equal(o.readAfter, {
    ok: 'read', names: ['blk.0.attn_q.weight.lora_a', 'blk.0.attn_q.weight.lora_b'], shapes: ['64x2', '2x64'], count: 20,
  });
});

test('BUSY: a second run, or readAdapter, while a run is in flight', () => {
  assert.equal(nativeArgs.runWhileRunning, busy);
  assert.equal(nativeArgs.readWhileRunning, busy);
});

test('dispose during a run stops it after its step; later calls are DISPOSED', () => {
  const o = nativeArgs;
  assert.equal(o.disposeWhileRunning, { ok: 'ran', aborted: true, stoppedEarly: true });
  assert.equal(o.runAfterDispose, disposed);
  assert.equal(o.readAfterDispose, disposed);
  assert.equal(o.disposeTwice, { ok: true });
});

test('a trainer keeps its adapter and model alive past their dispose(), and frees them with itself', () => {
  const o = nativeArgs;
  assert.equal(o.runAfterAdapterDisposed, { ok: 'ran', steps: 1 });
  assert.equal(o.runAfterModelDisposed, { ok: 'ran', steps: 1 });
  // What is left is the child's other model, its vocab-only model and the other model's adapter.
  assert.equal(o.freedWithTrainer, { ok: 'freed', models: 2, contexts: 0, adapters: 1, trainers: 0 });
});

// Found at 94d8bc8 (the child died of SIGABRT), fixed since: two trainers on one adapter. Disposing
// the second clears the adapter tensors' PARAM flag (~TrainerHandle), and the first
// one's next step reaches GGML_ASSERT(any_params && "no trainable parameters found")
// in ggml_build_backward_expand.
test('two trainers on one adapter: disposing one leaves the other training (or the second is refused)', async () => {
  const r = await inTrainChild('sharedAdapter', 120_000);
  assert.equal(r.out.firstRuns, { ok: 'ran', steps: 1 });
  const o = exitedNormally(r);
  if (o.secondTrainer?.code !== undefined) {
    // Refusing a second trainer on an adapter already in training, with a code, is as good.
    assert.ok(isErrorCode(o.secondTrainer.code), `an error code: ${JSON.stringify(o.secondTrainer)}`);
  } else {
    assert.equal(o.secondTrainer, { ok: 'ran', steps: 1 });
  }
  assert.equal(o.firstAfterSecondDisposed, { ok: 'ran', steps: 1, finite: true });
});

test.run();
