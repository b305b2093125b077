// What a round works on, read from the dataset: the stable split, the newest
// training rows (all tasks together) as examples, and the newest held-out rows
// of each task as calls to replay. Then, once the worker has answered, the
// per-task scores and the paired differences the gate (gate.ts) weighs.
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { TrainingExample } from '../llama/training-data.js';
import type { DatasetRow } from '../router/dataset.js';
import type { TaskRoundReport } from '../router/learner.js';
import { heldOutCall, rowExample, type HeldOutCall } from './examples.js';
import type { DistillSettings } from './options.js';
import { splitRows } from './split.js';
import { errorText } from '../validate.js';

/** Rows read between two turns of the event loop. */
const ROWS_PER_TURN = 500;
/** Tokens of a held-out answer at most: evaluation time grows with it. */
const HELD_OUT_TOKENS = 256;
/** A task whose score moves less than this is 'same'. */
const SAME = 0.005;

export interface RoundPlan {
  /** Newest row id read (the round considered every row up to it). */
  lastRowId: number;
  examples: TrainingExample[];
  /** The task of each example. */
  exampleTasks: string[];
  heldOut: HeldOutCall[];
  /**
   * The task and the remote's answer of each held-out call, and the call's
   * identity: rows that ask exactly the same (same task, messages or prompt,
   * limits) get the same greedy local answer, so they are one piece of evidence.
   */
  heldOutRows: Array<{ task: string; answer: string; key: string }>;
  /** Rows that could not be made into an example or a call. */
  unreadable: number;
  /** Those rows' ids (in id order) and the first one's reason, for the round's one warning. */
  refused: { ids: number[]; first: string | null };
  tasks: string[];
}

/** Reads every row (yielding to the event loop between pages) and plans the round. */
export async function planRound(rows: Iterable<DatasetRow>, s: DistillSettings, lastRowId: number): Promise<RoundPlan> {
  const all: DatasetRow[] = [];
  const refused: RoundPlan['refused'] = { ids: [], first: null };
  const refuse = (row: DatasetRow, err: unknown) => {
    refused.ids.push(row.id);
    refused.first ??= errorText(err);
  };
  let read = 0;
  for (const row of rows) {
    lastRowId = Math.max(lastRowId, row.id);
    // A row the dataset could not parse takes no side in the split: it is only counted.
    if (row.unreadable !== undefined) refuse(row, new Error(`dataset row ${row.id} (task ${JSON.stringify(row.task)}) cannot be read: ${row.unreadable}`));
    else all.push(row);
    if (++read % ROWS_PER_TURN === 0) await yieldToLoop();
  }
  const split = splitRows(all, { heldOutShare: s.heldOutShare, minHeldOut: s.minHeldOut });
  const plan: RoundPlan = {
    lastRowId, examples: [], exampleTasks: [], heldOut: [], heldOutRows: [], unreadable: 0, refused, tasks: [...split.keys()].sort(),
  };
  const training = [...split.values()].flatMap((t) => t.train).sort((a, b) => b.id - a.id).slice(0, s.maxRows).reverse();
  for (const row of training) {
    try {
      plan.examples.push(rowExample(row));
      plan.exampleTasks.push(row.task);
    } catch (err) {
      refuse(row, err);
    }
  }
  for (const task of plan.tasks) {
    for (const row of split.get(task)!.heldOut.slice(-s.maxHeldOut)) {
      try {
        const call = heldOutCall(row, HELD_OUT_TOKENS);
        plan.heldOut.push(call);
        plan.heldOutRows.push({ task, answer: row.answer, key: JSON.stringify(call) });
      } catch (err) {
        refuse(row, err);
      }
    }
  }
  refused.ids.sort((a, b) => a - b);
  plan.unreadable = refused.ids.length;
  return plan;
}

const mean = (xs: number[]): number | null => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);

export interface Scored {
  tasks: TaskRoundReport[];
  before: number | null;
  after: number | null;
  /** Per task, the candidate's held-out similarities (what enters readiness on promotion). */
  afterSims: Map<string, number[]>;
  /**
   * The paired evidence: for each distinct held-out call evaluated (all tasks),
   * after − before, averaged over the rows that asked it.
   */
  diffs: number[];
}

/**
 * Per-task means of the held-out similarities. `sims` holds, for each pair of
 * answers the worker gave (both non-null), the before score then the after score.
 */
export function scoreRound(plan: RoundPlan, used: boolean[], answered: boolean[], sims: number[], parentTasks: Set<string> | null): Scored {
  const per = new Map<string, { trainRows: number; before: number[]; after: number[] }>();
  const entry = (task: string) => {
    let e = per.get(task);
    if (!e) per.set(task, (e = { trainRows: 0, before: [], after: [] }));
    return e;
  };
  plan.exampleTasks.forEach((task, i) => {
    if (used[i]) entry(task).trainRows++;
  });
  const byCall = new Map<string, number[]>();
  let k = 0;
  plan.heldOutRows.forEach(({ task, key }, i) => {
    const e = entry(task);
    if (!answered[i]) return;
    const before = sims[k++]!;
    const after = sims[k++]!;
    e.before.push(before);
    e.after.push(after);
    const id = JSON.stringify([task, key]);
    let ds = byCall.get(id);
    if (!ds) byCall.set(id, (ds = []));
    ds.push(after - before);
  });
  const tasks: TaskRoundReport[] = [];
  const afterSims = new Map<string, number[]>();
  for (const [task, e] of [...per].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const before = mean(e.before);
    const after = mean(e.after);
    let change: TaskRoundReport['change'] = 'not evaluated';
    if (before !== null && after !== null) {
      change = parentTasks && !parentTasks.has(task) ? 'new' : after > before + SAME ? 'better' : after < before - SAME ? 'worse' : 'same';
      afterSims.set(task, e.after);
    }
    tasks.push({ task, trainRows: e.trainRows, heldOutRows: e.after.length, before, after, change });
  }
  const evaluated = tasks.filter((t) => t.before !== null && t.after !== null);
  return {
    tasks, before: mean(evaluated.map((t) => t.before!)), after: mean(evaluated.map((t) => t.after!)), afterSims,
    diffs: [...byCall.values()].map((ds) => mean(ds)!),
  };
}
