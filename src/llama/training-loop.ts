// One training run over a trainer's session: examples are tokenized and split,
// shuffled and packed into windows per epoch, and sent to the native trainer one
// epoch at a time (every step off the main thread, progress back through a
// thread-safe function); after each epoch the held-out windows are evaluated.
import { UnderstudyError, abortedError, callNative } from '../errors.js';
import { binding, type NativeRunResult, type NativeTrainer } from './binding.js';
import type { Model } from './model.js';
import { tokenizeExamples, type TokenizedExample } from './training-data.js';
import type { TrainingEvent, TrainingResult } from './training-job.js';
import { learningRates, type RunSettings } from './training-options.js';
import { packWindows, shuffled, splitForEval, type TrainingWindows } from './training-windows.js';

export interface PreparedData {
  train: TokenizedExample[];
  eval: TokenizedExample[];
  /** Windows of each epoch (the training examples reshuffled every epoch). */
  epochs: TrainingWindows[];
  evalWindows: TrainingWindows | undefined;
  steps: number;
}

/** Tokenizes, splits and packs: every bad example is refused here, before any training. */
export function prepareData(model: Model, examples: unknown, window: number, s: RunSettings): PreparedData {
  const tokenized = tokenizeExamples(model, examples, { window, template: s.template });
  const { train, eval: held } = splitForEval(tokenized, s.evalSplit, s.seed);
  const pad = padToken(model);
  const epochs: TrainingWindows[] = [];
  for (let e = 0; e < s.epochs; e++) epochs.push(packWindows(shuffled(train, (s.seed + e) >>> 0), window, pad));
  const evalWindows = held.length > 0 ? packWindows(held, window, pad) : undefined;
  return { train, eval: held, epochs, evalWindows, steps: epochs.reduce((n, w) => n + w.count, 0) };
}

// Padding positions never count, so any token in the vocabulary does.
export function padToken(model: Model): number {
  const special = model.info.vocab.special;
  return special.pad ?? special.eos ?? 0;
}

export interface RunState {
  native: () => NativeTrainer;
  window: number;
  /** Whether the trainer was disposed (an ended run then fails with DISPOSED, not ABORTED). */
  disposed: () => boolean;
}

export async function runEpochs(
  state: RunState, data: PreparedData, s: RunSettings, emit: (e: TrainingEvent) => void, signal: AbortSignal,
): Promise<Omit<TrainingResult, 'adapter'>> {
  const started = performance.now();
  const rates = learningRates(data.steps, s);
  const trainLoss: number[] = [];
  const evalLoss: number[] = [];
  let step = 0;
  let trainSeconds = 0;
  let countedTokens = 0;
  let clippedSteps = 0;
  let realTokens = 0;
  const speed = () => (trainSeconds > 0 ? (step * state.window) / trainSeconds : 0);
  const eta = () => (step > 0 ? ((data.steps - step) * trainSeconds) / step : 0);
  for (let e = 0; e < data.epochs.length; e++) {
    const windows = data.epochs[e]!;
    const first = step;
    const epochStart = performance.now();
    const result = await run(state, windows, rates.subarray(first, first + windows.count), s.maxGradNorm, signal,
      (index, loss, _counted, gradNorm, clipped) => {
        step = first + index + 1;
        if (clipped) clippedSteps++;
        // Training time so far: earlier epochs (evaluations excluded) and this one.
        const elapsed = trainSeconds + (performance.now() - epochStart) / 1000;
        const tokensPerSecond = (step * state.window) / elapsed;
        emit({
          type: 'step', epoch: e + 1, epochs: data.epochs.length, step, steps: data.steps, loss, gradNorm, clipped,
          learningRate: rates[step - 1]!, tokensPerSecond, etaSeconds: ((data.steps - step) * elapsed) / step,
        });
      });
    trainSeconds += (performance.now() - epochStart) / 1000;
    step = first + result.steps;
    countedTokens += windows.countedTokens;
    realTokens += windows.realTokens;
    trainLoss.push(meanLoss(result));
    const held = data.evalWindows ? meanLoss(await run(state, data.evalWindows, null, 0, signal)) : null;
    if (held !== null) evalLoss.push(held);
    emit({
      type: 'epoch', epoch: e + 1, epochs: data.epochs.length, step, steps: data.steps, trainLoss: trainLoss[e]!,
      evalLoss: held, tokensPerSecond: speed(), etaSeconds: eta(),
    });
  }
  const tokens = step * state.window;
  return {
    epochs: data.epochs.length, steps: step, trainLoss, evalLoss, tokens, countedTokens,
    tokensPerSecond: speed(), seconds: (performance.now() - started) / 1000,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    paddingFraction: tokens > 0 ? 1 - realTokens / tokens : 0,
    clippedSteps, examples: { train: data.train.length, eval: data.eval.length },
  };
}

// The loss over a run's windows: each window's masked mean, weighted by the
// tokens it counted, so the result is the mean over every counted token.
function meanLoss(r: NativeRunResult): number {
  let sum = 0;
  let counted = 0;
  for (let i = 0; i < r.losses.length; i++) {
    const c = r.counted[i]!;
    if (c > 0) {
      sum += r.losses[i]! * c;
      counted += c;
    }
  }
  return counted > 0 ? sum / counted : Number.NaN;
}

/** The masked loss of `windows` under the adapter as it is now, without updating it. */
export async function evaluateWindows(state: RunState, windows: TrainingWindows, signal: AbortSignal): Promise<number> {
  return meanLoss(await run(state, windows, null, 0, signal));
}

async function run(
  state: RunState, w: TrainingWindows, rates: Float32Array | null, maxGradNorm: number, signal: AbortSignal,
  onStep?: (index: number, loss: number, counted: number, gradNorm: number, clipped: boolean) => void,
): Promise<NativeRunResult> {
  const site = new Error();
  if (signal.aborted) throw abortedError('training');
  const flag = new (binding().AbortFlag)();
  const onAbort = () => flag.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  // An exception in a progress consumer must not escape into the event loop
  // (the native side calls this from there): it stops the run instead.
  let thrown: { error: unknown } | undefined;
  const report = onStep && ((...a: Parameters<typeof onStep>) => {
    if (thrown) return;
    try {
      onStep(...a);
    } catch (error) {
      thrown = { error };
      flag.abort();
    }
  });
  try {
    const result = await callNative(state.native().run(w.tokens, w.labels, w.mask, rates, maxGradNorm, report, flag), site);
    if (thrown) throw thrown.error;
    if (result.aborted) {
      if (state.disposed()) throw new UnderstudyError('DISPOSED', 'the trainer was disposed while it was training');
      throw abortedError('training');
    }
    return result;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
