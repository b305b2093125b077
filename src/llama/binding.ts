// Loads the native addon once per thread (which binary: binary-location.ts; a
// local build or prebuild found by node-gyp-build, else a platform package), and
// describes its raw interface. Only src/llama/ talks to it; everything above uses the typed classes.
import { createRequire } from 'node:module';
import { readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { debuglog } from 'node:util';
import { chooseBinary, deviceFromEnv, type BinaryChoice } from './binary-location.js';
import { UnderstudyError, invalidArgument } from '../errors.js';
import { describeValue, showValue } from '../validate.js';

export interface NativeAbortFlag {
  abort(): void;
  readonly aborted: boolean;
}

/** Fields marked `| null` are null for a vocab-only load, which has no weights. */
export interface NativeModelInfo {
  description: string | null;
  architecture: string;
  name: string;
  parameters: number | null;
  sizeBytes: number | null;
  trainContextSize: number | null;
  embeddingSize: number | null;
  layers: number | null;
  heads: number | null;
  headsKv: number | null;
  hasEncoder: boolean | null;
  hasDecoder: boolean | null;
  vocab: {
    type: string;
    size: number;
    addBos: boolean;
    addEos: boolean;
    special: Record<'bos' | 'eos' | 'eot' | 'sep' | 'nl' | 'pad', number | null>;
  };
  chatTemplate: string | null;
  metadata: Record<string, string>;
}

export interface NativeGenerationResult {
  text: string;
  tokens: Int32Array;
  promptTokens: number;
  reusedPromptTokens: number;
  stopReason: 'eos' | 'stop' | 'maxTokens' | 'contextFull';
  timings: { queueMs: number; promptMs: number; firstTokenMs: number; generationMs: number; totalMs: number };
}

export interface NativeContextInfo {
  contextSize: number;
  sequenceContextSize: number;
  batchSize: number;
  microBatchSize: number;
  sequences: number;
  threads: number;
  batchThreads: number;
  cachedTokens: number;
  embeddings: boolean;
  pooling: number;
}

export interface NativeLoraAdapter {
  metadata(): Record<string, string>;
  /** Resolves once the adapter's memory is freed (no context applies it any more). */
  dispose(): Promise<void>;
  readonly disposed: boolean;
}

export interface NativeContext {
  embed(texts: Int32Array[], abort?: NativeAbortFlag): Promise<Float32Array[]>;
  setAdapters(adapters: Array<[NativeLoraAdapter, number]>): void;
  generate(tokens: Int32Array, sampling: object, onText?: (text: string) => void, abort?: NativeAbortFlag): Promise<NativeGenerationResult>;
  info(): NativeContextInfo;
  clearCache(): void;
  /** Resolves once the context's memory and threads are gone. */
  dispose(): Promise<void>;
  readonly disposed: boolean;
}

/** One training step (or evaluation pass) as native/trainer.cpp reports it. */
export type NativeStepCallback = (index: number, loss: number, counted: number, gradNorm: number, clipped: boolean) => void;

export interface NativeRunResult {
  /** Masked mean loss per window (NaN where no position counted). */
  losses: Float64Array;
  counted: Int32Array;
  /** Gradient norm before clipping, per window (NaN for an evaluation). */
  gradNorms: Float64Array;
  steps: number;
  aborted: boolean;
  /** Nodes in the last step's graph. */
  graphNodes: number;
}

export interface NativeTrainer {
  /** Windows of `window` tokens; learningRates null evaluates without updating. */
  run(tokens: Int32Array, labels: Int32Array, mask: Uint8Array, learningRates: Float32Array | null, maxGradNorm: number,
    onStep?: NativeStepCallback, abort?: NativeAbortFlag): Promise<NativeRunResult>;
  readAdapter(): Promise<Array<{ name: string; ne: [number, number]; data: Float32Array }>>;
  dispose(): Promise<void>;
  readonly disposed: boolean;
}

export interface NativeTrainerOptions {
  window: number;
  threads: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export interface NativeModel {
  tokenize(text: string, addSpecial: boolean, parseSpecial: boolean): Int32Array;
  detokenize(tokens: Int32Array, removeSpecial: boolean, unparseSpecial: boolean): string;
  tokenPiece(token: number, special: boolean): Buffer;
  info(): NativeModelInfo;
  createContext(options: object): Promise<NativeContext>;
  loadLora(path: string): Promise<NativeLoraAdapter>;
  createTrainer(adapter: NativeLoraAdapter, options: NativeTrainerOptions): Promise<NativeTrainer>;
  applyChatTemplate(messages: Array<{ role: string; content: string }>, template: string | null, addAssistant: boolean): string;
  /** Resolves once the model's memory is freed: after every context and adapter made from it. */
  dispose(): Promise<void>;
  readonly disposed: boolean;
}

export interface NativeDevice {
  name: string;
  description: string;
  type: 'cpu' | 'gpu' | 'igpu' | 'accel' | 'other';
  backend: string;
  memoryFree: number;
  memoryTotal: number;
}

export interface NativeSystemInfo {
  llamaCommit: string;
  gpu: 'cpu' | 'cuda' | 'hip';
  features: string;
  supportsGpuOffload: boolean;
  supportsMmap: boolean;
  maxDevices: number;
  backends: string[];
  devices: NativeDevice[];
}

/** Where the CPU code runs from: a CPU-variant module (prebuilt packages) or the addon itself. */
export interface NativeBackends {
  /** True for a build with one loadable CPU module per CPU generation (UNDERSTUDY_CPU_VARIANTS). */
  dynamic: boolean;
  cpu: { module?: string; features: Record<string, string> } | null;
}

export interface NativeBinding {
  AbortFlag: new () => NativeAbortFlag;
  loadBackends(dir: string, cpuVariant: string | null): NativeBackends;
  loadModel(path: string, options: object, onProgress?: (progress: number) => void, abort?: NativeAbortFlag): Promise<NativeModel>;
  systemInfo(): NativeSystemInfo;
  setLogLevel(level: number): void;
  /** Hooks for the tests only. */
  testing: {
    textStreamChunks(pieces: Uint8Array[], stops: string[]): { chunks: string[]; stopped: boolean };
    /** Native models, contexts and adapters alive in the process (all threads). */
    liveHandles(): { models: number; contexts: number; adapters: number; trainers: number };
  };
}

export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

let cached: NativeBinding | undefined;
let choice: BinaryChoice | undefined;
let backends: NativeBackends | undefined;
const debug = debuglog('understudy');

/** node-gyp-build's pick in the package's build/ or prebuilds/ (a source build or a prebuild), or null. */
function localBinary(require: NodeJS.Require): string | null {
  const load = require('node-gyp-build') as { resolve(dir: string): string };
  try {
    return load.resolve(packageRoot);
  } catch {
    return null;
  }
}

/** Which binary this process loads (or would load) and why; decided once per process. */
export function bindingChoice(): BinaryChoice {
  if (choice) return choice;
  const require = createRequire(import.meta.url);
  choice = chooseBinary({
    root: packageRoot,
    device: deviceFromEnv(),
    explicit: process.env.UNDERSTUDY_BINDING?.trim() || undefined,
    local: localBinary(require),
  });
  debug('native binary %s (%s): %s', choice.path, choice.packageName ?? choice.source, choice.reason);
  return choice;
}

export function binding(): NativeBinding {
  if (cached) return cached;
  const picked = bindingChoice();
  const require = createRequire(import.meta.url);
  let loaded: NativeBinding;
  try {
    loaded = require(picked.path) as NativeBinding;
  } catch (err) {
    throw new UnderstudyError('BINDING_NOT_FOUND',
      `the native build of Understudy at ${picked.path} (${picked.reason}) failed to load: ` +
      (picked.source === 'package'
        ? `reinstall ${picked.packageName}, or build from source with UNDERSTUDY_BUILD_FROM_SOURCE=1 npm rebuild understudy-llm (needs cmake and a C++ compiler). `
        : 'rebuild it with `npm run build:native` (needs cmake and a C++ compiler; UNDERSTUDY_GPU=cuda or hip for a GPU build). ') +
      (err as Error).message.split('\n')[0], { cause: err });
  }
  // The log level first, so that ggml's lines about loading its modules show with it.
  const level = process.env.UNDERSTUDY_LOG_LEVEL;
  if (level) loaded.setLogLevel(logLevelNumber(level, 'UNDERSTUDY_LOG_LEVEL'));
  // Before anything else runs on it: a build with CPU variants has no CPU code until then.
  backends = loadBackends(loaded, picked.path);
  cached = loaded;
  return cached;
}

/** The CPU module loaded (binding() loads it): its file, its variant name and ggml's feature list. */
export function bindingBackends(): NativeBackends & { cpuVariant: string | null } {
  binding();
  const module = backends?.cpu?.module;
  const variant = backends?.dynamic && module ? /libggml-cpu-(.+)\.so$/.exec(basename(module))?.[1] ?? null : null;
  return { ...backends!, cpuVariant: variant };
}

const CPU_VARIANT = /^[a-z0-9_.]{1,64}$/;

function loadBackends(loaded: NativeBinding, path: string): NativeBackends {
  const raw = process.env.UNDERSTUDY_CPU_VARIANT?.trim() || null;
  if (raw !== null && !CPU_VARIANT.test(raw)) {
    throw new UnderstudyError('INVALID_CONFIG', `UNDERSTUDY_CPU_VARIANT must be a CPU variant's name such as x64, haswell or zen4, got ${showValue(raw)}`);
  }
  // The modules sit beside the addon in a package, and in ../bin of a build folder.
  const dir = cpuModuleDir(path) ?? dirname(path);
  let result: NativeBackends;
  try {
    result = loaded.loadBackends(dir, raw);
  } catch (err) {
    const e = err as Error & { code?: string };
    const code = e.code === 'INVALID_CONFIG' ? 'INVALID_CONFIG' : 'BINDING_NOT_FOUND';
    throw new UnderstudyError(code, e.message, { cause: err });
  }
  if (raw !== null && !result.dynamic) {
    process.emitWarning(`UNDERSTUDY_CPU_VARIANT=${raw} is ignored: ${path} is a build for this CPU alone (a source build), with no CPU variants to choose from`,
      { code: 'UNDERSTUDY_CPU_VARIANT_IGNORED' });
  }
  debug('CPU code from %s%s', result.cpu?.module ?? 'the addon', raw ? ` (UNDERSTUDY_CPU_VARIANT=${raw})` : '');
  return result;
}

/**
 * The folder of a binary's CPU-variant modules: beside it in a package, in
 * ../bin in a build folder; null for a binary without them (a source build).
 */
export function cpuModuleDir(binaryPath: string): string | null {
  return [dirname(binaryPath), join(dirname(binaryPath), '..', 'bin')].find(hasCpuModules) ?? null;
}

function hasCpuModules(dir: string): boolean {
  try {
    return readdirSync(dir).some((name) => /^libggml-cpu-.+\.so$/.test(name));
  } catch {
    return false;
  }
}

const LOG_LEVELS = { debug: 1, info: 2, warn: 3, error: 4, none: 5 } as const;
export type LogLevel = keyof typeof LOG_LEVELS;

// Only an own key of LOG_LEVELS is a level: a non-string would be converted to
// a key first (String() of a 2^32-1 array joins it for minutes; of a
// null-prototype object, throws), and 'toString' would find Object.prototype's.
function logLevelNumber(level: unknown, name: string): number {
  if (typeof level === 'string' && Object.hasOwn(LOG_LEVELS, level)) return LOG_LEVELS[level as LogLevel];
  throw invalidArgument(`Expected one of ${Object.keys(LOG_LEVELS).join(', ')} for ${name} but received ${describeValue(level)}`);
}

/** Shows llama.cpp's own log lines at or above `level` on stderr (default: none). */
export function setLogLevel(level: LogLevel): void {
  binding().setLogLevel(logLevelNumber(level, 'level'));
}
