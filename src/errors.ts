// One error class for everything Understudy throws, with a stable `code` that
// programs can switch on. Messages say what was wrong and, where there is one,
// what to do about it.

import { ERROR_CODES, type ErrorCode } from './error-codes.js';

export type { ErrorCode };
export { ERROR_CODES };

export class UnderstudyError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnderstudyError';
    this.code = code;
  }
}

const KNOWN_CODES: ReadonlySet<string> = new Set<string>(ERROR_CODES);

/** Whether `code` is one of ours. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && KNOWN_CODES.has(code);
}

/**
 * Turns an error from the native binding into an UnderstudyError. `site` is an
 * Error created where the user called us, so the stack points at their line and
 * not at the event loop that settled the native promise.
 */
export function fromNative(err: unknown, site?: Error): UnderstudyError {
  if (err instanceof UnderstudyError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = isErrorCode(e?.code) ? e.code : 'NATIVE_ERROR';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const out = new UnderstudyError(code, message, { cause: err });
  if (site?.stack) out.stack = `UnderstudyError: ${message}\n${site.stack.split('\n').slice(1).join('\n')}`;
  return out;
}

/** Awaits a native promise, rethrowing its failure as an UnderstudyError from `site`. */
export async function callNative<T>(promise: Promise<T>, site: Error): Promise<T> {
  try {
    return await promise;
  } catch (err) {
    throw fromNative(err, site);
  }
}

export function invalidArgument(message: string): UnderstudyError {
  return new UnderstudyError('INVALID_ARGUMENT', message);
}

export function disposedError(what: string): UnderstudyError {
  return new UnderstudyError('DISPOSED', `the ${what} has been disposed`);
}

export function abortedError(what: string): UnderstudyError {
  return new UnderstudyError('ABORTED', `${what} was aborted`);
}
