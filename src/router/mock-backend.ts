// A backend for users' own tests: answers from a function, a fixed text or a
// table, optionally slow or failing, and records every call it got.
import { UnderstudyError, invalidArgument, isErrorCode, type ErrorCode } from '../errors.js';
import * as v from '../validate.js';
import { timedHealth, type Backend, type BackendAnswer, type BackendCall, type Health } from './backend.js';

export interface MockBackendOptions {
  /** The answer: a fixed text, or a function of the call. Default: echoes the last user message. */
  answer?: string | ((call: BackendCall) => string | Promise<string>);
  model?: string;
  /** Wait this long before answering. */
  latencyMs?: number;
  /** Fail every call with this error code (for fallback tests). */
  failWith?: ErrorCode;
  /** Embeddings for the caches and shadow checks; leave out for none. */
  embed?: (texts: string[]) => Promise<Float32Array[]> | Float32Array[];
}

export class MockBackend implements Backend {
  readonly kind = 'mock' as const;
  readonly model: string;
  /** Every call received, in order. */
  readonly calls: BackendCall[] = [];
  readonly embed?: (texts: string[]) => Promise<Float32Array[]>;
  #options: MockBackendOptions;

  constructor(options?: MockBackendOptions) {
    // Checked here, once: a bad option found at the first call would surface far from its cause.
    const o = v.options(options, 'options');
    const answer: unknown = o.answer;
    if (answer !== undefined && typeof answer !== 'string' && typeof answer !== 'function') {
      v.fail('string or function', 'answer', answer);
    }
    const failWith: unknown = o.failWith;
    if (failWith !== undefined && !isErrorCode(failWith)) v.fail('error code such as REMOTE_UNAVAILABLE', 'failWith', failWith);
    this.#options = {
      answer: answer as MockBackendOptions['answer'],
      // setTimeout's longest wait; a longer one would fire at once.
      latencyMs: v.number(o.latencyMs, 'latencyMs', 0, 0, 2 ** 31 - 1),
      failWith,
    };
    this.model = o.model === undefined ? 'mock' : v.nonEmptyString(o.model, 'model');
    const embed = v.fn<NonNullable<MockBackendOptions['embed']>>(o.embed, 'embed');
    if (embed) this.embed = async (texts) => embed(texts);
  }

  async answer(call: BackendCall): Promise<BackendAnswer> {
    this.calls.push(call);
    const { latencyMs, failWith, answer } = this.#options;
    if (latencyMs) await new Promise((resolve) => setTimeout(resolve, latencyMs));
    if (failWith) throw new UnderstudyError(failWith, `mock backend ${this.model} fails with ${failWith}`);
    const text = typeof answer === 'function' ? await answer(call)
      : typeof answer === 'string' ? answer
      : `Echo: ${call.prompt ?? [...call.messages!].reverse().find((m) => m.role === 'user')?.content ?? ''}`;
    if (typeof text !== 'string') throw invalidArgument(`Expected string from the answer function but received ${v.describeValue(text)}`);
    call.onText?.(text);
    const words = (s: string) => (s.match(/\S+/g) ?? []).length;
    const promptTokens = words(call.prompt ?? call.messages!.map((m) => m.content).join(' '));
    const completionTokens = words(text);
    return { text, model: this.model, usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens } };
  }

  health(): Promise<Health> {
    return timedHealth(async () => `mock ${this.model}`);
  }

  async close(): Promise<void> {}
}
