// One error class for everything Understudy throws, with a stable `code` that
// programs can switch on. Messages say what was wrong and, where there is one,
// what to do about it.

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'MODEL_NOT_FOUND'
  | 'INVALID_MODEL_FILE'
  | 'CONTEXT_CREATION_FAILED'
  | 'CONTEXT_OVERFLOW'
  | 'DECODE_FAILED'
  | 'ABORTED'
  | 'DISPOSED'
  | 'BUSY'
  | 'QUEUE_FULL'
  | 'INVALID_ADAPTER'
  | 'INVALID_GRAMMAR'
  | 'TEMPLATE_MISSING'
  | 'TEMPLATE_UNSUPPORTED'
  | 'BINDING_NOT_FOUND'
  | 'OUT_OF_MEMORY'
  | 'NATIVE_ERROR'
  | 'INVALID_CONFIG'
  | 'NO_BACKEND'
  | 'CACHE_MISS'
  | 'REMOTE_UNAVAILABLE'
  | 'REMOTE_TIMEOUT'
  | 'REMOTE_REJECTED'
  | 'REMOTE_BAD_RESPONSE'
  | 'CLOSED';

export class UnderstudyError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnderstudyError';
    this.code = code;
  }
}

const KNOWN_CODES = new Set<string>([
  'INVALID_ARGUMENT', 'MODEL_NOT_FOUND', 'INVALID_MODEL_FILE', 'CONTEXT_CREATION_FAILED',
  'CONTEXT_OVERFLOW', 'DECODE_FAILED', 'ABORTED', 'DISPOSED', 'BUSY', 'QUEUE_FULL', 'INVALID_ADAPTER',
  'INVALID_GRAMMAR', 'TEMPLATE_MISSING', 'TEMPLATE_UNSUPPORTED', 'BINDING_NOT_FOUND',
  'OUT_OF_MEMORY', 'NATIVE_ERROR',
]);

/**
 * Turns an error from the native binding into an UnderstudyError. `site` is an
 * Error created where the user called us, so the stack points at their line and
 * not at the event loop that settled the native promise.
 */
export function fromNative(err: unknown, site?: Error): UnderstudyError {
  if (err instanceof UnderstudyError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' && KNOWN_CODES.has(e.code) ? (e.code as ErrorCode) : 'NATIVE_ERROR';
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
