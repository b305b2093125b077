// The pure half of a round, without a model: which rows a round trains and
// evaluates on (the newest maxRows training rows of all tasks, the newest
// maxHeldOut held-out rows of each), the per-task means and paired
// differences, and the gate's decision with its reason (the expected numbers
// are worked out by hand in the comments). The end-to-end round is in
// distill-round.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { DatasetRow } from '../src/router/dataset.js';
import { distillSettings } from '../src/train/options.js';
import { checkSimilarities, decide, pairedGain, t95 } from '../src/train/gate.js';
import { thrown } from './helpers.js';
import { planRound, scoreRound, type Scored } from '../src/train/round-plan.js';
import { splitRows } from '../src/train/split.js';

function row(id: number, task: string, kind: 'chat' | 'complete' = 'chat'): DatasetRow {
  const text = `question ${id} of ${task}`;
  return {
    id, task, kind, ...(kind === 'chat' ? { messages: [{ role: 'user', content: text }] } : { prompt: text }),
    answer: `answer ${id}`, params: { temperature: 0, maxTokens: 300, topP: 1, stop: ['\n'] },
    usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2 }, model: 'teacher', source: 'call', latencyMs: 1, createdAt: 0,
  };
}

const rows = [...Array.from({ length: 60 }, (_, i) => row(i + 1, i % 3 === 0 ? 'b' : 'a', i % 5 === 0 ? 'complete' : 'chat'))];

test('a round trains on the newest maxRows training rows of all tasks and evaluates the newest maxHeldOut held-out rows of each', async () => {
  const s = distillSettings({ maxRows: 10, maxHeldOut: 2 });
  const plan = await planRound(rows, s, 0);
  const split = splitRows(rows);
  const training = [...split.values()].flatMap((t) => t.train).sort((x, y) => x.id - y.id).slice(-10);
  assert.equal(plan.exampleTasks, training.map((r) => r.task));
  assert.equal(plan.examples.map((e) => ('prompt' in e ? e.prompt : (e as { messages: Array<{ content: string }> }).messages[0]!.content)),
    training.map((r) => r.prompt ?? r.messages![0]!.content));
  const heldOut = ['a', 'b'].flatMap((t) => split.get(t)!.heldOut.slice(-2));
  assert.equal(plan.heldOutRows.map(({ task, answer }) => ({ task, answer })), heldOut.map((r) => ({ task: r.task, answer: r.answer })));
  // A held-out row's key is the call it replays: the same call, the same greedy local answer.
  assert.equal(plan.heldOutRows.map((r) => r.key), plan.heldOut.map((c) => JSON.stringify(c)));
  // Held-out calls: the request, greedy, at most 256 tokens, the caller's stop strings.
  assert.equal(plan.heldOut.map((c) => [c.kind, c.maxTokens, c.stop]), heldOut.map((r) => [r.kind, 256, ['\n']]));
  assert.is(plan.lastRowId, 60);
  assert.equal(plan.tasks, ['a', 'b']);
  assert.is(plan.unreadable, 0);
});

test('a row without its input is counted as unreadable, not trained on', async () => {
  const broken = { ...row(61, 'a'), messages: [] };
  const plan = await planRound([...rows, broken], distillSettings({}), 0);
  const split = splitRows([...rows, broken]);
  const sides = split.get('a')!;
  assert.is(plan.unreadable, 1);
  assert.is(plan.examples.length + plan.heldOut.length + plan.unreadable,
    [...split.values()].reduce((n, t) => n + t.train.length + Math.min(t.heldOut.length, 16), 0));
  assert.ok(sides.train.includes(broken) || sides.heldOut.includes(broken));
});

test('per-task means use only the held-out calls both answers exist for', () => {
  const plan = {
    lastRowId: 4, examples: [], exampleTasks: ['a', 'a', 'b'], unreadable: 0, refused: { ids: [], first: null }, tasks: ['a', 'b', 'c'],
    heldOut: [], heldOutRows: [{ task: 'a', answer: '', key: '1' }, { task: 'a', answer: '', key: '2' }, { task: 'b', answer: '', key: '3' }, { task: 'c', answer: '', key: '4' }],
  };
  // before/after pairs for the answered calls only: a (0.2, 0.6), a (0.4, 0.8), c (0.5, 0.5); b's call overflowed.
  const scored = scoreRound(plan, [true, false, true], [true, true, false, true], [0.2, 0.6, 0.4, 0.8, 0.5, 0.5], new Set(['a', 'b']));
  assert.equal(scored.tasks.map((t) => [t.task, t.trainRows, t.heldOutRows, t.change]),
    [['a', 1, 2, 'better'], ['b', 1, 0, 'not evaluated'], ['c', 0, 1, 'new']]);
  assert.ok(Math.abs(scored.tasks[0]!.before! - 0.3) < 1e-12 && Math.abs(scored.tasks[0]!.after! - 0.7) < 1e-12);
  assert.equal([scored.tasks[1]!.before, scored.tasks[1]!.after], [null, null]);
  assert.ok(Math.abs(scored.before! - 0.4) < 1e-12 && Math.abs(scored.after! - 0.6) < 1e-12, 'means over the evaluated tasks');
  assert.equal([...scored.afterSims], [['a', [0.6, 0.8]], ['c', [0.5]]]);
  assert.equal(scored.diffs.map((d) => Math.round(d * 1e12) / 1e12), [0.4, 0.4, 0], 'after - before per held-out call');
});

test('rows that replay the same call are one paired difference (their mean); the same call in another task is another', () => {
  const plan = {
    lastRowId: 4, examples: [], exampleTasks: [], unreadable: 0, refused: { ids: [], first: null }, tasks: ['a', 'b'], heldOut: [],
    heldOutRows: [{ task: 'a', answer: 'x', key: 'k' }, { task: 'a', answer: 'y', key: 'k' }, { task: 'b', answer: 'x', key: 'k' }],
  };
  // a/k: d = 0.3 and 0.1 -> one difference 0.2; b/k: d = -0.1.
  const scored = scoreRound(plan, [], [true, true, true], [0.5, 0.8, 0.5, 0.6, 0.5, 0.4], null);
  assert.equal(scored.diffs.map((d) => Math.round(d * 1e12) / 1e12), [0.2, -0.1]);
  assert.equal(scored.tasks.map((t) => t.heldOutRows), [2, 1], 'the report still counts rows');
});

/**
 * A scored round from each task's held-out prompts: [task, before per prompt,
 * after per prompt]. Computed here independently of scoreRound.
 */
function scoredOf(tasks: Array<[string, number[], number[]]>): Scored {
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const list = tasks.map(([task, before, after]) => ({ task, trainRows: 1, heldOutRows: after.length, before: mean(before), after: mean(after), change: 'same' as const }));
  return {
    tasks: list, before: mean(list.map((t) => t.before)), after: mean(list.map((t) => t.after)), afterSims: new Map(),
    diffs: tasks.flatMap(([, before, after]) => after.map((x, i) => x - before[i]!)),
  };
}
/** One task: `n` prompts at `before`, answered after at `after[i % after.length]`. */
const one = (before: number, after: number[], n = after.length): Scored =>
  scoredOf([['a', Array(n).fill(before), Array.from({ length: n }, (_, i) => after[i % after.length]!)]]);
const s = { minGain: 0.01, margin: 0.05 };

test('Student t quantiles: the table, then the normal limit', () => {
  // One-sided 95% quantiles from a t table: 6.314 (1 df), 2.353 (3), 1.753 (15), 1.697 (30); 1.6955 (31), 1.6464 (1000).
  assert.equal([t95(1), t95(3), t95(15), t95(30)], [6.314, 2.353, 1.753, 1.697]);
  assert.ok(Math.abs(t95(31) - 1.6955) < 0.002 && Math.abs(t95(1000) - 1.6464) < 0.001, `${t95(31)} ${t95(1000)}`);
  assert.is(t95(0), Infinity);
  // d = 0.1, 0.3, 0.1, 0.3: mean 0.2, sd = sqrt(4 * 0.01 / 3) = 0.11547, margin = 2.353 * 0.11547 / 2 = 0.13585.
  const p = pairedGain([0.1, 0.3, 0.1, 0.3]);
  assert.is(p.n, 4);
  assert.ok(Math.abs(p.mean - 0.2) < 1e-12 && Math.abs(p.margin - 0.135851) < 1e-6, JSON.stringify(p));
  assert.is(pairedGain([0.5]).margin, Infinity);
});

test('a clear gain over 16 held-out prompts is promoted, with the evidence in the reason', () => {
  // d = 0.1, 0.3 alternating: mean 0.2, sd = sqrt(16 * 0.01 / 15) = 0.10328,
  // margin = 1.753 * 0.10328 / 4 = 0.04526 < 0.2.
  assert.equal(decide(one(0.5, [0.6, 0.8], 16), s),
    { promote: true, reason: 'mean improved 0.50 → 0.70 (per-prompt gain 0.200 ± 0.045 over 16 held-out prompts)' });
});

test('a small gain is promoted when every prompt shows it, kept as chance when a few prompts scatter around it', () => {
  // 16 prompts, d = 0.010, 0.014 alternating: mean 0.012, sd = sqrt(16 * 0.002^2 / 15) = 0.0020656,
  // margin = 1.753 * 0.0020656 / 4 = 0.00091: consistent, promoted.
  assert.equal(decide(one(0.5, [0.51, 0.514], 16), s),
    { promote: true, reason: 'mean improved 0.50 → 0.51 (per-prompt gain 0.012 ± 0.001 over 16 held-out prompts)' });
  // The same mean gain 0.012 from 4 prompts, d = 0.2, -0.15, 0.1, -0.102: deviations 0.188, -0.162, 0.088, -0.114,
  // squares sum 0.082328, sd = sqrt(0.082328 / 3) = 0.16566, margin = 2.353 * 0.16566 / 2 = 0.19490: kept.
  assert.equal(decide(one(0.5, [0.7, 0.35, 0.6, 0.398]), s),
    { promote: false, reason: 'per-prompt gain 0.012 ± 0.195 over 4 held-out prompts is within chance (0.50 → 0.51)' });
  // The noise round that was once promoted: 0.294 -> 0.305 over 16 prompts, d = +0.111 on 5 prompts and -0.035 on 11:
  // mean (0.555 - 0.385) / 16 = 0.010625, deviations 0.100375 and -0.045625, squares sum 5 * 0.0100751 + 11 * 0.0020816
  // = 0.0732735, sd = sqrt(0.0732735 / 15) = 0.069892, margin = 1.753 * 0.069892 / 4 = 0.03063: within chance.
  const noise = scoredOf([['a', Array(16).fill(0.294), [...Array(5).fill(0.405), ...Array(11).fill(0.259)]]]);
  assert.equal(decide(noise, s), { promote: false, reason: 'per-prompt gain 0.011 ± 0.031 over 16 held-out prompts is within chance (0.29 → 0.30)' });
});

test('one held-out prompt is no evidence; a gain of exactly minGain from consistent prompts promotes', () => {
  assert.equal(decide(one(0.5, [0.9]), s),
    { promote: false, reason: 'a gain over 1 held-out prompt cannot be told from chance (it takes 2 at least) (0.50 → 0.90)' });
  assert.equal(decide(one(0.5, [0.51], 2), s).promote, true, 'd = 0.01 twice: sd 0, the gain is certain');
});

test('a task dropping more than margin keeps the candidate even when the overall gain is certain', () => {
  // a: 8 prompts 0.1 -> 0.9 (d = 0.8), greet: 8 prompts 0.81 -> 0.52 (d = -0.29): mean 0.455 -> 0.71, but greet drops 0.29.
  assert.equal(decide(scoredOf([['a', Array(8).fill(0.1), Array(8).fill(0.9)], ['greet', Array(8).fill(0.81), Array(8).fill(0.52)]]), s),
    { promote: false, reason: 'task=greet dropped 0.81 → 0.52 (more than 0.05)' });
  assert.equal(decide(scoredOf([['a', [0.9], [0.1]], ['b', [0.8], [0.7]], ['c', [0.5], [0.99]]]), s),
    { promote: false, reason: 'task=a dropped 0.90 → 0.10 (more than 0.05) and 1 more' });
  // b drops 0.03, within margin: the rest of the gate decides. 0.50 -> 0.585 over d = 0.2 x 8 and -0.03 x 8:
  // mean 0.085, sd = sqrt(16 * 0.115^2 / 15) = 0.11877, margin = 1.753 * 0.11877 / 4 = 0.05205: promoted.
  const eight = (x: number) => Array(8).fill(x);
  assert.equal(decide(scoredOf([['a', eight(0.5), eight(0.7)], ['b', eight(0.5), eight(0.47)]]), s),
    { promote: true, reason: 'mean improved 0.50 → 0.58 (per-prompt gain 0.085 ± 0.052 over 16 held-out prompts)' });
  // With 2 prompts each: sd = sqrt(4 * 0.115^2 / 3) = 0.13279, margin = 2.353 * 0.13279 / 2 = 0.15623 > 0.085: kept.
  assert.equal(decide(scoredOf([['a', [0.5, 0.5], [0.7, 0.7]], ['b', [0.5, 0.5], [0.47, 0.47]]]), s),
    { promote: false, reason: 'per-prompt gain 0.085 ± 0.156 over 4 held-out prompts is within chance (0.50 → 0.58)' });
});

test('no gain, or a gain under minGain, is kept before any test of chance', () => {
  assert.equal(decide(one(0.5, [0.505], 16), s), { promote: false, reason: 'mean gained only 0.005, less than 0.01 (0.50 → 0.51)' });
  assert.equal(decide(scoredOf([['a', [0.5], [0.46]], ['b', [0.5], [0.5]]]), s), { promote: false, reason: 'mean did not improve (0.50 → 0.48)' });
  assert.equal(decide({ tasks: [], before: null, after: null, afterSims: new Map(), diffs: [] }, s), { promote: false, reason: 'no held-out rows to evaluate yet' });
});

test('non-finite scores fail with a coded error instead of passing every comparison', () => {
  // NaN fails every comparison the gate makes, so it once promoted.
  const cases: Array<[Scored, string]> = [
    // 16 paired differences and the task's two means: 8 differences and the after mean are NaN.
    [one(0.5, [Number.NaN, 0.8], 16), 'the embedder returned non-finite similarities (9 of 18, the first NaN): held-out answers cannot be compared, so the candidate is not judged'],
    // 4 differences and the before mean: NaN; the after mean is not.
    [scoredOf([['a', Array(4).fill(Number.NaN), Array(4).fill(0.9)]]), 'the embedder returned non-finite similarities (5 of 6, the first NaN): held-out answers cannot be compared, so the candidate is not judged'],
  ];
  for (const [scored, message] of cases) {
    const err = thrown(() => decide(scored, s));
    assert.is(err.code, 'NATIVE_ERROR');
    assert.is(err.message, message);
  }
  const err = thrown(() => checkSimilarities([0.5, Infinity, 0.2]));
  assert.is(err.code, 'NATIVE_ERROR');
  assert.is(err.message, 'the embedder returned non-finite similarities (1 of 3, the first Infinity): held-out answers cannot be compared, so the candidate is not judged');
  checkSimilarities([0, 1, -0.5]);
});

test.run();
