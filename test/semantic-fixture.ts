// Semantic-cache test helpers: stand-in embedders (deterministic, instant) and
// routers with the semantic cache on, a mock remote and no local model.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRouter, MockBackend, type Router, type RouterOptions } from '../src/index.js';
import { root } from './helpers.js';
import { freshDir } from './router-fixture.js';

const DIM = 64;

function unit(v: Float32Array): Float32Array {
  const n = Math.hypot(...v) || 1;
  return v.map((x) => x / n);
}

/**
 * Bag of words, hashed into 64 dimensions: texts with the same words (case and
 * punctuation aside) embed identically; texts with few words in common are far apart.
 */
export async function bagEmbed(texts: string[]): Promise<Float32Array[]> {
  return texts.map((t) => {
    const v = new Float32Array(DIM);
    for (const w of t.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) v[createHash('sha256').update(w).digest()[0]! % DIM]! += 1;
    return unit(v);
  });
}

/** The worst embedder there is: every text at similarity 1 to every other. */
export async function constantEmbed(texts: string[]): Promise<Float32Array[]> {
  return texts.map(() => unit(new Float32Array(DIM).fill(1)));
}

/** Deterministic unit vectors from text: a stand-in embedder to fill an index quickly. */
export async function hashEmbed(texts: string[]): Promise<Float32Array[]> {
  return texts.map((t) => {
    const v = new Float32Array(32);
    const bytes = createHash('sha256').update(t).digest();
    for (let i = 0; i < 32; i++) v[i] = bytes[i]! - 127.5;
    return unit(v);
  });
}

export function semanticRouter(options: RouterOptions = {}): Promise<Router> {
  return createRouter({
    local: false, remote: new MockBackend(), embedder: bagEmbed, semanticCache: true,
    cacheDir: freshDir('semantic'), quiet: true, env: {}, ...options,
  });
}

export function chatOf(content: string, extra: Record<string, unknown> = {}) {
  return { task: 'qa', messages: [{ role: 'user' as const, content }], maxTokens: 24, ...extra };
}

/**
 * Asks with route 'cache' until a cache answers: a task's saved index opens in
 * a worker after a restart, and a lookup only waits a moment for it. Asking
 * from the cache alone changes nothing, so asking again is harmless.
 */
export async function fromCache(r: Router, request: Record<string, unknown>, tries = 30) {
  for (let i = 1; ; i++) {
    try {
      return await r.chat({ ...(request as ReturnType<typeof chatOf>), route: 'cache' });
    } catch (err) {
      if ((err as { code?: string }).code !== 'CACHE_MISS' || i >= tries) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

export interface PromptPair { a: string; b: string; kind?: string }

/** The near-miss and paraphrase pairs of test/fixtures/semantic-pairs.json. */
export const pairs = JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'semantic-pairs.json'), 'utf8')) as
  { nearMiss: PromptPair[]; paraphrase: PromptPair[] };
