// A streamed router call: an async iterable of text pieces, and `result`, which
// settles with the whole answer and its route. Pieces are buffered, so a slow
// reader never holds up the backend.
import type { UnderstudyError } from '../errors.js';
import { PushStream } from '../push-stream.js';

export class RouterStream<T> implements AsyncIterable<string> {
  readonly result: Promise<T>;
  #pieces: PushStream<string>;
  #abort: () => void;

  /** @internal `run` gets the function that delivers pieces; its promise is the result. */
  constructor(run: (push: (piece: string) => void) => Promise<T>, abort: () => void) {
    this.#abort = abort;
    // A reader that leaves the loop early stops the call.
    const pieces = new PushStream<string>({ coalesce: (texts) => texts.join(''), onReturn: abort, name: 'a router stream' });
    this.#pieces = pieces;
    this.result = run((piece) => pieces.push(piece));
    // A reader of the iterator learns of failure there; an unread `result`
    // must not become an unhandled rejection.
    this.result.catch(() => undefined);
    this.result.then(
      () => pieces.end(),
      (err: UnderstudyError) => pieces.fail(err),
    );
  }

  /** Stops the call; the iterator and `result` fail with ABORTED. */
  abort(): void {
    this.#abort();
  }

  [Symbol.asyncIterator](): AsyncIterator<string> {
    return this.#pieces[Symbol.asyncIterator]();
  }
}
