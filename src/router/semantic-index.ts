// The semantic cache's index: one HNSW graph (hnswlib-node, cosine) per task,
// whose labels are answer-cache row ids. The SQLite rows (which keep each
// entry's embedding) are the truth; the saved graph is a copy, checked against
// a checksum before hnswlib ever reads it, and reconciled with the rows when a
// task's index opens, so a crash, an eviction, an expiry or a corrupted file
// leaves it consistent all the same.
//
// Nothing heavy runs on the event loop: opening a task's index (verifying,
// rebuilding, reconciling) and writing it out go through SemanticDisk
// (semantic-disk.ts: a worker thread and hnswlib's libuv I/O). While a task's
// index opens, its lookups wait a moment and then miss; while its graph is
// being written, changes queue. A lookup is only ever answered from a whole
// index that holds no entry the rows have lost.
import { mkdirSync } from 'node:fs';
// Loaded lazily (an optional dependency); this only runs with the semantic cache on, so it loaded.
import { hnswlib } from './hnsw-module.js';
import { HNSW_PARAMS } from './semantic-files.js';
import { SemanticDisk } from './semantic-disk.js';
import {
  DRAIN_SLICE_MS, EF_SEARCH, GROW_AT, GROW_ON_MAIN_MAX, RETRY_AFTER_MS, SAVE_AFTER_MS, WAIT_MS,
  waitFor, type Hnsw, type TaskIndex,
} from './semantic-task.js';
import type { Db } from './store.js';

export interface SemanticHit {
  id: number;
  similarity: number;
}

export interface SemanticIndexOptions {
  /** Told of a failed save or open (the cache goes on without the index). */
  onError: (err: unknown) => void;
  /** Told when a saved index could not be used and was rebuilt from the rows. */
  onWarning?: (message: string) => void;
  /** How long a lookup waits for its task's index to open (default 1000 ms). */
  waitMs?: number;
  /** @internal From this capacity on, the worker grows a full index (default 16384; tests use less). */
  growInWorkerFrom?: number;
}

export class SemanticIndex {
  #options: SemanticIndexOptions;
  #disk: SemanticDisk;
  #tasks = new Map<string, TaskIndex>();
  #retryAt = new Map<string, number>();
  #saveTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #count;

  constructor(dir: string, db: Db, options: SemanticIndexOptions) {
    this.#options = options;
    this.#disk = new SemanticDisk(dir, db.name, (message) => this.#options.onWarning?.(message));
    mkdirSync(dir, { recursive: true });
    // Up to 2: whether a task has nothing, only the entry just added, or more.
    this.#count = db.prepare<[string], number>(
      'SELECT count(*) FROM (SELECT 1 FROM entries WHERE task = ? AND embedding IS NOT NULL LIMIT 2)').pluck();
  }

  /** The nearest live entry of `task` made with the same `signature`; waits briefly while the task's index opens. */
  async nearest(task: string, embedding: Float32Array, signature: string): Promise<SemanticHit | undefined> {
    let index = this.#tasks.get(task);
    if (!index) {
      // No index is made (and kept in memory) for a task that has nothing to find.
      if (this.#closed || (this.#retryAt.get(task) ?? 0) > Date.now() || this.#count.get(task) === 0) return undefined;
      index = this.#open(task, embedding.length);
    }
    if (index.dim !== embedding.length) return undefined;
    if (!index.hnsw && index.opening) await waitFor(index.opening, this.#options.waitMs ?? WAIT_MS);
    const hnsw = index.hnsw;
    if (!hnsw || index.signatures.size === 0) return undefined;
    const found = hnsw.searchKnn(Array.from(embedding), 1, (label) => index.signatures.get(label) === signature);
    if (found.neighbors.length === 0) return undefined;
    return { id: found.neighbors[0]!, similarity: 1 - found.distances[0]! };
  }

  /** Adds a stored entry (its row must already be in the cache). */
  add(task: string, id: number, embedding: Float32Array, signature: string): void {
    if (this.#closed) return;
    let index = this.#tasks.get(task);
    if (!index) {
      // A task with other rows is built from them when a lookup opens it; this row will be among them.
      if (this.#count.get(task) !== 1) return;
      index = { task, dim: embedding.length, hnsw: this.#empty(embedding.length), signatures: new Map(), pending: [], writing: false, dirty: false };
      this.#tasks.set(task, index);
    }
    if (index.dim !== embedding.length) return;
    if (this.#busy(index) || !this.#insert(index, id, embedding, signature)) index.pending.push({ id, embedding, signature });
  }

  /** Drops entries the answer cache removed. */
  remove(rows: { id: number; task: string }[]): void {
    for (const { id, task } of rows) {
      const index = this.#tasks.get(task);
      if (!index) continue;
      // Out of the filter at once: a removed entry is never a hit, even before its point goes.
      index.signatures.delete(id);
      if (this.#busy(index)) index.pending.push({ id });
      else this.#delete(index, id);
    }
  }

  /** Resolves once `task`'s index has opened (or failed to); for benchmarks and tests. */
  async opened(task: string): Promise<boolean> {
    await this.#tasks.get(task)?.opening;
    return this.#tasks.get(task)?.hnsw !== undefined;
  }

  /** Resolves once `task`'s index is open, not growing, and holds every change made so far; for benchmarks and tests. */
  async settled(task: string): Promise<void> {
    for (;;) {
      const index = this.#tasks.get(task);
      if (!index || this.#closed) return;
      if (index.opening) await index.opening;
      else if (index.pending.length === 0 && !index.writing) return;
      else await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  #empty(dim: number): Hnsw {
    const hnsw = new (hnswlib().HierarchicalNSW)('cosine', dim);
    hnsw.initIndex({ ...HNSW_PARAMS });
    hnsw.setEf(EF_SEARCH);
    return hnsw;
  }

  /** Adds a point; false when the index is full and a larger one is on its way (the change must wait). */
  #insert(index: TaskIndex, id: number, embedding: Float32Array, signature: string): boolean {
    const hnsw = index.hnsw!;
    if (index.signatures.has(id)) return true;
    const capacity = hnsw.getMaxElements();
    const large = capacity >= (this.#options.growInWorkerFrom ?? GROW_ON_MAIN_MAX) && !index.growOnMain;
    if (large && hnsw.getCurrentCount() + 1 >= capacity * GROW_AT) {
      this.#grow(index);
      // The larger copy is made from the rows as they are now: this change waits for it.
      if (index.opening) return false;
    }
    if (hnsw.getCurrentCount() >= capacity) {
      if (large) return false;
      // Full and small: grow by doubling, so that adding stays amortised O(log n).
      hnsw.resizeIndex(Math.max(HNSW_PARAMS.maxElements, capacity * 2));
    }
    hnsw.addPoint(Array.from(embedding), id, true);
    index.signatures.set(id, signature);
    this.#changed(index);
    return true;
  }

  #delete(index: TaskIndex, id: number): void {
    index.signatures.delete(id);
    try {
      index.hnsw!.markDelete(id);
      this.#changed(index);
    } catch {
      // Not in the graph (it was never added, or is deleted already).
    }
  }

  /** Whether changes must queue: the index is opening or growing, its graph is being written, or earlier changes still wait. */
  #busy(index: TaskIndex): boolean {
    return !index.hnsw || index.opening !== undefined || index.writing || index.pending.length > 0;
  }

  /**
   * Applies queued changes in order, a slice of at most DRAIN_SLICE_MS at a
   * time (each insert costs about a millisecond at 50k entries): thousands of
   * entries added during a rebuild must not block the event loop at once.
   */
  #drain(index: TaskIndex): void {
    if (index.draining || !index.hnsw || index.opening || index.writing) return;
    const started = performance.now();
    while (index.pending.length > 0 && performance.now() - started < DRAIN_SLICE_MS) {
      const change = index.pending[0]!;
      // Full: it waits, with all after it, for the larger index the worker is making.
      if (change.embedding && !this.#insert(index, change.id, change.embedding, change.signature)) return;
      if (!change.embedding) this.#delete(index, change.id);
      index.pending.shift();
    }
    if (index.pending.length === 0 || this.#closed) return;
    index.draining = setImmediate(() => {
      index.draining = undefined;
      this.#drain(index);
    });
  }

  /** Starts opening a task's index in the worker; lookups miss until it is whole. */
  #open(task: string, dim: number): TaskIndex {
    const index: TaskIndex = { task, dim, signatures: new Map(), pending: [], writing: false, dirty: false };
    this.#tasks.set(task, index);
    index.opening = this.#load(index).catch((err: unknown) => {
      if (this.#tasks.get(task) === index) this.#tasks.delete(task);
      if (this.#closed) return;
      this.#retryAt.set(task, Date.now() + RETRY_AFTER_MS);
      this.#options.onError(err);
    }).finally(() => {
      index.opening = undefined;
    });
    return index;
  }

  /** Has the worker make a copy of the index with twice its capacity, from the saved graph and the rows. */
  #grow(index: TaskIndex): void {
    if (index.opening || this.#closed) return;
    const capacity = index.hnsw!.getMaxElements() * 2;
    index.opening = (async () => {
      // The worker writes the task's graph file: not while a save does.
      while (index.saving) await index.saving;
      await this.#load(index, capacity);
    })().catch((err: unknown) => {
      // The old index goes on (growing on the main thread once full) rather than stop answering.
      index.growOnMain = true;
      if (!this.#closed) this.#options.onError(err);
    }).finally(() => {
      index.opening = undefined;
      this.#drain(index);
    });
  }

  async #load(index: TaskIndex, capacity?: number): Promise<void> {
    const { hnsw, signatures } = await this.#disk.load(index.task, index.dim, capacity);
    if (this.#closed) return;
    index.signatures = signatures;
    index.hnsw = hnsw;
    // The worker saved it as it is now.
    index.dirty = false;
    // Entries added or removed since the worker read the rows (drained once `opening` is cleared).
    setImmediate(() => this.#drain(index));
  }

  #changed(index: TaskIndex): void {
    index.dirty = true;
    if (this.#closed) return;
    this.#saveTimer ??= setTimeout(() => {
      this.#saveTimer = undefined;
      // The rows are the truth; an index that failed to save is rebuilt from them on the next open.
      this.save().catch(this.#options.onError);
    }, SAVE_AFTER_MS).unref();
  }

  /** Writes changed indexes to disk: the graph on a libuv thread, its checksum and renames in the worker. */
  async save(): Promise<void> {
    if (this.#saveTimer) clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    const errors: unknown[] = [];
    for (const index of [...this.#tasks.values()]) {
      while (index.saving) await index.saving;
      // An index the worker is growing is saved by it.
      if (!index.hnsw || !index.dirty || index.opening) continue;
      index.saving = this.#saveOne(index).catch((err: unknown) => {
        index.dirty = true;
        errors.push(err);
      }).finally(() => {
        index.saving = undefined;
      });
      await index.saving;
    }
    if (errors.length > 0) throw errors[0];
  }

  async #saveOne(index: TaskIndex): Promise<void> {
    index.dirty = false;
    // While hnswlib writes the graph, it must not change: changes queue until it is done.
    index.writing = true;
    await this.#disk.save(index.task, index.dim, index.hnsw!, () => {
      index.writing = false;
      this.#drain(index);
    });
  }

  /** Stops opens in flight, saves what changed and lets the worker go; rejects with a failed save's error, after all that. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#disk.stop();
    // Changes still queued are not lost: the rows hold them, and the next open adds them.
    for (const index of this.#tasks.values()) clearImmediate(index.draining);
    await Promise.allSettled([...this.#tasks.values()].map((i) => i.opening));
    try {
      await this.save();
    } finally {
      this.#tasks.clear();
      await this.#disk.close();
    }
  }
}
