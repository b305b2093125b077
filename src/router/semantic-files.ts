// The semantic index's files: an HNSW graph (hnswlib's own format, which it
// trusts blindly: a few changed bytes make it read or write out of bounds)
// and, beside it, a small JSON meta file that says what the graph must be:
// its size, sha256, dimension, point count and the format version. A graph
// is only ever handed to hnswlib after it matches its meta file.
import { closeSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

/** Version of the meta file's layout (1 kept the labels' signatures and no checksum). */
export const INDEX_FORMAT = 2;

/** Where a task's graph and meta file live in `dir`: a readable slug of the task and a hash that keeps tasks apart. */
export function indexPaths(dir: string, task: string): { graph: string; meta: string } {
  const slug = task.replace(/[^\w.-]/g, '_').slice(0, 40);
  const base = join(dir, `${slug}-${createHash('sha256').update(task).digest('hex').slice(0, 8)}`);
  return { graph: `${base}.hnsw`, meta: `${base}.json` };
}

export const HNSW_PARAMS = { maxElements: 1024, m: 16, efConstruction: 200, allowReplaceDeleted: true } as const;

export interface IndexMeta {
  format: number;
  task: string;
  dim: number;
  /** hnswlib's element count (deleted points included) when the graph was written. */
  count: number;
  bytes: number;
  sha256: string;
}

export function readMeta(path: string): IndexMeta {
  const meta = JSON.parse(readFileSync(path, 'utf8')) as Partial<IndexMeta>;
  if (meta === null || typeof meta !== 'object') throw new Error('not a JSON object');
  return meta as IndexMeta;
}

export function writeMeta(path: string, meta: Omit<IndexMeta, 'format'>): void {
  writeFileSync(path, JSON.stringify({ format: INDEX_FORMAT, ...meta }));
}

/** Size and sha256 of a file, read a piece at a time. */
export function fileDigest(path: string): { bytes: number; sha256: string } {
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(path, 'r');
  let bytes = 0;
  try {
    for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0;) {
      hash.update(chunk.subarray(0, n));
      bytes += n;
    }
  } finally {
    closeSync(fd);
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** Why `graph` does not match `meta` (undefined when it does): cheapest checks first. */
export function checkMeta(meta: IndexMeta, graph: string, task: string, dim: number): string | undefined {
  if (meta.format !== INDEX_FORMAT) return `meta format ${JSON.stringify(meta.format ?? null)}, expected ${INDEX_FORMAT}`;
  if (meta.task !== task) return `meta file belongs to task ${JSON.stringify(meta.task)}`;
  if (meta.dim !== dim) return `dimension ${meta.dim} in the meta file, the embedder gives ${dim}`;
  if (!Number.isSafeInteger(meta.count) || meta.count < 0) return 'bad point count in the meta file';
  let size: number;
  try {
    size = statSync(graph).size;
  } catch {
    return 'graph file missing';
  }
  if (size !== meta.bytes) return `graph is ${size} bytes, the meta file says ${meta.bytes}`;
  const { sha256 } = fileDigest(graph);
  if (sha256 !== meta.sha256) return 'graph does not match its sha256';
  return undefined;
}
