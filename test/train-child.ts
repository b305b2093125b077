// Training scenarios that could kill the process if a check were missing (a
// ggml assert, a use-after-free), run in a child process of their own:
// `node --import tsx test/train-child.ts <scenario>` prints one JSON line with
// what each call did. The tests (train-native-args, train-errors, train-abort)
// spawn it and check both the outcomes and that the child exited normally.
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { GgmlType, GgufValueType } from '../src/gguf/format.js';
import { loadModel, type Model } from '../src/index.js';
import { binding, type NativeAbortFlag, type NativeTrainer } from '../src/llama/binding.js';
import { planAdapter, writeNewAdapter } from '../src/llama/lora-file.js';
import type { LoraAdapter } from '../src/llama/lora.js';
import { makeLoraAdapter } from '../scripts/make-lora.js';
import { cloneRaw, parseRaw, relayout, serializeRaw, type RawModel, type RawTensor } from './fuzz/raw-gguf.js';
import { fixtureDir, run, storiesModel, tinyModel, vocabDir, within } from './helpers.js';

export interface TrainChildResult {
  code: number | null;
  signal: string | null;
  /** What each call of the scenario did, by name, as far as the child got; `done` once it finished. */
  out: Record<string, Outcome>;
  stderr: string;
}

/** What one call did: its error's code and message, or what it returned (a few facts of it). */
export interface Outcome {
  code?: unknown;
  message?: unknown;
  [fact: string]: unknown;
}

const self = fileURLToPath(import.meta.url);

/** The scenario's outcomes, once the child is known to have ended normally (no signal, exit 0, scenario done). */
export function exitedNormally(r: TrainChildResult): Record<string, Outcome> {
  const got = Object.keys(r.out).filter((k) => k !== 'done').pop();
  assert.is(r.signal, null, `the child died by ${r.signal} after "${got}": ${r.stderr}`);
  assert.is(r.code, 0, `the child exited with ${r.code} after "${got}": ${r.stderr}`);
  assert.equal(r.out.done, { ok: true }, 'the child finished its scenario');
  return r.out;
}

export async function inTrainChild(scenario: string, timeoutMs = 120_000): Promise<TrainChildResult> {
  const r = await run(process.execPath, ['--expose-gc', '--import', 'tsx', self, scenario], timeoutMs);
  // One line per outcome, printed as it happens: a child that dies still tells how far it got.
  const out: Record<string, Outcome> = {};
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      Object.assign(out, JSON.parse(line));
    } catch {
      // not one of ours
    }
  }
  return { code: r.code, signal: r.signal, out, stderr: r.stderr.slice(-3000) };
}

function failure(err: unknown): Outcome {
  const e = err as { code?: unknown; message?: unknown };
  return { code: e?.code ?? null, message: e?.message };
}

/** Runs a call that may throw synchronously or reject; `describe` turns a success into facts. */
async function attempt<T>(call: () => T | Promise<T>, describe: (value: T) => Outcome = () => ({ ok: true })): Promise<Outcome> {
  try {
    return describe(await call());
  } catch (err) {
    return failure(err);
  }
}

/** Outcomes set on it are printed at once (synchronously), one JSON line each. */
function recorder(): Record<string, Outcome> {
  return new Proxy({} as Record<string, Outcome>, {
    set(target, key, value) {
      target[key as string] = value;
      writeSync(1, JSON.stringify({ [key as string]: value }) + '\n');
      return true;
    },
  });
}

const WINDOW = 256;

/** `n` windows of valid data for a vocabulary of `vocab` tokens, every position counted. */
export function windows(n: number, vocab: number): { tokens: Int32Array; labels: Int32Array; mask: Uint8Array } {
  const tokens = new Int32Array(n * WINDOW);
  for (let i = 0; i < tokens.length; i++) tokens[i] = 1 + ((i * 7) % (vocab - 1));
  const labels = new Int32Array(n * WINDOW);
  for (let i = 0; i < labels.length; i++) labels[i] = tokens[(i + 1) % tokens.length]!;
  return { tokens, labels, mask: new Uint8Array(n * WINDOW).fill(1) };
}

/** A new (B = 0) adapter file for `modelPath`, loaded into `model`. */
async function newAdapter(model: Model, dir: string, name: string, targets = ['attn_q', 'ffn_up']): Promise<LoraAdapter> {
  const path = join(dir, `${name}.gguf`);
  await writeNewAdapter(path, model.path, await planAdapter(model.path, { rank: 2, alpha: 4, targets }), 1);
  return model.loadLora(path);
}

const trainerFacts = (t: NativeTrainer) => {
  void t.dispose();
  return { ok: 'trainer made' };
};

/** The binding's trainer called with hostile arguments: each must give a coded error. */
async function nativeArgs(dir: string): Promise<void> {
  const model = await loadModel(storiesModel);
  const other = await loadModel(storiesModel);
  const vocabOnly = await loadModel(storiesModel, { vocabOnly: true });
  const native = model._native();
  const adapter = await newAdapter(model, dir, 'a');
  const otherAdapter = await newAdapter(other, dir, 'b');
  const disposedAdapter = (await newAdapter(model, dir, 'c'))._native();
  await disposedAdapter.dispose();
  const vocab = model.info.vocab.size;
  const out = recorder();
  const create = (adapterArg: unknown, options: unknown) =>
    attempt(() => (native.createTrainer as (...a: unknown[]) => Promise<NativeTrainer>)(adapterArg, options), trainerFacts);

  // createTrainer: the adapter argument.
  out.adapterUndefined = await create(undefined, { window: WINDOW, threads: 1 });
  out.adapterObject = await create({}, { window: WINDOW, threads: 1 });
  out.adapterModel = await create(native, { window: WINDOW, threads: 1 });
  out.adapterDisposed = await create(disposedAdapter, { window: WINDOW, threads: 1 });
  out.adapterOfOtherModel = await create(otherAdapter._native(), { window: WINDOW, threads: 1 });
  out.vocabOnlyModel = await attempt(() => vocabOnly._native().createTrainer(adapter._native(), { window: WINDOW, threads: 1 } as never), trainerFacts);
  // createTrainer: adapters the TypeScript side never makes (planFromAdapter refuses
  // them in resume files), as scripts/make-lora.ts writes them.
  for (const [name, targets] of [['adapterAttnV', ['attn_v']], ['adapterOutput', ['output']]] as const) {
    const path = join(dir, `${name}.gguf`);
    await makeLoraAdapter({ model: storiesModel, out: path, rank: 2, targets: [...targets] });
    const loaded = await model.loadLora(path);
    out[name] = await create(loaded._native(), { window: WINDOW, threads: 1 });
    await loaded.dispose();
  }
  // createTrainer: the options.
  const a = adapter._native();
  out.optionsString = await create(a, 'x');
  out.windowString = await create(a, { window: 'x' });
  out.window300 = await create(a, { window: 300 });
  out.window0 = await create(a, { window: 0 });
  out.windowHuge = await create(a, { window: 2 ** 20 });
  out.windowNaN = await create(a, { window: NaN });
  out.threads0 = await create(a, { threads: 0 });
  out.threadsFraction = await create(a, { threads: 1.5 });
  out.beta1NaN = await create(a, { beta1: NaN });
  out.beta1Two = await create(a, { beta1: 2 });
  out.beta2Negative = await create(a, { beta2: -1 });
  out.epsInfinity = await create(a, { eps: Infinity });
  out.weightDecayString = await create(a, { weightDecay: 'x' });

  const trainer = await native.createTrainer(a, { window: WINDOW, threads: 1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  const good = windows(1, vocab);
  const rate = new Float32Array([1e-3]);
  const runRaw = (...args: unknown[]) => (trainer.run as (...a: unknown[]) => Promise<unknown>)(...args);
  const runWith = (patch: Partial<Record<'tokens' | 'labels' | 'mask' | 'rates' | 'norm' | 'onStep' | 'abort', unknown>>) =>
    attempt(() => runRaw(
      'tokens' in patch ? patch.tokens : good.tokens, 'labels' in patch ? patch.labels : good.labels,
      'mask' in patch ? patch.mask : good.mask, 'rates' in patch ? patch.rates : rate, 'norm' in patch ? patch.norm : 1,
      'onStep' in patch ? patch.onStep : undefined, 'abort' in patch ? patch.abort : undefined,
    ), (r) => ({ ok: 'ran', steps: (r as { steps: number }).steps }));
  const withValue = (array: Int32Array | Uint8Array, at: number, value: number) => {
    const copy = array.slice();
    copy[at] = value;
    return copy;
  };
  // run: the arrays' types and lengths.
  out.tokensUndefined = await runWith({ tokens: undefined });
  out.tokensPlainArray = await runWith({ tokens: Array.from(good.tokens) });
  out.tokensFloat32 = await runWith({ tokens: new Float32Array(WINDOW) });
  out.tokensUint32 = await runWith({ tokens: new Uint32Array(WINDOW) });
  out.tokensEmpty = await runWith({ tokens: new Int32Array(0), labels: new Int32Array(0), mask: new Uint8Array(0) });
  out.tokensNotWholeWindow = await runWith({ tokens: new Int32Array(300), labels: new Int32Array(300), mask: new Uint8Array(300) });
  out.labelsLonger = await runWith({ labels: windows(2, vocab).labels });
  out.maskShorter = await runWith({ mask: good.mask.subarray(1) });
  const detached = good.tokens.slice();
  structuredClone(detached.buffer, { transfer: [detached.buffer] });
  out.tokensDetached = await runWith({ tokens: detached });
  // run: the values.
  out.tokenNegative = await runWith({ tokens: withValue(good.tokens, 5, -1) });
  out.tokenVocab = await runWith({ tokens: withValue(good.tokens, 255, vocab) });
  out.labelVocab = await runWith({ labels: withValue(good.labels, 7, vocab) });
  out.labelHuge = await runWith({ labels: withValue(good.labels, 0, 2 ** 31 - 1) });
  out.mask2 = await runWith({ mask: withValue(good.mask, 3, 2) });
  out.mask255 = await runWith({ mask: withValue(good.mask, 3, 255) });
  out.ratesWrongLength = await runWith({ rates: new Float32Array(2).fill(1e-3) });
  out.ratesFloat64 = await runWith({ rates: new Float64Array([1e-3]) });
  out.ratesPlainArray = await runWith({ rates: [1e-3] });
  out.rateNaN = await runWith({ rates: new Float32Array([NaN]) });
  out.rateNegative = await runWith({ rates: new Float32Array([-1e-3]) });
  out.rateInfinity = await runWith({ rates: new Float32Array([Infinity]) });
  out.rateZero = await runWith({ rates: new Float32Array([0]) });
  out.normNaN = await runWith({ norm: NaN });
  out.normNegative = await runWith({ norm: -1 });
  out.normInfinity = await runWith({ norm: Infinity });
  out.normString = await runWith({ norm: 'x' });
  out.onStepString = await runWith({ onStep: 'x' });
  out.abortObject = await runWith({ abort: {} });
  out.abortSignal = await runWith({ abort: new AbortController().signal });
  // Valid calls after all of that: a window that counts nothing, an evaluation, two steps.
  out.maskAllZero = await attempt(() => trainer.run(good.tokens, good.labels, new Uint8Array(WINDOW), rate, 1),
    (r) => ({ ok: 'ran', steps: r.steps, counted: r.counted[0], lossIsNaN: Number.isNaN(r.losses[0]) }));
  out.evaluate = await attempt(() => trainer.run(good.tokens, good.labels, good.mask, null, 0),
    (r) => ({ ok: 'ran', steps: r.steps, finite: Number.isFinite(r.losses[0]) }));
  const steps: number[] = [];
  const two = windows(2, vocab);
  out.twoSteps = await attempt(() => trainer.run(two.tokens, two.labels, two.mask, new Float32Array([1e-3, 1e-3]), 1, (i) => steps.push(i)),
    (r) => ({ ok: 'ran', steps: r.steps, finite: Array.from(r.losses).every(Number.isFinite), reported: steps.length }));

  // BUSY: a second run, or reading the adapter, while a run is in flight.
  const three = windows(3, vocab);
  const running = trainer.run(three.tokens, three.labels, three.mask, new Float32Array(3).fill(1e-3), 1);
  out.runWhileRunning = await runWith({});
  out.readWhileRunning = await attempt(() => trainer.readAdapter());
  out.firstRun = await attempt(() => running, (r) => ({ ok: 'ran', steps: r.steps }));
  out.readAfter = await attempt(() => trainer.readAdapter(), (ts) => ({
    ok: 'read', names: ts.map((t) => t.name).slice(0, 2), shapes: ts.map((t) => t.ne.join('x')).slice(0, 2), count: ts.length,
  }));

  // Disposing while a run is in flight: it stops after its step; later calls are DISPOSED.
  const many = windows(8, vocab);
  const flag: NativeAbortFlag = new (binding().AbortFlag)();
  let disposal: Promise<void> | undefined;
  const inFlight = trainer.run(many.tokens, many.labels, many.mask, new Float32Array(8).fill(1e-3), 1, () => {
    disposal ??= trainer.dispose();
  }, flag);
  out.disposeWhileRunning = await attempt(() => inFlight, (r) => ({ ok: 'ran', aborted: r.aborted, stoppedEarly: r.steps < 8 }));
  await disposal;
  out.runAfterDispose = await runWith({});
  out.readAfterDispose = await attempt(() => trainer.readAdapter());
  out.disposeTwice = await attempt(() => trainer.dispose());

  // A trainer outliving its adapter's and its model's JS handles: it keeps
  // their memory (their dispose() settles once it is gone) and still runs.
  const late = await native.createTrainer(a, { window: WINDOW, threads: 1 } as never);
  const adapterGone = adapter.dispose();
  out.runAfterAdapterDisposed = await attempt(() => late.run(good.tokens, good.labels, good.mask, rate, 1), (r) => ({ ok: 'ran', steps: r.steps }));
  const modelGone = model.dispose();
  out.runAfterModelDisposed = await attempt(() => late.run(good.tokens, good.labels, good.mask, rate, 1), (r) => ({ ok: 'ran', steps: r.steps }));
  out.freedWithTrainer = await attempt(async () => {
    await late.dispose();
    await within(Promise.all([adapterGone, modelGone]), 30_000, 'the model and adapter release');
    return binding().testing.liveHandles();
  }, (h) => ({ ok: 'freed', ...h }));
  await other.dispose();
  await vocabOnly.dispose();
}

/**
 * Two trainers on one adapter: each marks the adapter's tensors as its
 * parameters, and the one disposed first must not leave the other without.
 */
async function sharedAdapter(dir: string): Promise<void> {
  const out = recorder();
  const model = await loadModel(storiesModel);
  const adapter = (await newAdapter(model, dir, 'shared'))._native();
  const options = { window: WINDOW, threads: 1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
  const good = windows(1, model.info.vocab.size);
  const rate = new Float32Array([1e-3]);
  const first = await native(model).createTrainer(adapter, options);
  out.firstRuns = await attempt(() => first.run(good.tokens, good.labels, good.mask, rate, 1), (r) => ({ ok: 'ran', steps: r.steps }));
  out.secondTrainer = await attempt(async () => {
    const second = await native(model).createTrainer(adapter, options);
    const r = await second.run(good.tokens, good.labels, good.mask, rate, 1);
    await second.dispose();
    return r;
  }, (r) => ({ ok: 'ran', steps: r.steps }));
  out.firstAfterSecondDisposed = await attempt(() => first.run(good.tokens, good.labels, good.mask, rate, 1),
    (r) => ({ ok: 'ran', steps: r.steps, finite: Number.isFinite(r.losses[0]) }));
  await first.dispose();
  await model.dispose();
}

/** `count` { tokens, mask } examples of 200 tokens: one training window (one step) each. */
export function longExamples(count: number, vocab: number): Array<{ tokens: number[]; mask: number[] }> {
  return Array.from({ length: count }, (_, e) => ({
    tokens: Array.from({ length: 200 }, (_, i) => 1 + ((e * 31 + i * 7) % (vocab - 1))),
    mask: Array.from({ length: 200 }, (_, i) => (i > 0 ? 1 : 0)),
  }));
}

const quick = { rank: 2, targets: ['attn_q'], evalSplit: 0, threads: 1 };

/** Resolves at the job's first step event (or when it ends without one). */
async function firstStep(job: AsyncIterable<{ type: string }>): Promise<void> {
  for await (const event of job) if (event.type === 'step') return;
}

/** Iterates every event of the job: throws what the job failed with. */
async function drain(job: AsyncIterable<{ type: string }>): Promise<number> {
  let events = 0;
  for await (const _ of job) events++;
  return events;
}

/** Models and trainers disposed while they train: DISPOSED, no adapter file, nothing left alive. */
async function disposal(dir: string): Promise<void> {
  const out = recorder();
  const handles = () => binding().testing.liveHandles();
  const model = await loadModel(storiesModel);
  const examples = longExamples(8, model.info.vocab.size);

  // The model disposed during model.trainLora().
  const path = join(dir, 'disposed-model.gguf');
  const job = model.trainLora(examples, { ...quick, epochs: 2, out: path });
  await firstStep(job);
  const modelGone = model.dispose();
  out.modelDisposedResult = await attempt(() => job.result);
  out.modelDisposedIterate = await attempt(() => drain(job));
  await within(modelGone, 30_000, 'the model disposal');
  out.modelDisposedFile = { exists: existsSync(path), files: readdirSync(dir).length };
  out.modelDisposedHandles = { ...handles() };

  // A LoraTrainer disposed while it trains, then used again.
  const second = await loadModel(storiesModel);
  const trainer = await second.createLoraTrainer(quick);
  const run = trainer.train(examples, { ...quick, epochs: 2 });
  await firstStep(run);
  const trainerGone = trainer.dispose();
  out.trainerDisposedResult = await attempt(() => run.result);
  await within(trainerGone, 30_000, 'the trainer disposal');
  out.trainerDisposedTrainAgain = await attempt(() => trainer.train(examples, quick).result);
  out.trainerDisposedSave = await attempt(() => trainer.save(join(dir, 'after-dispose.gguf')));
  out.trainerDisposedHandles = { ...handles() };
  // Its adapter stays loaded (and usable) until disposed itself.
  out.adapterAfterTrainer = await attempt(async () => {
    const ctx = await second.createContext({ contextSize: 64 });
    ctx.setLora(trainer.adapter, 1);
    return (await ctx.complete('Once', { maxTokens: 2, temperature: 0 })).text;
  }, (text) => ({ ok: 'generated', nonEmpty: text.length > 0 }));

  // The adapter disposed while its trainer trains: the run goes on (the trainer keeps
  // the adapter's memory) and the adapter is freed with the trainer.
  const third = await second.createLoraTrainer(quick);
  const adapterRun = third.train(examples.slice(0, 3), { ...quick, epochs: 1 });
  await firstStep(adapterRun);
  let adapterFreed = false;
  const adapterGone = third.adapter.dispose().then(() => { adapterFreed = true; });
  out.adapterDisposedResult = await attempt(() => adapterRun.result, (r) => ({ ok: 'trained', steps: r.steps }));
  out.adapterDisposedSave = await attempt(() => third.save(join(dir, 'adapter-disposed.gguf')), () => ({ ok: 'saved' }));
  out.adapterFreedBeforeTrainer = { freed: adapterFreed };
  await third.dispose();
  await within(adapterGone, 30_000, 'the adapter disposal');

  // The model disposed while a trainer is being made.
  const making = second.createLoraTrainer(quick);
  const secondGone = second.dispose();
  out.modelDisposedWhileCreating = await attempt(() => making, (t) => {
    void t.dispose();
    return { ok: 'trainer made' };
  });
  await within(secondGone, 30_000, 'the model disposal');

  // A trainer nobody disposes is freed by the garbage collector.
  const fourth = await loadModel(storiesModel);
  await (async () => {
    const forgotten = await fourth.createLoraTrainer(quick);
    await forgotten.train(examples.slice(0, 1), { ...quick, epochs: 1 }).result;
  })();
  const before = handles().trainers;
  for (let i = 0; i < 20 && handles().trainers > 0; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  out.collected = { before, after: handles().trainers };
  await fourth.dispose();
  out.finalHandles = { ...handles() };
}

const native = (model: Model) => model._native();

// stories260K with its general.architecture (and keys) renamed: mistral3 loads
// with llama's tensors and runs, but is not an architecture training supports.
export async function renamedArchitecture(path: string, arch: string): Promise<void> {
  const m = cloneRaw(await parseRaw(storiesModel));
  for (const e of m.kvs) e.key = e.key.replace(/^llama\./, `${arch}.`);
  m.kvs.find((k) => k.key === 'general.architecture')!.value = arch;
  writeFileSync(path, serializeRaw(m));
}

// stories260K as a mixture of two experts: each FFN matrix becomes a stack of
// two (zero) experts with a router, which llama.cpp's llama graph runs with MUL_MAT_ID.
export async function mixtureOfExperts(path: string): Promise<void> {
  const m: RawModel = cloneRaw(await parseRaw(storiesModel));
  m.kvs.push({ key: 'llama.expert_count', type: GgufValueType.UINT32, value: 2 }, { key: 'llama.expert_used_count', type: GgufValueType.UINT32, value: 1 });
  const tensors: RawTensor[] = [];
  for (const t of m.tensors) {
    const ffn = /^blk\.(\d+)\.ffn_(gate|up|down)\.weight$/.exec(t.name);
    if (!ffn) {
      tensors.push(t);
      continue;
    }
    tensors.push({ ...t, name: `blk.${ffn[1]}.ffn_${ffn[2]}_exps.weight`, dims: [...t.dims, 2n], source: undefined });
    if (ffn[2] === 'gate') tensors.push({ name: `blk.${ffn[1]}.ffn_gate_inp.weight`, dims: [t.dims[0]!, 2n], type: GgmlType.F32, offset: 0n });
  }
  m.tensors = tensors;
  relayout(m);
  writeFileSync(path, serializeRaw(m));
}

/** Models that load and run but must not train: each refused before any graph, the process intact. */
async function unsupported(dir: string): Promise<void> {
  const out = recorder();
  const refusal = async (path: string, load: object, options: object) => {
    const model = await loadModel(path, load);
    try {
      const ran = model.info.vocabOnly ? 'vocab only' : await (async () => {
        const ctx = await model.createContext({ contextSize: 64 });
        return (await ctx.complete('Once', { maxTokens: 2, temperature: 0 })).text.length > 0 ? 'generates' : 'empty';
      })();
      const made = await attempt(() => model.createLoraTrainer(options), () => ({ ok: 'trainer made' }));
      const job = await attempt(() => model.trainLora([{ prompt: 'Once upon', completion: ' a time' }], { ...options, epochs: 1 }).result, () => ({ ok: 'trained' }));
      return { ran, createLoraTrainer: made, trainLora: job, handles: binding().testing.liveHandles() };
    } finally {
      await model.dispose();
    }
  };
  const flat = (o: Awaited<ReturnType<typeof refusal>>, name: string) => {
    out[`${name}.ran`] = { ran: o.ran };
    out[`${name}.createLoraTrainer`] = o.createLoraTrainer;
    out[`${name}.trainLora`] = o.trainLora;
    out[`${name}.trainers`] = { trainers: o.handles.trainers };
  };
  const mistral3 = join(dir, 'mistral3.gguf');
  await renamedArchitecture(mistral3, 'mistral3');
  flat(await refusal(mistral3, {}, { rank: 2 }), 'mistral3');
  const moe = join(dir, 'moe.gguf');
  await mixtureOfExperts(moe);
  // Its FFN matrices are expert stacks: only attention can be a target.
  flat(await refusal(moe, {}, { rank: 2, targets: ['attn_q'] }), 'moe');
  const q4 = await tinyModel('q4-for-refusal', { type: 'Q4_0', embdType: 'Q8_0' });
  flat(await refusal(q4, {}, { rank: 2 }), 'repacked');
  flat(await refusal(storiesModel, { vocabOnly: true }, { rank: 2 }), 'vocabOnly');
  // A window whose logits (window × vocabulary F32) llama.cpp could not allocate: a
  // 128256-token vocabulary at 8192 tokens is 4 GiB per tensor.
  const bpe = await tinyModel('bpe-vocab', { vocab: join(vocabDir, 'ggml-vocab-llama-bpe.gguf'), embdType: 'Q8_0' });
  const wide = await loadModel(bpe, { trainable: true });
  out['window.createLoraTrainer'] = await attempt(() => wide.createLoraTrainer({ rank: 2, window: 8192 }), (t) => {
    void t.dispose();
    return { ok: 'trainer made' };
  });
  out['window.trainLora'] = await attempt(() => wide.trainLora([{ prompt: 'Once upon', completion: ' a time' }], { rank: 2, window: 8192, epochs: 1 }).result,
    () => ({ ok: 'trained' }));
  out['window.trainers'] = { trainers: binding().testing.liveHandles().trainers };
  await wide.dispose();
  // The same quantized model, loaded for training, makes a trainer.
  const trainable = await loadModel(q4, { trainable: true });
  out['repacked.trainable'] = await attempt(() => trainable.createLoraTrainer({ rank: 2 }), (t) => {
    void t.dispose();
    return { ok: 'trainer made' };
  });
  await trainable.dispose();
}

const scenarios: Record<string, (dir: string) => Promise<void>> = { nativeArgs, sharedAdapter, unsupported, disposal };

async function main(name: string): Promise<void> {
  const scenario = scenarios[name];
  if (!scenario) throw new Error(`unknown scenario ${name}`);
  const dir = mkdtempSync(join(tmpdir(), 'understudy-train-child-'));
  try {
    await scenario(dir);
    writeSync(1, JSON.stringify({ done: { ok: true } }) + '\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    // Models generated by tinyModel() for this child alone.
    rmSync(fixtureDir, { recursive: true, force: true });
  }
  process.exit(0);
}

if (process.argv[1] === self) await main(process.argv[2] ?? '');
