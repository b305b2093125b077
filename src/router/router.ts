// The router: every call goes through here and is answered from the cheapest
// place that is good enough: the exact cache, the semantic cache, the local
// model once its task is ready, or the remote API. Remote answers are logged
// to the dataset, and some are also answered locally in the background to
// measure readiness. This file holds the public face (methods, close); a
// call's way is call-path.ts, what is learned from calls is learning.ts.
import { EventEmitter } from 'node:events';
import { resolve } from 'node:path';
import { UnderstudyError, invalidArgument } from '../errors.js';
import type { Backend, Health } from './backend.js';
import { CallPath } from './call-path.js';
import { realClock, type Clock } from './clock.js';
import { displayUrl, type ResolvedSettings } from './config.js';
import type { RouterCore } from './core.js';
import { exportJsonl, type DatasetRow } from './dataset.js';
import type { Embedder } from './embedder.js';
import type { RouterEventArgs, RouterEvents } from './events.js';
import { checkLearner, trainingUnsupported, whyNoTraining, type AdapterInfo, type Learner, type LearnerHooks, type RoundReport } from './learner.js';
import { Learning } from './learning.js';
import { makeLogSink, type LogSink } from './log-sink.js';
import type { ReadinessState } from './readiness.js';
import { openRouterStores, type RouterStores } from './router-stores.js';
import { makeRedactor, redactError } from './redact.js';
import type { RouterResult } from './router-types.js';
import { checkTask, type ChatRequest, type CompleteRequest } from './request.js';
import type { SemanticState } from './semantic-fitness.js';
import * as v from '../validate.js';
import { errorText } from '../validate.js';
import { RouterStream } from './stream.js';
import { Warnings } from './warnings.js';
import { embeddingModelName, embedWith, type EmbedResult } from './router-embed.js';

// The option and result shapes live in router-types.ts (a part can take them
// without the class); they stay part of this module's face.
export type { RouterOptions, RouterResult } from './router-types.js';

type Streamed<R> = R & { stream: true };

export { createRouter } from './create-router.js';

export class Router extends EventEmitter<RouterEventArgs> {
  readonly settings: Readonly<ResolvedSettings>;
  readonly local: Backend | undefined;
  readonly remote: Backend | undefined;
  readonly cacheDir: string;
  /** Whether the semantic cache is on: asked for (semanticCache) and the embedder is fit for it. */
  readonly semanticCache: boolean = false;
  #embedder: Embedder | undefined;
  #owned: { close(): Promise<void> }[];
  #stores: RouterStores;
  #learning: Learning;
  #path: CallPath;
  #learner: Learner | undefined;
  #redact: (text: string) => string;
  #sink: LogSink;
  #warnings: Warnings;
  #calls = new Set<Promise<unknown>>();
  #closed = false;
  #closing: Promise<void> | undefined;

  /** @internal Use createRouter(). */
  constructor(settings: ResolvedSettings, local: Backend | undefined, remote: Backend | undefined,
    embedder: Embedder | undefined, owned: { close(): Promise<void> }[], clock: Clock = realClock,
    semantic: SemanticState = { on: false }, log?: LogSink) {
    super();
    this.settings = Object.freeze({ ...settings, apiKey: settings.apiKey ? '[REDACTED]' : undefined, apiBase: displayUrl(settings.apiBase) });
    this.local = local;
    this.remote = remote;
    this.#embedder = embedder;
    this.#owned = owned;
    this.cacheDir = resolve(settings.cacheDir);
    this.#redact = makeRedactor([settings.apiKey]);
    this.#sink = makeLogSink(log, settings.quiet);
    this.#warnings = new Warnings(this as unknown as EventEmitter, this.#sink, this.#redact);
    const core = this.#core(remote?.model ?? local!.model);
    const stores = openRouterStores(settings, this.cacheDir, clock, semantic.on,
      { warn: (m) => this.#warnings.warn(m), warnSoon: (m) => this.#warnings.warnSoon(m) });
    this.#stores = stores;
    this.#learning = new Learning(core, stores.dataset, stores.readiness);
    this.semanticCache = semantic.on;
    if (semantic.warning) this.#warnings.warnSoon(semantic.warning);
    this.#path = new CallPath(core, this.#learning, stores.cache, stores.semantic);
    if (typeof remote?.onRetry === 'function') {
      remote.onRetry(({ attempt, delayMs, error }) => {
        this.#warnings.warn(`remote attempt ${attempt} failed (${error.code}: ${error.message}); retrying in ${Math.round(delayMs)} ms`);
      });
    }
  }

  /** What the parts share (core.ts): read through this router, so they see it as it is now. */
  #core(model: string): RouterCore {
    const router = this;
    return {
      settings: this.settings,
      local: this.local,
      remote: this.remote,
      embedder: this.#embedder,
      model,
      cacheDir: this.cacheDir,
      get closed() {
        return router.#closed;
      },
      redact: (text) => this.#redact(text),
      log: (line) => this.#sink(this.#redact(line)),
      warn: (message) => this.#warnings.warn(message),
      emit: (event, payload) => void this.#emitTyped(event, payload),
    };
  }

  #emitTyped<K extends keyof RouterEvents>(event: K, payload: RouterEvents[K]): boolean {
    // EventEmitter's own emit is typed through RouterEventArgs; this spells the one-payload form.
    return (this.emit as (event: K, payload: RouterEvents[K]) => boolean)(event, payload);
  }

  /** Whether answers can be compared (readiness, held-out scores): an embedder option, the embedding model or the local model. */
  get hasEmbedder(): boolean {
    return this.#embedder !== undefined;
  }

  /** The name of what embed() embeds with: the embedding model's, the local model's, or 'custom' for an embedder function; undefined without one. */
  get embeddingModel(): string | undefined {
    return embeddingModelName(this.#embedder, this.settings.embeddingModel, this.local);
  }

  /**
   * Unit-length embeddings of `texts`, with the router's embedder (the one the
   * semantic cache and readiness use). NO_BACKEND when the router has none.
   */
  async embed(texts: string[], options?: { signal?: AbortSignal }): Promise<EmbedResult> {
    this.#open();
    const embedder = this.#embedder;
    if (!embedder) {
      throw new UnderstudyError('NO_BACKEND', 'no embedder: set UNDERSTUDY_EMBEDDING_MODEL, load a local model, or pass the embedder option');
    }
    return this.#track(embedWith(embedder, this.embeddingModel!, texts, options));
  }

  /** Answers a conversation. With `stream: true`, returns a stream of text pieces. */
  chat(request: Streamed<ChatRequest>): RouterStream<RouterResult>;
  chat(request: ChatRequest & { stream?: false }): Promise<RouterResult>;
  chat(request: ChatRequest & { stream?: boolean }): Promise<RouterResult> | RouterStream<RouterResult> {
    return this.#start('chat', request);
  }

  /** Continues a prompt (no chat template). With `stream: true`, returns a stream of text pieces. */
  complete(request: Streamed<CompleteRequest>): RouterStream<RouterResult>;
  complete(request: CompleteRequest & { stream?: false }): Promise<RouterResult>;
  complete(request: CompleteRequest & { stream?: boolean }): Promise<RouterResult> | RouterStream<RouterResult> {
    return this.#start('complete', request);
  }

  #start(kind: 'chat' | 'complete', request: (ChatRequest | CompleteRequest) & { stream?: boolean }) {
    let stream: boolean;
    try {
      stream = (request as { stream?: unknown } | null | undefined)?.stream === true;
    } catch (err) {
      // A getter or Proxy trap of the caller's threw: the call rejects with it (an
      // async method never throws), unchanged, as it would from the request check.
      return this.#track(Promise.reject(err));
    }
    if (!stream) return this.#track(this.#path.call(kind, request, undefined, undefined));
    // The stream's own abort joins the request's signal after the request is
    // checked: the caller's object is never copied (a Proxy's traps would run).
    const controller = new AbortController();
    return new RouterStream<RouterResult>((push, start) => this.#track(this.#path.call(kind, request, push, controller.signal, start)),
      () => controller.abort());
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#calls.add(promise);
    const done = () => this.#calls.delete(promise);
    promise.then(done, done);
    return promise;
  }

  /** Every method after close() fails with CLOSED: sync ones throw, async ones reject. */
  #open(): void {
    if (this.#closed) throw new UnderstudyError('CLOSED', 'the router has been closed');
  }

  /** A task's readiness: the rolling similarity of local to remote answers (of the adapter in use). */
  readiness(task: string): ReadinessState {
    this.#open();
    return this.#learning.readiness.state(checkTask(task));
  }

  /** The remote interactions logged so far, in order (optionally of one task). */
  datasetRows(task?: string): DatasetRow[] {
    this.#open();
    return [...this.#learning.dataset.rows(task === undefined ? undefined : checkTask(task))];
  }

  /** The tasks in the dataset, with their row counts. */
  datasetTasks(): { task: string; rows: number }[] {
    this.#open();
    return this.#learning.dataset.tasks();
  }

  /** Writes the dataset as JSONL in chat format; returns the number of rows. */
  async exportDataset(path: string, options: { task?: string } = {}): Promise<number> {
    this.#open();
    v.nonEmptyString(path, 'path');
    // fs refuses a NUL in a path with a raw TypeError, and only after the temp file's name was made from it.
    if (path.includes('\0')) v.fail('file path without NUL characters', 'path', path);
    const task = v.options(options).task;
    const rows = this.#learning.dataset.rows(task === undefined ? undefined : checkTask(task));
    // close() waits for an export as it does for calls: the dataset stays open under it.
    return this.#track(exportJsonl(rows, path));
  }

  /** Each backend's health check. */
  async health(): Promise<{ local?: Health; remote?: Health }> {
    this.#open();
    const [local, remote] = await Promise.all([this.local && this.#healthOf(this.local), this.remote && this.#healthOf(this.remote)]);
    return { ...(local ? { local } : {}), ...(remote ? { remote } : {}) };
  }

  /** A backend's own check. A caller's backend may have none, or one that throws: that reads as not ok. */
  async #healthOf(backend: Backend): Promise<Health> {
    const started = performance.now();
    try {
      if (typeof backend.health !== 'function') return { ok: false, latencyMs: 0, detail: 'this backend has no health()' };
      return await backend.health();
    } catch (err) {
      return { ok: false, latencyMs: performance.now() - started, detail: this.#redact(errorText(err)) };
    }
  }

  /** Resolves when no background check is queued or running. */
  async idle(): Promise<void> {
    this.#open();
    return this.#learning.idle();
  }

  /**
   * Attaches what trains the local model (src/train/ makes one): `make` gets
   * the hooks it may use and returns the learner that train(), adapters() and
   * rollback() delegate to. Once per router; close() closes it first.
   */
  attachLearner(make: (hooks: LearnerHooks) => Learner): Learner {
    this.#open();
    if (typeof make !== 'function') v.fail('function', 'make', make);
    if (this.#learner) throw invalidArgument('a learner is already attached to this router');
    this.#learner = checkLearner(make(this.#learning.hooks()));
    return this.#learner;
  }

  /** Runs one training round now (after the one running, if any); resolves with its report. */
  async train(options?: { signal?: AbortSignal }): Promise<RoundReport> {
    return this.#trainer().train(options);
  }

  /** The adapters trained for this router's local model, newest first. */
  adapters(): AdapterInfo[] {
    return this.#trainer().adapters();
  }

  /** Goes back to the current adapter's parent; resolves with the adapter now current (null = the base model). */
  async rollback(): Promise<AdapterInfo | null> {
    return this.#trainer().rollback();
  }

  #trainer(): Learner {
    this.#open();
    if (this.#learner) return this.#learner;
    throw trainingUnsupported(whyNoTraining(this.local, this.settings.trainLocal, this.#embedder !== undefined));
  }

  /**
   * Stops the learner (a round in progress is aborted), waits for calls in
   * flight, drops queued checks, writes everything out and releases the
   * models. Every step runs even when one fails; the first failure is then
   * reported (coded). Calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutDown();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #shutDown(): Promise<void> {
    this.#closed = true;
    let first: UnderstudyError | undefined;
    const step = async (what: string, fn: () => unknown) => {
      try {
        await fn();
      } catch (err) {
        first ??= redactError(err instanceof UnderstudyError ? err
          : new UnderstudyError('IO_ERROR', `close: ${what} failed: ${errorText(err)}`, { cause: err }), this.#redact);
      }
    };
    // First: a round may be adopting an adapter or reading the dataset, which must still be open.
    await step('closing the learner', () => this.#learner?.close());
    this.#learning.clear();
    await Promise.allSettled([...this.#calls]);
    this.#learning.stop();
    await this.#learning.idle();
    this.#learning.shut();
    const stores = this.#stores;
    await step('writing the answer cache', () => stores.cache.close());
    await step('saving the semantic index', () => stores.semantic?.close());
    await step('closing cache.db', () => stores.cacheDb.close());
    await step('closing dataset.db', () => stores.dataDb.close());
    for (const o of this.#owned) await step('releasing a model', () => o.close());
    if (first) throw first;
  }
}
