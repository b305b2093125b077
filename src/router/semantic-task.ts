// One task's semantic index as SemanticIndex (semantic-index.ts) keeps it,
// and the numbers it is tuned by: split out so the index's logic reads on its own.
import type hnswlib from 'hnswlib-node';

export type Hnsw = InstanceType<typeof hnswlib.HierarchicalNSW>;

// Search breadth: wider than hnswlib's default (10) for near-exact recall at 100k entries.
export const EF_SEARCH = 64;
export const SAVE_AFTER_MS = 5000;
/** How long a lookup waits for its task's index to open before it misses. */
export const WAIT_MS = 1000;
/** After a failed open, the task's lookups miss for this long before it is tried again. */
export const RETRY_AFTER_MS = 30_000;
/** The worker thread goes once idle this long; the next open or save starts another. */
export const WORKER_IDLE_MS = 30_000;
export const WORKER_NICE = process.platform === 'win32' ? 0 : 10;
/** Longest the event loop spends applying queued changes at a time. */
export const DRAIN_SLICE_MS = 8;
// Up to this capacity the main thread grows a full index itself (copying a few
// MB); a larger one is grown by the worker, from 90% full, while the old one
// goes on answering (copying 100 MB would block the event loop for 50 ms+).
export const GROW_ON_MAIN_MAX = 16_384;
export const GROW_AT = 0.9;

export type Change = { id: number; embedding: Float32Array; signature: string } | { id: number; embedding?: undefined };

export interface TaskIndex {
  task: string;
  dim: number;
  /** Set once the index is open; never a partial one. */
  hnsw?: Hnsw;
  /** The worker is opening the index, or making a larger copy of it (the old one answers meanwhile). */
  opening?: Promise<void>;
  /** Live labels and the signature (sampling settings and prompt facts) their answer was made with. */
  signatures: Map<number, string>;
  /** Changes made while the index was opening or its graph was being written, applied after. */
  pending: Change[];
  writing: boolean;
  /** The worker failed to grow this index: the main thread grows it from now on. */
  growOnMain?: boolean;
  draining?: NodeJS.Immediate;
  saving?: Promise<void>;
  dirty: boolean;
}

/** Waits for `promise`, at most `ms`. */
export async function waitFor(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); })]);
  clearTimeout(timer);
}
