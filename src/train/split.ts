// The stable training / held-out split of the dataset, per task.
//
// The held-out rows measure whether a candidate adapter answers like the remote
// model on prompts it has not trained on, so two things must hold over the
// whole life of a dataset that only ever grows by appending:
//
// 1. No leak: the same prompt never sits on both sides. A row's key is a hash
//    of its task and its input (the messages or the prompt), never of the answer
//    or the id, and a key seen before in the task follows its first row's side.
// 2. No drift: a row never changes side when rows are added. An adapter trained
//    on round 3's training side must not be judged in round 4 on a row that it
//    trained on. Every decision therefore depends only on the row itself and the
//    rows before it (in id order) in the same task, never on what comes after:
//    - held out when the key's hash, read as a fraction of 2^32, is below
//      heldOutShare (a property of the key alone), or
//    - held out when the task has fewer held-out keys so far than
//      min(minHeldOut, floor((index + 1) / 4)), index being the 0-based count of
//      the task's distinct keys so far. This fills a small task's held-out side
//      early (1 of the first 4 prompts, 2 of 8, 3 of 12) so that even a task
//      with a dozen prompts gets evaluated; it looks only backwards too.
//    A prefix of the rows is split exactly as the same rows are within the
//    longer dataset, which is what test/distill-split.test.ts checks.
//
// The held-out count counts distinct keys, not rows: three copies of one
// prompt are one thing to evaluate, not three.
import { createHash } from 'node:crypto';
import type { DatasetRow } from '../router/dataset.js';
import * as v from '../validate.js';

export interface SplitOptions {
  /** Share of a task's distinct prompts held out by hash; 0.2 by default. */
  heldOutShare?: number;
  /** Held-out prompts a task gets early even when the hash holds none out; 3 by default. */
  minHeldOut?: number;
}

export interface TaskSplit {
  train: DatasetRow[];
  heldOut: DatasetRow[];
}

/** The key of a row's input: the task and the request, without answer or id. */
export function rowKey(row: Pick<DatasetRow, 'task' | 'kind' | 'messages' | 'prompt'>): Buffer {
  // Messages as [role, content] pairs: a row read back from JSON may order an object's fields otherwise.
  // A chat's input is an array and a completion's a string, so their JSON never collides.
  const input = row.kind === 'chat'
    ? (row.messages ?? []).map((m) => [m.role, m.content])
    : row.prompt ?? '';
  return createHash('sha256').update(JSON.stringify([row.task, input])).digest();
}

/** A key's place in [0, 1): its first 32 bits over 2^32. */
function fraction(key: Buffer): number {
  return key.readUInt32BE(0) / 2 ** 32;
}

/** Splits rows per task, each side in id order (see the top of this file). */
export function splitRows(rows: Iterable<DatasetRow>, options?: SplitOptions): Map<string, TaskSplit> {
  const o = v.options(options);
  const share = v.number(o.heldOutShare, 'heldOutShare', 0.2, 0, 1);
  const minHeldOut = v.integer(o.minHeldOut, 'minHeldOut', 3, 0);

  const sorted = [...rows].sort((a, b) => a.id - b.id);
  const out = new Map<string, TaskSplit>();
  const state = new Map<string, { sides: Map<string, boolean>; distinct: number; heldOutKeys: number }>();
  for (const row of sorted) {
    let split = out.get(row.task);
    let s = state.get(row.task);
    if (!split || !s) {
      split = { train: [], heldOut: [] };
      s = { sides: new Map(), distinct: 0, heldOutKeys: 0 };
      out.set(row.task, split);
      state.set(row.task, s);
    }
    const key = rowKey(row);
    const hex = key.toString('hex');
    let heldOut = s.sides.get(hex);
    if (heldOut === undefined) {
      const index = s.distinct++;
      heldOut = fraction(key) < share || s.heldOutKeys < Math.min(minHeldOut, Math.floor((index + 1) / 4));
      s.sides.set(hex, heldOut);
      if (heldOut) s.heldOutKeys++;
    }
    (heldOut ? split.heldOut : split.train).push(row);
  }
  return out;
}
