// The options of LoRA training, checked once, with their defaults. Two groups:
// the session's (adapter shape, window, threads, optimizer constants), fixed
// when the trainer is made, and the run's (epochs, schedule, split), which may
// differ for every run of one trainer.
import { availableParallelism } from 'node:os';
import { invalidArgument } from '../errors.js';
import * as v from '../validate.js';
import { DEFAULT_TARGETS } from './lora-plan.js';

export interface LoraTrainerOptions {
  /** Rank of the new adapter (default 8). Ignored with resumeFrom (the file's rank is kept). */
  rank?: number;
  /** Alpha of the new adapter (default 2 × rank): the update is scaled by alpha / rank. */
  alpha?: number;
  /** Matrices to adapt in every layer (default attn_q, attn_output, ffn_gate, ffn_up, ffn_down). */
  targets?: string[];
  /** Continue training this adapter file instead of starting a new one (B = 0). */
  resumeFrom?: string;
  /** Tokens per training step: a multiple of 256 up to 8192 (default 256). Longer examples are refused. */
  window?: number;
  /** CPU threads (default: one fewer than the machine has, at least 1). */
  threads?: number;
  /** Seed of the new adapter's A matrices (default 42). */
  seed?: number;
  /** AdamW constants (defaults 0.9, 0.999, 1e-8) and decoupled weight decay (default 0). */
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  weightDecay?: number;
}

export interface TrainingRunOptions {
  /** Passes over the training examples (default 3). */
  epochs?: number;
  /** Peak AdamW learning rate (default 1e-3). */
  learningRate?: number;
  /** Fraction of the steps spent warming the rate up linearly from near 0 (default 0.05). */
  warmup?: number;
  /** After warm-up: 'linear' decays to 0 at the last step (default), 'none' keeps it. */
  decay?: 'linear' | 'none';
  /** Gradients whose global norm exceeds this are scaled down to it (default 1; 0 turns clipping off). */
  maxGradNorm?: number;
  /** Fraction of the examples held out to measure the loss after every epoch (default 0.1). */
  evalSplit?: number;
  /** Seed of the shuffle and the split (default 42). */
  seed?: number;
  /** Chat template (a llama.cpp name such as 'chatml', or Jinja text) for { messages } examples. */
  template?: string;
  signal?: AbortSignal;
}

export interface TrainLoraOptions extends LoraTrainerOptions, TrainingRunOptions {
  /** Where the adapter is written, only when training succeeds (default: a new file in the temp directory). */
  out?: string;
}

export interface TrainerSettings {
  rank: number;
  alpha: number;
  targets: string[];
  resumeFrom: string | undefined;
  window: number;
  threads: number;
  seed: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
}

export interface RunSettings {
  epochs: number;
  learningRate: number;
  warmup: number;
  decay: 'linear' | 'none';
  maxGradNorm: number;
  evalSplit: number;
  seed: number;
  template: string | undefined;
  signal: AbortSignal | undefined;
}

const MAX_SEED = 2 ** 32 - 1;

// A finite number above 0 (alpha, the learning rate): 0 itself is refused.
function positive(value: unknown, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) {
    v.fail(`positive number up to ${max}`, name, value);
  }
  return value;
}

// Training threads spin at ggml's barriers: on a busy machine one more thread
// than the cores free costs far more than it brings (perf: most of a step in
// ggml_barrier), so one core is left to the event loop and the rest.
function defaultThreads(): number {
  return Math.max(1, availableParallelism() - 1);
}

export function trainerSettings(options: LoraTrainerOptions | undefined): TrainerSettings {
  const o = v.options(options);
  const rank = v.integer(o.rank, 'rank', 8, 1, 4096);
  const alpha = positive(o.alpha, 'alpha', 2 * rank, 1e6);
  const targets = o.targets === undefined ? [...DEFAULT_TARGETS] : v.stringArray(o.targets, 'targets');
  const resumeFrom = o.resumeFrom === undefined ? undefined : v.nonEmptyString(o.resumeFrom, 'resumeFrom');
  const window = v.integer(o.window, 'window', 256, 256, 8192);
  if (window % 256 !== 0) {
    throw invalidArgument(`Expected a multiple of 256 for window but received ${window} (llama.cpp sizes training contexts in steps of 256)`);
  }
  return {
    rank, alpha, targets, resumeFrom, window,
    threads: v.integer(o.threads, 'threads', defaultThreads(), 1, 512),
    seed: v.integer(o.seed, 'seed', 42, 0, MAX_SEED),
    beta1: v.number(o.beta1, 'beta1', 0.9, 0, 0.999999),
    beta2: v.number(o.beta2, 'beta2', 0.999, 0, 0.999999),
    epsilon: v.number(o.epsilon, 'epsilon', 1e-8, 0, 1),
    weightDecay: v.number(o.weightDecay, 'weightDecay', 0, 0, 1),
  };
}

export function runSettings(options: TrainingRunOptions | undefined): RunSettings {
  const o = v.options(options);
  const decay = o.decay ?? 'linear';
  if (decay !== 'linear' && decay !== 'none') v.fail("'linear' or 'none'", 'decay', decay);
  return {
    epochs: v.integer(o.epochs, 'epochs', 3, 1, 100000),
    learningRate: positive(o.learningRate, 'learningRate', 1e-3, 1),
    warmup: v.number(o.warmup, 'warmup', 0.05, 0, 1),
    decay,
    maxGradNorm: v.number(o.maxGradNorm, 'maxGradNorm', 1, 0, 1e9),
    evalSplit: v.number(o.evalSplit, 'evalSplit', 0.1, 0, 0.9),
    seed: v.integer(o.seed, 'seed', 42, 0, MAX_SEED),
    template: o.template === undefined ? undefined : v.nonEmptyString(o.template, 'template'),
    signal: v.abortSignal(o.signal),
  };
}

/**
 * The learning rate of each step: linear warm-up over the first `warmup`
 * fraction of the steps (from lr / warm-up steps, never 0: AdamW refuses a zero
 * rate), then constant or a linear decay that reaches a small fraction of the
 * peak at the last step.
 */
export function learningRates(steps: number, s: Pick<RunSettings, 'learningRate' | 'warmup' | 'decay'>): Float32Array {
  const rates = new Float32Array(steps);
  const warm = Math.min(steps, Math.round(steps * s.warmup));
  for (let i = 0; i < steps; i++) {
    let rate = s.learningRate;
    if (i < warm) {
      rate = (s.learningRate * (i + 1)) / (warm + 1);
    } else if (s.decay === 'linear') {
      const rest = steps - warm;
      rate = (s.learningRate * (rest - (i - warm))) / rest;
    }
    rates[i] = Math.max(rate, s.learningRate * 1e-3);
  }
  return rates;
}
