// What a failed remote attempt means: our error code, whether to try again,
// whether it counts toward the cooldown, and how long the server asked us to
// wait (Retry-After).
import OpenAI from 'openai';
import { UnderstudyError } from '../errors.js';
import { errorText } from '../validate.js';

export interface RemoteFailure {
  error: UnderstudyError;
  retryable: boolean;
  /** A failure of the remote itself, not of this one request: counts toward the cooldown. */
  countsAgainstRemote: boolean;
  /** Milliseconds the server asked us to wait, when it said. */
  retryAfterMs?: number;
}

/** Reads Retry-After (seconds or an HTTP date) or retry-after-ms into milliseconds. */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = Number(headers.get('retry-after-ms'));
  if (headers.get('retry-after-ms') && Number.isFinite(ms) && ms >= 0) return ms;
  const raw = headers.get('retry-after');
  if (!raw) return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function classify(err: unknown, where: string): RemoteFailure {
  if (err instanceof UnderstudyError) {
    return { error: err, retryable: err.code !== 'ABORTED', countsAgainstRemote: err.code !== 'ABORTED' };
  }
  if (err instanceof OpenAI.APIUserAbortError) {
    return { error: new UnderstudyError('ABORTED', 'the remote call was aborted', { cause: err }), retryable: false, countsAgainstRemote: false };
  }
  if (err instanceof OpenAI.APIConnectionTimeoutError) {
    return { error: new UnderstudyError('REMOTE_TIMEOUT', `${where} did not answer in time`, { cause: err }), retryable: true, countsAgainstRemote: true };
  }
  if (err instanceof OpenAI.APIConnectionError) {
    const reason = describeCause(err);
    return { error: new UnderstudyError('REMOTE_UNAVAILABLE', `cannot reach ${where}: ${reason}`, { cause: err }), retryable: true, countsAgainstRemote: true };
  }
  if (err instanceof OpenAI.APIError && typeof err.status === 'number') {
    const status = err.status;
    const detail = `${where} answered HTTP ${status}: ${shortMessage(err)}`;
    if (status === 408 || status === 409 || status === 429 || status >= 500) {
      return {
        error: new UnderstudyError('REMOTE_UNAVAILABLE', detail, { cause: err }),
        retryable: true,
        countsAgainstRemote: true,
        retryAfterMs: retryAfterMs(err.headers),
      };
    }
    // 400 and 422 are about this request; 401, 403 and 404 about the remote's setup.
    return { error: new UnderstudyError('REMOTE_REJECTED', detail, { cause: err }), retryable: false, countsAgainstRemote: status !== 400 && status !== 422 };
  }
  const message = errorText(err);
  return {
    error: new UnderstudyError('REMOTE_BAD_RESPONSE', `${where} sent a response that could not be read: ${message}`, { cause: err }),
    retryable: true,
    countsAgainstRemote: true,
  };
}

function shortMessage(err: InstanceType<typeof OpenAI.APIError>): string {
  const text = err.message.replace(/^\d{3}\s*/, '').trim();
  return text.length > 200 ? `${text.slice(0, 200)}…` : text || 'no message';
}

function describeCause(err: Error): string {
  let cause: unknown = err.cause;
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  const code = (cause as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') return code;
  return cause instanceof Error ? cause.message : err.message;
}
