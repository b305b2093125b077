// The answer store behind both caches: one SQLite row per cached answer, found
// by its exact key, or by its id from the semantic index. Bounded by entry
// count with least-recently-used eviction, and by an optional time to live.
import type { Usage } from './backend.js';
import { CACHE_SCHEMA, type Db } from './store.js';

export interface CachedAnswer {
  id: number;
  task: string;
  signature: string;
  answer: string;
  usage: Usage;
  model: string;
  /** The tool calls beside the answer (answer-shape.ts): '' for text; null for an entry from before the column. */
  calls: string | null;
}

export interface NewEntry {
  key: string;
  task: string;
  signature: string;
  answer: string;
  usage: Usage;
  model: string;
  /** '' (the default) for a text answer, else the tool calls as answer-shape.ts stores them. */
  calls?: string;
  embedding?: Float32Array;
}

interface Row {
  id: number;
  task: string;
  signature: string;
  answer: string;
  usage: string;
  model: string;
  calls: string | null;
  expires_at: number | null;
}

export interface AnswerCacheOptions {
  maxEntries: number;
  /** Seconds; undefined for no expiry. */
  ttl?: number;
  /** Told of entries removed by eviction or expiry, so the semantic index can drop them. */
  onRemove?: (removed: { id: number; task: string }[]) => void;
  /** Told of a failed background write (the cache stays usable). */
  onError?: (err: unknown) => void;
  /** @internal The clock for expiry and recency (tests pass their own). */
  now?: () => number;
}

// Hits record their use in memory; the rows are updated in one transaction at
// most this often, so a hit costs a read and no write.
const TOUCH_FLUSH_MS = 1000;

export class AnswerCache {
  #db: Db;
  #options: AnswerCacheOptions;
  #now: () => number;
  #touched = new Map<number, number>();
  #timer: NodeJS.Timeout | undefined;
  #count: number;
  // used_at is a clock that never repeats, so two uses in the same millisecond still have an order.
  #clock: number;
  #byKey;
  #byId;
  #insert;
  #touch;
  #oldest;
  #delete;

  constructor(db: Db, options: AnswerCacheOptions) {
    db.exec(CACHE_SCHEMA);
    // Added after the first release: older entries read back with calls = null.
    const existing = db.prepare('PRAGMA table_info(entries)').all() as { name: string }[];
    if (!existing.some((c) => c.name === 'calls')) db.exec('ALTER TABLE entries ADD COLUMN calls TEXT');
    this.#db = db;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    const columns = 'id, task, signature, answer, usage, model, calls, expires_at';
    this.#byKey = db.prepare<[string], Row>(`SELECT ${columns} FROM entries WHERE key = ?`);
    this.#byId = db.prepare<[number], Row>(`SELECT ${columns} FROM entries WHERE id = ?`);
    this.#insert = db.prepare(`INSERT INTO entries (key, task, signature, answer, usage, model, calls, created_at, used_at, expires_at, embedding)
      VALUES (@key, @task, @signature, @answer, @usage, @model, @calls, @now, @now, @expires, @embedding)
      ON CONFLICT (key) DO UPDATE SET answer = excluded.answer, usage = excluded.usage, model = excluded.model, calls = excluded.calls,
        used_at = excluded.used_at, expires_at = excluded.expires_at, embedding = coalesce(excluded.embedding, embedding)
      RETURNING id`);
    this.#touch = db.prepare('UPDATE entries SET used_at = ? WHERE id = ?');
    this.#oldest = db.prepare<[number], { id: number; task: string }>('SELECT id, task FROM entries ORDER BY used_at, id LIMIT ?');
    this.#delete = db.prepare('DELETE FROM entries WHERE id = ?');
    this.#count = (db.prepare('SELECT count(*) AS n FROM entries').get() as { n: number }).n;
    this.#clock = (db.prepare('SELECT max(used_at) FROM entries').pluck().get() as number | null) ?? 0;
  }

  #tick(): number {
    this.#clock = Math.max(this.#now(), this.#clock + 1);
    return this.#clock;
  }

  /** The answer filed under `key`, or undefined; an expired one is removed. */
  get(key: string): CachedAnswer | undefined {
    return this.#hit(this.#byKey.get(key));
  }

  byId(id: number): CachedAnswer | undefined {
    return this.#hit(this.#byId.get(id));
  }

  #hit(row: Row | undefined): CachedAnswer | undefined {
    if (!row) return undefined;
    const now = this.#now();
    if (row.expires_at !== null && row.expires_at <= now) {
      this.#remove([{ id: row.id, task: row.task }]);
      return undefined;
    }
    this.#touched.set(row.id, this.#tick());
    this.#timer ??= setTimeout(() => {
      try {
        this.flush();
      } catch (err) {
        this.#options.onError?.(err);
      }
    }, TOUCH_FLUSH_MS).unref();
    return { id: row.id, task: row.task, signature: row.signature, answer: row.answer, usage: JSON.parse(row.usage) as Usage, model: row.model, calls: row.calls };
  }

  /** Files an answer and returns its id; evicts the least recently used past the bound. */
  put(entry: NewEntry): number {
    const now = this.#now();
    const ttl = this.#options.ttl;
    const isNew = this.#byKey.get(entry.key) === undefined;
    const row = this.#insert.get({
      key: entry.key,
      task: entry.task,
      signature: entry.signature,
      answer: entry.answer,
      usage: JSON.stringify(entry.usage),
      model: entry.model,
      calls: entry.calls ?? '',
      now: this.#tick(),
      expires: ttl === undefined ? null : now + ttl * 1000,
      embedding: entry.embedding ? Buffer.from(entry.embedding.buffer, entry.embedding.byteOffset, entry.embedding.byteLength) : null,
    }) as { id: number };
    if (isNew) this.#count++;
    if (this.#count > this.#options.maxEntries) this.#evict(this.#count - this.#options.maxEntries);
    return row.id;
  }

  #evict(n: number): void {
    this.flush();
    this.#remove(this.#oldest.all(n));
  }

  #remove(rows: { id: number; task: string }[]): void {
    if (rows.length === 0) return;
    this.#db.transaction(() => {
      for (const r of rows) this.#delete.run(r.id);
    })();
    for (const r of rows) this.#touched.delete(r.id);
    this.#count = Math.max(0, this.#count - rows.length);
    this.#options.onRemove?.(rows);
  }

  // The three readers below served the synchronous semantic index. The router no
  // longer calls them (its worker reads the rows itself); they stay so that
  // bench/semantic-stall.ts --legacy can measure that index beside the new one.

  /** Every entry of a task that has an embedding. */
  *embeddings(task: string): Generator<{ id: number; embedding: Float32Array; signature: string }> {
    const rows = this.#db.prepare<[string], { id: number; embedding: Buffer; signature: string }>(
      'SELECT id, embedding, signature FROM entries WHERE task = ? AND embedding IS NOT NULL').all(task);
    for (const r of rows) {
      const copy = new Uint8Array(r.embedding);
      yield { id: r.id, embedding: new Float32Array(copy.buffer, 0, copy.byteLength / 4), signature: r.signature };
    }
  }

  /** Whether a task has any entry with an embedding. */
  hasEmbedded(task: string): boolean {
    return this.#db.prepare('SELECT 1 FROM entries WHERE task = ? AND embedding IS NOT NULL LIMIT 1').get(task) !== undefined;
  }

  /** Ids of a task's entries that have embeddings. */
  embeddedIds(task: string): Set<number> {
    return new Set(this.#db.prepare<[string], number>('SELECT id FROM entries WHERE task = ? AND embedding IS NOT NULL').pluck().all(task));
  }

  /** Writes recorded uses to disk. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#touched.size === 0) return;
    const touched = [...this.#touched];
    this.#touched.clear();
    this.#db.transaction(() => {
      for (const [id, at] of touched) this.#touch.run(at, id);
    })();
  }

  close(): void {
    this.flush();
  }
}
