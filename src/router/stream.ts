// A streamed router call: an async iterable of text pieces, and `result`, which
// settles with the whole answer and its route. Pieces are buffered, so a slow
// reader never holds up the backend.
import type { UnderstudyError } from '../errors.js';

export class RouterStream<T> implements AsyncIterable<string> {
  readonly result: Promise<T>;
  #pieces: string[] = [];
  #wake: (() => void) | undefined;
  #done = false;
  #error: UnderstudyError | undefined;
  #abort: () => void;

  /** @internal `run` gets the function that delivers pieces; its promise is the result. */
  constructor(run: (push: (piece: string) => void) => Promise<T>, abort: () => void) {
    this.#abort = abort;
    this.result = run((piece) => {
      this.#pieces.push(piece);
      this.#wake?.();
    });
    // A reader of the iterator learns of failure there; an unread `result`
    // must not become an unhandled rejection.
    this.result.catch(() => undefined);
    this.result.then(
      () => this.#finish(undefined),
      (err: UnderstudyError) => this.#finish(err),
    );
  }

  #finish(err: UnderstudyError | undefined): void {
    this.#done = true;
    this.#error = err;
    this.#wake?.();
  }

  /** Stops the call; the iterator and `result` fail with ABORTED. */
  abort(): void {
    this.#abort();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    let finished = false;
    try {
      for (;;) {
        if (this.#pieces.length) {
          yield this.#pieces.splice(0).join('');
          continue;
        }
        if (this.#done) break;
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
      }
      finished = true;
      if (this.#error) throw this.#error;
    } finally {
      // A reader that leaves the loop early stops the call.
      if (!finished) this.#abort();
    }
  }
}
