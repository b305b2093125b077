// The router's own costs, apart from any model: the exact-cache hit path end to
// end, the semantic index's lookup at 10k and 100k entries (the embedding
// excluded), and, reported apart, the time to embed one prompt with the local
// model's embedding path. run.ts runs each part in a child process of its own
// (a fresh heap each, so one part's garbage and native memory do not slow the
// next); see bench/README.md, "Router".
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import hnswlib from 'hnswlib-node';
import { createRouter, loadModel, MockBackend } from '../src/index.js';
import { AnswerCache } from '../src/router/answer-cache.js';
import { resolveSettings } from '../src/router/config.js';
import { cacheKey, normalize } from '../src/router/request.js';
import { SemanticIndex } from '../src/router/semantic-index.js';
import { openDatabase } from '../src/router/store.js';
import { childMain, invokedDirectly, runChild } from './child.js';
import { embedTexts } from './embeddings.js';
import { rng } from './ours.js';

export interface Pct { p50: number; p99: number; mean: number; max: number; n: number }

/** Nearest-rank percentiles of a sample, in the sample's unit. */
export function pct(xs: number[]): Pct {
  const s = Float64Array.from(xs).sort();
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
  return { p50: at(50), p99: at(99), mean: xs.reduce((a, b) => a + b, 0) / xs.length, max: s[s.length - 1]!, n: xs.length };
}

/** Times `n` awaited calls of `f` one after the other, after `warmup` untimed ones. */
async function timeEach(n: number, warmup: number, f: () => unknown): Promise<{ ms: Pct; perSecond: number }> {
  for (let i = 0; i < warmup; i++) await f();
  const ms = new Array<number>(n);
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f();
    ms[i] = performance.now() - t0;
  }
  return { ms: pct(ms), perSecond: (n * 1000) / (performance.now() - start) };
}

// ---- 1. exact-cache hits ----------------------------------------------------

export interface HitResult {
  calls: number;
  warmup: number;
  /** router.chat() answered from the exact cache. */
  hit: { ms: Pct; perSecond: number };
  /** The bare pieces, for scale: the hit costs these plus the router's own bookkeeping. */
  pieces: Record<'awaitNoop' | 'normalize' | 'cacheKey' | 'sqliteGet', { ms: Pct; perSecond: number }>;
}

/** The one call repeated; recorded with the results. */
export const HIT_REQUEST = {
  task: 'bench', maxTokens: 64,
  messages: [
    { role: 'system' as const, content: 'You are a terse assistant. Answer in one sentence.' },
    { role: 'user' as const, content: 'What is the capital of France, and roughly how many people live there?' },
  ],
};

async function measureHits(o: { calls: number; warmup: number }, log: (m: string) => void): Promise<HitResult> {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-bench-router-'));
  try {
    const router = await createRouter({ remote: new MockBackend(), local: false, embedder: false, quiet: true, cacheDir: dir, env: {} });
    const first = await router.chat(HIT_REQUEST);
    if (first.route !== 'remote') throw new Error(`bench (router): first call went to ${first.route}, not remote`);
    let misses = 0;
    const hit = await timeEach(o.calls, o.warmup, async () => {
      if ((await router.chat(HIT_REQUEST)).route !== 'cache') misses++;
    });
    if (misses > 0) throw new Error(`bench (router): ${misses} calls were not exact-cache hits`);
    await router.close();

    // The same steps one at a time, outside the router.
    const settings = resolveSettings({ quiet: true, cacheDir: dir }, {});
    const noop = async () => {};
    const db = openDatabase(dir, 'pieces.db', false);
    const cache = new AnswerCache(db, { maxEntries: 10 });
    const normal = normalize('chat', HIT_REQUEST, settings);
    const key = cacheKey(normal, 'mock');
    cache.put({ key, task: 'bench', signature: 's', answer: first.text, usage: first.usage, model: 'mock' });
    const pieces = {
      awaitNoop: await timeEach(o.calls, o.warmup, noop),
      normalize: await timeEach(o.calls, o.warmup, () => void normalize('chat', HIT_REQUEST, settings)),
      cacheKey: await timeEach(o.calls, o.warmup, () => void cacheKey(normal, 'mock')),
      sqliteGet: await timeEach(o.calls, o.warmup, () => void cache.get(key)),
    };
    cache.close();
    db.close();
    log(`  router exact hit: p50 ${(hit.ms.p50 * 1000).toFixed(1)} µs, p99 ${(hit.ms.p99 * 1000).toFixed(1)} µs, ${hit.perSecond.toFixed(0)} calls/s`);
    return { calls: o.calls, warmup: o.warmup, hit, pieces };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- 2. semantic lookups --------------------------------------------------

export interface SemanticOptions { size: number; dim: number; clusters: number; queries: number; recallSample: number }

export interface SemanticResult extends SemanticOptions {
  /** AnswerCache.put of every entry (SQLite, with the embedding), and SemanticIndex.add (HNSW insert). */
  buildSeconds: { put: number; add: number };
  /** index.save() and the files it wrote; cache.db for comparison. */
  saveMs: number;
  indexBytes: number;
  sqliteBytes: number;
  /** A fresh SemanticIndex opening the saved index: the worker verifies its checksum and reconciles it with the rows, then hnswlib loads it. */
  reopenMs: number;
  /** nearest(): all queries, near-duplicates of stored entries, and fresh points of the same clusters. */
  nearestMs: { all: Pct; near: Pct; fresh: Pct };
  /** Agreement of nearest() with a brute-force scan, on the first recallSample queries of each kind. */
  recallAt1: { near: number; fresh: number };
  /** Mean similarity nearest() reports: near-duplicates should clear the 0.95 cache threshold, fresh points not. */
  meanSimilarity: { near: number; fresh: number };
  /** The same graph read into a bare HierarchicalNSW: where nearest()'s time goes. */
  breakdownMs: { searchKnn: Pct; searchKnnFilter: Pct; arrayFrom: Pct };
}

/** Standard normal deviates (Box-Muller) from a uniform generator. */
function gaussian(next: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
}

function normalizeInPlace(v: Float32Array): Float32Array {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i]! * v[i]!;
  n = Math.sqrt(n);
  for (let i = 0; i < v.length; i++) v[i]! /= n;
  return v;
}

/** base + noise of the given norm (in expectation), made unit length. */
function jitter(base: Float32Array, norm: number, g: () => number): Float32Array {
  const v = new Float32Array(base.length);
  const sd = norm / Math.sqrt(base.length);
  for (let i = 0; i < v.length; i++) v[i] = base[i]! + sd * g();
  return normalizeInPlace(v);
}

// Noise norms: an entry sits at cosine ~0.7 from its cluster centre (two entries
// of one cluster ~0.5, entries of different clusters ~0), and a near-duplicate
// query at ~0.99 from the entry it copies: roughly what sentence embeddings give
// for same-topic questions and for rephrasings.
const CLUSTER_NOISE = 1;
const NEAR_NOISE = 0.15;

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((a, f) => a + statSync(join(dir, f)).size, 0);
}

async function measureSemantic(o: SemanticOptions, log: (m: string) => void): Promise<SemanticResult> {
  const { size, dim } = o;
  const dir = mkdtempSync(join(tmpdir(), 'understudy-bench-semantic-'));
  const task = 'bench';
  const signature = JSON.stringify(['chat', 'mock', 0, 64, 1, [], null]);
  const usage = { promptTokens: 30, completionTokens: 20, totalTokens: 50 };
  const g = gaussian(rng(1234));
  try {
    const db = openDatabase(dir, 'cache.db', false);
    let index: SemanticIndex | undefined;
    const cache = new AnswerCache(db, { maxEntries: size + 1, onRemove: (rows) => index?.remove(rows) });
    index = new SemanticIndex(join(dir, 'semantic'), db, { onError: (err) => { throw err; } });
    const centres = Array.from({ length: o.clusters }, () => jitter(new Float32Array(dim), 1, g));
    const stored = new Float32Array(size * dim);
    const row = (i: number) => stored.subarray(i * dim, (i + 1) * dim);
    const ids = new Int32Array(size);
    let put = 0;
    let add = 0;
    for (let i = 0; i < size; i++) {
      const v = row(i);
      v.set(jitter(centres[i % o.clusters]!, CLUSTER_NOISE, g));
      const t0 = performance.now();
      ids[i] = cache.put({ key: `k${i}`, task, signature, answer: `answer ${i}`, usage, model: 'mock', embedding: v });
      const t1 = performance.now();
      index.add(task, ids[i]!, v, signature);
      put += t1 - t0;
      add += performance.now() - t1;
      if ((i + 1) % Math.max(1, Math.floor(size / 5)) === 0) log(`  semantic ${size}: ${i + 1} entries, ${((put + add) / 1000).toFixed(1)} s (HNSW ${(add / 1000).toFixed(1)} s)`);
    }

    // Queries alternate: a near-duplicate of a random stored entry, a fresh point of a random cluster.
    const pick = rng(99);
    const queries = Array.from({ length: o.queries }, (_, q) => {
      const near = q % 2 === 0;
      const of = Math.floor(pick() * (near ? size : o.clusters));
      return { near, v: near ? jitter(row(of), NEAR_NOISE, g) : jitter(centres[of]!, CLUSTER_NOISE, g) };
    });
    for (let i = 0; i < 100; i++) await index.nearest(task, queries[i % queries.length]!.v, signature);
    const hits: ({ id: number; similarity: number } | undefined)[] = [];
    const times: number[] = [];
    for (const q of queries) {
      const t0 = performance.now();
      hits.push(await index.nearest(task, q.v, signature));
      times.push(performance.now() - t0);
    }
    const kind = (near: boolean) => times.filter((_, i) => queries[i]!.near === near);

    // Brute force: the highest dot product (all vectors are unit length).
    const recall = { near: 0, fresh: 0 };
    const similarity = { near: 0, fresh: 0 };
    const sampled = { near: 0, fresh: 0 };
    queries.forEach((q, i) => {
      const k = q.near ? 'near' : 'fresh';
      similarity[k] += hits[i]?.similarity ?? 0;
      if (sampled[k] >= o.recallSample) return;
      sampled[k]++;
      let best = -2;
      let bestRow = -1;
      for (let r = 0; r < size; r++) {
        let dot = 0;
        for (let d = 0, base = r * dim; d < dim; d++) dot += q.v[d]! * stored[base + d]!;
        if (dot > best) [best, bestRow] = [dot, r];
      }
      if (hits[i]?.id === ids[bestRow]) recall[k]++;
    });

    let t0 = performance.now();
    await index.save();
    const saveMs = performance.now() - t0;
    await index.close();
    const indexBytes = dirBytes(join(dir, 'semantic'));
    const sqliteBytes = readdirSync(dir).filter((f) => f.startsWith('cache.db')).reduce((a, f) => a + statSync(join(dir, f)).size, 0);
    t0 = performance.now();
    index = new SemanticIndex(join(dir, 'semantic'), db, { onError: (err) => { throw err; } });
    await index.nearest(task, queries[0]!.v, signature);
    await index.opened(task);
    const reopenMs = performance.now() - t0;
    await index.close();
    index = undefined;

    // The saved graph in a bare hnswlib index with the same search breadth, to
    // split nearest() into the search itself, the JS filter callback hnswlib
    // makes for every candidate, and copying the query into a JS array.
    const graph = readdirSync(join(dir, 'semantic')).find((f) => f.endsWith('.hnsw'))!;
    const bare = new hnswlib.HierarchicalNSW('cosine', dim);
    bare.readIndexSync(join(dir, 'semantic', graph), true);
    bare.setEf(64);
    const labels = new Map<number, string>(Array.from(ids, (id) => [id, signature]));
    const each = (f: (q: Float32Array) => unknown) => pct(queries.map((q) => {
      const s = performance.now();
      f(q.v);
      return performance.now() - s;
    }));
    const breakdownMs = {
      arrayFrom: each((q) => Array.from(q)),
      searchKnn: each((q) => bare.searchKnn(Array.from(q), 1)),
      searchKnnFilter: each((q) => bare.searchKnn(Array.from(q), 1, (l) => labels.get(l) === signature)),
    };
    cache.close();
    db.close();
    const r: SemanticResult = {
      ...o, buildSeconds: { put: put / 1000, add: add / 1000 }, saveMs, indexBytes, sqliteBytes, reopenMs,
      nearestMs: { all: pct(times), near: pct(kind(true)), fresh: pct(kind(false)) },
      recallAt1: { near: recall.near / sampled.near, fresh: recall.fresh / sampled.fresh },
      meanSimilarity: { near: similarity.near / (o.queries / 2), fresh: similarity.fresh / (o.queries / 2) },
      breakdownMs,
    };
    log(`  semantic ${size}: nearest p50 ${r.nearestMs.all.p50.toFixed(3)} ms, p99 ${r.nearestMs.all.p99.toFixed(3)} ms; recall@1 near ${r.recallAt1.near.toFixed(3)}; build ${(put / 1000).toFixed(1)} + ${(add / 1000).toFixed(1)} s`);
    return r;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- 3. embedding one prompt ----------------------------------------------

export interface EmbedPromptOptions { threads: number; gpu: boolean; singles: number; batches: number; minTokens: number }

export interface EmbedPromptResult {
  meanTokens: number;
  dimensions: number;
  /** embed([text]): one prompt per call. */
  single: Pct;
  /** embed(8 texts): each call's time / 8. */
  batchedPerPrompt: Pct;
}

const EMBED_BATCH = 8;

async function measureEmbedPrompt(path: string, o: EmbedPromptOptions, log: (m: string) => void): Promise<EmbedPromptResult> {
  const model = await loadModel(path, { gpuLayers: o.gpu ? 'max' : 0 });
  // The context LocalBackend.embed() and modelEmbedder() make.
  const ctx = await model.createContext({ embeddings: true, contextSize: 512, sequences: EMBED_BATCH, threads: o.threads, batchThreads: o.threads });
  try {
    const n = Math.max(o.singles, o.batches * EMBED_BATCH);
    const { texts, tokens } = embedTexts(model, n, o.minTokens);
    let dimensions = 0;
    for (let i = 0; i < 3; i++) dimensions = (await ctx.embed([texts[i]!]))[0]!.length; // warm-up
    await ctx.embed(texts.slice(0, EMBED_BATCH));
    const single: number[] = [];
    for (let i = 0; i < o.singles; i++) {
      const t0 = performance.now();
      await ctx.embed([texts[i]!]);
      single.push(performance.now() - t0);
    }
    const batched: number[] = [];
    for (let b = 0; b < o.batches; b++) {
      const t0 = performance.now();
      await ctx.embed(texts.slice(b * EMBED_BATCH, (b + 1) * EMBED_BATCH));
      batched.push((performance.now() - t0) / EMBED_BATCH);
    }
    const r = { meanTokens: tokens / n, dimensions, single: pct(single), batchedPerPrompt: pct(batched) };
    log(`  embedding: ${r.single.p50.toFixed(2)} ms per prompt alone, ${r.batchedPerPrompt.p50.toFixed(2)} ms in batches of ${EMBED_BATCH} (${r.meanTokens.toFixed(1)} tokens)`);
    return r;
  } finally {
    ctx.dispose();
    model.dispose();
  }
}

// ---- orchestration ----------------------------------------------------------

export interface RouterBenchOptions {
  threads: number;
  gpu: boolean;
  hits: { calls: number; warmup: number };
  sizes: number[];
  semantic: Omit<SemanticOptions, 'size'>;
  embed: { label: string; path: string; singles: number; batches: number }[];
  minTokens: number;
}

export interface RouterBenchResult {
  hits: HitResult;
  semantic: SemanticResult[];
  embed: ({ model: string; singles: number; batches: number; batchSize: number } & EmbedPromptResult)[];
  seconds: number;
}

type Part = { part: 'hits'; calls: number; warmup: number } | ({ part: 'semantic' } & SemanticOptions) | ({ part: 'embed' } & EmbedPromptOptions);

/** Runs every part, each in its own child process; `phase` names it for the contention monitor. */
export async function runRouterBench(o: RouterBenchOptions, phase: (label: string) => void): Promise<RouterBenchResult> {
  const started = performance.now();
  phase('router: exact-cache hits');
  const hits = await runChild<HitResult>('router.ts', '-', { part: 'hits', ...o.hits } satisfies Part, 'router exact-hit bench');
  const semantic: SemanticResult[] = [];
  for (const size of o.sizes) {
    phase(`router: semantic index, ${size} entries`);
    semantic.push(await runChild<SemanticResult>('router.ts', '-', { part: 'semantic', size, ...o.semantic } satisfies Part, `router semantic bench at ${size}`));
  }
  const embed: RouterBenchResult['embed'] = [];
  for (const m of o.embed) {
    phase(`router: embedding per prompt, ${m.label}`);
    const p: Part = { part: 'embed', threads: o.threads, gpu: o.gpu, singles: m.singles, batches: m.batches, minTokens: o.minTokens };
    const r = await runChild<EmbedPromptResult>('router.ts', m.path, p, `router embedding bench on ${m.label}`);
    embed.push({ model: m.label, singles: m.singles, batches: m.batches, batchSize: EMBED_BATCH, ...r });
  }
  return { hits, semantic, embed, seconds: (performance.now() - started) / 1000 };
}

if (invokedDirectly(import.meta.url)) {
  childMain<Part, unknown>('router.ts', (model, p, log) => {
    if (p.part === 'hits') return measureHits(p, log);
    if (p.part === 'semantic') {
      const { part: _, ...o } = p;
      return measureSemantic(o, log);
    }
    return measureEmbedPrompt(model, p, log);
  });
}
