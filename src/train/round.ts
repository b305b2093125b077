// One distillation round, from the dataset to a decision: plan (split, newest
// rows), the worker (baseline answers, training, candidate answers), the
// held-out similarities, the gate (gate.ts), and on promotion the registry entry and the
// hot swap. The serving thread only reads rows, posts the task, and scores.
//
// A round leaves one of three states, never a mix: nothing changed (skipped,
// kept, aborted, failed: the candidate file is removed), or the candidate is
// v<N>.gguf, the manifest's current, and the adapter the backend serves. When
// the swap fails after the manifest was written, the manifest goes back to the
// parent (the entry stays, marked rolled back) and the round reports it kept.
//
// The parent is the adapter that serves (the distiller tracks it), not the
// manifest's current: when that one could not be loaded at start-up, the base
// model serves, and a round measuring or resuming the unloadable file would
// judge an adapter nobody uses and fail on it for good.
//
// A skipped round ("not enough data") is not recorded as a round (no
// finishRound: the round number is not used up), but its report's lastRowId
// tells the distiller the rows it looked at, so automatic rounds wait for
// trainEvery new rows after it rather than retrying on every row.
//
// Every error leaving a round is an UnderstudyError: a crashed worker, an
// embedder that throws or a bug would otherwise reach router.train() uncoded.
import { rm } from 'node:fs/promises';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import type { Piscina } from 'piscina';
import { UnderstudyError, abortedError } from '../errors.js';
import type { AdapterInfo, LearnerHooks, RoundReport, TrainingProgress } from '../router/learner.js';
import type { RouterEvents } from '../router/events.js';
import { errorText } from '../validate.js';
import type { BaseModelKey } from './base-key.js';
import { checkSimilarities, decide } from './gate.js';
import type { DistillSettings } from './options.js';
import type { AdapterRegistry } from './registry.js';
import { planRound, scoreRound, type RoundPlan } from './round-plan.js';
import type { RoundWorkerOutcome, RoundWorkerResult, RoundWorkerTask, WorkerMessage } from './round-worker.js';
import { roundLine, versionName } from './train-log.js';

export interface RoundInput {
  hooks: LearnerHooks;
  registry: AdapterRegistry;
  base: BaseModelKey;
  source: { path: string; chatTemplate?: string; contextSize: number };
  settings: DistillSettings;
  pool: Piscina;
  trigger: 'auto' | 'manual';
  signal: AbortSignal;
  /** The adapter serving now (null = the base model): the round measures it and trains from it. */
  parent: AdapterInfo | null;
}

/** Ids, as a warning lists them: the first few and how many more. */
function idList(ids: number[]): string {
  return ids.length <= 5 ? ids.join(', ') : `${ids.slice(0, 5).join(', ')} and ${ids.length - 5} more`;
}

export async function runRound(input: RoundInput): Promise<RoundReport> {
  const { hooks, registry, base, settings: s, signal } = input;
  const started = performance.now();
  const round = registry.nextRound(base.key);
  const parent = input.parent;
  const progress = (p: Omit<TrainingProgress, 'round'>) => emit(hooks, 'training', { round, ...p });
  progress({ phase: 'start' });
  const candidate = registry.candidatePath();
  let promoted = false;
  try {
    if (signal.aborted) throw abortedError('the training round');
    const listed = registry.current(base.key);
    if ((listed?.version ?? null) !== (parent?.version ?? null)) {
      hooks.warn(`round ${round} starts from ${versionName(parent?.version ?? null)}, which serves, not from ${versionName(listed?.version ?? null)}, the manifest's current (it is not loaded)`);
    }
    const plan = await planRound(hooks.rows(0), s, registry.state(base.key).lastRowId);
    if (plan.refused.ids.length > 0) {
      const n = plan.refused.ids.length;
      hooks.warn(`round ${round} left out ${n} dataset row${n === 1 ? '' : 's'} it cannot use (id${n === 1 ? '' : 's'} ${idList(plan.refused.ids)}): ${plan.refused.first}`);
    }
    const report = (fields: Partial<RoundReport> & Pick<RoundReport, 'reason'>): RoundReport => ({
      round, trigger: input.trigger, rows: 0, skippedRows: plan.unreadable, tasks: [], before: null, after: null,
      promoted: false, version: null, parent: parent?.version ?? null, steps: 0, loss: null,
      trainMs: 0, evalMs: 0, durationMs: performance.now() - started, lastRowId: plan.lastRowId, ...fields,
    });
    if (plan.examples.length === 0) {
      return finish(hooks, report({ reason: `not enough data: no training rows yet (${plan.heldOut.length} held out)` }));
    }
    const out = await runWorker(input, plan, candidate, parent?.file ?? null, progress);
    const rows = out.used.filter(Boolean).length;
    const skippedRows = plan.unreadable + out.used.length - rows;
    if (!out.trained) {
      return finish(hooks, report({ skippedRows, reason: `not enough data: no training row fits a ${out.window}-token window` }));
    }
    // Pairs of (local answer, remote answer): before then after, for each held-out call both answered.
    const answered = plan.heldOut.map((_, i) => out.before[i] != null && out.after[i] != null);
    const pairs: Array<[string, string]> = [];
    plan.heldOutRows.forEach(({ answer }, i) => {
      if (answered[i]) pairs.push([out.before[i]!, answer], [out.after[i]!, answer]);
    });
    const sims = pairs.length > 0 ? await compare(hooks, pairs) : [];
    if (signal.aborted) throw abortedError('the training round');
    checkSimilarities(sims);
    const scored = scoreRound(plan, out.used, answered, sims, parent ? new Set(Object.keys(parent.tasks)) : null);
    const gate = decide(scored, s);
    let version: number | null = null;
    let reason = gate.reason;
    if (gate.promote) {
      const info = registry.promote(candidate, {
        baseKey: base.key, baseName: base.name, parent: parent?.version ?? null, rowsUsed: rows, round,
        tasks: Object.fromEntries(scored.tasks.map((t) => [t.task, { trainRows: t.trainRows, heldOutRows: t.heldOutRows, before: t.before, after: t.after }])),
        heldOut: { before: scored.before, after: scored.after },
      });
      promoted = true;
      try {
        // A version number used before (adapters/ deleted, dataset.db kept) must not
        // inherit the old adapter's comparisons: they judged another model.
        hooks.forget(info.version);
        await hooks.adopt(info.version, info.file, scored.afterSims, registry.lineage(info.version));
        version = info.version;
      } catch (err) {
        // The manifest must not name an adapter the backend does not serve.
        registry.rollback(base.key);
        reason = `v${info.version} passed the gate (${gate.reason}) but could not be loaded: ${errorText(err)}`;
      }
      // Outside the try: only the swap failing may undo the promotion.
      if (version !== null) emit(hooks, 'adapter', { action: 'promoted', version, previous: parent?.version ?? null });
    }
    registry.finishRound(base.key, plan.lastRowId);
    return finish(hooks, report({
      rows, skippedRows, tasks: scored.tasks, before: scored.before, after: scored.after, promoted: version !== null,
      version, reason, steps: out.steps, loss: out.loss, trainMs: out.trainMs, evalMs: out.evalMs,
    }));
  } catch (err) {
    progress({ phase: signal.aborted || (err instanceof UnderstudyError && err.code === 'ABORTED') ? 'aborted' : 'failed' });
    if (err instanceof UnderstudyError) throw err;
    throw new UnderstudyError('NATIVE_ERROR', `the training round failed: ${errorText(err)}`, { cause: err });
  } finally {
    if (!promoted) await rm(candidate, { force: true }).catch(() => undefined);
  }
}

function finish(hooks: LearnerHooks, report: RoundReport): RoundReport {
  emit(hooks, 'training', { round: report.round, phase: 'done' });
  emit(hooks, 'round', report);
  hooks.log(roundLine(report));
  return report;
}

/**
 * An event from the round: a listener's exception is a warning, never the
 * round's failure (the router's hooks guard this too; a learner's hooks made
 * elsewhere may not), and never an uncaught exception in the worker port's handler.
 */
function emit<K extends keyof RouterEvents>(hooks: LearnerHooks, event: K, payload: RouterEvents[K]): void {
  try {
    hooks.emit(event, payload);
  } catch (err) {
    try {
      hooks.warn(`a listener of the '${String(event)}' event failed: ${errorText(err)}`);
    } catch {
      // Nothing left to tell it to.
    }
  }
}

/** The held-out similarities; an embedder's failure named as one, with its code (NATIVE_ERROR when it has none). */
async function compare(hooks: LearnerHooks, pairs: Array<[string, string]>): Promise<number[]> {
  try {
    return await hooks.similarities(pairs);
  } catch (err) {
    const code = err instanceof UnderstudyError ? err.code : 'NATIVE_ERROR';
    if (code === 'ABORTED' || code === 'CLOSED') throw err;
    throw new UnderstudyError(code, `the training round could not compare held-out answers: the embedder failed: ${errorText(err)}`, { cause: err });
  }
}

/** Runs the worker's half; an abort of `signal` is passed on through the task's port. */
async function runWorker(
  input: RoundInput, plan: RoundPlan, candidate: string, parentFile: string | null,
  progress: (p: Omit<TrainingProgress, 'round'>) => void,
): Promise<RoundWorkerOutcome> {
  const { source, settings: s, signal } = input;
  const { port1, port2 } = new MessageChannel();
  const onMessage = (m: WorkerMessage) => {
    if (m.type === 'phase') progress({ phase: m.phase });
    else progress({ phase: 'train', step: m.step, steps: m.steps, loss: m.loss, epoch: m.epoch, epochs: m.epochs });
  };
  port1.on('message', onMessage);
  const onAbort = () => port1.postMessage({ type: 'abort' });
  signal.addEventListener('abort', onAbort, { once: true });
  const task: RoundWorkerTask = {
    modelPath: source.path, ...(source.chatTemplate ? { chatTemplate: source.chatTemplate } : {}), contextSize: source.contextSize,
    parentFile, candidateFile: candidate, train: plan.examples, heldOut: plan.heldOut,
    options: {
      epochs: s.epochs, learningRate: s.learningRate, rank: s.rank, ...(s.alpha === undefined ? {} : { alpha: s.alpha }),
      threads: s.threads, seed: s.seed,
    },
    port: port2,
  };
  try {
    if (signal.aborted) throw abortedError('the training round');
    const result = await input.pool.run(task, { transferList: [port2] }) as RoundWorkerResult;
    if (!result.ok) {
      throw result.code === 'ABORTED' ? abortedError('the training round') : new UnderstudyError(result.code, `the training round failed: ${result.message}`);
    }
    if (signal.aborted) throw abortedError('the training round');
    return result;
  } finally {
    signal.removeEventListener('abort', onAbort);
    // The result comes on Piscina's channel, the progress on this port: nothing
    // orders the two, and closing a port drops what it has not delivered yet.
    for (let m = receiveMessageOnPort(port1); m; m = receiveMessageOnPort(port1)) onMessage(m.message as WorkerMessage);
    port1.close();
  }
}
