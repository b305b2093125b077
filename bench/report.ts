// Statistics, the printed tables and the results file.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { HitResult, Pct, RouterBenchResult, SemanticResult } from './router.js';

export interface Stat {
  mean: number;
  /** Sample standard deviation (n - 1), as llama-bench reports it. */
  stddev: number;
  samples: number[];
}

export function summarize(samples: number[]): Stat {
  const n = samples.length;
  const mean = n ? samples.reduce((a, b) => a + b, 0) / n : NaN;
  const stddev = n > 1 ? Math.sqrt(samples.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, stddev, samples };
}

/** The goal for ours / llama.cpp. */
export const GOAL_RATIO = 0.95;

export interface ComparisonRow {
  model: string;
  test: string;
  llama: Stat;
  ours: Stat;
  ratio: number;
  /** node-llama-cpp on the same test, when it was measured. */
  nlc?: Stat;
}

export function compare(model: string, test: string, llama: Stat, ours: Stat, nlc?: Stat): ComparisonRow {
  return { model, test, llama, ours, ratio: ours.mean / llama.mean, nlc };
}

function fmt(s: Stat): string {
  return `${s.mean.toFixed(2)} ± ${s.stddev.toFixed(2)}`;
}

export function table(header: string[], rows: string[][], rightAlign: boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (rightAlign[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (rightAlign[i] ? `${'-'.repeat(w + 1)}:` : `-${'-'.repeat(w)}-`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** A figure whose runs spread by more than this share of the mean is flagged as noisy. */
export const NOISY_CV = 0.05;

export function noisy(r: ComparisonRow): boolean {
  return r.llama.stddev > NOISY_CV * r.llama.mean || r.ours.stddev > NOISY_CV * r.ours.mean;
}

function verdict(r: ComparisonRow): string {
  return `${r.ratio >= GOAL_RATIO ? 'ok' : `< ${GOAL_RATIO}`}${noisy(r) ? ' (noisy)' : ''}`;
}

export function comparisonTable(rows: ComparisonRow[]): string {
  const nlc = rows.some((r) => r.nlc);
  const header = ['model', 'test', 'llama.cpp t/s', 'ours t/s', 'ours/llama.cpp', ''];
  if (nlc) header.push('node-llama-cpp t/s', 'ours/node-llama-cpp');
  return table(
    header,
    rows.map((r) => {
      const cells = [r.model, r.test, fmt(r.llama), fmt(r.ours), r.ratio.toFixed(3), verdict(r)];
      if (nlc) cells.push(r.nlc ? fmt(r.nlc) : '-', r.nlc ? (r.ours.mean / r.nlc.mean).toFixed(1) : '-');
      return cells;
    }),
    [false, false, true, true, true, false, true, true],
  );
}

/** The goal for ours / llama-batched-bench at PARALLEL_GOAL_AT sequences. */
export const PARALLEL_GOAL = 0.9;
export const PARALLEL_GOAL_AT = [4, 16];

export interface ParallelRow {
  model: string;
  sequences: number;
  llamaTg: Stat;
  oursTg: Stat;
  llamaPp: Stat;
  oursPp: Stat;
}

function parallelVerdict(r: ParallelRow): string {
  const ratio = r.oursTg.mean / r.llamaTg.mean;
  const noise = r.llamaTg.stddev > NOISY_CV * r.llamaTg.mean || r.oursTg.stddev > NOISY_CV * r.oursTg.mean ? ' (noisy)' : '';
  if (!PARALLEL_GOAL_AT.includes(r.sequences)) return noise.trim();
  return `${ratio >= PARALLEL_GOAL ? 'ok' : `< ${PARALLEL_GOAL}`}${noise}`;
}

export function parallelTable(rows: ParallelRow[]): string {
  return table(
    ['model', 'sequences', 'llama-batched-bench S_TG t/s', 'ours t/s', 'ours/llama.cpp', '', 'prompts S_PP t/s: llama.cpp / ours'],
    rows.map((r) => [
      r.model, String(r.sequences), fmt(r.llamaTg), fmt(r.oursTg), (r.oursTg.mean / r.llamaTg.mean).toFixed(3), parallelVerdict(r),
      `${r.llamaPp.mean.toFixed(1)} / ${r.oursPp.mean.toFixed(1)}`,
    ]),
    [false, true, true, true, true, false, true],
  );
}

export function parallelBelowGoal(rows: ParallelRow[]): ParallelRow[] {
  return rows.filter((r) => PARALLEL_GOAL_AT.includes(r.sequences) && r.oursTg.mean / r.llamaTg.mean < PARALLEL_GOAL);
}

type Lag = { p50: number; p99: number; max: number };
const lagCell = (l: Lag) => `${l.p50.toFixed(2)} / ${l.p99.toFixed(2)} / ${l.max.toFixed(2)}`;

export interface ServingRow {
  model: string;
  lag: { sequences: number; complete: Lag; streamed: Lag; streamedTgTps: number; idle: Lag } | null;
  embeddings: { texts: number; tokens: number; textsPerSecond: Stat; tokensPerSecond: Stat } | null;
}

/** Event-loop lag while many sequences generate, and embeddings per second (ours only). */
export function servingTable(rows: ServingRow[]): string {
  return table(
    ['model', 'ev-loop lag p50 / p99 / max ms: complete()', 'streamed (t/s)', 'idle p50 / p99', 'embeddings texts/s', 'embedding tokens/s'],
    rows.map(({ model, lag, embeddings: e }) => [
      lag ? `${model} (${lag.sequences} seq)` : model,
      lag ? lagCell(lag.complete) : '-',
      lag ? `${lagCell(lag.streamed)} (${lag.streamedTgTps.toFixed(1)})` : '-',
      lag ? `${lag.idle.p50.toFixed(2)} / ${lag.idle.p99.toFixed(2)}` : '-',
      e ? `${fmt(e.textsPerSecond)}` : '-',
      e ? `${fmt(e.tokensPerSecond)} (${e.texts} texts, ${e.tokens} tok)` : '-',
    ]),
    [false, true, true, true, true, true],
  );
}

export interface ExtraRow {
  model: string;
  ttftMs: Stat;
  ttftJsMs: Stat;
  promptTokens: number;
  lagIdle: { p50: number; p99: number };
  lagGen: { p50: number; p99: number; max: number };
  streamTg: Stat;
  loadMs: number;
  peakRssMb: number;
}

export function extrasTable(rows: ExtraRow[]): string {
  return table(
    ['model', 'TTFT ms (native)', 'TTFT ms (JS chunk)', 'ev-loop lag p50/p99/max ms (idle p50/p99)', 'tg128 streamed t/s', 'load ms', 'peak RSS MB'],
    rows.map((r) => [
      r.model,
      `${fmt(r.ttftMs)} (${r.promptTokens} tok)`,
      fmt(r.ttftJsMs),
      `${r.lagGen.p50.toFixed(2)}/${r.lagGen.p99.toFixed(2)}/${r.lagGen.max.toFixed(2)} (${r.lagIdle.p50.toFixed(2)}/${r.lagIdle.p99.toFixed(2)})`,
      fmt(r.streamTg),
      r.loadMs.toFixed(0),
      r.peakRssMb.toFixed(0),
    ]),
    [false, true, true, true, true, true, true],
  );
}

export function writeResults(path: string, data: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
}

// ---- router (bench/router.ts) ----

/** Goals from the router issue: an exact hit's p50, a semantic lookup's p99 (embedding excluded). */
export const HIT_GOAL_P50_MS = 0.1;
export const SEMANTIC_GOAL_P99_MS = 2;

const us = (ms: number) => (ms * 1000).toFixed(1);

/** The exact-cache hit through router.chat(), and the bare steps it is made of, in µs. */
export function routerHitTable(h: HitResult): string {
  const base = h.pieces.awaitNoop.ms.p50;
  const rows: [string, { ms: Pct; perSecond: number }][] = [
    ['router.chat(), exact-cache hit', h.hit],
    ['  await of an empty async function', h.pieces.awaitNoop],
    ['  normalize() (validation)', h.pieces.normalize],
    ['  cacheKey() (JSON + sha256)', h.pieces.cacheKey],
    ['  AnswerCache.get() (SQLite lookup)', h.pieces.sqliteGet],
  ];
  return table(
    ['', 'p50 µs', 'p99 µs', 'mean µs', 'calls/s', 'p50 / bare await'],
    rows.map(([label, r]) => [label, us(r.ms.p50), us(r.ms.p99), us(r.ms.mean), r.perSecond.toFixed(0), (r.ms.p50 / base).toFixed(0)]),
    [false, true, true, true, true, true],
  );
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
const ms3 = (p: Pct) => `${p.p50.toFixed(3)} / ${p.p99.toFixed(3)}`;

/** SemanticIndex.nearest() over N entries, the embedding excluded. */
export function semanticTable(rows: SemanticResult[]): string {
  return table(
    ['entries', 'nearest p50 / p99 ms', '', 'near-dup / fresh p99', 'recall@1 near / fresh', 'bare searchKnn p50: no filter / filter', 'build s: put + add', 'index MB (cache.db)', 'save / reopen ms'],
    rows.map((r) => [
      String(r.size), ms3(r.nearestMs.all), r.nearestMs.all.p99 <= SEMANTIC_GOAL_P99_MS ? 'ok' : `> ${SEMANTIC_GOAL_P99_MS}`,
      `${r.nearestMs.near.p99.toFixed(3)} / ${r.nearestMs.fresh.p99.toFixed(3)}`,
      `${r.recallAt1.near.toFixed(3)} / ${r.recallAt1.fresh.toFixed(3)}`,
      `${r.breakdownMs.searchKnn.p50.toFixed(3)} / ${r.breakdownMs.searchKnnFilter.p50.toFixed(3)}`,
      `${r.buildSeconds.put.toFixed(1)} + ${r.buildSeconds.add.toFixed(1)}`,
      `${mb(r.indexBytes)} (${mb(r.sqliteBytes)})`,
      `${r.saveMs.toFixed(0)} / ${r.reopenMs.toFixed(0)}`,
    ]),
    [true, true, false, true, true, true, true, true, true],
  );
}

/** Embedding one prompt on the router's embedding context, alone and 8 to a call. */
export function embedPromptTable(rows: RouterBenchResult['embed']): string {
  return table(
    ['model', 'tokens / dims', 'alone p50 / p99 ms', 'in batches of 8: per prompt p50 / p99 ms', 'samples'],
    rows.map((r) => [
      r.model, `${r.meanTokens.toFixed(1)} / ${r.dimensions}`, `${r.single.p50.toFixed(2)} / ${r.single.p99.toFixed(2)}`,
      `${r.batchedPerPrompt.p50.toFixed(2)} / ${r.batchedPerPrompt.p99.toFixed(2)}`, `${r.singles} + ${r.batches}×${r.batchSize}`,
    ]),
    [false, true, true, true, true],
  );
}
