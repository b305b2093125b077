// What turns prompts and answers into unit vectors: a function the user gives,
// a dedicated embedding model, or the local model itself.
import type { Context } from '../llama/context.js';
import { loadModel, type Model } from '../llama/model.js';
import type { GpuLayers } from '../llama/system.js';

export type EmbedFunction = (texts: string[]) => Promise<Float32Array[]>;

export interface Embedder {
  embed: EmbedFunction;
  close(): Promise<void>;
  /** CPU threads of the embedding context, for a model's embedder. */
  threads?: number;
}

/**
 * An embedder over a GGUF embedding model (bge, nomic-embed, ...), loaded once.
 * `threads` is its share of the router's thread budget (see threads.ts): with
 * the context's default, all cores, it would fight the generation context.
 */
export async function modelEmbedder(path: string, gpuLayers: GpuLayers, threads?: number): Promise<Embedder> {
  const model: Model = await loadModel(path, { gpuLayers });
  let context: Context;
  try {
    context = await model.createContext({ embeddings: true, contextSize: 512, sequences: 8, ...(threads ? { threads } : {}) });
  } catch (err) {
    // Awaited: the caller may load another model at once, and this one's memory must be gone first.
    await model.dispose();
    throw err;
  }
  return {
    embed: (texts) => context.embed(texts, { truncate: true }),
    threads: context.info().threads,
    close: async () => {
      await context.dispose();
      await model.dispose();
    },
  };
}

export function functionEmbedder(embed: EmbedFunction): Embedder {
  return { embed, close: async () => {} };
}

/** Cosine similarity of two vectors (unit-length or not), clamped to [-1, 1]. */
export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  if (na === 0 || nb === 0) return 0;
  return Math.max(-1, Math.min(1, dot / Math.sqrt(na * nb)));
}
