// One remote attempt's time limits, and the abort race a stream needs:
// pieces of the remote backend (remote-backend.ts) that hold timers and
// listeners, kept apart so each can be read on its own.
import { UnderstudyError } from '../errors.js';
import type { BackendCall } from './backend.js';

/** The attempt limits AttemptTimer reads (RemoteBackendOptions has them). */
export interface AttemptLimits {
  timeoutMs: number;
  streamTimeoutMs?: number;
}

/**
 * One attempt's deadlines, on a signal that also follows the caller's. A call
 * must answer within `timeoutMs`; a stream may go on while pieces keep coming
 * less than `timeoutMs` apart, up to `streamTimeoutMs` in all. clear() drops
 * every timer and listener, so a settled attempt holds no memory.
 */
export class AttemptTimer {
  readonly #controller = new AbortController();
  readonly #caller: AbortSignal | undefined;
  readonly #onCallerAbort = () => this.#controller.abort();
  readonly #idleMs: number;
  #idle: NodeJS.Timeout | undefined;
  #total: NodeJS.Timeout | undefined;
  expired: UnderstudyError | undefined;

  constructor(call: BackendCall, options: AttemptLimits, streaming: boolean, where: string) {
    this.#caller = call.signal;
    this.#idleMs = options.timeoutMs;
    if (call.signal?.aborted) this.#controller.abort();
    else call.signal?.addEventListener('abort', this.#onCallerAbort, { once: true });
    if (streaming) {
      const totalMs = options.streamTimeoutMs ?? 600_000;
      this.#total = setTimeout(() => this.#expire(`${where} did not finish its stream within ${seconds(totalMs)}`), totalMs);
      this.#idle = setTimeout(() => this.#expire(`${where} did not answer in time: nothing came for ${seconds(this.#idleMs)}`), this.#idleMs);
    } else {
      this.#total = setTimeout(() => this.#expire(`${where} did not answer in time (${seconds(options.timeoutMs)})`), options.timeoutMs);
    }
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Something arrived: a streaming attempt's silence starts again. */
  heard(): void {
    this.#idle?.refresh();
  }

  #expire(message: string): void {
    if (this.#controller.signal.aborted) return;
    this.expired = new UnderstudyError('REMOTE_TIMEOUT', message);
    this.#controller.abort();
  }

  clear(): void {
    clearTimeout(this.#idle);
    clearTimeout(this.#total);
    this.#idle = undefined;
    this.#total = undefined;
    this.#caller?.removeEventListener('abort', this.#onCallerAbort);
  }
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/**
 * Iterates `source` until `signal` aborts. The client's stream ends quietly
 * on an abort, or not at all when its body was already read, so the abort is
 * raced here and turned into an error.
 */
export async function* untilAborted<T>(source: AsyncIterable<T>, signal: AbortSignal | undefined): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let onAbort: (() => void) | undefined;
  const abortedPromise = new Promise<never>((_, reject) => {
    onAbort = () => reject(new UnderstudyError('ABORTED', 'the remote call was aborted'));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
  abortedPromise.catch(() => undefined);
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), abortedPromise]);
      if (next.done) return;
      yield next.value;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort!);
    void Promise.resolve(iterator.return?.()).catch(() => undefined);
  }
}

