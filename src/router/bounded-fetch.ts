// fetch for the remote backend, with a bound on how many bytes one answer may
// bring and a hook on every piece that arrives (streams time out on silence).
// The bound and the hook belong to one attempt; AsyncLocalStorage carries them
// from the attempt, through the `openai` client, to this fetch.
import { AsyncLocalStorage } from 'node:async_hooks';
import { UnderstudyError } from '../errors.js';

export interface AttemptLimits {
  /** Most bytes the response body may have. */
  maxBytes: number;
  /** Told of each piece of the body as it arrives. */
  onBytes?: () => void;
  /** Where the answer comes from, for the message. */
  where: string;
}

const attempt = new AsyncLocalStorage<AttemptLimits>();

/** Runs `fn` (which calls the client) with `limits` applied to the responses it fetches. */
export function withLimits<T>(limits: AttemptLimits, fn: () => Promise<T>): Promise<T> {
  return attempt.run(limits, fn);
}

/** Failures that retrying will not cure: the remote answers too much. */
export class AnswerTooLarge extends UnderstudyError {
  constructor(where: string, maxBytes: number) {
    super('REMOTE_BAD_RESPONSE', `${where} sent an answer larger than ${maxBytes} bytes, more than maxTokens allows`);
  }
}

/** Responses without a bound (health checks) still stop at this size. */
export const ABSOLUTE_MAX_BYTES = 32 * 1024 * 1024;

export const boundedFetch: typeof fetch = async (input, init) => {
  const limits = attempt.getStore();
  const response = await fetch(input, init);
  const maxBytes = Math.min(limits?.maxBytes ?? ABSOLUTE_MAX_BYTES, ABSOLUTE_MAX_BYTES);
  const where = limits?.where ?? 'the remote';
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw new AnswerTooLarge(where, maxBytes);
  }
  if (!response.body) return response;
  let seen = 0;
  const onBytes = limits?.onBytes;
  const counted = response.body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > maxBytes) {
        controller.error(new AnswerTooLarge(where, maxBytes));
        return;
      }
      onBytes?.();
      controller.enqueue(chunk);
    },
  }));
  return new Response(counted, { status: response.status, statusText: response.statusText, headers: response.headers });
};

// How many bytes of response an answer of `maxTokens` tokens may take: room
// for the JSON or SSE framing of each token (a stream sends one chunk per
// token, some 200 bytes of it framing) with a floor for short answers.
const FLOOR_BYTES = 64 * 1024;
const BYTES_PER_TOKEN = 1024;

export function maxAnswerBytes(maxTokens: number): number {
  return Math.min(ABSOLUTE_MAX_BYTES, FLOOR_BYTES + maxTokens * BYTES_PER_TOKEN);
}
