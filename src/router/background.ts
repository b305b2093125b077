// Background work (shadow checks and audits): one job at a time, never in the
// caller's way, and bounded, so a burst of calls drops checks rather than
// piling up work. idle() lets tests and close() wait for what is queued.
export class Background {
  #queue: (() => Promise<void>)[] = [];
  #running = false;
  #idle: (() => void)[] = [];
  #maxPending: number;
  #onError: (err: unknown) => void;
  dropped = 0;

  constructor(maxPending: number, onError: (err: unknown) => void) {
    this.#maxPending = maxPending;
    this.#onError = onError;
  }

  /** Queues a job; false when the queue is full and the job was dropped. */
  push(job: () => Promise<void>): boolean {
    if (this.#queue.length >= this.#maxPending) {
      this.dropped++;
      return false;
    }
    this.#queue.push(job);
    if (!this.#running) void this.#drain();
    return true;
  }

  async #drain(): Promise<void> {
    this.#running = true;
    // Let the call that queued this job return to its caller first.
    await new Promise((resolve) => setImmediate(resolve));
    for (let job = this.#queue.shift(); job; job = this.#queue.shift()) {
      try {
        await job();
      } catch (err) {
        try {
          this.#onError(err);
        } catch {
          // A failing error listener must not stop the queue.
        }
      }
    }
    this.#running = false;
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  /** Resolves when no job is queued or running. */
  idle(): Promise<void> {
    if (!this.#running && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Forgets queued jobs (the running one finishes). */
  clear(): void {
    this.#queue.length = 0;
  }
}
