// One call's way through the router: the request checked, the exact cache,
// an identical call in flight, the semantic cache, then the policy's choice of
// backend with the other as fallback; remote answers are logged and every
// answer we would give again is cached.
import { UnderstudyError, abortedError } from '../errors.js';
import * as v from '../validate.js';
import { errorText } from '../validate.js';
import type { AnswerCache } from './answer-cache.js';
import type { BackendAnswer, BackendCall } from './backend.js';
import type { RouterCore } from './core.js';
import type { Learning } from './learning.js';
import { callLine, failureLine, type CallEvent, type FailureEvent } from './log.js';
import { decide, type Decision } from './policy.js';
import { redactError } from './redact.js';
import {
  cacheable, cacheKey, embeddingText, normalize, paramsSignature,
  type NormalRequest, type Route,
} from './request.js';
import type { RouterResult } from './router-types.js';
import { semanticSignature } from './semantic-guard.js';
import type { SemanticIndex } from './semantic-index.js';
import type { StreamInfo } from './stream.js';
import { toolsActive, type FinishReason } from './tool-calls.js';
import { accepted, fromEntry, fromResult, storedCalls, type Answered } from './answer-shape.js';

/** Where a streaming caller's pieces go; `announce` tells who answers, once, before the first piece. */
type OnText = (((t: string) => void) & { announce?: (info: StreamInfo) => void }) | undefined;
type OnStart = ((info: StreamInfo) => void) | undefined;

export class CallPath {
  #core: RouterCore;
  #learning: Learning;
  #cache: AnswerCache;
  #semantic: SemanticIndex | undefined;
  #inflight = new Map<string, Promise<RouterResult>>();

  constructor(core: RouterCore, learning: Learning, cache: AnswerCache, semantic: SemanticIndex | undefined) {
    this.#core = core;
    this.#learning = learning;
    this.#cache = cache;
    this.#semantic = semantic;
  }

  /** Answers one call; a failure is logged, emitted and rejected with a coded, redacted error. */
  async call(kind: 'chat' | 'complete', raw: unknown, onText: OnText, stop: AbortSignal | undefined, onStart?: OnStart): Promise<RouterResult> {
    const started = performance.now();
    try {
      return await this.#route(kind, raw, announcing(onText, onStart), started, stop);
    } catch (err) {
      // The caller's own exception (a getter of their request threw) is theirs to
      // handle: passed through unchanged, not disguised as a NATIVE_ERROR of ours.
      if (err instanceof CallersOwn) throw err.error;
      const error = redactError(err instanceof UnderstudyError ? err : new UnderstudyError('NATIVE_ERROR', errorText(err), { cause: err }),
        (text) => this.#core.redact(text));
      let task: unknown;
      try {
        task = (raw as { task?: unknown } | null)?.task;
      } catch {
        // A throwing getter: the event goes without a task.
      }
      const event: FailureEvent = { task: typeof task === 'string' ? task : undefined, code: error.code, message: error.message, latencyMs: performance.now() - started };
      this.#core.log(failureLine(event));
      this.#emit('failure', event);
      throw error;
    }
  }

  async #route(kind: 'chat' | 'complete', raw: unknown, onText: OnText, started: number, stop: AbortSignal | undefined): Promise<RouterResult> {
    if (this.#core.closed) throw new UnderstudyError('CLOSED', 'the router has been closed');
    const settings = this.#core.settings;
    const request = callersOwn(() => normalize(kind, raw, settings));
    // chat() and complete() read `stream`; it must be a boolean too (normalize has checked that raw is an object).
    callersOwn(() => v.boolean((raw as { stream?: unknown }).stream, 'stream', false));
    if (stop) request.signal = request.signal ? AbortSignal.any([request.signal, stop]) : stop;
    if (request.signal?.aborted) throw abortedError('the call');
    const key = cacheable(request, settings) ? cacheKey(request, this.#core.model) : undefined;
    // A forced backend route still fills the caches, but does not read them.
    const useCache = key !== undefined && request.route !== 'local' && request.route !== 'remote';

    if (useCache && key) {
      const hit = this.#cacheGet(key);
      if (hit) return this.#finish(request, started, fromEntry(request, hit), 'cache', 'exact hit', onText, { cached: true });
      // An identical call already on its way: share its answer rather than pay twice.
      // If it fails (its caller may have aborted it), this call makes its own way.
      const pending = request.route === 'auto' ? this.#inflight.get(key) : undefined;
      if (pending) {
        const first = await untilAborted(pending, request.signal).catch((err: unknown) => {
          if (err instanceof UnderstudyError && err.code === 'ABORTED' && request.signal?.aborted) throw err;
          return undefined;
        });
        if (first) {
          return this.#finish(request, started, fromResult(first),
            'cache', 'joined an identical call', onText, { cached: true });
        }
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
      this.#core.warn(`cache read failed: ${errorText(err)}`);
      return undefined;
    }
  }

  async #answer(request: NormalRequest, started: number, key: string | undefined, useCache: boolean, onText: OnText): Promise<RouterResult> {
    const { embedder, settings, local, remote } = this.#core;
    let signature = paramsSignature(request, this.#core.model);
    let embedding: Float32Array | undefined;
    if (key && this.#semantic && embedder) {
      // The semantic cache only saves work: when it fails, the call goes on without it.
      try {
        const text = embeddingText(request);
        // A hit must also agree on the prompt's numbers, quotes, code, names and negations (semantic-guard.ts).
        // ...and must have been embedded by the same embedder (vectors of two models do not compare).
        signature = semanticSignature(`${signature}|${embedder.id}`, text);
        [embedding] = await embedder.embed([text]);
        const near = useCache && embedding ? await this.#semantic.nearest(request.task, embedding, signature) : undefined;
        const entry = near && near.similarity >= settings.cacheThreshold ? this.#cache.byId(near.id) : undefined;
        if (near && entry && entry.signature === signature) {
          return this.#finish(request, started, fromEntry(request, entry), 'semantic-cache',
            'semantic hit', onText, { cached: true, similarity: near.similarity });
        }
      } catch (err) {
        if (request.signal?.aborted) throw abortedError('the call');
        embedding = undefined;
        this.#core.warn(`semantic cache skipped: ${errorText(err)}`);
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
      ...(request.responseFormat ? { responseFormat: request.responseFormat } : {}),
      ...(request.tools ? { tools: request.tools } : {}),
      ...(request.toolChoice ? { toolChoice: request.toolChoice } : {}),
      ...(request.signal ? { signal: request.signal } : {}),
    };
    const readiness = this.#learning.readiness.state(request.task);
    // The readiness generation when the call is sent.
    const generation = this.#learning.readiness.generation;
    const decision = decide({ choice: request.route, local, remote, remoteCoolingMs: coolingFor(remote), readiness, call });
    // An answer that may be a tool call is asked for whole (see #ask) and delivered by #finish when it is text.
    const held = toolsActive(request.tools, request.toolChoice);
    const asked = await this.#ask(decision, call, held ? undefined : onText);
    const { route, fallbackFrom } = asked;
    const answer = accepted(request, asked.answer, route === 'local' ? this.#core.local! : this.#core.remote!);
    // The dataset row first: an answer must never be cached without being logged.
    if (route === 'remote') this.#learning.logRow(request, answer, started, 'call');
    // Only answers we would give again are reused: not a fallback's, nor a local
    // one the policy did not choose (forced, or while the remote rests).
    const trusted = route === 'remote' ? !fallbackFrom : decision.reason === 'ready' || decision.reason === 'api off';
    // An answer cut off by maxTokens is not one to give again: a hit could not say it was cut ('length').
    if (key && trusted && answer.finishReason !== 'length') this.#remember(request, key, signature, answer, embedding);
    // The adapter that made a local answer: as the backend reports it, else the one current when the call was sent.
    const adapter = route === 'local' ? this.#learning.versionOf(answer, generation) : 0;
    this.#learning.afterCall(call, answer, route === 'local' ? 'local' : 'remote', decision.reason === 'ready', adapter);
    const reason = fallbackFrom ? `${fallbackFrom} failed` : decision.reason;
    return this.#finish(request, started, answer, route, reason, held ? onText : undefined, {
      cached: false, ...(readiness.readiness === null ? {} : { similarity: readiness.readiness }), ...(fallbackFrom ? { fallbackFrom } : {}),
      ...(adapter > 0 ? { adapter } : {}),
    });
  }

  #remember(request: NormalRequest, key: string, signature: string, answer: BackendAnswer, embedding: Float32Array | undefined): void {
    try {
      const id = this.#cache.put({
        key, task: request.task, signature, answer: this.#core.redact(answer.text), usage: answer.usage, model: answer.model,
        calls: storedCalls(answer, (t) => this.#core.redact(t)),
        ...(embedding ? { embedding } : {}),
      });
      if (embedding) this.#semantic?.add(request.task, id, embedding, signature);
    } catch (err) {
      this.#core.warn(`cache write failed: ${errorText(err)}`);
    }
  }

  /** Asks the decided backend, and the fallback when it fails (unless text already streamed). */
  async #ask(decision: Decision, call: BackendCall, onText: OnText) {
    let delivered = false;
    const backend = (which: 'local' | 'remote') => (which === 'local' ? this.#core.local! : this.#core.remote!);
    // The first piece names the backend it comes from (the stream's info).
    const streaming = (which: 'local' | 'remote') => (onText ? {
      onText: (t: string) => {
        if (!delivered) onText.announce?.({ route: which, task: call.task, model: backend(which).model });
        delivered = true;
        onText(t);
      },
    } : {});
    try {
      const answer = await backend(decision.primary).answer({ ...call, ...streaming(decision.primary) });
      return { answer, route: decision.primary as Route, fallbackFrom: undefined };
    } catch (err) {
      const error = err instanceof UnderstudyError ? err : new UnderstudyError('NATIVE_ERROR', errorText(err), { cause: err });
      if (call.signal?.aborted) throw abortedError('the call');
      if (!decision.fallback || delivered || error.code === 'ABORTED') throw error;
      this.#core.warn(`${decision.primary} failed (${error.code}: ${error.message}); ${decision.fallback} answers instead`);
      try {
        const answer = await backend(decision.fallback).answer({ ...call, ...streaming(decision.fallback) });
        return { answer, route: decision.fallback as Route, fallbackFrom: decision.primary };
      } catch (second) {
        if (call.signal?.aborted) throw abortedError('the call');
        const e2 = second instanceof UnderstudyError ? second : new UnderstudyError('NATIVE_ERROR', errorText(second));
        throw new UnderstudyError(error.code,
          `${error.message}; the ${decision.fallback} fallback failed too (${e2.code}: ${e2.message})`, { cause: error });
      }
    }
  }

  #finish(request: NormalRequest, started: number, answer: Answered, route: Route, reason: string,
    onText: OnText,
    extra: { cached: boolean; similarity?: number; fallbackFrom?: 'local' | 'remote'; adapter?: number }): RouterResult {
    // Cached answers come whole; a streaming caller gets them as one piece. Tool calls are not text: none.
    if (onText && answer.text && !answer.toolCalls) {
      onText.announce?.({ route, task: request.task, model: answer.model });
      onText(answer.text);
    }
    const finishReason: FinishReason = answer.toolCalls ? 'tool_calls' : answer.finishReason === 'length' ? 'length' : 'stop';
    const result: RouterResult = {
      text: answer.text, ...(answer.toolCalls ? { toolCalls: answer.toolCalls, ...(answer.content ? { content: answer.content } : {}) } : {}), finishReason,
      route, task: request.task, usage: answer.usage, latencyMs: performance.now() - started, model: answer.model, ...extra,
    };
    const event: CallEvent = {
      task: result.task, route, latencyMs: result.latencyMs, reason, usage: result.usage,
      ...(extra.similarity === undefined ? {} : { similarity: extra.similarity }),
      ...(extra.fallbackFrom ? { fallbackFrom: extra.fallbackFrom } : {}),
      ...(extra.adapter === undefined ? {} : { adapter: extra.adapter }),
    };
    this.#core.log(callLine(event));
    this.#emit('call', event);
    return result;
  }

  /**
   * The 'call' and 'failure' events: a listener that throws (a metrics hook
   * handed a bad number, a user's handler) becomes a warning and never fails
   * the call, nor turns every later call, cache hits included, into a failure.
   */
  #emit<K extends 'call' | 'failure'>(event: K, payload: K extends 'call' ? CallEvent : FailureEvent): void {
    try {
      this.#core.emit(event, payload as never);
    } catch (err) {
      try {
        this.#core.warn(`a listener of the '${event}' event failed: ${errorText(err)}`);
      } catch {
        // The 'warning' listener threw too; its line was written before the event.
      }
    }
  }
}

/** A streaming caller's piece function that also announces who answers (once, before the first piece). */
function announcing(onText: OnText, onStart: OnStart): OnText {
  if (!onText) return undefined;
  let announced = false;
  const push = (t: string) => onText(t);
  return Object.assign(push, {
    announce: (info: StreamInfo) => {
      if (announced) return;
      announced = true;
      onStart?.(info);
    },
  });
}

/** A backend's rest after failures, when it has that capability (a caller's backend may not, or may throw). */
function coolingFor(backend: { coolingFor?(): number } | undefined): number {
  if (typeof backend?.coolingFor !== 'function') return 0;
  try {
    const ms = backend.coolingFor();
    return typeof ms === 'number' && ms > 0 ? ms : 0;
  } catch {
    return 0;
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
