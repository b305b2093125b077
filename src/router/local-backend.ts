// The local backend: our llama.cpp addon. One model, one generation context
// whose sequences run batched together, and (made when first needed) one
// embedding context for the caches and for comparing answers.
import { resolve } from 'node:path';
import { UnderstudyError } from '../errors.js';
import * as v from '../validate.js';
import type { Context } from '../llama/context.js';
import type { LoraAdapter } from '../llama/lora.js';
import { loadModel, type Model } from '../llama/model.js';
import { systemInfo, type GpuLayers } from '../llama/system.js';
import { bindingChoice } from '../llama/binding.js';
import { platformPackageNames } from '../llama/binary-location.js';
import { timedHealth, type Backend, type BackendAnswer, type BackendCall, type Health } from './backend.js';
import { checkCall } from './backend-call.js';
import type { Device } from './config.js';
import { localGrammar, localMessages } from './local-prompt.js';
import { parseToolCalls, toolCallText, toolsActive, type FinishReason } from './tool-calls.js';
import type { StopReason } from '../llama/generation.js';

export interface LocalBackendOptions {
  /** Path of the GGUF model. */
  model: string;
  device?: Device;
  contextSize?: number;
  sequences?: number;
  /** Template for models whose GGUF has none (default 'chatml'). */
  chatTemplate?: string;
  /** Threads of the generation context (default: the machine's cores). */
  threads?: number;
  /** Threads of the embedding context, made when first needed (default: threads). */
  embeddingThreads?: number;
}

/** Maps UNDERSTUDY_DEVICE to GPU layers, refusing a device this build cannot use. */
export function gpuLayersFor(device: Device): GpuLayers {
  if (device === 'auto') return 'auto';
  if (device === 'cpu') return 0;
  const built = systemInfo().gpu;
  if (built !== device) {
    throw new UnderstudyError('INVALID_CONFIG',
      `UNDERSTUDY_DEVICE is ${device} but this build of the addon is for ${built} (${bindingChoice().reason}): ` +
      (device === 'cuda' ? `install ${platformPackageNames().cuda} and set UNDERSTUDY_DEVICE=cuda in the environment, or ` : '') +
      `rebuild with UNDERSTUDY_GPU=${device} npm run build:native, or use auto`);
  }
  return 'max';
}

const DEVICES: readonly unknown[] = ['auto', 'cpu', 'cuda', 'hip'];

/** The options, checked before any model loads, with the ranges the router's settings have (config.ts). */
function checkOptions(options: unknown): LocalBackendOptions {
  const o = v.options(options as LocalBackendOptions | undefined, 'options');
  if (o.device !== undefined && !DEVICES.includes(o.device)) v.fail('one of auto, cpu, cuda, hip', 'device', o.device);
  const count = (value: unknown, name: string, min: number, max: number) =>
    value === undefined ? undefined : v.integer(value, name, 0, min, max);
  return {
    model: v.nonEmptyString(o.model, 'model'),
    device: o.device,
    contextSize: count(o.contextSize, 'contextSize', 16, 1 << 24),
    sequences: count(o.sequences, 'sequences', 1, 256),
    chatTemplate: o.chatTemplate === undefined ? undefined : v.nonEmptyString(o.chatTemplate, 'chatTemplate'),
    threads: count(o.threads, 'threads', 1, 1024),
    embeddingThreads: count(o.embeddingThreads, 'embeddingThreads', 1, 1024),
  };
}

export class LocalBackend implements Backend {
  readonly kind = 'local' as const;
  readonly model: string;
  #llama: Model;
  #context: Context;
  #embedder: Promise<Context> | undefined;
  #template: string | undefined;
  #embeddingThreads: number | undefined;
  #adapter: { adapter: LoraAdapter; file: string } | null = null;
  // useAdapter calls run one after another, each from the set the one before left.
  #swaps: Promise<unknown> = Promise.resolve();
  /** The adapter file calls submitted now run with (set as a swap is queued, before it is applied). */
  #served: string | null = null;
  /** Generations submitted and not yet finished: running ones and those waiting for a sequence. */
  #generations = 0;

  private constructor(llama: Model, context: Context, template: string | undefined, embeddingThreads: number | undefined) {
    this.#llama = llama;
    this.#context = context;
    this.#template = template;
    this.#embeddingThreads = embeddingThreads;
    this.model = llama.info.name || llama.info.path;
  }

  static async open(options: LocalBackendOptions): Promise<LocalBackend> {
    options = checkOptions(options);
    const llama = await loadModel(options.model, { gpuLayers: gpuLayersFor(options.device ?? 'auto') });
    try {
      const sequences = options.sequences ?? 4;
      const perSequence = options.contextSize ?? Math.min(llama.info.trainContextSize || 4096, 4096);
      const context = await llama.createContext({
        contextSize: perSequence * sequences,
        sequences,
        ...(options.threads ? { threads: options.threads } : {}),
      });
      const template = llama.info.chatTemplate ? undefined : (options.chatTemplate ?? 'chatml');
      return new LocalBackend(llama, context, template, options.embeddingThreads ?? options.threads);
    } catch (err) {
      await llama.dispose();
      throw err;
    }
  }

  /** CPU threads of the generation context and of the embedding context (once made). */
  async threads(): Promise<{ generation: number; embedding?: number }> {
    const embedder = await this.#embedder?.catch(() => undefined);
    return { generation: this.#context.info().threads, ...(embedder ? { embedding: embedder.info().threads } : {}) };
  }

  /** Tokens one sequence holds: prompt and answer together. */
  get contextSize(): number {
    return this.#context.size;
  }

  /** The adapter file applied to generation now (absolute), null for the base model. */
  get adapterFile(): string | null {
    return this.#adapter?.file ?? null;
  }

  /** What a trainer needs to train adapters for this backend: the model, the chat template it applies, the window. */
  trainingSource(): { path: string; chatTemplate?: string; contextSize: number } {
    return {
      path: resolve(this.#llama.info.path),
      ...(this.#template === undefined ? {} : { chatTemplate: this.#template }),
      contextSize: this.#context.size,
    };
  }

  /**
   * Hot-swaps the LoRA adapter of generation to `file` (null: the base model).
   * Calls already running finish with the old adapter, later ones get the new
   * one, and none fails because of the swap. A file that does not load
   * (MODEL_NOT_FOUND, INVALID_MODEL_FILE, INVALID_ADAPTER for another base
   * model) leaves the old adapter applied. Embeddings always use the base model,
   * so cached vectors stay comparable across swaps.
   */
  useAdapter(file: string | null): Promise<void> {
    const run = this.#swaps.then(() => this.#swapTo(file === null ? null : resolve(v.nonEmptyString(file, 'file'))));
    this.#swaps = run.catch(() => undefined);
    return run;
  }

  async #swapTo(file: string | null): Promise<void> {
    const next = file === null ? null : await this.#llama.loadLora(file);
    // Calls submitted from here on queue behind setLoras and run with `next`:
    // answer() names the adapter it will run with, read when it submits.
    const before = this.#served;
    this.#served = file;
    try {
      await this.#context.setLoras(next ? [[next, 1]] : []);
    } catch (err) {
      this.#served = before;
      await next?.dispose();
      throw err;
    }
    const previous = this.#adapter;
    this.#adapter = next && file !== null ? { adapter: next, file } : null;
    // No call uses it any more: setLoras waited for the calls made before it.
    if (previous && previous.adapter !== next) await previous.adapter.dispose();
  }

  #prompt(call: BackendCall): string {
    if (call.kind === 'complete') return call.prompt!;
    return this.#llama.applyChatTemplate(localMessages({ ...call, messages: call.messages! }), this.#template ? { template: this.#template } : {});
  }

  /**
   * Whether the call fits: its prompt and answer in one sequence, and its
   * response format or tool choice expressible as a grammar (a schema that is
   * not goes to the remote; with none, answer() fails naming the schema's part).
   */
  fits(call: BackendCall): boolean {
    call = checkCall(call);
    try {
      localGrammar(call);
    } catch {
      return false;
    }
    const prompt = this.#prompt(call);
    return this.#llama.tokenize(prompt).length + call.params.maxTokens <= this.#context.size;
  }

  /** Tokens of `texts` by this model's tokenizer (as embed() reads them, before any truncation). */
  countTokens(texts: string[]): number {
    return texts.reduce((n, t) => n + this.#llama.tokenize(t).length, 0);
  }

  /** Generations waiting for a free sequence. */
  queueDepth(): number {
    return Math.max(0, this.#generations - this.#context.info().sequences);
  }

  async answer(call: BackendCall): Promise<BackendAnswer> {
    call = checkCall(call);
    const p = call.params;
    const grammar = localGrammar(call);
    const options = {
      temperature: p.temperature,
      maxTokens: p.maxTokens,
      topP: p.topP,
      stop: p.stop,
      ...(p.seed === undefined ? {} : { seed: p.seed }),
      ...(grammar === undefined ? {} : { grammar }),
      ...(call.signal ? { signal: call.signal } : {}),
    };
    const adapter = this.#served;
    // An answer that may be a tool call is delivered whole, once known to be text (as the remote does).
    const tools = toolsActive(call.tools, call.toolChoice);
    this.#generations++;
    try {
      const generation = call.kind === 'chat'
        ? this.#context.chat(localMessages({ ...call, messages: call.messages! }), { ...options, ...(this.#template ? { template: this.#template } : {}) })
        : this.#context.generate(call.prompt!, options);
      if (call.onText && !tools) {
        for await (const piece of generation) call.onText(piece);
      }
      const done = await generation.result;
      const toolCalls = tools ? parseToolCalls(done.text, call.tools) : undefined;
      if (call.onText && tools && !toolCalls && done.text) call.onText(done.text);
      return {
        text: toolCalls ? toolCallText(toolCalls) : done.text,
        ...(toolCalls ? { toolCalls } : {}),
        usage: done.usage, model: this.model, finishReason: toolCalls ? 'tool_calls' : finishReasonOf(done.stopReason), adapter,
      };
    } finally {
      this.#generations--;
    }
  }

  embed(texts: string[]): Promise<Float32Array[]> {
    this.#embedder ??= this.#llama.createContext({
      embeddings: true, contextSize: 512, sequences: 8,
      ...(this.#embeddingThreads ? { threads: this.#embeddingThreads } : {}),
    });
    return this.#embedder.then((ctx) => ctx.embed(texts, { truncate: true }));
  }

  health(): Promise<Health> {
    return timedHealth(async () => {
      if (this.#context.disposed) throw new UnderstudyError('DISPOSED', 'the local model has been closed');
      return `${this.model}, ${this.#context.size} tokens per sequence`;
    });
  }

  /** Frees the contexts and the model, all of them even when one fails; rejects with the first failure. */
  async close(): Promise<void> {
    const embedder = await this.#embedder?.catch(() => undefined);
    let first: unknown;
    for (const dispose of [() => embedder?.dispose(), () => this.#context.dispose(), () => this.#llama.dispose()]) {
      try {
        // Awaited: dispose() resolves once native memory is released (and is harmless when it returns nothing).
        await dispose();
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }
}

function finishReasonOf(stop: StopReason): FinishReason {
  return stop === 'maxTokens' || stop === 'contextFull' ? 'length' : 'stop';
}
