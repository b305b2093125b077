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
import { rm } from 'node:fs/promises';
import { MessageChannel } from 'node:worker_threads';
import type { Piscina } from 'piscina';
import { UnderstudyError, abortedError } from '../errors.js';
import type { LearnerHooks, RoundReport, TrainingProgress } from '../router/learner.js';
import { errorText } from '../validate.js';
import type { BaseModelKey } from './base-key.js';
import { decide } from './gate.js';
import type { DistillSettings } from './options.js';
import type { AdapterRegistry } from './registry.js';
import { planRound, scoreRound, type RoundPlan } from './round-plan.js';
import type { RoundWorkerOutcome, RoundWorkerResult, RoundWorkerTask, WorkerMessage } from './round-worker.js';
import { roundLine } from './train-log.js';

export interface RoundInput {
  hooks: LearnerHooks;
  registry: AdapterRegistry;
  base: BaseModelKey;
  source: { path: string; chatTemplate?: string; contextSize: number };
  settings: DistillSettings;
  pool: Piscina;
  trigger: 'auto' | 'manual';
  signal: AbortSignal;
}

export async function runRound(input: RoundInput): Promise<RoundReport> {
  const { hooks, registry, base, settings: s, signal } = input;
  const started = performance.now();
  const round = registry.nextRound(base.key);
  const parent = registry.current(base.key);
  const progress = (p: Omit<TrainingProgress, 'round'>) => hooks.emit('training', { round, ...p });
  progress({ phase: 'start' });
  const candidate = registry.candidatePath();
  let promoted = false;
  try {
    if (signal.aborted) throw abortedError('the training round');
    const plan = await planRound(hooks.rows(0), s, registry.state(base.key).lastRowId);
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
    const sims = pairs.length > 0 ? await input.hooks.similarities(pairs) : [];
    if (signal.aborted) throw abortedError('the training round');
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
        await hooks.adopt(info.version, info.file, scored.afterSims);
        version = info.version;
        hooks.emit('adapter', { action: 'promoted', version: info.version, previous: parent?.version ?? null });
      } catch (err) {
        // The manifest must not name an adapter the backend does not serve.
        registry.rollback(base.key);
        reason = `v${info.version} passed the gate (${gate.reason}) but could not be loaded: ${errorText(err)}`;
      }
    }
    registry.finishRound(base.key, plan.lastRowId);
    return finish(hooks, report({
      rows, skippedRows, tasks: scored.tasks, before: scored.before, after: scored.after, promoted: version !== null,
      version, reason, steps: out.steps, loss: out.loss, trainMs: out.trainMs, evalMs: out.evalMs,
    }));
  } catch (err) {
    progress({ phase: signal.aborted || (err instanceof UnderstudyError && err.code === 'ABORTED') ? 'aborted' : 'failed' });
    throw err;
  } finally {
    if (!promoted) await rm(candidate, { force: true }).catch(() => undefined);
  }
}

function finish(hooks: LearnerHooks, report: RoundReport): RoundReport {
  hooks.emit('training', { round: report.round, phase: 'done' });
  hooks.emit('round', report);
  hooks.log(roundLine(report));
  return report;
}

/** Runs the worker's half; an abort of `signal` is passed on through the task's port. */
async function runWorker(
  input: RoundInput, plan: RoundPlan, candidate: string, parentFile: string | null,
  progress: (p: Omit<TrainingProgress, 'round'>) => void,
): Promise<RoundWorkerOutcome> {
  const { source, settings: s, signal } = input;
  const { port1, port2 } = new MessageChannel();
  port1.on('message', (m: WorkerMessage) => {
    if (m.type === 'phase') progress({ phase: m.phase });
    else progress({ phase: 'train', step: m.step, steps: m.steps, loss: m.loss, epoch: m.epoch, epochs: m.epochs });
  });
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
    port1.close();
  }
}
