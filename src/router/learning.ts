// What the router learns from its calls: remote answers logged to the
// dataset, shadow checks and audits that score the local model against the
// remote (readiness), and the hooks a learner (src/train/) trains through:
// adopting an adapter makes it the local model's and the readiness generation.
import { resolve } from 'node:path';
import { UnderstudyError } from '../errors.js';
import * as v from '../validate.js';
import { errorText } from '../validate.js';
import type { BackendAnswer, BackendCall } from './backend.js';
import { Background } from './background.js';
import { loggedMessages, structureOf, type Dataset, type DatasetRow } from './dataset.js';
import { toolsActive } from './tool-calls.js';
import type { RouterCore } from './core.js';
import type { DatasetEvent, RouterEvents } from './events.js';
import { trainingUnsupported, type LearnerHooks } from './learner.js';
import { readinessLine, shadowLine } from './log.js';
import { fitsLocally } from './policy.js';
import type { Readiness, ReadinessState } from './readiness.js';
import type { NormalRequest } from './request.js';
import { answerSimilarities, answerSimilarity } from './similarity.js';

export class Learning {
  readonly dataset: Dataset;
  readonly readiness: Readiness;
  #core: RouterCore;
  #background: Background;
  /** Aborted by close(), so a slow shadow check or audit cannot hold it up. */
  #stop = new AbortController();
  #rowListeners = new Set<(row: DatasetEvent) => void>();
  /** The version each adopted adapter file is (resolved path; null = the base model, 0). */
  #versions = new Map<string | null, number>([[null, 0]]);
  /** Set once the router has closed its files: the hooks fail with CLOSED from then on. */
  #shut = false;

  constructor(core: RouterCore, dataset: Dataset, readiness: Readiness) {
    this.#core = core;
    this.dataset = dataset;
    this.readiness = readiness;
    this.#background = new Background(16, (err) => core.warn(`background check failed: ${errorText(err)}`));
  }

  /** Appends a remote answer to the dataset (on disk when this returns), then tells the row listeners. */
  logRow(request: NormalRequest, answer: BackendAnswer, started: number, source: DatasetRow['source']): void {
    const redact = (text: string) => this.#core.redact(text);
    const id = this.dataset.append({
      task: request.task,
      kind: request.kind,
      ...(request.messages ? { messages: loggedMessages(request.messages, redact) } : {}),
      ...(request.prompt !== undefined ? { prompt: redact(request.prompt) } : {}),
      answer: redact(answer.text),
      params: request.params,
      ...structureOf(request),
      // Exactly as answered, so an export gives back the calls (or the text) the caller got.
      ...(toolsActive(request.tools, request.toolChoice)
        ? { answerCalls: (answer.toolCalls ?? []).map((c) => ({ name: c.name, arguments: redact(c.arguments) })) } : {}),
      usage: answer.usage,
      model: answer.model,
      source,
      latencyMs: performance.now() - started,
    });
    const row: DatasetEvent = { id, task: request.task, source };
    for (const listener of [...this.#rowListeners]) {
      try {
        listener(row);
      } catch (err) {
        this.#core.warn(`a dataset listener failed: ${errorText(err)}`);
      }
    }
    this.#core.emit('dataset', row);
  }

  /**
   * The adapter version that made a local answer: the one the backend says
   * answered when it says so (exact across a swap), else `sent`, the
   * generation when the call was sent.
   */
  versionOf(answer: BackendAnswer, sent: number): number {
    if (answer.adapter === undefined) return sent;
    return this.#versions.get(answer.adapter === null ? null : resolve(answer.adapter)) ?? sent;
  }

  /** After a call: maybe a shadow check (remote answered) or an audit (local answered, ready; `version` made it). */
  afterCall(call: BackendCall, answer: BackendAnswer, route: 'local' | 'remote', ready: boolean, version: number): void {
    const { local, remote, embedder, settings } = this.#core;
    if (!embedder) return;
    if (route === 'remote') {
      if (local && Math.random() < settings.shadowRate) this.#shadow(call, answer);
    } else if (ready && remote && Math.random() < settings.auditRate) {
      this.#audit(call, answer, version);
    }
  }

  /** In the background: the local model answers what the remote just did; their similarity updates readiness. */
  #shadow(call: BackendCall, remote: BackendAnswer): void {
    this.#background.push(async () => {
      const local = this.#core.local!;
      if (this.#core.closed || !fitsLocally(local, call)) return;
      // Scored under the adapter that answers, even if another is adopted meanwhile.
      const generation = this.readiness.generation;
      const answer = await local.answer({ ...call, signal: this.#stop.signal, onText: undefined });
      await this.#compare(call.task, answer.text, remote.text, 'shadow', this.versionOf(answer, generation));
    });
  }

  /** In the background: the remote answers what the (ready) local model did, so a task that got worse goes back. */
  #audit(call: BackendCall, local: BackendAnswer, generation: number): void {
    this.#background.push(async () => {
      if (this.#core.closed) return;
      const started = performance.now();
      const remote = await this.#core.remote!.answer({ ...call, signal: this.#stop.signal, onText: undefined });
      const request = { ...structureOf(call), kind: call.kind, task: call.task, messages: call.messages, prompt: call.prompt, params: call.params } as NormalRequest;
      this.logRow(request, remote, started, 'audit');
      await this.#compare(call.task, local.text, remote.text, 'audit', generation);
    });
  }

  async #compare(task: string, localText: string, remoteText: string, kind: 'shadow' | 'audit', generation: number): Promise<void> {
    const similarity = await answerSimilarity(localText, remoteText, this.#core.embedder!.embed);
    if (this.#core.closed) return;
    const { before, after } = this.readiness.record(task, similarity, kind, generation);
    const event = { task, kind, similarity, readiness: after.readiness, comparisons: after.comparisons, ready: after.ready };
    this.#core.log(shadowLine(event));
    this.#core.emit('shadow', event);
    if (before.ready !== after.ready) this.#changed(after);
  }

  #changed(state: ReadinessState): void {
    const change = { task: state.task, ready: state.ready, readiness: state.readiness, comparisons: state.comparisons, threshold: state.threshold, min: state.min };
    this.#core.log(readinessLine(change));
    // Reached from adopt() and forget(): a listener's exception must not look like a failed swap.
    this.#safeEmit('readiness', change);
  }

  /**
   * Emits for the learner's side (training progress, round reports, adapter
   * swaps, readiness flips after a swap): a listener that throws becomes a
   * warning. Emitting from a worker's message handler or between a swap and
   * its bookkeeping, a throw would crash the process or undo a swap that happened.
   */
  #safeEmit<K extends keyof RouterEvents>(event: K, payload: RouterEvents[K]): void {
    try {
      this.#core.emit(event, payload);
    } catch (err) {
      this.#safeWarn(`a listener of the '${String(event)}' event failed: ${errorText(err)}`);
    }
  }

  /** A warning whose own listener may throw: its line is already in the log by then. */
  #safeWarn(message: string): void {
    try {
      this.#core.warn(message);
    } catch {
      // The 'warning' listener threw; the line was written before the event.
    }
  }

  /** Every known task's state now, to tell afterwards whose `ready` flipped. */
  #snapshot(extra: Iterable<string> = []): Map<string, ReadinessState> {
    const tasks = new Set([...this.readiness.tasks(), ...extra]);
    return new Map([...tasks].map((task) => [task, this.readiness.state(task)]));
  }

  #announceFlips(before: Map<string, ReadinessState>): void {
    for (const [task, was] of before) {
      const now = this.readiness.state(task);
      if (now.ready !== was.ready) this.#changed(now);
    }
  }

  #open(): void {
    if (this.#shut) throw new UnderstudyError('CLOSED', 'the router has been closed');
  }

  /** The router's files are closing: the hooks must not reach them any more. */
  shut(): void {
    this.#shut = true;
    this.#rowListeners.clear();
  }

  /** See LearnerHooks.adopt. */
  async adopt(version: number, file: string | null, heldOut?: Map<string, number[]>, lineage: readonly number[] = []): Promise<void> {
    this.#open();
    if (!Number.isSafeInteger(version) || version < 0) v.fail('non-negative integer', 'version', version);
    if (file !== null && typeof file !== 'string') v.fail('string or null', 'file', file);
    if (!Array.isArray(lineage) || !lineage.every((n) => Number.isSafeInteger(n) && n >= 0)) {
      v.fail('array of non-negative integers', 'lineage', lineage);
    }
    const local = this.#core.local;
    if (!local?.useAdapter) throw trainingUnsupported('the local backend cannot take adapters');
    const before = this.#snapshot(heldOut?.keys());
    // Known before the swap: an answer made with it while the swap is pending can say so (versionOf).
    this.#versions.set(file === null ? null : resolve(file), version);
    // The load may fail (INVALID_ADAPTER, a missing file): nothing below has happened then.
    await local.useAdapter(file);
    this.#open();
    this.readiness.setGeneration(version, lineage);
    for (const [task, similarities] of heldOut ?? []) {
      if (similarities.length > 0) this.readiness.recordMany(version, task, similarities, 'heldout');
    }
    this.#announceFlips(before);
  }

  /** See LearnerHooks.forget. */
  forget(version: number): void {
    this.#open();
    if (!Number.isSafeInteger(version) || version < 0) v.fail('non-negative integer', 'version', version);
    const before = this.#snapshot();
    this.readiness.forget(version);
    this.#announceFlips(before);
  }

  /** The hooks a learner gets (see learner.ts). */
  hooks(): LearnerHooks {
    const core = this.#core;
    return {
      // The directory resolved, as the router uses it (a relative one would follow the learner's working directory).
      settings: Object.freeze({ ...core.settings, cacheDir: core.cacheDir }),
      cacheDir: core.cacheDir,
      rows: (afterId = 0) => {
        this.#open();
        // Lenient: a round skips a row it cannot read (and counts it) rather than failing on it.
        return this.dataset.rows(undefined, afterId, { lenient: true });
      },
      similarities: async (pairs) => {
        if (!core.embedder) throw trainingUnsupported('comparing answers needs an embedder (UNDERSTUDY_EMBEDDING_MODEL, the local model, or the embedder option)');
        return answerSimilarities(pairs, core.embedder.embed);
      },
      get localModel() {
        const local = core.local;
        return local?.useAdapter && local.trainingSource ? local.trainingSource() : null;
      },
      adopt: (version, file, heldOut, lineage) => this.adopt(version, file, heldOut, lineage),
      forget: (version) => this.forget(version),
      onRow: (listener) => {
        if (typeof listener !== 'function') v.fail('function', 'listener', listener);
        // Wrapped: the same function subscribed twice is two subscriptions, each undone by its own call.
        const entry = (row: DatasetEvent) => listener(row);
        this.#rowListeners.add(entry);
        return () => void this.#rowListeners.delete(entry);
      },
      log: (line) => core.log(line),
      warn: (message) => this.#safeWarn(message),
      emit: (event, payload) => this.#safeEmit(event, payload),
    };
  }

  /** Resolves when no background check is queued or running. */
  idle(): Promise<void> {
    return this.#background.idle();
  }

  /** Drops queued checks (the running one finishes, or is aborted by stop()). */
  clear(): void {
    this.#background.clear();
  }

  stop(): void {
    this.#stop.abort();
  }
}
