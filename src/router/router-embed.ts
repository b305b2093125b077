// router.embed(): texts to vectors with the router's own embedder (the one the
// semantic cache and readiness use), for callers such as an embeddings endpoint.
import { basename } from 'node:path';
import { UnderstudyError, abortedError, invalidArgument } from '../errors.js';
import * as v from '../validate.js';
import type { Backend } from './backend.js';
import type { Embedder } from './embedder.js';

export interface EmbedResult {
  /** One unit-length vector per text, in order. */
  vectors: Float32Array[];
  /** The embedder's name (router.embeddingModel). */
  model: string;
  /** Tokens of the texts, by the embedding model's tokenizer (a separate one, or the local model's); 0 for a caller's function. */
  promptTokens: number;
}

/** Most texts one embed() call takes (OpenAI's own limit per request). */
export const MAX_EMBED_TEXTS = 2048;

export function embeddingModelName(embedder: Embedder | undefined, embeddingModelSetting: string | undefined, local: Backend | undefined): string | undefined {
  if (!embedder) return undefined;
  if (embedder.id === 'function') return 'custom';
  if (embeddingModelSetting) return basename(embeddingModelSetting).replace(/\.gguf$/i, '');
  return local?.model ?? 'custom';
}

function checkTexts(texts: unknown): string[] {
  if (!Array.isArray(texts) || texts.length === 0) v.fail('non-empty array of strings', 'texts', texts);
  if (texts.length > MAX_EMBED_TEXTS) {
    throw invalidArgument(`Expected at most ${MAX_EMBED_TEXTS} texts for texts but received an array of length ${texts.length}`);
  }
  const out: string[] = [];
  for (let i = 0; i < texts.length; i++) out.push(v.string(texts[i], `texts[${i}]`));
  return out;
}

export async function embedWith(embedder: Embedder, model: string, rawTexts: unknown, rawOptions: unknown): Promise<EmbedResult> {
  const texts = checkTexts(rawTexts);
  const signal = v.abortSignal(v.options(rawOptions as { signal?: unknown } | undefined).signal);
  if (signal?.aborted) throw abortedError('the embedding call');
  // The embedder's own tokenizer: the embedding model's, or the local model's when it embeds.
  const promptTokens = embedder.countTokens ? embedder.countTokens(texts) : 0;
  // An embedder cannot be stopped midway; an abort stops the wait for it.
  const vectors = await untilAborted(embedder.embed(texts), signal);
  if (!Array.isArray(vectors) || vectors.length !== texts.length || !vectors.every((x) => x instanceof Float32Array)) {
    throw new UnderstudyError('NATIVE_ERROR',
      `the embedder returned ${Array.isArray(vectors) ? vectors.length : 'no'} vectors for ${texts.length} texts`);
  }
  return { vectors, model, promptTokens };
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortedError('the embedding call'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
