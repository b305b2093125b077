// Readiness: per task, the rolling mean similarity between the local model's
// answers and the remote's on the same inputs. A task is ready when it has at
// least `min` comparisons and the mean of the last `window` is at or above the
// threshold. Comparisons are written durably, so readiness survives restarts.
import { DATASET_SCHEMA, type Db } from './store.js';

export interface ReadinessState {
  task: string;
  /** Mean similarity over the window; null before the first comparison. */
  readiness: number | null;
  comparisons: number;
  ready: boolean;
  threshold: number;
}

export interface ReadinessOptions {
  threshold: number;
  window: number;
  min: number;
  /** @internal The clock for the comparisons' timestamps. */
  now?: () => number;
}

export class Readiness {
  #options: ReadinessOptions;
  #recent = new Map<string, number[]>();
  #insert;
  #load;

  constructor(db: Db, options: ReadinessOptions) {
    db.exec(DATASET_SCHEMA);
    this.#options = options;
    this.#insert = db.prepare('INSERT INTO comparisons (task, similarity, source, created_at) VALUES (?, ?, ?, ?)');
    this.#load = db.prepare<[string, number], number>(
      'SELECT similarity FROM comparisons WHERE task = ? ORDER BY id DESC LIMIT ?').pluck();
  }

  #window(task: string): number[] {
    let recent = this.#recent.get(task);
    if (!recent) {
      recent = this.#load.all(task, this.#options.window).reverse();
      this.#recent.set(task, recent);
    }
    return recent;
  }

  /** Records one comparison and returns the task's state before and after it. */
  record(task: string, similarity: number, source: 'shadow' | 'audit'): { before: ReadinessState; after: ReadinessState } {
    const before = this.state(task);
    this.#insert.run(task, similarity, source, (this.#options.now ?? Date.now)());
    const recent = this.#window(task);
    recent.push(similarity);
    if (recent.length > this.#options.window) recent.shift();
    return { before, after: this.state(task) };
  }

  state(task: string): ReadinessState {
    const recent = this.#window(task);
    const readiness = recent.length ? recent.reduce((a, b) => a + b, 0) / recent.length : null;
    const { threshold, min } = this.#options;
    return { task, readiness, comparisons: recent.length, ready: readiness !== null && recent.length >= min && readiness >= threshold, threshold };
  }
}
