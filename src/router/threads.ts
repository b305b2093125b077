// CPU threads for the router's local contexts. ggml's worker threads spin
// while they wait, so two contexts whose threads together outnumber the cores
// (the generation context and the embedding context compute at the same time:
// a shadow check embeds while a call generates) slow each other down by ten
// times or more. The budget is shared out, never handed to each in full.
import { availableParallelism } from 'node:os';

export interface ThreadShare {
  /** Threads of the generation context. */
  generation: number;
  /** Threads of an embedding context. */
  embedding: number;
}

/**
 * Shares `budget` threads (default: all cores but one, which the JS thread and
 * the rest of the process need) between generation (two thirds) and embedding.
 * Each gets at least one.
 */
export function shareThreads(budget?: number, cores = availableParallelism()): ThreadShare {
  const total = Math.max(1, budget ?? cores - 1);
  const generation = Math.max(1, Math.ceil((total * 2) / 3));
  return { generation, embedding: Math.max(1, total - generation) };
}
