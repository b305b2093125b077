// hnswlib-node (the semantic cache's HNSW index) is an optional dependency:
// it ships no prebuilt binaries, so its install compiles C++ and fails on a
// machine without a compiler, and npm then leaves it out. Loaded on first use
// rather than imported, so that the rest of the package loads without it and
// the semantic cache can stay off with a warning instead.
import { createRequire } from 'node:module';
import type * as Hnswlib from 'hnswlib-node';
import { errorText } from '../validate.js';

export type HnswlibModule = typeof Hnswlib;

export type HnswLoad = { module: HnswlibModule; error?: undefined } | { module?: undefined; error: unknown };

let loaded: HnswLoad | undefined;

/** hnswlib-node, or why it could not be loaded; the first answer is kept. */
export function loadHnswlib(): HnswLoad {
  if (!loaded) {
    try {
      loaded = { module: createRequire(import.meta.url)('hnswlib-node') as HnswlibModule };
    } catch (error) {
      loaded = { error };
    }
  }
  return loaded;
}

/** hnswlib-node for code that only runs with the semantic cache on (so it loaded); throws its load error otherwise. */
export function hnswlib(): HnswlibModule {
  const l = loadHnswlib();
  if (l.error !== undefined || !l.module) throw l.error;
  return l.module;
}

/** Why hnswlib-node is not there, and how to get it. */
export function hnswlibUnavailable(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const why = code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND'
    ? 'hnswlib-node is not installed'
    : `hnswlib-node failed to load (${errorText(error).split('\n')[0]})`;
  return `${why}; it compiles from source, so install a C++ toolchain ` +
    '(a C++ compiler, make and Python) and run npm rebuild hnswlib-node, or npm install hnswlib-node';
}

/** The warning that turns the semantic cache off when hnswlib-node cannot be loaded. */
export function hnswlibMissingWarning(error: unknown): string {
  return `the semantic cache stays off: ${hnswlibUnavailable(error)}`;
}
