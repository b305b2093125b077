// The semantic cache's index: one HNSW graph (hnswlib-node, cosine) per task,
// whose labels are answer-cache row ids. The SQLite rows (which keep each
// entry's embedding) are the truth; the index file is a saved copy that is
// reconciled with them when a task's index opens, so a crash, an eviction or
// an expiry while it was unsaved leaves it consistent all the same.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import hnswlib from 'hnswlib-node';
import type { AnswerCache } from './answer-cache.js';

const { HierarchicalNSW } = hnswlib;
type Hnsw = InstanceType<typeof HierarchicalNSW>;

const INITIAL_CAPACITY = 1024;
const M = 16;
const EF_CONSTRUCTION = 200;
// Search breadth: wider than hnswlib's default (10) for near-exact recall at 100k entries.
const EF_SEARCH = 64;
const SAVE_AFTER_MS = 5000;

export interface SemanticHit {
  id: number;
  similarity: number;
}

interface TaskIndex {
  hnsw: Hnsw;
  dim: number;
  /** Live labels and the sampling signature their answer was made with. */
  signatures: Map<number, string>;
  dirty: boolean;
}

export class SemanticIndex {
  #dir: string;
  #cache: AnswerCache;
  #tasks = new Map<string, TaskIndex>();
  #saveTimer: NodeJS.Timeout | undefined;

  #onError: (err: unknown) => void;

  constructor(dir: string, cache: AnswerCache, onError: (err: unknown) => void) {
    this.#dir = dir;
    this.#cache = cache;
    this.#onError = onError;
    mkdirSync(dir, { recursive: true });
  }

  /** The nearest live entry of `task` made with the same sampling `signature`. */
  nearest(task: string, embedding: Float32Array, signature: string): SemanticHit | undefined {
    // No index is made (and kept in memory) for a task that has nothing to find.
    if (!this.#tasks.has(task) && !this.#cache.hasEmbedded(task)) return undefined;
    const index = this.#open(task, embedding.length);
    if (!index || index.signatures.size === 0) return undefined;
    const found = index.hnsw.searchKnn(Array.from(embedding), 1, (label) => index.signatures.get(label) === signature);
    if (found.neighbors.length === 0) return undefined;
    return { id: found.neighbors[0]!, similarity: 1 - found.distances[0]! };
  }

  add(task: string, id: number, embedding: Float32Array, signature: string): void {
    const index = this.#open(task, embedding.length);
    if (!index) return;
    if (index.signatures.has(id)) return;
    const point = Array.from(embedding);
    try {
      index.hnsw.addPoint(point, id, true);
    } catch {
      // Full: grow by doubling, so that adding stays amortised O(log n).
      index.hnsw.resizeIndex(Math.max(INITIAL_CAPACITY, index.hnsw.getMaxElements() * 2));
      index.hnsw.addPoint(point, id, true);
    }
    index.signatures.set(id, signature);
    this.#changed(index);
  }

  /** Drops entries the answer cache removed. */
  remove(rows: { id: number; task: string }[]): void {
    for (const { id, task } of rows) {
      const index = this.#tasks.get(task);
      if (!index || !index.signatures.delete(id)) continue;
      index.hnsw.markDelete(id);
      this.#changed(index);
    }
  }

  #paths(task: string) {
    const slug = task.replace(/[^\w.-]/g, '_').slice(0, 40);
    const base = join(this.#dir, `${slug}-${createHash('sha256').update(task).digest('hex').slice(0, 8)}`);
    return { graph: `${base}.hnsw`, meta: `${base}.json` };
  }

  #open(task: string, dim: number): TaskIndex | undefined {
    const open = this.#tasks.get(task);
    if (open) return open.dim === dim ? open : undefined;
    const paths = this.#paths(task);
    const hnsw = new HierarchicalNSW('cosine', dim);
    let loaded = false;
    if (existsSync(paths.graph) && existsSync(paths.meta)) {
      try {
        const meta = JSON.parse(readFileSync(paths.meta, 'utf8')) as { dim: number; signatures: [number, string][] };
        if (meta.dim === dim) {
          hnsw.readIndexSync(paths.graph, true);
          const index: TaskIndex = { hnsw, dim, signatures: new Map(meta.signatures), dirty: false };
          this.#tasks.set(task, index);
          this.#reconcile(task, index);
          loaded = true;
        }
      } catch {
        // An unreadable saved index is rebuilt from the rows below.
        this.#tasks.delete(task);
      }
    }
    if (!loaded) {
      const fresh = new HierarchicalNSW('cosine', dim);
      fresh.initIndex({ maxElements: INITIAL_CAPACITY, m: M, efConstruction: EF_CONSTRUCTION, allowReplaceDeleted: true });
      const index: TaskIndex = { hnsw: fresh, dim, signatures: new Map(), dirty: false };
      this.#tasks.set(task, index);
      this.#reconcile(task, index);
    }
    const index = this.#tasks.get(task)!;
    index.hnsw.setEf(EF_SEARCH);
    return index;
  }

  /** Makes the index hold exactly the task's stored entries. */
  #reconcile(task: string, index: TaskIndex): void {
    const stored = this.#cache.embeddedIds(task);
    for (const id of [...index.signatures.keys()]) {
      if (stored.has(id)) continue;
      index.signatures.delete(id);
      try {
        index.hnsw.markDelete(id);
      } catch {
        // Already deleted in the saved graph.
      }
      index.dirty = true;
    }
    const missing = [...stored].filter((id) => !index.signatures.has(id));
    if (missing.length === 0) return;
    const want = new Set(missing);
    for (const { id, embedding, signature } of this.#cache.embeddings(task)) {
      if (want.has(id) && embedding.length === index.dim) this.add(task, id, embedding, signature);
    }
    index.dirty = true;
  }

  #changed(index: TaskIndex): void {
    index.dirty = true;
    this.#saveTimer ??= setTimeout(() => {
      this.#saveTimer = undefined;
      try {
        this.save();
      } catch (err) {
        // The rows are the truth; the index is rebuilt from them on the next open.
        this.#onError(err);
      }
    }, SAVE_AFTER_MS).unref();
  }

  /** Writes changed indexes to disk, each through a temporary file and a rename. */
  save(): void {
    if (this.#saveTimer) clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    mkdirSync(this.#dir, { recursive: true });
    for (const [task, index] of this.#tasks) {
      if (!index.dirty) continue;
      const paths = this.#paths(task);
      index.hnsw.writeIndexSync(`${paths.graph}.tmp`);
      writeFileSync(`${paths.meta}.tmp`, JSON.stringify({ task, dim: index.dim, signatures: [...index.signatures] }));
      // Graph first: a crash between the renames leaves a graph newer than its
      // labels, which reconciling on open repairs.
      renameSync(`${paths.graph}.tmp`, paths.graph);
      renameSync(`${paths.meta}.tmp`, paths.meta);
      index.dirty = false;
    }
  }

  close(): void {
    this.save();
    this.#tasks.clear();
  }
}
