// Dataset rows as the two things a round needs: training examples (the remote
// answer is what the adapter learns) and held-out calls (the request replayed
// to the local model, whose answer is then compared with the remote's).
import { UnderstudyError } from '../errors.js';
import type { TrainingExample } from '../llama/training-data.js';
import type { DatasetRow } from '../router/dataset.js';
import { localGrammar, localMessages } from '../router/local-prompt.js';
import { toolsActive, type ToolSpec } from '../router/tool-calls.js';
import * as v from '../validate.js';

/** A held-out request, as the round worker replays it (greedily), the way serving would answer it. */
export interface HeldOutCall {
  kind: 'chat' | 'complete';
  messages?: Array<{ role: string; content: string }>;
  prompt?: string;
  maxTokens: number;
  stop: string[];
  /** The grammar serving holds the answer to (local-prompt.ts `localGrammar`): a schema's, a JSON object's, or a tool call's. */
  grammar?: string;
  /** The active tools: an answer that calls one is read back as its canonical text, as serving does. */
  tools?: ToolSpec[];
  /**
   * Why the local model is never asked this call: its shape cannot be turned
   * into a grammar, so serving sends such calls to the remote. The worker
   * leaves it out of the comparison (null), as a prompt too long for the context.
   */
  unanswerable?: string;
}

function badRow(row: DatasetRow, why: string): UnderstudyError {
  return new UnderstudyError('INVALID_DATASET', `dataset row ${row.id} (task ${JSON.stringify(row.task)}) cannot be used: ${why}`);
}

function missingInput(row: DatasetRow): UnderstudyError {
  const what = row.kind === 'chat' ? 'messages' : 'prompt';
  return badRow(row, `it is a ${row.kind} row without ${what}`);
}

/**
 * What a row must hold to be trained on or replayed. The router writes rows
 * that pass, but the file is SQLite anyone can edit (or damage), and a round
 * reads every row: a bad one is refused here, counted as unreadable, and the
 * round goes on without it, rather than failing inside the worker for good.
 */
function checkRow(row: DatasetRow): void {
  if (row.unreadable !== undefined) throw badRow(row, row.unreadable);
  if (row.kind !== 'chat' && row.kind !== 'complete') throw badRow(row, `its kind is ${v.showValue(row.kind)}, not "chat" or "complete"`);
  if (typeof row.answer !== 'string') throw badRow(row, `its answer is ${v.describeValue(row.answer)}, not a string`);
  if (row.kind === 'chat') {
    if (!Array.isArray(row.messages) || row.messages.length === 0) throw missingInput(row);
    row.messages.forEach((m: unknown, i) => {
      if (!v.isPlainObject(m)) throw badRow(row, `messages[${i}] is ${v.describeValue(m)}, not a { role, content } object`);
      if (typeof m.role !== 'string' || m.role.length === 0) throw badRow(row, `messages[${i}].role is ${v.describeValue(m.role)}, not a non-empty string`);
      if (typeof m.content !== 'string') throw badRow(row, `messages[${i}].content is ${v.describeValue(m.content)}, not a string`);
      if (m.toolCalls !== undefined && !namedList(m.toolCalls, (c) => typeof c.arguments === 'string')) {
        throw badRow(row, `messages[${i}].toolCalls is ${v.describeValue(m.toolCalls)}, not an array of { id, name, arguments } calls`);
      }
    });
    if (row.tools !== undefined && !namedList(row.tools, () => true)) {
      throw badRow(row, `its tools are ${v.describeValue(row.tools)}, not an array of { name, ... } tools`);
    }
  } else if (typeof row.prompt !== 'string') {
    throw missingInput(row);
  }
}

/** The row's limits, checked: a replayed call gets exactly what the remote got. */
function checkParams(row: DatasetRow): { maxTokens: number; stop: string[] } {
  const params: unknown = row.params;
  if (!v.isPlainObject(params)) throw badRow(row, `its params are ${v.describeValue(params)}, not an object`);
  const { maxTokens, stop } = params;
  if (!Number.isSafeInteger(maxTokens) || (maxTokens as number) < 1) {
    throw badRow(row, `its params.maxTokens is ${v.describeValue(maxTokens)}, not a positive integer`);
  }
  if (!Array.isArray(stop) || !stop.every((x) => typeof x === 'string')) {
    throw badRow(row, `its params.stop is ${v.describeValue(stop)}, not an array of strings`);
  }
  return { maxTokens: maxTokens as number, stop: [...stop] };
}

/** An array of objects that each have a string `name` and pass `ok`. */
function namedList(value: unknown, ok: (item: Record<string, unknown>) => boolean): boolean {
  return Array.isArray(value) && value.every((x) => v.isPlainObject(x) && typeof x.name === 'string' && ok(x));
}

// The turns exactly as the local backend renders them when serving (local-prompt.ts): tools
// described in the system turn, tool calls and results as text; plain { role, content } pairs,
// so nothing else a stored message might carry reaches the trainer.
function plainMessages(row: DatasetRow): Array<{ role: string; content: string }> {
  return localMessages({ messages: row.messages!, tools: row.tools, toolChoice: row.toolChoice });
}

/**
 * The row as a training example. A chat learns only the remote's answer
 * (learn: 'last'): the assistant turns inside the request are the caller's
 * history, which the remote did not write and the adapter should not imitate.
 * INVALID_DATASET, naming the row, for a row that cannot be one (checkRow).
 */
export function rowExample(row: DatasetRow): TrainingExample {
  checkRow(row);
  if (row.kind === 'chat') {
    return { messages: [...plainMessages(row), { role: 'assistant', content: row.answer }], learn: 'last' };
  }
  return { prompt: row.prompt!, completion: row.answer };
}

/**
 * The row's request for held-out evaluation, with at most `maxTokens` tokens
 * (evaluation time grows with it; the remote's own limit is kept when smaller)
 * and the caller's stop strings, so both answers end where the remote's did.
 * INVALID_DATASET, naming the row, for a row that cannot be replayed.
 */
export function heldOutCall(row: DatasetRow, maxTokens = 256): HeldOutCall {
  const cap = v.integer(maxTokens, 'maxTokens', 256, 1);
  checkRow(row);
  const params = checkParams(row);
  const limit = Math.min(params.maxTokens, cap);
  const call: HeldOutCall = row.kind === 'chat'
    ? { kind: 'chat', messages: plainMessages(row), maxTokens: limit, stop: params.stop }
    : { kind: 'complete', prompt: row.prompt!, maxTokens: limit, stop: params.stop };
  return { ...call, ...servingShape(row) };
}

/**
 * What serving applies to the answer of a row's call besides the prompt: the
 * grammar, and the tools its answer is parsed against. Left out for a plain
 * row, so its held-out call is the one it always was.
 */
function servingShape(row: DatasetRow): Pick<HeldOutCall, 'grammar' | 'tools' | 'unanswerable'> {
  const tools = row.kind === 'chat' && toolsActive(row.tools, row.toolChoice) ? row.tools : undefined;
  let grammar: string | undefined;
  try {
    grammar = localGrammar({
      ...(row.responseFormat === undefined ? {} : { responseFormat: row.responseFormat }),
      ...(row.kind === 'chat' && row.tools !== undefined ? { tools: row.tools } : {}),
      ...(row.kind === 'chat' && row.toolChoice !== undefined ? { toolChoice: row.toolChoice } : {}),
    });
  } catch (err) {
    if (err instanceof UnderstudyError && (err.code === 'INVALID_ARGUMENT' || err.code === 'INVALID_GRAMMAR')) {
      return { unanswerable: err.message };
    }
    throw badRow(row, `its shape cannot be read (${v.errorText(err)})`);
  }
  return { ...(grammar === undefined ? {} : { grammar }), ...(tools ? { tools: tools.map((t) => ({ ...t })) } : {}) };
}
