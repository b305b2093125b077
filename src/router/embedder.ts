// What turns prompts and answers into unit vectors: a function the user gives,
// a dedicated embedding model, or the local model itself.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Context } from '../llama/context.js';
import { loadModel, type Model } from '../llama/model.js';
import type { GpuLayers } from '../llama/system.js';

export type EmbedFunction = (texts: string[]) => Promise<Float32Array[]>;

export interface Embedder {
  embed: EmbedFunction;
  /**
   * Which embedder made a vector. Vectors from two embedders cannot be compared,
   * so the semantic cache only matches entries embedded by the same one.
   */
  id: string;
  close(): Promise<void>;
  /** CPU threads of the embedding context, for a model's embedder. */
  threads?: number;
  /**
   * Tokens of `texts` by the embedding model's tokenizer, as embed() reads
   * them (before any truncation), for usage reports. Absent for an embedder
   * that has no tokenizer (a caller's function).
   */
  countTokens?(texts: string[]): number;
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
    countTokens: (texts) => texts.reduce((n, t) => n + model.tokenize(t).length, 0),
    id: embedderId(path),
    threads: context.info().threads,
    close: async () => {
      await context.dispose();
      await model.dispose();
    },
  };
}

export function functionEmbedder(embed: EmbedFunction, id = 'function', countTokens?: (texts: string[]) => number): Embedder {
  return { embed, id, close: async () => {}, ...(countTokens ? { countTokens } : {}) };
}

/** A model file's identity as an embedder: its resolved path, size and mtime (another file there is another embedder). */
export function embedderId(path: string): string {
  const resolved = resolve(path);
  try {
    const st = statSync(resolved);
    return `model:${resolved}:${st.size}:${Math.trunc(st.mtimeMs)}`;
  } catch {
    return `model:${resolved}`;
  }
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
