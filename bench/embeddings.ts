// Embeddings per second through ctx.embed(): EMBED_TEXTS short texts of at least
// EMBED_TOKENS tokens each, embedded in one call (native code packs them into
// batches of up to EMBED_SEQUENCES texts).
import type { Model } from '../src/index.js';
import { rng } from './ours.js';
import { summarize, type Stat } from './report.js';

export const EMBED_TEXTS = 256;
export const EMBED_TOKENS = 16;
export const EMBED_SEQUENCES = 32;
export const EMBED_CONTEXT = 1024;

export interface EmbedResult {
  texts: number;
  /** Tokens of all texts, BOS included. */
  tokens: number;
  sequences: number;
  contextSize: number;
  dimensions: number;
  textsPerSecond: Stat;
  tokensPerSecond: Stat;
}

const WORDS = [
  'the', 'little', 'girl', 'saw', 'a', 'big', 'red', 'ball', 'in', 'park', 'and', 'her', 'dog', 'ran', 'to', 'get', 'it',
  'sun', 'was', 'warm', 'happy', 'boy', 'tree', 'bird', 'sang', 'song', 'mom', 'said', 'time', 'home', 'they', 'played',
  'together', 'all', 'day', 'one', 'night', 'moon', 'cat', 'found', 'box', 'toy', 'friend', 'smiled', 'looked', 'up',
];

/** Deterministic short texts, each grown a word at a time until it tokenizes to `minTokens` or more. */
export function embedTexts(model: Model, n = EMBED_TEXTS, minTokens = EMBED_TOKENS): { texts: string[]; tokens: number } {
  const next = rng(7);
  const texts: string[] = [];
  let tokens = 0;
  for (let i = 0; i < n; i++) {
    const words: string[] = [];
    let count = 0;
    while (count < minTokens) {
      words.push(WORDS[Math.floor(next() * WORDS.length)]!);
      count = model.tokenize(words.join(' ')).length;
    }
    texts.push(words.join(' '));
    tokens += count;
  }
  return { texts, tokens };
}

export async function measureEmbeddings(model: Model, o: { threads: number; reps: number }, log: (msg: string) => void): Promise<EmbedResult> {
  const { texts, tokens } = embedTexts(model);
  const ctx = await model.createContext({
    embeddings: true, contextSize: EMBED_CONTEXT, sequences: EMBED_SEQUENCES, threads: o.threads, batchThreads: o.threads,
  });
  try {
    const perText: number[] = [];
    const perToken: number[] = [];
    let dimensions = 0;
    for (let i = 0; i < o.reps + 1; i++) { // the first run is the warm-up
      const t0 = performance.now();
      const vectors = await ctx.embed(texts);
      const ms = performance.now() - t0;
      if (vectors.length !== texts.length) throw new Error(`bench (embeddings): ${vectors.length} vectors for ${texts.length} texts`);
      dimensions = vectors[0]!.length;
      if (i === 0) continue;
      perText.push((texts.length * 1000) / ms);
      perToken.push((tokens * 1000) / ms);
    }
    const r: EmbedResult = {
      texts: texts.length, tokens, sequences: EMBED_SEQUENCES, contextSize: EMBED_CONTEXT, dimensions,
      textsPerSecond: summarize(perText), tokensPerSecond: summarize(perToken),
    };
    log(`  ours embeddings: ${r.textsPerSecond.mean.toFixed(1)} texts/s, ${r.tokensPerSecond.mean.toFixed(0)} tokens/s (${tokens} tokens in ${texts.length} texts)`);
    return r;
  } finally {
    ctx.dispose();
  }
}
