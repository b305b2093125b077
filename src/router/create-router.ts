// Making a router: settings resolved and checked, then the backends (the local
// model, the remote API) and the embedder, each failing with a message that
// names the option or variable it came from; whatever was made is released
// again when a later step fails.
import { resolve } from 'node:path';
import { UnderstudyError } from '../errors.js';
import { checkClock, realClock, type Clock } from './clock.js';
import { resolveSettings, settingSource, type ResolvedSettings } from './config.js';
import { embedderId, functionEmbedder, modelEmbedder, type Embedder } from './embedder.js';
import { gpuLayersFor, LocalBackend } from './local-backend.js';
import { RemoteBackend } from './remote-backend.js';
import { Router, type RouterOptions } from './router.js';
import { semanticState } from './semantic-fitness.js';
import { makeCacheDir } from './store.js';
import { sqlite } from './sqlite-module.js';
import { shareThreads } from './threads.js';
import * as v from '../validate.js';

/** A backend given in place of the local model or the remote: false, or an object that answers. */
function checkBackend(value: unknown, name: string): void {
  if (value === undefined || value === false) return;
  if (!v.isPlainObject(value) || typeof value.answer !== 'function') {
    v.fail('backend (an object with answer()) or false', name, value);
  }
}

export async function createRouter(options?: RouterOptions): Promise<Router> {
  const { local, remote, embedder, env, clock, log, ...rest } = v.options(options, 'options');
  checkBackend(local, 'local');
  checkBackend(remote, 'remote');
  if (embedder !== undefined && embedder !== false && typeof embedder !== 'function') v.fail('function or false', 'embedder', embedder);
  if (env !== undefined && !v.isPlainObject(env)) v.fail('object of environment variables', 'env', env);
  checkClock(clock);
  const sink = v.fn<(line: string) => void>(log, 'log');
  const settings = resolveSettings(rest, env ?? process.env);
  // Before any model loads: without better-sqlite3 no store can open, and a
  // cache directory that cannot be made fails at once.
  sqlite();
  makeCacheDir(resolve(settings.cacheDir), settingSource(settings, 'cacheDir'));
  const threads = shareThreads(settings.threads);
  const owned: { close(): Promise<void> }[] = [];
  try {
    const localBackend = local === false ? undefined : local ?? (settings.model
      ? await naming(settings, 'model', LocalBackend.open({
        model: settings.model, device: settings.device, sequences: settings.sequences, chatTemplate: settings.chatTemplate,
        threads: threads.generation, embeddingThreads: threads.embedding,
        ...(settings.contextSize ? { contextSize: settings.contextSize } : {}),
      }))
      : undefined);
    if (localBackend && local === undefined) owned.push(localBackend);
    const remoteBackend = !settings.useApi || remote === false ? undefined : remote ?? openAiBackend(settings, clock ?? realClock);
    let embed: Embedder | undefined;
    if (embedder) embed = functionEmbedder(embedder);
    else if (embedder !== false && settings.embeddingModel) embed = await naming(settings, 'embeddingModel', modelEmbedder(settings.embeddingModel, gpuLayersFor(settings.device), threads.embedding));
    else if (embedder !== false && localBackend?.embed) embed = functionEmbedder(localBackend.embed.bind(localBackend),
      local === undefined && settings.model ? embedderId(settings.model) : `local:${localBackend.model}`,
      // The local model's own tokenizer counts what it embeds (a LocalBackend has one; a caller's backend may not).
      tokenCounter(localBackend));
    if (embed) owned.push(embed);
    // Made now, so the first call does not pay for creating the embedding context.
    if (embed && !embedder) await embed.embed(['warm up']);
    // Opt-in, and only with an embedder that tells unrelated texts apart (a model's is checked now).
    const semantic = await semanticState(settings.semanticCache && settings.enableCache, embed?.embed, !embedder,
      settings.cacheThreshold, settings.embeddingModel ? 'the embedding model' : 'the local model, as the embedder,');
    if (!localBackend && !remoteBackend) {
      throw new UnderstudyError('NO_BACKEND', settings.useApi
        ? 'no backend: set UNDERSTUDY_MODEL to a local GGUF model, or UNDERSTUDY_API_KEY (or OPENAI_API_KEY) / UNDERSTUDY_API_BASE for a remote API'
        : 'UNDERSTUDY_USE_API is false and no local model is set: set UNDERSTUDY_MODEL to a GGUF model');
    }
    return new Router(settings, localBackend, remoteBackend, embed, owned, clock ?? realClock, semantic, sink);
  } catch (err) {
    for (const o of owned) await o.close().catch(() => undefined);
    throw err;
  }
}

/** A model that fails to load says which option or variable named it. */
async function naming<T>(settings: ResolvedSettings, key: 'model' | 'embeddingModel', loading: Promise<T>): Promise<T> {
  try {
    return await loading;
  } catch (err) {
    if (err instanceof UnderstudyError && (err.code === 'MODEL_NOT_FOUND' || err.code === 'INVALID_MODEL_FILE')) {
      throw new UnderstudyError(err.code, `${settingSource(settings, key)}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

function openAiBackend(settings: ResolvedSettings, clock: Clock): RemoteBackend | undefined {
  const isOpenAi = /^https:\/\/api\.openai\.com\b/.test(settings.apiBase);
  // OpenAI needs a key; local servers (Ollama, llama-server, vLLM) usually do not.
  if (isOpenAi && !settings.apiKey) return undefined;
  return new RemoteBackend({
    baseURL: settings.apiBase,
    model: settings.apiModel,
    apiKey: settings.apiKey,
    timeoutMs: settings.timeout * 1000,
    streamTimeoutMs: settings.streamTimeout * 1000,
    retries: settings.retries,
    retryDelayMs: settings.retryDelayMs,
    maxRetryDelayMs: settings.maxRetryDelayMs,
    cooldownAfter: settings.cooldownAfter,
    cooldownMs: settings.cooldownMs,
    clock,
  });
}

/** A backend's token counter, when it has one (LocalBackend does; a caller's backend may not). */
function tokenCounter(backend: object): ((texts: string[]) => number) | undefined {
  const count = (backend as { countTokens?: unknown }).countTokens;
  return typeof count === 'function' ? (texts) => count.call(backend, texts) as number : undefined;
}
