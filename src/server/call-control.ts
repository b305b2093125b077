// One request's router call, kept abortable: by the client leaving before its
// answer is finished (at once, so a local sequence frees), by the request
// timeout, and by a shutdown whose grace ran out. The error it reports for an
// aborted call says which.
import type { FastifyReply } from 'fastify';
import { UnderstudyError } from '../errors.js';

type Why = 'timeout' | 'shutdown' | 'disconnect';

export class CallControl {
  readonly #controller = new AbortController();
  readonly #timeoutMs: number;
  readonly #calls: Set<CallControl>;
  #timer: NodeJS.Timeout;
  #why: Why | undefined;
  #closed!: () => void;
  /** Settles when the response is over: sent whole, or cut short. */
  readonly closed = new Promise<void>((resolve) => (this.#closed = resolve));

  constructor(reply: FastifyReply, timeoutMs: number, calls: Set<CallControl>) {
    this.#timeoutMs = timeoutMs;
    this.#calls = calls;
    calls.add(this);
    this.#timer = setTimeout(() => this.abort('timeout'), timeoutMs);
    this.#timer.unref();
    const res = reply.raw;
    res.once('close', () => {
      // 'close' before the last byte went out: the client left.
      if (!res.writableFinished) this.abort('disconnect');
      this.done();
      this.#closed();
    });
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  abort(why: Why): void {
    if (this.#controller.signal.aborted) return;
    this.#why = why;
    this.#controller.abort();
  }

  /** The answer is out (or failed): no more timeout, no more shutdown abort. */
  done(): void {
    clearTimeout(this.#timer);
    this.#calls.delete(this);
  }

  /** The error to report for `err`: an abort of ours becomes TIMEOUT or CLOSED, anything else stays. */
  error(err: unknown): unknown {
    const aborted = err instanceof UnderstudyError && err.code === 'ABORTED';
    if (!aborted || !this.#why) return err;
    if (this.#why === 'timeout') {
      return new UnderstudyError('TIMEOUT', `the answer was not finished within the request timeout of ${this.#timeoutMs} ms, so the call was aborted`);
    }
    if (this.#why === 'shutdown') return new UnderstudyError('CLOSED', 'the server is shutting down: the call was aborted');
    return err;
  }
}
