// A streamed router call: an async iterable of text pieces, and `result`, which
// settles with the whole answer and its route. Pieces are buffered, so a slow
// reader never holds up the backend.
import type { UnderstudyError } from '../errors.js';
import { PushStream } from '../push-stream.js';
import type { Route } from './request.js';

/** Who answers a streamed call: known just before its first piece (a server sends its headers then). */
export interface StreamInfo {
  route: Route;
  task: string;
  model: string;
}

export class RouterStream<T extends StreamInfo> implements AsyncIterable<string> {
  readonly result: Promise<T>;
  /** Settles just before the first piece is delivered, or with `result` when no piece comes; rejects as `result` does. */
  readonly info: Promise<StreamInfo>;
  #pieces: PushStream<string>;
  #abort: () => void;

  /**
   * @internal `run` gets the function that delivers pieces and the one that
   * announces who answers (called before the first piece); its promise is the result.
   */
  constructor(run: (push: (piece: string) => void, start: (info: StreamInfo) => void) => Promise<T>, abort: () => void) {
    this.#abort = abort;
    let started!: (info: StreamInfo) => void;
    let failed!: (err: unknown) => void;
    this.info = new Promise<StreamInfo>((resolve, reject) => {
      started = resolve;
      failed = reject;
    });
    this.info.catch(() => undefined);
    // A reader that leaves the loop early stops the call.
    const pieces = new PushStream<string>({ coalesce: (texts) => texts.join(''), onReturn: abort, name: 'a router stream' });
    this.#pieces = pieces;
    this.result = run((piece) => pieces.push(piece), (info) => started({ ...info }));
    // A reader of the iterator learns of failure there; an unread `result`
    // must not become an unhandled rejection.
    this.result.catch(() => undefined);
    this.result.then(
      (r) => {
        // A settled promise ignores this when a piece came first.
        started({ route: r.route, task: r.task, model: r.model });
        pieces.end();
      },
      (err: UnderstudyError) => {
        failed(err);
        pieces.fail(err);
      },
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
