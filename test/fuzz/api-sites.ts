// Every public function of the package (src/index.ts), with valid arguments
// that one case at a time replaces, slot by slot, with a hostile value: a
// positional argument ("1"), or one option of an options object ("1.maxTokens").
import { join } from 'node:path';
import {
  LocalBackend, LoraAdapter, MockBackend, RemoteBackend, createRouter, jsonSchemaToGrammar, loadModel, setLogLevel, systemInfo,
  type Context, type Model, type Router,
} from '../../src/index.js';
import { HOSTILE, OPTION_VALUES } from './hostile-values.js';

export interface Fixtures { model: Model; ctx: Context; embedder: Context; adapter: LoraAdapter; adapterPath: string; router: Router; modelPath: string; dir: string }

export interface Site {
  name: string;
  /** Valid arguments. */
  args: (f: Fixtures) => unknown[];
  /** Option names of the options object at each argument index. */
  options?: Record<number, string[]>;
  call: (f: Fixtures, args: unknown[]) => unknown;
  /** Frees what a successful call made. */
  cleanup?: (result: unknown) => unknown;
}

const messages = () => [{ role: 'user', content: 'Tell me a story.' }];
const sampling = ['maxTokens', 'temperature', 'topK', 'topP', 'minP', 'repeatPenalty', 'repeatLastN', 'frequencyPenalty',
  'presencePenalty', 'seed', 'stop', 'ignoreEos', 'grammar', 'jsonSchema', 'renderSpecial', 'addSpecial', 'parseSpecial', 'signal'];
const routerSettings = ['model', 'device', 'embeddingModel', 'cacheDir', 'simThreshold', 'cacheThreshold', 'semanticCache', 'useApi',
  'trainLocal', 'apiBase', 'apiModel', 'apiKey', 'temperature', 'maxTokens', 'topP', 'timeout', 'streamTimeout', 'threads',
  'enableCache', 'local', 'remote', 'embedder', 'env'];
const request = ['task', 'temperature', 'maxTokens', 'topP', 'stop', 'seed', 'route', 'cache', 'signal', 'stream'];
const dispose = (x: unknown) => (x as { dispose?: () => unknown; close?: () => unknown }).dispose?.() ?? (x as { close?: () => unknown }).close?.();
/** Runs a generation to its end, so its failure (or a stall) belongs to the case. */
const finish = async (g: unknown) => {
  const gen = g as { result?: Promise<unknown>; [Symbol.asyncIterator]?: unknown };
  return gen && typeof gen === 'object' && 'result' in gen ? gen.result : g;
};

export const SITES: Site[] = [
  { name: 'loadModel', args: (f) => [f.modelPath, { vocabOnly: true }], options: { 1: ['gpuLayers', 'mmap', 'vocabOnly', 'onProgress', 'signal'] },
    call: (_, a) => loadModel(a[0] as string, a[1] as object), cleanup: dispose },
  { name: 'model.tokenize', args: () => ['Once upon a time', {}], options: { 1: ['addSpecial', 'parseSpecial'] },
    call: (f, a) => f.model.tokenize(a[0] as string, a[1] as object) },
  { name: 'model.detokenize', args: () => [[1, 2, 3], {}], options: { 1: ['removeSpecial', 'unparseSpecial'] },
    call: (f, a) => f.model.detokenize(a[0] as number[], a[1] as object) },
  { name: 'model.tokenPiece', args: () => [5, {}], options: { 1: ['special'] }, call: (f, a) => f.model.tokenPiece(a[0] as number, a[1] as object) },
  { name: 'model.createContext', args: () => [{ contextSize: 32, threads: 1 }],
    options: { 0: ['contextSize', 'batchSize', 'threads', 'batchThreads', 'sequences', 'embeddings', 'maxQueued'] },
    call: (f, a) => f.model.createContext(a[0] as object), cleanup: dispose },
  { name: 'model.loadLora', args: (f) => [f.adapterPath], call: (f, a) => f.model.loadLora(a[0] as string), cleanup: dispose },
  { name: 'model.applyChatTemplate', args: () => [messages(), { template: 'chatml' }], options: { 1: ['template', 'addAssistant'] },
    call: (f, a) => f.model.applyChatTemplate(a[0] as never, a[1] as object) },
  { name: 'context.complete', args: () => ['Once', { maxTokens: 4, temperature: 0 }], options: { 1: sampling },
    call: (f, a) => f.ctx.complete(a[0] as string, a[1] as object) },
  { name: 'context.generate', args: () => [[1, 2], { maxTokens: 4 }], options: { 1: ['maxTokens', 'stop', 'grammar', 'signal'] },
    call: (f, a) => finish(f.ctx.generate(a[0] as string, a[1] as object)) },
  { name: 'context.chat', args: () => [messages(), { maxTokens: 4, template: 'chatml' }], options: { 1: ['template', 'addAssistant', 'maxTokens', 'stop'] },
    call: (f, a) => finish(f.ctx.chat(a[0] as never, a[1] as object)) },
  { name: 'context.embed', args: () => [['Once upon a time'], {}], options: { 1: ['truncate', 'signal'] },
    call: (f, a) => f.embedder.embed(a[0] as string[], a[1] as object) },
  { name: 'context.setLora', args: (f) => [f.adapter, 0.5], call: (f, a) => f.ctx.setLora(a[0] as LoraAdapter, a[1] as number) },
  { name: 'context.removeLora', args: (f) => [f.adapter], call: (f, a) => f.ctx.removeLora(a[0] as LoraAdapter) },
  { name: 'jsonSchemaToGrammar', args: () => [{ type: 'object', properties: { a: { type: 'string' } } }],
    options: { 0: ['type', 'properties', 'required', 'enum', 'items', '$ref', 'anyOf', 'maxLength', 'additionalProperties'] },
    call: (_, a) => jsonSchemaToGrammar(a[0]) },
  { name: 'setLogLevel', args: () => ['none'], call: (_, a) => setLogLevel(a[0] as never) },
  { name: 'systemInfo', args: () => [], call: () => systemInfo() },
  { name: 'new MockBackend', args: () => [{}], options: { 0: ['answer', 'model', 'latencyMs', 'failWith', 'embed'] },
    call: async (_, a) => { const b = new MockBackend(a[0] as object); return b.answer({ messages: messages() } as never); } },
  { name: 'createRouter', args: (f) => [{ local: new MockBackend(), remote: new MockBackend(), cacheDir: join(f.dir, 'router-new') }],
    options: { 0: routerSettings }, call: (_, a) => createRouter(a[0] as object), cleanup: dispose },
  { name: 'router.chat', args: () => [{ messages: messages(), maxTokens: 8 }], options: { 0: ['messages', ...request] },
    call: (f, a) => finish(f.router.chat(a[0] as never)) },
  { name: 'router.complete', args: () => [{ prompt: 'Once', maxTokens: 8 }], options: { 0: ['prompt', ...request] },
    call: (f, a) => finish(f.router.complete(a[0] as never)) },
  { name: 'router.readiness', args: () => ['task'], call: (f, a) => f.router.readiness(a[0] as string) },
  { name: 'router.datasetRows', args: () => ['task'], call: (f, a) => f.router.datasetRows(a[0] as string) },
  { name: 'router.exportDataset', args: (f) => [join(f.dir, 'export.jsonl'), {}], options: { 1: ['task'] },
    call: (f, a) => f.router.exportDataset(a[0] as string, a[1] as object) },
  { name: 'router.health', args: () => [], call: (f) => f.router.health() },
  { name: 'router.datasetTasks', args: () => [], call: (f) => f.router.datasetTasks() },
  { name: 'router.idle', args: () => [], call: (f) => f.router.idle() },
  { name: 'context.clearCache', args: () => [], call: (f) => f.ctx.clearCache() },
  { name: 'context.info', args: () => [], call: (f) => f.ctx.info() },
  { name: 'LocalBackend.open', args: (f) => [{ model: f.modelPath, contextSize: 64, threads: 1 }],
    options: { 0: ['model', 'device', 'contextSize', 'sequences', 'chatTemplate', 'threads', 'embeddingThreads'] },
    call: async (_, a) => LocalBackend.open(a[0] as never), cleanup: dispose },
  // Offline: a closed port on this machine, so every attempt fails at once.
  { name: 'new RemoteBackend', args: () => [{ baseURL: 'http://127.0.0.1:9/v1', model: 'm', timeoutMs: 2000, retries: 1, retryDelayMs: 1,
    maxRetryDelayMs: 5, cooldownAfter: 3, cooldownMs: 10 }],
  options: { 0: ['baseURL', 'model', 'apiKey', 'timeoutMs', 'streamTimeoutMs', 'retries', 'retryDelayMs', 'maxRetryDelayMs', 'cooldownAfter', 'cooldownMs'] },
  call: async (_, a) => {
    const b = new RemoteBackend(a[0] as never);
    try {
      return await b.answer({ kind: 'complete', task: 't', prompt: 'x', params: { temperature: 0, maxTokens: 4, topP: 1, stop: [] } });
    } finally {
      await b.close();
    }
  } },
];

/**
 * Every (site, slot) pair: each positional argument and one past the last
 * ("0", "1", ...), and each option of an options object ("1.maxTokens").
 */
export function slots(): { site: Site; slot: string }[] {
  const out: { site: Site; slot: string }[] = [];
  for (const site of SITES) {
    const arity = site.call.length > 0 ? ARITY[site.name] ?? 1 : 0;
    for (let i = 0; i <= arity; i++) out.push({ site, slot: String(i) });
    for (const [i, keys] of Object.entries(site.options ?? {})) for (const key of keys) out.push({ site, slot: `${i}.${key}` });
  }
  return out;
}
const ARITY: Record<string, number> = {
  loadModel: 2, 'model.tokenize': 2, 'model.detokenize': 2, 'model.tokenPiece': 2, 'model.applyChatTemplate': 2,
  'context.complete': 2, 'context.generate': 2, 'context.chat': 2, 'context.embed': 2, 'context.setLora': 2,
  'router.exportDataset': 2, systemInfo: 0, 'router.health': 0, 'router.datasetTasks': 0, 'router.idle': 0,
  'context.clearCache': 0, 'context.info': 0,
};

/** Every case: a slot and a hostile value for it (every value positionally, a kind of each in options). */
export function cases(): { site: Site; slot: string; value: [string, () => unknown] }[] {
  return slots().flatMap(({ site, slot }) => HOSTILE
    .filter(([label]) => !slot.includes('.') || OPTION_VALUES.has(label))
    .map((value) => ({ site, slot, value })));
}

/** The site's valid arguments with `slot` replaced by `value`. */
export function withSlot(args: unknown[], slot: string, value: unknown): unknown[] {
  const out = [...args];
  const [index, key] = slot.split('.') as [string, string | undefined];
  const i = Number(index);
  if (key === undefined) out[i] = value;
  else out[i] = { ...(typeof out[i] === 'object' && out[i] !== null ? out[i] as object : {}), [key]: value };
  return out;
}
