// Dataset rows as the two things a round needs: training examples (the remote
// answer is what the adapter learns) and held-out calls (the request replayed
// to the local model, whose answer is then compared with the remote's).
import { UnderstudyError } from '../errors.js';
import type { TrainingExample } from '../llama/training-data.js';
import type { DatasetRow } from '../router/dataset.js';
import * as v from '../validate.js';

/** A held-out request, as the round worker replays it (greedily). */
export interface HeldOutCall {
  kind: 'chat' | 'complete';
  messages?: Array<{ role: string; content: string }>;
  prompt?: string;
  maxTokens: number;
  stop: string[];
}

function missingInput(row: DatasetRow): UnderstudyError {
  const what = row.kind === 'chat' ? 'messages' : 'prompt';
  return new UnderstudyError('INVALID_DATASET', `dataset row ${row.id} (task ${JSON.stringify(row.task)}) is a ${row.kind} row without ${what}`);
}

// Copied to plain { role, content } pairs: nothing else a stored message might carry reaches the trainer.
function plainMessages(row: DatasetRow): Array<{ role: string; content: string }> {
  if (!Array.isArray(row.messages) || row.messages.length === 0) throw missingInput(row);
  return row.messages.map((m) => ({ role: m.role, content: m.content }));
}

/**
 * The row as a training example. A chat learns only the remote's answer
 * (learn: 'last'): the assistant turns inside the request are the caller's
 * history, which the remote did not write and the adapter should not imitate.
 */
export function rowExample(row: DatasetRow): TrainingExample {
  if (row.kind === 'chat') {
    return { messages: [...plainMessages(row), { role: 'assistant', content: row.answer }], learn: 'last' };
  }
  if (typeof row.prompt !== 'string') throw missingInput(row);
  return { prompt: row.prompt, completion: row.answer };
}

/**
 * The row's request for held-out evaluation, with at most `maxTokens` tokens
 * (evaluation time grows with it; the remote's own limit is kept when smaller)
 * and the caller's stop strings, so both answers end where the remote's did.
 */
export function heldOutCall(row: DatasetRow, maxTokens = 256): HeldOutCall {
  const limit = Math.min(row.params.maxTokens, v.integer(maxTokens, 'maxTokens', 256, 1));
  const stop = [...row.params.stop];
  if (row.kind === 'chat') return { kind: 'chat', messages: plainMessages(row), maxTokens: limit, stop };
  if (typeof row.prompt !== 'string') throw missingInput(row);
  return { kind: 'complete', prompt: row.prompt, maxTokens: limit, stop };
}
