// The seam between the router and whatever trains its local model. The router
// never imports the trainer (src/train/): a learner is attached from outside
// (router.attachLearner) and reaches the router only through LearnerHooks, so
// what it may touch is written down here, in one place.
import { UnderstudyError } from '../errors.js';
import * as v from '../validate.js';
import type { Backend } from './backend.js';
import type { ResolvedSettings } from './config.js';
import type { DatasetRow } from './dataset.js';
import type { RouterEvents } from './events.js';

/** One task's line in a round report. */
export interface TaskRoundReport {
  task: string;
  /** Training rows of this task used in the round. */
  trainRows: number;
  /** Held-out rows evaluated. */
  heldOutRows: number;
  /** Mean held-out similarity of the current adapter (or the base model); null if none evaluated. */
  before: number | null;
  /** The same for the candidate. */
  after: number | null;
  change: 'better' | 'same' | 'worse' | 'new' | 'not evaluated';
}

export interface RoundReport {
  /** 1, 2, ... per base model (manifest state). */
  round: number;
  trigger: 'auto' | 'manual';
  /** Training rows used (all tasks). */
  rows: number;
  /** Rows left out (too long for the window, unreadable). */
  skippedRows: number;
  tasks: TaskRoundReport[];
  /** Mean over tasks of `before`. */
  before: number | null;
  /** Mean over tasks of `after`. */
  after: number | null;
  promoted: boolean;
  /** The promoted version; null when not promoted. */
  version: number | null;
  /** The adapter the round started from (null = base model). */
  parent: number | null;
  /** Why promoted / kept / skipped, human readable. */
  reason: string;
  /** Training steps and the final training loss. */
  steps: number;
  loss: number | null;
  trainMs: number;
  evalMs: number;
  durationMs: number;
  /** The newest dataset row id this round considered. */
  lastRowId: number;
}

export interface AdapterInfo {
  version: number;
  parent: number | null;
  /** Absolute path. */
  file: string;
  /** Base model key (see src/train/base-key.ts). */
  baseModel: string;
  baseName: string | null;
  rowsUsed: number;
  round: number;
  tasks: Record<string, { trainRows: number; heldOutRows: number; before: number | null; after: number | null }>;
  heldOut: { before: number | null; after: number | null };
  /** ISO time. */
  createdAt: string;
  /** previous = promoted once, not current now. */
  status: 'current' | 'previous' | 'rolled-back';
  rolledBackAt?: string;
}

/** Emitted as router event 'training'. */
export interface TrainingProgress {
  round: number;
  phase: 'start' | 'baseline' | 'train' | 'evaluate' | 'done' | 'aborted' | 'failed';
  step?: number;
  steps?: number;
  loss?: number;
  epoch?: number;
  epochs?: number;
}

/** What the router gives the learner: everything the learner may touch. */
export interface LearnerHooks {
  /** threshold, trainEvery, cacheDir (resolved), quiet... */
  readonly settings: Readonly<ResolvedSettings>;
  /** Absolute. */
  readonly cacheDir: string;
  /** Dataset rows with id > afterId (default 0), in id order (source 'call' and 'audit'). */
  rows(afterId?: number): Iterable<DatasetRow>;
  /** The similarity readiness uses (answerSimilarity), for many pairs at once. Rejects if the router has no embedder. */
  similarities(pairs: Array<[string, string]>): Promise<number[]>;
  /** Local backend's model file, and the chat template name it applies (undefined = the model's own). Null when the local backend cannot take adapters. */
  readonly localModel: { path: string; chatTemplate?: string; contextSize: number } | null;
  /**
   * Makes `version` (0 = no adapter, the base model) the local backend's adapter (hot swap, see
   * LocalBackend.useAdapter) and the readiness generation; records `heldOut` (task -> similarities)
   * as comparisons of kind 'heldout' under that version; emits/logs a readiness change for every
   * task whose `ready` flipped. Throws INVALID_ADAPTER (from the load) and leaves everything as it was.
   * `lineage`: the versions `version` descends from, nearest first, ending with 0 (the base model);
   * their newest comparisons fill a task's readiness until `version` has readinessMin of its own.
   */
  adopt(version: number, file: string | null, heldOut?: Map<string, number[]>, lineage?: readonly number[]): Promise<void>;
  /** Deletes every comparison recorded under `version` (a rolled-back adapter's contribution). */
  forget(version: number): void;
  /** Called after each dataset row is appended (the "dataset grew" hook). Returns an unsubscribe. */
  onRow(listener: (row: { id: number; task: string; source: DatasetRow['source'] }) => void): () => void;
  /** The router's one log sink: redacts, honours quiet. `line` is a full line without newline. */
  log(line: string): void;
  /** As router 'warning' + log line. */
  warn(message: string): void;
  emit<K extends keyof RouterEvents>(event: K, payload: RouterEvents[K]): void;
}

export interface Learner {
  train(options?: { signal?: AbortSignal }): Promise<RoundReport>;
  adapters(): AdapterInfo[];
  /** Resolves with the adapter now current (null = base model). */
  rollback(): Promise<AdapterInfo | null>;
  /** Aborts a round in progress (no partial file or manifest entry), waits for it, frees the worker pool. */
  close(): Promise<void>;
}

/** The error of train(), adapters() and rollback() on a router without a learner; `why` says what is missing. */
export function trainingUnsupported(why: string): UnderstudyError {
  return new UnderstudyError('TRAINING_UNSUPPORTED', `training is off: ${why}`);
}

/** Why a router has no learner, as far as it can tell (for trainingUnsupported). */
export function whyNoTraining(local: Backend | undefined, trainLocal: boolean, embedder: boolean): string {
  if (typeof local?.useAdapter !== 'function' || typeof local.trainingSource !== 'function') {
    return 'it needs a local model file (UNDERSTUDY_MODEL) whose backend can take adapters';
  }
  if (!trainLocal) return 'UNDERSTUDY_TRAIN_LOCAL is off';
  if (!embedder) return 'it needs an embedder to compare answers (UNDERSTUDY_EMBEDDING_MODEL, the local model, or the embedder option)';
  return "no learner is attached to this router (the package's createRouter attaches one)";
}

/** What attachLearner's `make` returned must be a learner. */
export function checkLearner(value: unknown): Learner {
  if (!v.isPlainObject(value) || ['train', 'adapters', 'rollback', 'close'].some((m) => typeof value[m] !== 'function')) {
    v.fail('learner (an object with train, adapters, rollback and close)', 'the value make returned', value);
  }
  return value as unknown as Learner;
}
