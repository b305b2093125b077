// better-sqlite3 (the router's cache and dataset files) is an optional
// dependency: its install downloads a prebuilt binary from GitHub and compiles
// one when it cannot, so where neither works (no access to GitHub and no C++
// toolchain) npm leaves it out, and the rest of the package (generation,
// embeddings, `understudy pull`, the model commands) still installs and runs.
// Loaded on first use rather than imported; a router, which cannot keep its
// cache and dataset without it, refuses to start with BINDING_NOT_FOUND saying
// how to get it.
import type BetterSqlite3 from 'better-sqlite3';
import { UnderstudyError } from '../errors.js';
import { loadOptional, whyNotLoaded, type OptionalLoad } from './optional-module.js';

export type SqliteConstructor = typeof BetterSqlite3;

/** better-sqlite3, or why it could not be loaded; the first answer is kept. */
export function loadSqlite(): OptionalLoad<SqliteConstructor> {
  return loadOptional<SqliteConstructor>('better-sqlite3');
}

/** Why better-sqlite3 is not there, and how to get it. */
export function sqliteUnavailable(error: unknown): string {
  return `${whyNotLoaded('better-sqlite3', error)}: its install downloads a prebuilt binary from GitHub, or compiles one with a C++ toolchain ` +
    '(a C++ compiler, make and Python), and npm leaves it out where neither works; ' +
    'run npm install better-sqlite3 where one of them does';
}

/** The better-sqlite3 constructor for the router's stores; BINDING_NOT_FOUND when it is missing. */
export function sqlite(): SqliteConstructor {
  const l = loadSqlite();
  if (l.module) return l.module;
  throw new UnderstudyError('BINDING_NOT_FOUND', `the router keeps its cache and dataset in SQLite, but ${sqliteUnavailable(l.error)}`, { cause: l.error });
}
