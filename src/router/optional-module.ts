// The router's optional dependencies (hnswlib-node, better-sqlite3): npm leaves
// such a package out when its install fails (no compiler, no network for its
// prebuilt binary), so it is loaded on first use rather than imported, and the
// rest of the package loads without it. The first answer per package is kept.
import { createRequire } from 'node:module';
import { errorText } from '../validate.js';

export type OptionalLoad<T> = { module: T; error?: undefined } | { module?: undefined; error: unknown };

const loads = new Map<string, OptionalLoad<unknown>>();

/** The package `name`, or why it could not be loaded. */
export function loadOptional<T>(name: string): OptionalLoad<T> {
  let load = loads.get(name);
  if (!load) {
    try {
      load = { module: createRequire(import.meta.url)(name) as unknown };
    } catch (error) {
      load = { error };
    }
    loads.set(name, load);
  }
  return load as OptionalLoad<T>;
}

/** "NAME is not installed", or "NAME failed to load (the error's first line)". */
export function whyNotLoaded(name: string, error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND'
    ? `${name} is not installed`
    : `${name} failed to load (${errorText(error).split('\n')[0]})`;
}
