// The semantic cache's answers on prompt pairs (test/fixtures/semantic-pairs.json):
// near misses (digits, number words, operators, names, negations, quoted
// strings, code, units) that must never be answered with each other's answer,
// and true paraphrases that may. For each embedder: the fitness check's worst
// unrelated pair, each pair's similarity, the hits a similarity threshold alone
// would give, and the hits the router gives (threshold and guard), each pair in
// a task of its own so that only its two prompts meet.
//
//   node --import tsx bench/semantic-pairs.ts [--model stories260K.gguf] [--threshold 0.95]
//
// Embedders: the local chat model (stories260K by default: the weak default
// embedder of the issue), a bag-of-words stand-in (lexical), and a constant
// one (every text the same vector: the guard alone decides). Also 500 distinct
// templated questions in one task, to count how many a threshold alone answers
// from the cache. Prints one JSON object; nothing is asserted.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createRouter, MockBackend } from '../src/index.js';
import { cosine, type EmbedFunction } from '../src/router/embedder.js';
import { LocalBackend } from '../src/router/local-backend.js';
import { checkEmbedder } from '../src/router/semantic-fitness.js';
import { freshDir } from '../test/router-fixture.js';
import { bagEmbed, constantEmbed, pairs, type PromptPair } from '../test/semantic-fixture.js';
import { repoRoot } from './models.js';
import { rng } from './ours.js';

interface PairResult { pairs: number; thresholdHits: number; routerHits: number; meanSimilarity: number; minSimilarity: number }

async function onPairs(embed: EmbedFunction, list: PromptPair[], prefix: string, threshold: number): Promise<PairResult & { wrong: string[] }> {
  const texts = list.flatMap((p) => [`user: ${p.a}`, `user: ${p.b}`]);
  const vectors = await embed(texts);
  const similarities = list.map((_, i) => cosine(vectors[2 * i]!, vectors[2 * i + 1]!));
  const router = await createRouter({ local: false, remote: new MockBackend(), embedder: embed, semanticCache: true, cacheThreshold: threshold,
    cacheDir: freshDir('bench-pairs'), quiet: true, env: {} });
  let routerHits = 0;
  const wrong: string[] = [];
  for (const [i, p] of list.entries()) {
    const ask = (content: string) => router.chat({ task: `${prefix}-${i}`, messages: [{ role: 'user', content }], maxTokens: 16 });
    await ask(p.a);
    if ((await ask(p.b)).route === 'semantic-cache') {
      routerHits++;
      wrong.push(`${p.kind ?? 'paraphrase'}: ${p.b}`);
    }
  }
  await router.close();
  return {
    pairs: list.length,
    thresholdHits: similarities.filter((s) => s >= threshold).length,
    routerHits,
    meanSimilarity: similarities.reduce((a, b) => a + b, 0) / list.length,
    minSimilarity: Math.min(...similarities),
    wrong,
  };
}

/** Distinct templated questions, all in one task: every hit is a wrong answer. */
async function distinct(embed: EmbedFunction, n: number, threshold: number) {
  const next = rng(5);
  const templates = [
    (a: number, b: number) => `What is ${a}+${b}?`,
    (a: number, b: number) => `Is ${a * 7 + b} a prime number?`,
    (a: number, b: number) => `Convert ${a * 10 + b} km to miles.`,
    (a: number, b: number) => `What happened in the year ${1800 + a * 10 + b}?`,
    (a: number, b: number) => `Give me ${a + 2} ideas for a party of ${b + 3} people.`,
  ];
  const seen = new Set<string>();
  const prompts: string[] = [];
  while (prompts.length < n) {
    const p = templates[Math.floor(next() * templates.length)]!(Math.floor(next() * 50), Math.floor(next() * 50));
    if (!seen.has(p)) prompts.push(p), seen.add(p);
  }
  const router = await createRouter({ local: false, remote: new MockBackend(), embedder: embed, semanticCache: true, cacheThreshold: threshold,
    cacheDir: freshDir('bench-distinct'), quiet: true, env: {} });
  let routerHits = 0;
  for (const p of prompts) {
    if ((await router.chat({ task: 'distinct', messages: [{ role: 'user', content: p }], maxTokens: 16 })).route === 'semantic-cache') routerHits++;
  }
  await router.close();
  // Without the guard: a prompt hits when any earlier prompt is at the threshold or above.
  const vectors = await embed(prompts.map((p) => `user: ${p}`));
  let thresholdHits = 0;
  vectors.forEach((v, i) => {
    for (let j = 0; j < i; j++) {
      if (cosine(v, vectors[j]!) >= threshold) {
        thresholdHits++;
        break;
      }
    }
  });
  return { prompts: n, thresholdHits, routerHits };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    model: { type: 'string', default: resolve(repoRoot, '..', 'shared', 'models', 'stories260K.gguf') },
    threshold: { type: 'string', default: '0.95' },
    distinct: { type: 'string', default: '500' },
  } });
  const threshold = Number(values.threshold);
  const local = await LocalBackend.open({ model: values.model!, sequences: 1, contextSize: 512 });
  const embedders: [string, EmbedFunction][] = [
    [`local model (${values.model!.split('/').pop()})`, (t) => local.embed!(t)],
    ['bag of words (test stand-in)', bagEmbed],
    ['constant (worst case)', constantEmbed],
  ];
  const results = [];
  for (const [name, embed] of embedders) {
    const fitness = await checkEmbedder(embed, threshold);
    const nearMiss = await onPairs(embed, pairs.nearMiss, 'near', threshold);
    const paraphrase = await onPairs(embed, pairs.paraphrase, 'para', threshold);
    const many = await distinct(embed, Number(values.distinct), threshold);
    const r = {
      embedder: name,
      fitness: { fit: fitness.fit, worstUnrelatedSimilarity: fitness.worst.similarity, bound: fitness.bound },
      nearMiss: { ...nearMiss, falseHitRate: nearMiss.routerHits / nearMiss.pairs, falseHitRateThresholdOnly: nearMiss.thresholdHits / nearMiss.pairs },
      paraphrase: { ...paraphrase, hitRate: paraphrase.routerHits / paraphrase.pairs, hitRateThresholdOnly: paraphrase.thresholdHits / paraphrase.pairs, wrong: undefined },
      distinct: many,
    };
    console.error(`${name}: unrelated pairs up to ${fitness.worst.similarity.toFixed(3)} (${fitness.fit ? 'fit' : 'not fit'}); ` +
      `near misses: ${nearMiss.routerHits}/${nearMiss.pairs} false hits with the guard, ${nearMiss.thresholdHits} by threshold alone; ` +
      `paraphrases: ${paraphrase.routerHits}/${paraphrase.pairs} hits (${paraphrase.thresholdHits} by threshold alone); ` +
      `distinct prompts: ${many.routerHits}/${many.prompts} hits (${many.thresholdHits} by threshold alone)`);
    results.push(r);
  }
  await local.close();
  process.stdout.write(`${JSON.stringify({ threshold, results }, null, 2)}\n`);
}

await main();
