// Model: the typed face of native/model.cpp. loadModel() checks the file, picks
// the GPU layers, loads on a worker thread with progress and abort, and returns a
// Model. dispose() frees it with every context and adapter made from it, and
// resolves once their native memory is gone.
import { UnderstudyError, abortedError, callNative, disposedError, fromNative } from '../errors.js';
import * as v from '../validate.js';
import { binding, type NativeModel, type NativeModelInfo } from './binding.js';
import { Context, type ContextOptions } from './context.js';
import { checkMessages, formatChat, type ChatMessage, type ChatTemplateOptions } from './chat.js';
import { asyncDispose, settled, syncDispose, WeakChildren } from './lifecycle.js';
import { LoraAdapter } from './lora.js';
import { LoraTrainer, trainLora } from './lora-trainer.js';
import type { TrainingExample } from './training-data.js';
import type { TrainingJob } from './training-job.js';
import type { LoraTrainerOptions, TrainLoraOptions } from './training-options.js';
import { checkAdapterBase, modelFingerprint, type ModelFingerprint } from './lora-base.js';
import { readGguf } from '../gguf/reader.js';
import { checkModelFile } from './model-file.js';
import { resolveGpuLayers, type GpuLayers } from './system.js';

export interface LoadModelOptions {
  /** Layers to offload to the GPU: a number, 'max' for all, or 'auto' (default): all that fit. */
  gpuLayers?: GpuLayers;
  /** Map the file instead of reading it into memory (default true). */
  mmap?: boolean;
  /** Load only the vocabulary: enough to tokenize, nothing to generate with. */
  vocabOnly?: boolean;
  /**
   * Load for LoRA training (model.trainLora): weights stay in plain CPU memory,
   * not repacked for faster CPU inference and not on a GPU, because this
   * llama.cpp version has no backward pass for those layouts. Default false.
   */
  trainable?: boolean;
  /**
   * Called with load progress between 0 and 1. If it throws, the load stops and
   * `loadModel` rejects with that same error (the callback is not called again).
   */
  onProgress?: (progress: number) => void;
  signal?: AbortSignal;
}

export interface ModelInfo extends NativeModelInfo {
  path: string;
  fileSize: number;
  vocabOnly: boolean;
  gpuLayers: number;
}

export interface TokenizeOptions {
  /** Add BOS/EOS as the model asks (default true). */
  addSpecial?: boolean;
  /** Read special-token text such as `<s>` as special tokens (default false). */
  parseSpecial?: boolean;
}

export interface DetokenizeOptions {
  /** Drop BOS/EOS that the model adds (default false). */
  removeSpecial?: boolean;
  /** Render special tokens as their text (default false). */
  unparseSpecial?: boolean;
}

export async function loadModel(path: string, options?: LoadModelOptions): Promise<Model> {
  const site = new Error();
  v.nonEmptyString(path, 'path');
  const o = v.options(options);
  const vocabOnly = v.boolean(o.vocabOnly, 'vocabOnly', false);
  const mmap = v.boolean(o.mmap, 'mmap', true);
  const trainable = v.boolean(o.trainable, 'trainable', false);
  const onProgress = v.fn<(p: number) => void>(o.onProgress, 'onProgress');
  const signal = v.abortSignal(o.signal);
  if (o.gpuLayers !== undefined && o.gpuLayers !== 'auto' && o.gpuLayers !== 'max') {
    v.integer(o.gpuLayers, 'gpuLayers', 0, 0);
  }
  const { size } = await checkModelFile(path);
  const gpuLayers = vocabOnly || trainable ? 0 : await resolveGpuLayers(o.gpuLayers ?? 'auto', path, size);
  if (signal?.aborted) throw abortedError('model load');
  const native = binding();
  const flag = new native.AbortFlag();
  const onAbort = () => flag.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  // The native side calls this from the event loop: an exception escaping it
  // would be uncaught and end the process, so it ends the load instead.
  let thrown: { error: unknown } | undefined;
  const progress = onProgress && ((p: number) => {
    if (thrown) return;
    try {
      onProgress(p);
    } catch (error) {
      thrown = { error };
      flag.abort();
    }
  });
  try {
    let handle: NativeModel;
    try {
      handle = await callNative(native.loadModel(path, { gpuLayers, vocabOnly, mmap, trainable }, progress, flag), site);
    } catch (err) {
      throw thrown ? thrown.error : err;
    }
    // The last report (1) comes as the load completes, too late to abort it.
    if (thrown) {
      void handle.dispose();
      throw thrown.error;
    }
    return new Model(handle, path, size, vocabOnly, gpuLayers);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

export class Model {
  readonly path: string;
  #native: NativeModel | undefined;
  #info: ModelInfo;
  // Held weakly: a context or adapter nobody references is collected (and its
  // native memory freed) even while the model lives.
  #contexts = new WeakChildren<Context>();
  #adapters = new WeakChildren<LoraAdapter>();
  #trainers = new WeakChildren<LoraTrainer>();
  #disposal: Promise<void> | undefined;
  #fingerprint: Promise<ModelFingerprint | null> | undefined;

  /** @internal Use loadModel(). */
  constructor(native: NativeModel, path: string, fileSize: number, vocabOnly: boolean, gpuLayers: number) {
    this.#native = native;
    this.path = path;
    this.#info = { ...native.info(), path, fileSize, vocabOnly, gpuLayers };
  }

  get info(): ModelInfo {
    return this.#info;
  }

  get disposed(): boolean {
    return this.#native === undefined;
  }

  tokenize(text: string, options?: TokenizeOptions): number[] {
    v.string(text, 'text');
    const o = v.options(options);
    const addSpecial = v.boolean(o.addSpecial, 'addSpecial', true);
    const parseSpecial = v.boolean(o.parseSpecial, 'parseSpecial', false);
    return Array.from(this.#call(() => this.#live().tokenize(text, addSpecial, parseSpecial)));
  }

  detokenize(tokens: ArrayLike<number>, options?: DetokenizeOptions): string {
    // Read outside #call: an exception from the caller's own getter reaches them unchanged.
    const o = v.options(options);
    const array = toTokenArray(tokens, 'tokens');
    const removeSpecial = v.boolean(o.removeSpecial, 'removeSpecial', false);
    const unparseSpecial = v.boolean(o.unparseSpecial, 'unparseSpecial', false);
    return this.#call(() => this.#live().detokenize(array, removeSpecial, unparseSpecial));
  }

  /** The bytes one token renders to: possibly part of a UTF-8 character. */
  tokenPiece(token: number, options?: { special?: boolean }): Uint8Array {
    v.integer(token, 'token', 0, 0);
    const o = v.options(options);
    const special = v.boolean(o.special, 'special', false);
    return this.#call(() => new Uint8Array(this.#live().tokenPiece(token, special)));
  }

  async createContext(options?: ContextOptions): Promise<Context> {
    const site = new Error();
    if (this.#info.vocabOnly) {
      throw new UnderstudyError('INVALID_ARGUMENT', 'this model was loaded with vocabOnly: it can tokenize but not generate; load it without vocabOnly to create a context');
    }
    const parsed = Context.parseOptions(options, this.#info.trainContextSize ?? 0, this.#poolingDeclared());
    const native = await callNative(this.#live().createContext(parsed), site);
    if (this.disposed) {
      // dispose() ran while the context was being made: free it, then fail.
      await settled(native.dispose());
      throw new UnderstudyError('DISPOSED', 'the model was disposed while the context was being created');
    }
    let forget = () => {};
    const context = new Context(this, native, () => forget(), parsed.maxQueued);
    forget = this.#contexts.add(context);
    return context;
  }

  /**
   * Loads a LoRA adapter (llama.cpp's GGUF adapter format) made for this model;
   * apply it with context.setLora(). One made for another architecture or shape
   * is refused with INVALID_ADAPTER, and so is one whose metadata records another
   * base model (see lora-base.ts); one that does not say which model it was made
   * for loads with a warning (type UnderstudyWarning, on process 'warning').
   */
  async loadLora(path: string): Promise<LoraAdapter> {
    const site = new Error();
    v.nonEmptyString(path, 'path');
    await checkModelFile(path, 'LoRA adapter');
    await checkAdapterBase(path, () => (this.#fingerprint ??= readGguf(this.path)
      .then((file) => modelFingerprint(this.path, file))
      .catch(() => null)));
    const native = await callNative(this.#live().loadLora(path), site);
    if (this.disposed) {
      await settled(native.dispose());
      throw new UnderstudyError('DISPOSED', 'the model was disposed while the LoRA adapter was being loaded');
    }
    let forget = () => {};
    const adapter: LoraAdapter = new LoraAdapter(native, path, (): Promise<void> => {
      forget();
      return this.#detach(adapter);
    });
    forget = this.#adapters.add(adapter);
    return adapter;
  }

  /**
   * Trains a LoRA adapter on `examples` and writes it to `options.out`: the
   * returned job yields progress events and resolves `result` once the adapter
   * is saved. Only the adapter trains; the model's weights are shared, never
   * written. A model whose weights are repacked for CPU inference (quantized
   * ones, usually) must be loaded with { trainable: true }.
   */
  trainLora(examples: TrainingExample[], options?: TrainLoraOptions): TrainingJob {
    return trainLora(this, examples, options, (o) => this.createLoraTrainer(o));
  }

  /**
   * A training session for a new adapter (or one resumed from a file): run
   * trainer.train() as often as needed, apply trainer.adapter to a context to
   * try it, trainer.save() it, and dispose() it.
   */
  async createLoraTrainer(options?: LoraTrainerOptions): Promise<LoraTrainer> {
    this.#live();
    const trainer = await LoraTrainer.create(this, options);
    if (this.disposed) {
      await trainer.dispose();
      throw new UnderstudyError('DISPOSED', 'the model was disposed while the LoRA trainer was being created');
    }
    this.#trainers.add(trainer);
    return trainer;
  }

  /** Formats chat messages into a prompt with the model's chat template (or `options.template`). */
  applyChatTemplate(messages: ChatMessage[], options?: ChatTemplateOptions): string {
    return formatChat(this.#live(), checkMessages(messages), v.options(options));
  }

  /**
   * Frees the model and every context and adapter made from it, now rather than
   * at GC. Calls still running on its contexts fail with DISPOSED. The promise
   * resolves once all of their native memory is released (the model's last);
   * it never rejects, and calling dispose() again returns the same promise.
   */
  dispose(): Promise<void> {
    if (!this.#disposal) {
      const native = this.#native;
      this.#native = undefined;
      // Contexts first, so that disposing the adapters finds nothing to detach from.
      const children = [...this.#trainers.live(), ...this.#contexts.live(), ...this.#adapters.live()].map((child) => child.dispose());
      this.#disposal = settled(Promise.all([...children, native?.dispose()]));
    }
    return this.#disposal;
  }

  /** For `using`: starts disposal without waiting for it. */
  [syncDispose](): void {
    void this.dispose();
  }

  /** For `await using`: disposal, awaited. */
  [asyncDispose](): Promise<void> {
    return this.dispose();
  }

  // A disposed adapter stops being applied wherever it still is.
  async #detach(adapter: LoraAdapter): Promise<void> {
    const using = this.#contexts.live().filter((context) => !context.disposed && context.loras.has(adapter));
    await Promise.all(using.map((context) => settled(context.removeLora(adapter))));
  }

  /** @internal */
  _native(): NativeModel {
    return this.#live();
  }

  // Embedding contexts use the model's own pooling when its GGUF declares one.
  // A declared NONE (0) counts as none: embed() returns one vector per text, so
  // such a model is mean-pooled, as one that declares nothing.
  #poolingDeclared(): boolean {
    const declared = this.#info.metadata[`${this.#info.architecture}.pooling_type`];
    return declared !== undefined && Number(declared) !== 0;
  }

  #live(): NativeModel {
    if (!this.#native) throw disposedError('model');
    return this.#native;
  }

  #call<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw fromNative(err);
    }
  }
}

export function toTokenArray(tokens: ArrayLike<number>, name: string): Int32Array {
  if (tokens instanceof Int32Array) return tokens;
  if (!Array.isArray(tokens) && !ArrayBuffer.isView(tokens)) v.fail('array of token ids', name, tokens);
  // Every element is checked before anything is allocated: a sparse array with a
  // huge length fails at its first hole instead of allocating gigabytes first.
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!Number.isInteger(t) || t < 0 || t > 2 ** 31 - 1) v.fail('array of token ids', `${name}[${i}]`, t);
  }
  return Int32Array.from(tokens);
}
