// The remote backend: any OpenAI-compatible API through the `openai` client.
// We retry ourselves (the client's own retries are off) so that backoff,
// Retry-After, the cooldown and the error codes follow one policy we can test.
import OpenAI from 'openai';
import { UnderstudyError, invalidArgument } from '../errors.js';
import * as v from '../validate.js';
import { timedHealth, type Backend, type BackendAnswer, type BackendCall, type Health, type Usage } from './backend.js';
import { finishReasonOf, messagesBody, readChatAnswer, readCompletionAnswer, requestBody, usageOf } from './remote-body.js';
import { toolsActive, type FinishReason } from './tool-calls.js';
import { checkCall } from './backend-call.js';
import { AnswerTooLarge, boundedFetch, maxAnswerBytes, withLimits } from './bounded-fetch.js';
import { checkClock, realClock, type Clock } from './clock.js';
import { MIN_KEY_LENGTH, makeRedactor, redactError } from './redact.js';
import { classify, type RemoteFailure } from './remote-errors.js';
import { AttemptTimer, untilAborted } from './remote-attempt.js';

export interface RemoteBackendOptions {
  baseURL: string;
  model: string;
  apiKey?: string;
  /** Per attempt, in ms; for a stream, the longest silence between pieces. */
  timeoutMs: number;
  /** Longest a streamed answer may take in all, in ms (default 600000). */
  streamTimeoutMs?: number;
  /** Retries after a failed attempt (default 3). */
  retries?: number;
  /** First retry delay in ms, doubled each time (default 500). */
  retryDelayMs?: number;
  /** Longest wait for one retry, in ms (default 30000). */
  maxRetryDelayMs?: number;
  /** Calls failed in a row that start a cooldown (default 3)... */
  cooldownAfter?: number;
  /** ...during which the remote is not tried, in ms (default 30000). */
  cooldownMs?: number;
  /** @internal Time for the cooldown and the retry waits (tests pass their own). */
  clock?: Clock;
}

export type RetryListener = (info: { attempt: number; delayMs: number; error: UnderstudyError }) => void;

export class RemoteBackend implements Backend {
  readonly kind = 'remote' as const;
  readonly model: string;
  #client: OpenAI;
  #options: Required<Omit<RemoteBackendOptions, 'apiKey' | 'clock'>>;
  #where: string;
  #failures = 0;
  #coolUntil = 0;
  #redact: (text: string) => string;
  #clock: Clock;
  #onRetry: RetryListener | undefined;

  constructor(options: RemoteBackendOptions) {
    // Checked here: a bad number would only show at the first failure (a retry
    // count of NaN retries for ever), and as a TypeError from deep inside.
    const o = v.options(options, 'options');
    // The host only: this string reaches messages.
    this.#where = safeOrigin(o.baseURL);
    const baseURL = o.baseURL as string;
    this.model = v.nonEmptyString(o.model, 'model');
    const apiKey = o.apiKey;
    // Never shown: a key is described by its type and length only.
    if (apiKey !== undefined && (typeof apiKey !== 'string' || apiKey.length === 0)) {
      throw invalidArgument(`Expected non-empty string for apiKey but received ${typeof apiKey === 'string' ? 'an empty string' : `a value of type ${typeof apiKey}`}`);
    }
    if (apiKey !== undefined && apiKey.length < MIN_KEY_LENGTH) {
      throw invalidArgument(`Expected a key of at least ${MIN_KEY_LENGTH} characters for apiKey but received one of ${apiKey.length} ` +
        '(a shorter one could not be kept out of the logs without mangling them)');
    }
    const clock = checkClock(o.clock);
    this.#options = {
      baseURL,
      model: this.model,
      timeoutMs: v.number(o.timeoutMs, 'timeoutMs', 60_000, 1, 86_400_000),
      streamTimeoutMs: v.number(o.streamTimeoutMs, 'streamTimeoutMs', 600_000, 1, 86_400_000),
      retries: v.integer(o.retries, 'retries', 3, 0, 100),
      retryDelayMs: v.number(o.retryDelayMs, 'retryDelayMs', 500, 0, 3_600_000),
      maxRetryDelayMs: v.number(o.maxRetryDelayMs, 'maxRetryDelayMs', 30_000, 0, 3_600_000),
      cooldownAfter: v.integer(o.cooldownAfter, 'cooldownAfter', 3, 1, 1_000_000),
      cooldownMs: v.number(o.cooldownMs, 'cooldownMs', 30_000, 0, 86_400_000),
    };
    this.#redact = makeRedactor([apiKey]);
    this.#clock = clock ?? realClock;
    this.#client = new OpenAI({
      baseURL,
      // Local servers (Ollama, llama-server) take any key; the client insists on one.
      apiKey: apiKey ?? 'no-key',
      timeout: this.#options.timeoutMs,
      maxRetries: 0,
      fetch: boundedFetch,
    });
  }

  /** Sets the one listener told about every retry, for the router's log. */
  onRetry(listener: RetryListener): void {
    this.#onRetry = listener;
  }

  /** Milliseconds until the cooldown ends; 0 when the remote may be tried. */
  coolingFor(now = this.#clock.now()): number {
    return Math.max(0, this.#coolUntil - now);
  }

  async answer(call: BackendCall): Promise<BackendAnswer> {
    call = checkCall(call);
    const waiting = this.coolingFor();
    if (waiting > 0) {
      throw new UnderstudyError('REMOTE_UNAVAILABLE',
        `${this.#where} failed ${this.#failures} calls in a row; not trying it again for ${Math.ceil(waiting / 1000)} s`);
    }
    const { retries, retryDelayMs, maxRetryDelayMs } = this.#options;
    for (let attempt = 0; ; attempt++) {
      let delivered = false;
      // An answer that may be tool calls is asked for whole: its text is only
      // known to be text (and worth delivering) once the answer is complete.
      const streaming = Boolean(call.onText) && !toolsActive(call.tools, call.toolChoice);
      const timer = new AttemptTimer(call, this.#options, streaming, this.#where);
      try {
        const attemptCall = { ...call, signal: timer.signal };
        const limits = { maxBytes: maxAnswerBytes(call.params.maxTokens), where: this.#where, onBytes: () => timer.heard() };
        const answer = await withLimits(limits, () => (streaming
          ? this.#stream(attemptCall, (t) => { delivered = true; call.onText!(t); })
          : this.#once(attemptCall)));
        this.#failures = 0;
        if (!streaming && call.onText && !answer.toolCalls && answer.text) call.onText(answer.text);
        return answer;
      } catch (err) {
        const failure = call.signal?.aborted ? aborted(err)
          : timer.expired ? { error: timer.expired, retryable: true, countsAgainstRemote: true }
          : tooLarge(err) ? { error: tooLarge(err)!, retryable: false, countsAgainstRemote: true }
          : classify(err, this.#where);
        redactError(failure.error, this.#redact);
        if (failure.error.code === 'ABORTED') throw failure.error;
        // Text already streamed to the caller cannot be taken back, so no retry.
        if (delivered) {
          this.#noteFailure();
          throw new UnderstudyError('REMOTE_BAD_RESPONSE',
            `${this.#where} cut its stream off midway: ${failure.error.message}`, { cause: failure.error });
        }
        if (!failure.retryable || attempt >= retries) {
          if (failure.countsAgainstRemote) this.#noteFailure();
          throw failure.error;
        }
        const delayMs = this.#delay(attempt, failure, retryDelayMs, maxRetryDelayMs);
        this.#onRetry?.({ attempt: attempt + 1, delayMs, error: failure.error });
        try {
          await this.#clock.sleep(delayMs, call.signal);
        } catch {
          throw new UnderstudyError('ABORTED', 'the remote call was aborted');
        }
      } finally {
        // Nothing of the attempt outlives it: no timer, no listener on the caller's signal.
        timer.clear();
      }
    }
  }

  #delay(attempt: number, failure: RemoteFailure, base: number, max: number): number {
    if (failure.retryAfterMs !== undefined) return Math.min(failure.retryAfterMs, max);
    // Exponential with jitter, so that many waiting callers do not return at once.
    const full = Math.min(base * 2 ** attempt, max);
    return full / 2 + Math.random() * (full / 2);
  }

  /** Counts a call that failed after its retries; enough in a row start the cooldown. */
  #noteFailure(): void {
    this.#failures++;
    if (this.#failures >= this.#options.cooldownAfter) this.#coolUntil = this.#clock.now() + this.#options.cooldownMs;
  }

  #body(call: BackendCall) {
    return requestBody(call, this.model);
  }

  async #once(call: BackendCall): Promise<BackendAnswer> {
    const options = call.signal ? { signal: call.signal } : {};
    if (call.kind === 'chat') {
      const res = await this.#client.chat.completions.create({ ...this.#body(call), messages: messagesBody(call.messages!), stream: false } as never, options);
      return readChatAnswer(res, this.model, toolsActive(call.tools, call.toolChoice));
    }
    const res = await this.#client.completions.create({ ...this.#body(call), prompt: call.prompt!, stream: false } as never, options);
    return readCompletionAnswer(res, this.model);
  }

  async #stream(call: BackendCall, onText: (t: string) => void): Promise<BackendAnswer> {
    const options = call.signal ? { signal: call.signal } : {};
    const extra = { stream: true as const, stream_options: { include_usage: true } };
    const stream = call.kind === 'chat'
      ? await this.#client.chat.completions.create({ ...this.#body(call), messages: messagesBody(call.messages!), ...extra } as never, options)
      : await this.#client.completions.create({ ...this.#body(call), prompt: call.prompt!, ...extra } as never, options);
    let text = '';
    let usage: Usage | undefined;
    let model = this.model;
    let finishReason: FinishReason | undefined;
    let finished = false;
    for await (const chunk of untilAborted(stream as unknown as AsyncIterable<Record<string, any>>, call.signal)) {
      if (chunk.model) model = chunk.model;
      if (chunk.usage) usage = usageOf(chunk.usage);
      const choice = chunk.choices?.[0];
      // Only calls that allow no tools are streamed: tool calls in one are a bad answer, not text.
      const calls = choice?.delta?.tool_calls;
      if (call.kind === 'chat' && (Array.isArray(calls) ? calls.length > 0 : calls != null)) {
        throw new Error('the stream calls tools although the call allowed none');
      }
      const piece = call.kind === 'chat' ? choice?.delta?.content : choice?.text;
      if (typeof piece === 'string' && piece) {
        text += piece;
        onText(piece);
      }
      if (choice?.finish_reason) {
        finishReason = finishReasonOf(choice.finish_reason, false);
        finished = true;
      }
    }
    if (!finished) throw new Error('the stream ended without a finish_reason');
    return { text, usage: usage ?? { promptTokens: 0, completionTokens: 0, totalTokens: 0 }, model, finishReason };
  }

  async health(): Promise<Health> {
    const health = await timedHealth(async () => {
      const page = await this.#client.models.list({ timeout: Math.min(this.#options.timeoutMs, 10_000) });
      const ids = page.data.map((m) => m.id);
      const listed = ids.includes(this.model) ? 'listed' : `not among the ${ids.length} listed`;
      return `${this.#where}, model ${this.model} ${listed}`;
    });
    // A failure's message may quote what the server said, key included.
    return { ...health, detail: this.#redact(health.detail) };
  }

  async close(): Promise<void> {
    // The client holds no sockets of its own beyond fetch's keep-alive pool.
  }
}

function aborted(err: unknown): RemoteFailure {
  return { error: new UnderstudyError('ABORTED', 'the remote call was aborted', { cause: err }), retryable: false, countsAgainstRemote: false };
}

/** The size bound's error, which the client may have wrapped (a fetch that throws is a "connection error" to it). */
function tooLarge(err: unknown): AnswerTooLarge | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof AnswerTooLarge) return e;
  }
  return undefined;
}

function safeOrigin(url: unknown): string {
  let u: URL | undefined;
  try {
    // Only a string: new URL() would call a caller's toString().
    if (typeof url === 'string') u = new URL(url);
  } catch {
    // Left undefined.
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) {
    throw new UnderstudyError('INVALID_CONFIG', 'UNDERSTUDY_API_BASE must be an http:// or https:// URL');
  }
  if (u.username || u.password) {
    throw new UnderstudyError('INVALID_CONFIG',
      `the remote's base URL must not carry a user name or password, got "${u.protocol}//${u.host}${u.pathname}"`);
  }
  return `the remote at ${u.protocol}//${u.host}`;
}
