// PushStream: a producer pushes items, one consumer reads them with `for await`.
// Pushing never waits for the reader: items are buffered, and a reader that
// falls behind gets the buffered items merged into one (`coalesce`), so a slow
// reader costs memory for the backlog, never a stall of the producer (a native
// generation thread, a remote's socket). Generations, router streams and the
// server's SSE writer all carry their text through this one type.
import { UnderstudyError } from './errors.js';

export interface PushStreamOptions<T> {
  /** Merges items that piled up while the reader was busy; without it they come one by one. */
  coalesce?: (items: T[]) => T;
  /** Called once when the reader leaves (break, return, throw) before the stream settled: stop the producer. */
  onReturn?: () => void;
  /** How errors name the stream, e.g. 'a generation'. */
  name?: string;
}

interface Waiter<T> {
  resolve: (result: IteratorResult<T>) => void;
  reject: (error: unknown) => void;
}

const DONE: IteratorResult<never> = { done: true, value: undefined };

export class PushStream<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #waiters: Waiter<T>[] = [];
  #settled = false;
  #failed = false;
  #error: unknown;
  // The reader has seen the end (done or the failure) or left early: nothing more is delivered.
  #closed = false;
  #iterated = false;
  #coalesce: ((items: T[]) => T) | undefined;
  #onReturn: (() => void) | undefined;
  #name: string;

  constructor(options: PushStreamOptions<T> = {}) {
    this.#coalesce = options.coalesce;
    this.#onReturn = options.onReturn;
    this.#name = options.name ?? 'a stream';
  }

  /** Whether end() or fail() was called. */
  get settled(): boolean {
    return this.#settled;
  }

  /** Adds an item; ignored once the stream settled or the reader left. */
  push(item: T): void {
    if (this.#settled || this.#closed) return;
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve({ done: false, value: item });
    else this.#items.push(item);
  }

  /** The reader gets the buffered items, then the end. Later calls are ignored. */
  end(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#onReturn = undefined;
    this.#drainWaiters();
  }

  /** The reader gets the buffered items, then `error` is thrown. Later calls are ignored. */
  fail(error: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#failed = true;
    this.#error = error;
    this.#onReturn = undefined;
    this.#drainWaiters();
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.#iterated) {
      throw new UnderstudyError('INVALID_ARGUMENT', `${this.#name} can be iterated only once; it already has a reader`);
    }
    this.#iterated = true;
    return {
      next: () => this.#next(),
      return: () => this.#leave(),
    };
  }

  #next(): Promise<IteratorResult<T>> {
    if (this.#items.length > 0) return Promise.resolve({ done: false, value: this.#take() });
    if (this.#closed) return Promise.resolve(DONE);
    if (this.#settled) return this.#finish();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  // Everything buffered, merged when the stream knows how; else the oldest item.
  #take(): T {
    if (this.#coalesce && this.#items.length > 1) return this.#coalesce(this.#items.splice(0));
    return this.#items.shift()!;
  }

  // The reader reached the end: done, or the failure exactly once.
  #finish(): Promise<IteratorResult<T>> {
    this.#closed = true;
    if (!this.#failed) return Promise.resolve(DONE);
    const error = this.#error;
    this.#error = undefined;
    this.#failed = false;
    return Promise.reject(error);
  }

  // Waiting readers exist only while the buffer is empty, so they get the end.
  #drainWaiters(): void {
    for (const waiter of this.#waiters.splice(0)) this.#finish().then(waiter.resolve, waiter.reject);
  }

  #leave(): Promise<IteratorResult<T>> {
    const early = !this.#closed && !this.#settled;
    this.#closed = true;
    this.#items = [];
    for (const waiter of this.#waiters.splice(0)) waiter.resolve(DONE);
    const onReturn = this.#onReturn;
    this.#onReturn = undefined;
    if (early) onReturn?.();
    return Promise.resolve(DONE);
  }
}
