// The semantic index's heavy work, in a Piscina worker so the event loop never
// waits on it: verifying a saved index against its checksum, building or
// rebuilding it from the cache rows, reconciling it with them, and sealing a
// saved index (hash, meta file, renames). The main thread only loads the
// finished file (hnswlib reads it on a libuv thread) and searches it.
import type Database from 'better-sqlite3';
import { sqlite } from './sqlite-module.js';
import hnswlib from 'hnswlib-node';
import { existsSync, renameSync } from 'node:fs';
import {
  checkMeta, fileDigest, HNSW_PARAMS, readMeta, writeMeta, type IndexMeta,
} from './semantic-files.js';

const { HierarchicalNSW } = hnswlib;
type Hnsw = InstanceType<typeof HierarchicalNSW>;

/** Rows read (and points added) per query while building: bounds the worker's memory. */
const PAGE = 1000;

export interface OpenTask {
  op: 'open';
  /** The cache database (the rows are the truth). */
  db: string;
  task: string;
  dim: number;
  graph: string;
  meta: string;
  /** Room for this many points at least (a larger copy of an index that is filling up). */
  capacity?: number;
}

export interface OpenResult {
  /** Live labels (row ids) and, for each, the index of its signature in `signatures`. */
  ids: Float64Array;
  signatureOf: Uint32Array;
  signatures: string[];
  /** Why the saved index was not used as it was (then it was rebuilt from the rows). */
  rebuilt?: string;
  /** Points added and removed while reconciling a verified index with the rows. */
  added: number;
  removed: number;
}

export interface SealTask {
  op: 'seal';
  /** The graph hnswlib just wrote; renamed to `graph` once its meta file is written. */
  tmp: string;
  graph: string;
  meta: string;
  task: string;
  dim: number;
  count: number;
}

export type WorkerTask = OpenTask | SealTask;

export default function run(task: WorkerTask): OpenResult | { bytes: number } {
  return task.op === 'open' ? open(task) : seal(task);
}

/** Hashes a freshly written graph, writes its meta file, then moves both into place. */
function seal(t: SealTask): { bytes: number } {
  const { bytes, sha256 } = fileDigest(t.tmp);
  writeMeta(`${t.meta}.tmp`, { task: t.task, dim: t.dim, count: t.count, bytes, sha256 });
  // Graph first: a crash between the renames leaves a graph its meta does not
  // match, which is rebuilt from the rows on the next open, never loaded.
  renameSync(t.tmp, t.graph);
  renameSync(`${t.meta}.tmp`, t.meta);
  return { bytes };
}

function open(t: OpenTask): OpenResult {
  const Sqlite = sqlite();
  const db = new Sqlite(t.db, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    const rows = new Map<number, string>();
    for (const r of db.prepare<[string], { id: number; signature: string }>(
      'SELECT id, signature FROM entries WHERE task = ? AND embedding IS NOT NULL').iterate(t.task)) {
      rows.set(r.id, r.signature);
    }
    let hnsw: Hnsw | undefined;
    let rebuilt: string | undefined;
    let added = 0;
    let removed = 0;
    const { problem, meta } = verify(t);
    if (problem === undefined) {
      hnsw = new HierarchicalNSW('cosine', t.dim);
      hnsw.readIndexSync(t.graph, true);
      if (hnsw.getCurrentCount() !== meta!.count) {
        rebuilt = `graph holds ${hnsw.getCurrentCount()} points, the meta file says ${meta!.count}`;
        hnsw = undefined;
      }
    } else {
      rebuilt = problem;
    }
    if (hnsw) {
      // A label the rows no longer hold was evicted or expired while the index was unsaved.
      for (const label of hnsw.getIdsList()) {
        if (rows.has(label)) continue;
        try {
          hnsw.markDelete(label);
          removed++;
        } catch {
          // Deleted already in the saved graph.
        }
      }
    } else {
      hnsw = new HierarchicalNSW('cosine', t.dim);
      hnsw.initIndex({ ...HNSW_PARAMS, maxElements: capacityFor(rows.size) });
    }
    const present = new Set(hnsw.getIdsList());
    const missing = [...rows.keys()].filter((id) => !present.has(id)).sort((a, b) => a - b);
    added = addRows(db, hnsw, t, missing);
    const grown = t.capacity !== undefined && hnsw.getMaxElements() < t.capacity;
    if (grown) hnsw.resizeIndex(t.capacity!);
    if (rebuilt !== undefined || added > 0 || removed > 0 || grown) {
      hnsw.writeIndexSync(`${t.graph}.tmp`);
      seal({ op: 'seal', tmp: `${t.graph}.tmp`, graph: t.graph, meta: t.meta, task: t.task, dim: t.dim, count: hnsw.getCurrentCount() });
    }
    const signatures: string[] = [];
    const numbered = new Map<string, number>();
    const ids = new Float64Array(rows.size);
    const signatureOf = new Uint32Array(rows.size);
    let i = 0;
    for (const [id, signature] of rows) {
      let n = numbered.get(signature);
      if (n === undefined) numbered.set(signature, (n = signatures.push(signature) - 1));
      ids[i] = id;
      signatureOf[i++] = n;
    }
    return { ids, signatureOf, signatures, added: rebuilt === undefined ? added : 0, removed, ...(rebuilt === undefined ? {} : { rebuilt }) };
  } finally {
    db.close();
  }
}

/** Why the saved index cannot be used, or undefined when its files match their checksum. */
function verify(t: OpenTask): { problem?: string; meta?: IndexMeta } {
  if (!existsSync(t.graph) && !existsSync(t.meta)) return { problem: 'no saved index' };
  let meta: IndexMeta;
  try {
    meta = readMeta(t.meta);
  } catch (err) {
    return { problem: `unreadable meta file (${(err as Error).message})` };
  }
  const problem = checkMeta(meta, t.graph, t.task, t.dim);
  return problem === undefined ? { meta } : { problem };
}

function capacityFor(n: number): number {
  // Headroom, so that the main thread rarely has to grow the index.
  return Math.max(HNSW_PARAMS.maxElements, Math.ceil(n * 1.5));
}

/** Adds the rows `ids` (sorted) to the graph, reading their embeddings a page at a time. */
function addRows(db: Database.Database, hnsw: Hnsw, t: OpenTask, ids: number[]): number {
  if (ids.length === 0) return 0;
  const page = db.prepare<[string, number, number], { id: number; embedding: Buffer }>(
    `SELECT id, embedding FROM entries WHERE task = ? AND embedding IS NOT NULL AND id >= ? AND id <= ? ORDER BY id LIMIT ${PAGE}`);
  const want = new Set(ids);
  const last = ids[ids.length - 1]!;
  let from = ids[0]!;
  let added = 0;
  const need = hnsw.getCurrentCount() + ids.length;
  if (need > hnsw.getMaxElements()) hnsw.resizeIndex(capacityFor(need));
  for (;;) {
    const rows = page.all(t.task, from, last);
    for (const r of rows) {
      if (!want.has(r.id) || r.embedding.byteLength !== t.dim * 4) continue;
      // Copied: a Buffer's offset need not be a multiple of 4.
      const v = new Float32Array(new Uint8Array(r.embedding).buffer, 0, t.dim);
      hnsw.addPoint(Array.from(v), r.id, true);
      added++;
    }
    if (rows.length < PAGE) return added;
    from = rows[rows.length - 1]!.id + 1;
  }
}
