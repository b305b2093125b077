// One distillation round's heavy half, in a Piscina worker thread so the
// serving thread never waits on it: load the base model trainable on the CPU
// (mmap shares its pages with the serving copy), answer the held-out prompts
// greedily with the current adapter ("before"), train the candidate (from the
// current adapter, or a new one), answer them again with it ("after"), save it
// to the candidate file, and free everything.
//
// Aborting: the main thread posts { type: 'abort' } on the task's port, which
// stops model loading, training (between optimizer steps) and generation. It
// never uses Piscina's own abort, which terminates the thread, possibly in the
// middle of a native call that owns the model. An aborted or failed task leaves
// no candidate file. Failures come back as { ok: false, code, message }: an
// Error's own properties (its code) do not survive the trip between threads.
import { setMaxListeners } from 'node:events';
import type { MessagePort } from 'node:worker_threads';
import { rm } from 'node:fs/promises';
import { UnderstudyError, abortedError, type ErrorCode } from '../errors.js';
import type { Context } from '../llama/context.js';
import { loadModel, type Model } from '../llama/model.js';
import { tokenizeExamples, type TrainingExample } from '../llama/training-data.js';
import { parseToolCalls, toolCallText } from '../router/tool-calls.js';
import { errorText } from '../validate.js';
import type { HeldOutCall } from './examples.js';

export interface RoundWorkerTask {
  modelPath: string;
  /** The template the serving backend applies to chat (undefined: the model's own). */
  chatTemplate?: string;
  /** Tokens per sequence of the serving context: held-out prompts get the same room. */
  contextSize: number;
  parentFile: string | null;
  candidateFile: string;
  train: TrainingExample[];
  heldOut: HeldOutCall[];
  options: { epochs: number; learningRate: number; rank: number; alpha?: number; threads: number; window?: number; seed: number };
  port: MessagePort;
}

export type WorkerMessage =
  | { type: 'phase'; phase: 'baseline' | 'train' | 'evaluate' }
  | { type: 'progress'; step: number; steps: number; loss: number; epoch: number; epochs: number };

export interface RoundWorkerOutcome {
  ok: true;
  /** Held-out answers with the parent adapter and with the candidate; null where the prompt could not be answered (too long). */
  before: Array<string | null>;
  after: Array<string | null>;
  /** Whether a candidate was trained and saved (false when no example fit). */
  trained: boolean;
  steps: number;
  loss: number | null;
  /** Per training example: whether it was trained on (false: longer than the window, or not tokenizable). */
  used: boolean[];
  window: number;
  trainMs: number;
  evalMs: number;
}

export type RoundWorkerResult = RoundWorkerOutcome | { ok: false; code: ErrorCode; message: string };

/** Longest training window a round uses: a step costs its whole window. */
export const MAX_WINDOW = 2048;
const WINDOW_STEP = 256;
/** Held-out generations that run batched at once. */
const SEQUENCES = 4;
/** Shortest gap between two progress messages (the last step is always sent). */
const PROGRESS_MS = 100;

/**
 * The window: the smallest multiple of 256 that holds the longest example,
 * no more than 2048 nor the model's training context (rounded down to 256)
 * when that is smaller, and at least 256.
 */
export function windowCap(trainContextSize: number | null): number {
  const model = trainContextSize ? Math.floor(trainContextSize / WINDOW_STEP) * WINDOW_STEP : MAX_WINDOW;
  return Math.max(WINDOW_STEP, Math.min(MAX_WINDOW, model));
}

/** Which examples tokenize and fit in `cap` tokens, and the longest of their lengths. */
export function fitting(model: Model, examples: TrainingExample[], cap: number, template: string | undefined): { used: boolean[]; longest: number } {
  const used: boolean[] = [];
  let longest = 0;
  for (const example of examples) {
    try {
      const [tokens] = tokenizeExamples(model, [example], { window: cap, ...(template ? { template } : {}) });
      longest = Math.max(longest, tokens!.tokens.length);
      used.push(true);
    } catch (err) {
      if (!(err instanceof UnderstudyError && (err.code === 'INVALID_DATASET' || err.code === 'INVALID_ARGUMENT'))) throw err;
      used.push(false);
    }
  }
  return { used, longest };
}

/**
 * Errors of one held-out call that say the call cannot be made (a prompt the
 * context cannot hold, a request or stored row the model layer refuses): that
 * call is left out of the comparison (null), the others still count. Anything
 * else (aborted, out of memory, a decode failure) fails the round.
 */
const UNANSWERABLE: ReadonlySet<string> = new Set(['CONTEXT_OVERFLOW', 'INVALID_ARGUMENT', 'INVALID_DATASET', 'INVALID_GRAMMAR']);

/**
 * Greedy answers to `calls`, batched over the context's sequences; null for a
 * call that cannot be made. Each is answered as serving would: under the
 * call's grammar, and a tool call read back as its canonical text.
 */
export async function answerAll(context: Pick<Context, 'clearCache' | 'chat' | 'complete'>, calls: HeldOutCall[], template: string | undefined,
  signal: AbortSignal): Promise<Array<string | null>> {
  context.clearCache();
  return Promise.all(calls.map(async (call) => {
    if (call.unanswerable !== undefined) return null;
    const options = { temperature: 0, maxTokens: call.maxTokens, stop: call.stop, signal, ...(call.grammar === undefined ? {} : { grammar: call.grammar }) };
    try {
      const done = call.kind === 'chat'
        ? await context.chat(call.messages!, { ...options, ...(template ? { template } : {}) }).result
        : await context.complete(call.prompt!, options);
      const toolCalls = call.tools ? parseToolCalls(done.text, call.tools) : undefined;
      return toolCalls ? toolCallText(toolCalls) : done.text;
    } catch (err) {
      if (err instanceof UnderstudyError && UNANSWERABLE.has(err.code) && !signal.aborted) return null;
      throw err;
    }
  }));
}

async function runRound(task: RoundWorkerTask, signal: AbortSignal, post: (m: WorkerMessage) => void): Promise<RoundWorkerOutcome> {
  const { options: o, chatTemplate: template } = task;
  const model = await loadModel(task.modelPath, { trainable: true, gpuLayers: 0, signal });
  try {
    const cap = o.window ?? windowCap(model.info.trainContextSize);
    const { used, longest } = fitting(model, task.train, cap, template);
    const kept = task.train.filter((_, i) => used[i]);
    const window = o.window ?? Math.max(WINDOW_STEP, Math.ceil(longest / WINDOW_STEP) * WINDOW_STEP);
    if (kept.length === 0) {
      return { ok: true, before: [], after: [], trained: false, steps: 0, loss: null, used, window, trainMs: 0, evalMs: 0 };
    }
    const sequences = Math.max(1, Math.min(SEQUENCES, task.heldOut.length));
    const context = await model.createContext({ contextSize: task.contextSize * sequences, sequences, threads: o.threads });

    post({ type: 'phase', phase: 'baseline' });
    let started = performance.now();
    const parent = task.parentFile ? await model.loadLora(task.parentFile) : undefined;
    if (parent) await context.setLoras([[parent, 1]]);
    const before = await answerAll(context, task.heldOut, template, signal);
    let evalMs = performance.now() - started;
    // The trainer loads its own copy of the parent: this one is no longer needed.
    await parent?.dispose();

    post({ type: 'phase', phase: 'train' });
    started = performance.now();
    const trainer = await model.createLoraTrainer(task.parentFile
      ? { resumeFrom: task.parentFile, window, threads: o.threads }
      : { rank: o.rank, ...(o.alpha === undefined ? {} : { alpha: o.alpha }), seed: o.seed, window, threads: o.threads });
    const job = trainer.train(kept, {
      epochs: o.epochs, learningRate: o.learningRate, evalSplit: 0, seed: o.seed, signal, ...(template ? { template } : {}),
    });
    let sent = 0;
    for await (const event of job) {
      if (event.type !== 'step') continue;
      const now = performance.now();
      if (now - sent < PROGRESS_MS && event.step < event.steps) continue;
      sent = now;
      post({ type: 'progress', step: event.step, steps: event.steps, loss: event.loss, epoch: event.epoch, epochs: event.epochs });
    }
    const result = await job.result;
    const trainMs = performance.now() - started;

    post({ type: 'phase', phase: 'evaluate' });
    started = performance.now();
    await context.setLoras([[trainer.adapter, 1]]);
    const after = await answerAll(context, task.heldOut, template, signal);
    evalMs += performance.now() - started;
    if (signal.aborted) throw abortedError('the training round');
    await trainer.save(task.candidateFile);
    return {
      ok: true, before, after, trained: true, steps: result.steps, loss: result.trainLoss.at(-1) ?? null,
      used, window, trainMs, evalMs,
    };
  } finally {
    // Contexts, trainers and adapters go with the model.
    await model.dispose();
  }
}

/** The Piscina entry point. Never rejects: a failure is { ok: false, code, message }. */
export default async function roundWorker(task: RoundWorkerTask): Promise<RoundWorkerResult> {
  const controller = new AbortController();
  // Every held-out generation listens to it at once.
  setMaxListeners(task.heldOut.length + 10, controller.signal);
  const { port } = task;
  port.on('message', (message: unknown) => {
    if ((message as { type?: unknown } | null)?.type === 'abort') controller.abort();
  });
  try {
    return await runRound(task, controller.signal, (m) => port.postMessage(m));
  } catch (err) {
    await rm(task.candidateFile, { force: true }).catch(() => undefined);
    if (controller.signal.aborted) return { ok: false, code: 'ABORTED', message: 'the training round was aborted' };
    if (err instanceof UnderstudyError) return { ok: false, code: err.code, message: err.message };
    return { ok: false, code: 'NATIVE_ERROR', message: errorText(err) };
  } finally {
    port.close();
  }
}
