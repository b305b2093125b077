// How alike two answers are, in [0, 1] for structured answers and as an
// embedding cosine otherwise. Readiness (shadow checks, audits) and the
// learner's held-out evaluation both score with it, so "ready" and "better"
// mean the same thing.
//
// Why JSON is scored by structure: an embedding sees `{"n": 3}` and `{"n": 4}`
// as nearly the same text, yet a caller that parses the answer gets a wrong
// value. Comparing field by field makes a wrong value cost what it is worth.
import { UnderstudyError } from '../errors.js';
import { cosine, type EmbedFunction } from './embedder.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One pair's similarity: see answerSimilarities. */
export async function answerSimilarity(a: string, b: string, embed: EmbedFunction): Promise<number> {
  const [score] = await answerSimilarities([[a, b]], embed);
  return score!;
}

/**
 * Similarities of many (a, b) answer pairs, with one embed call for all the
 * pairs that need one:
 * - identical texts (after trimming) score 1 without embedding;
 * - two JSON objects/arrays (bare or in one ```json fence) score by structure (jsonSimilarity);
 * - otherwise, including when only one side is JSON (it may be written as
 *   prose on the other), the cosine of the two texts' embeddings.
 */
export async function answerSimilarities(pairs: ReadonlyArray<readonly [string, string]>, embed: EmbedFunction): Promise<number[]> {
  const scores: (number | undefined)[] = [];
  const texts: string[] = [];
  const index = new Map<string, number>();
  const slot = (text: string): number => {
    let i = index.get(text);
    if (i === undefined) {
      i = texts.length;
      texts.push(text);
      index.set(text, i);
    }
    return i;
  };
  const embedded: [number, number, number][] = [];
  pairs.forEach(([rawA, rawB], n) => {
    const a = rawA.trim();
    const b = rawB.trim();
    if (a === b) {
      scores[n] = 1;
      return;
    }
    const ja = parseStructured(a);
    const jb = ja === undefined ? undefined : parseStructured(b);
    if (ja !== undefined && jb !== undefined) {
      scores[n] = jsonSimilarity(ja, jb);
      return;
    }
    embedded.push([n, slot(a), slot(b)]);
  });
  if (embedded.length > 0) {
    const vectors = await embed(texts);
    if (!Array.isArray(vectors) || vectors.length !== texts.length) {
      throw new UnderstudyError('NATIVE_ERROR',
        `the embedder returned ${Array.isArray(vectors) ? vectors.length : 'no'} vectors for ${texts.length} texts`);
    }
    for (const [n, i, j] of embedded) scores[n] = cosine(vectors[i]!, vectors[j]!);
  }
  return scores as number[];
}

/** A JSON object or array, bare or as the only content of one ``` / ```json fence; undefined otherwise. */
export function parseStructured(text: string): Json[] | { [key: string]: Json } | undefined {
  const fenced = /^```(?:json)?[ \t]*\r?\n([\s\S]*?)\r?\n?```$/i.exec(text);
  const body = (fenced ? fenced[1]! : text).trim();
  // Only objects and arrays: a bare number or string is prose as far as a caller knows.
  if (!body.startsWith('{') && !body.startsWith('[')) return undefined;
  try {
    const value = JSON.parse(body) as Json;
    return typeof value === 'object' && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Structural similarity of two JSON values, in [0, 1]; equal values score exactly 1.
 * Objects: mean over the union of keys (a key on one side only scores 0).
 * Arrays: mean over positions up to the longer length (a missing item scores 0).
 * Strings: 1 when equal, else the Jaccard index of their word sets.
 * Numbers: 1 − |a − b| / max(|a|, |b|), at least 0. Booleans and null: equal or not.
 * Values of different types score 0.
 */
export function jsonSimilarity(a: Json, b: Json): number {
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b)) return 0;
    const n = Math.max(a.length, b.length);
    if (n === 0) return 1;
    let sum = 0;
    for (let i = 0; i < Math.min(a.length, b.length); i++) sum += jsonSimilarity(a[i]!, b[i]!);
    return sum / n;
  }
  if (a === null || b === null) return a === b ? 1 : 0;
  if (typeof a !== typeof b) return 0;
  if (typeof a === 'object') {
    const ob = b as { [key: string]: Json };
    const keys = new Set([...Object.keys(a), ...Object.keys(ob)]);
    if (keys.size === 0) return 1;
    let sum = 0;
    for (const key of keys) {
      if (Object.hasOwn(a, key) && Object.hasOwn(ob, key)) sum += jsonSimilarity(a[key]!, ob[key]!);
    }
    return sum / keys.size;
  }
  if (typeof a === 'number') {
    const nb = b as number;
    if (a === nb) return 1;
    return Math.max(0, 1 - Math.abs(a - nb) / Math.max(Math.abs(a), Math.abs(nb)));
  }
  if (typeof a === 'string') return a === b ? 1 : jaccard(words(a), words(b as string));
  return a === b ? 1 : 0;
}

function words(text: string): Set<string> {
  return new Set(text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []);
}

/** |A ∩ B| / |A ∪ B|; two empty sets (texts of punctuation only) count as the same. */
function jaccard(a: Set<string>, b: Set<string>): number {
  let both = 0;
  for (const w of a) if (b.has(w)) both++;
  const union = a.size + b.size - both;
  return union === 0 ? 1 : both / union;
}
