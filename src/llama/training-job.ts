// TrainingJob: a training run seen from outside. Its progress events come as an
// async iterable (every iterator sees them all, from the first), its outcome as
// `result`, and `abort()` (or the caller's signal) stops it after the current
// step. The work itself is a function of (emit, signal) given by the trainer.

/** One optimizer step. `step` counts from 1 over the whole run. */
export interface TrainingStepEvent {
  type: 'step';
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  /** Masked mean loss of this step (over the tokens it learns). */
  loss: number;
  /** Global gradient norm before clipping, and whether it was clipped. */
  gradNorm: number;
  clipped: boolean;
  learningRate: number;
  /** Window tokens trained per second so far (forward, backward and optimizer). */
  tokensPerSecond: number;
  etaSeconds: number;
}

/** The end of an epoch, with its losses. */
export interface TrainingEpochEvent {
  type: 'epoch';
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  trainLoss: number;
  /** null without an evaluation split. */
  evalLoss: number | null;
  tokensPerSecond: number;
  etaSeconds: number;
}

export type TrainingEvent = TrainingStepEvent | TrainingEpochEvent;

export interface TrainingResult {
  /** The adapter file written (empty for LoraTrainer.train(), which does not save). */
  adapter: string;
  epochs: number;
  steps: number;
  /** Per epoch: the masked loss over the epoch's steps, and over the held-out examples after it. */
  trainLoss: number[];
  evalLoss: number[];
  /** Window tokens trained (padding included: a step costs its whole window). */
  tokens: number;
  /** Tokens whose prediction counted in the loss. */
  countedTokens: number;
  tokensPerSecond: number;
  seconds: number;
  /** The process's peak resident memory so far. */
  peakRssBytes: number;
  /** Share of the training windows that is padding. */
  paddingFraction: number;
  clippedSteps: number;
  examples: { train: number; eval: number };
}

export type TrainingWork = (emit: (event: TrainingEvent) => void, signal: AbortSignal) => Promise<TrainingResult>;

/**
 * The `signal` of an options object, read without throwing: a bad options
 * value (a throwing getter, a revoked Proxy) fails the work instead, which
 * reads the options again and rejects with the error.
 */
export function signalOption(options: unknown): unknown {
  try {
    return typeof options === 'object' && options !== null ? (options as { signal?: unknown }).signal : undefined;
  } catch {
    return undefined;
  }
}

export class TrainingJob implements AsyncIterable<TrainingEvent> {
  readonly result: Promise<TrainingResult>;
  readonly signal: AbortSignal;
  #controller = new AbortController();
  #events: TrainingEvent[] = [];
  #wake: Array<() => void> = [];
  #done = false;
  #failure: { error: unknown } | undefined;

  /** @internal Use model.trainLora() or trainer.train(). */
  constructor(work: TrainingWork, external?: unknown) {
    // The work checks its options and rejects a signal that is not an
    // AbortSignal; the job only listens to a real one.
    const outer = external instanceof AbortSignal ? external : undefined;
    const signal = this.#controller.signal;
    this.signal = signal;
    const onAbort = () => this.#controller.abort(outer?.reason);
    if (outer?.aborted) onAbort();
    else outer?.addEventListener('abort', onAbort, { once: true });
    this.result = (async () => {
      try {
        return await work((event) => this.#push(event), signal);
      } catch (error) {
        this.#failure = { error };
        throw error;
      } finally {
        outer?.removeEventListener('abort', onAbort);
        this.#done = true;
        this.#notify();
      }
    })();
    // A caller who only iterates must not get an unhandled rejection: the
    // failure reaches them through the iterator.
    this.result.catch(() => {});
  }

  /** Stops after the current step; `result` then rejects with ABORTED and no adapter is written. */
  abort(reason?: unknown): void {
    this.#controller.abort(reason);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TrainingEvent> {
    let next = 0;
    for (;;) {
      if (next < this.#events.length) {
        yield this.#events[next++]!;
        continue;
      }
      if (this.#done) {
        if (this.#failure) throw this.#failure.error;
        return;
      }
      await new Promise<void>((resolve) => this.#wake.push(resolve));
    }
  }

  #push(event: TrainingEvent): void {
    this.#events.push(event);
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = [];
    for (const resolve of wake) resolve();
  }
}
