// The router: every call goes through here and is answered from the cheapest
// place that is good enough: the exact cache, the semantic cache, the local
// model once its task is ready, or the remote API. Remote answers are logged
// to the dataset, and some are also answered locally in the background to
// measure readiness.
import { EventEmitter } from 'node:events';
import { join, resolve } from 'node:path';
import { UnderstudyError, abortedError } from '../errors.js';
import { AnswerCache } from './answer-cache.js';
import { Background } from './background.js';
import type { Backend, BackendAnswer, BackendCall, Health, Usage } from './backend.js';
import { realClock, type Clock } from './clock.js';
import { displayUrl, settingSource, type ResolvedSettings, type RouterSettings } from './config.js';
import { Dataset, exportJsonl, type DatasetRow } from './dataset.js';
import type { EmbedFunction, Embedder } from './embedder.js';
import { callLine, failureLine, readinessLine, shadowLine, type CallEvent, type FailureEvent } from './log.js';
import { decide, fitsLocally, type Decision } from './policy.js';
import { Readiness, type ReadinessState } from './readiness.js';
import { makeRedactor, redactError } from './redact.js';
import { RemoteBackend } from './remote-backend.js';
import {
  cacheable, cacheKey, checkTask, embeddingText, normalize, paramsSignature,
  type ChatRequest, type CompleteRequest, type NormalRequest, type Route,
} from './request.js';
import type { SemanticState } from './semantic-fitness.js';
import { semanticSignature } from './semantic-guard.js';
import { SemanticIndex } from './semantic-index.js';
import * as v from '../validate.js';
import { errorText } from '../validate.js';
import { openRebuildable, openStore, type Db } from './store.js';
import { RouterStream } from './stream.js';
import { answerSimilarity } from './similarity.js';

export interface RouterOptions extends RouterSettings {
  /** A backend to use as the local model instead of loading `model`; false for none. */
  local?: Backend | false;
  /** A backend to use as the remote instead of the OpenAI-compatible one; false for none. */
  remote?: Backend | false;
  /** Embeds prompts and answers instead of the local or embedding model; false for none. */
  embedder?: EmbedFunction | false;
  /** Environment to read UNDERSTUDY_* settings from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** @internal Time for expiry, cooldowns and retry waits (tests pass their own). */
  clock?: Clock;
}

export interface RouterResult {
  text: string;
  route: Route;
  /** True when no backend was asked: a cache answered (or an identical call in flight). */
  cached: boolean;
  task: string;
  usage: Usage;
  latencyMs: number;
  /** Semantic-cache similarity for a semantic hit; otherwise the task's readiness, when known. */
  similarity?: number;
  /** The model whose answer this is. */
  model: string;
  /** Set when the chosen backend failed and the other answered. */
  fallbackFrom?: 'local' | 'remote';
}

type Streamed<R> = R & { stream: true };

export { createRouter } from './create-router.js';

export class Router extends EventEmitter {
  readonly settings: Readonly<ResolvedSettings>;
  readonly local: Backend | undefined;
  readonly remote: Backend | undefined;
  readonly cacheDir: string;
  /** Whether the semantic cache is on: asked for (semanticCache) and the embedder is fit for it. */
  readonly semanticCache: boolean = false;
  #embedder: Embedder | undefined;
  #owned: { close(): Promise<void> }[];
  #dataDb: Db;
  #cacheDb: Db;
  #dataset: Dataset;
  #readiness: Readiness;
  #cache: AnswerCache;
  #semantic: SemanticIndex | undefined;
  #background: Background;
  #redact: (text: string) => string;
  #inflight = new Map<string, Promise<RouterResult>>();
  #calls = new Set<Promise<unknown>>();
  #closed = false;
  #closing: Promise<void> | undefined;
  #model: string;
  /** Aborted by close(), so a slow shadow check or audit cannot hold it up. */
  #stopBackground = new AbortController();

  /** @internal Use createRouter(). */
  constructor(settings: ResolvedSettings, local: Backend | undefined, remote: Backend | undefined,
    embedder: Embedder | undefined, owned: { close(): Promise<void> }[], clock: Clock = realClock,
    semantic: SemanticState = { on: false }) {
    super();
    this.settings = Object.freeze({ ...settings, apiKey: settings.apiKey ? '[REDACTED]' : undefined, apiBase: displayUrl(settings.apiBase) });
    this.local = local;
    this.remote = remote;
    this.#embedder = embedder;
    this.#owned = owned;
    this.#model = remote?.model ?? local!.model;
    this.cacheDir = resolve(settings.cacheDir);
    this.#redact = makeRedactor([settings.apiKey]);
    const dirSource = settingSource(settings, 'cacheDir');
    // The dataset cannot be made again: a file that does not open stops startup.
    const data = openStore(this.cacheDir, 'dataset.db', true, (db) => ({
      dataset: new Dataset(db),
      readiness: new Readiness(db, { threshold: settings.simThreshold, window: settings.readinessWindow, min: settings.readinessMin, now: clock.now }),
    }), dirSource);
    this.#dataDb = data.db;
    this.#dataset = data.value.dataset;
    this.#readiness = data.value.readiness;
    try {
      // The cache can: a broken one is set aside and started again.
      const cache = openRebuildable(this.cacheDir, 'cache.db', (db) => new AnswerCache(db, {
        maxEntries: settings.cacheMaxEntries,
        ...(settings.cacheTtl ? { ttl: settings.cacheTtl } : {}),
        onRemove: (rows) => this.#semantic?.remove(rows),
        onError: (err) => this.#warn(`cache write failed: ${errorText(err)}`),
        now: clock.now,
      }), (why) => this.#warnSoon(`the answer cache could not be opened (${why})`), clock.now, dirSource);
      this.#cacheDb = cache.db;
      this.#cache = cache.value;
    } catch (err) {
      this.#dataDb.close();
      throw err;
    }
    try {
      this.#semantic = semantic.on ? new SemanticIndex(join(this.cacheDir, 'semantic'), this.#cacheDb, {
        onError: (err) => this.#warn(`semantic index: ${errorText(err)}`),
        onWarning: (message) => this.#warn(message),
      }) : undefined;
      this.semanticCache = semantic.on;
      if (semantic.warning) this.#warnSoon(semantic.warning);
    } catch (err) {
      this.#cacheDb.close();
      this.#dataDb.close();
      throw new UnderstudyError('INVALID_CONFIG',
        `cannot use ${join(this.cacheDir, 'semantic')} for the semantic index: ${errorText(err)}`, { cause: err });
    }
    this.#background = new Background(16, (err) => this.#warn(`background check failed: ${errorText(err)}`));
    if (remote instanceof RemoteBackend) {
      remote.onRetry = ({ attempt, delayMs, error }) => {
        this.#warn(`remote attempt ${attempt} failed (${error.code}: ${this.#redact(error.message)}); retrying in ${Math.round(delayMs)} ms`);
      };
    }
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
    if (!stream) return this.#track(this.#call(kind, request, undefined, undefined));
    // The stream's own abort joins the request's signal after the request is
    // checked: the caller's object is never copied (a Proxy's traps would run).
    const controller = new AbortController();
    return new RouterStream<RouterResult>((push) => this.#track(this.#call(kind, request, push, controller.signal)), () => controller.abort());
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#calls.add(promise);
    const done = () => this.#calls.delete(promise);
    promise.then(done, done);
    return promise;
  }

  async #call(kind: 'chat' | 'complete', raw: unknown, onText: ((t: string) => void) | undefined,
    stop: AbortSignal | undefined): Promise<RouterResult> {
    const started = performance.now();
    try {
      return await this.#route(kind, raw, onText, started, stop);
    } catch (err) {
      // The caller's own exception (a getter of their request threw) is theirs to
      // handle: passed through unchanged, not disguised as a NATIVE_ERROR of ours.
      if (err instanceof CallersOwn) throw err.error;
      const error = redactError(err instanceof UnderstudyError ? err : new UnderstudyError('NATIVE_ERROR', errorText(err), { cause: err }), this.#redact);
      let task: unknown;
      try {
        task = (raw as { task?: unknown } | null)?.task;
      } catch {
        // A throwing getter: the event goes without a task.
      }
      const event: FailureEvent = { task: typeof task === 'string' ? task : undefined, code: error.code, message: error.message, latencyMs: performance.now() - started };
      if (!this.settings.quiet) process.stderr.write(`${failureLine(event)}\n`);
      this.emit('failure', event);
      throw error;
    }
  }

  async #route(kind: 'chat' | 'complete', raw: unknown, onText: ((t: string) => void) | undefined, started: number,
    stop: AbortSignal | undefined): Promise<RouterResult> {
    if (this.#closed) throw new UnderstudyError('CLOSED', 'the router has been closed');
    const request = callersOwn(() => normalize(kind, raw, this.settings));
    // chat() and complete() read `stream`; it must be a boolean too (normalize has checked that raw is an object).
    callersOwn(() => v.boolean((raw as { stream?: unknown }).stream, 'stream', false));
    if (stop) request.signal = request.signal ? AbortSignal.any([request.signal, stop]) : stop;
    if (request.signal?.aborted) throw abortedError('the call');
    const key = cacheable(request, this.settings) ? cacheKey(request, this.#model) : undefined;
    // A forced backend route still fills the caches, but does not read them.
    const useCache = key !== undefined && request.route !== 'local' && request.route !== 'remote';

    if (useCache && key) {
      const hit = this.#cacheGet(key);
      if (hit) return this.#finish(request, started, { text: hit.answer, usage: hit.usage, model: hit.model }, 'cache', 'exact hit', onText, { cached: true });
      // An identical call already on its way: share its answer rather than pay twice.
      // If it fails (its caller may have aborted it), this call makes its own way.
      const pending = request.route === 'auto' ? this.#inflight.get(key) : undefined;
      if (pending) {
        const first = await untilAborted(pending, request.signal).catch((err: unknown) => {
          if (err instanceof UnderstudyError && err.code === 'ABORTED' && request.signal?.aborted) throw err;
          return undefined;
        });
        if (first) return this.#finish(request, started, { text: first.text, usage: first.usage, model: first.model }, 'cache', 'joined an identical call', onText, { cached: true });
      }
    }
    const work = this.#answer(request, started, key, useCache, onText);
    if (!key || !useCache || request.route !== 'auto' || this.#inflight.has(key)) return work;
    this.#inflight.set(key, work);
    try {
      return await work;
    } finally {
      this.#inflight.delete(key);
    }
  }

  #cacheGet(key: string) {
    try {
      return this.#cache.get(key);
    } catch (err) {
      this.#warn(`cache read failed: ${errorText(err)}`);
      return undefined;
    }
  }

  async #answer(request: NormalRequest, started: number, key: string | undefined, useCache: boolean,
    onText: ((t: string) => void) | undefined): Promise<RouterResult> {
    let signature = paramsSignature(request, this.#model);
    let embedding: Float32Array | undefined;
    if (key && this.#semantic && this.#embedder) {
      // The semantic cache only saves work: when it fails, the call goes on without it.
      try {
        const text = embeddingText(request);
        // A hit must also agree on the prompt's numbers, quotes, code, names and negations (semantic-guard.ts).
        // ...and must have been embedded by the same embedder (vectors of two models do not compare).
        signature = semanticSignature(`${signature}|${this.#embedder.id}`, text);
        [embedding] = await this.#embedder.embed([text]);
        const near = useCache && embedding ? await this.#semantic.nearest(request.task, embedding, signature) : undefined;
        const entry = near && near.similarity >= this.settings.cacheThreshold ? this.#cache.byId(near.id) : undefined;
        if (near && entry && entry.signature === signature) {
          return this.#finish(request, started, { text: entry.answer, usage: entry.usage, model: entry.model }, 'semantic-cache',
            'semantic hit', onText, { cached: true, similarity: near.similarity });
        }
      } catch (err) {
        if (request.signal?.aborted) throw abortedError('the call');
        embedding = undefined;
        this.#warn(`semantic cache skipped: ${errorText(err)}`);
      }
    }
    if (request.route === 'cache') {
      throw new UnderstudyError('CACHE_MISS', `route "cache" was asked for but no cached answer matches this ${request.kind} call of task ${request.task}`);
    }
    const call: BackendCall = {
      kind: request.kind,
      task: request.task,
      ...(request.messages ? { messages: request.messages } : {}),
      ...(request.prompt !== undefined ? { prompt: request.prompt } : {}),
      params: request.params,
      ...(request.signal ? { signal: request.signal } : {}),
    };
    const readiness = this.#readiness.state(request.task);
    const decision = decide({
      choice: request.route,
      local: this.local,
      remote: this.remote,
      remoteCoolingMs: this.remote instanceof RemoteBackend ? this.remote.coolingFor() : 0,
      readiness,
      call,
    });
    const { answer, route, fallbackFrom } = await this.#ask(decision, call, onText);
    // The dataset row first: an answer must never be cached without being logged.
    if (route === 'remote') this.#log(request, answer, started, 'call');
    // Only answers we would give again are reused: not a fallback's, nor a local
    // one the policy did not choose (forced, or while the remote rests).
    const trusted = route === 'remote' ? !fallbackFrom : decision.reason === 'ready' || decision.reason === 'api off';
    if (key && trusted) this.#remember(request, key, signature, answer, embedding);
    if (route === 'remote') {
      if (this.local && this.#embedder && Math.random() < this.settings.shadowRate) this.#shadow(call, answer);
    } else if (decision.reason === 'ready' && this.remote && this.#embedder && Math.random() < this.settings.auditRate) {
      this.#audit(call, answer);
    }
    const reason = fallbackFrom ? `${fallbackFrom} failed` : decision.reason;
    return this.#finish(request, started, answer, route, reason, undefined, {
      cached: false, ...(readiness.readiness === null ? {} : { similarity: readiness.readiness }), ...(fallbackFrom ? { fallbackFrom } : {}),
    });
  }

  #remember(request: NormalRequest, key: string, signature: string, answer: BackendAnswer, embedding: Float32Array | undefined): void {
    try {
      const id = this.#cache.put({
        key, task: request.task, signature, answer: this.#redact(answer.text), usage: answer.usage, model: answer.model,
        ...(embedding ? { embedding } : {}),
      });
      if (embedding) this.#semantic?.add(request.task, id, embedding, signature);
    } catch (err) {
      this.#warn(`cache write failed: ${errorText(err)}`);
    }
  }

  /** Asks the decided backend, and the fallback when it fails (unless text already streamed). */
  async #ask(decision: Decision, call: BackendCall, onText: ((t: string) => void) | undefined) {
    let delivered = false;
    const streaming = onText ? { onText: (t: string) => { delivered = true; onText(t); } } : {};
    const backend = (which: 'local' | 'remote') => (which === 'local' ? this.local! : this.remote!);
    try {
      const answer = await backend(decision.primary).answer({ ...call, ...streaming });
      return { answer, route: decision.primary as Route, fallbackFrom: undefined };
    } catch (err) {
      const error = err instanceof UnderstudyError ? err : new UnderstudyError('NATIVE_ERROR', errorText(err), { cause: err });
      if (call.signal?.aborted) throw abortedError('the call');
      if (!decision.fallback || delivered || error.code === 'ABORTED') throw error;
      this.#warn(`${decision.primary} failed (${error.code}: ${error.message}); ${decision.fallback} answers instead`);
      try {
        const answer = await backend(decision.fallback).answer({ ...call, ...streaming });
        return { answer, route: decision.fallback as Route, fallbackFrom: decision.primary };
      } catch (second) {
        if (call.signal?.aborted) throw abortedError('the call');
        const e2 = second instanceof UnderstudyError ? second : new UnderstudyError('NATIVE_ERROR', errorText(second));
        throw new UnderstudyError(error.code,
          `${error.message}; the ${decision.fallback} fallback failed too (${e2.code}: ${e2.message})`, { cause: error });
      }
    }
  }

  #log(request: NormalRequest, answer: BackendAnswer, started: number, source: DatasetRow['source']): void {
    const redact = this.#redact;
    this.#dataset.append({
      task: request.task,
      kind: request.kind,
      ...(request.messages ? { messages: request.messages.map((m) => ({ role: m.role, content: redact(m.content) })) } : {}),
      ...(request.prompt !== undefined ? { prompt: redact(request.prompt) } : {}),
      answer: redact(answer.text),
      params: request.params,
      usage: answer.usage,
      model: answer.model,
      source,
      latencyMs: performance.now() - started,
    });
  }

  #finish(request: NormalRequest, started: number, answer: Pick<BackendAnswer, 'text' | 'usage' | 'model'>, route: Route, reason: string,
    onText: ((t: string) => void) | undefined, extra: { cached: boolean; similarity?: number; fallbackFrom?: 'local' | 'remote' }): RouterResult {
    // Cached answers come whole; a streaming caller gets them as one piece.
    if (onText && answer.text) onText(answer.text);
    const result: RouterResult = { text: answer.text, route, task: request.task, usage: answer.usage, latencyMs: performance.now() - started, model: answer.model, ...extra };
    const event: CallEvent = {
      task: result.task, route, latencyMs: result.latencyMs, reason, usage: result.usage,
      ...(extra.similarity === undefined ? {} : { similarity: extra.similarity }),
      ...(extra.fallbackFrom ? { fallbackFrom: extra.fallbackFrom } : {}),
    };
    if (!this.settings.quiet) process.stderr.write(`${callLine(event)}\n`);
    this.emit('call', event);
    return result;
  }

  /** In the background: the local model answers what the remote just did; their similarity updates readiness. */
  #shadow(call: BackendCall, remote: BackendAnswer): void {
    this.#background.push(async () => {
      if (this.#closed || !fitsLocally(this.local!, call)) return;
      // Scored under the adapter that answers, even if another is adopted meanwhile.
      const generation = this.#readiness.generation;
      const local = await this.local!.answer({ ...call, signal: this.#stopBackground.signal, onText: undefined });
      await this.#compare(call.task, local.text, remote.text, 'shadow', generation);
    });
  }

  /** In the background: the remote answers what the (ready) local model did, so a task that got worse goes back. */
  #audit(call: BackendCall, local: BackendAnswer): void {
    const generation = this.#readiness.generation;
    this.#background.push(async () => {
      if (this.#closed) return;
      const started = performance.now();
      const remote = await this.remote!.answer({ ...call, signal: this.#stopBackground.signal, onText: undefined });
      const request = { kind: call.kind, task: call.task, messages: call.messages, prompt: call.prompt, params: call.params } as NormalRequest;
      this.#log(request, remote, started, 'audit');
      await this.#compare(call.task, local.text, remote.text, 'audit', generation);
    });
  }

  async #compare(task: string, localText: string, remoteText: string, kind: 'shadow' | 'audit', generation: number): Promise<void> {
    const similarity = await answerSimilarity(localText, remoteText, this.#embedder!.embed);
    if (this.#closed) return;
    const { before, after } = this.#readiness.record(task, similarity, kind, generation);
    const event = { task, kind, similarity, readiness: after.readiness, comparisons: after.comparisons, ready: after.ready };
    if (!this.settings.quiet) process.stderr.write(`${shadowLine(event)}\n`);
    this.emit('shadow', event);
    if (before.ready !== after.ready) {
      const change = { task, ready: after.ready, readiness: after.readiness, comparisons: after.comparisons, threshold: after.threshold };
      if (!this.settings.quiet) process.stderr.write(`${readinessLine(change)}\n`);
      this.emit('readiness', change);
    }
  }

  #warn(message: string): void {
    const safe = this.#redact(message);
    if (!this.settings.quiet) process.stderr.write(`[understudy] warning: ${safe}\n`);
    this.emit('warning', safe);
  }

  /** A warning from the constructor: its event waits until the caller could have listened. */
  #warnSoon(message: string): void {
    const safe = this.#redact(message);
    if (!this.settings.quiet) process.stderr.write(`[understudy] warning: ${safe}\n`);
    setImmediate(() => this.emit('warning', safe));
  }

  /** Every method after close() fails with CLOSED: sync ones throw, async ones reject. */
  #open(): void {
    if (this.#closed) throw new UnderstudyError('CLOSED', 'the router has been closed');
  }

  /** A task's readiness: the rolling similarity of local to remote answers. */
  readiness(task: string): ReadinessState {
    this.#open();
    return this.#readiness.state(checkTask(task));
  }

  /** The remote interactions logged so far, in order (optionally of one task). */
  datasetRows(task?: string): DatasetRow[] {
    this.#open();
    return [...this.#dataset.rows(task === undefined ? undefined : checkTask(task))];
  }

  /** The tasks in the dataset, with their row counts. */
  datasetTasks(): { task: string; rows: number }[] {
    this.#open();
    return this.#dataset.tasks();
  }

  /** Writes the dataset as JSONL in chat format; returns the number of rows. */
  async exportDataset(path: string, options: { task?: string } = {}): Promise<number> {
    this.#open();
    v.nonEmptyString(path, 'path');
    // fs refuses a NUL in a path with a raw TypeError, and only after the temp file's name was made from it.
    if (path.includes('\0')) v.fail('file path without NUL characters', 'path', path);
    const task = v.options(options).task;
    const rows = this.#dataset.rows(task === undefined ? undefined : checkTask(task));
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
    return this.#background.idle();
  }

  /**
   * Waits for calls in flight, drops queued checks, writes everything out and
   * releases the models. Every step runs even when one fails; the first
   * failure is then reported (coded). Calling it again returns the same promise.
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
    this.#background.clear();
    await Promise.allSettled([...this.#calls]);
    this.#stopBackground.abort();
    await this.#background.idle();
    let first: UnderstudyError | undefined;
    const step = async (what: string, fn: () => unknown) => {
      try {
        await fn();
      } catch (err) {
        first ??= redactError(err instanceof UnderstudyError ? err
          : new UnderstudyError('IO_ERROR', `close: ${what} failed: ${errorText(err)}`, { cause: err }), this.#redact);
      }
    };
    await step('writing the answer cache', () => this.#cache.close());
    await step('saving the semantic index', () => this.#semantic?.close());
    await step('closing cache.db', () => this.#cacheDb.close());
    await step('closing dataset.db', () => this.#dataDb.close());
    for (const o of this.#owned) await step('releasing a model', () => o.close());
    if (first) throw first;
  }
}

/** A caller's own exception, thrown by a getter or Proxy trap of their request while it was read. */
class CallersOwn {
  constructor(readonly error: unknown) {}
}

/** Runs `read`, which reads the caller's request: what it throws that is not ours is the caller's own. */
function callersOwn<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw err instanceof UnderstudyError ? err : new CallersOwn(err);
  }
}

/** Waits for `promise`, or fails with ABORTED as soon as `signal` aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortedError('the call'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortedError('the call'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
