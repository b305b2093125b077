// hnswlib-node (the semantic cache's HNSW index) is an optional dependency:
// it ships no prebuilt binaries, so its install compiles C++ and fails on a
// machine without a compiler, and npm then leaves it out. Loaded on first use
// rather than imported, so that the rest of the package loads without it and
// the semantic cache can stay off with a warning instead.
import type * as Hnswlib from 'hnswlib-node';
import { loadOptional, whyNotLoaded, type OptionalLoad } from './optional-module.js';

export type HnswlibModule = typeof Hnswlib;

export type HnswLoad = OptionalLoad<HnswlibModule>;

/** hnswlib-node, or why it could not be loaded; the first answer is kept. */
export function loadHnswlib(): HnswLoad {
  return loadOptional<HnswlibModule>('hnswlib-node');
}

/** hnswlib-node for code that only runs with the semantic cache on (so it loaded); throws its load error otherwise. */
export function hnswlib(): HnswlibModule {
  const l = loadHnswlib();
  if (l.error !== undefined || !l.module) throw l.error;
  return l.module;
}

/** Why hnswlib-node is not there, and how to get it. */
export function hnswlibUnavailable(error: unknown): string {
  return `${whyNotLoaded('hnswlib-node', error)}; it compiles from source, so install a C++ toolchain ` +
    '(a C++ compiler, make and Python) and run npm rebuild hnswlib-node, or npm install hnswlib-node';
}

/** The warning that turns the semantic cache off when hnswlib-node cannot be loaded. */
export function hnswlibMissingWarning(error: unknown): string {
  return `the semantic cache stays off: ${hnswlibUnavailable(error)}`;
}
