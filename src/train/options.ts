// The options of the distillation loop (createRouter({ training })), checked
// once when the router is made, with their defaults. Bad values fail with the
// argument messages of src/validate.ts, named `training.<option>`.
import { availableParallelism } from 'node:os';
import * as v from '../validate.js';

export interface DistillOptions {
  /**
   * Whether rounds start on their own, every trainEvery new rows (default
   * true). False: only router.train() runs one (a one-shot process, or rounds
   * on a schedule of the caller's).
   */
  auto?: boolean;
  /** Passes over the training rows per round (default 2). */
  epochs?: number;
  /** Peak AdamW learning rate (default 1e-3). */
  learningRate?: number;
  /** Rank of the first adapter (default 8); later rounds continue their parent's. */
  rank?: number;
  /** Alpha of the first adapter (default 2 × rank). */
  alpha?: number;
  /** CPU threads of the training worker (default half the cores, at least 1). */
  threads?: number;
  /** Share of each task's distinct prompts held out for evaluation (default 0.2). */
  heldOutShare?: number;
  /** Held-out rows a task keeps at least, once it has 4 per held-out row (default 3). */
  minHeldOut?: number;
  /** Newest training rows a round trains on, all tasks together (default 2000). */
  maxRows?: number;
  /** Newest held-out rows evaluated per task (default 16). */
  maxHeldOut?: number;
  /** Mean held-out similarity a candidate must gain over the current adapter to be promoted (default 0.01). */
  minGain?: number;
  /** Most any one task's held-out similarity may drop for the candidate to be promoted (default 0.05). */
  margin?: number;
  /** Seed of a new adapter and of the training shuffle (default 42). */
  seed?: number;
}

export type DistillSettings = Required<Omit<DistillOptions, 'alpha'>> & Pick<DistillOptions, 'alpha'>;

const MAX_SEED = 2 ** 32 - 1;

// Training threads spin at ggml's barriers: half the cores leaves the other
// half to the serving model and the event loop.
function defaultThreads(): number {
  return Math.max(1, Math.floor(availableParallelism() / 2));
}

// A finite number above 0: a zero learning rate or alpha is refused.
function positive(value: unknown, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) {
    v.fail(`positive number up to ${max}`, name, value);
  }
  return value;
}

/** Checks `options` (undefined: every default) and fills in the defaults. */
export function distillSettings(options: DistillOptions | undefined): DistillSettings {
  const o = v.options(options, 'training');
  const name = (key: keyof DistillOptions) => `training.${key}`;
  const rank = v.integer(o.rank, name('rank'), 8, 1, 4096);
  return {
    auto: v.boolean(o.auto, name('auto'), true),
    epochs: v.integer(o.epochs, name('epochs'), 2, 1, 100000),
    learningRate: positive(o.learningRate, name('learningRate'), 1e-3, 1),
    rank,
    ...(o.alpha === undefined ? {} : { alpha: positive(o.alpha, name('alpha'), 2 * rank, 1e6) }),
    threads: v.integer(o.threads, name('threads'), defaultThreads(), 1, 512),
    heldOutShare: v.number(o.heldOutShare, name('heldOutShare'), 0.2, 0, 0.9),
    minHeldOut: v.integer(o.minHeldOut, name('minHeldOut'), 3, 0, 1000),
    maxRows: v.integer(o.maxRows, name('maxRows'), 2000, 1, 1_000_000),
    maxHeldOut: v.integer(o.maxHeldOut, name('maxHeldOut'), 16, 1, 10_000),
    minGain: v.number(o.minGain, name('minGain'), 0.01, 0, 1),
    margin: v.number(o.margin, name('margin'), 0.05, 0, 1),
    seed: v.integer(o.seed, name('seed'), 42, 0, MAX_SEED),
  };
}
