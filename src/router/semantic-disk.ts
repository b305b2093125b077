// The semantic index's way to and from disk, off the event loop: a Piscina
// worker (semantic-worker.ts) verifies, rebuilds and reconciles a task's graph
// file and seals a save (hash, meta file, rename), and hnswlib reads and writes
// graph files on a libuv thread. Split out of semantic-index.ts so that the
// index itself only keeps its in-memory graphs consistent and decides when to
// load, grow and save them; this file owns the worker and the file I/O.
import { mkdirSync } from 'node:fs';
// Loaded lazily (an optional dependency); this only runs with the semantic cache on, so it loaded.
import { hnswlib } from './hnsw-module.js';
import { Piscina } from 'piscina';
import { indexPaths } from './semantic-files.js';
import { EF_SEARCH, WORKER_IDLE_MS, WORKER_NICE, type Hnsw } from './semantic-task.js';
import type { OpenResult, WorkerTask } from './semantic-worker.js';

// Run as TypeScript under tsx (tests), as JavaScript from dist.
const WORKER = new URL(import.meta.url.endsWith('.ts') ? './semantic-worker.ts' : './semantic-worker.js', import.meta.url).href;

/** A task's graph as the worker left it: verified, and holding exactly the rows it read. */
export interface LoadedGraph {
  hnsw: Hnsw;
  /** Live labels and the signature their answer was made with. */
  signatures: Map<number, string>;
}

export class SemanticDisk {
  #dir: string;
  #dbPath: string;
  #pool: Piscina<WorkerTask, unknown> | undefined;
  #onWarning: ((message: string) => void) | undefined;
  #stop = new AbortController();

  /**
   * `dir` holds the graphs; `dbPath` is the answer cache's SQLite file, which
   * the worker reads rows from; `onWarning` is told when a saved graph could
   * not be used and was rebuilt from the rows.
   */
  constructor(dir: string, dbPath: string, onWarning?: (message: string) => void) {
    this.#dir = dir;
    this.#dbPath = dbPath;
    this.#onWarning = onWarning;
  }

  #worker(): Piscina<WorkerTask, unknown> {
    // At a lower priority (nice +10 on Unix), so that on a busy machine a rebuild yields the CPU to the event loop.
    this.#pool ??= new Piscina<WorkerTask, unknown>({ filename: WORKER, minThreads: 0, maxThreads: 1, idleTimeout: WORKER_IDLE_MS, niceIncrement: WORKER_NICE });
    return this.#pool;
  }

  /**
   * Has the worker open `task`'s graph (with room for `capacity` points, when
   * given), then reads it with hnswlib. Rejects when stop() was called.
   */
  async load(task: string, dim: number, capacity?: number): Promise<LoadedGraph> {
    const { graph, meta } = indexPaths(this.#dir, task);
    const result = await this.#worker().run({ op: 'open', db: this.#dbPath, task, dim, graph, meta, ...(capacity ? { capacity } : {}) },
      { signal: this.#stop.signal }) as OpenResult;
    if (result.rebuilt !== undefined && result.rebuilt !== 'no saved index') {
      this.#onWarning?.(`the saved semantic index of task ${task} was not used (${result.rebuilt}); rebuilt it from ${result.ids.length} cached entries`);
    }
    // The worker left a verified graph that holds exactly the rows it read: hnswlib reads it off the event loop.
    const hnsw = new (hnswlib().HierarchicalNSW)('cosine', dim);
    await hnsw.readIndex(graph, true);
    hnsw.setEf(EF_SEARCH);
    const signatures = new Map<number, string>();
    for (let i = 0; i < result.ids.length; i++) signatures.set(result.ids[i]!, result.signatures[result.signatureOf[i]!]!);
    return { hnsw, signatures };
  }

  /**
   * Writes `hnsw` as `task`'s graph: to a temp file on a libuv thread (the
   * graph must not change meanwhile: `written` is called once hnswlib is done
   * with it, or has failed), then the worker checksums it and
   * renames it into place beside its meta file.
   */
  async save(task: string, dim: number, hnsw: Hnsw, written: () => void): Promise<void> {
    const { graph, meta } = indexPaths(this.#dir, task);
    const tmp = `${graph}.tmp`;
    let count: number;
    try {
      mkdirSync(this.#dir, { recursive: true });
      count = hnsw.getCurrentCount();
      await hnsw.writeIndex(tmp);
    } finally {
      // Also when the folder could not be made: the index must not stay frozen.
      written();
    }
    await this.#worker().run({ op: 'seal', tmp, graph, meta, task, dim, count });
  }

  /** Aborts the loads in flight (saves still run: close() saves after this). */
  stop(): void {
    this.#stop.abort();
  }

  /** Lets the worker go. */
  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.destroy();
  }
}
