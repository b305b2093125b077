// LoraTrainer: a LoRA training session on one model (native/trainer.cpp). It
// owns a new adapter (B = 0, so the model is unchanged until the first step)
// or one resumed from a file, a training context, and AdamW's state. Its
// `adapter` is a live LoraAdapter: a context that applies it sees every step.
// model.trainLora() is the one-call form: a session, one run, save, dispose.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { UnderstudyError, abortedError, callNative, disposedError } from '../errors.js';
import * as v from '../validate.js';
import type { NativeTrainer } from './binding.js';
import { asyncDispose, settled, syncDispose } from './lifecycle.js';
import { planFromAdapter, saveAdapter, writeNewAdapter, type AdapterPlan, type TrainingHistory } from './lora-file.js';
import { planAdapter } from './lora-plan.js';
import type { LoraAdapter } from './lora.js';
import type { Model } from './model.js';
import type { TrainingExample } from './training-data.js';
import { TrainingJob, signalOption, type TrainingEvent, type TrainingResult } from './training-job.js';
import { evaluateWindows, padToken, prepareData, runEpochs, type PreparedData, type RunState } from './training-loop.js';
import { tokenizeExamples } from './training-data.js';
import { packWindows } from './training-windows.js';
import {
  runSettings, trainerSettings, type LoraTrainerOptions, type RunSettings, type TrainerSettings, type TrainLoraOptions,
  type TrainingRunOptions,
} from './training-options.js';

export class LoraTrainer {
  /** The adapter being trained, applied to no context but the trainer's own unless you apply it. */
  readonly adapter: LoraAdapter;
  readonly plan: AdapterPlan;
  readonly settings: TrainerSettings;
  #model: Model;
  #native: NativeTrainer | undefined;
  #disposal: Promise<void> | undefined;
  #running = false;
  // What the adapter has been through, recorded in the file it is saved to.
  #history = { steps: 0, epochs: 0, trainLoss: [] as number[], evalLoss: [] as number[], tokens: 0 };

  /** @internal Use model.createLoraTrainer(). */
  constructor(model: Model, native: NativeTrainer, adapter: LoraAdapter, plan: AdapterPlan, settings: TrainerSettings, history?: TrainingHistory) {
    this.#model = model;
    this.#native = native;
    this.adapter = adapter;
    this.plan = plan;
    this.settings = settings;
    if (history) this.#history = { ...history, trainLoss: [...history.trainLoss], evalLoss: [...history.evalLoss] };
  }

  /** @internal */
  static async create(model: Model, options: LoraTrainerOptions | undefined): Promise<LoraTrainer> {
    const site = new Error();
    const settings = trainerSettings(options);
    if (model.info.vocabOnly) {
      throw new UnderstudyError('TRAINING_UNSUPPORTED', 'a vocab-only model cannot be trained: load it without vocabOnly');
    }
    let plan: AdapterPlan;
    let history: TrainingHistory | undefined;
    let adapter: LoraAdapter;
    if (settings.resumeFrom) {
      const resumed = await planFromAdapter(settings.resumeFrom, model.path);
      plan = resumed;
      history = resumed.history;
      adapter = await model.loadLora(settings.resumeFrom);
    } else {
      plan = await planAdapter(model.path, settings);
      // llama.cpp loads adapters from files only; this one lives in memory once loaded.
      const dir = await mkdtemp(join(tmpdir(), 'understudy-lora-'));
      try {
        const path = join(dir, 'new-adapter.gguf');
        await writeNewAdapter(path, model.path, plan, settings.seed);
        adapter = await model.loadLora(path);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    try {
      const native = await callNative(model._native().createTrainer(adapter._native(), {
        window: settings.window, threads: settings.threads, beta1: settings.beta1, beta2: settings.beta2,
        eps: settings.epsilon, weightDecay: settings.weightDecay,
      }), site);
      return new LoraTrainer(model, native, adapter, plan, settings, history);
    } catch (err) {
      await adapter.dispose();
      throw err;
    }
  }

  get disposed(): boolean {
    return this.#native === undefined;
  }

  /** Optimizer steps the adapter has taken, those of the file it was resumed from included. */
  get steps(): number {
    return this.#history.steps;
  }

  /**
   * Trains the adapter on `examples` (see TrainingExample). The job's result
   * has no adapter path: call save() to write one. One run at a time.
   */
  train(examples: TrainingExample[], options?: TrainingRunOptions): TrainingJob {
    return new TrainingJob((emit, signal) => this._run(examples, options, emit, signal), signalOption(options));
  }

  /** @internal */
  async _run(examples: unknown, options: TrainingRunOptions | undefined, emit: (e: TrainingEvent) => void, signal: AbortSignal): Promise<TrainingResult> {
    const s = runSettings(options);
    this.#live();
    return this._runPrepared(prepareData(this.#model, examples, this.settings.window, s), s, emit, signal);
  }

  /** @internal The run behind train() and trainLora(), on examples already checked and packed. */
  async _runPrepared(data: PreparedData, s: RunSettings, emit: (e: TrainingEvent) => void, signal: AbortSignal): Promise<TrainingResult> {
    if (signal.aborted) throw abortedError('training');
    if (this.#running) throw new UnderstudyError('BUSY', 'the trainer is already running a training job');
    this.#running = true;
    const h = this.#history;
    // Counted as they happen: a run that is aborted or fails part-way has
    // still moved the adapter by its steps, and a save() after it says so.
    const record = (e: TrainingEvent) => {
      if (e.type === 'step') {
        h.steps++;
        h.tokens += this.settings.window;
      } else {
        h.epochs++;
        h.trainLoss.push(e.trainLoss);
        if (e.evalLoss !== null) h.evalLoss.push(e.evalLoss);
      }
      emit(e);
    };
    try {
      const result = await runEpochs(this.#state(), data, s, record, signal);
      return { adapter: '', ...result };
    } finally {
      this.#running = false;
    }
  }

  /**
   * The masked loss (mean over the tokens the examples learn) of `examples`
   * under the adapter as it is now, without training: the same number a run
   * reports for its held-out examples.
   */
  async evaluate(examples: TrainingExample[], options?: { template?: string; signal?: AbortSignal }): Promise<{ loss: number; countedTokens: number }> {
    const o = v.options(options);
    const template = o.template === undefined ? undefined : v.nonEmptyString(o.template, 'template');
    const signal = v.abortSignal(o.signal) ?? new AbortController().signal;
    this.#live();
    const windows = packWindows(tokenizeExamples(this.#model, examples, { window: this.settings.window, template }),
      this.settings.window, padToken(this.#model));
    if (this.#running) throw new UnderstudyError('BUSY', 'the trainer is running a training job');
    this.#running = true;
    try {
      const loss = await evaluateWindows(this.#state(), windows, signal);
      return { loss, countedTokens: windows.countedTokens };
    } finally {
      this.#running = false;
    }
  }

  /** Writes the adapter as it is now to `path` (a temp file renamed into place), with its training history. */
  async save(path: string): Promise<void> {
    const site = new Error();
    const tensors = await callNative(this.#live().readAdapter(), site);
    const h = this.#history;
    await saveAdapter(path, this.#model.path, this.plan, tensors, {
      steps: h.steps, epochs: h.epochs, trainLoss: h.trainLoss, evalLoss: h.evalLoss, tokens: h.tokens,
    });
  }

  /**
   * Frees the training context and the optimizer state; a run in progress stops
   * after its current step and fails with DISPOSED. The adapter stays loaded
   * (dispose it, or the model, to free it). Never rejects.
   */
  dispose(): Promise<void> {
    if (!this.#disposal) {
      const native = this.#native;
      this.#native = undefined;
      this.#disposal = settled(native?.dispose());
    }
    return this.#disposal;
  }

  [syncDispose](): void {
    void this.dispose();
  }

  [asyncDispose](): Promise<void> {
    return this.dispose();
  }

  #state(): RunState {
    return { native: () => this.#live(), window: this.settings.window, disposed: () => this.disposed };
  }

  #live(): NativeTrainer {
    if (!this.#native) throw disposedError('LoRA trainer');
    return this.#native;
  }
}

// The adapter is written only after training: a path that cannot take it must
// fail before, not after, the run.
async function checkWritable(out: string): Promise<void> {
  const dir = dirname(resolve(out));
  try {
    await access(dir, constants.W_OK);
  } catch {
    throw new UnderstudyError('IO_ERROR', `cannot write the adapter to ${out}: ${dir} is not a writable directory`);
  }
  const existing = await stat(out).catch(() => undefined);
  if (existing?.isDirectory()) throw new UnderstudyError('IO_ERROR', `cannot write the adapter to ${out}: it is a directory`);
}

/**
 * model.trainLora(): a session, one run, the adapter saved to `out` (only when
 * the run succeeds), the session freed. Every example is checked before the
 * session is made, so bad data fails at once.
 */
export function trainLora(
  model: Model, examples: TrainingExample[], options: TrainLoraOptions | undefined,
  createTrainer: (options: LoraTrainerOptions | undefined) => Promise<LoraTrainer>,
): TrainingJob {
  return new TrainingJob(async (emit, signal) => {
    const o = v.options(options);
    const out = o.out === undefined ? join(tmpdir(), `understudy-lora-${Date.now()}-${randomBytes(4).toString('hex')}.gguf`)
      : v.nonEmptyString(o.out, 'out');
    const s = runSettings(o);
    const data = prepareData(model, examples, trainerSettings(o).window, s);
    await checkWritable(out);
    if (signal.aborted) throw abortedError('training');
    const trainer = await createTrainer(o);
    try {
      const result = await trainer._runPrepared(data, s, emit, signal);
      if (signal.aborted) throw abortedError('training');
      await trainer.save(out);
      return { ...result, adapter: out };
    } finally {
      await trainer.dispose();
      await trainer.adapter.dispose();
    }
  }, signalOption(options));
}
