// The dataset: every remote interaction, written durably before the call that
// made it returns (a synced SQLite commit), so a process killed at any moment
// loses no acknowledged row and leaves no half-written one. Exported as JSONL
// in chat format for training.
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { dirname, resolve } from 'node:path';
import { UnderstudyError } from '../errors.js';
import type { ChatMessage } from '../llama/chat.js';
import type { Usage } from './backend.js';
import type { Params } from './request.js';
import { messagesBody, toolBody } from './remote-body.js';
import { ensureDatasetSchema, type Db } from './store.js';
import type { Structure } from './structured-request.js';
import { parseToolCalls, toolsActive } from './tool-calls.js';
import { errorText } from '../validate.js';

export interface DatasetRow {
  id: number;
  task: string;
  kind: 'chat' | 'complete';
  messages?: ChatMessage[];
  prompt?: string;
  /** The answer; a tool-call answer as its canonical text (tool-calls.ts). */
  answer: string;
  /** What the call asked of the answer's shape, when it asked (rows written before these existed have none). */
  tools?: Structure['tools'];
  toolChoice?: Structure['toolChoice'];
  responseFormat?: Structure['responseFormat'];
  /**
   * The answer's tool calls exactly as the backend gave them (names, argument
   * strings), on rows of calls with tools active: [] when the answer was text.
   * Absent on older rows, whose answer is then read as a tool call when it parses as one.
   */
  answerCalls?: { name: string; arguments: string }[];
  params: Params;
  usage: Usage;
  model: string;
  /** What made the call: the caller ('call'), a shadow check or an audit. */
  source: 'call' | 'audit';
  latencyMs: number;
  createdAt: number;
  /**
   * Set, with the reason, on a row read leniently (rows(..., { lenient: true }))
   * whose stored JSON does not parse: only id, task, kind, answer, source and
   * createdAt are then meaningful. A reader that can do without the row (a
   * training round) skips it and counts it; the others get INVALID_DATASET.
   */
  unreadable?: string;
}

export type NewRow = Omit<DatasetRow, 'id' | 'createdAt'>;

interface StoredRow {
  id: number; task: string; kind: string; input: string; answer: string; params: string;
  usage: string; model: string; source: string; latency_ms: number; created_at: number;
  structure: string | null;
}

/** The structure fields of a request or row, only those present (for NewRow). */
export function structureOf(s: Structure): Structure {
  return {
    ...(s.tools ? { tools: s.tools } : {}),
    ...(s.toolChoice ? { toolChoice: s.toolChoice } : {}),
    ...(s.responseFormat ? { responseFormat: s.responseFormat } : {}),
  };
}

/** Messages as the dataset keeps them: their own fields, text passed through `redact` (tool arguments too). */
export function loggedMessages(messages: readonly ChatMessage[], redact: (text: string) => string): ChatMessage[] {
  return messages.map((m) => ({
    ...m,
    content: redact(m.content),
    ...(m.toolCalls ? { toolCalls: m.toolCalls.map((c) => ({ ...c, arguments: redact(c.arguments) })) } : {}),
  }));
}

export class Dataset {
  #db: Db;
  #insert;

  constructor(db: Db) {
    ensureDatasetSchema(db);
    // Tools and response formats came later: a dataset.db from before gets the column now (NULL for its rows).
    const columns = db.prepare('PRAGMA table_info(dataset)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'structure')) db.exec('ALTER TABLE dataset ADD COLUMN structure TEXT');
    this.#db = db;
    this.#insert = db.prepare(`INSERT INTO dataset (task, kind, input, answer, params, usage, model, source, latency_ms, created_at, structure)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  }

  /** Appends a row; it is on disk when this returns. */
  append(row: NewRow): number {
    const input = JSON.stringify(row.kind === 'chat' ? row.messages : row.prompt);
    const structure = { ...structureOf(row), ...(row.answerCalls ? { answerCalls: row.answerCalls } : {}) };
    const info = this.#insert.run(row.task, row.kind, input, row.answer, JSON.stringify(row.params),
      JSON.stringify(row.usage), row.model, row.source, row.latencyMs, Date.now(),
      Object.keys(structure).length ? JSON.stringify(structure) : null);
    return Number(info.lastInsertRowid);
  }

  count(task?: string): number {
    const sql = task === undefined ? 'SELECT count(*) FROM dataset' : 'SELECT count(*) FROM dataset WHERE task = ?';
    return this.#db.prepare(sql).pluck().get(...(task === undefined ? [] : [task])) as number;
  }

  /**
   * Rows in the order they were written, optionally of one task, after row
   * `afterId` (default: all). Read a page
   * at a time: an open SQLite cursor would block the router's writes while an
   * export waits on its file. A row whose stored JSON does not parse (a file
   * edited or damaged outside the router) fails with INVALID_DATASET naming
   * it, or, with `lenient`, comes back marked `unreadable` for the reader to skip.
   */
  *rows(task?: string, afterId = 0, options: { lenient?: boolean } = {}): Generator<DatasetRow> {
    const sql = `SELECT * FROM dataset WHERE id > ? ${task === undefined ? '' : 'AND task = ?'} ORDER BY id LIMIT 500`;
    const page = this.#db.prepare(sql);
    for (let last = afterId; ;) {
      const rows = page.all(last, ...(task === undefined ? [] : [task])) as StoredRow[];
      if (rows.length === 0) return;
      last = rows.at(-1)!.id;
      for (const row of rows) yield toRow(row, options.lenient === true);
    }
  }

  /** Distinct tasks with their row counts. */
  tasks(): { task: string; rows: number }[] {
    return this.#db.prepare('SELECT task, count(*) AS rows FROM dataset GROUP BY task ORDER BY task').all() as { task: string; rows: number }[];
  }
}

function toRow(r: StoredRow, lenient: boolean): DatasetRow {
  const row = {
    id: r.id, task: r.task, kind: r.kind as DatasetRow['kind'], answer: r.answer, model: r.model,
    source: r.source as DatasetRow['source'], latencyMs: r.latency_ms, createdAt: r.created_at,
  };
  let column = 'input';
  try {
    const input = JSON.parse(r.input) as ChatMessage[] | string;
    column = 'params';
    const params = JSON.parse(r.params) as Params;
    column = 'usage';
    const usage = JSON.parse(r.usage) as Usage;
    column = 'structure';
    const stored = r.structure ? JSON.parse(r.structure) as Structure & { answerCalls?: unknown } : undefined;
    const structure = stored ? { ...structureOf(stored), ...(answerCallsOf(stored.answerCalls) ?? {}) } : {};
    return { ...row, ...(typeof input === 'string' ? { prompt: input } : { messages: input }), params, usage, ...structure };
  } catch (err) {
    // SQLite hands back whatever the file holds: a row written by another tool,
    // or a damaged page, must not make every reader of the dataset throw a raw SyntaxError.
    const why = `its ${column} column is not valid JSON (${errorText(err)})`;
    if (!lenient) throw new UnderstudyError('INVALID_DATASET', `dataset row ${r.id} (task ${JSON.stringify(r.task)}) cannot be read: ${why}`, { cause: err });
    return { ...row, params: {} as Params, usage: {} as Usage, unreadable: why };
  }
}

/**
 * One JSON object per line, in the chat format fine-tuning tools read:
 * `{"messages":[...the request..., {"role":"assistant","content":answer}]}`,
 * in OpenAI's shape: with the row's `tools`, and a tool-call answer as the
 * assistant's `tool_calls`;
 * a completion becomes `{"prompt":..., "completion":...}`. Written to a
 * temporary file and renamed, so a reader never sees half an export; when
 * anything fails, the temporary file is removed and the error is IO_ERROR.
 * A row that cannot be read (see rows()) fails the export with its own
 * INVALID_DATASET naming the row, rather than being left out: an export is
 * a copy of the dataset, and one silently shorter than it would mislead.
 */
export async function exportJsonl(rows: Iterable<DatasetRow>, path: string): Promise<number> {
  const target = resolve(path);
  const temp = `${target}.${process.pid}.tmp`;
  const out = createWriteStream(temp);
  // An error is kept for the awaits below, never left to crash the process as an unhandled event.
  let failed: unknown;
  out.on('error', (err) => (failed ??= err));
  try {
    await once(out, 'ready');
  } catch (err) {
    throw ioError(`cannot write the export to ${target}`, err, dirname(target));
  }
  try {
    let n = 0;
    for (const row of rows) {
      const line = row.kind === 'chat' ? chatLine(row) : { prompt: row.prompt, completion: row.answer, task: row.task };
      if (!out.write(`${JSON.stringify(line)}\n`)) {
        if (failed) throw failed;
        // Rejects if the stream fails while we wait.
        await once(out, 'drain');
      }
      n++;
    }
    out.end();
    await once(out, 'close');
    if (failed) throw failed;
    await rename(temp, target);
    return n;
  } catch (err) {
    out.destroy();
    await rm(temp, { force: true }).catch(() => undefined);
    if (err instanceof UnderstudyError) throw err;
    throw ioError(`the export to ${target} failed`, err);
  }
}

/** The stored answerCalls, when they have the shape append wrote. */
function answerCallsOf(raw: unknown): { answerCalls: { name: string; arguments: string }[] } | undefined {
  if (!Array.isArray(raw) || !raw.every((c) => typeof c?.name === 'string' && typeof c?.arguments === 'string')) return undefined;
  return { answerCalls: raw.map((c: { name: string; arguments: string }) => ({ name: c.name, arguments: c.arguments })) };
}

function chatLine(row: DatasetRow): Record<string, unknown> {
  // The calls as the remote made them; an older row's answer read as a call when it parses as one.
  const calls = row.answerCalls ? (row.answerCalls.length ? row.answerCalls : undefined)
    : toolsActive(row.tools, row.toolChoice) ? parseToolCalls(row.answer, row.tools) : undefined;
  const answer = calls
    ? { role: 'assistant', content: null, tool_calls: calls.map((c, i) => ({ id: `call_${i}`, type: 'function', function: { name: c.name, arguments: c.arguments } })) }
    : { role: 'assistant', content: row.answer };
  // tool_choice (not an OpenAI fine-tuning field, as task is not) so that `understudy train` renders the prompt serving did.
  const choice = row.toolChoice === undefined ? {} : { tool_choice: typeof row.toolChoice === 'string' ? row.toolChoice : { type: 'function', function: { name: row.toolChoice.name } } };
  return { messages: [...messagesBody(row.messages!), answer], ...(row.tools ? { tools: row.tools.map(toolBody), ...choice } : {}), task: row.task };
}

function ioError(what: string, err: unknown, folder?: string): UnderstudyError {
  const code = (err as NodeJS.ErrnoException)?.code;
  const why = code === 'ENOENT' && folder ? `the folder ${folder} does not exist` : errorText(err);
  return new UnderstudyError('IO_ERROR', `${what}: ${why}`, { cause: err });
}
