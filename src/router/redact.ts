// Keeps secrets out of everything the router writes or hands back (log lines,
// events, the dataset, the cache, errors and their causes): the configured API
// key wherever it appears, whatever its length, and bearer tokens.
import { UnderstudyError } from '../errors.js';
import { showValue } from '../validate.js';

export type Redact = (text: string) => string;

// Shorter keys cannot be told apart from ordinary text, so they could not be
// kept out of the dataset and the logs without mangling both: they are refused.
export const MIN_KEY_LENGTH = 4;

export function makeRedactor(secrets: (string | undefined)[]): Redact {
  // Longest first, so a secret that contains another is replaced whole.
  const exact = secrets.filter((s): s is string => typeof s === 'string' && s.length > 0).sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const secret of exact) if (out.includes(secret)) out = out.split(secret).join('[REDACTED]');
    return out.replace(/\b(Bearer|Authorization:)\s+[A-Za-z0-9._~+/=-]{8,}/g, '$1 [REDACTED]');
  };
}

// Fields of an error worth keeping in a copy: they say what happened and hold
// no request, response or header objects (those carry the Authorization header).
const KEPT = ['code', 'status', 'errno', 'syscall', 'type', 'param'] as const;
const MAX_DEPTH = 8;

/**
 * A copy of `err` safe to hand to callers: its message, stack and cause chain
 * redacted, and nothing else of the original kept (the `openai` client's
 * errors hold headers and request objects; util.inspect prints them all).
 */
export function redactError<E extends Error>(err: E, redact: Redact): E {
  if (err instanceof UnderstudyError) {
    err.message = redact(err.message);
    if (err.stack) err.stack = redact(err.stack);
    if ('cause' in err && err.cause !== undefined) {
      Object.defineProperty(err, 'cause', { value: safeCause(err.cause, redact, 0), writable: true, configurable: true, enumerable: false });
    }
    return err;
  }
  return safeCause(err, redact, 0) as E;
}

function safeCause(cause: unknown, redact: Redact, depth: number): unknown {
  if (depth >= MAX_DEPTH) return undefined;
  if (!(cause instanceof Error)) {
    return typeof cause === 'string' ? redact(cause) : cause === undefined || cause === null ? cause : redact(showValue(cause));
  }
  const copy = new Error(redact(cause.message));
  copy.name = cause.name;
  copy.stack = cause.stack ? redact(cause.stack) : `${copy.name}: ${copy.message}`;
  for (const key of KEPT) {
    const value = (cause as unknown as Record<string, unknown>)[key];
    if (typeof value === 'string' || typeof value === 'number') {
      (copy as unknown as Record<string, unknown>)[key] = typeof value === 'string' ? redact(value) : value;
    }
  }
  if (cause.cause !== undefined) {
    Object.defineProperty(copy, 'cause', { value: safeCause(cause.cause, redact, depth + 1), writable: true, configurable: true, enumerable: false });
  }
  return copy;
}
