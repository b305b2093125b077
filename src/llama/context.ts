// Context: the typed face of native/context.cpp. Holds the KV cache for up to
// `sequences` generations that run at once (continuous batching, in native code);
// more wait in a bounded queue. Each sequence keeps its cached prompt, and a new
// prompt goes where the longest shared prefix is, so a conversation that grows is
// not evaluated again. Changing adapters or embedding waits for running calls.
import { availableParallelism } from 'node:os';
import { UnderstudyError, abortedError, callNative, disposedError, fromNative, invalidArgument, isErrorCode } from '../errors.js';
import * as v from '../validate.js';
import type { NativeContext, NativeContextInfo } from './binding.js';
import { binding } from './binding.js';
import { checkMessages, formatChat, type ChatMessage, type ChatTemplateOptions } from './chat.js';
import { Generation, type Completion } from './generation.js';
import { asyncDispose, settled, syncDispose } from './lifecycle.js';
import { LoraAdapter } from './lora.js';
import type { Model } from './model.js';
import { toTokenArray } from './model.js';
import { parseGenerateOptions, type GenerateOptions, type ParsedGenerateOptions } from './sampling.js';

export interface ContextOptions {
  /** Tokens the context holds (prompt and output). Default: the model's training context, at most 4096. */
  contextSize?: number;
  /** Most tokens evaluated in one step of prompt processing (default 512; for embeddings, contextSize). */
  batchSize?: number;
  /** CPU threads for generation (default: the machine's cores). */
  threads?: number;
  /** CPU threads for prompt processing (default: threads). */
  batchThreads?: number;
  /**
   * Generations that run at once, batched together (default 1; for embeddings,
   * 8: texts embedded in one batch). Each sequence gets contextSize / sequences
   * tokens.
   */
  sequences?: number;
  /** A context for embed() rather than generation. */
  embeddings?: boolean;
  /** Calls that may wait for a free sequence before new ones fail with QUEUE_FULL (default 256). */
  maxQueued?: number;
}

export interface EmbedOptions {
  /** Cut texts longer than the context to fit, instead of failing with CONTEXT_OVERFLOW. */
  truncate?: boolean;
  signal?: AbortSignal;
}

export type ChatOptions = GenerateOptions & ChatTemplateOptions;
export type Prompt = string | ArrayLike<number>;

// llama.cpp's pooling types (enum llama_pooling_type).
const POOLING_MODEL_OWN = -1;
const POOLING_MEAN = 1;

export class Context {
  readonly model: Model;
  #native: NativeContext | undefined;
  #onDispose: () => void;
  #disposal: Promise<void> | undefined;
  // Exclusive calls (adapters, embedding) run alone, in order; generations wait
  // for exclusive calls made before them, and exclusive calls for everything
  // made before them.
  #exclusive: Promise<unknown> = Promise.resolve();
  #inflight = new Set<Promise<unknown>>();
  #maxQueued: number;
  #sequences: number;
  #size: number;
  #embeddings: boolean;
  #loras = new Map<LoraAdapter, number>();

  /** @internal Use model.createContext(). */
  constructor(model: Model, native: NativeContext, onDispose: () => void, maxQueued: number) {
    this.model = model;
    this.#native = native;
    this.#onDispose = onDispose;
    this.#maxQueued = maxQueued;
    const info = native.info();
    this.#size = info.sequenceContextSize;
    this.#sequences = info.sequences;
    this.#embeddings = info.embeddings;
  }

  /** @internal */
  static parseOptions(options: ContextOptions | undefined, trainContextSize: number, poolingDeclared: boolean) {
    const o = v.options(options);
    const embeddings = v.boolean(o.embeddings, 'embeddings', false);
    const threads = v.integer(o.threads, 'threads', Math.max(1, availableParallelism()), 1, 1024);
    const contextSize = v.integer(o.contextSize, 'contextSize', Math.min(trainContextSize || 4096, embeddings ? 2048 : 4096), 1, 1 << 24);
    // An embedded text must fit in one batch: pooling sees the whole sequence at once.
    const batchSize = v.integer(o.batchSize, 'batchSize', embeddings ? contextSize : 512, 1, 1 << 20);
    const sequences = parseSequences(o.sequences, embeddings, contextSize, batchSize);
    return {
      contextSize,
      batchSize,
      microBatchSize: batchSize,
      threads,
      batchThreads: v.integer(o.batchThreads, 'batchThreads', threads, 1, 1024),
      sequences,
      embeddings,
      // Texts of one batch share the cells, rather than each getting contextSize / sequences.
      kvUnified: embeddings,
      pooling: embeddings && !poolingDeclared ? POOLING_MEAN : POOLING_MODEL_OWN,
      maxQueued: v.integer(o.maxQueued, 'maxQueued', 256, 0, 1 << 20),
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
   * Leaving the loop early stops the generation. Never throws: a failure, bad
   * arguments included, surfaces on iteration and on `result`.
   */
  generate(prompt: Prompt, options?: GenerateOptions): Generation {
    return this.#start(prompt, options, true, new Error());
  }

  /** Generates the continuation of `prompt` and returns it whole. Rejects (never throws). */
  complete(prompt: Prompt, options?: GenerateOptions): Promise<Completion> {
    return this.#start(prompt, options, false, new Error()).result;
  }

  /**
   * Answers a conversation: formats `messages` with the model's chat template
   * (or `options.template`) and generates the assistant's turn. Iterate the
   * result to stream it, or await `.result` for the whole answer.
   */
  chat(messages: ChatMessage[], options?: ChatOptions): Generation {
    const site = new Error();
    let prompt: string;
    let o: Partial<ChatOptions>;
    let addSpecial: boolean;
    try {
      this.#live();
      o = v.options(options);
      prompt = formatChat(this.model._native(), checkMessages(messages), o);
      // The template writes special tokens as text; a BOS it wrote itself must not be doubled.
      const bos = this.model.info.vocab.special.bos;
      const bosText = bos === null ? '' : Buffer.from(this.model.tokenPiece(bos, { special: true })).toString('utf8');
      addSpecial = !(bosText && prompt.startsWith(bosText));
    } catch (err) {
      return Generation._failed(callerOrNative(err, site), true);
    }
    return this.#start(prompt, { ...o, addSpecial, parseSpecial: true }, true, site);
  }

  /** One unit-length vector per text, with the model's pooling (mean where it declares none). */
  async embed(texts: string[], options?: EmbedOptions): Promise<Float32Array[]> {
    const site = new Error();
    if (!this.#embeddings) {
      throw new UnderstudyError('INVALID_ARGUMENT', 'this context was not created for embeddings: create one with { embeddings: true }');
    }
    if (!Array.isArray(texts)) v.fail('array of strings', 'texts', texts);
    // Element by element (forEach would skip the holes of a sparse array), into a
    // copy that later changes to the caller's array cannot reach.
    const list: string[] = [];
    for (let i = 0; i < texts.length; i++) list.push(v.string(texts[i], `texts[${i}]`));
    const o = v.options(options);
    const truncate = v.boolean(o.truncate, 'truncate', false);
    const signal = v.abortSignal(o.signal);
    const limit = this.info().batchSize;
    const tokens = list.map((text, i) => {
      const ids = this.model.tokenize(text);
      if (ids.length === 0) ids.push(this.model.info.vocab.special.eos ?? 0);
      if (ids.length > limit) {
        if (!truncate) {
          throw new UnderstudyError('CONTEXT_OVERFLOW',
            `texts[${i}] has ${ids.length} tokens but this embedding context takes at most ${limit}: pass { truncate: true } to cut it, or create the context with a larger contextSize`);
        }
        ids.length = limit;
      }
      return new Int32Array(ids);
    });
    if (tokens.length === 0) return [];
    return this.#enqueue(async (native) => {
      if (signal?.aborted) throw abortedError('embedding');
      const flag = new (binding().AbortFlag)();
      const onAbort = () => flag.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        return await callNative(native.embed(tokens, flag), site);
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    });
  }

  /**
   * Applies `adapter` at `scale` (default 1) from the next call on; a new scale
   * replaces the old. Waits for the calls made before it. Rejects (never throws).
   */
  async setLora(adapter: LoraAdapter, scale = 1): Promise<void> {
    if (!(adapter instanceof LoraAdapter)) v.fail('LoraAdapter', 'adapter', adapter);
    v.number(scale, 'scale', 1, -100, 100);
    adapter._native(); // DISPOSED now rather than after the queue
    return this.#replaceLoras((current) => new Map(current).set(adapter, scale), [adapter]);
  }

  /** Stops applying `adapter`; output is again exactly the base model's. Rejects (never throws). */
  async removeLora(adapter: LoraAdapter): Promise<void> {
    if (!(adapter instanceof LoraAdapter)) v.fail('LoraAdapter', 'adapter', adapter);
    return this.#replaceLoras((current) => {
      const next = new Map(current);
      next.delete(adapter);
      return next;
    }, []);
  }

  /**
   * Replaces the whole applied set with `entries` ([adapter, scale] pairs; []
   * for the base model) in one exclusive step: calls made before it finish with
   * the old set, calls made after it run with the new one, and no call sees a
   * set in between (as setLora then removeLora would allow). Rejects (never throws).
   */
  async setLoras(entries: Array<[LoraAdapter, number]>): Promise<void> {
    if (!Array.isArray(entries)) v.fail('array of [adapter, scale] pairs', 'entries', entries);
    const next = new Map<LoraAdapter, number>();
    for (let i = 0; i < entries.length; i++) {
      const entry: unknown = entries[i];
      if (!Array.isArray(entry) || entry.length !== 2) v.fail('[adapter, scale] pair', `entries[${i}]`, entry);
      const [adapter, scale] = entry as unknown[];
      if (!(adapter instanceof LoraAdapter)) v.fail('LoraAdapter', `entries[${i}][0]`, adapter);
      const checked = v.number(scale, `entries[${i}][1]`, 1, -100, 100);
      if (next.has(adapter)) {
        throw invalidArgument(`entries[${i}] repeats the adapter ${adapter.path}: give each adapter once, with its one scale`);
      }
      adapter._native(); // DISPOSED now rather than after the queue
      next.set(adapter, checked);
    }
    return this.#replaceLoras(() => next, [...next.keys()]);
  }

  /** The adapters applied now, with their scales. */
  get loras(): ReadonlyMap<LoraAdapter, number> {
    return this.#loras;
  }

  /** Forgets the cached prompt; the next call evaluates its prompt from the start. */
  clearCache(): void {
    this.#live().clearCache();
  }

  /**
   * Frees the context: running and waiting calls fail with DISPOSED. The promise
   * resolves once its native memory is released and its threads have ended; it
   * never rejects, and calling dispose() again returns the same promise.
   */
  dispose(): Promise<void> {
    if (!this.#disposal) {
      const native = this.#native;
      this.#native = undefined;
      this.#onDispose();
      this.#disposal = settled(native?.dispose());
    }
    return this.#disposal;
  }

  /** For `using`: starts disposal without waiting for it. */
  [syncDispose](): void {
    void this.dispose();
  }

  /** For `await using`: disposal, awaited. */
  [asyncDispose](): Promise<void> {
    return this.dispose();
  }

  // One exclusive step: `compute` sees the set as the calls queued before it
  // left it, so setLora and removeLora calls made back to back all count.
  // `named` are the adapters the caller asked for: DISPOSED if freed while waiting.
  #replaceLoras(compute: (current: ReadonlyMap<LoraAdapter, number>) => Map<LoraAdapter, number>, named: LoraAdapter[]): Promise<void> {
    return this.#enqueue((native) => {
      for (const adapter of named) adapter._native();
      const next = compute(this.#loras);
      // An adapter disposed since it was applied is being detached: leave it out.
      for (const adapter of next.keys()) if (adapter.disposed) next.delete(adapter);
      try {
        native.setAdapters([...next].map(([adapter, scale]) => [adapter._native(), scale]));
      } catch (err) {
        throw fromNative(err);
      }
      this.#loras = next;
    });
  }

  // Runs `fn` alone: after every call made before it has settled.
  #enqueue<T>(fn: (native: NativeContext) => T | Promise<T>): Promise<T> {
    this.#live();
    const run = Promise.allSettled([this.#exclusive, ...this.#inflight]).then(() => {
      const native = this.#native;
      if (!native) throw disposedError('context');
      return fn(native);
    });
    this.#exclusive = run.catch(() => undefined);
    return run;
  }

  // Submits a generation after any exclusive call made before it.
  #checkQueue(): void {
    if (this.#inflight.size >= this.#sequences + this.#maxQueued) {
      throw new UnderstudyError('QUEUE_FULL',
        `${this.#inflight.size} generations are running or waiting on this context (${this.#sequences} sequences + maxQueued ${this.#maxQueued}): wait for some to finish, or create the context with more sequences or a larger maxQueued`);
    }
  }

  #submit(generation: Generation): void {
    const run = this.#exclusive.then(() => {
      const native = this.#native;
      if (!native) return generation._fail(disposedError('context'));
      return generation._run(native);
    });
    this.#inflight.add(run);
    void run.finally(() => this.#inflight.delete(run));
  }

  // Every failure, bad arguments included, comes back in the Generation (on
  // iteration and on `result`), never as a throw: generate(), chat() and
  // complete() report errors the one asynchronous way.
  #start(prompt: Prompt, options: GenerateOptions | undefined, stream: boolean, site: Error): Generation {
    let tokens: Int32Array;
    let parsed: ParsedGenerateOptions;
    try {
      this.#live();
      if (this.#embeddings) {
        throw new UnderstudyError('INVALID_ARGUMENT', 'this context was created for embeddings: create another without { embeddings: true } to generate');
      }
      // Grammars are checked here (limits, syntax) and parsed natively off this thread.
      parsed = parseGenerateOptions(options);
      tokens = this.#promptTokens(prompt, parsed);
      this.#checkQueue();
    } catch (err) {
      return Generation._failed(callerOrNative(err, site), stream);
    }
    const generation = new Generation(tokens, parsed, stream, site);
    this.#submit(generation);
    return generation;
  }

  #promptTokens(prompt: Prompt, parsed: ParsedGenerateOptions): Int32Array {
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
    return tokens;
  }


  #live(): NativeContext {
    if (!this.#native) throw disposedError('context');
    return this.#native;
  }
}

// llama.cpp makes room for one output per sequence in a batch of
// min(contextSize, batchSize) tokens, and aborts the process (a GGML_ASSERT in
// llama_context::output_reserve) at context creation when there are more
// sequences than that; it also caps sequences at 256 (LLAMA_MAX_SEQ). An
// embedding context's default (8 texts per batch) shrinks to fit instead.
function parseSequences(value: unknown, embeddings: boolean, contextSize: number, batchSize: number): number {
  const room = Math.min(contextSize, batchSize);
  const sequences = v.integer(value, 'sequences', embeddings ? Math.min(8, room) : 1, 1, 256);
  if (sequences > room) {
    const by = contextSize <= batchSize ? `contextSize (${contextSize})` : `batchSize (${batchSize})`;
    throw invalidArgument(`Expected sequences at most ${by} but received ${sequences}: every sequence needs room for a token in one batch of min(contextSize, batchSize); raise ${contextSize <= batchSize ? 'contextSize' : 'batchSize'} or lower sequences`);
  }
  return sequences;
}

// An error from our checks or the binding (which always carries a code) becomes
// an UnderstudyError; anything else was thrown by the caller's own code (a
// getter in their options, say) and goes back to them as it is.
function callerOrNative(err: unknown, site: Error): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  // Only our own codes: a caller's Node error (ENOENT, ERR_*) also carries a string code.
  return err instanceof UnderstudyError || isErrorCode(code) ? fromNative(err, site) : err;
}
