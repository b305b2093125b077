// Argument checks with one message formula, so every bad value reads the same:
//   Expected positive integer for contextSize but received 0 of type number
import { invalidArgument } from './errors.js';

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)} of type string`;
  if (typeof value === 'object') return `${Array.isArray(value) ? 'an array' : 'an object'} of type object`;
  if (typeof value === 'function') return 'a function of type function';
  return `${String(value)} of type ${typeof value}`;
}

export function fail(expected: string, name: string, value: unknown): never {
  throw invalidArgument(`Expected ${expected} for ${name} but received ${describe(value)}`);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
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
