// The Learner the router is given when training is on: it owns the adapter
// registry, one Piscina worker (rounds run there, never on the serving
// thread), and the queue that runs rounds and rollbacks one at a time.
//
// Automatic rounds (unless `auto` is false): every dataset row newer than the
// last round counts; once `trainEvery` of them have arrived a round starts
// (unless one is queued or running), also right after start when enough rows
// came while the router was down. A failed round (automatic or manual)
// consumes the rows counted so far: the next automatic round waits for
// trainEvery rows that arrive after the failure, rather than retrying at once
// on the same data (and failing the same way, forever). A skipped round ("not
// enough data") consumes them too (see round.ts), so it does not rerun on each new row.
//
// The distiller knows which adapter serves (#serving): the manifest's current
// one may have failed to load at start, and rounds must start from what serves.
import { Piscina } from 'piscina';
import { UnderstudyError } from '../errors.js';
import type { AdapterInfo, Learner, LearnerHooks, RoundReport } from '../router/learner.js';
import * as v from '../validate.js';
import { baseModelKey, type BaseModelKey } from './base-key.js';
import { distillSettings, type DistillOptions, type DistillSettings } from './options.js';
import { AdapterRegistry } from './registry.js';
import { runRound } from './round.js';
import { loadedLine, rollbackLine } from './train-log.js';

// Run as TypeScript under tsx (tests), as JavaScript from dist.
const WORKER = new URL(import.meta.url.endsWith('.ts') ? './round-worker.ts' : './round-worker.js', import.meta.url).href;
/** The worker thread (and the model it loaded) goes once idle this long. */
const WORKER_IDLE_MS = 30_000;
// A lower priority (nice +10 on Unix): on a busy machine training yields the CPU to serving.
const WORKER_NICE = process.platform === 'win32' ? 0 : 10;

interface Ready {
  base: BaseModelKey;
  registry: AdapterRegistry;
  source: { path: string; chatTemplate?: string; contextSize: number };
}

export class Distiller implements Learner {
  readonly settings: DistillSettings;
  #hooks: LearnerHooks;
  #ready: Promise<Ready> | undefined;
  #state: Ready | undefined;
  #pool: Piscina | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #stop = new AbortController();
  #closing: Promise<void> | undefined;
  #unsubscribe: (() => void) | undefined;
  /** Ids of rows newer than the last round's, counted toward the next automatic round. */
  #pending: number[] = [];
  #autoQueued = false;
  #lastRowId = 0;
  /** The adapter the backend serves (null = the base model); rounds measure it and train from it. */
  #serving: AdapterInfo | null = null;

  constructor(hooks: LearnerHooks, options?: DistillOptions) {
    this.settings = distillSettings(options);
    this.#hooks = hooks;
  }

  /**
   * Opens the registry and makes the current adapter of this base model the
   * backend's (a failure warns and leaves the base model serving: the entry
   * stays), then starts counting rows for automatic rounds.
   */
  start(): Promise<void> {
    this.#ready ??= this.#start();
    return this.#ready.then(() => undefined);
  }

  async #start(): Promise<Ready> {
    const hooks = this.#hooks;
    const source = hooks.localModel;
    if (!source) throw new UnderstudyError('TRAINING_UNSUPPORTED', 'training is off: the local backend cannot take adapters');
    const base = await baseModelKey(source.path);
    const registry = AdapterRegistry.open(hooks.cacheDir, (m) => hooks.warn(m));
    const current = registry.current(base.key);
    if (current) {
      try {
        await hooks.adopt(current.version, current.file, undefined, registry.lineage(current.version));
        this.#serving = current;
      } catch (err) {
        hooks.warn(`the current adapter v${current.version} (${current.file}) could not be loaded, serving the base model: ${v.errorText(err)}`);
      }
      // After the try: only the load failing means the base model serves.
      if (this.#serving) {
        hooks.emit('adapter', { action: 'loaded', version: current.version, previous: null });
        hooks.log(loadedLine(current.version));
      }
    }
    this.#lastRowId = registry.state(base.key).lastRowId;
    if (this.settings.auto) {
      // Rows logged since the last round count toward the next one; reading stops
      // once there are enough (the dataset may hold far more).
      for (const row of hooks.rows(this.#lastRowId)) {
        this.#pending.push(row.id);
        if (this.#pending.length >= hooks.settings.trainEvery) break;
      }
      this.#unsubscribe = hooks.onRow((row) => this.#onRow(row.id));
    }
    this.#state = { base, registry, source };
    // Enough rows may have come while the router was down: a round, once start() has returned.
    if (this.settings.auto) setImmediate(() => this.#maybeAuto());
    return this.#state;
  }

  /** Runs a round now (after the one running, if any) and resolves with its report. */
  train(options?: { signal?: AbortSignal }): Promise<RoundReport> {
    let signal: AbortSignal | undefined;
    try {
      signal = v.abortSignal(v.options(options).signal);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#round('manual', signal);
  }

  adapters(): AdapterInfo[] {
    const state = this.#state;
    return state ? state.registry.list(state.base.key) : [];
  }

  /** Makes the current adapter's parent current (the base model when it has none), after any round in progress. */
  rollback(): Promise<AdapterInfo | null> {
    return this.#enqueue(async () => {
      const { registry, base } = await this.#live();
      // NO_ADAPTER, with the registry's message, when the base model is already in use.
      const { from, to: target } = registry.rollbackTarget(base.key);
      // The swap first: if the target cannot be loaded, nothing has changed.
      await this.#hooks.adopt(target?.version ?? 0, target?.file ?? null, undefined, target ? registry.lineage(target.version) : []);
      let to = target;
      try {
        to = registry.rollback(base.key).to;
        // Another process changed the manifest meanwhile: serve what it now says.
        if ((to?.version ?? 0) !== (target?.version ?? 0)) await this.#hooks.adopt(to?.version ?? 0, to?.file ?? null, undefined, to ? registry.lineage(to.version) : []);
      } catch (err) {
        await this.#hooks.adopt(from.version, from.file, undefined, registry.lineage(from.version)).catch(() => undefined);
        throw err;
      }
      this.#serving = to;
      this.#hooks.forget(from.version);
      this.#hooks.emit('adapter', { action: 'rolled-back', version: to?.version ?? null, previous: from.version });
      this.#hooks.log(rollbackLine(from.version, to?.version ?? null));
      return registry.current(base.key);
    });
  }

  /** Aborts a round in progress (it leaves no file or manifest entry), waits for the queue, frees the worker. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#stop.abort();
      this.#unsubscribe?.();
      await this.#queue;
      await this.#pool?.destroy();
    })();
    return this.#closing;
  }

  #onRow(id: number): void {
    if (id <= this.#lastRowId) return;
    this.#pending.push(id);
    this.#maybeAuto();
  }

  #due(): boolean {
    const settings = this.#hooks.settings;
    return this.settings.auto && settings.trainLocal && !this.#closing && this.#pending.length >= settings.trainEvery;
  }

  #maybeAuto(): void {
    if (this.#autoQueued || !this.#due()) return;
    this.#autoQueued = true;
    this.#enqueue(async () => {
      // Asked again when its turn comes: a round that ran (or failed) before it may have used the rows up.
      if (!this.#due()) {
        this.#autoQueued = false;
        return;
      }
      await this.#run('auto');
    }).catch((err: unknown) => {
      if (this.#closing) return;
      this.#hooks.warn(`the automatic training round failed (the next starts after ${this.#hooks.settings.trainEvery} more rows): ${v.errorText(err)}`);
    });
  }

  #round(trigger: 'auto' | 'manual', signal?: AbortSignal): Promise<RoundReport> {
    return this.#enqueue(() => this.#run(trigger, signal));
  }

  /** One round, in the queue. */
  async #run(trigger: 'auto' | 'manual', signal?: AbortSignal): Promise<RoundReport> {
    try {
      const state = await this.#live();
      const stop = signal ? AbortSignal.any([this.#stop.signal, signal]) : this.#stop.signal;
      const report = await runRound({
        hooks: this.#hooks, registry: state.registry, base: state.base, source: state.source,
        settings: this.settings, pool: this.#worker(), trigger, signal: stop, parent: this.#serving,
      });
      if (report.version !== null) this.#serving = state.registry.list(state.base.key).find((a) => a.version === report.version) ?? this.#serving;
      this.#lastRowId = Math.max(this.#lastRowId, report.lastRowId);
      this.#pending = this.#pending.filter((id) => id > this.#lastRowId);
      return report;
    } catch (err) {
      // The rows counted so far were this round's: the next automatic one waits for trainEvery new ones.
      this.#pending = [];
      throw err;
    } finally {
      if (trigger === 'auto') this.#autoQueued = false;
      // Rows that came during the round may already make another (not after a failure: #pending is empty then).
      queueMicrotask(() => this.#maybeAuto());
    }
  }

  #enqueue<T>(work: () => Promise<T>): Promise<T> {
    if (this.#closing) return Promise.reject(new UnderstudyError('CLOSED', 'the router is closed'));
    const run = this.#queue.then(work);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #live(): Promise<Ready> {
    if (this.#closing) throw new UnderstudyError('CLOSED', 'the router is closed');
    return this.#state ?? this.start().then(() => this.#state!);
  }

  #worker(): Piscina {
    this.#pool ??= new Piscina({ filename: WORKER, minThreads: 0, maxThreads: 1, idleTimeout: WORKER_IDLE_MS, niceIncrement: WORKER_NICE });
    return this.#pool;
  }
}

