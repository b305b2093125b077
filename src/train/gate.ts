// The promotion gate: is the candidate better than what serves now (the
// current adapter, or the base model when there is none), and is the gain more
// than chance? Held-out sets are small (16 prompts per task at most by
// default), and greedy answers of a model that learned nothing useful still
// move a little from round to round, so a fixed threshold on the mean alone
// promoted a candidate trained on noise (0.294 → 0.305 over 16 prompts). The
// gate asks for three things:
//
//  (a) the mean over tasks gains at least minGain (a gain worth a new version);
//  (b) the paired differences show the gain is not chance: each held-out
//      prompt was answered by both models, so d = after − before per prompt,
//      and the gain counts only when mean(d) − t · sd(d) / √n > 0, a one-sided
//      paired t-test at 5% (t the Student quantile for n − 1 degrees of
//      freedom). Student's t rather than the normal 1.645 because n is small:
//      with 4 prompts 1.645 would ask for 30% less evidence than is due
//      (2.353), with 16 about 6% less (1.753). Pairing removes what differs
//      between prompts (an easy prompt is easy for both), which is what makes
//      16 prompts enough to see a real gain;
//  (c) no task drops by more than margin (one task must not pay for another).
//
// (a) weighs tasks equally, (b) weighs prompts equally: both must hold, so a
// big task cannot carry a gain the task mean does not show, nor the reverse.
// Rows that asked exactly the same call count once (averaged): the local
// answer is greedy, so copies of a prompt add no evidence. The reason reads
// "per-prompt gain 0.011 ± 0.031 over 16 held-out prompts is within chance":
// the gain is mean(d), ± the one-sided margin t · sd(d) / √n it must exceed.
import { UnderstudyError } from '../errors.js';
import type { DistillSettings } from './options.js';
import type { Scored } from './round-plan.js';

/** One-sided 95% quantiles of Student's t for 1 to 30 degrees of freedom. */
const T95 = [
  6.314, 2.92, 2.353, 2.132, 2.015, 1.943, 1.895, 1.86, 1.833, 1.812, 1.796, 1.782, 1.771, 1.761, 1.753,
  1.746, 1.74, 1.734, 1.729, 1.725, 1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701, 1.699, 1.697,
];
/** The normal quantile the t quantiles tend to. */
const Z95 = 1.6448536269514722;

/**
 * The one-sided 95% quantile of Student's t: the table up to 30 degrees of
 * freedom, then the first Cornish–Fisher term (within 0.002 of the exact value).
 */
export function t95(df: number): number {
  if (df < 1) return Infinity;
  return df <= T95.length ? T95[df - 1]! : Z95 + (Z95 ** 3 + Z95) / (4 * df);
}

/** Mean of the paired differences and its one-sided 95% margin (Infinity below 2 prompts). */
export function pairedGain(diffs: number[]): { n: number; mean: number; margin: number } {
  const n = diffs.length;
  const mean = n === 0 ? 0 : diffs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { n, mean, margin: Infinity };
  const variance = diffs.reduce((a, d) => a + (d - mean) ** 2, 0) / (n - 1);
  return { n, mean, margin: (t95(n - 1) * Math.sqrt(variance)) / Math.sqrt(n) };
}

const f = (x: number) => x.toFixed(2);
const g = (x: number) => x.toFixed(3);
const prompts = (n: number) => `${n} held-out prompt${n === 1 ? '' : 's'}`;

/**
 * Refuses similarities that are not finite numbers. Every comparison above is
 * false for NaN, so a NaN from an embedder (a user's function, a zero vector
 * divided by its norm) would pass every test and promote: the round fails instead.
 */
export function checkSimilarities(sims: readonly number[]): void {
  const bad = sims.findIndex((x) => typeof x !== 'number' || !Number.isFinite(x));
  if (bad === -1) return;
  const count = sims.filter((x) => typeof x !== 'number' || !Number.isFinite(x)).length;
  throw new UnderstudyError('NATIVE_ERROR',
    `the embedder returned non-finite similarities (${count} of ${sims.length}, the first ${String(sims[bad])}): held-out answers cannot be compared, so the candidate is not judged`);
}

/** Promote or keep, and why, in a line a person can check (see the top of this file). */
export function decide(scored: Scored, s: Pick<DistillSettings, 'minGain' | 'margin'>): { promote: boolean; reason: string } {
  checkSimilarities([...scored.diffs, ...scored.tasks.flatMap((t) => [t.before ?? 0, t.after ?? 0])]);
  if (scored.before === null || scored.after === null) return { promote: false, reason: 'no held-out rows to evaluate yet' };
  const drops = scored.tasks
    .filter((t) => t.before !== null && t.after !== null && t.before - t.after > s.margin)
    .sort((a, b) => (b.before! - b.after!) - (a.before! - a.after!));
  const worst = drops[0];
  if (worst) {
    return { promote: false, reason: `task=${worst.task} dropped ${f(worst.before!)} → ${f(worst.after!)} (more than ${s.margin})${drops.length > 1 ? ` and ${drops.length - 1} more` : ''}` };
  }
  const means = `${f(scored.before)} → ${f(scored.after)}`;
  const gain = scored.after - scored.before;
  if (gain <= 0) return { promote: false, reason: `mean did not improve (${means})` };
  if (gain < s.minGain) return { promote: false, reason: `mean gained only ${g(gain)}, less than ${s.minGain} (${means})` };
  const paired = pairedGain(scored.diffs);
  if (paired.n < 2) {
    return { promote: false, reason: `a gain over ${prompts(paired.n)} cannot be told from chance (it takes 2 at least) (${means})` };
  }
  const evidence = `per-prompt gain ${g(paired.mean)} ± ${g(paired.margin)} over ${prompts(paired.n)}`;
  if (paired.mean - paired.margin <= 0) return { promote: false, reason: `${evidence} is within chance (${means})` };
  return { promote: true, reason: `mean improved ${means} (${evidence})` };
}
