// The pure half of a round, without a model: which rows a round trains and
// evaluates on (the newest maxRows training rows of all tasks, the newest
// maxHeldOut held-out rows of each), the per-task means, and the gate's
// decision with its reason. The end-to-end round is in distill-round.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { DatasetRow } from '../src/router/dataset.js';
import { distillSettings } from '../src/train/options.js';
import { decide, planRound, scoreRound, type Scored } from '../src/train/round-plan.js';
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
  assert.equal(plan.heldOutRows, heldOut.map((r) => ({ task: r.task, answer: r.answer })));
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
    lastRowId: 4, examples: [], exampleTasks: ['a', 'a', 'b'], unreadable: 0, tasks: ['a', 'b', 'c'],
    heldOut: [], heldOutRows: [{ task: 'a', answer: '' }, { task: 'a', answer: '' }, { task: 'b', answer: '' }, { task: 'c', answer: '' }],
  };
  // before/after pairs for the answered calls only: a (0.2, 0.6), a (0.4, 0.8), c (0.5, 0.5); b's call overflowed.
  const scored = scoreRound(plan, [true, false, true], [true, true, false, true], [0.2, 0.6, 0.4, 0.8, 0.5, 0.5], new Set(['a', 'b']));
  assert.equal(scored.tasks.map((t) => [t.task, t.trainRows, t.heldOutRows, t.change]),
    [['a', 1, 2, 'better'], ['b', 1, 0, 'not evaluated'], ['c', 0, 1, 'new']]);
  assert.ok(Math.abs(scored.tasks[0]!.before! - 0.3) < 1e-12 && Math.abs(scored.tasks[0]!.after! - 0.7) < 1e-12);
  assert.equal([scored.tasks[1]!.before, scored.tasks[1]!.after], [null, null]);
  assert.ok(Math.abs(scored.before! - 0.4) < 1e-12 && Math.abs(scored.after! - 0.6) < 1e-12, 'means over the evaluated tasks');
  assert.equal([...scored.afterSims], [['a', [0.6, 0.8]], ['c', [0.5]]]);
});

function scoredOf(tasks: Array<[string, number, number]>): Scored {
  const list = tasks.map(([task, before, after]) => ({ task, trainRows: 1, heldOutRows: 1, before, after, change: 'same' as const }));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { tasks: list, before: mean(tasks.map((t) => t[1])), after: mean(tasks.map((t) => t[2])), afterSims: new Map() };
}

test('the gate promotes a mean gain of at least minGain with no task dropping more than margin, and says why otherwise', () => {
  const s = { minGain: 0.01, margin: 0.05 };
  assert.equal(decide(scoredOf([['a', 0.5, 0.7], ['b', 0.5, 0.47]]), s), { promote: true, reason: 'mean improved 0.50 → 0.58' });
  assert.equal(decide(scoredOf([['a', 0.5, 0.9], ['greet', 0.81, 0.52]]), s),
    { promote: false, reason: 'task=greet dropped 0.81 → 0.52 (more than 0.05)' });
  assert.equal(decide(scoredOf([['a', 0.9, 0.1], ['b', 0.8, 0.7], ['c', 0.5, 0.99]]), s),
    { promote: false, reason: 'task=a dropped 0.90 → 0.10 (more than 0.05) and 1 more' });
  assert.equal(decide(scoredOf([['a', 0.5, 0.505]]), s), { promote: false, reason: 'mean gained only 0.005, less than 0.01 (0.50 → 0.51)' });
  assert.equal(decide(scoredOf([['a', 0.5, 0.46], ['b', 0.5, 0.5]]), s), { promote: false, reason: 'mean did not improve (0.50 → 0.48)' });
  assert.equal(decide(scoredOf([['a', 0.5, 0.51]]), { minGain: 0.01, margin: 0.05 }).promote, true, 'a gain of exactly minGain promotes');
  assert.equal(decide({ tasks: [], before: null, after: null, afterSims: new Map() }, s), { promote: false, reason: 'no held-out rows to evaluate yet' });
});

test.run();
