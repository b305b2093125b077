// The router's two SQLite files in the cache directory. The dataset and
// readiness are the record of what was learned and must survive a kill at any
// moment: WAL with a sync on every commit. The cache can be rebuilt, so it
// skips the per-commit sync for speed; WAL still keeps it from corrupting.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { UnderstudyError } from '../errors.js';

export type Db = Database.Database;

export function openDatabase(dir: string, file: string, durable: boolean): Db {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new UnderstudyError('INVALID_CONFIG', `cannot create the cache directory ${dir}: ${(err as Error).message}`, { cause: err });
  }
  let db: Db;
  try {
    db = new Database(join(dir, file));
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${durable ? 'FULL' : 'NORMAL'}`);
    // Another router on the same directory may hold the write lock for a moment.
    db.pragma('busy_timeout = 5000');
  } catch (err) {
    throw new UnderstudyError('INVALID_CONFIG',
      `cannot open ${join(dir, file)} as a database: ${(err as Error).message}`, { cause: err });
  }
  return db;
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
    created_at INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS comparisons_task ON comparisons (task, id);
`;

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
