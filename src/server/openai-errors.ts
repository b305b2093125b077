// Errors in OpenAI's shape, {"error": {"message", "type", "code", "param"}},
// with the status each cause gets (the table in notes/server-api.md §3). The
// official clients read `status` to pick their error class and `code`/`param`
// to tell the caller what was wrong; Retry-After tells them when to try again.
import { UnderstudyError, type ErrorCode } from '../errors.js';
import { errorText } from '../validate.js';

export type OpenAIErrorType = 'invalid_request_error' | 'authentication_error' | 'rate_limit_error' | 'api_error' | 'server_error';

export interface OpenAIErrorBody {
  error: { message: string; type: OpenAIErrorType; code: string; param: string | null };
}

export interface HttpError {
  status: number;
  body: OpenAIErrorBody;
  headers: Record<string, string>;
}

/** Seconds a client should wait after QUEUE_FULL or BUSY: one generation usually frees a sequence by then. */
export const RETRY_AFTER_SECONDS = 1;

/** Seconds a client should wait while the router is still loading (a model takes seconds to map). */
export const LOADING_RETRY_AFTER_SECONDS = 5;

const STATUS: Partial<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  INVALID_GRAMMAR: 400,
  CONTEXT_OVERFLOW: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  CACHE_MISS: 404,
  PAYLOAD_TOO_LARGE: 413,
  QUEUE_FULL: 429,
  BUSY: 429,
  REMOTE_REJECTED: 502,
  REMOTE_BAD_RESPONSE: 502,
  REMOTE_UNAVAILABLE: 503,
  NO_BACKEND: 503,
  NOT_READY: 503,
  CLOSED: 503,
  REMOTE_TIMEOUT: 504,
  TIMEOUT: 504,
};

function typeOf(status: number): OpenAIErrorType {
  if (status === 401) return 'authentication_error';
  if (status === 429) return 'rate_limit_error';
  if (status < 500) return 'invalid_request_error';
  return status === 500 ? 'server_error' : 'api_error';
}

/** The wire code: OpenAI's own names where clients switch on them, ours otherwise. */
function wireCode(code: ErrorCode): string {
  if (code === 'CONTEXT_OVERFLOW') return 'context_length_exceeded';
  if (code === 'UNAUTHORIZED') return 'invalid_api_key';
  return code;
}

/** An error raised by the server itself, with the parameter it is about when there is one. */
export class HttpRequestError extends UnderstudyError {
  readonly param: string | null;
  /** The status when it is not the code's usual one (an endpoint's own reading of a code). */
  readonly status: number | undefined;
  /** Seconds for Retry-After, when waiting helps (the router still loading). */
  readonly retryAfter: number | undefined;
  constructor(code: ErrorCode, message: string, param: string | null = null, status?: number, retryAfter?: number) {
    super(code, message);
    this.param = param;
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/**
 * The response for any error. Router errors are already redacted; `redact`
 * covers anything else (an uncoded failure's text) before it leaves.
 */
export function httpError(err: unknown, redact: (text: string) => string = (t) => t): HttpError {
  const coded = err instanceof UnderstudyError ? err : undefined;
  const code: ErrorCode = coded?.code ?? 'NATIVE_ERROR';
  const status = (err instanceof HttpRequestError ? err.status : undefined) ?? STATUS[code] ?? 500;
  const param = err instanceof HttpRequestError ? err.param : coded ? paramOf(coded) : null;
  const message = redact(coded ? coded.message : `internal error: ${errorText(err)}`);
  const retryAfter = status === 429 ? RETRY_AFTER_SECONDS : err instanceof HttpRequestError ? err.retryAfter : undefined;
  const headers: Record<string, string> = retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) };
  return { status, headers, body: { error: { message, type: typeOf(status), code: wireCode(code), param } } };
}

// The router names its parameters as its own API does; the client sent OpenAI's.
const OPENAI_NAMES: [RegExp, string][] = [
  [/^tools\[(\d+)\]\.(name|description|parameters|strict)\b/, 'tools[$1].function.$2'],
  [/^responseFormat\.(schema|name|strict)\b/, 'response_format.json_schema.$1'],
  [/^responseFormat\b/, 'response_format'],
  [/^toolChoice\.name\b/, 'tool_choice.function.name'],
  [/^toolChoice\b/, 'tool_choice'],
  [/^maxTokens\b/, 'max_tokens'],
  [/^topP\b/, 'top_p'],
  [/\.toolCalls\[(\d+)\]\.(name|arguments)\b/, '.tool_calls[$1].function.$2'],
  [/\.toolCalls\b/, '.tool_calls'],
  [/\.toolCallId\b/, '.tool_call_id'],
];

/** The parameter a router INVALID_ARGUMENT names ("Expected ... for maxTokens but received ..."), in OpenAI's spelling. */
function paramOf(err: UnderstudyError): string | null {
  if (err.code !== 'INVALID_ARGUMENT' && err.code !== 'INVALID_GRAMMAR') return null;
  const m = /^Expected .+? for ([\w.[\]]+) but received /.exec(err.message);
  if (!m) return null;
  let param = m[1]!;
  for (const [pattern, openai] of OPENAI_NAMES) param = param.replace(pattern, openai);
  return param;
}
