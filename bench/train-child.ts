// The measurements of `npm run bench -- --only train`, one per child process
// (so each peak RSS is that measurement's own): prompt processing of one
// training window's worth of tokens, with the weights as inference loads them
// (repacked) or as training needs them (plain), and LoRA training steps
// (forward, backward and AdamW) over windows of the same size.
// bench/train-section.ts runs this file; it prints one `BENCH-RESULT {json}` line.
import { loadModel, type Model } from '../src/index.js';
import { childMain, invokedDirectly } from './child.js';
import { benchPrompt, rng } from './ours.js';
import { summarize, type Stat } from './report.js';

export interface TrainChildOptions {
  mode: 'pp' | 'train';
  /** pp only: load with { trainable: true } (plain weights) instead of the inference layout. */
  trainable: boolean;
  threads: number;
  /** Training window, and the pp prompt's length, context and batch. */
  window: number;
  /** pp: measured runs after one warm-up. */
  reps: number;
  /** train: steps run first and not timed, then steps timed. */
  warmupSteps: number;
  steps: number;
  rank: number;
}

export interface PpChildResult {
  mode: 'pp';
  trainable: boolean;
  pp: Stat;
  loadMs: number;
  rssBeforeLoadMb: number;
  peakRssMb: number;
}

export interface TrainChildResult {
  mode: 'train';
  /** Window tokens per second over the timed steps (step event to step event). */
  tokensPerSecond: number;
  window: number;
  /** Per timed step: window / seconds since the previous step event (events can arrive batched: short steps spread wide). */
  stepTps: Stat;
  stepSeconds: Stat;
  /** TrainingResult.tokensPerSecond of the whole run (warm-up steps included). */
  runTokensPerSecond: number;
  warmupSeconds: number;
  steps: number;
  warmupSteps: number;
  firstLoss: number;
  lastLoss: number;
  loadMs: number;
  createTrainerMs: number;
  /** Peak RSS before loading, after load + trainer creation (before the first step), at the end. */
  rssBeforeLoadMb: number;
  peakRssBeforeTrainingMb: number;
  peakRssMb: number;
  adapterParameters: number;
}

const mb = () => process.resourceUsage().maxRSS / 1024;

/** `count` examples of exactly `window` random non-special tokens, every token learned: one per window. */
function examples(model: Model, count: number, window: number): Array<{ tokens: number[]; mask: number[] }> {
  const pool = benchPrompt(model, Math.max(window * 4, 1024), 7);
  const next = rng(11);
  const out = [];
  for (let i = 0; i < count; i++) {
    const tokens = Array.from({ length: window }, () => pool[Math.floor(next() * pool.length)]!);
    out.push({ tokens, mask: tokens.map(() => 1) });
  }
  return out;
}

async function measurePp(path: string, o: TrainChildOptions, log: (m: string) => void): Promise<PpChildResult> {
  const rssBeforeLoadMb = mb();
  const t0 = performance.now();
  // gpuLayers 0: this is a CPU comparison (training keeps its weights on the CPU).
  const model = await loadModel(path, o.trainable ? { trainable: true } : { gpuLayers: 0 });
  const loadMs = performance.now() - t0;
  try {
    const ctx = await model.createContext({ contextSize: o.window, batchSize: o.window, threads: o.threads, batchThreads: o.threads });
    const prompt = benchPrompt(model, o.window);
    const pp: number[] = [];
    for (let i = 0; i < o.reps + 1; i++) {
      ctx.clearCache();
      // maxTokens 1: the whole window is one batch; the one sampled token is not timed in promptMs.
      const r = await ctx.complete(prompt, { maxTokens: 1, temperature: 0 });
      if (r.reusedPromptTokens !== 0 || r.usage.promptTokens !== o.window) {
        throw new Error(`bench (train pp): evaluated ${r.usage.promptTokens - r.reusedPromptTokens} tokens, not ${o.window}`);
      }
      if (i > 0) pp.push((o.window * 1000) / r.timings.promptMs);
    }
    ctx.dispose();
    const stat = summarize(pp);
    log(`  pp${o.window} (${o.trainable ? 'plain weights' : 'repacked weights'}): ${stat.mean.toFixed(2)} ± ${stat.stddev.toFixed(2)} t/s`);
    return { mode: 'pp', trainable: o.trainable, pp: stat, loadMs, rssBeforeLoadMb, peakRssMb: mb() };
  } finally {
    model.dispose();
  }
}

async function measureTrain(path: string, o: TrainChildOptions, log: (m: string) => void): Promise<TrainChildResult> {
  const rssBeforeLoadMb = mb();
  const t0 = performance.now();
  const model = await loadModel(path, { trainable: true });
  const loadMs = performance.now() - t0;
  try {
    const data = examples(model, o.warmupSteps + o.steps, o.window);
    const t1 = performance.now();
    const trainer = await model.createLoraTrainer({ window: o.window, threads: o.threads, rank: o.rank });
    const createTrainerMs = performance.now() - t1;
    const adapterParameters = trainer.plan.tensors.reduce((n, t) => n + trainer.plan.rank * (t.nIn + t.nOut), 0);
    const peakRssBeforeTrainingMb = mb();
    try {
      // One epoch, one example per window, nothing held out: warmupSteps + steps optimizer steps.
      const job = trainer.train(data, { epochs: 1, evalSplit: 0 });
      const start = performance.now();
      const at: number[] = [];
      const losses: number[] = [];
      for await (const e of job) {
        if (e.type !== 'step') continue;
        at.push(performance.now());
        losses.push(e.loss);
        log(`  step ${e.step}/${e.steps}: loss ${e.loss.toFixed(3)}, ${((at.at(-1)! - (at.at(-2) ?? start)) / 1000).toFixed(2)} s`);
      }
      const result = await job.result;
      if (at.length !== o.warmupSteps + o.steps) throw new Error(`bench (train): ${at.length} steps ran, not ${o.warmupSteps + o.steps}`);
      // The timed steps: from the last warm-up step's event to the last step's.
      const from = o.warmupSteps > 0 ? at[o.warmupSteps - 1]! : start;
      const seconds: number[] = [];
      for (let i = o.warmupSteps; i < at.length; i++) seconds.push((at[i]! - (i > 0 ? at[i - 1]! : start)) / 1000);
      return {
        mode: 'train',
        tokensPerSecond: (o.steps * o.window * 1000) / (at.at(-1)! - from),
        stepTps: summarize(seconds.map((s) => o.window / s)),
        stepSeconds: summarize(seconds),
        runTokensPerSecond: result.tokensPerSecond,
        warmupSeconds: (from - start) / 1000,
        steps: o.steps, warmupSteps: o.warmupSteps, window: o.window,
        firstLoss: losses[0]!, lastLoss: losses.at(-1)!,
        loadMs, createTrainerMs, rssBeforeLoadMb, peakRssBeforeTrainingMb, peakRssMb: mb(), adapterParameters,
      };
    } finally {
      await trainer.dispose();
      await trainer.adapter.dispose();
    }
  } finally {
    model.dispose();
  }
}

export function measureTrainChild(path: string, o: TrainChildOptions, log: (m: string) => void): Promise<PpChildResult | TrainChildResult> {
  return o.mode === 'pp' ? measurePp(path, o, log) : measureTrain(path, o, log);
}

// Child mode: `node --import tsx bench/train-child.ts --model FILE --options JSON`.
if (invokedDirectly(import.meta.url)) childMain('train-child.ts', measureTrainChild);
