// `npm run bench -- --only train`: LoRA training tokens/s (forward, backward
// and AdamW over 256-token windows) next to our own prompt processing of a
// 256-token window on the same model, in the same run, with the same threads,
// and each measurement's peak RSS. Prompt processing is measured twice: with
// the weights as inference loads them (repacked for this CPU where llama.cpp
// can) and as training must load them ({ trainable: true }: plain layout).
// Every measurement runs in its own child process (bench/train-child.ts).
import { runChild } from './child.js';
import type { BenchModel, ModelKey } from './models.js';
import { table, type Stat } from './report.js';
import type { PpChildResult, TrainChildOptions, TrainChildResult } from './train-child.js';

/** The issue's goal: training tokens/s at least this share of prompt processing's (a backward pass costs about twice the forward). */
export const TRAIN_GOAL_RATIO = 0.3;
export const TRAIN_WINDOW = 256;
export const TRAIN_RANK = 8;

// Steps per model: a stories260K step takes ~0.04 s on 2 idle cores. A TinyLlama-1.1B Q4_0 step took
// ~100 s there (up to 300 s on a busy machine; bench/README.md says why), so one warm-up step and one
// timed step keep the section within 4-10 minutes; at that length one step is a stable figure.
const STEPS: Record<ModelKey, { warmupSteps: number; steps: number }> = {
  stories: { warmupSteps: 3, steps: 20 },
  tinyllama: { warmupSteps: 1, steps: 1 },
};
const QUICK_STEPS: Record<ModelKey, { warmupSteps: number; steps: number }> = {
  stories: { warmupSteps: 1, steps: 5 },
  tinyllama: { warmupSteps: 1, steps: 1 },
};

export interface TrainRow {
  model: string;
  threads: number;
  /** Prompt processing of one window: inference layout (repacked) and training layout (plain). */
  ppRepacked: PpChildResult;
  ppPlain: PpChildResult;
  train: TrainChildResult;
  ratioVsRepacked: number;
  ratioVsPlain: number;
}

export interface TrainSectionResult {
  settings: { window: number; rank: number; threads: number; ppReps: number; steps: Record<string, { warmupSteps: number; steps: number }> };
  rows: TrainRow[];
  seconds: number;
}

export async function runTrainBench(
  models: BenchModel[], o: { threads: number; reps: number; quick: boolean }, phase: (label: string) => void, log: (m: string) => void,
): Promise<TrainSectionResult> {
  const started = performance.now();
  const rows: TrainRow[] = [];
  const stepsOf = (key: string) => (o.quick ? QUICK_STEPS : STEPS)[key as ModelKey];
  for (const m of models) {
    const base: TrainChildOptions = { mode: 'pp', trainable: false, threads: o.threads, window: TRAIN_WINDOW, reps: o.reps, rank: TRAIN_RANK, ...stepsOf(m.key) };
    phase(`${m.label}: pp${TRAIN_WINDOW}, repacked weights`);
    const ppRepacked = await runChild<PpChildResult>('train-child.ts', m.path, base, `prompt processing on ${m.label}`);
    phase(`${m.label}: pp${TRAIN_WINDOW}, plain weights (trainable)`);
    const ppPlain = await runChild<PpChildResult>('train-child.ts', m.path, { ...base, trainable: true }, `prompt processing (trainable) on ${m.label}`);
    phase(`${m.label}: LoRA training`);
    const train = await runChild<TrainChildResult>('train-child.ts', m.path, { ...base, mode: 'train', trainable: true }, `training on ${m.label}`);
    log(`  training: ${train.tokensPerSecond.toFixed(2)} t/s over ${train.steps} steps (${train.stepSeconds.mean.toFixed(2)} s a step)`);
    rows.push({
      model: m.label, threads: o.threads, ppRepacked, ppPlain, train,
      ratioVsRepacked: train.tokensPerSecond / ppRepacked.pp.mean, ratioVsPlain: train.tokensPerSecond / ppPlain.pp.mean,
    });
  }
  return {
    settings: { window: TRAIN_WINDOW, rank: TRAIN_RANK, threads: o.threads, ppReps: o.reps, steps: Object.fromEntries(models.map((m) => [m.label, stepsOf(m.key)])) },
    rows, seconds: (performance.now() - started) / 1000,
  };
}

const fmt = (s: Stat) => `${s.mean.toFixed(1)} ± ${s.stddev.toFixed(1)}`;

export function trainTable(rows: TrainRow[]): string {
  return table(
    ['model', `pp${TRAIN_WINDOW} t/s (repacked)`, `pp${TRAIN_WINDOW} t/s (plain)`, 'train t/s', 's / step', 'train/pp repacked', 'train/pp plain', '',
      'peak RSS MB: pp repacked / pp plain / train (before 1st step)'],
    rows.map((r) => [
      // No ± for training: progress events can arrive batched, so the per-step intervals seen in JS
      // spread far more than the steps do; the figure is over all timed steps.
      r.model, fmt(r.ppRepacked.pp), fmt(r.ppPlain.pp), r.train.tokensPerSecond.toFixed(1),
      (r.train.window / r.train.tokensPerSecond).toFixed(2), r.ratioVsRepacked.toFixed(3), r.ratioVsPlain.toFixed(3),
      r.ratioVsPlain >= TRAIN_GOAL_RATIO && r.ratioVsRepacked >= TRAIN_GOAL_RATIO ? 'ok' : `< ${TRAIN_GOAL_RATIO}`,
      `${r.ppRepacked.peakRssMb.toFixed(0)} / ${r.ppPlain.peakRssMb.toFixed(0)} / ${r.train.peakRssMb.toFixed(0)} (${r.train.peakRssBeforeTrainingMb.toFixed(0)})`,
    ]),
    [false, true, true, true, true, true, true, false, true],
  );
}

export function printTrain(t: TrainSectionResult): void {
  const steps = Object.entries(t.settings.steps).map(([m, s]) => `${m} ${s.warmupSteps} + ${s.steps}`).join(', ');
  console.log(`\nLoRA training (rank ${t.settings.rank}, default targets, ${t.settings.window}-token windows, every token learned) against our prompt processing ` +
    `of one ${t.settings.window}-token window (context and batch ${t.settings.window}); ${t.settings.threads} threads; pp: mean of ${t.settings.ppReps} runs after a warm-up; ` +
    `training: warm-up + timed steps: ${steps}\n`);
  console.log(`${trainTable(t.rows)}\n`);
  for (const r of t.rows) {
    console.log(`  ${r.model}: loss ${r.train.firstLoss.toFixed(3)} -> ${r.train.lastLoss.toFixed(3)}; ${r.train.adapterParameters} adapter parameters; ` +
      `load ${r.train.loadMs.toFixed(0)} ms, trainer ${r.train.createTrainerMs.toFixed(0)} ms, warm-up ${r.train.warmupSeconds.toFixed(1)} s`);
  }
  const low = t.rows.filter((r) => r.ratioVsRepacked < TRAIN_GOAL_RATIO || r.ratioVsPlain < TRAIN_GOAL_RATIO);
  console.log(low.length ? `below the ${TRAIN_GOAL_RATIO} training goal: ${low.map((r) => `${r.model} (${r.ratioVsRepacked.toFixed(3)} vs repacked, ${r.ratioVsPlain.toFixed(3)} vs plain)`).join(', ')}; see bench/README.md for where the time goes`
    : `training meets the ${TRAIN_GOAL_RATIO} goal against both`);
  console.log(`train section: ${t.seconds.toFixed(0)} s`);
}
