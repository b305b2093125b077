// Argument checks with one message formula, so every bad value reads the same:
//   Expected positive integer for contextSize but received 0 of type number
import { invalidArgument } from './errors.js';

// Longest part of a string (or digits of a bigint) an error message shows.
const SHOWN_CHARS = 60;

/**
 * A short description of any value, for error messages: `"abc"`, `42`, `null`,
 * `an array`, `a Uint8Array of length 1048576`. It never throws and never grows
 * with the value: the value may be a Proxy whose traps throw, a revoked Proxy,
 * an object without a prototype (which String() cannot convert), an array of
 * length 2^32 - 1 (which String() would join), a symbol or a huge BigInt.
 */
export function showValue(value: unknown): string {
  try {
    return show(value);
  } catch {
    // A trap or getter threw (a revoked Proxy, say): say less rather than rethrow.
    return typeof value === 'object' ? 'an object' : 'a value';
  }
}

function show(value: unknown): string {
  switch (typeof value) {
    case 'string': return JSON.stringify(value.length > SHOWN_CHARS ? value.slice(0, SHOWN_CHARS) + '…' : value);
    case 'number': return Object.is(value, -0) ? '-0' : String(value);
    case 'boolean':
    case 'undefined': return String(value);
    case 'bigint': {
      const bound = 10n ** BigInt(SHOWN_CHARS);
      return value > -bound && value < bound ? `${value}n` : `a bigint of more than ${SHOWN_CHARS} digits`;
    }
    case 'symbol': {
      // Symbol.prototype.description is a getter on a shared prototype, which a caller may have replaced.
      const d: unknown = value.description;
      return typeof d === 'string' ? `Symbol(${show(d).slice(1, -1)})` : 'a symbol';
    }
    case 'function': return 'a function';
    default: break;
  }
  if (value === null) return 'null';
  // ArrayBuffer.isView runs no traps; Array.isArray throws for a revoked Proxy (caught above).
  if (ArrayBuffer.isView(value)) {
    const name = Object.prototype.toString.call(value).slice(8, -1);
    const length = (value as { byteLength: number }).byteLength;
    return `a ${name} of ${length} bytes`;
  }
  let array: boolean;
  try {
    array = Array.isArray(value);
  } catch {
    return 'a revoked Proxy';
  }
  return array ? 'an array' : 'an object';
}

/** `showValue` and the type, as argument messages end: `0 of type number`, `an array of type object`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  return `${showValue(value)} of type ${typeof value}`;
}

export function fail(expected: string, name: string, value: unknown): never {
  throw invalidArgument(`Expected ${expected} for ${name} but received ${describeValue(value)}`);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  try {
    return !Array.isArray(value);
  } catch {
    return false; // a revoked Proxy, which nothing can be read from
  }
}

export function options<T extends object>(value: T | undefined, name = 'options'): Partial<T> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) fail('object', name, value);
  return value;
}

export function string(value: unknown, name: string): string {
  if (typeof value !== 'string') fail('string', name, value);
  return value;
}

export function nonEmptyString(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) fail('non-empty string', name, value);
  return value;
}

export function boolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') fail('boolean', name, value);
  return value;
}

export function integer(value: unknown, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER
      ? (min === 1 ? 'positive integer' : min === 0 ? 'non-negative integer' : `integer ≥ ${min}`)
      : `integer between ${min} and ${max}`;
    fail(range, name, value);
  }
  return value;
}

export function number(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    fail(`number between ${min} and ${max}`, name, value);
  }
  return value;
}

// By index into a copy: some() and forEach() skip the holes of a sparse array,
// whose length may be 2^32 - 1 with one element in it.
export function stringArray(value: unknown, name: string): string[] {
  if (value === undefined) return [];
  if (typeof value === 'string' && value.length > 0) return [value];
  if (!Array.isArray(value)) fail('non-empty string or array of non-empty strings', name, value);
  const out: string[] = [];
  for (let i = 0; i < value.length; i++) {
    const s: unknown = value[i];
    if (typeof s !== 'string' || s.length === 0) fail('non-empty string or array of non-empty strings', name, value);
    out.push(s);
  }
  return out;
}

export function abortSignal(value: unknown, name = 'signal'): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) fail('AbortSignal', name, value);
  return value;
}

export function fn<T extends (...args: never[]) => unknown>(value: unknown, name: string): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') fail('function', name, value);
  return value as T;
}

/**
 * The text of a thrown value, for messages: an Error's message, a string as
 * it is, anything else as showValue() describes it (code a caller passed in
 * may throw a null-prototype object, which String() cannot convert).
 */
export function errorText(err: unknown): string {
  if (typeof err === 'string') return err;
  try {
    if (err instanceof Error && typeof err.message === 'string') return err.message;
  } catch {
    // A Proxy whose getPrototypeOf trap throws: described below.
  }
  return showValue(err);
}

/**
 * Whether a string is a plain, finite decimal number ("12", "-0.5"): no hex,
 * exponents, blanks or padding, which Number() would quietly accept. For numbers
 * read from text (variables, flags).
 */
export function isDecimal(text: unknown): text is string {
  return typeof text === 'string' && /^-?(0|[1-9]\d*)(\.\d+)?$/.test(text) && Number.isFinite(Number(text));
}
