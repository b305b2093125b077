// The router's two SQLite files in the cache directory. The dataset and
// readiness are the record of what was learned and must survive a kill at any
// moment: WAL with a sync on every commit. The cache can be rebuilt, so it
// skips the per-commit sync for speed; WAL still keeps it from corrupting.
import type Database from 'better-sqlite3';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UnderstudyError } from '../errors.js';
import { sqlite } from './sqlite-module.js';

export type Db = Database.Database;

/** Creates the cache directory; `source` names the option or variable it came from. */
export function makeCacheDir(dir: string, source = 'the cache directory'): void {
  try {
    mkdirSync(dir, { recursive: true });
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw new UnderstudyError('INVALID_CONFIG', `${source}: cannot create the cache directory ${dir}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Opens one SQLite file and runs `build` on it (schema, first reads), so that a
 * file that is not a database fails here and not at the first call.
 */
export function openStore<T = void>(dir: string, file: string, durable: boolean, build?: (db: Db) => T, source?: string): { db: Db; value: T } {
  const Sqlite = sqlite();
  makeCacheDir(dir, source);
  const path = join(dir, file);
  let db: Db | undefined;
  try {
    // A directory or other non-file in its place is no database.
    if (existsSync(path) && !statSync(path).isFile()) throw new Error('it is not a file');
    db = new Sqlite(path);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${durable ? 'FULL' : 'NORMAL'}`);
    // Another router on the same directory may hold the write lock for a moment.
    db.pragma('busy_timeout = 5000');
    const value = build ? build(db) : (undefined as T);
    return { db, value };
  } catch (err) {
    try {
      db?.close();
    } catch {
      // Already unusable.
    }
    throw new UnderstudyError('INVALID_CONFIG', `cannot open ${path} as a database: ${(err as Error).message}`, { cause: err });
  }
}

export function openDatabase(dir: string, file: string, durable: boolean): Db {
  return openStore(dir, file, durable).db;
}

/**
 * Opens a file that only holds what can be made again (the answer cache). When
 * it cannot be opened (corrupt, truncated, a directory in its place), it is set
 * aside under a timestamped name, with its WAL files, and a fresh one is made;
 * `onReset` is told why. Never used for the dataset, which cannot be remade.
 */
export function openRebuildable<T>(dir: string, file: string, build: (db: Db) => T, onReset: (message: string) => void,
  now: () => number = Date.now, source?: string): { db: Db; value: T } {
  // Without better-sqlite3 no file can be opened, and none is to blame: nothing is set aside.
  sqlite();
  try {
    return openStore(dir, file, false, build, source);
  } catch (err) {
    const path = join(dir, file);
    const present = ['', '-wal', '-shm'].filter((suffix) => existsSync(path + suffix));
    if (!(err instanceof UnderstudyError) || err.code !== 'INVALID_CONFIG' || present.length === 0) throw err;
    const aside = `${path}.broken-${new Date(now()).toISOString().replace(/[:.]/g, '-')}`;
    try {
      for (const suffix of present) renameSync(path + suffix, aside + suffix);
    } catch (renameErr) {
      throw new UnderstudyError('INVALID_CONFIG', `${err.message}; it could not be set aside either: ${(renameErr as Error).message}`, { cause: err });
    }
    onReset(`${err.message}; set it aside as ${aside} and started an empty one`);
    return openStore(dir, file, false, build, source);
  }
}

export const DATASET_SCHEMA = `
  CREATE TABLE IF NOT EXISTS dataset (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task TEXT NOT NULL,
    kind TEXT NOT NULL,
    input TEXT NOT NULL,
    answer TEXT NOT NULL,
    params TEXT NOT NULL,
    usage TEXT NOT NULL,
    model TEXT NOT NULL,
    source TEXT NOT NULL,
    latency_ms REAL NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS dataset_task ON dataset (task, id);
  CREATE TABLE IF NOT EXISTS comparisons (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task TEXT NOT NULL,
    similarity REAL NOT NULL,
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    adapter INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX IF NOT EXISTS comparisons_task ON comparisons (task, id);
`;

/**
 * Makes dataset.db's tables, and brings one made by an older version up to
 * date: comparisons gained `adapter` (the adapter version that answered; 0 =
 * the base model), so its old rows count as the base model's. The index on it
 * is made after the column exists. Idempotent, and run by every user of the file.
 */
export function ensureDatasetSchema(db: Db): void {
  db.exec(DATASET_SCHEMA);
  const columns = db.prepare('PRAGMA table_info(comparisons)').all() as { name: string }[];
  if (!columns.some((c) => c.name === 'adapter')) {
    db.exec('ALTER TABLE comparisons ADD COLUMN adapter INTEGER NOT NULL DEFAULT 0');
  }
  db.exec('CREATE INDEX IF NOT EXISTS comparisons_adapter ON comparisons (task, adapter, id)');
}

export const CACHE_SCHEMA = `
  CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    task TEXT NOT NULL,
    signature TEXT NOT NULL,
    answer TEXT NOT NULL,
    usage TEXT NOT NULL,
    model TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    used_at INTEGER NOT NULL,
    expires_at INTEGER,
    embedding BLOB
  );
  CREATE INDEX IF NOT EXISTS entries_used ON entries (used_at);
  CREATE INDEX IF NOT EXISTS entries_task ON entries (task) WHERE embedding IS NOT NULL;
`;
