// Readiness: per task, the rolling mean similarity between the local model's
// answers and the remote's on the same inputs. A task is ready when it has at
// least `min` comparisons and the mean of the last `window` is at or above the
// threshold. Comparisons are written durably, so readiness survives restarts.
//
// Generations: each comparison is recorded under the adapter version whose
// answer it scored (0 = the base model). Only the active generation's
// comparisons count: a newly adopted adapter is judged on its own answers
// (its held-out scores, then shadow checks and audits), never on the answers
// of the model it replaced. Rolling an adapter back forgets its comparisons.
//
// Lineage: until the active generation has `min` comparisons of a task, the
// newest comparisons of the adapters it descends from (nearest first, then the
// base model) fill in up to `min`. A promotion is gated on no task dropping by
// more than a small margin, so the parent's record stays fair evidence for the
// few checks it takes; without it, a task with fewer held-out rows than `min`
// would go back to the remote at every promotion, however well it was served.
import { ensureDatasetSchema, type Db } from './store.js';

export interface ReadinessState {
  task: string;
  /** Mean similarity over the window; null before the first comparison. */
  readiness: number | null;
  comparisons: number;
  ready: boolean;
  threshold: number;
  /** Comparisons a task needs before it can be ready (readinessMin). */
  min: number;
}

export type ComparisonKind = 'shadow' | 'audit' | 'heldout';

export interface ReadinessOptions {
  threshold: number;
  window: number;
  min: number;
  /** @internal The clock for the comparisons' timestamps. */
  now?: () => number;
}

export class Readiness {
  #db: Db;
  #options: ReadinessOptions;
  #generation = 0;
  #lineage: readonly number[] = [];
  /** The active generation's last `window` similarities per task, oldest first. */
  #recent = new Map<string, number[]>();
  /** Per task, the lineage's newest `min` similarities, newest first. */
  #inherited = new Map<string, number[]>();
  #insert;
  #load;

  constructor(db: Db, options: ReadinessOptions) {
    ensureDatasetSchema(db);
    this.#db = db;
    this.#options = options;
    this.#insert = db.prepare('INSERT INTO comparisons (task, similarity, source, created_at, adapter) VALUES (?, ?, ?, ?, ?)');
    this.#load = db.prepare<[string, number, number], number>(
      'SELECT similarity FROM comparisons WHERE task = ? AND adapter = ? ORDER BY id DESC LIMIT ?').pluck();
  }

  /** The active adapter version (0 = the base model): state() counts only its comparisons. */
  get generation(): number {
    return this.#generation;
  }

  /** The versions the active one descends from, nearest first (see Lineage above). */
  get lineage(): readonly number[] {
    return this.#lineage;
  }

  setGeneration(version: number, lineage: readonly number[] = []): void {
    const next = lineage.filter((v) => v !== version);
    if (version === this.#generation && next.join() === this.#lineage.join()) return;
    this.#generation = version;
    this.#lineage = next;
    this.#recent.clear();
    this.#inherited.clear();
  }

  #inheritedOf(task: string): number[] {
    let values = this.#inherited.get(task);
    if (!values) {
      values = [];
      for (const version of this.#lineage) {
        if (values.length >= this.#options.min) break;
        values.push(...this.#load.all(task, version, this.#options.min - values.length));
      }
      this.#inherited.set(task, values);
    }
    return values;
  }

  #window(task: string): number[] {
    let recent = this.#recent.get(task);
    if (!recent) {
      recent = this.#load.all(task, this.#generation, this.#options.window).reverse();
      this.#recent.set(task, recent);
    }
    return recent;
  }

  /**
   * Records one comparison under `version` (default: the active generation)
   * and returns the task's state before and after it. A comparison of another
   * generation (a check that started before a swap) is kept but changes nothing.
   */
  record(task: string, similarity: number, kind: ComparisonKind, version = this.#generation): { before: ReadinessState; after: ReadinessState } {
    return this.recordMany(version, task, [similarity], kind);
  }

  /** Records several comparisons of one task under `version`, in one transaction. */
  recordMany(version: number, task: string, similarities: readonly number[], kind: ComparisonKind): { before: ReadinessState; after: ReadinessState } {
    const before = this.state(task);
    const now = (this.#options.now ?? Date.now)();
    this.#db.transaction(() => {
      for (const s of similarities) this.#insert.run(task, s, kind, now, version);
    })();
    if (version === this.#generation) {
      const recent = this.#window(task);
      recent.push(...similarities);
      if (recent.length > this.#options.window) recent.splice(0, recent.length - this.#options.window);
    } else if (this.#lineage.includes(version)) {
      this.#inherited.delete(task);
    }
    return { before, after: this.state(task) };
  }

  /** Deletes every comparison recorded under `version`; returns how many. */
  forget(version: number): number {
    const { changes } = this.#db.prepare('DELETE FROM comparisons WHERE adapter = ?').run(version);
    if (version === this.#generation) this.#recent.clear();
    if (this.#lineage.includes(version)) this.#inherited.clear();
    return changes;
  }

  /** Tasks with comparisons (of any generation) or dataset rows, in name order. */
  tasks(): string[] {
    return this.#db.prepare('SELECT task FROM comparisons UNION SELECT task FROM dataset ORDER BY task').pluck().all() as string[];
  }

  state(task: string): ReadinessState {
    const { threshold, min } = this.#options;
    const own = this.#window(task);
    const recent = own.length >= min || this.#lineage.length === 0 ? own : [...own, ...this.#inheritedOf(task).slice(0, min - own.length)];
    const readiness = recent.length ? recent.reduce((a, b) => a + b, 0) / recent.length : null;
    return { task, readiness, comparisons: recent.length, ready: readiness !== null && recent.length >= min && readiness >= threshold, threshold, min };
  }
}
