// Context: the typed face of native/context.cpp. Holds the KV cache; runs one
// generation at a time, in call order; reuses the cached prefix of the last
// prompt, so a conversation that grows is not evaluated again from the start.
import { availableParallelism } from 'node:os';
import { UnderstudyError, disposedError } from '../errors.js';
import * as v from '../validate.js';
import type { NativeContext, NativeContextInfo } from './binding.js';
import { Generation, type Completion } from './generation.js';
import type { Model } from './model.js';
import { toTokenArray } from './model.js';
import { parseGenerateOptions, type GenerateOptions } from './sampling.js';

export interface ContextOptions {
  /** Tokens the context holds (prompt and output). Default: the model's training context, at most 4096. */
  contextSize?: number;
  /** Most tokens evaluated in one step of prompt processing (default 512). */
  batchSize?: number;
  /** CPU threads for generation (default: the machine's cores). */
  threads?: number;
  /** CPU threads for prompt processing (default: threads). */
  batchThreads?: number;
  /** Sequences the context can hold at once (default 1). */
  sequences?: number;
}

export type Prompt = string | ArrayLike<number>;

export class Context {
  readonly model: Model;
  #native: NativeContext | undefined;
  #onDispose: () => void;
  #tail: Promise<unknown> = Promise.resolve();
  #size: number;

  /** @internal Use model.createContext(). */
  constructor(model: Model, native: NativeContext, onDispose: () => void) {
    this.model = model;
    this.#native = native;
    this.#onDispose = onDispose;
    this.#size = native.info().sequenceContextSize;
  }

  /** @internal */
  static parseOptions(options: ContextOptions | undefined, trainContextSize: number): Required<ContextOptions> {
    const o = v.options(options);
    const threads = v.integer(o.threads, 'threads', Math.max(1, availableParallelism()), 1, 1024);
    const batchSize = v.integer(o.batchSize, 'batchSize', 512, 1, 1 << 20);
    return {
      contextSize: v.integer(o.contextSize, 'contextSize', Math.min(trainContextSize || 4096, 4096), 1, 1 << 24),
      batchSize,
      threads,
      batchThreads: v.integer(o.batchThreads, 'batchThreads', threads, 1, 1024),
      sequences: v.integer(o.sequences, 'sequences', 1, 1, 256),
    };
  }

  /** Tokens one sequence can hold. */
  get size(): number {
    return this.#size;
  }

  get disposed(): boolean {
    return this.#native === undefined;
  }

  info(): NativeContextInfo {
    return this.#live().info();
  }

  /**
   * Streams the continuation of `prompt` as text. Iterate it with `for await`;
   * `await generation.result` for the token counts, timings and stop reason.
   * Leaving the loop early stops the generation.
   */
  generate(prompt: Prompt, options?: GenerateOptions): Generation {
    return this.#start(prompt, options, true);
  }

  /** Generates the continuation of `prompt` and returns it whole. */
  complete(prompt: Prompt, options?: GenerateOptions): Promise<Completion> {
    return this.#start(prompt, options, false).result;
  }

  /** Forgets the cached prompt; the next call evaluates its prompt from the start. */
  clearCache(): void {
    this.#live().clearCache();
  }

  /** Frees the context's memory; a running generation stops and fails with DISPOSED. */
  dispose(): void {
    if (!this.#native) return;
    const native = this.#native;
    this.#native = undefined;
    native.dispose();
    this.#onDispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #start(prompt: Prompt, options: GenerateOptions | undefined, stream: boolean): Generation {
    const site = new Error();
    this.#live();
    const parsed = parseGenerateOptions(options);
    const tokens = typeof prompt === 'string'
      ? new Int32Array(this.model.tokenize(prompt, { addSpecial: parsed.addSpecial, parseSpecial: parsed.parseSpecial }))
      : toTokenArray(prompt, 'prompt');
    const vocabSize = this.model.info.vocab.size;
    const outside = tokens.findIndex((t) => t >= vocabSize);
    if (outside >= 0) {
      throw new UnderstudyError('INVALID_ARGUMENT',
        `prompt token ${tokens[outside]} at index ${outside} is outside the vocabulary (0..${vocabSize - 1})`);
    }
    if (tokens.length === 0) {
      throw new UnderstudyError('INVALID_ARGUMENT', 'the prompt is empty: give at least one token (a string prompt gets BOS when the model uses one)');
    }
    if (tokens.length > this.#size) {
      throw new UnderstudyError('CONTEXT_OVERFLOW',
        `the prompt has ${tokens.length} tokens but the context holds ${this.#size}: shorten the prompt or create the context with a larger contextSize`);
    }
    const generation = new Generation(tokens, parsed, stream, site);
    const run = this.#tail.then(() => {
      const native = this.#native;
      if (!native) return generation._fail(disposedError('context'));
      return generation._run(native);
    });
    this.#tail = run.catch(() => undefined);
    return generation;
  }

  #live(): NativeContext {
    if (!this.#native) throw disposedError('context');
    return this.#native;
  }
}
