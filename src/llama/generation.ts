// Generation: one running (or queued) generation. It is an async iterable of text
// chunks, and `result` settles with the whole completion. Native code delivers
// text in coalesced chunks; a slow consumer gets bigger chunks, never a stall of
// the generating thread.
import { abortedError, fromNative, type UnderstudyError } from '../errors.js';
import { PushStream } from '../push-stream.js';
import { binding, type NativeAbortFlag, type NativeContext, type NativeGenerationResult } from './binding.js';
import type { ParsedGenerateOptions } from './sampling.js';

export type StopReason = 'eos' | 'stop' | 'maxTokens' | 'contextFull';

export interface Completion {
  text: string;
  /** The generated token ids (end-of-generation tokens excluded). */
  tokens: number[];
  stopReason: StopReason;
  usage: { promptTokens: number; completionTokens: number; totalTokens: number };
  /** Prompt tokens that were already in the context's cache and not evaluated again. */
  reusedPromptTokens: number;
  timings: {
    /** Waiting for a free sequence. */
    queueMs: number;
    promptMs: number;
    /** From the call to the first token, waiting included. */
    firstTokenMs: number;
    generationMs: number;
    totalMs: number;
    promptTokensPerSecond: number;
    generationTokensPerSecond: number;
  };
}

// The options of a generation that never reaches native code.
const NOT_STARTED = { sampling: {}, addSpecial: false, parseSpecial: false } as ParsedGenerateOptions;

export class Generation implements AsyncIterable<string> {
  readonly result: Promise<Completion>;
  #resolve!: (c: Completion) => void;
  #reject!: (e: UnderstudyError) => void;
  #tokens: Int32Array;
  #options: ParsedGenerateOptions;
  #stream: boolean;
  #site: Error;
  #flag: NativeAbortFlag | undefined;
  #aborted = false;
  // Leaving the loop early (break, return, throw) ends the generation.
  #chunks = new PushStream<string>({
    coalesce: (texts) => texts.join(''),
    onReturn: () => this.abort(),
    name: 'a generation',
  });
  #settled = false;
  #detachSignal: (() => void) | undefined;

  /** @internal Use context.generate(). */
  constructor(tokens: Int32Array, options: ParsedGenerateOptions, stream: boolean, site: Error) {
    this.#tokens = tokens;
    this.#options = options;
    this.#stream = stream;
    this.#site = site;
    this.result = new Promise<Completion>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // A streaming caller learns of failure from the iterator; `result` must not
    // also raise an unhandled rejection when they never look at it.
    if (stream) this.result.catch(() => undefined);
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) this.abort();
      else {
        // Removed when the generation settles: one long-lived signal may serve
        // many generations and must not keep each of them alive.
        const onAbort = () => this.abort();
        signal.addEventListener('abort', onAbort, { once: true });
        this.#detachSignal = () => signal.removeEventListener('abort', onAbort);
      }
    }
  }

  /**
   * @internal A generation that failed before it started: iterating it and
   * `result` fail with `error`, an UnderstudyError, or the caller's own
   * exception (a throwing getter in their options) passed on unchanged.
   */
  static _failed(error: unknown, stream: boolean): Generation {
    const generation = new Generation(new Int32Array(0), NOT_STARTED, stream, new Error());
    generation.#settle(error as UnderstudyError);
    return generation;
  }

  /**
   * Stops the generation; the iterator and `result` fail with ABORTED at once.
   * The native side lets go of it at its next step (or, for a grammar still
   * being parsed, when the parse ends), and the context counts it until then.
   */
  abort(): void {
    this.#aborted = true;
    this.#flag?.abort();
    this.#settle(abortedError('generation'));
  }

  [Symbol.asyncIterator](): AsyncIterator<string> {
    return this.#chunks[Symbol.asyncIterator]();
  }

  /** @internal Runs on the context's queue. */
  async _run(native: NativeContext): Promise<void> {
    if (this.#aborted) return this._fail(abortedError('generation'));
    this.#flag = new (binding().AbortFlag)();
    if (this.#aborted) this.#flag.abort();
    const onText = this.#stream ? (text: string) => this.#chunks.push(text) : undefined;
    try {
      const r = await native.generate(this.#tokens, this.#options.sampling, onText, this.#flag);
      this.#settle(undefined, toCompletion(r));
    } catch (err) {
      this.#settle(fromNative(err, this.#site));
    }
  }

  /** @internal */
  _fail(error: UnderstudyError): void {
    this.#settle(error);
  }

  #settle(error: UnderstudyError | undefined, completion?: Completion): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#detachSignal?.();
    if (error) {
      this.#reject(error);
      this.#chunks.fail(error);
    } else {
      this.#resolve(completion!);
      this.#chunks.end();
    }
  }
}

function perSecond(count: number, ms: number): number {
  return ms > 0 ? (count * 1000) / ms : 0;
}

function toCompletion(r: NativeGenerationResult): Completion {
  const completionTokens = r.tokens.length;
  const evaluated = r.promptTokens - r.reusedPromptTokens;
  return {
    text: r.text,
    tokens: Array.from(r.tokens),
    stopReason: r.stopReason,
    usage: { promptTokens: r.promptTokens, completionTokens, totalTokens: r.promptTokens + completionTokens },
    reusedPromptTokens: r.reusedPromptTokens,
    timings: {
      ...r.timings,
      promptTokensPerSecond: perSecond(evaluated, r.timings.promptMs),
      // The first token comes from the prompt's logits; each later one costs a decode.
      generationTokensPerSecond: perSecond(Math.max(0, completionTokens - 1), r.timings.generationMs),
    },
  };
}
