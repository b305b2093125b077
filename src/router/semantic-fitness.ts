// Whether an embedder is fit to drive the semantic cache. A chat model's
// pooled hidden state (the default embedder is the local model) puts nearly
// every prompt at similarity 0.99 to every other, so a cache on top of it
// answers questions it was never asked. At start-up the embedder embeds a
// fixed set of unrelated texts; if any pair comes out as similar as a hit
// could be (within a margin), the semantic cache stays off, with one warning.
import type { EmbedFunction } from './embedder.js';
import { cosine } from './embedder.js';
import { errorText } from '../validate.js';
import { hnswlibMissingWarning, loadHnswlib } from './hnsw-module.js';

/** Pairs no cache should ever confuse: different topics, forms and lengths. */
export const UNRELATED_PAIRS: readonly (readonly [string, string])[] = [
  ['What is 2+2?', 'What is the capital of France?'],
  ['Write a haiku about autumn leaves.', 'How do I reset my router password?'],
  ['Explain how photosynthesis works in plants.', 'Who won the football world cup in 1998?'],
  ['Summarize the plot of Hamlet in two sentences.', 'Convert 5 kilometers to miles.'],
  ['Write a SQL query that counts users by country.', 'What is the boiling point of water at sea level?'],
  ['Translate "good morning" into Spanish.', 'List three prime numbers greater than 100.'],
];

/** How far below the hit threshold every unrelated pair must stay. */
export const FITNESS_MARGIN = 0.1;

export interface Fitness {
  fit: boolean;
  /** The most similar unrelated pair, and its similarity. */
  worst: { pair: readonly [string, string]; similarity: number };
  bound: number;
}

/** Embeds the unrelated pairs; fit when every pair stays below `threshold - FITNESS_MARGIN`. */
export async function checkEmbedder(embed: EmbedFunction, threshold: number): Promise<Fitness> {
  const texts = UNRELATED_PAIRS.flat();
  const vectors = await embed(texts);
  const bound = threshold - FITNESS_MARGIN;
  let worst = { pair: UNRELATED_PAIRS[0]!, similarity: -1 };
  UNRELATED_PAIRS.forEach((pair, i) => {
    const similarity = cosine(vectors[2 * i]!, vectors[2 * i + 1]!);
    if (similarity > worst.similarity) worst = { pair, similarity };
  });
  return { fit: worst.similarity < bound, worst, bound };
}

export interface SemanticState {
  on: boolean;
  /** Why the semantic cache stays off though it was asked for. */
  warning?: string;
}

/**
 * Decides whether the semantic cache runs. `checked` embedders (models:
 * the local one or a dedicated embedding model) must pass checkEmbedder; an
 * embedding function the caller passed is taken as the caller's choice.
 */
export async function semanticState(wanted: boolean, embed: EmbedFunction | undefined, checked: boolean, threshold: number,
  embedderName: string): Promise<SemanticState> {
  if (!wanted) return { on: false };
  // hnswlib-node is optional (it compiles from source): without it there is no index to search.
  const hnsw = loadHnswlib();
  if (!hnsw.module) return { on: false, warning: hnswlibMissingWarning(hnsw.error) };
  if (!embed) return { on: false, warning: 'the semantic cache stays off: there is no embedder (set UNDERSTUDY_EMBEDDING_MODEL to an embedding model)' };
  if (!checked) return { on: true };
  let f: Fitness;
  try {
    f = await checkEmbedder(embed, threshold);
  } catch (err) {
    // The cache only saves work: an embedder that fails here leaves it off, not the router.
    return { on: false, warning: `the semantic cache stays off: ${embedderName} failed its check (${errorText(err)})` };
  }
  if (f.fit) return { on: true };
  return {
    on: false,
    warning: `the semantic cache stays off: ${embedderName} does not tell unrelated texts apart ` +
      `(${JSON.stringify(f.worst.pair[0])} and ${JSON.stringify(f.worst.pair[1])} are at similarity ${f.worst.similarity.toFixed(3)}, ` +
      `at least ${f.bound.toFixed(2)}); set UNDERSTUDY_EMBEDDING_MODEL to an embedding model`,
  };
}
